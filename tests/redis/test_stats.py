"""`qctl stats` on real Redis: discovery by SCAN, depths, stream groups, dead letters, thresholds."""

from __future__ import annotations

import redis

from tests.conftest import QctlRunner


def _by_queue(rows: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {row["queue"]: row for row in rows}


def seed(r: redis.Redis, name: str) -> None:
    r.lpush(f"{name}:orders", b"a", b"b", b"c")
    r.lpush(f"{name}:orders:dlq", b"d")
    r.zadd(f"{name}:retry", {b"m1": 1, b"m2": 2})
    r.xadd(f"{name}:events", {b"body": b"e1"})
    r.xadd(f"{name}:events", {b"body": b"e2"})
    r.xgroup_create(f"{name}:events", "g1", id="0")
    r.xgroup_create(f"{name}:events", "g2", id="$")
    r.xreadgroup("g1", "c1", {f"{name}:events": ">"}, count=1)
    r.set(f"{name}:string", b"not a queue")
    r.hset(f"{name}:hash", "f", "v")


def test_stats_without_arguments_finds_lists_streams_and_zsets(qctl: QctlRunner, redis_url: str,
                                                                 r: redis.Redis, name: str) -> None:
    seed(r, name)
    run = qctl("stats", "-u", redis_url, "-o", "json")
    assert run.rc == 0, run
    rows = {q: row for q, row in _by_queue(run.json()).items() if q.startswith(name)}
    assert set(rows) == {f"{name}:orders", f"{name}:orders:dlq", f"{name}:retry", f"{name}:events"}
    orders = rows[f"{name}:orders"]
    assert (orders["type"], orders["depth"], orders["in_flight"], orders["lag"]) == ("list", 3, None, None)
    assert (orders["dead_letter_queue"], orders["dead_letter_depth"]) == (f"{name}:orders:dlq", 1)
    assert rows[f"{name}:orders:dlq"]["dead_letter_queue"] is None
    assert (rows[f"{name}:retry"]["type"], rows[f"{name}:retry"]["depth"]) == ("zset", 2)
    events = rows[f"{name}:events"]
    # g1 read one of two entries (1 pending, lag 1); g2 starts at the end (lag 0).
    assert (events["type"], events["depth"], events["in_flight"], events["consumers"], events["lag"]) == (
        "stream", 2, 1, 1, 1)


def test_stats_globs_names_and_missing_keys(qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str) -> None:
    seed(r, name)
    r.lpush(f"dlq:{name}:retry", b"x")  # a prefix DLQ the glob does not match
    run = qctl("stats", "-u", redis_url, "-o", "json", f"{name}:r*", f"{name}:missing", f"{name}:[!o]vents")
    assert run.rc == 0, run
    rows = _by_queue(run.json())
    assert set(rows) == {f"{name}:retry", f"{name}:missing", f"{name}:events"}
    assert (rows[f"{name}:missing"]["type"], rows[f"{name}:missing"]["depth"]) == ("list", 0)
    assert (rows[f"{name}:retry"]["dead_letter_queue"], rows[f"{name}:retry"]["dead_letter_depth"]) == (
        f"dlq:{name}:retry", 1)
    r.delete(f"dlq:{name}:retry")


def test_stats_groups_one_row_per_group(qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str) -> None:
    seed(r, name)
    run = qctl("stats", "-u", redis_url, "-o", "json", "--groups", f"{name}:events", f"{name}:orders")
    assert run.rc == 0, run
    rows = {(row["queue"], row["group"]): row for row in run.json()}
    assert (rows[(f"{name}:events", "g1")]["in_flight"], rows[(f"{name}:events", "g1")]["lag"]) == (1, 1)
    assert (rows[(f"{name}:events", "g2")]["in_flight"], rows[(f"{name}:events", "g2")]["lag"]) == (0, 0)
    assert rows[(f"{name}:orders", None)]["depth"] == 3


def test_stats_thresholds_and_prometheus(qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str) -> None:
    seed(r, name)
    assert qctl("stats", "-u", redis_url, "--fail-above", "2", f"{name}:orders").rc == 5
    assert qctl("stats", "-u", redis_url, "--fail-above", "3", f"{name}:orders").rc == 0
    assert qctl("stats", "-u", redis_url, "--fail-lag-above", "0", f"{name}:events").rc == 5
    prom = qctl("stats", "-u", redis_url, "-o", "prom", f"{name}:orders")
    assert f'qctl_queue_depth{{backend="redis",queue="{name}:orders"}} 3' in prom.out, prom


def test_stats_of_a_non_queue_key_is_a_usage_error(qctl: QctlRunner, redis_url: str, r: redis.Redis,
                                                   name: str) -> None:
    seed(r, name)
    run = qctl("stats", "-u", redis_url, f"{name}:string")
    assert run.rc == 2 and "not a queue" in run.err, run


def test_stats_over_many_keys_uses_one_command_per_key(qctl: QctlRunner, redis_url: str, r: redis.Redis,
                                                       name: str) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(5000):
        pipe.lpush(f"{name}:many:{i}", b"x")
    pipe.lpush(f"{name}:many:7:dlq", b"d")  # matched by the glob
    pipe.lpush(f"dlq:{name}:many:9", b"d", b"d")  # not matched: found by one SCAN for the prefixes
    pipe.execute()
    keyspace = r.dbsize()
    before = _calls(r)
    try:
        run = qctl("stats", "-u", redis_url, "-o", "json", f"{name}:many:*")
    finally:
        used = {command: calls - before.get(command, 0) for command, calls in _calls(r).items()}
        r.delete(f"dlq:{name}:many:9")
    rows = {row["queue"]: row for row in run.json()}
    assert run.rc == 0 and len(rows) == 5001, run
    assert (rows[f"{name}:many:7"]["dead_letter_queue"], rows[f"{name}:many:9"]["dead_letter_depth"]) == (
        f"{name}:many:7:dlq", 2)
    # Counted per command (INFO commandstats, commands run inside scripts included), so other clients'
    # traffic meanwhile barely counts.  One LLEN per list, TYPE only for keys that are not lists; SCAN
    # walks the keyspace twice (the glob, then one pattern for all four DLQ prefixes), a thousand keys
    # per script call.  Before: TYPE + LLEN per key plus a TYPE for each of 4 prefix candidates, 9.3.
    assert used.get("type", 0) <= 5, used
    assert used.get("scan", 0) <= 2 * (keyspace // 2000 + 2), (used, keyspace)
    per_key = sum(used.get(c, 0) for c in ("llen", "type", "xlen", "zcard", "exists", "scan", "evalsha")) / 5000
    assert per_key <= 1.02, used


def _calls(r: redis.Redis) -> dict[str, int]:
    return {key.removeprefix("cmdstat_"): int(value["calls"]) for key, value in r.info("commandstats").items()}
