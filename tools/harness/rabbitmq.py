"""A private RabbitMQ node for qctl's tests and benchmarks.

What runs where:

* One Erlang node ``qctl-test@localhost`` started from the Debian package's
  ``/usr/lib/rabbitmq/bin/rabbitmq-server`` -- never the system service, never
  ``/etc/rabbitmq``.  Config, cookie (``HOME``), database, logs and pid file all
  live under ``.brokers/rabbitmq/``.
* AMQP on 127.0.0.1:35672, the management API on 127.0.0.1:35673, Erlang
  distribution on 127.0.0.1:35674.  epmd (4369) is shared by every Erlang node
  on the machine: we let the node start it (loopback only) and leave it running.
* TLS beside the plain listeners: ``amqps`` on 127.0.0.1:35675 and the
  management API over https on 127.0.0.1:35676, with a server certificate from
  the harness CA (``common.ensure_ca``); clients need no certificate.  A node
  whose config on disk predates a listener is restarted by ``up`` (data kept).
* Users: ``guest``/``guest`` (allowed over loopback by ``loopback_users = none``),
  ``qctl``/``qctl-secret`` (administrator, full rights on ``/``), which the
  tests use for password redaction and wrong-password handling, and
  ``qctl-limited``/``qctl-secret`` (tag ``management``, read and write but no
  configure permission on ``/``) for permission-error tests.

Every node-level function takes a ``Node`` (default ``MAIN``, the one above), so
rabbitmq_cluster.py runs its three nodes with the same code.

Why the node is started in the foreground under ``common.spawn`` rather than with
``rabbitmq-server -detached``: ``-detached`` sends the console to /dev/null, so a
node that dies during prelaunch (port in use, bad config) leaves nothing behind
but a crash dump.  Under ``spawn`` it still gets its own session (it outlives
the caller), its console lands in ``console.log`` and ``wait_until`` notices an
early exit at once instead of after the full timeout.

Why the CLI gets its own distribution ports: ``rabbitmqctl`` starts a hidden
Erlang node that listens on RABBITMQ_CTL_DIST_PORT_MIN..MAX, which defaults to
35672..35682 -- exactly our AMQP/management/distribution ports.  A
``rabbitmqctl`` run while the node boots could take 35672 first and make the
AMQP listener fail, so ``cli_env`` moves the CLI to 35690..35699.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import (
    apt_install,
    broker_dir,
    ca_file,
    issue_certificate,
    log,
    pid_alive,
    port_open,
    read_pid,
    remove_env,
    run,
    spawn,
    stop_pid,
    update_env,
    wait_until,
)

NAME = "rabbitmq"

NODE = "qctl-test@localhost"
HOST = "127.0.0.1"
AMQP_PORT = 35672
MANAGEMENT_PORT = 35673
DIST_PORT = 35674
AMQPS_PORT = 35675
MANAGEMENT_HTTPS_PORT = 35676
# Keep the CLI's hidden node off our ports (see module docstring).
CTL_DIST_PORTS = (35690, 35699)

SBIN = Path("/usr/lib/rabbitmq/bin")
SERVER = SBIN / "rabbitmq-server"
RABBITMQCTL = SBIN / "rabbitmqctl"

ADMIN_USER, ADMIN_PASSWORD = "guest", "guest"
TEST_USER, TEST_PASSWORD = "qctl", "qctl-secret"
LIMITED_USER = "qctl-limited"


@dataclass(frozen=True)
class Node:
    """One private RabbitMQ node: its Erlang name, folder under .brokers/ and ports."""

    name: str
    folder: str
    amqp_port: int
    management_port: int
    dist_port: int
    ctl_dist_ports: tuple[int, int]
    tls_ports: tuple[int, int] | None = None  # (amqps, management https)

    @property
    def home(self) -> Path:
        return broker_dir(self.folder)

    @property
    def pid_file(self) -> Path:
        return self.home / "rabbitmq.pid"

    @property
    def console_log(self) -> Path:
        return self.home / "console.log"

    @property
    def node_log(self) -> Path:
        return self.home / "log" / f"{self.name}.log"

    @property
    def management_url(self) -> str:
        return f"http://{HOST}:{self.management_port}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.amqp_port, self.management_port, self.dist_port, *(self.tls_ports or ()))

    def amqp_url(self, user: str = TEST_USER, password: str = TEST_PASSWORD) -> str:
        return f"amqp://{user}:{password}@{HOST}:{self.amqp_port}/%2F"


MAIN = Node(NODE, NAME, AMQP_PORT, MANAGEMENT_PORT, DIST_PORT, CTL_DIST_PORTS, (AMQPS_PORT, MANAGEMENT_HTTPS_PORT))

MANAGEMENT_URL = MAIN.management_url
MANAGEMENT_HTTPS_URL = f"https://{HOST}:{MANAGEMENT_HTTPS_PORT}"
ENV = {
    "QCTL_TEST_AMQP_URL": MAIN.amqp_url(),
    "QCTL_TEST_RABBITMQ_MANAGEMENT_URL": MANAGEMENT_URL,
    "QCTL_TEST_AMQPS_URL": f"amqps://{TEST_USER}:{TEST_PASSWORD}@{HOST}:{AMQPS_PORT}/%2F",
    "QCTL_TEST_RABBITMQ_MANAGEMENT_HTTPS_URL": MANAGEMENT_HTTPS_URL,
    "QCTL_TEST_RABBITMQ_CA_FILE": str(ca_file()),
    "QCTL_TEST_AMQP_LIMITED_URL": MAIN.amqp_url(LIMITED_USER),
}

START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0

def config(node: Node = MAIN) -> str:
    text = f"""\
# Written by tools/harness/rabbitmq.py; rewritten on every start.
listeners.tcp.1 = {HOST}:{node.amqp_port}
management.tcp.ip = {HOST}
management.tcp.port = {node.management_port}
# guest may connect over 127.0.0.1 (the only interface we listen on anyway).
loopback_users = none
# Refresh management stats every second so tests see counters move quickly.
collect_statistics_interval = 1000
# The main log file has everything; the console (console.log) only needs to
# catch failures that happen before logging is set up.
log.console = false
log.file.level = info
"""
    return text + tls_config(node)


def tls_config(node: Node) -> str:
    if node.tls_ports is None:
        return ""
    amqps, https = node.tls_ports
    files = {"cacertfile": ca_file(), "certfile": node.home / "server.crt", "keyfile": node.home / "server.key"}
    lines = [f"listeners.ssl.1 = {HOST}:{amqps}",
             *(f"ssl_options.{key} = {path}" for key, path in files.items()),
             "ssl_options.verify = verify_none",
             "ssl_options.fail_if_no_peer_cert = false",
             f"management.ssl.ip = {HOST}",
             f"management.ssl.port = {https}",
             *(f"management.ssl.{key} = {path}" for key, path in files.items())]
    return "# TLS beside the plain listeners, certificate from the harness CA (.brokers/ca/).\n" + \
        "\n".join(lines) + "\n"

# Settings rabbitmq.conf has no keys for, all about how fast the management API
# sees a publish.  Its metrics collector samples at the shortest retention
# interval (5 s by default, whatever collect_statistics_interval says), and
# quorum queues and streams report counts on their own 5 s tick: together the
# API lagged ~5 s (classic) to ~10 s (quorum) behind a publish.
ADVANCED_CONFIG = """\
%% Written by tools/harness/rabbitmq.py; rewritten on every start.
[{rabbit, [{quorum_tick_interval, 1000}, {stream_tick_interval, 1000}]},
 {rabbitmq_management_agent,
  [{sample_retention_policies, [{global, [{605, 1}, {3660, 60}]},
                                {basic, [{605, 1}, {3600, 60}]},
                                {detailed, [{605, 1}]}]}]}].
"""


# --- paths (the main node's; kept for bench/ and tools/seed.py) ----------------

def home() -> Path:
    return MAIN.home


def pid_file() -> Path:
    return MAIN.pid_file


def console_log() -> Path:
    return MAIN.console_log


def node_log() -> Path:
    return MAIN.node_log


# --- environment -------------------------------------------------------------

def cli_env(node: Node = MAIN) -> dict[str, str]:
    """Environment for ``rabbitmqctl`` & co. to reach ``node`` (cookie via HOME)."""
    root = node.home
    env_conf = root / "rabbitmq-env.conf"
    if not env_conf.exists():
        # An empty private env file, so /etc/rabbitmq/rabbitmq-env.conf is never sourced.
        env_conf.write_text("# intentionally empty: keeps /etc/rabbitmq/rabbitmq-env.conf out\n")
    return dict(
        os.environ,
        HOME=str(root),
        RABBITMQ_NODENAME=node.name,
        RABBITMQ_CONF_ENV_FILE=str(env_conf),
        RABBITMQ_CTL_DIST_PORT_MIN=str(node.ctl_dist_ports[0]),
        RABBITMQ_CTL_DIST_PORT_MAX=str(node.ctl_dist_ports[1]),
        # Only matters if this process is the one that starts epmd.
        ERL_EPMD_ADDRESS=HOST,
    )


def server_env(node: Node = MAIN) -> dict[str, str]:
    root = node.home
    return dict(
        cli_env(node),
        RABBITMQ_NODE_IP_ADDRESS=HOST,
        RABBITMQ_NODE_PORT=str(node.amqp_port),
        RABBITMQ_DIST_PORT=str(node.dist_port),
        RABBITMQ_MNESIA_BASE=str(root / "mnesia"),
        RABBITMQ_LOG_BASE=str(root / "log"),
        RABBITMQ_CONFIG_FILE=str(root / "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(root / "advanced.config"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(root / "enabled_plugins"),
        RABBITMQ_PID_FILE=str(node.pid_file),
        # Bind the Erlang distribution listener to loopback too.
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
    )


def config_files(node: Node = MAIN) -> dict[Path, str]:
    root = node.home
    return {root / "rabbitmq.conf": config(node),
            # Always written, also so /etc/rabbitmq/advanced.config can never apply.
            root / "advanced.config": ADVANCED_CONFIG,
            root / "enabled_plugins": "[rabbitmq_management].\n"}


def config_current(node: Node = MAIN) -> bool:
    """Whether the config files on disk (what the running node read) are what we would write now."""
    return all(path.exists() and path.read_text() == text for path, text in config_files(node).items())


def write_config(node: Node = MAIN) -> None:
    if node.tls_ports is not None:
        issue_certificate(node.home, "server")
    for path, text in config_files(node).items():
        path.write_text(text)


# --- CLI and HTTP helpers ----------------------------------------------------

def rabbitmqctl(*args: str, timeout: float = 120, node: Node = MAIN) -> str:
    """Run ``rabbitmqctl -n <node> ARGS`` and return its output (raises on failure)."""
    return run([str(RABBITMQCTL), "-n", node.name, *args], env=cli_env(node), timeout=timeout).stdout


def api(method: str, path: str, body: Any = None, *, user: str = ADMIN_USER,
        password: str = ADMIN_PASSWORD, timeout: float = 5, node: Node = MAIN,
        https: bool = False) -> tuple[int, Any]:
    """Call the management API; returns (status, decoded JSON or None). Never raises on HTTP errors."""
    data = None if body is None else json.dumps(body).encode()
    base = MANAGEMENT_HTTPS_URL if https else node.management_url
    request = urllib.request.Request(base + path, data=data, method=method)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    context = ssl.create_default_context(cafile=str(ca_file())) if https else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, (json.loads(raw) if raw.strip() else None)


def management_node(node: Node = MAIN) -> str | None:
    """The node name the management API on the node's port reports, or None if it does not answer."""
    try:
        status, overview = api("GET", "/api/overview", timeout=2, node=node)
    except (OSError, ValueError):
        return None
    return overview.get("node") if status == 200 and isinstance(overview, dict) else None


def rabbitmqadmin_path() -> Path:
    """The management plugin's own ``rabbitmqadmin`` script, downloaded once from our node."""
    path = home() / "rabbitmqadmin"
    if not path.exists():
        with urllib.request.urlopen(f"{MANAGEMENT_URL}/cli/rabbitmqadmin", timeout=10) as response:
            script = response.read()
        partial = path.with_suffix(".part")
        partial.write_bytes(script)
        partial.chmod(0o755)
        partial.replace(path)
    return path


# --- lifecycle ---------------------------------------------------------------

def running_pid(node: Node = MAIN) -> int | None:
    """Pid of the node if it is alive (checked against its command line, not just the pid file)."""
    pid = read_pid(node.pid_file)
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None
    # The beam's command line carries "-home <its dir>"; a recycled pid will not.
    return pid if f"-home\0{node.home}\0" in cmdline else None


def check_ports_free(node: Node = MAIN) -> None:
    for port in node.ports:
        if port_open(port):
            raise RuntimeError(f"{NAME}: port {port} is in use by something that is not our node "
                               f"({node.name}, pid file {node.pid_file}); stop it or free the port")


def launch(node: Node = MAIN) -> subprocess.Popen[bytes]:
    """Write the config and start the node in the background; returns without waiting."""
    check_ports_free(node)
    write_config(node)
    node.console_log.write_text("")
    return spawn([str(SERVER)], log_file=node.console_log, env=server_env(node), cwd=node.home)


def wait_serving(node: Node, proc: subprocess.Popen[bytes] | None) -> None:
    """Wait until the node has booted and its management API and AMQP listener serve."""
    wait_until(f"{NAME}: node {node.name} booted", lambda: await_startup(node), timeout=START_TIMEOUT,
               proc=proc, log_file=node.console_log)
    wait_until(f"{NAME}: management API on {node.management_url}", lambda: management_node(node) == node.name,
               timeout=START_TIMEOUT, proc=proc, log_file=node.node_log)
    wait_until(f"{NAME}: AMQP on {HOST}:{node.amqp_port}", lambda: port_open(node.amqp_port),
               timeout=START_TIMEOUT, proc=proc, log_file=node.node_log)


def start(node: Node = MAIN) -> float:
    """Start the node and wait until AMQP and the management API serve; returns seconds taken."""
    started = time.monotonic()
    proc = launch(node)
    try:
        wait_serving(node, proc)
    except BaseException:
        abort(proc, node)
        raise
    return time.monotonic() - started


def await_startup(node: Node = MAIN) -> bool:
    """True once the node has booted. Fails fast (False) while it is not yet registered with epmd."""
    proc = run([str(RABBITMQCTL), "-n", node.name, "await_startup", "--timeout", str(int(START_TIMEOUT))],
               env=cli_env(node), timeout=START_TIMEOUT + 30, check=False)
    return proc.returncode == 0


def abort(proc: subprocess.Popen[bytes], node: Node = MAIN) -> None:
    """Kill a node whose start failed: the beam via its pid file, the wrapper via its process group."""
    stop_pid(node.pid_file, grace=10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def ensure_users(node: Node = MAIN) -> None:
    """``qctl`` (administrator, full rights on ``/``) and ``qctl-limited`` (no configure); PUT is idempotent."""
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    no_configure = {"configure": "^$", "write": ".*", "read": ".*"}
    for path, body in ((f"/api/users/{TEST_USER}", {"password": TEST_PASSWORD, "tags": "administrator"}),
                       (f"/api/permissions/%2F/{TEST_USER}", everything),
                       (f"/api/users/{LIMITED_USER}", {"password": TEST_PASSWORD, "tags": "management"}),
                       (f"/api/permissions/%2F/{LIMITED_USER}", no_configure)):
        status, reply = api("PUT", path, body, node=node)
        if status not in (201, 204):
            raise RuntimeError(f"{NAME}: PUT {path} answered {status}: {reply}")


ensure_test_user = ensure_users  # the name bench/ and older callers know


def stop(node: Node = MAIN) -> None:
    """Stop the node cleanly (``rabbitmqctl stop`` flushes quorum/stream state), then by signal."""
    pid = running_pid(node)
    if pid is None:
        node.pid_file.unlink(missing_ok=True)
        return
    stopped = run([str(RABBITMQCTL), "-n", node.name, "stop"], env=cli_env(node), timeout=STOP_TIMEOUT,
                  check=False)
    deadline = time.monotonic() + STOP_TIMEOUT
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        log(f"{NAME}: rabbitmqctl stop did not stop pid {pid} ({stopped.stdout.strip()}); signalling")
        stop_pid(node.pid_file, grace=20)
    node.pid_file.unlink(missing_ok=True)
    log(f"{NAME}: stopped {node.name} (pid {pid})")


def terminate(node: Node = MAIN) -> None:
    """SIGTERM the node's beam (RabbitMQ shuts down cleanly on it) and wait until its ports close.

    Unlike ``down`` the env lines stay, so a test can stop the broker mid-operation and ``up`` it again.
    """
    pid = running_pid(node)
    if pid is None:
        return
    stop_pid(node.pid_file, grace=STOP_TIMEOUT)
    wait_until(f"{NAME}: {node.name} ports to close",
               lambda: not any(port_open(port) for port in node.ports), timeout=15)
    log(f"{NAME}: terminated {node.name} (pid {pid})")


def ensure_serving(node: Node = MAIN) -> None:
    """Start the node unless it serves; restart it if its config on disk is older than ours."""
    if running_pid(node) is not None and not config_current(node):
        log(f"{NAME}: {node.name} runs an older config (e.g. without the TLS listeners); restarting it")
        stop(node)
    if running_pid(node) is not None and management_node(node) == node.name:
        log(f"{NAME}: {node.name} already running (pid {running_pid(node)})")
    elif running_pid(node) is not None:
        # Alive but not serving (e.g. still booting from another caller): let it finish.
        wait_until(f"{NAME}: existing node {node.name} serving", lambda: management_node(node) == node.name,
                   timeout=START_TIMEOUT, log_file=node.node_log)
    else:
        seconds = start(node)
        log(f"{NAME}: node {node.name} up in {seconds:.1f}s (pid {running_pid(node)})")


def up() -> dict[str, str]:
    apt_install({"rabbitmq-server": str(SERVER)})
    ensure_serving(MAIN)
    ensure_users(MAIN)
    update_env(ENV)
    return dict(ENV)


def down() -> None:
    remove_env(list(ENV))
    stop(MAIN)


def status() -> str:
    pid = running_pid()
    if pid is None:
        return f"{NAME}: stopped"
    serving = "serving" if management_node() == NODE else "NOT serving"
    return (f"{NAME}: running pid {pid}, {serving}, node {NODE}, amqp {HOST}:{AMQP_PORT}, "
            f"amqps {HOST}:{AMQPS_PORT}, management {MANAGEMENT_URL} and {MANAGEMENT_HTTPS_URL}")
