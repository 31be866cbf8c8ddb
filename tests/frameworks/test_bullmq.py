"""``?layout=bullmq`` against real BullMQ 5.81: its Worker fails jobs into ``failed``, qctl retries them as
Job.retry (reprocessJob) does, and a Worker then completes them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import QctlRunner
from tests.frameworks import fixtures
from tests.frameworks.conftest import layout_url

URL = "bullmq"


def _failed(queue: str) -> list[bytes]:
    return list(fixtures.client("bullmq").zrange(f"bull:{queue}:failed", 0, -1))


def test_stats_peek_and_a_retry_filtered_by_error_class(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("bq", "bullmq")
    fixtures.bullmq_add(queue, ok=1, failing=3, error_name="TimeoutError", message="took too long")
    fixtures.bullmq_add(queue, failing=2, error_name="TypeError", message="bad input")
    first = fixtures.bullmq_work(queue, fail=True)
    assert (first.completed, first.failed) == (1, 5)

    row = qctl("stats", "-u", url, "-o", "json", queue).json()[0]
    assert (row["type"], row["depth"], row["in_flight"], row["dead_letter_queue"], row["dead_letter_depth"]) == \
        ("bullmq", 0, 0, f"{queue}:failed", 5)
    assert row["completed"] == 1 and row["paused"] is False
    assert queue in {r["queue"] for r in qctl("stats", "-u", url, "-o", "json", "bq-*").json()}

    peeked = qctl("peek", "-u", url, "--dead", queue, "-o", "json").json()
    assert sorted(r["dead_letter"]["reason"] for r in peeked) == [
        "TimeoutError: took too long"] * 3 + ["TypeError: bad input"] * 2
    assert all(r["properties"]["task"] == "qctl-fail" and r["delivery_count"] == 1 and json.loads(r["body"])["fail"]
               and r["dead_letter"]["source_queue"] == queue for r in peeked)

    timeouts = {r["properties"]["job_id"].encode() for r in peeked if "Timeout" in r["dead_letter"]["reason"]}
    run = qctl("redrive", "-u", url, f"{queue}:failed", "--where", "contains(dead_letter.reason, 'Timeout')",
               "-o", "json")
    assert run.rc == 0 and (run.json()["moved"], run.json()["skipped"]) == (3, 2), run
    db = fixtures.client("bullmq")
    assert set(db.lrange(f"bull:{queue}:wait", 0, -1)) == timeouts
    for job_id in timeouts:  # reprocessJob: finishedOn, processedOn and failedReason go; attempts stay
        job = db.hgetall(f"bull:{queue}:".encode() + job_id)
        assert not {b"finishedOn", b"processedOn", b"failedReason"} & set(job)
        assert job[b"atm"] == b"1" and job[b"stacktrace"]
    waiting = [f for _, f in db.xrange(f"bull:{queue}:events") if f[b"event"] == b"waiting" and f.get(b"prev")]
    assert {f[b"jobId"] for f in waiting} == timeouts and all(f[b"prev"] == b"failed" for f in waiting)
    assert db.zscore(f"bull:{queue}:marker", "0") is not None
    assert len(_failed(queue)) == 2

    done = fixtures.bullmq_work(queue, fail=False)
    assert (done.completed, done.failed) == (3, 0)
    assert len(_failed(queue)) == 2


def test_a_paused_queue_gets_its_retries_in_paused_as_bullmq_5_does(frameworks_env: dict[str, str],
                                                                     qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("bq", "bullmq")
    fixtures.bullmq_add(queue, failing=2, error_name="Error", message="boom")
    fixtures.bullmq_work(queue, fail=True)
    fixtures.bullmq_pause(queue)
    assert qctl("redrive", "-u", url, f"{queue}:failed", "-o", "json").json()["moved"] == 2
    db = fixtures.client("bullmq")
    assert db.llen(f"bull:{queue}:paused") == 2 and db.llen(f"bull:{queue}:wait") == 0
    row = qctl("stats", "-u", url, "-o", "json", queue).json()[0]
    assert row["depth"] == 2 and row["paused"] is True
    fixtures.bullmq_pause(queue, paused=False)
    assert fixtures.bullmq_work(queue, fail=False).completed == 2


def test_purge_failed_with_backup_and_restore(frameworks_env: dict[str, str], qctl: QctlRunner,
                                              tmp_path: Path) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("bq", "bullmq")
    fixtures.bullmq_add(queue, failing=3, error_name="RangeError", message="out of range")
    fixtures.bullmq_work(queue, fail=True)
    db = fixtures.client("bullmq")
    ids = _failed(queue)
    before = {i: db.hgetall(f"bull:{queue}:".encode() + i) for i in ids}
    backup = tmp_path / "failed.jsonl"
    run = qctl("purge", "-u", url, "--dead", queue, "--yes", "--backup", str(backup), "-o", "json")
    assert run.rc == 0 and run.json()["purged"] == 3, run
    assert _failed(queue) == [] and not any(db.exists(f"bull:{queue}:".encode() + i) for i in ids)
    restored = qctl("restore", str(backup), "--to", f"{queue}:failed", "-u", url, "-o", "json")
    assert restored.rc == 0 and restored.json()["restored"] == 3, restored
    assert sorted(_failed(queue)) == sorted(ids)  # ids the queue's counter already handed out: kept
    for job_id, fields in before.items():
        assert db.hgetall(f"bull:{queue}:".encode() + job_id) == fields
    assert qctl("redrive", "-u", url, f"{queue}:failed", "-o", "json").json()["moved"] == 3
    assert fixtures.bullmq_work(queue, fail=False).completed == 3


def test_retry_into_another_queue_moves_the_job_there(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue, other = fixtures.unique_queue("bq", "bullmq"), fixtures.unique_queue("bq", "bullmq")
    fixtures.bullmq_add(other, ok=3)  # the other queue's counter is past 1..3
    fixtures.bullmq_add(queue, failing=2, error_name="Error", message="boom")
    fixtures.bullmq_work(queue, fail=True)
    run = qctl("redrive", "-u", url, f"{queue}:failed", "--to", other, "-o", "json")
    assert run.rc == 0 and run.json()["targets"] == {other: 2}, run
    db = fixtures.client("bullmq")
    assert _failed(queue) == [] and not db.exists(f"bull:{queue}:1", f"bull:{queue}:2")
    assert db.llen(f"bull:{other}:wait") == 5
    done = fixtures.bullmq_work(other, fail=False)
    assert (done.completed, done.failed) == (5, 0)
    bad = qctl("redrive", "-u", url, f"{queue}:failed", "--to", "has:colon")
    assert bad.rc == 2 and "cannot contain" in bad.err


def test_max_redrives_counts_through_bullmqs_own_failures(frameworks_env: dict[str, str], qctl: QctlRunner,
                                                          tmp_path: Path) -> None:
    """qctl's redrive count lives in the job hash, which BullMQ's scripts keep: --max-redrives stops poison."""
    url = layout_url(URL)
    queue = fixtures.unique_queue("bq", "bullmq")
    fixtures.bullmq_add(queue, failing=2, error_name="TypeError", message="poison")
    fixtures.bullmq_work(queue, fail=True)
    db = fixtures.client("bullmq")
    for count in (1, 2):
        run = qctl("redrive", "-u", url, f"{queue}:failed", "--max-redrives", "2", "-o", "json")
        assert run.rc == 0 and run.json()["moved"] == 2, run
        assert fixtures.bullmq_work(queue, fail=True).failed == 2  # failed again, by BullMQ's own Worker
        peeked = qctl("peek", "-u", url, "--dead", queue, "-o", "json").json()
        assert [r["headers"] for r in peeked] == [{"x-qctl-redrive-count": count}] * 2, peeked
        assert all("qctl_redrive_count" not in r["properties"]["bullmq"] and r["delivery_count"] == count + 1
                   for r in peeked)
        assert [db.hget(f"bull:{queue}:".encode() + i, "qctl_redrive_count") for i in _failed(queue)] == \
            [str(count).encode()] * 2
    poison = qctl("redrive", "-u", url, f"{queue}:failed", "--max-redrives", "2", "-o", "json")
    assert poison.rc == 6 and (poison.json()["moved"], poison.json()["skipped"]) == (0, 2), poison
    assert "--max-redrives" in poison.err and len(_failed(queue)) == 2
    backup = tmp_path / "failed.jsonl"  # a backup keeps the count (a header), and a restore puts it back
    assert qctl("purge", "-u", url, "--dead", queue, "--yes", "--backup", str(backup)).rc == 0
    assert qctl("restore", str(backup), "--to", f"{queue}:failed", "-u", url).rc == 0
    assert [db.hget(f"bull:{queue}:".encode() + i, "qctl_redrive_count") for i in _failed(queue)] == [b"2"] * 2
    assert qctl("redrive", "-u", url, f"{queue}:failed", "--max-redrives", "2").rc == 6
    assert qctl("redrive", "-u", url, f"{queue}:failed", "-o", "json").json()["moved"] == 2  # no guard: it moves
    assert fixtures.bullmq_work(queue, fail=False).completed == 2
