"""Private Redis servers for qctl's tests and benchmarks.

What runs where (all ``redis-server`` from the Debian package, each started by
``common.spawn`` in its own session with a config file we write, listening on
127.0.0.1 only, no persistence -- ``save ""``, no AOF -- because test data is
throw-away and snapshots would only slow things down; only ``redis-persist``
keeps its data):

* main (``up``/``down``): 127.0.0.1:16379, files under ``.brokers/redis/``.
  Users: ``default`` without password and ``qctl``/``qctl-secret`` (ACL), so
  tests can check auth URLs, wrong passwords and password redaction.
* TLS (``tls_up``/``tls_down``, on demand): 127.0.0.1:16380 with TLS only
  (``port 0``), a server certificate under ``.brokers/redis-tls/`` signed by the
  harness CA (``common.ensure_ca``); clients need not present certificates.
* mTLS (``mtls_up``/``mtls_down``, on demand): 127.0.0.1:16381, TLS only with
  ``tls-auth-clients yes``: a client must present a certificate signed by the
  harness CA; ``.brokers/redis-mtls/client.{crt,key}`` is one.
* Persistent (``persist_up``/``persist_down``, on demand): 127.0.0.1:16382 with
  ``appendonly yes`` (fsync every second, flushed on SIGTERM), so restart tests
  (``restart``) find their data again.
* Cluster (``cluster_up``/``cluster_down``, on demand): three masters on
  127.0.0.1:17001..17003 (cluster bus on +10000), one directory each under
  ``.brokers/redis-cluster/<port>/``, where ``nodes.conf`` keeps the slot map so a
  restart re-forms the same cluster without ``redis-cli --cluster create``.

``down`` stops every one of these that is running, by the pid in its pid file;
``terminate``/``restart`` SIGTERM one and start it again on the same port.
Standard library only: this runs before qctl's venv exists.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .common import (
    apt_install,
    broker_dir,
    issue_certificate,
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
from .common import ca_file as common_ca_file

NAME = "redis"

HOST = "127.0.0.1"
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"

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
    client_auth: bool = False  # TLS that requires a client certificate
    persist: bool = False      # appendonly yes

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
MTLS = Instance("redis-mtls", 16381, tls=True, client_auth=True)
PERSIST = Instance("redis-persist", 16382, persist=True)
CLUSTER = tuple(Instance(f"redis-cluster/{port}", port, cluster=True) for port in (17001, 17002, 17003))

MAIN_ENV = {
    "QCTL_TEST_REDIS_URL": f"redis://{HOST}:{MAIN.port}/0",
    "QCTL_TEST_REDIS_ACL_URL": f"redis://{TEST_USER}:{TEST_PASSWORD}@{HOST}:{MAIN.port}/0",
}
CLUSTER_ENV = {"QCTL_TEST_REDIS_CLUSTER_URL": f"redis://{HOST}:{CLUSTER[0].port}/0"}
PERSIST_ENV = {"QCTL_TEST_REDIS_PERSIST_URL": f"redis://{HOST}:{PERSIST.port}/0"}


def tls_dir() -> Path:
    return TLS.dir


def ca_file() -> Path:
    return common_ca_file()


def client_cert() -> tuple[Path, Path]:
    """The client certificate and key that the mTLS instance accepts."""
    return MTLS.dir / "client.crt", MTLS.dir / "client.key"


def tls_env() -> dict[str, str]:
    return {"QCTL_TEST_REDISS_URL": f"rediss://{HOST}:{TLS.port}/0",
            "QCTL_TEST_REDIS_CA_FILE": str(ca_file())}


def mtls_env() -> dict[str, str]:
    cert, key = client_cert()
    return {"QCTL_TEST_REDIS_MTLS_URL": f"rediss://{HOST}:{MTLS.port}/0",
            "QCTL_TEST_REDIS_CLIENT_CERT": str(cert), "QCTL_TEST_REDIS_CLIENT_KEY": str(key),
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
    if instance.client_auth:
        cert, key = client_cert()
        context.load_cert_chain(str(cert), str(key))
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
        # Throw-away data: no RDB snapshots, and an AOF only where restarts must keep data.
        'save ""',
        f"appendonly {'yes' if instance.persist else 'no'}",
        "appendfsync everysec",
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
        f'tls-cert-file "{instance.dir / "server.crt"}"',
        f'tls-key-file "{instance.dir / "server.key"}"',
        f'tls-ca-cert-file "{ca_file()}"',
        f"tls-auth-clients {'yes' if instance.client_auth else 'no'}",
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
    """Stop everything this module runs: main, TLS, mTLS, persistent and cluster instances."""
    cluster_down()
    tls_down()
    mtls_down()
    persist_down()
    remove_env([*MAIN_ENV, "QCTL_TEST_REDIS_CA_FILE"])
    stop(MAIN)


def status() -> str:
    cluster = "; ".join(describe(node) for node in CLUSTER)
    return f"{NAME}: {describe(MAIN)}; {describe(TLS)}; {describe(MTLS)}; {describe(PERSIST)}; {cluster}"


def terminate(instance: Instance = MAIN) -> None:
    """SIGTERM one instance and wait until it is gone; ``.brokers/env`` keeps its URLs (for restart tests)."""
    stop(instance)
    wait_until(f"{NAME}: {instance.label} port to close", lambda: not port_open(instance.port), timeout=15)


def restart(instance: Instance = MAIN, *, pause: float = 0.0) -> None:
    """SIGTERM ``instance`` and start it again on the same port; only ``PERSIST`` keeps its data."""
    terminate(instance)
    time.sleep(pause)
    ensure_running(instance)


# --- TLS, mTLS and persistent instances ----------------------------------------

def make_certificates(instance: Instance) -> None:
    """The instance's server certificate (and the mTLS client's), signed by the harness CA, kept while valid."""
    issue_certificate(instance.dir, "server")
    if instance.client_auth:
        issue_certificate(instance.dir, "client", client=True)


def tls_up() -> dict[str, str]:
    install()
    make_certificates(TLS)
    ensure_running(TLS)
    env = tls_env()
    update_env(env)
    return env


def tls_down() -> None:
    remove_env(["QCTL_TEST_REDISS_URL"])
    stop(TLS)


def tls_status() -> str:
    return f"{NAME}: {describe(TLS)}"


def mtls_up() -> dict[str, str]:
    install()
    make_certificates(MTLS)
    ensure_running(MTLS)
    env = mtls_env()
    update_env(env)
    return env


def mtls_down() -> None:
    remove_env([key for key in mtls_env() if key != "QCTL_TEST_REDIS_CA_FILE"])
    stop(MTLS)


def mtls_status() -> str:
    return f"{NAME}: {describe(MTLS)}"


def persist_up() -> dict[str, str]:
    install()
    ensure_running(PERSIST)
    update_env(PERSIST_ENV)
    return dict(PERSIST_ENV)


def persist_down() -> None:
    remove_env(list(PERSIST_ENV))
    stop(PERSIST)


def persist_status() -> str:
    return f"{NAME}: {describe(PERSIST)}"


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
    if instance.client_auth:
        cert, key = client_cert()
        tls += ["--cert", str(cert), "--key", str(key)]
    return run([REDIS_CLI, "-h", HOST, "-p", str(instance.port), *tls, *args]).stdout

