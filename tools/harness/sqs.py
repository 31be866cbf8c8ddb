"""A private SQS-compatible server (ElasticMQ) for qctl's tests, run from Maven Central jars.

There is no Docker here and no SQS emulator in Debian, so ElasticMQ's server module
(``org.elasticmq:elasticmq-server_2.13``, about 39 jars: Scala, Pekko HTTP) is resolved with Maven from
``tools/sqs-runtime/pom.xml`` into ``.brokers/sqs-runtime/lib``, the way kafka.py resolves Kafka, and
run with the machine's Java 17 as ``org.elasticmq.server.Main``.

* ``up()``: one JVM serving the SQS query and JSON protocols on 127.0.0.1:19324, config and log under
  ``.brokers/sqs/``.  ``QCTL_TEST_SQS_URL=sqs+http://127.0.0.1:19324``.
* Queue definitions (names, attributes, redrive policies) are written to ``.brokers/sqs/queues.conf``
  (ElasticMQ's ``queues-storage``) and come back after a restart.  Messages live in memory only: the
  H2-backed ``messages-storage`` crashes on message-move tasks (StartMessageMoveTask, what a DLQ
  redrive uses), so it stays off and ``restart`` loses messages, like a real queue purge.
* JVM flags: C1 only (``TieredStopAtLevel=1``), the serial GC, small thread stacks and a 256 MiB heap
  -- a 2-core box that also runs Kafka and RabbitMQ.  It serves 2-3 s after the JVM starts here (up to
  5.5 s on a loaded machine); resolving the jars the first time takes ~18 s with an empty ~/.m2.

Ready means an HTTP ``GET /?Action=ListQueues`` answers 200.  Standard library only.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from .common import (
    BROKERS_DIR,
    REPO,
    broker_dir,
    log,
    maven_resolve,
    port_open,
    read_pid,
    remove_env,
    spawn,
    stop_pid,
    update_env,
    wait_until,
    which,
)

NAME = "sqs"
HOST = "127.0.0.1"
PORT = 19324
ENDPOINT = f"http://{HOST}:{PORT}"
ENV = {"QCTL_TEST_SQS_URL": f"sqs+http://{HOST}:{PORT}"}

POM = REPO / "tools" / "sqs-runtime" / "pom.xml"
LIB = BROKERS_DIR / "sqs-runtime" / "lib"
MAIN_CLASS = "org.elasticmq.server.Main"
JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k", "-Xmx256m"]
START_TIMEOUT = 60.0


def home() -> Path:
    return broker_dir(NAME)


def pid_file() -> Path:
    return home() / "elasticmq.pid"


def log_file() -> Path:
    return home() / "elasticmq.log"


def conf_file() -> Path:
    return home() / "elasticmq.conf"


def config() -> str:
    return f"""\
# Written by tools/harness/sqs.py; rewritten on every start.
include classpath("application.conf")

node-address {{ protocol = http, host = {HOST}, port = {PORT}, context-path = "" }}
rest-sqs {{ enabled = true, bind-port = {PORT}, bind-hostname = "{HOST}", sqs-limits = strict }}
rest-stats {{ enabled = false }}
# Queue definitions survive restarts; messages do not (no messages-storage: H2 crashes on move tasks).
queues-storage {{ enabled = true, path = "{home() / 'queues.conf'}" }}
pekko.loglevel = "INFO"
"""


def command() -> list[str]:
    return [which("java") or "/usr/bin/java", *JVM_FLAGS, f"-Dconfig.file={conf_file()}",
            "-cp", f"{LIB}/*", MAIN_CLASS]


def running_pid() -> int | None:
    """Our live server's pid: the JVM's command line names our config file."""
    pid = read_pid(pid_file())
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if f"-Dconfig.file={conf_file()}".encode() in cmdline else None


def serving() -> bool:
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/?Action=ListQueues", timeout=2) as response:
            status: int = response.status
            return status == 200
    except (OSError, urllib.error.URLError):
        return False


def start() -> float:
    """Start ElasticMQ and wait until ListQueues answers; returns the seconds it took."""
    if port_open(PORT):
        raise RuntimeError(f"{NAME}: {HOST}:{PORT} is in use but {pid_file()} names no live server; "
                           "stop whatever listens there before starting sqs")
    maven_resolve(POM, LIB, label=NAME)
    conf_file().write_text(config())
    started = time.monotonic()
    proc = spawn(command(), log_file=log_file(), cwd=home())
    pid_file().write_text(f"{proc.pid}\n")
    try:
        wait_until(f"{NAME}: ListQueues on {ENDPOINT}", serving, timeout=START_TIMEOUT, proc=proc,
                   log_file=log_file())
    except BaseException:
        stop_pid(pid_file(), grace=5)
        raise
    return time.monotonic() - started


def up() -> dict[str, str]:
    if running_pid() is None:
        log(f"{NAME}: ElasticMQ serving on {ENDPOINT} after {start():.1f}s (pid {running_pid()})")
    else:
        wait_until(f"{NAME}: ListQueues on {ENDPOINT}", serving, timeout=START_TIMEOUT, log_file=log_file())
    update_env(ENV)
    return dict(ENV)


def terminate() -> None:
    """SIGTERM the server and wait until its port closes; env and queue definitions are kept."""
    pid = running_pid()
    if pid is None:
        pid_file().unlink(missing_ok=True)
        return
    stop_pid(pid_file(), grace=20)
    wait_until(f"{NAME}: {HOST}:{PORT} to close", lambda: not port_open(PORT), timeout=15)
    log(f"{NAME}: stopped (pid {pid})")


def down() -> None:
    remove_env(list(ENV))
    terminate()


def status() -> str:
    pid = running_pid()
    if pid is None:
        return f"{NAME}: stopped"
    return f"{NAME}: running pid {pid}, {'serving' if serving() else 'NOT serving'} on {ENDPOINT}"
