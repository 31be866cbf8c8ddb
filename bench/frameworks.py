#!/usr/bin/env python3
"""Benchmark qctl's job-framework redrive on 500,000 failed jobs each in RQ, Sidekiq and BullMQ, next to the
framework's own bulk retry on the same data.

    .venv/bin/python bench/frameworks.py [--jobs 500000] [--frameworks rq,sidekiq,bullmq] [--port 16390]
                                         [--out bench/results/frameworks.md]

It starts a Redis of its own (``redis-server`` on ``--port``, no persistence, in a temporary directory) so
that flushing it and changing SLOWLOG touch nobody's data, and stops it at the end.  Per framework:

1. N failed jobs, made with the framework's own code in bulk (``tests/frameworks/fixtures.py``: RQ's
   ``Job.create`` + ``Job._handle_failure``, real failing Sidekiq processes, ``addBulk`` + a failing BullMQ
   Worker): half raise ``TimeoutError``, half another class.
2. ``qctl redrive DLQ --where "contains(dead_letter.reason, 'Timeout')"``, first with ``--limit 25000`` (the
   peak RSS of a small run), then for the rest.  Wall time, jobs examined and moved per second, peak RSS
   (``/usr/bin/time -v``), and the slowest SLOWLOG entry of qctl's client (SLOWLOG records every command
   over 1 ms during the run).
3. Nothing lost: every TimeoutError job is in the queue exactly once, every other one still failed.
4. The framework's own bulk retry on the other half (``rq requeue --all``, ``DeadSet#retry_all``,
   ``Queue.retryJobs``): time, rate, slowest SLOWLOG entry.
5. RQ: where ``rq requeue --all`` stops -- 1% of the job hashes gone from the registry (expired, rq/rq#1963)
   -- and what qctl does with the same data.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from tests.frameworks import fixtures  # noqa: E402

QCTL = str(REPO / ".venv" / "bin" / "qctl")
JOBS = 500_000
SMALL = int(os.environ.get("QCTL_BENCH_SMALL", "25000"))
WHERE = "contains(dead_letter.reason, 'Timeout')"
DATABASES = {"rq": 1, "sidekiq": 2, "bullmq": 3}


class Server:
    """A redis-server of this benchmark's own."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="qctl-bench-redis-"))
        self.proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        self.version = str(client.info("server")["redis_version"])

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


class SlowLog:
    """The slowest command of one run: qctl's client ("qctl"), or everyone else's."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def start(self) -> None:
        self.client.config_set("slowlog-log-slower-than", 1000)
        self.client.config_set("slowlog-max-len", 100_000)
        self.client.slowlog_reset()

    def slowest_ms(self, *, qctl: bool) -> tuple[float, int]:
        """(slowest ms, entries over 20 ms) of qctl's commands, or of the others' (not this script's)."""
        entries = [e for e in self.client.slowlog_get(100_000)
                   if (e.get("client_name", b"") == b"qctl") == qctl and e.get("client_name", b"") != b"bench"]
        durations = [e["duration"] / 1000 for e in entries]
        return max(durations, default=0.0), sum(1 for d in durations if d > 20)


@dataclass
class Run:
    seconds: float
    rss_mib: float
    result: dict[str, Any]
    slowest_ms: float
    over_20ms: int
    examined: int = 0


@dataclass
class Outcome:
    framework: str
    build: list[fixtures.Timing] = field(default_factory=list)
    small: Run | None = None
    full: Run | None = None
    verified: str = ""
    own: fixtures.Timing | None = None
    own_command: str = ""
    own_slowest_ms: float = 0.0
    own_over_20ms: int = 0
    load: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    qctl_redis_cpu: float = 0.0  # seconds of Redis CPU (user + sys) during qctl's two runs
    own_redis_cpu: float = 0.0  # ... during the framework's own retry


def redis_cpu(db: redis.Redis) -> float:
    """CPU seconds the benchmark's Redis has used so far (it serves nobody else)."""
    info = db.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str, int]:
    """(seconds, peak RSS MiB, stdout, exit code) of one command, RSS from /usr/bin/time -v."""
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    rss = next(int(line.rsplit(":", 1)[1]) for line in proc.stderr.splitlines() if "Maximum resident" in line)
    return seconds, rss / 1024, proc.stdout, proc.returncode


# --- per framework: where its jobs are --------------------------------------------------------------------

@dataclass
class Shape:
    dlq: str
    build: Callable[[str, int, str], fixtures.Timing]
    failed: Callable[[redis.Redis, str], set[bytes]]  # ids of the jobs in its failed/dead set
    waiting: Callable[[redis.Redis, str], list[bytes]]  # ids of the jobs in its queue
    own: Callable[[str], fixtures.Timing]
    own_command: str


def _sidekiq_ids(members: list[bytes], queue: str) -> list[bytes]:
    jobs = (json.loads(m) for m in members)
    return [str(job["jid"]).encode() for job in jobs if job.get("queue") == queue]


def _rq_requeue_cli(queue: str) -> fixtures.Timing:
    """The real `rq requeue --queue Q --all` from the frameworks venv."""
    rq = str(Path(fixtures._env()["QCTL_TEST_FRAMEWORKS_PYTHON"]).with_name("rq"))
    count = fixtures.client("rq").zcard(f"rq:failed:{queue}")
    started = time.perf_counter()
    proc = subprocess.run([rq, "requeue", "--url", fixtures.redis_url("rq"), "--queue", queue, "--all"],
                          capture_output=True, text=True, cwd=fixtures.PYTHON_DIR)
    if proc.returncode != 0:
        raise RuntimeError(f"rq requeue failed: {proc.stderr[-2000:]}")
    return fixtures.Timing(int(count), time.perf_counter() - started)


SHAPES = {
    "rq": Shape(
        dlq="{q}:failed",
        build=lambda q, n, exc: fixtures.rq_bulk_failed(q, n, exc=exc),
        failed=lambda db, q: set(db.zrange(f"rq:failed:{q}", 0, -1)),
        waiting=lambda db, q: list(db.lrange(f"rq:queue:{q}", 0, -1)),
        own=_rq_requeue_cli, own_command="rq requeue --queue Q --all"),
    "sidekiq": Shape(
        dlq="{q}:dead",
        build=lambda q, n, exc: fixtures.sidekiq_bulk_failed(q, n, dead=True, error=f"Qctl{exc}"),
        failed=lambda db, q: set(_sidekiq_ids(db.zrange("dead", 0, -1), q)),
        waiting=lambda db, q: _sidekiq_ids(db.lrange(f"queue:{q}", 0, -1), q),
        own=lambda q: fixtures.sidekiq_retry_all("dead"), own_command="Sidekiq::DeadSet.new.retry_all"),
    "bullmq": Shape(
        dlq="{q}:failed",
        build=lambda q, n, exc: fixtures.bullmq_bulk_failed(q, n, error_name=exc),
        failed=lambda db, q: set(db.zrange(f"bull:{q}:failed", 0, -1)),
        waiting=lambda db, q: list(db.lrange(f"bull:{q}:wait", 0, -1)),
        own=fixtures.bullmq_retry_failed, own_command="queue.retryJobs({state: 'failed'})"),
}
OTHER_ERROR = {"rq": "ValueError", "sidekiq": "ArgumentError", "bullmq": "TypeError"}


def qctl_redrive(url: str, dlq: str, slow: SlowLog, *, limit: int | None = None) -> Run:
    argv = [QCTL, "redrive", "-u", url, dlq, "--where", WHERE, "-q", "-o", "json"]
    if limit is not None:
        argv += ["--limit", str(limit)]
    slow.start()
    seconds, rss, out, code = timed(argv)
    if code != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {code}: {out}")
    slowest, over = slow.slowest_ms(qctl=True)
    return Run(seconds, rss, json.loads(out), slowest, over)


def bench(framework: str, server: Server, jobs: int) -> Outcome:
    shape = SHAPES[framework]
    url = server.url(DATABASES[framework])
    fixtures.URLS[framework] = url
    db = redis.Redis.from_url(url, client_name="bench", socket_timeout=900)
    db.flushdb(asynchronous=True)
    outcome = Outcome(framework)
    queue = f"bench-{framework}"
    dlq = shape.dlq.format(q=queue)
    outcome.build.append(shape.build(queue, jobs // 2, "TimeoutError"))
    timeouts = shape.failed(db, queue)
    outcome.build.append(shape.build(queue, jobs - jobs // 2, OTHER_ERROR[framework]))
    others = shape.failed(db, queue) - timeouts
    assert len(timeouts) == jobs // 2 and len(others) == jobs - jobs // 2, (len(timeouts), len(others))
    slow = SlowLog(db)
    layout_url = f"{url}?layout={framework}"
    outcome.load.append(os.getloadavg()[0])
    cpu = redis_cpu(db)
    outcome.small = qctl_redrive(layout_url, dlq, slow, limit=SMALL)
    outcome.small.examined = jobs
    outcome.qctl_redis_cpu = redis_cpu(db) - cpu
    before = len(shape.failed(db, queue))
    cpu = redis_cpu(db)
    outcome.full = qctl_redrive(layout_url, dlq, slow)
    outcome.qctl_redis_cpu += redis_cpu(db) - cpu
    outcome.full.examined = before
    outcome.load.append(os.getloadavg()[0])
    waiting, failed = shape.waiting(db, queue), shape.failed(db, queue)
    lost = (timeouts | others) - set(waiting) - failed
    doubled = len(waiting) - len(set(waiting))
    both = set(waiting) & failed
    assert set(waiting) == timeouts and failed == others and not doubled and not both and not lost, (
        len(waiting), len(failed), doubled, len(both), len(lost))
    outcome.verified = (f"all {len(timeouts):,} TimeoutError jobs in the queue once each, all {len(others):,} "
                        f"others still in {dlq}: none lost, none in both places")
    slow.start()
    cpu = redis_cpu(db)
    outcome.own = shape.own(queue)
    outcome.own_redis_cpu = redis_cpu(db) - cpu
    outcome.own_command = shape.own_command
    outcome.own_slowest_ms, outcome.own_over_20ms = slow.slowest_ms(qctl=False)
    outcome.load.append(os.getloadavg()[0])
    waiting = shape.waiting(db, queue)
    assert set(waiting) == timeouts | others and len(waiting) == jobs, len(waiting)
    if framework == "rq":
        outcome.notes += rq_where_requeue_stops(server)
    db.flushdb(asynchronous=True)  # millions of keys: freed in the background
    return outcome


def rq_where_requeue_stops(server: Server, n: int = 20_000) -> list[str]:
    """rq/rq#1963: `rq requeue --all` dies on the first job whose hash is gone; qctl finishes."""
    url = server.url(4)
    fixtures.URLS["rq"] = url
    db = redis.Redis.from_url(url, client_name="bench", socket_timeout=900)
    db.flushdb(asynchronous=True)
    queue = "bench-rq-expired"
    fixtures.rq_bulk_failed(queue, n, exc="TimeoutError")
    ids = sorted(db.zrange(f"rq:failed:{queue}", 0, -1))
    gone = ids[:: 100]  # 1%: their hashes expired while the registry still lists them
    db.delete(*(b"rq:job:" + i for i in gone))
    rq = str(Path(fixtures._env()["QCTL_TEST_FRAMEWORKS_PYTHON"]).with_name("rq"))
    proc = subprocess.run([rq, "requeue", "--url", url, "--queue", queue, "--all"], capture_output=True, text=True,
                          cwd=fixtures.PYTHON_DIR)
    requeued = db.llen(f"rq:queue:{queue}")
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    run = subprocess.run([QCTL, "redrive", "-u", f"{url}?layout=rq", f"{queue}:failed", "-q", "-o", "json"],
                         capture_output=True, text=True)
    result = json.loads(run.stdout)
    left = db.zcard(f"rq:failed:{queue}")
    db.flushdb(asynchronous=True)
    return [f"`rq requeue --queue {queue} --all` on {n:,} failed jobs of which {len(gone):,} (1%) have no hash "
            f"any more (expired, rq/rq#1963): exit {proc.returncode} after requeueing {requeued:,} "
            f"(`{last[:160]}`).",
            f"`qctl redrive {queue}:failed` on what was left: moved {result['moved']:,}, left "
            f"{result['failed']:,} in place (exit {run.returncode}: their hash is gone, nothing to retry; "
            f"{left:,} remain in the registry), and finished."]


def report(args: argparse.Namespace, server: Server, outcomes: list[Outcome]) -> str:
    lines = [f"""# Job frameworks benchmark: filtered redrive of {args.jobs:,} failed jobs

Produced by `{shlex.join([".venv/bin/python", "bench/frameworks.py", *sys.argv[1:]])}` on
{datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}, {os.cpu_count()} CPUs (shared with other
people's test runs: the load averages are below), Python {platform.python_version()}, a Redis {server.version}
of the benchmark's own on the same host (loopback).  qctl's step is `redrive DLQ --where "{WHERE}"`: half of the
jobs match.  Each framework's own bulk retry ran on the other half (it cannot filter); rates are jobs per
second of wall time.
"""]
    lines.append("| framework | jobs built (framework's own bulk maker) | qctl: examined / moved | qctl time | "
                 "qctl examined/s | qctl moved/s | framework's own retry | its rate | qctl moved/s ÷ own | "
                 "qctl examined/s ÷ own |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for o in outcomes:
        assert o.small and o.full and o.own
        seconds = o.small.seconds + o.full.seconds
        moved = o.small.result["moved"] + o.full.result["moved"]
        examined = o.full.examined + SMALL  # the small run read past SMALL selected jobs; counted once here
        build = sum(t.count for t in o.build) / sum(t.seconds for t in o.build)
        own_rate = o.own.rate
        lines.append(
            f"| {o.framework} | {sum(t.count for t in o.build):,} at {build:,.0f}/s | {examined:,} / {moved:,} | "
            f"{seconds:.1f} s | {examined / seconds:,.0f} | **{moved / seconds:,.0f}** | `{o.own_command}`: "
            f"{o.own.count:,} in {o.own.seconds:.1f} s | {own_rate:,.0f} | **{moved / seconds / own_rate:.1f}x** | "
            f"{examined / seconds / own_rate:.1f}x |")
    lines.append("")
    lines.append("| framework | slowest qctl step (SLOWLOG) | qctl steps over 20 ms "
                 "| slowest step of the framework's own retry | its steps over 20 ms "
                 "| qctl peak RSS, --limit 25,000 run | qctl peak RSS, full run | "
                 "load average (before, after qctl, after own) |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for o in outcomes:
        assert o.small and o.full
        lines.append(f"| {o.framework} | {max(o.small.slowest_ms, o.full.slowest_ms):.2f} ms | "
                     f"{o.small.over_20ms + o.full.over_20ms} | {o.own_slowest_ms:.2f} ms | {o.own_over_20ms} | "
                     f"{o.small.rss_mib:.0f} MiB | {o.full.rss_mib:.0f} MiB | "
                     f"{', '.join(f'{x:.1f}' for x in o.load)} |")
    lines.append("")
    lines.append("Redis's own CPU (INFO cpu, user + sys, of the benchmark's server, which serves nobody else) per job "
                 "moved: what any client doing the framework's retry must at least cost the server.")
    lines.append("")
    lines.append("| framework | qctl: Redis CPU per job moved | per job examined | framework's own: Redis CPU per job "
                 "retried | qctl's moved/s if its client cost nothing |")
    lines.append("| --- | --- | --- | --- | --- |")
    for o in outcomes:
        assert o.small and o.full and o.own
        moved = o.small.result["moved"] + o.full.result["moved"]
        examined = o.full.examined + SMALL
        lines.append(f"| {o.framework} | {o.qctl_redis_cpu / max(moved, 1) * 1e6:.1f} us | "
                     f"{o.qctl_redis_cpu / max(examined, 1) * 1e6:.1f} us | "
                     f"{o.own_redis_cpu / max(o.own.count, 1) * 1e6:.1f} us | "
                     f"{moved / max(o.qctl_redis_cpu, 1e-9):,.0f} |")
    lines.append("")
    for o in outcomes:
        lines.append(f"* {o.framework}: {o.verified}.")
        lines += [f"* {note}" for note in o.notes]
    lines.append("""
qctl reads a chunk of jobs with pipelined HGETALL (RQ: and its newest results entry) parsed by hiredis, decides
each with `--where` on the client (common shapes as Python closures), and retries the chosen ones in one guarded
script per chunk: the framework's own retry for each job still where it was read.  Steps pace themselves on the
server's clock to about 5 ms.  SLOWLOG recorded every command over 1 ms during each run; "the framework's own"
counts every client but qctl and this script.
""")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--frameworks", default="rq,bullmq,sidekiq")
    parser.add_argument("--port", type=int, default=16390)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "frameworks.md")
    args = parser.parse_args()
    fixtures.frameworks_up()
    server = Server(args.port)
    try:
        outcomes = []
        for framework in args.frameworks.split(","):
            print(f"{framework}: building {args.jobs:,} failed jobs", file=sys.stderr, flush=True)
            outcomes.append(bench(framework, server, args.jobs))
            print(f"{framework}: done {outcomes[-1]}", file=sys.stderr, flush=True)  # kept if a later one fails
        text = report(args, server, outcomes)
    finally:
        server.stop()
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
