"""Private Redis servers for qctl's tests and benchmarks.

What runs where (all ``redis-server`` from the Debian package, each started by
``common.spawn`` in its own session with a config file we write, listening on
127.0.0.1 only, no persistence -- ``save ""``, no AOF -- because test data is
throw-away and snapshots would only slow things down):

* main (``up``/``down``): 127.0.0.1:16379, files under ``.brokers/redis/``.
  Users: ``default`` without password and ``qctl``/``qctl-secret`` (ACL), so
  tests can check auth URLs, wrong passwords and password redaction.
* TLS (``tls_up``/``tls_down``, on demand): 127.0.0.1:16380 with TLS only
  (``port 0``), a throw-away CA and server certificate made with the openssl CLI
  under ``.brokers/redis-tls/``; clients need not present certificates.
* Cluster (``cluster_up``/``cluster_down``, on demand): three masters on
  127.0.0.1:17001..17003 (cluster bus on +10000), one directory each under
  ``.brokers/redis-cluster/<port>/``, where ``nodes.conf`` keeps the slot map so a
  restart re-forms the same cluster without ``redis-cli --cluster create``.

``down`` stops every one of these that is running, by the pid in its pid file.
Standard library only: this runs before qctl's venv exists.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .common import (
    apt_install,
    broker_dir,
    log,
    port_open,
    read_pid,
    remove_env,
    run,
    spawn,
    stop_pid,
    update_env,
    wait_until,
)

NAME = "redis"

HOST = "127.0.0.1"
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
OPENSSL = "/usr/bin/openssl"

TEST_USER, TEST_PASSWORD = "qctl", "qctl-secret"
START_TIMEOUT = 30.0
CLUSTER_TIMEOUT = 60.0
CLUSTER_SLOTS = 16384


@dataclass(frozen=True)
class Instance:
    """One redis-server process: where its files live and where it listens."""

    name: str  # directory under .brokers/
    port: int
    tls: bool = False
    cluster: bool = False

    @property
    def dir(self) -> Path:
        return broker_dir(self.name)

    @property
    def pid_file(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "redis.log"

    @property
    def conf_file(self) -> Path:
        return self.dir / "redis.conf"

    @property
    def label(self) -> str:
        return f"{self.name} ({HOST}:{self.port}{', tls' if self.tls else ''})"


MAIN = Instance("redis", 16379)
TLS = Instance("redis-tls", 16380, tls=True)
CLUSTER = tuple(Instance(f"redis-cluster/{port}", port, cluster=True) for port in (17001, 17002, 17003))

MAIN_ENV = {
    "QCTL_TEST_REDIS_URL": f"redis://{HOST}:{MAIN.port}/0",
    "QCTL_TEST_REDIS_ACL_URL": f"redis://{TEST_USER}:{TEST_PASSWORD}@{HOST}:{MAIN.port}/0",
}
CLUSTER_ENV = {"QCTL_TEST_REDIS_CLUSTER_URL": f"redis://{HOST}:{CLUSTER[0].port}/0"}


def tls_dir() -> Path:
    return TLS.dir


def ca_file() -> Path:
    return tls_dir() / "ca.crt"


def tls_env() -> dict[str, str]:
    return {"QCTL_TEST_REDISS_URL": f"rediss://{HOST}:{TLS.port}/0",
            "QCTL_TEST_REDIS_CA_FILE": str(ca_file())}


def install() -> None:
    apt_install({"redis-server": REDIS_SERVER, "redis-tools": REDIS_CLI})


# --- talking RESP over a raw socket ------------------------------------------

class RedisError(Exception):
    """An error reply (``-ERR ...``) from the server."""


def connect(instance: Instance, timeout: float = 2) -> socket.socket:
    sock = socket.create_connection((HOST, instance.port), timeout=timeout)
    if not instance.tls:
        return sock
    context = ssl.create_default_context(cafile=str(ca_file()))
    # server_hostname as an IP makes ssl check the certificate's IP SAN.
    return context.wrap_socket(sock, server_hostname=HOST)


def command(instance: Instance, *args: str, timeout: float = 2) -> str | int | None:
    """Send one command; return a simple/bulk string or integer reply (arrays are not needed here)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with connect(instance, timeout) as sock, sock.makefile("rb") as reply:
        sock.sendall(b"".join(parts))
        return read_reply(reply)


def read_reply(reply: BinaryIO) -> str | int | None:
    line = reply.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError(f"truncated reply {line!r}")
    kind, body = line[:1], line[1:-2].decode()
    if kind == b"+":
        return body
    if kind == b"-":
        raise RedisError(body)
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        return None if size < 0 else reply.read(size + 2)[:-2].decode()
    raise ConnectionError(f"unexpected reply {line!r}")


def pings(instance: Instance) -> bool:
    try:
        return command(instance, "PING") == "PONG"
    except (OSError, RedisError, ValueError):
        return False


# --- one instance: config, start, stop ---------------------------------------

def base_config(instance: Instance) -> list[str]:
    return [
        "# Written by tools/harness/redis.py; rewritten on every start.",
        f"bind {HOST}",
        "protected-mode no",
        "daemonize no",
        "supervised no",
        f'dir "{instance.dir}"',
        f'pidfile "{instance.pid_file}"',
        'logfile ""',  # stdout, which spawn sends to redis.log
        # Throw-away data: no RDB snapshots, no AOF.
        'save ""',
        "appendonly no",
        "slowlog-max-len 1024",
        "user default on nopass ~* &* +@all",
        f"user {TEST_USER} on >{TEST_PASSWORD} ~* &* +@all",
    ]


def listen_config(instance: Instance) -> list[str]:
    if not instance.tls:
        return [f"port {instance.port}"]
    return [
        "port 0",
        f"tls-port {instance.port}",
        f'tls-cert-file "{tls_dir() / "server.crt"}"',
        f'tls-key-file "{tls_dir() / "server.key"}"',
        f'tls-ca-cert-file "{ca_file()}"',
        "tls-auth-clients no",
    ]


def cluster_config(instance: Instance) -> list[str]:
    if not instance.cluster:
        return []
    return ["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 5000"]


def running_pid(instance: Instance) -> int | None:
    """Pid of this instance if alive; redis rewrites its argv, so match its working directory."""
    pid = read_pid(instance.pid_file)
    if pid is None:
        return None
    try:
        cwd = Path(f"/proc/{pid}/cwd").resolve()
    except OSError:
        return None
    return pid if cwd == instance.dir.resolve() else None


def ensure_running(instance: Instance) -> None:
    """Start ``instance`` unless it is already ours and answering PING."""
    if running_pid(instance) is not None:
        wait_until(f"{NAME}: {instance.label} PING", lambda: pings(instance),
                   timeout=START_TIMEOUT, log_file=instance.log_file)
        return
    if port_open(instance.port):
        raise RuntimeError(f"{NAME}: port {instance.port} is in use by something that is not our "
                           f"{instance.name} (pid file {instance.pid_file}); stop it or free the port")
    start(instance)


def start(instance: Instance) -> None:
    lines = base_config(instance) + listen_config(instance) + cluster_config(instance)
    instance.conf_file.write_text("\n".join(lines) + "\n")
    proc = spawn([REDIS_SERVER, str(instance.conf_file)], log_file=instance.log_file, cwd=instance.dir)
    # Redis writes the same pid itself; writing it now means a failed start can still be stopped.
    instance.pid_file.write_text(f"{proc.pid}\n")
    try:
        wait_until(f"{NAME}: {instance.label} PING", lambda: pings(instance), timeout=START_TIMEOUT,
                   proc=proc, log_file=instance.log_file)
    except BaseException:
        stop_pid(instance.pid_file, grace=5)
        raise
    log(f"{NAME}: started {instance.label}, pid {proc.pid}")


def stop(instance: Instance) -> None:
    pid = read_pid(instance.pid_file)
    if stop_pid(instance.pid_file):
        log(f"{NAME}: stopped {instance.label}, pid {pid}")


def describe(instance: Instance) -> str:
    pid = running_pid(instance)
    if pid is None:
        return f"{instance.name} stopped"
    return f"{instance.name} pid {pid} on {HOST}:{instance.port}{'' if pings(instance) else ' NOT answering'}"


# --- main instance: the module interface -------------------------------------

def up() -> dict[str, str]:
    install()
    ensure_running(MAIN)
    update_env(MAIN_ENV)
    return dict(MAIN_ENV)


def down() -> None:
    """Stop everything this module runs: main, TLS and cluster instances."""
    cluster_down()
    tls_down()
    remove_env(list(MAIN_ENV))
    stop(MAIN)


def status() -> str:
    cluster = "; ".join(describe(node) for node in CLUSTER)
    return f"{NAME}: {describe(MAIN)}; {describe(TLS)}; {cluster}"


# --- TLS instance -------------------------------------------------------------

OPENSSL_CONFIG = f"""\
# Written by tools/harness/redis.py: a throw-away CA and a server certificate for {HOST}.
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
extendedKeyUsage = serverAuth
subjectAltName = IP:{HOST}, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_certificates() -> None:
    """CA + server key/cert, made once; kept across restarts so QCTL_TEST_REDIS_CA_FILE stays valid."""
    directory = tls_dir()
    wanted = [directory / name for name in ("ca.crt", "server.crt", "server.key")]
    if all(path.exists() for path in wanted):
        return
    apt_install({"openssl": OPENSSL})
    config = directory / "openssl.cnf"
    config.write_text(OPENSSL_CONFIG)
    days = "3650"
    run([OPENSSL, "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-days", days,
         "-config", str(config), "-extensions", "v3_ca", "-subj", "/CN=qctl test CA",
         "-keyout", "ca.key", "-out", "ca.crt"], cwd=directory)
    run([OPENSSL, "req", "-new", "-nodes", "-newkey", "rsa:2048", "-config", str(config),
         "-subj", f"/CN={HOST}", "-keyout", "server.key", "-out", "server.csr"], cwd=directory)
    run([OPENSSL, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", days, "-extfile", str(config), "-extensions", "v3_server",
         "-out", "server.crt"], cwd=directory)
    log(f"{NAME}: made a CA and server certificate in {directory}")


def tls_up() -> dict[str, str]:
    install()
    make_certificates()
    ensure_running(TLS)
    env = tls_env()
    update_env(env)
    return env


def tls_down() -> None:
    remove_env(list(tls_env()))
    stop(TLS)


def tls_status() -> str:
    return f"{NAME}: {describe(TLS)}"


# --- cluster ------------------------------------------------------------------

def cluster_info(instance: Instance) -> dict[str, str]:
    text = command(instance, "CLUSTER", "INFO")
    pairs = (line.split(":", 1) for line in str(text).splitlines() if ":" in line)
    return {key: value.strip() for key, value in pairs}


def cluster_ready() -> bool:
    try:
        infos = [cluster_info(node) for node in CLUSTER]
    except (OSError, RedisError, ValueError):
        return False
    return all(info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(len(CLUSTER))
               for info in infos)


def cluster_formed() -> bool | None:
    """True: every node holds the full slot map (a restart re-forms it); False: all blank; None: mixed."""
    infos = [cluster_info(node) for node in CLUSTER]
    slots = [int(info.get("cluster_slots_assigned", "0")) for info in infos]
    if all(count == CLUSTER_SLOTS for count in slots):
        return True
    if all(count == 0 for count in slots) and all(info.get("cluster_known_nodes") == "1" for info in infos):
        return False
    return None


def cluster_create() -> None:
    addresses = [f"{HOST}:{node.port}" for node in CLUSTER]
    run([REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
        timeout=CLUSTER_TIMEOUT)
    log(f"{NAME}: created cluster {' '.join(addresses)}")


def cluster_reset() -> None:
    """A half-made cluster (e.g. an interrupted create): wipe the throw-away data and start over."""
    log(f"{NAME}: cluster state is inconsistent, resetting all nodes")
    for node in CLUSTER:
        command(node, "FLUSHALL")
        command(node, "CLUSTER", "RESET", "HARD")


def cluster_up() -> dict[str, str]:
    install()
    for node in CLUSTER:
        ensure_running(node)
    formed = cluster_formed()
    if formed is None:
        cluster_reset()
    if not formed:
        cluster_create()
    wait_until(f"{NAME}: cluster_state:ok on all {len(CLUSTER)} nodes", cluster_ready,
               timeout=CLUSTER_TIMEOUT, log_file=CLUSTER[0].log_file)
    update_env(CLUSTER_ENV)
    return dict(CLUSTER_ENV)


def cluster_down() -> None:
    remove_env(list(CLUSTER_ENV))
    for node in CLUSTER:
        stop(node)


def cluster_status() -> str:
    nodes = "; ".join(describe(node) for node in CLUSTER)
    state = "ok" if cluster_ready() else "not ok"
    return f"{NAME} cluster: {state}; {nodes}"


def redis_cli(*args: str, instance: Instance = MAIN) -> str:
    """Run redis-cli against an instance (TLS flags added for the TLS one); returns its output."""
    tls = ["--tls", "--cacert", str(ca_file())] if instance.tls else []
    return run([REDIS_CLI, "-h", HOST, "-p", str(instance.port), *tls, *args]).stdout

