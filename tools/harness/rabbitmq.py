"""A private RabbitMQ node for qctl's tests and benchmarks.

What runs where:

* One Erlang node ``qctl-test@localhost`` started from the Debian package's
  ``/usr/lib/rabbitmq/bin/rabbitmq-server`` -- never the system service, never
  ``/etc/rabbitmq``.  Config, cookie (``HOME``), database, logs and pid file all
  live under ``.brokers/rabbitmq/``.
* AMQP on 127.0.0.1:35672, the management API on 127.0.0.1:35673, Erlang
  distribution on 127.0.0.1:35674.  epmd (4369) is shared by every Erlang node
  on the machine: we let the node start it (loopback only) and leave it running.
* Users: ``guest``/``guest`` (allowed over loopback by ``loopback_users = none``)
  and ``qctl``/``qctl-secret`` (administrator, full rights on ``/``), which the
  tests use for password redaction and wrong-password handling.

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
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .common import (
    apt_install,
    broker_dir,
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
# Keep the CLI's hidden node off our ports (see module docstring).
CTL_DIST_PORTS = (35690, 35699)

SBIN = Path("/usr/lib/rabbitmq/bin")
SERVER = SBIN / "rabbitmq-server"
RABBITMQCTL = SBIN / "rabbitmqctl"

ADMIN_USER, ADMIN_PASSWORD = "guest", "guest"
TEST_USER, TEST_PASSWORD = "qctl", "qctl-secret"

MANAGEMENT_URL = f"http://{HOST}:{MANAGEMENT_PORT}"
ENV = {
    "QCTL_TEST_AMQP_URL": f"amqp://{TEST_USER}:{TEST_PASSWORD}@{HOST}:{AMQP_PORT}/%2F",
    "QCTL_TEST_RABBITMQ_MANAGEMENT_URL": MANAGEMENT_URL,
}

START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0

CONFIG = f"""\
# Written by tools/harness/rabbitmq.py; rewritten on every start.
listeners.tcp.1 = {HOST}:{AMQP_PORT}
management.tcp.ip = {HOST}
management.tcp.port = {MANAGEMENT_PORT}
# guest may connect over 127.0.0.1 (the only interface we listen on anyway).
loopback_users = none
# Refresh management stats every second so tests see counters move quickly.
collect_statistics_interval = 1000
# The main log file has everything; the console (console.log) only needs to
# catch failures that happen before logging is set up.
log.console = false
log.file.level = info
"""

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


# --- paths -------------------------------------------------------------------

def home() -> Path:
    return broker_dir(NAME)


def pid_file() -> Path:
    return home() / "rabbitmq.pid"


def console_log() -> Path:
    return home() / "console.log"


def node_log() -> Path:
    return home() / "log" / f"{NODE}.log"


# --- environment -------------------------------------------------------------

def cli_env() -> dict[str, str]:
    """Environment for ``rabbitmqctl`` & co. to reach our node (cookie via HOME)."""
    root = home()
    env_conf = root / "rabbitmq-env.conf"
    if not env_conf.exists():
        # An empty private env file, so /etc/rabbitmq/rabbitmq-env.conf is never sourced.
        env_conf.write_text("# intentionally empty: keeps /etc/rabbitmq/rabbitmq-env.conf out\n")
    return dict(
        os.environ,
        HOME=str(root),
        RABBITMQ_NODENAME=NODE,
        RABBITMQ_CONF_ENV_FILE=str(env_conf),
        RABBITMQ_CTL_DIST_PORT_MIN=str(CTL_DIST_PORTS[0]),
        RABBITMQ_CTL_DIST_PORT_MAX=str(CTL_DIST_PORTS[1]),
        # Only matters if this process is the one that starts epmd.
        ERL_EPMD_ADDRESS=HOST,
    )


def server_env() -> dict[str, str]:
    root = home()
    return dict(
        cli_env(),
        RABBITMQ_NODE_IP_ADDRESS=HOST,
        RABBITMQ_NODE_PORT=str(AMQP_PORT),
        RABBITMQ_DIST_PORT=str(DIST_PORT),
        RABBITMQ_MNESIA_BASE=str(root / "mnesia"),
        RABBITMQ_LOG_BASE=str(root / "log"),
        RABBITMQ_CONFIG_FILE=str(root / "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(root / "advanced.config"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(root / "enabled_plugins"),
        RABBITMQ_PID_FILE=str(pid_file()),
        # Bind the Erlang distribution listener to loopback too.
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
    )


def write_config() -> None:
    root = home()
    (root / "rabbitmq.conf").write_text(CONFIG)
    # Always written, also so /etc/rabbitmq/advanced.config can never apply.
    (root / "advanced.config").write_text(ADVANCED_CONFIG)
    (root / "enabled_plugins").write_text("[rabbitmq_management].\n")


# --- CLI and HTTP helpers ----------------------------------------------------

def rabbitmqctl(*args: str, timeout: float = 120) -> str:
    """Run ``rabbitmqctl -n <our node> ARGS`` and return its output (raises on failure)."""
    return run([str(RABBITMQCTL), "-n", NODE, *args], env=cli_env(), timeout=timeout).stdout


def api(method: str, path: str, body: Any = None, *, user: str = ADMIN_USER,
        password: str = ADMIN_PASSWORD, timeout: float = 5) -> tuple[int, Any]:
    """Call the management API; returns (status, decoded JSON or None). Never raises on HTTP errors."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(MANAGEMENT_URL + path, data=data, method=method)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, (json.loads(raw) if raw.strip() else None)


def management_node() -> str | None:
    """The node name the management API on our port reports, or None if it does not answer."""
    try:
        status, overview = api("GET", "/api/overview", timeout=2)
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

def running_pid() -> int | None:
    """Pid of our node if it is alive (checked against its command line, not just the pid file)."""
    pid = read_pid(pid_file())
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None
    # The beam's command line carries "-home <our dir>"; a recycled pid will not.
    return pid if str(home()) in cmdline else None


def check_ports_free() -> None:
    for port in (AMQP_PORT, MANAGEMENT_PORT, DIST_PORT):
        if port_open(port):
            raise RuntimeError(f"{NAME}: port {port} is in use by something that is not our node "
                               f"({NODE}, pid file {pid_file()}); stop it or free the port")


def start() -> float:
    """Start the node and wait until AMQP and the management API serve; returns seconds taken."""
    check_ports_free()
    write_config()
    console = console_log()
    console.write_text("")
    started = time.monotonic()
    proc = spawn([str(SERVER)], log_file=console, env=server_env(), cwd=home())
    try:
        wait_until(f"{NAME}: node {NODE} booted", await_startup, timeout=START_TIMEOUT,
                   proc=proc, log_file=console)
        wait_until(f"{NAME}: management API on {MANAGEMENT_URL}", lambda: management_node() == NODE,
                   timeout=START_TIMEOUT, proc=proc, log_file=node_log())
        wait_until(f"{NAME}: AMQP on {HOST}:{AMQP_PORT}", lambda: port_open(AMQP_PORT),
                   timeout=START_TIMEOUT, proc=proc, log_file=node_log())
    except BaseException:
        abort(proc)
        raise
    return time.monotonic() - started


def await_startup() -> bool:
    """True once the node has booted. Fails fast (False) while it is not yet registered with epmd."""
    proc = run([str(RABBITMQCTL), "-n", NODE, "await_startup", "--timeout", str(int(START_TIMEOUT))],
               env=cli_env(), timeout=START_TIMEOUT + 30, check=False)
    return proc.returncode == 0


def abort(proc: subprocess.Popen[bytes]) -> None:
    """Kill a node whose start failed: the beam via its pid file, the wrapper via its process group."""
    stop_pid(pid_file(), grace=10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def ensure_test_user() -> None:
    """Create ``qctl`` (administrator, full rights on ``/``); PUT is idempotent."""
    user = {"password": TEST_PASSWORD, "tags": "administrator"}
    permissions = {"configure": ".*", "write": ".*", "read": ".*"}
    for path, body in ((f"/api/users/{TEST_USER}", user),
                       (f"/api/permissions/%2F/{TEST_USER}", permissions)):
        status, reply = api("PUT", path, body)
        if status not in (201, 204):
            raise RuntimeError(f"{NAME}: PUT {path} answered {status}: {reply}")


def up() -> dict[str, str]:
    apt_install({"rabbitmq-server": str(SERVER)})
    if running_pid() is not None and management_node() == NODE:
        log(f"{NAME}: already running (pid {running_pid()})")
    else:
        if running_pid() is not None:
            # Alive but not serving (e.g. still booting from another caller): let it finish.
            wait_until(f"{NAME}: existing node serving", lambda: management_node() == NODE,
                       timeout=START_TIMEOUT, log_file=node_log())
        else:
            seconds = start()
            log(f"{NAME}: node {NODE} up in {seconds:.1f}s (pid {running_pid()})")
    ensure_test_user()
    update_env(ENV)
    return dict(ENV)


def down() -> None:
    pid = running_pid()
    remove_env(list(ENV))
    if pid is None:
        pid_file().unlink(missing_ok=True)
        return
    # A clean stop first (flushes quorum/stream state), then signals via the pid file.
    stopped = run([str(RABBITMQCTL), "-n", NODE, "stop"], env=cli_env(), timeout=STOP_TIMEOUT,
                  check=False)
    deadline = time.monotonic() + STOP_TIMEOUT
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        log(f"{NAME}: rabbitmqctl stop did not stop pid {pid} ({stopped.stdout.strip()}); signalling")
        stop_pid(pid_file(), grace=20)
    pid_file().unlink(missing_ok=True)
    log(f"{NAME}: stopped (pid {pid})")


def status() -> str:
    pid = running_pid()
    if pid is None:
        return f"{NAME}: stopped"
    serving = "serving" if management_node() == NODE else "NOT serving"
    return (f"{NAME}: running pid {pid}, {serving}, node {NODE}, amqp {HOST}:{AMQP_PORT}, "
            f"management {MANAGEMENT_URL}")
