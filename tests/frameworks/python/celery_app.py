"""The Celery app the fixtures' workers run (``celery -A celery_app worker``), in .brokers/frameworks-venv.

Redis transport (``REDIS_URL``, the fixtures use db 8) with kombu's priority queues: ``priority_steps``
0..9 and the default separator, so a task sent with priority p > 0 waits in the list
``<queue>\\x06\\x16<p>`` -- what a real deployment with ``task_queue_max_priority`` looks like to qctl.
``acks_late`` keeps a delivered task in ``unacked``/``unacked_index`` until it finishes, so a worker
killed mid-task leaves it there (kombu re-delivers it after ``visibility_timeout``, an hour by default).

Tasks: ``sleepy(seconds, marker)`` touches ``marker`` when it starts (the fixture's cue to SIGKILL)
and sleeps; ``ok(i)`` returns; ``flaky(exc_name, message)`` raises under ``QCTL_JOBS_FAIL=1``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery
from rq_jobs import exception_class

app = Celery("qctl_frameworks", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:16379/8"))
app.conf.update(
    broker_transport_options={"priority_steps": list(range(10)), "queue_order_strategy": "priority"},
    broker_connection_retry_on_startup=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_priority=0,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,       # the fixtures read the tools' JSON line from stdout
    worker_enable_remote_control=False,  # no pidbox queue in the fixtures' db
    result_backend=None,
    task_ignore_result=True,
)


@app.task(name="qctl.sleepy")
def sleepy(seconds: float, marker: str = "") -> str:
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "slept"


@app.task(name="qctl.ok")
def ok(i: int) -> int:
    return i


@app.task(name="qctl.flaky")
def flaky(exc_name: str, message: str) -> str:
    if os.environ.get("QCTL_JOBS_FAIL") == "1":
        raise exception_class(exc_name)(message)
    return "ok"
