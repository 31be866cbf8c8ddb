"""``?layout=rq`` against real RQ 3.0: `rq worker --burst` fails jobs into the FailedJobRegistry, qctl
requeues them as FailedJobRegistry.requeue does, and RQ's workers then complete them."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from tests.conftest import QctlRunner
from tests.frameworks import fixtures
from tests.frameworks.conftest import layout_url

URL = "rq"


def _failed(queue: str) -> list[bytes]:
    return list(fixtures.client("rq").zrange(f"rq:failed:{queue}", 0, -1))


def test_stats_peek_and_a_requeue_filtered_by_error_class(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("rq", "rq")
    fixtures.rq_enqueue(queue, ok=2, failing=3, exc="TimeoutError", message="took too long")
    fixtures.rq_enqueue(queue, failing=2, exc="ValueError", message="bad value")
    first = fixtures.rq_work(queue, fail=True)
    assert (first.completed, first.failed) == (2, 5)

    row = qctl("stats", "-u", url, "-o", "json", queue).json()[0]
    assert (row["type"], row["depth"], row["in_flight"], row["dead_letter_queue"], row["dead_letter_depth"]) == \
        ("rq", 0, 0, f"{queue}:failed", 5)
    listed = {r["queue"] for r in qctl("stats", "-u", url, "-o", "json", "rq-*").json()}
    assert queue in listed  # from rq:queues, as `rq info` finds them

    peeked = qctl("peek", "-u", url, "--dead", queue, "-o", "json").json()
    assert len(peeked) == 5
    assert sorted(r["dead_letter"]["reason"] for r in peeked) == [
        "TimeoutError: took too long"] * 3 + ["ValueError: bad value"] * 2
    for r in peeked:
        assert r["properties"]["task"] == "rq_jobs.flaky" and r["properties"]["args"].startswith("(")
        assert r["dead_letter"]["source_queue"] == queue and r["timestamp"] and r["dead_letter"]["time"]
        assert r["body_encoding"] == "base64"  # the pickled call, shown, never unpickled

    timeouts = {r["properties"]["job_id"].encode() for r in peeked if "Timeout" in r["dead_letter"]["reason"]}
    run = qctl("redrive", "-u", url, f"{queue}:failed", "--where", "contains(dead_letter.reason, 'Timeout')",
               "-o", "json")
    assert run.rc == 0, run
    assert (run.json()["moved"], run.json()["skipped"]) == (3, 2)
    db = fixtures.client("rq")
    assert set(db.lrange(f"rq:queue:{queue}", 0, -1)) == timeouts
    for job_id in timeouts:  # what FailedJobRegistry.requeue writes
        job = db.hgetall(b"rq:job:" + job_id)
        assert (job[b"status"], job[b"started_at"], job[b"ended_at"], job[b"origin"]) == (
            b"queued", b"", b"", queue.encode())
        assert zlib.decompress(job[b"exc_info"]) == b"" and job[b"enqueued_at"] > job[b"created_at"]
        assert db.ttl(b"rq:job:" + job_id) > 0  # the failure TTL stays until a worker starts it
    assert len(_failed(queue)) == 2

    done = fixtures.rq_work(queue, fail=False)
    assert (done.completed, done.failed) == (3, 0)
    assert len(_failed(queue)) == 2


def test_purge_failed_with_backup_restores_whole_jobs(frameworks_env: dict[str, str], qctl: QctlRunner,
                                                      tmp_path: Path) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("rq", "rq")
    fixtures.rq_enqueue(queue, failing=3, exc="KeyError", message="missing")
    fixtures.rq_work(queue, fail=True)
    db = fixtures.client("rq")
    ids = _failed(queue)
    before = {job_id: db.hgetall(b"rq:job:" + job_id) for job_id in ids}
    backup = tmp_path / "failed.jsonl"
    run = qctl("purge", "-u", url, "--dead", queue, "--yes", "--backup", str(backup), "-o", "json")
    assert run.rc == 0 and run.json()["purged"] == 3, run
    assert _failed(queue) == [] and not any(db.exists(b"rq:job:" + i, b"rq:results:" + i) for i in ids)
    lines = [json.loads(line) for line in backup.read_text().splitlines()[1:]]
    assert all(line["properties"]["last_result"]["exc_string"] for line in lines)
    restored = qctl("restore", str(backup), "--to", f"{queue}:failed", "-u", url, "-o", "json")
    assert restored.rc == 0 and restored.json()["restored"] == 3, restored
    assert sorted(_failed(queue)) == sorted(ids)
    for job_id, fields in before.items():
        assert db.hgetall(b"rq:job:" + job_id) == fields
    again = qctl("peek", "-u", url, f"{queue}:failed", "-o", "json").json()
    assert {r["dead_letter"]["reason"] for r in again} == {"KeyError: 'missing'"}
    assert qctl("redrive", "-u", url, f"{queue}:failed", "-o", "json").json()["moved"] == 3
    assert fixtures.rq_work(queue, fail=False).completed == 3


def test_a_job_whose_hash_is_gone_stays_and_is_reported(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("rq", "rq")
    fixtures.rq_enqueue(queue, failing=2, exc="ValueError", message="bad")
    fixtures.rq_work(queue, fail=True)
    db = fixtures.client("rq")
    gone = _failed(queue)[0]
    db.delete(b"rq:job:" + gone)  # what `rq requeue --all` dies on (rq/rq#1963)
    run = qctl("redrive", "-u", url, f"{queue}:failed", "-o", "json")
    assert run.rc == 6 and run.json()["moved"] == 1 and run.json()["failed"] == 1, run
    assert "hash is gone" in run.err
    assert _failed(queue) == [gone] and db.llen(f"rq:queue:{queue}") == 1


def test_purge_of_a_queue_deletes_its_jobs_as_rq_empty_does(frameworks_env: dict[str, str],
                                                            qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("rq", "rq")
    fixtures.rq_enqueue(queue, ok=4)
    db = fixtures.client("rq")
    ids = db.lrange(f"rq:queue:{queue}", 0, -1)
    peeked = qctl("peek", "-u", url, queue, "-o", "json").json()
    assert [r["properties"]["job_id"].encode() for r in peeked] == ids  # RQ pops from the left
    assert [r["properties"]["task"] for r in peeked] == ["rq_jobs.succeed"] * 4
    run = qctl("purge", "-u", url, queue, "--yes", "-o", "json")
    assert run.rc == 0 and run.json()["purged"] == 4, run
    assert db.llen(f"rq:queue:{queue}") == 0 and not any(db.exists(b"rq:job:" + i) for i in ids)


class _Touch:
    """A pickle that would create a file if anything unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.path}",)


def test_peek_reads_the_pickled_call_without_unpickling_it(frameworks_env: dict[str, str], qctl: QctlRunner,
                                                           tmp_path: Path) -> None:
    """Without a description, the function name and plain arguments come off the pickle's opcodes; a pickle
    that would run code when loaded is shown, never run."""
    import pickle

    queue = fixtures.unique_queue("rq", "rq")
    fixtures.rq_enqueue(queue, ok=1)
    db = fixtures.client("rq")
    job_id = db.lindex(f"rq:queue:{queue}", 0)
    trap = tmp_path / "unpickled"
    data = pickle.dumps(("billing.charge", None, ("acme", 42, _Touch(str(trap))), {}), protocol=5)
    db.hset(b"rq:job:" + job_id, mapping={"data": zlib.compress(data)})
    db.hdel(b"rq:job:" + job_id, "description")
    row = qctl("peek", "-u", layout_url(URL), queue, "-o", "json").json()[0]
    assert row["properties"]["task"] == "billing.charge"
    assert row["properties"]["args"].startswith("('acme', 42")
    assert not trap.exists()
    db.hset(b"rq:job:" + job_id, mapping={"data": zlib.compress(pickle.dumps(_Touch(str(trap))))})
    shown = qctl("peek", "-u", layout_url(URL), queue, "-o", "json")
    assert shown.rc == 0 and not trap.exists(), shown


def test_max_redrives_counts_through_rqs_own_failures(frameworks_env: dict[str, str], qctl: QctlRunner,
                                                       tmp_path: Path) -> None:
    """qctl's redrive count lives in the job hash, which RQ's failure path keeps: --max-redrives stops poison."""
    url = layout_url(URL)
    queue = fixtures.unique_queue("rq", "rq")
    fixtures.rq_enqueue(queue, failing=2, exc="ValueError", message="poison")
    fixtures.rq_work(queue, fail=True)
    db = fixtures.client("rq")
    for count in (1, 2):
        run = qctl("redrive", "-u", url, f"{queue}:failed", "--max-redrives", "2", "-o", "json")
        assert run.rc == 0 and run.json()["moved"] == 2, run
        assert fixtures.rq_work(queue, fail=True).failed == 2  # failed again, by RQ's own worker
        peeked = qctl("peek", "-u", url, "--dead", queue, "-o", "json").json()
        assert [r["headers"] for r in peeked] == [{"x-qctl-redrive-count": count}] * 2, peeked
        assert all("qctl_redrive_count" not in r["properties"]["rq"] for r in peeked)
        assert [db.hget(b"rq:job:" + i, "qctl_redrive_count") for i in _failed(queue)] == [str(count).encode()] * 2
    poison = qctl("redrive", "-u", url, f"{queue}:failed", "--max-redrives", "2", "-o", "json")
    assert poison.rc == 6 and (poison.json()["moved"], poison.json()["skipped"]) == (0, 2), poison
    assert "--max-redrives" in poison.err and len(_failed(queue)) == 2
    backup = tmp_path / "failed.jsonl"  # a backup keeps the count (a header), and a restore puts it back
    assert qctl("purge", "-u", url, "--dead", queue, "--yes", "--backup", str(backup)).rc == 0
    assert qctl("restore", str(backup), "--to", f"{queue}:failed", "-u", url).rc == 0
    assert [db.hget(b"rq:job:" + i, "qctl_redrive_count") for i in _failed(queue)] == [b"2"] * 2
    assert qctl("redrive", "-u", url, f"{queue}:failed", "--max-redrives", "2").rc == 6
    assert qctl("redrive", "-u", url, f"{queue}:failed", "-o", "json").json()["moved"] == 2  # no guard: it moves
    assert fixtures.rq_work(queue, fail=False).completed == 2
