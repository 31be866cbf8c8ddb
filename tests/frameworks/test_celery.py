"""``?layout=celery`` against real Celery 5.7 / kombu 5.7: priority lists summed, a killed acks_late worker's
unacked task restored as kombu's visibility-timeout sweep does, and a worker then runs it."""

from __future__ import annotations

import json
import uuid

from tests.conftest import QctlRunner
from tests.frameworks import fixtures
from tests.frameworks.conftest import layout_url

URL = "celery"


def test_depth_sums_the_priority_lists_and_peek_follows_brpop(frameworks_env: dict[str, str],
                                                              qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("ce", "celery")
    assert fixtures.celery_send(queue, 8, priorities=(9, 0, 6, 3)) == 8
    db = fixtures.client("celery")
    assert db.llen(queue) == 2  # `redis-cli llen QUEUE` sees a quarter of it (celery/celery#3681)
    row = qctl("stats", "-u", url, "-o", "json", queue).json()[0]
    assert (row["type"], row["depth"], row["by_priority"]) == ("celery", 8, {"0": 2, "3": 2, "6": 2, "9": 2})
    assert row["oldest_age"] is None and row["dead_letter_queue"] is None  # kombu keeps neither
    assert queue in {r["queue"] for r in qctl("stats", "-u", url, "-o", "json", "ce-*").json()}
    peeked = qctl("peek", "-u", url, queue, "-o", "json").json()
    assert [r["properties"]["priority"] for r in peeked] == [0, 0, 3, 3, 6, 6, 9, 9]  # BRPOP's key order
    assert all(r["headers"]["task"] == "qctl.ok" and json.loads(r["body"])[0] == [int(r["headers"]["argsrepr"][1:-1])]
               for r in peeked)
    assert fixtures.celery_work(queue).completed == 8


def test_unacked_tasks_of_a_killed_worker_are_restored_and_run(frameworks_env: dict[str, str],
                                                               qctl: QctlRunner) -> None:
    queue = fixtures.unique_queue("ce", "celery")
    killed = fixtures.celery_kill_mid_task(queue, seconds=1)
    assert killed["unacked_queue"] == 1
    url = layout_url(URL)
    row = qctl("stats", "-u", url, "-o", "json", queue, f"{queue}:unacked").json()
    assert (row[0]["depth"], row[0]["in_flight"], row[1]["depth"]) == (0, 1, 1)
    peeked = qctl("peek", "-u", url, "--dead", queue, "-o", "json").json()
    assert len(peeked) == 1 and peeked[0]["headers"]["task"] == "qctl.sleepy"
    assert peeked[0]["dead_letter"]["source_queue"] == queue and peeked[0]["redelivered"] is True

    fresh = qctl("redrive", "-u", url, f"{queue}:unacked", "-o", "json")  # within visibility_timeout: stays
    assert fresh.rc == 0 and fresh.json()["moved"] == 0 and "visibility_timeout" in fresh.err, fresh
    assert _says_failures_live_in_the_result_backend(fresh.err, f"{queue}:unacked"), fresh
    db = fixtures.client("celery")
    tag = next(t for t, v in db.hgetall("unacked").items() if json.loads(v)[2] == queue)
    db.set("unacked_mutex", b"a-kombu-sweep", px=60_000)  # a worker's restore_visible holds the lock
    held = qctl("redrive", "-u", layout_url(URL, visibility_timeout="0"), f"{queue}:unacked")
    assert held.rc == 2 and "unacked_mutex" in held.err, held
    assert db.get("unacked_mutex") == b"a-kombu-sweep" and db.hexists("unacked", tag)
    db.delete("unacked_mutex")

    run = qctl("redrive", "-u", layout_url(URL, visibility_timeout="0"), f"{queue}:unacked", "-o", "json")
    assert run.rc == 0 and run.json()["moved"] == 1, run
    assert _says_failures_live_in_the_result_backend(run.err, f"{queue}:unacked"), run
    assert "result backend" not in qctl("redrive", "-u", url, f"{queue}:unacked", "-q").err  # -q: errors only
    assert not db.hexists("unacked", tag) and db.zscore("unacked_index", tag) is None
    assert not db.exists("unacked_mutex")
    restored = json.loads(db.lindex(queue, -1))
    assert restored["headers"]["redelivered"] is True and restored["properties"]["delivery_info"]["redelivered"]
    assert restored["properties"]["delivery_tag"] == tag.decode()
    assert fixtures.celery_work(queue).completed == 1


def _says_failures_live_in_the_result_backend(err: str, source: str) -> bool:
    """One notice line on stderr: no failed tasks on the broker, and what redrive returned from ``source``."""
    lines = [line for line in err.splitlines() if "result backend" in line]
    return len(lines) == 1 and lines[0].startswith("qctl: ") and "stale unacked entries" in lines[0] and \
        repr(source) in lines[0]


def test_purge_empties_every_priority_list(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    url = layout_url(URL)
    queue = fixtures.unique_queue("ce", "celery")
    fixtures.celery_send(queue, 6, priorities=(0, 5, 9))
    run = qctl("purge", "-u", url, queue, "--yes", "-o", "json")
    assert run.rc == 0 and run.json()["purged"] == 6, run
    db = fixtures.client("celery")
    assert sum(db.llen(k) for k in [queue, *(f"{queue}\x06\x16{p}" for p in range(1, 10))]) == 0


def test_tasks_moved_between_queues_keep_their_envelope_and_run(frameworks_env: dict[str, str],
                                                                qctl: QctlRunner) -> None:
    """A move rebuilds kombu's envelope from the headers and properties peek shows: the tasks still run."""
    url = layout_url(URL)
    queue, other = fixtures.unique_queue("ce", "celery"), fixtures.unique_queue("ce", "celery")
    fixtures.celery_send(queue, 3, priorities=(0,))
    run = qctl("move", f"{queue}", f"{other}", "-u", url, "-o", "json")
    assert run.rc == 0 and run.json()["moved"] == 3, run
    db = fixtures.client("celery")
    moved = [json.loads(raw) for raw in db.lrange(other, 0, -1)]
    assert all(m["properties"]["delivery_info"]["routing_key"] == other for m in moved)
    assert len({m["properties"]["delivery_tag"] for m in moved}) == 3 and str(uuid.UUID(moved[0]["headers"]["id"]))
    assert fixtures.celery_work(other).completed == 3


def _consumption_ranks(queue: str) -> list[int]:
    """The restored tasks in the order a worker takes them, as ranks of their `i` argument (send order)."""
    db = fixtures.client("celery")
    envelopes = [json.loads(raw) for raw in reversed(db.lrange(queue, 0, -1))]
    return [int(e["headers"]["argsrepr"].strip("[]")) for e in envelopes]


def test_restored_tasks_run_in_the_order_kombus_own_restore_leaves(frameworks_env: dict[str, str],
                                                                   qctl: QctlRunner) -> None:
    theirs, ours = fixtures.unique_queue("ce", "celery"), fixtures.unique_queue("ce", "celery")
    assert fixtures.celery_bulk_unacked(theirs, 40).count == 40
    fixtures.celery_restore_unacked(theirs)  # kombu's QoS.restore_visible (every unacked task of the db)
    kombu = _consumption_ranks(theirs)
    assert fixtures.celery_bulk_unacked(ours, 40).count == 40
    run = qctl("redrive", "-u", layout_url(URL, visibility_timeout="0"), f"{ours}:unacked", "-o", "json")
    assert run.rc == 0 and run.json()["moved"] == 40, run
    assert _consumption_ranks(ours) == kombu == list(range(40))
    assert fixtures.celery_work(ours).completed == 40
