"""Real job-framework producers and workers for qctl's tests: RQ, Celery, Sidekiq and BullMQ.

Every function runs the framework's own code as a subprocess -- RQ and Celery in the harness's
``.brokers/frameworks-venv`` (``tests/frameworks/python/``), Sidekiq 6.4 from Debian with Ruby
(``tests/frameworks/sidekiq/``), BullMQ with node (``tests/frameworks/bullmq/``) -- against the harness
Redis, one database each (``DATABASES``: Sidekiq 5, BullMQ 6, RQ 7, Celery 8).  Call ``frameworks_up()``
first (``tools/brokers up redis frameworks``: installs whatever is missing).

Failing jobs fail for real: the job functions raise the exception class you name while the worker runs
with ``fail=True`` (``QCTL_JOBS_FAIL=1``) and complete when a worker runs with ``fail=False`` -- so a
test can make failed jobs, let qctl retry them, then run a worker and check ``WorkResult.completed``.

Databases are shared by every test of a framework: use a fresh queue name per test
(``unique_queue()``); set sizes reported here (Sidekiq retry/dead, Celery unacked) are per queue where
the framework allows it.

Bulk helpers (scale benchmarks), each returning a ``Timing``.  Rates measured on the 2-core machine with
Kafka and RabbitMQ running, at 100,000 jobs (Sidekiq, Celery: 50,000); ~20% better at 20,000:

===========  ===========================================================  ===========================
framework    N failed jobs                                                the framework's own retry
===========  ===========================================================  ===========================
RQ           ``rq_bulk_failed(direct=True)``: 3,600/s (Job.create +       ``rq_requeue_all``:
             Job._handle_failure in pipelines, one real traceback);       FailedJobRegistry.requeue,
             ``direct=False``: enqueue_many + 2 SimpleWorkers, ~480/s     1,700/s
Sidekiq      ``sidekiq_bulk_failed``: push_bulk (~110,000/s) + two        ``sidekiq_retry_all``:
             failing ``sidekiq -c 10`` processes, 1,000/s                 DeadSet/RetrySet#retry_all,
                                                                          1,800/s
BullMQ       ``bullmq_bulk_failed``: addBulk + a failing Worker with      ``bullmq_retry_failed``:
             concurrency 200, 4,600/s                                     queue.retryJobs, 160,000/s
Celery       ``celery_bulk_unacked``: send_task + kombu's consumer        ``celery_restore_unacked``:
             dying unacked, 830/s end to end; Celery keeps no failed      kombu QoS.restore_visible,
             set on Redis, unacked messages are what a crash leaves       2,300/s
===========  ===========================================================  ===========================

So 500,000 failed jobs take about 2.5 min (RQ direct), 8 min (Sidekiq), 2 min (BullMQ), 10 min (Celery).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.conftest import ENV_FILE, brokers_up

HERE = Path(__file__).resolve().parent
PYTHON_DIR = HERE / "python"
SIDEKIQ_DIR = HERE / "sidekiq"
BULLMQ_DIR = HERE / "bullmq"
DATABASES = {"sidekiq": 5, "bullmq": 6, "rq": 7, "celery": 8}
TIMEOUT = 600.0


@dataclass(frozen=True)
class WorkResult:
    """What one worker run did: jobs that completed, jobs that failed, wall time."""

    completed: int
    failed: int
    seconds: float


@dataclass(frozen=True)
class Timing:
    """A bulk operation: how many items, how long, and the rate."""

    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


# --- plumbing -----------------------------------------------------------------------------------------

def frameworks_up() -> dict[str, str]:
    """Start the harness Redis and install the frameworks (``tools/brokers up redis frameworks``)."""
    return brokers_up("redis", "frameworks")


def _env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    return dict(pairs)


URLS: dict[str, str] = {}  # framework -> Redis URL, instead of the harness's (bench/frameworks.py runs its own)


def redis_url(framework: str) -> str:
    """The Redis URL (harness Redis, the framework's database, unless ``URLS`` says) its producers and workers use."""
    return URLS.get(framework) or _env()[f"QCTL_TEST_{framework.upper()}_URL"]


def client(framework: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url(framework))


CREATED: list[tuple[str, str]] = []  # (framework, queue) named by unique_queue(framework=...), for forget_all()


def unique_queue(prefix: str = "qctl", framework: str | None = None) -> str:
    """A fresh queue name; with ``framework``, remembered so that ``forget_all()`` deletes its jobs afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    for one in (framework,) if framework else DATABASES:
        CREATED.append((one, name))
    return name


def forget(framework: str, queue: str) -> None:
    """Delete a queue's keys and jobs in a framework's database (the databases are shared by every test)."""
    db = client(framework)
    keys = [k for k in db.scan_iter(match=f"*{queue}*", count=5000)]
    if framework == "rq":
        ids = set(db.lrange(f"rq:queue:{queue}", 0, -1))
        for registry in ("failed", "finished", "wip", "scheduled", "deferred", "canceled"):
            ids |= {member.split(b":", 1)[0] for member in db.zrange(f"rq:{registry}:{queue}", 0, -1)}
        keys += [k for i in ids for k in (b"rq:job:" + i, b"rq:results:" + i, b"rq:job:" + i + b":dependents")]
        db.srem("rq:queues", f"rq:queue:{queue}")
    elif framework == "sidekiq":
        db.srem("queues", queue)
        for name in ("dead", "retry", "schedule"):
            doomed = [m for m, _ in db.zscan_iter(name, count=2000) if f'"queue":"{queue}"'.encode() in m]
            for start in range(0, len(doomed), 1000):
                db.zrem(name, *doomed[start:start + 1000])
    elif framework == "celery":
        stale = [tag for tag, value in db.hscan_iter("unacked", count=2000) if json.loads(value)[2] == queue]
        if stale:
            db.hdel("unacked", *stale)
            db.zrem("unacked_index", *stale)
    for start in range(0, len(keys), 5000):
        db.unlink(*keys[start:start + 5000])


def forget_all() -> None:
    while CREATED:
        forget(*CREATED.pop())


def _run(framework: str, command: Sequence[str], *, cwd: Path, extra: dict[str, str] | None = None,
         timeout: float = TIMEOUT) -> dict[str, Any]:
    """Run a tool script; return the JSON of its last stdout line, or raise with its output."""
    env = dict(os.environ, REDIS_URL=redis_url(framework), PYTHONPATH=str(PYTHON_DIR), **(extra or {}))
    proc = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _python(framework: str, script: str, *args: object, timeout: float = TIMEOUT) -> dict[str, Any]:
    python = _env()["QCTL_TEST_FRAMEWORKS_PYTHON"]
    return _run(framework, [python, script, *map(str, args)], cwd=PYTHON_DIR, timeout=timeout)


def _work(result: dict[str, Any]) -> WorkResult:
    return WorkResult(int(result["completed"]), int(result["failed"]), float(result["seconds"]))


# --- RQ (db 7) ----------------------------------------------------------------------------------------

def rq_enqueue(queue: str, *, ok: int = 0, failing: int = 0, exc: str = "ValueError",
               message: str = "qctl test failure") -> int:
    """Enqueue ``ok`` jobs that succeed and ``failing`` jobs (``rq_jobs.flaky``) that raise ``exc(message)``
    under a failing worker; returns how many were enqueued (``Queue.enqueue_many``)."""
    return int(_python("rq", "rq_tool.py", "enqueue", queue, ok, failing, exc, message)["enqueued"])


def rq_work(queue: str, *, fail: bool, workers: int = 1, fork: bool = False) -> WorkResult:
    """``rq worker --burst`` until the queue is empty (SimpleWorker; ``fork=True``: RQ's default forking
    Worker, ~10x slower, same Redis data).  ``fail=True``: the flaky jobs raise and land in
    ``rq:failed:<queue>``; ``fail=False``: they complete (e.g. after qctl retried them)."""
    return _work(_python("rq", "rq_tool.py", "work", queue, int(fail), workers, int(fork)))


def rq_bulk_failed(queue: str, n: int, *, exc: str = "ValueError", message: str = "qctl test failure",
                   direct: bool = True, workers: int = 2) -> Timing:
    """``n`` jobs in ``rq:failed:<queue>``.  ``direct``: RQ's own Job.create + Job._handle_failure (the
    worker's failure path) in pipelines, without running each job; otherwise real failing burst workers."""
    if direct:
        result = _python("rq", "rq_tool.py", "bulk-failed-direct", queue, n, exc, message)
    else:
        result = _python("rq", "rq_tool.py", "bulk-failed", queue, n, exc, message, workers)
    return Timing(int(result["failed"]), float(result["seconds"]))


def rq_requeue_all(queue: str) -> Timing:
    """RQ's own retry: ``FailedJobRegistry.requeue`` for every failed job (what ``rq requeue --all`` does)."""
    result = _python("rq", "rq_tool.py", "requeue", queue)
    return Timing(int(result["requeued"]), float(result["seconds"]))


# --- Celery (db 8) ------------------------------------------------------------------------------------

def celery_send(queue: str, n: int, *, priorities: Sequence[int] = (0, 3, 6, 9), seconds: float = 0.0) -> int:
    """Send ``n`` tasks with priorities cycling over ``priorities``: priority p > 0 waits in kombu's
    ``<queue>\\x06\\x16<p>`` list.  ``seconds > 0`` sends ``qctl.sleepy`` tasks of that length."""
    spec = ",".join(str(p) for p in priorities)
    return int(_python("celery", "celery_tool.py", "send", queue, n, spec, seconds)["sent"])


def celery_kill_mid_task(queue: str, *, seconds: float = 30.0) -> dict[str, int]:
    """A ``celery worker`` (acks_late, solo pool) starts a sleepy task and is SIGKILLed while it runs:
    kombu's ``unacked`` hash and ``unacked_index`` keep the entry.  Returns their sizes (and this
    queue's share, ``unacked_queue``)."""
    result = _python("celery", "celery_tool.py", "kill-mid-task", queue, seconds)
    return {key: int(value) for key, value in result.items()}


def celery_work(queue: str, *, fail: bool = False, timeout: float = 120.0) -> WorkResult:
    """A Celery worker (threads pool) consumes ``queue`` until nothing waits or runs; counts from Celery's
    task_success/task_failure signals."""
    return _work(_python("celery", "celery_tool.py", "work", queue, int(fail), timeout, timeout=timeout + 60))


def celery_bulk_unacked(queue: str, n: int) -> Timing:
    """``n`` tasks left in ``unacked`` by a kombu consumer that dies without acking (a crashed worker)."""
    result = _python("celery", "celery_tool.py", "bulk-unacked", queue, n)
    return Timing(int(result["unacked_added"]), float(result["seconds"]))


def celery_restore_unacked(queue: str) -> Timing:
    """kombu's own recovery: ``QoS.restore_visible`` with visibility_timeout 0 puts every unacked message
    of the db back on its queue."""
    result = _python("celery", "celery_tool.py", "restore", queue)
    return Timing(int(result["restored"]), float(result["seconds"]))


# --- Sidekiq (db 5) -----------------------------------------------------------------------------------

def _ruby(*args: object, timeout: float = TIMEOUT) -> dict[str, Any]:
    return _run("sidekiq", ["ruby", "tool.rb", *map(str, args)], cwd=SIDEKIQ_DIR, timeout=timeout)


def sidekiq_push(queue: str, *, ok: int = 0, failing: int = 0, error: str = "ArgumentError",
                 message: str = "qctl test failure", retry: bool | int = True) -> int:
    """``Sidekiq::Client.push_bulk`` of QctlJob: ``failing`` jobs raise ``error`` under a failing worker.
    ``retry=True``: the first failure lands in ``retry``; ``retry=0``: straight into ``dead``."""
    retry_text = str(retry).lower() if isinstance(retry, bool) else str(retry)
    return int(_ruby("push", queue, ok, failing, error, message, retry_text)["pushed"])


def sidekiq_sizes(queue: str) -> dict[str, int]:
    """The queue's length and how many of its jobs are in the retry and dead sets."""
    result = _ruby("sizes", queue)
    return {key: int(result[key]) for key in ("queue", "retry", "dead")}


def sidekiq_work(queue: str, *, fail: bool, concurrency: int = 5, processes: int = 1, quiet: bool = False,
                 timeout: float = 300.0) -> WorkResult:
    """Run ``sidekiq -r ./worker.rb -q QUEUE`` until the queue is empty and no job finished for a second,
    then SIGTERM it (Sidekiq finishes in-flight jobs); completions from the worker's counting middleware."""
    reports = [Path(tempfile.mkdtemp(prefix="qctl-sidekiq-")) / "report.json" for _ in range(processes)]
    started = time.monotonic()
    procs = [_spawn_sidekiq(queue, report, fail=fail, concurrency=concurrency, quiet=quiet) for report in reports]
    try:
        _wait_drained(queue, reports, procs, deadline=started + timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    totals = [_report(report) for report in reports]
    return WorkResult(sum(t["completed"] for t in totals), sum(t["failed"] for t in totals),
                      time.monotonic() - started)


def _spawn_sidekiq(queue: str, report: Path, *, fail: bool, concurrency: int, quiet: bool) -> subprocess.Popen[str]:
    env = dict(os.environ, REDIS_URL=redis_url("sidekiq"), QCTL_JOBS_FAIL="1" if fail else "0",
               QCTL_SIDEKIQ_REPORT=str(report), QCTL_SIDEKIQ_QUIET="1" if quiet else "0")
    log = open(report.with_name("sidekiq.log"), "w")  # noqa: SIM115 -- the child owns it
    return subprocess.Popen(["sidekiq", "-r", "./worker.rb", "-q", queue, "-c", str(concurrency), "-t", "10"],
                            cwd=SIDEKIQ_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)


def _report(report: Path) -> dict[str, int]:
    try:
        data: dict[str, int] = json.loads(report.read_text())
    except (OSError, ValueError):
        return {"completed": 0, "failed": 0}
    return data


def _wait_drained(queue: str, reports: list[Path], procs: list[subprocess.Popen[str]], *, deadline: float) -> None:
    db = client("sidekiq")
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        for proc, report in zip(procs, reports, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"sidekiq exited {proc.returncode}:\n"
                                   f"{report.with_name('sidekiq.log').read_text()[-3000:]}")
        done = sum(sum(_report(report).values()) for report in reports)
        if done != last:
            last, stable_since = done, time.monotonic()
        started_all = all(report.exists() for report in reports)
        if started_all and db.llen(f"queue:{queue}") == 0 and time.monotonic() - stable_since > 1.0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"sidekiq did not drain queue:{queue} in time")


def sidekiq_bulk_failed(queue: str, n: int, *, dead: bool = True, error: str = "ArgumentError",
                        message: str = "qctl test failure", processes: int = 2, concurrency: int = 10) -> Timing:
    """``n`` jobs failed by real Sidekiq processes: into ``dead`` (``retry: 0``) or ``retry``."""
    started = time.monotonic()
    sidekiq_push(queue, failing=n, error=error, message=message, retry=0 if dead else True)
    result = sidekiq_work(queue, fail=True, concurrency=concurrency, processes=processes, quiet=True,
                          timeout=TIMEOUT * 4)
    return Timing(result.failed, time.monotonic() - started)


def sidekiq_retry_all(which: str = "dead") -> Timing:
    """Sidekiq's own bulk retry: ``DeadSet#retry_all`` or ``RetrySet#retry_all`` (every queue of the db)."""
    result = _ruby("retry-all", which)
    return Timing(int(result["retried"]), float(result["seconds"]))


# --- BullMQ (db 6) ------------------------------------------------------------------------------------

def _node(*args: object, timeout: float = TIMEOUT) -> dict[str, Any]:
    return _run("bullmq", ["node", "jobs.mjs", *map(str, args)], cwd=BULLMQ_DIR, timeout=timeout)


def bullmq_add(queue: str, *, ok: int = 0, failing: int = 0, error_name: str = "Error",
               message: str = "qctl test failure") -> int:
    """``queue.addBulk``: ``failing`` jobs throw ``Error(message)`` named ``error_name`` under a failing worker."""
    return int(_node("add", queue, ok, failing, error_name, message)["added"])


def bullmq_work(queue: str, *, fail: bool, concurrency: int = 1) -> WorkResult:
    """A BullMQ Worker until nothing waits or runs: failures land in ``bull:<queue>:failed``."""
    return _work(_node("work", queue, int(fail), concurrency))


def bullmq_bulk_failed(queue: str, n: int, *, error_name: str = "Error", message: str = "qctl test failure") -> Timing:
    """``n`` jobs in ``bull:<queue>:failed``: addBulk plus a failing Worker with concurrency 200."""
    result = _node("bulk-failed", queue, n, error_name, message)
    return Timing(int(result["failed"]), float(result["seconds"]))


def bullmq_pause(queue: str, paused: bool = True) -> None:
    """``queue.pause()`` (BullMQ 5 renames ``wait`` to ``paused``; new and retried jobs go there) or ``resume()``."""
    _node("pause" if paused else "resume", queue)


def bullmq_retry_failed(queue: str) -> Timing:
    """BullMQ's own bulk retry: ``queue.retryJobs({state: 'failed'})`` until the failed set is empty."""
    result = _node("retry", queue)
    return Timing(int(result["retried"]), float(result["seconds"]))
