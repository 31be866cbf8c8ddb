"""``?layout=sidekiq`` against real Sidekiq 6.4: its workers fill retry and dead, qctl retries as
SortedEntry#retry does, and Sidekiq's workers then run the retried jobs."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.conftest import QctlRunner
from tests.frameworks import fixtures
from tests.frameworks.conftest import layout_url

URL = "sidekiq"


def _dead(queue: str) -> list[dict[str, object]]:
    return [json.loads(m) for m in fixtures.client("sidekiq").zrange("dead", 0, -1) if json.loads(m)["queue"] == queue]


def test_stats_peek_and_a_retry_filtered_by_error_class(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("sk", "sidekiq")
    fixtures.sidekiq_push(queue, ok=2)
    fixtures.sidekiq_push(queue, failing=3, error="QctlTimeoutError", message="took too long", retry=0)
    fixtures.sidekiq_push(queue, failing=2, error="ArgumentError", message="bad argument", retry=0)
    fixtures.sidekiq_push(queue, failing=2, error="QctlTimeoutError", message="took too long", retry=True)
    first = fixtures.sidekiq_work(queue, fail=True)
    assert (first.completed, first.failed) == (2, 7)
    assert fixtures.sidekiq_sizes(queue) == {"queue": 0, "retry": 2, "dead": 5}

    rows = {r["queue"]: r for r in qctl("stats", "-u", url, "-o", "json", queue, f"{queue}:dead", f"{queue}:retry",
                                        "dead").json()}
    assert rows[queue]["type"] == "sidekiq" and rows[queue]["depth"] == 0
    assert rows[queue]["dead_letter_queue"] == "dead" and rows[queue]["dead_letter_depth"] == rows["dead"]["depth"] >= 5
    assert rows[queue]["retry"] >= 2
    assert (rows[f"{queue}:dead"]["depth"], rows[f"{queue}:retry"]["depth"]) == (5, 2)
    assert 0 <= rows[f"{queue}:dead"]["oldest_age"] < 600

    peeked = qctl("peek", "-u", url, "--dead", queue, "-o", "json").json()
    assert len(peeked) == 5
    assert {r["dead_letter"]["reason"] for r in peeked} == {"QctlTimeoutError: took too long",
                                                           "ArgumentError: bad argument"}
    assert all(r["dead_letter"]["source_queue"] == queue and r["properties"]["task"] == "QctlJob"
               and r["properties"]["args"][0] in ("QctlTimeoutError", "ArgumentError") and r["delivery_count"] == 1
               and r["timestamp"] for r in peeked)

    before = {j["jid"]: j for j in _dead(queue)}
    run = qctl("redrive", "-u", url, f"{queue}:dead", "--where", "contains(dead_letter.reason, 'Timeout')", "-o",
               "json")
    assert run.rc == 0, run
    assert (run.json()["moved"], run.json()["skipped"], run.json()["targets"]) == (3, 2, {queue: 3})
    db = fixtures.client("sidekiq")
    pushed = [json.loads(raw) for raw in db.lrange(f"queue:{queue}", 0, -1)]
    assert len(pushed) == 3 and db.sismember("queues", queue)
    for job in pushed:  # SortedEntry#retry: retry_count - 1, enqueued_at now; the rest as it was
        assert job.pop("qctl_redrive_count") == 1  # and qctl's redrive count, last
        old = before[job["jid"]]
        assert job["retry_count"] == old["retry_count"] - 1 == -1
        assert isinstance(job["enqueued_at"], float) and job["enqueued_at"] > old["enqueued_at"]
        assert {k: v for k, v in job.items() if k not in ("retry_count", "enqueued_at")} == \
            {k: v for k, v in old.items() if k not in ("retry_count", "enqueued_at")}
        assert list(job) == list(old)  # the same keys in the same order: Ruby's JSON.generate would agree
    assert sorted(j["error_class"] for j in _dead(queue)) == ["ArgumentError", "ArgumentError"]

    done = fixtures.sidekiq_work(queue, fail=False)
    assert (done.completed, done.failed) == (3, 0)
    retried = qctl("redrive", "-u", url, "retry", "--where", f"dead_letter.source_queue == '{queue}'", "-o", "json")
    assert retried.rc == 0 and retried.json()["moved"] == 2, retried
    assert fixtures.sidekiq_work(queue, fail=False).completed == 2
    assert fixtures.sidekiq_sizes(queue) == {"queue": 0, "retry": 0, "dead": 2}


def test_purge_dead_with_backup_restores_with_its_scores(frameworks_env: dict[str, str], qctl: QctlRunner,
                                                         tmp_path: Path) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("sk", "sidekiq")
    fixtures.sidekiq_push(queue, failing=3, error="QctlBoom", message="boom", retry=0)
    fixtures.sidekiq_work(queue, fail=True)
    db = fixtures.client("sidekiq")
    scores = {m: s for m, s in db.zrange("dead", 0, -1, withscores=True) if json.loads(m)["queue"] == queue}
    assert len(scores) == 3
    refused = qctl("purge", "-u", url, "--dead", queue)
    assert refused.rc == 2 and len(_dead(queue)) == 3
    dry = qctl("purge", "-u", url, "--dead", queue, "--dry-run", "-o", "json")
    assert dry.rc == 0 and dry.json()["purged"] == 3
    backup = tmp_path / "dead.jsonl"
    run = qctl("purge", "-u", url, "--dead", queue, "--yes", "--backup", str(backup), "-o", "json")
    assert run.rc == 0 and run.json()["purged"] == 3, run
    assert _dead(queue) == [] and len(backup.read_text().splitlines()) == 4
    restored = qctl("restore", str(backup), "--to", "dead", "-u", url, "-o", "json")
    assert restored.rc == 0 and restored.json()["restored"] == 3, restored
    assert {m: s for m, s in db.zrange("dead", 0, -1, withscores=True) if json.loads(m)["queue"] == queue} == scores
    assert qctl("purge", "-u", url, f"{queue}:dead", "--yes").rc == 0
    assert _dead(queue) == []


def test_busy_processes_give_in_flight_and_consumers(frameworks_env: dict[str, str], qctl: QctlRunner,
                                                    tmp_path: Path) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("sk", "sidekiq")
    fixtures.sidekiq_push(queue, failing=1, error="QctlSleep", message="12")
    idle = qctl("stats", "-u", url, "-o", "json", queue).json()[0]
    assert idle["depth"] == 1 and idle["in_flight"] in (None, 0)  # None: no live Sidekiq process to ask
    # Sidekiq writes its busy hash at each heartbeat (every 5 s in 6.4): run it until one shows the job.
    worker = fixtures._spawn_sidekiq(queue, tmp_path / "report.json", fail=False, concurrency=2, quiet=True)
    seen: dict[str, object] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seen:
            row = qctl("stats", "-u", url, "-o", "json", queue).json()[0]
            if row["in_flight"] == 1:
                seen = row
            time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert seen and seen["consumers"] == 1 and seen["depth"] == 0, seen


def test_jobs_of_another_queue_and_broken_members_stay(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue, other = fixtures.unique_queue("sk", "sidekiq"), fixtures.unique_queue("sk", "sidekiq")
    fixtures.sidekiq_push(queue, failing=1, error="QctlBoom", message="boom", retry=0)
    fixtures.sidekiq_push(other, failing=1, error="QctlBoom", message="boom", retry=0)
    fixtures.sidekiq_work(queue, fail=True)
    fixtures.sidekiq_work(other, fail=True)
    run = qctl("redrive", "-u", url, f"{queue}:dead", "-o", "json")
    assert run.rc == 0 and run.json()["moved"] == 1, run
    assert len(_dead(other)) == 1 and _dead(queue) == []
    # --to another queue: the job's own queue field follows (Sidekiq pushes by the payload's queue).
    moved = qctl("redrive", "-u", url, f"{other}:dead", "--to", queue, "-o", "json")
    assert moved.rc == 0 and moved.json()["targets"] == {queue: 1}, moved
    jobs = [json.loads(raw) for raw in fixtures.client("sidekiq").lrange(f"queue:{queue}", 0, -1)]
    assert [j["queue"] for j in jobs] == [queue, queue]
    assert fixtures.sidekiq_work(queue, fail=False).completed == 2


def test_jobs_sidekiq_would_refuse_stay_in_the_dead_set(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    """Members of ``dead`` that Sidekiq::Client.push would refuse (a scheduled ``at``, args that are not an
    array, no class) are left exactly where they were, beside a real failed job that moves: the guarded step
    takes out only what it pushes (a job with no commands there would only be removed)."""
    url = layout_url(URL)
    queue = fixtures.unique_queue("sk", "sidekiq")
    fixtures.sidekiq_push(queue, failing=1, error="QctlBoom", message="boom", retry=0)
    fixtures.sidekiq_work(queue, fail=True)
    db = fixtures.client("sidekiq")
    refused = [json.dumps({"class": "QctlJob", "args": [1], "queue": queue, "jid": "at1", "at": 5.0}),
               json.dumps({"class": "QctlJob", "args": "one", "queue": queue, "jid": "args1"}),
               json.dumps({"args": [1], "queue": queue, "jid": "noclass1"})]
    db.zadd("dead", {member: 1.0 for member in refused})
    run = qctl("redrive", "-u", url, f"{queue}:dead", "-o", "json")
    assert run.rc == 6 and (run.json()["moved"], run.json()["failed"]) == (1, 3), run
    assert "3 job(s) are not Sidekiq jobs" in run.err and "nothing lost" in run.err, run.err
    left = [m.decode() for m in db.zrange("dead", 0, -1) if json.loads(m).get("queue") == queue]
    assert sorted(left) == sorted(refused)
    assert db.llen(f"queue:{queue}") == 1
    db.zrem("dead", *refused)


def test_max_redrives_counts_through_sidekiqs_own_failures(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    """qctl's redrive count is a key of the job's JSON, which Sidekiq's retry and dead set keep: --max-redrives
    stops poison."""
    url = layout_url(URL)
    queue = fixtures.unique_queue("sk", "sidekiq")
    fixtures.sidekiq_push(queue, failing=2, error="QctlPoison", message="poison", retry=0)
    fixtures.sidekiq_work(queue, fail=True)
    for count in (1, 2):
        run = qctl("redrive", "-u", url, f"{queue}:dead", "--max-redrives", "2", "-o", "json")
        assert run.rc == 0 and run.json()["moved"] == 2, run
        assert fixtures.sidekiq_work(queue, fail=True).failed == 2  # failed again, by Sidekiq itself
        peeked = qctl("peek", "-u", url, "--dead", queue, "-o", "json").json()
        assert [r["headers"] for r in peeked] == [{"x-qctl-redrive-count": count}] * 2, peeked
        assert [j["qctl_redrive_count"] for j in _dead(queue)] == [count] * 2
    poison = qctl("redrive", "-u", url, f"{queue}:dead", "--max-redrives", "2", "-o", "json")
    assert poison.rc == 6 and (poison.json()["moved"], poison.json()["skipped"]) == (0, 2), poison
    assert "--max-redrives" in poison.err and len(_dead(queue)) == 2
    assert qctl("redrive", "-u", url, f"{queue}:dead", "-o", "json").json()["moved"] == 2  # no guard: it moves
    assert fixtures.sidekiq_work(queue, fail=False).completed == 2


def test_a_redrive_count_with_no_place_is_said(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    """A list element that is not a Sidekiq job has no place for qctl's redrive count: moved, and a notice."""
    queue = fixtures.unique_queue("sk", "sidekiq")
    fixtures.client("sidekiq").lpush(f"queue:{queue}:dlq", b"not a job")
    run = qctl("redrive", "-u", layout_url(URL), f"{queue}:dlq", "-o", "json")
    assert run.rc == 0 and run.json()["targets"] == {queue: 1}, run
    assert "not Sidekiq jobs" in run.err and "--max-redrives" in run.err, run
    assert fixtures.client("sidekiq").lrange(f"queue:{queue}", 0, -1) == [b"not a job"]
