"""A real Apache Kafka broker for qctl's tests, run from Maven Central jars.

There is no Docker here and Debian has no Kafka broker package, so the jars of ``kafka_2.13`` (the broker and
``StorageTool``) are resolved with Maven from ``tools/kafka-runtime/pom.xml`` into
``.brokers/kafka-runtime/lib`` and started with the machine's Java 17, the way ``kafka-server-start.sh``
would.  Kafka 4.x runs in KRaft combined mode (broker and controller in one JVM), so no ZooKeeper.

* ``up()``: one node on 127.0.0.1:39092 (controller 39093), data under ``.brokers/kafka``, with two TLS
  listeners beside it: SSL on 127.0.0.1:39094 and SASL_SSL with SCRAM-SHA-512 on 127.0.0.1:39095
  (user ``qctl``/``qctl-secret``, created through the Admin API by Kafka's own ``ConfigCommand``).  The
  server certificate comes from the harness CA (``common.ensure_ca``) in a PKCS12 keystore made with
  openssl; clients need no certificate.  Inter-broker and controller traffic stays PLAINTEXT.  A running
  node whose server.properties differs from what ``up`` would write (e.g. from before the TLS
  listeners) is restarted with the new one, data kept.
* ``cluster_up()``: three combined nodes on 39192/39194/39196 (controllers 39193/39195/39197), data under
  ``.brokers/kafka-cluster``, for replication-factor-3 topics.
* ``tools_classpath()``: Kafka's own command-line tools (``kafka-tools``, kept in a separate lib folder
  because it pulls in Kafka Connect), which benchmarks compare qctl against.

Each node's storage is formatted once with a cluster id kept next to it, so restarts reuse the data;
``terminate()`` SIGTERMs the single node (a controlled shutdown) and keeps its env lines for ``up``.
"""

from __future__ import annotations

import base64
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .common import (
    BROKERS_DIR,
    REPO,
    broker_dir,
    ca_file,
    issue_certificate,
    log,
    maven_resolve,
    pid_alive,
    port_open,
    read_pid,
    remove_env,
    reserve_ports,
    run,
    spawn,
    stop_pid,
    tail,
    update_env,
    wait_until,
    which,
)

NAME = "kafka"

POM = REPO / "tools" / "kafka-runtime" / "pom.xml"
RUNTIME_DIR = BROKERS_DIR / "kafka-runtime"
LIB = RUNTIME_DIR / "lib"
TOOLS_LIB = RUNTIME_DIR / "tools-lib"
TOOLS_CONF = RUNTIME_DIR / "tools-conf"
LOG4J_CONFIG = RUNTIME_DIR / "log4j2.properties"

URL_KEY = "QCTL_TEST_KAFKA_URL"
SSL_URL_KEY = "QCTL_TEST_KAFKA_SSL_URL"
SASL_URL_KEY = "QCTL_TEST_KAFKA_SASL_URL"
CA_KEY = "QCTL_TEST_KAFKA_CA_FILE"
CLUSTER_URL_KEY = "QCTL_TEST_KAFKA_CLUSTER_URL"
TOOLS_CP_KEY = "QCTL_TEST_KAFKA_TOOLS_CP"

HOST = "127.0.0.1"
START_TIMEOUT = 120.0
SSL_PORT, SASL_SSL_PORT = 39094, 39095
SCRAM_MECHANISM = "SCRAM-SHA-512"
TEST_USER, TEST_PASSWORD = "qctl", "qctl-secret"
KEYSTORE_PASSWORD = "qctl-keystore"
OPENSSL = "/usr/bin/openssl"
STARTED_LINE = "Kafka Server started"

# The scripts' JVM flags (kafka-server-start.sh / kafka-run-class.sh) minus JMX and GC logging,
# with a smaller heap: the machine has 24 GB but only 2 cores.
JVM_FLAGS = ["-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
             "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
             "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true"]

# Broker settings for tests; per-topology replication settings are added in _properties().
TEST_SETTINGS = {
    "num.partitions": "1",
    # qctl must report missing topics, so tests create theirs explicitly.
    "auto.create.topics.enable": "false",
    "delete.topic.enable": "true",
    "group.initial.rebalance.delay.ms": "0",
    # Lets tests use short consumer session timeouts (default minimum 6 s).
    "group.min.session.timeout.ms": "1000",
    # The default 50 partitions of __consumer_offsets cost seconds on the first group operation.
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.num.partitions": "1",
    # 4.x rejects records timestamped over 1 h in the future; tests may set any timestamp.
    "log.message.timestamp.after.max.ms": "9223372036854775807",
    # Footprint on a 2-core box: fewer threads, and an 8 MiB instead of 128 MiB cleaner buffer.
    "num.network.threads": "2",
    "num.io.threads": "4",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.dedupe.buffer.size": "8388608",
}

BROKER_LOG4J = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""

# What config/tools-log4j2.yaml does for the real scripts: warnings only, on stderr.  Found by log4j2
# on the classpath, so tools_classpath() alone reproduces the script's behaviour.
TOOLS_LOG4J = """\
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
"""


@dataclass(frozen=True)
class Node:
    """One combined broker+controller JVM."""

    node_id: int
    port: int
    controller_port: int
    home: Path
    voters: str        # the static quorum, e.g. "1@127.0.0.1:39093"
    replication: int   # replication factor of the internal topics
    cluster_id_file: Path
    tls: bool = False  # SSL and SASL_SSL listeners on SSL_PORT/SASL_SSL_PORT

    @property
    def pid_file(self) -> Path:
        return self.home / "pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def keystore(self) -> Path:
        return self.home / "server.p12"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.controller_port, *((SSL_PORT, SASL_SSL_PORT) if self.tls else ()))


def _single_node() -> Node:
    home = broker_dir(NAME)
    return Node(1, 39092, 39093, home, f"1@{HOST}:39093", 1, home / "cluster-id", tls=True)


def _cluster_nodes() -> list[Node]:
    home = broker_dir("kafka-cluster")
    ids = (1, 2, 3)
    voters = ",".join(f"{i}@{HOST}:{39191 + 2 * i}" for i in ids)
    return [Node(i, 39190 + 2 * i, 39191 + 2 * i, home / f"node{i}", voters, 3, home / "cluster-id")
            for i in ids]


# --- jars -------------------------------------------------------------------------------------------


def _resolve(profile: str, lib: Path) -> None:
    """Copy the profile's runtime jars into ``lib`` unless a previous run finished for this pom."""
    maven_resolve(POM, lib, profile=profile, label=NAME)


def _broker_classpath() -> str:
    _resolve("broker", LIB)
    LOG4J_CONFIG.write_text(BROKER_LOG4J)
    return f"{LIB}/*"   # the JVM expands the wildcard itself


def tools_classpath() -> str:
    """Classpath for Kafka's CLI tools, e.g. ``org.apache.kafka.tools.consumer.group.ConsumerGroupCommand``."""
    _resolve("tools", TOOLS_LIB)
    TOOLS_CONF.mkdir(parents=True, exist_ok=True)
    (TOOLS_CONF / "log4j2.properties").write_text(TOOLS_LOG4J)
    return f"{TOOLS_LIB}/*:{TOOLS_CONF}"


def _java(classpath: str, node: Node) -> list[str]:
    return [which("java") or "/usr/bin/java", *JVM_FLAGS,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dkafka.logs.dir={node.home / 'logs'}",
            "-cp", classpath]


# --- one node ---------------------------------------------------------------------------------------


def _tls_settings(node: Node) -> dict[str, str]:
    if not node.tls:
        return {}
    return {
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(node.keystore),
        "ssl.keystore.password": KEYSTORE_PASSWORD,
        "ssl.key.password": KEYSTORE_PASSWORD,
        "ssl.client.auth": "none",
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    }


def _listeners(node: Node) -> tuple[str, str]:
    """The ``listeners`` value and the security protocol map."""
    listeners = f"PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}"
    protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if node.tls:
        listeners += f",SSL://{HOST}:{SSL_PORT},SASL_SSL://{HOST}:{SASL_SSL_PORT}"
        protocols += ",SSL:SSL,SASL_SSL:SASL_SSL"
    return listeners, protocols


def _properties(node: Node) -> str:
    listeners, protocols = _listeners(node)
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        # A static quorum: formatting needs no --standalone and restarts need nothing special.
        "controller.quorum.voters": node.voters,
        "listeners": listeners,
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": protocols,
        "log.dirs": str(node.data_dir),
        "default.replication.factor": str(node.replication),
        "offsets.topic.replication.factor": str(node.replication),
        "transaction.state.log.replication.factor": str(node.replication),
        "transaction.state.log.min.isr": str(min(node.replication, 2)),
        "share.coordinator.state.topic.replication.factor": str(node.replication),
        "share.coordinator.state.topic.min.isr": str(min(node.replication, 2)),
        **TEST_SETTINGS,
        **_tls_settings(node),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _cluster_id(node: Node) -> str:
    """The id this node's storage is (or will be) formatted with, drawn once like Kafka's Uuid."""
    if node.cluster_id_file.exists():
        return node.cluster_id_file.read_text().strip()
    cluster_id = "-"
    while cluster_id.startswith("-"):   # Kafka re-draws ids that look like a command-line flag
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    node.cluster_id_file.write_text(cluster_id + "\n")
    return cluster_id


def _format(node: Node, classpath: str) -> None:
    if (node.data_dir / "meta.properties").exists():
        return
    started = time.monotonic()
    run([*_java(classpath, node), "kafka.tools.StorageTool", "format",
         "-t", _cluster_id(node), "-c", str(node.properties_file)], timeout=120)
    log(f"kafka: formatted node {node.node_id} in {time.monotonic() - started:.1f}s")


def _running_pid(node: Node) -> int | None:
    """Our live broker's pid; a recycled pid that now belongs to another program does not count."""
    pid = read_pid(node.pid_file)
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if str(node.properties_file).encode() in cmdline else None


def _stop(node: Node) -> bool:
    """SIGTERM (Kafka's shutdown hook does a controlled shutdown), SIGKILL after 30 s."""
    if _running_pid(node) is None:
        node.pid_file.unlink(missing_ok=True)
        return False
    stop_pid(node.pid_file, grace=30)
    # The JVM's main thread can be reaped before the threads holding the sockets, so wait for the
    # ports too: a following up() must not mistake them for someone else's broker.
    wait_until(f"kafka node {node.node_id} ports to close",
               lambda: not any(port_open(port) for port in node.ports), timeout=15)
    return True


def _stop_all(nodes: list[Node]) -> bool:
    """Stop nodes in parallel: stopped one by one, the last node loses its controller quorum and
    its controlled shutdown hangs until the SIGKILL (measured: 35 s instead of 2 s)."""
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return any(list(pool.map(_stop, nodes)))


def _check_ports_free(node: Node) -> None:
    """Refuse to start a second broker over whatever already listens on our ports."""
    for port in node.ports:
        if port_open(port):
            raise RuntimeError(
                f"kafka: 127.0.0.1:{port} is already in use but {node.pid_file} names no live process; "
                "stop whatever listens there (e.g. `ss -ltnp`) before starting kafka")


def _make_keystore(node: Node) -> None:
    """The PKCS12 keystore with the harness CA's server certificate, remade when the certificate is."""
    cert, key = issue_certificate(node.home, "server")
    if node.keystore.exists() and node.keystore.stat().st_mtime >= cert.stat().st_mtime:
        return
    run([OPENSSL, "pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-certfile", str(ca_file()),
         "-name", "kafka", "-passout", f"pass:{KEYSTORE_PASSWORD}", "-out", str(node.keystore)])


def _prepare(node: Node, classpath: str) -> None:
    """Write the node's server.properties (and keystore) and format its storage the first time."""
    _check_ports_free(node)
    reserve_ports(list(node.ports))
    node.home.mkdir(parents=True, exist_ok=True)
    if node.tls:
        _make_keystore(node)
    node.properties_file.write_text(_properties(node))
    _format(node, classpath)


def _launch(node: Node, classpath: str) -> None:
    """Start the broker detached, so it outlives the calling process; returns without waiting."""
    # A fresh log per run, so the "started" line we wait for is this run's.
    if node.log_file.exists():
        (node.home / "logs").mkdir(exist_ok=True)
        node.log_file.replace(node.home / "logs" / "broker.previous.log")
    proc = spawn([*_java(classpath, node), "kafka.Kafka", str(node.properties_file)],
                 log_file=node.log_file, cwd=node.home)
    node.pid_file.write_text(f"{proc.pid}\n")


def _serving(node: Node) -> bool:
    """The client port opens only once the broker is unfenced, but check the log line as well."""
    if not port_open(node.port):
        return False
    return node.log_file.exists() and STARTED_LINE in node.log_file.read_text(errors="replace")


def _wait_serving(node: Node, deadline: float) -> None:
    pid = _running_pid(node)

    def ready() -> bool:
        if pid is None or not pid_alive(pid):
            raise RuntimeError(f"kafka node {node.node_id} exited during start-up{tail(node.log_file)}")
        return _serving(node)

    wait_until(f"kafka node {node.node_id} on {HOST}:{node.port}", ready,
               timeout=max(1.0, deadline - time.monotonic()), log_file=node.log_file)


def _up(nodes: list[Node]) -> float:
    """Start the nodes that are not running and wait for all; returns the seconds it took."""
    classpath = _broker_classpath()
    started = time.monotonic()
    missing = [node for node in nodes if _running_pid(node) is None]
    try:
        # Format everything before launching: a JVM starting next door slows StorageTool down.
        for node in missing:
            _prepare(node, classpath)
        for node in missing:
            _launch(node, classpath)
        for node in nodes:
            _wait_serving(node, started + START_TIMEOUT)
    except BaseException:
        _stop_all(missing)   # leave nothing half-started behind
        raise
    return time.monotonic() - started


def _ensure_scram_user(node: Node) -> None:
    """Create the SCRAM-SHA-512 user once per formatted storage (a marker remembers which one)."""
    marker = node.home / "scram-user"
    storage = (node.data_dir / "meta.properties").read_text()
    if marker.exists() and marker.read_text() == storage:
        return
    started = time.monotonic()
    run([*_java(_broker_classpath(), node), "kafka.admin.ConfigCommand", "--bootstrap-server",
         f"{HOST}:{node.port}", "--alter", "--entity-type", "users", "--entity-name", TEST_USER,
         "--add-config", f"{SCRAM_MECHANISM}=[iterations=4096,password={TEST_PASSWORD}]"], timeout=120)
    marker.write_text(storage)
    log(f"kafka: SCRAM user {TEST_USER} created in {time.monotonic() - started:.1f}s")


def _config_current(node: Node) -> bool:
    return node.properties_file.exists() and node.properties_file.read_text() == _properties(node)


def _status(label: str, nodes: list[Node]) -> str:
    parts = []
    for node in nodes:
        pid = _running_pid(node)
        if pid is not None:
            state = "running" if _serving(node) else "starting"
            parts.append(f"{state} pid {pid} on {HOST}:{node.port}")
        elif port_open(node.port):
            parts.append(f"stopped, but {HOST}:{node.port} is in use by another process")
        else:
            parts.append("stopped")
    if len(set(parts)) == 1 and parts[0] == "stopped":
        return f"{label}: stopped"
    return f"{label}: " + "; ".join(parts)


# --- public interface ---------------------------------------------------------------------------------


def _single_env(node: Node) -> dict[str, str]:
    return {URL_KEY: f"kafka://{HOST}:{node.port}", TOOLS_CP_KEY: tools_classpath(),
            SSL_URL_KEY: f"kafka+ssl://{HOST}:{SSL_PORT}",
            SASL_URL_KEY: f"kafka+ssl://{TEST_USER}:{TEST_PASSWORD}@{HOST}:{SASL_SSL_PORT}"
                          f"?sasl_mechanism={SCRAM_MECHANISM}",
            CA_KEY: str(ca_file())}


def up() -> dict[str, str]:
    """Start the single-node broker unless it already serves; write and return its env values."""
    node = _single_node()
    if _running_pid(node) is not None and not _config_current(node):
        log("kafka: the running node's server.properties is outdated (e.g. no TLS listeners); restarting it")
        _stop(node)
    if _running_pid(node) is None or not _serving(node):
        seconds = _up([node])
        log(f"kafka: serving on {HOST}:{node.port} after {seconds:.1f}s")
    _ensure_scram_user(node)
    env = _single_env(node)
    update_env(env)
    return env


def terminate() -> None:
    """SIGTERM the single node and wait until its ports close; data and env lines are kept."""
    if _stop(_single_node()):
        log("kafka: terminated")


def down() -> None:
    if _stop(_single_node()):
        log("kafka: stopped")
    remove_env([URL_KEY, TOOLS_CP_KEY, SSL_URL_KEY, SASL_URL_KEY, CA_KEY])


def status() -> str:
    return _status(NAME, [_single_node()])


def cluster_up() -> dict[str, str]:
    """Start the three-node cluster unless all nodes already serve; write and return its env values."""
    nodes = _cluster_nodes()
    if not all(_running_pid(node) is not None and _serving(node) for node in nodes):
        seconds = _up(nodes)
        log(f"kafka-cluster: serving after {seconds:.1f}s")
    env = {CLUSTER_URL_KEY: "kafka://" + ",".join(f"{HOST}:{node.port}" for node in nodes)}
    update_env(env)
    return env


def cluster_down() -> None:
    if _stop_all(_cluster_nodes()):
        log("kafka-cluster: stopped")
    remove_env([CLUSTER_URL_KEY])


def cluster_status() -> str:
    return _status("kafka-cluster", _cluster_nodes())
