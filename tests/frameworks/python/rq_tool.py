"""RQ producer, worker runs and bulk helpers for qctl's tests, run in .brokers/frameworks-venv.

    python rq_tool.py enqueue QUEUE OK FAILING EXC MESSAGE   Queue.enqueue_many (one pipeline)
    python rq_tool.py work QUEUE FAIL [WORKERS [FORK]]       `rq worker --burst` (SimpleWorker; FORK=1: the
                                                             default forking Worker), report counts
    python rq_tool.py bulk-failed QUEUE N EXC MESSAGE [WORKERS]  enqueue_many + failing burst workers
    python rq_tool.py bulk-failed-direct QUEUE N EXC MESSAGE  RQ's failure handling without running the jobs
    python rq_tool.py requeue QUEUE                          FailedJobRegistry.requeue for every failed job

Every command prints one JSON line.  REDIS_URL picks the Redis (the fixtures use db 7); FAIL=1 runs the
workers with QCTL_JOBS_FAIL=1, so ``rq_jobs.flaky`` jobs raise EXC(MESSAGE) and land in ``rq:failed:<q>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq_jobs import flaky

HERE = Path(__file__).resolve().parent
BATCH = 1000


def connection() -> Redis:
    return Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:16379/7"))


def enqueue(queue: Queue, ok: int, failing: int, exc: str, message: str) -> int:
    specs = [Queue.prepare_data("rq_jobs.succeed", (i,)) for i in range(ok)]
    specs += [Queue.prepare_data("rq_jobs.flaky", (exc, message)) for _ in range(failing)]
    for start in range(0, len(specs), BATCH):
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many(specs[start:start + BATCH], pipeline=pipe)
            pipe.execute()
    return len(specs)


def counts(queue: Queue) -> tuple[int, int]:
    finished = FinishedJobRegistry(queue.name, connection=queue.connection).count
    failed = FailedJobRegistry(queue.name, connection=queue.connection).count
    return finished, failed


def work(queue: Queue, fail: bool, workers: int = 1, level: str = "WARNING", fork: bool = False) -> dict[str, float]:
    """``rq worker --burst`` processes until the queue is empty; completions from RQ's own registries."""
    started = time.monotonic()
    finished, failed = counts(queue)
    env = dict(os.environ, QCTL_JOBS_FAIL="1" if fail else "0", PYTHONPATH=str(HERE))
    rq = str(Path(sys.executable).with_name("rq"))
    # SimpleWorker runs jobs in the worker process: no fork per job (~10x faster here), same Redis data.
    worker_class = [] if fork else ["--worker-class", "rq.worker.SimpleWorker"]
    command = [rq, "worker", "--burst", "--logging_level", level,
               "--url", env.get("REDIS_URL", "redis://127.0.0.1:16379/7"),
               *worker_class, "--disable-job-desc-logging", queue.name]
    procs = [subprocess.Popen(command, env=env, cwd=HERE, stdout=subprocess.DEVNULL) for _ in range(workers)]
    codes = [proc.wait() for proc in procs]
    if any(codes):
        raise SystemExit(f"rq worker exited {codes}")
    finished_after, failed_after = counts(queue)
    return {"completed": finished_after - finished, "failed": failed_after - failed,
            "seconds": time.monotonic() - started}


def bulk_failed_direct(queue: Queue, n: int, exc: str, message: str) -> dict[str, float]:
    """N failed jobs at pipeline speed: RQ's own Job.create/save and Job._handle_failure (what a worker
    calls on an exception), fed one real traceback, without running each job.  The Redis data is the
    worker's, except that no worker name or execution is recorded."""
    started = time.monotonic()
    os.environ["QCTL_JOBS_FAIL"] = "1"
    try:
        flaky(exc, message)
    except Exception:
        exc_string = traceback.format_exc()
    queue.connection.sadd(queue.redis_queues_keys, queue.key)
    for start in range(0, n, BATCH):
        with queue.connection.pipeline() as pipe:
            now = datetime.now(UTC)
            for _ in range(min(BATCH, n - start)):
                job = Job.create("rq_jobs.flaky", args=(exc, message), connection=queue.connection,
                                 origin=queue.name)
                job.started_at = job.ended_at = now
                job.save(pipeline=pipe)
                job.set_status(JobStatus.FAILED, pipeline=pipe)
                job._handle_failure(exc_string, pipeline=pipe, worker_name="qctl-bulk")
            pipe.execute()
    return {"failed": n, "seconds": time.monotonic() - started}


def requeue(queue: Queue) -> dict[str, float]:
    """What ``rq requeue --all --queue Q`` does: FailedJobRegistry.requeue for each failed job id."""
    started = time.monotonic()
    registry = FailedJobRegistry(queue.name, connection=queue.connection)
    ids = registry.get_job_ids()
    for job_id in ids:
        registry.requeue(job_id)
    return {"requeued": len(ids), "seconds": time.monotonic() - started}


def main(argv: list[str]) -> dict[str, float]:
    command, name, *args = argv
    queue = Queue(name, connection=connection())
    if command == "enqueue":
        started = time.monotonic()
        added = enqueue(queue, int(args[0]), int(args[1]), args[2], args[3])
        return {"enqueued": added, "seconds": time.monotonic() - started}
    if command == "work":
        return work(queue, args[0] == "1", int(args[1]) if len(args) > 1 else 1,
                    fork=len(args) > 2 and args[2] == "1")
    if command == "bulk-failed":
        started = time.monotonic()
        enqueue(queue, 0, int(args[0]), args[1], args[2])
        added = time.monotonic() - started
        # CRITICAL: no traceback logged per failure (the tracebacks are still stored with the jobs).
        result = work(queue, True, int(args[3]) if len(args) > 3 else 2, level="CRITICAL")
        return {**result, "enqueue_seconds": added, "seconds": time.monotonic() - started}
    if command == "bulk-failed-direct":
        return bulk_failed_direct(queue, int(args[0]), args[1], args[2])
    if command == "requeue":
        return requeue(queue)
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
