"""Celery producer, worker runs and bulk helpers for qctl's tests, run in .brokers/frameworks-venv.

    python celery_tool.py send QUEUE N PRIORITIES [SECONDS]  send_task N ``qctl.ok`` (or ``qctl.sleepy``
                                                            SECONDS > 0), priorities cycling over "0,3,9"
    python celery_tool.py kill-mid-task QUEUE SECONDS       a worker (acks_late, solo pool) takes a sleepy task,
                                                            is SIGKILLed once it runs; reports unacked entries
    python celery_tool.py work QUEUE FAIL [TIMEOUT]         a worker until the queue is empty; completions
    python celery_tool.py bulk-unacked QUEUE N              N tasks left unacked by a consumer that dies
    python celery_tool.py restore QUEUE                     kombu's own restore of unacked messages

Every command prints one JSON line.  REDIS_URL picks the Redis (the fixtures use db 8).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis
from celery.signals import task_failure, task_postrun, task_prerun, task_success
from celery_app import app
from kombu import Connection, Consumer, Exchange, Queue

HERE = Path(__file__).resolve().parent
SEPARATOR = "\x06\x16"   # kombu's default priority separator
PRIORITY_STEPS = range(10)
BATCH = 1000


def url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:16379/8")


def client() -> redis.Redis:
    return redis.Redis.from_url(url())


def priority_lists(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{SEPARATOR}{step}" for step in PRIORITY_STEPS]


def waiting(queue: str) -> int:
    with client().pipeline() as pipe:
        for name in priority_lists(queue):
            pipe.llen(name)
        return sum(pipe.execute())


def unacked(queue: str) -> dict[str, int]:
    """Entries in kombu's ``unacked`` hash (all queues of the db, and this queue's) and ``unacked_index``."""
    db = client()
    mine = sum(1 for raw in db.hvals("unacked") if json.loads(raw)[2] == queue)
    return {"unacked": db.hlen("unacked"), "unacked_queue": mine, "unacked_index": db.zcard("unacked_index")}


def send(queue: str, n: int, priorities: list[int], seconds: float) -> dict[str, Any]:
    started = time.monotonic()
    with app.producer_or_acquire() as producer:
        for i in range(n):
            priority = priorities[i % len(priorities)]
            if seconds > 0:
                app.send_task("qctl.sleepy", args=[seconds], queue=queue, priority=priority, producer=producer)
            else:
                app.send_task("qctl.ok", args=[i], queue=queue, priority=priority, producer=producer)
    return {"sent": n, "seconds": time.monotonic() - started}


def kill_mid_task(queue: str, seconds: float) -> dict[str, Any]:
    """Send one sleepy task, start `celery worker`, SIGKILL it once the task runs."""
    marker = Path(tempfile.mkdtemp(prefix="qctl-celery-")) / "started"
    app.send_task("qctl.sleepy", args=[seconds, str(marker)], queue=queue, priority=0)
    command = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-Q", queue, "--pool", "solo",
               "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
    worker = subprocess.Popen(command, cwd=HERE, env=dict(os.environ, PYTHONPATH=str(HERE)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise SystemExit(f"the celery worker did not start the task (exit {worker.poll()})")
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    return {"killed_pid": worker.pid, **unacked(queue)}


def work(queue: str, fail: bool, timeout: float) -> dict[str, Any]:
    """Run a worker in this process (threads pool) until nothing waits or runs; count from Celery's signals."""
    os.environ["QCTL_JOBS_FAIL"] = "1" if fail else "0"
    counts = {"completed": 0, "failed": 0, "active": 0}
    lock = threading.Lock()

    def bump(key: str, by: int = 1) -> None:
        with lock:
            counts[key] += by

    task_success.connect(lambda **_: bump("completed"), weak=False)
    task_failure.connect(lambda **_: bump("failed"), weak=False)
    task_prerun.connect(lambda **_: bump("active"), weak=False)
    task_postrun.connect(lambda **_: bump("active", -1), weak=False)
    started = time.monotonic()

    def watch() -> None:
        idle_since = None
        while time.monotonic() - started < timeout:
            time.sleep(0.2)
            busy = waiting(queue) > 0 or counts["active"] > 0
            idle_since = None if busy else (idle_since or time.monotonic())
            if idle_since is not None and time.monotonic() - idle_since > 1.0:
                break
        os.kill(os.getpid(), signal.SIGTERM)   # Celery's warm shutdown

    threading.Thread(target=watch, daemon=True).start()
    worker = app.Worker(queues=[queue], pool="threads", concurrency=4, loglevel="WARNING", quiet=True,
                        without_heartbeat=True, without_mingle=True, without_gossip=True)
    worker.start()
    return {"completed": counts["completed"], "failed": counts["failed"], "seconds": time.monotonic() - started}


def bulk_unacked(queue: str, n: int) -> dict[str, Any]:
    """Send N tasks, then take them with kombu's own consumer (what a Celery worker with acks_late and
    a large prefetch does) and exit without acking: all N stay in unacked/unacked_index."""
    started = time.monotonic()
    send(queue, n, [0], 0)
    sent = time.monotonic() - started
    received = 0
    with Connection(url(), transport_options=app.conf.broker_transport_options) as conn:
        def on_message(body: Any, message: Any) -> None:
            nonlocal received
            received += 1

        task_queue = Queue(queue, Exchange(queue), routing_key=queue)
        with Consumer(conn, [task_queue], callbacks=[on_message], no_ack=False, prefetch_count=n):
            while received < n:
                conn.drain_events(timeout=30)
        result = {"unacked_added": received, "send_seconds": sent, "seconds": time.monotonic() - started,
                  **unacked(queue)}
        print(json.dumps(result), flush=True)
        os._exit(0)   # die like a killed worker: no ack, no restore on close


def restore(queue: str) -> dict[str, Any]:
    """kombu's Redis QoS.restore_visible (what runs after visibility_timeout), with the timeout at 0."""
    started = time.monotonic()
    before = unacked(queue)["unacked"]
    options = dict(app.conf.broker_transport_options, visibility_timeout=0)
    with Connection(url(), transport_options=options) as conn:
        qos = conn.default_channel.qos
        while client().zcard("unacked_index"):
            qos.restore_visible(num=BATCH)
    return {"restored": before, "waiting": waiting(queue), "seconds": time.monotonic() - started}


def main(argv: list[str]) -> dict[str, Any]:
    command, queue, *args = argv
    if command == "send":
        priorities = [int(p) for p in (args[1] if len(args) > 1 else "0").split(",")]
        return send(queue, int(args[0]), priorities, float(args[2]) if len(args) > 2 else 0.0)
    if command == "kill-mid-task":
        return kill_mid_task(queue, float(args[0]) if args else 30.0)
    if command == "work":
        return work(queue, args[0] == "1", float(args[1]) if len(args) > 1 else 120.0)
    if command == "bulk-unacked":
        return bulk_unacked(queue, int(args[0]))
    if command == "restore":
        return restore(queue)
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
