"""Shared plumbing for the broker harness: paths, installs, pid files, waiting.

Every broker keeps its data, logs and pid file under ``.brokers/<name>/`` in the
repository, and ``.brokers/env`` collects the ``QCTL_TEST_*`` URLs that tests
and benchmarks read.  Standard library only: this runs before qctl's venv exists.

The harness's one certificate authority lives here too: a throw-away CA in
``.brokers/ca/`` made with the openssl CLI, which signs the server (and client)
certificates of every TLS listener -- Redis, RabbitMQ, Kafka, mosquitto -- so
tests need one CA file for all of them.  It was first made by redis.py in
``.brokers/redis-tls/``; ``ensure_ca`` adopts that one, so certificates and
``QCTL_TEST_*_CA_FILE`` paths handed out before stay valid.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BROKERS_DIR = REPO / ".brokers"
ENV_FILE = BROKERS_DIR / "env"
CA_DIR = BROKERS_DIR / "ca"
OPENSSL = "/usr/bin/openssl"
TLS_HOST = "127.0.0.1"
CERT_DAYS = "3650"


def log(message: str) -> None:
    print(f"brokers: {message}", file=sys.stderr, flush=True)


def broker_dir(name: str) -> Path:
    path = BROKERS_DIR / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600,
        check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; on failure raise with its output attached."""
    proc = subprocess.run(cmd, env=env, timeout=timeout, cwd=cwd, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-4000:]}")
    return proc


def apt_install(packages: dict[str, str]) -> None:
    """Install Debian packages whose command (the dict value) is missing.

    ``packages`` maps package name -> a path that exists once it is installed.
    """
    missing = [pkg for pkg, probe in packages.items() if not Path(probe).exists()]
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"missing packages {missing}: run as root or install them with apt-get")
    log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # policy-rc.d stops the packages' own system services from starting on the default ports.
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = not policy.exists()
    if created_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        run(["apt-get", "update", "-qq"], env=env, timeout=900)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env, timeout=1800)
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)


DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"


def ensure_java() -> None:
    apt_install({"openjdk-17-jre-headless": "/usr/bin/java", "maven": "/usr/bin/mvn"})


def maven_resolve(pom: Path, lib: Path, *, profile: str = "", label: str) -> None:
    """Copy the pom's (profile's) runtime jars from Maven Central into ``lib``, unless done for this pom."""
    marker = lib / ".resolved"
    digest = hashlib.sha256(pom.read_bytes() + profile.encode()).hexdigest()
    if marker.exists() and marker.read_text() == digest:
        return
    ensure_java()
    started = time.monotonic()
    # Resolve into a scratch folder and swap it in, so an interrupted run never looks complete
    # and jars of an older pom never mix with the new ones.
    partial = lib.with_name(lib.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    run(["mvn", "-B", "-q", "-f", str(pom), *(["-P", profile] if profile else []), DEPENDENCY_PLUGIN,
         "-DincludeScope=runtime", f"-DoutputDirectory={partial}"], timeout=900)
    (partial / ".resolved").write_text(digest)
    shutil.rmtree(lib, ignore_errors=True)
    partial.rename(lib)
    jars = list(lib.glob("*.jar"))
    log(f"{label}: resolved {len(jars)} jars{f' ({profile})' if profile else ''} in {time.monotonic() - started:.1f}s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def reserve_ports(ports: list[int]) -> None:
    """Keep ``ports`` out of the kernel's ephemeral range (best effort; needs root, as the harness runs).

    The harness's ports lie inside 32768-60999: a broker's own outgoing connection (Kafka's broker to
    its controller) can be given one of its listener ports as its local port, and the TIME_WAIT it
    leaves makes the next start fail to bind ("Address already in use"), seen on a Kafka restart.
    """
    try:
        current = RESERVED_PORTS.read_text().strip()
        taken = {part for part in current.split(",") if part}
        wanted = sorted(str(port) for port in ports if str(port) not in taken)
        if wanted:
            RESERVED_PORTS.write_text(",".join([*sorted(taken), *wanted]))
    except OSError:
        pass  # not root, or no such file: starts may then collide now and then, as before


def wait_until(what: str, check: Callable[[], bool], *, timeout: float,
               proc: subprocess.Popen[bytes] | None = None, log_file: Path | None = None) -> None:
    """Poll ``check`` until it is true; fail with the log tail on timeout or early exit."""
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited {proc.returncode}{tail(log_file)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f}s{tail(log_file)}")
        time.sleep(0.1)


def tail(log_file: Path | None, chars: int = 6000) -> str:
    if log_file is None or not log_file.exists():
        return ""
    return "\n--- log tail ---\n" + log_file.read_text(errors="replace")[-chars:]


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_pid(pid_file: Path, *, grace: float = 30) -> bool:
    """SIGTERM the process in ``pid_file``, SIGKILL after ``grace`` seconds. True if one ran."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return True


def spawn(cmd: list[str], *, log_file: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a long-running process detached from our session, output to ``log_file``."""
    with open(log_file, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)


def which(name: str) -> str | None:
    return shutil.which(name)


def read_env() -> dict[str, str]:
    if not ENV_FILE.exists():
        return {}
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


@contextlib.contextmanager
def _env_locked() -> Iterator[None]:
    # Several harness processes (parallel test runs, benchmarks) may edit the env file at once.
    BROKERS_DIR.mkdir(parents=True, exist_ok=True)
    with open(BROKERS_DIR / "env.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_env(values: dict[str, str]) -> None:
    scratch = ENV_FILE.with_suffix(".tmp")
    scratch.write_text("".join(f"{key}={values[key]}\n" for key in sorted(values)))
    scratch.replace(ENV_FILE)  # readers never see a half-written file


def update_env(values: dict[str, str]) -> None:
    """Merge ``values`` into ``.brokers/env`` (one KEY=value a line, sorted)."""
    with _env_locked():
        _write_env(read_env() | values)


def remove_env(keys: list[str]) -> None:
    with _env_locked():
        current = read_env()
        for key in keys:
            current.pop(key, None)
        _write_env(current)


# --- the harness CA ------------------------------------------------------------

OPENSSL_CONFIG = f"""\
# Written by tools/harness/common.py: the harness CA and the certificates it signs.
[req]
distinguished_name = dn
prompt = no
[dn]
CN = qctl test
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:{TLS_HOST}, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def ca_file() -> Path:
    return CA_DIR / "ca.crt"


def ensure_ca() -> Path:
    """The harness CA certificate, made (or adopted from .brokers/redis-tls/) once; returns its path."""
    CA_DIR.mkdir(parents=True, exist_ok=True)
    config = CA_DIR / "openssl.cnf"
    config.write_text(OPENSSL_CONFIG)
    if (CA_DIR / "ca.crt").exists() and (CA_DIR / "ca.key").exists():
        return ca_file()
    apt_install({"openssl": OPENSSL})
    legacy = BROKERS_DIR / "redis-tls"
    if (legacy / "ca.crt").exists() and (legacy / "ca.key").exists():
        for name in ("ca.key", "ca.crt"):
            shutil.copyfile(legacy / name, CA_DIR / f"{name}.partial")
    else:
        run([OPENSSL, "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-days", CERT_DAYS,
             "-config", str(config), "-extensions", "v3_ca", "-subj", "/CN=qctl test CA",
             "-keyout", "ca.key.partial", "-out", "ca.crt.partial"], cwd=CA_DIR)
        log(f"made the harness CA in {CA_DIR}")
    # The key first: a crash in between leaves no certificate without its key.
    (CA_DIR / "ca.key.partial").replace(CA_DIR / "ca.key")
    (CA_DIR / "ca.crt.partial").replace(CA_DIR / "ca.crt")
    return ca_file()


def signed_by_ca(cert: Path) -> bool:
    if not cert.exists():
        return False
    return run([OPENSSL, "verify", "-CAfile", str(ca_file()), str(cert)], check=False).returncode == 0


def issue_certificate(directory: Path, stem: str, *, client: bool = False) -> tuple[Path, Path]:
    """``<stem>.crt``/``<stem>.key`` in ``directory``, signed by the harness CA; kept while still valid.

    Server certificates name 127.0.0.1 and localhost (and may also authenticate as clients);
    ``client=True`` makes a client-only certificate with CN ``qctl``.
    """
    ensure_ca()
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    if key.exists() and signed_by_ca(cert):
        return cert, key
    directory.mkdir(parents=True, exist_ok=True)
    subject = "/CN=qctl" if client else f"/CN={TLS_HOST}"
    csr = directory / f"{stem}.csr"
    run([OPENSSL, "req", "-new", "-nodes", "-newkey", "rsa:2048", "-config", str(CA_DIR / "openssl.cnf"),
         "-subj", subject, "-keyout", str(key), "-out", str(csr)])
    run([OPENSSL, "x509", "-req", "-in", str(csr), "-CA", str(ca_file()), "-CAkey", str(CA_DIR / "ca.key"),
         "-CAcreateserial", "-days", CERT_DAYS, "-extfile", str(CA_DIR / "openssl.cnf"),
         "-extensions", "v3_client" if client else "v3_server", "-out", str(cert)])
    csr.unlink(missing_ok=True)
    log(f"issued {'client' if client else 'server'} certificate {cert}")
    return cert, key
