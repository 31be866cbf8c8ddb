"""The job-framework fixtures really drive RQ, Celery, Sidekiq and BullMQ against the harness Redis."""

from __future__ import annotations

import pytest

from tests.frameworks import fixtures


@pytest.fixture(scope="session")
def frameworks_env() -> dict[str, str]:
    return fixtures.frameworks_up()


def test_databases_are_one_per_framework(frameworks_env: dict[str, str]) -> None:
    urls = {name: frameworks_env[f"QCTL_TEST_{name.upper()}_URL"] for name in fixtures.DATABASES}
    assert urls == {name: f"redis://127.0.0.1:16379/{db}" for name, db in fixtures.DATABASES.items()}


def test_rq_failing_jobs_land_in_the_failed_registry_and_complete_when_retried(
        frameworks_env: dict[str, str]) -> None:
    queue = fixtures.unique_queue("rq")
    assert fixtures.rq_enqueue(queue, ok=2, failing=3, exc="TimeoutError", message="took too long") == 5
    first = fixtures.rq_work(queue, fail=True, fork=True)   # exactly `rq worker --burst`
    assert (first.completed, first.failed) == (2, 3)
    db = fixtures.client("rq")
    failed = db.zrange(f"rq:failed:{queue}", 0, -1)
    assert len(failed) == 3
    job = db.hgetall(f"rq:job:{failed[0].decode()}")
    assert job[b"status"] == b"failed" and job[b"origin"] == queue.encode()
    assert fixtures.rq_requeue_all(queue).count == 3
    again = fixtures.rq_work(queue, fail=False)
    assert (again.completed, again.failed) == (3, 0)
    assert db.zcard(f"rq:failed:{queue}") == 0


def test_rq_bulk_failed_direct_matches_the_worker_path(frameworks_env: dict[str, str]) -> None:
    queue = fixtures.unique_queue("rq")
    timing = fixtures.rq_bulk_failed(queue, 50, exc="ValueError")
    assert timing.count == 50 and timing.rate > 0
    db = fixtures.client("rq")
    assert db.zcard(f"rq:failed:{queue}") == 50
    assert fixtures.rq_requeue_all(queue).count == 50
    assert fixtures.rq_work(queue, fail=False).completed == 50


def test_celery_priorities_and_a_killed_acks_late_worker_leave_unacked(frameworks_env: dict[str, str]) -> None:
    queue = fixtures.unique_queue("celery")
    assert fixtures.celery_send(queue, 4, priorities=(0, 3, 6, 9)) == 4
    db = fixtures.client("celery")
    for priority in (3, 6, 9):
        assert db.llen(f"{queue}\x06\x16{priority}") == 1
    assert db.llen(queue) == 1
    done = fixtures.celery_work(queue)
    assert (done.completed, done.failed) == (4, 0)

    killed = fixtures.celery_kill_mid_task(queue, seconds=60)
    assert killed["unacked_queue"] == 1 and killed["unacked_index"] >= 1


def test_sidekiq_failures_land_in_retry_and_dead(frameworks_env: dict[str, str]) -> None:
    queue = fixtures.unique_queue("sidekiq")
    fixtures.sidekiq_push(queue, ok=1, failing=2, error="QctlTimeoutError", message="took too long")
    fixtures.sidekiq_push(queue, failing=1, error="ArgumentError", message="bad argument", retry=0)
    result = fixtures.sidekiq_work(queue, fail=True)
    assert (result.completed, result.failed) == (1, 3)
    assert fixtures.sidekiq_sizes(queue) == {"queue": 0, "retry": 2, "dead": 1}


def test_bullmq_failures_land_in_the_failed_set_and_complete_when_retried(frameworks_env: dict[str, str]) -> None:
    queue = fixtures.unique_queue("bullmq")
    assert fixtures.bullmq_add(queue, ok=1, failing=2, error_name="TimeoutError", message="took too long") == 3
    first = fixtures.bullmq_work(queue, fail=True)
    assert (first.completed, first.failed) == (1, 2)
    db = fixtures.client("bullmq")
    failed = db.zrange(f"bull:{queue}:failed", 0, -1)
    assert len(failed) == 2
    assert db.hget(f"bull:{queue}:{failed[0].decode()}", "failedReason") == b"took too long"
    assert fixtures.bullmq_retry_failed(queue).count == 2
    assert fixtures.bullmq_work(queue, fail=False).completed == 2


def test_bulk_helpers_and_the_frameworks_own_retries(frameworks_env: dict[str, str]) -> None:
    queue = fixtures.unique_queue("bulk")
    made = fixtures.sidekiq_bulk_failed(queue, 100, dead=True, error="QctlBulkError")
    assert made.count == 100 and fixtures.sidekiq_sizes(queue)["dead"] == 100
    assert fixtures.sidekiq_retry_all("dead").count >= 100
    assert fixtures.sidekiq_work(queue, fail=False).completed == 100

    made = fixtures.bullmq_bulk_failed(queue, 100, error_name="TimeoutError")
    assert made.count == 100 and fixtures.client("bullmq").zcard(f"bull:{queue}:failed") == 100
    assert fixtures.bullmq_retry_failed(queue).count == 100
    assert fixtures.bullmq_work(queue, fail=False, concurrency=10).completed == 100

    assert fixtures.celery_bulk_unacked(queue, 100).count == 100
    assert fixtures.celery_restore_unacked(queue).count >= 100
    assert fixtures.celery_work(queue).completed == 100
