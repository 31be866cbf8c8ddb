"""`qctl redrive` on real Redis: targets, order, bytes, counters, limits, and what stays in the DLQ."""

from __future__ import annotations

import time

import redis

from tests.conftest import QctlRunner
from tests.redis.driver import contents

BINARY = b"\x00\xff\xfe raw"


def test_list_redrive_goes_behind_waiting_messages_in_original_order(qctl: QctlRunner, redis_url: str,
                                                                    r: redis.Redis, name: str) -> None:
    r.lpush(name, b"w1", b"w2")
    dead = [f"d{i}".encode() for i in range(4500)] + [BINARY]
    r.lpush(f"{name}:dlq", *dead)
    run = qctl("redrive", "-u", redis_url, f"{name}:dlq", "-o", "json")
    assert run.rc == 0, run
    assert run.json() == {"source": f"{name}:dlq", "moved": 4501, "skipped": 0, "failed": 0,
                          "targets": {name: 4501}}
    assert contents(r, name) == [b"w1", b"w2", *dead]
    assert r.exists(f"{name}:dlq") == 0


def test_list_redrive_left_end_and_to(qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str) -> None:
    r.rpush(f"dlq:{name}", b"a", b"b", b"c")
    r.rpush(f"{name}:other", b"w")
    run = qctl("redrive", "-u", redis_url + "?list_end=left", f"dlq:{name}", "--to", f"{name}:other", "-o", "json")
    assert run.rc == 0 and run.json()["targets"] == {f"{name}:other": 3}, run
    assert r.lrange(f"{name}:other", 0, -1) == [b"w", b"a", b"b", b"c"]


def test_limit_dry_run_and_rate(qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str) -> None:
    r.lpush(f"{name}.dlq", *[f"d{i}".encode() for i in range(50)])
    run = qctl("redrive", "-u", redis_url, f"{name}.dlq", "--dry-run", "--limit", "20", "-o", "json")
    assert (run.rc, run.json()["targets"], run.json()["moved"]) == (0, {name: 20}, 0), run
    assert r.llen(f"{name}.dlq") == 50 and r.exists(name) == 0
    started = time.monotonic()
    run = qctl("redrive", "-u", redis_url, f"{name}.dlq", "--limit", "20", "--rate", "20", "-o", "json")
    assert (run.rc, run.json()["moved"]) == (0, 20), run
    assert time.monotonic() - started >= 0.8  # 20 messages at 20/s: about a second
    assert contents(r, name) == [f"d{i}".encode() for i in range(20)]
    assert r.llen(f"{name}.dlq") == 30


def test_zset_redrive_to_list_lowest_score_first(qctl: QctlRunner, redis_url: str, r: redis.Redis,
                                                 name: str) -> None:
    r.zadd(f"{name}:dead", {b"late": 30, b"early": 10, BINARY: 20})
    run = qctl("redrive", "-u", redis_url, f"{name}:dead", "-o", "json")
    assert run.rc == 0 and run.json()["targets"] == {name: 3}, run
    assert contents(r, name) == [b"early", BINARY, b"late"] and r.exists(f"{name}:dead") == 0


def test_stream_redrive_keeps_fields_counts_and_per_message_targets(qctl: QctlRunner, redis_url: str,
                                                                   r: redis.Redis, name: str) -> None:
    dlq = f"{name}-dlq"
    r.xadd(dlq, {b"body": b"one", b"h": BINARY})
    r.xadd(dlq, {b"body": b"two", b"x-original-queue": f"{name}:other".encode()})
    r.xadd(dlq, {b"body": b"poison", b"x-qctl-redrive-count": b"3"})
    r.xadd(dlq, {b"body": b"three", b"x-qctl-redrive-count": b"1"})
    r.xgroup_create(dlq, "g", id="0")
    run = qctl("redrive", "-u", redis_url, dlq, "--max-redrives", "3", "-o", "json")
    assert run.rc == 6, run  # the poison message stays: partial
    assert run.json() == {"source": dlq, "moved": 3, "skipped": 1, "failed": 0,
                          "targets": {name: 2, f"{name}:other": 1}}
    assert [f for _, f in r.xrange(name)] == [
        {b"body": b"one", b"h": BINARY, b"x-qctl-redrive-count": b"1"},
        {b"body": b"three", b"x-qctl-redrive-count": b"2"}]
    assert [f[b"body"] for _, f in r.xrange(f"{name}:other")] == [b"two"]
    assert [f[b"body"] for _, f in r.xrange(dlq)] == [b"poison"]
    assert r.xinfo_groups(dlq)[0]["name"] == b"g"  # the DLQ keeps its groups


def test_stream_redrive_limit_and_terminates(qctl: QctlRunner, redis_url: str, r: redis.Redis,
                                             name: str) -> None:
    dlq = f"{name}:dlq"
    for i in range(3000):
        r.xadd(dlq, {b"body": f"m{i}".encode()})
    run = qctl("redrive", "-u", redis_url, dlq, "--limit", "2500", "-o", "json")
    assert (run.rc, run.json()["moved"]) == (0, 2500), run
    assert r.xlen(name) == 2500 and r.xlen(dlq) == 500
    # Redriving back and forth moves only what each run found at its start.
    assert qctl("redrive", "-u", redis_url, name, "--to", dlq).rc == 0
    assert r.xlen(dlq) == 3000 and r.xlen(name) == 0


def test_no_target_is_skipped_and_wrong_types_refused(qctl: QctlRunner, redis_url: str, r: redis.Redis,
                                                      name: str) -> None:
    r.lpush(name, b"x")
    run = qctl("redrive", "-u", redis_url, name, "-o", "json")  # no suffix, no --to
    assert run.rc == 6 and run.json()["skipped"] == 1 and r.llen(name) == 1, run
    r.set(f"{name}:str", b"not a queue")
    refused = qctl("redrive", "-u", redis_url, name, "--to", f"{name}:str")
    assert refused.rc == 2 and "is a Redis string" in refused.err, refused
    assert qctl("redrive", "-u", redis_url, name, "--to", name).rc == 2
    assert r.llen(name) == 1
    # A list's messages can go into a stream: each becomes an entry with a body field, in one atomic step.
    r.xadd(f"{name}:s", {b"body": b"w"})
    moved = qctl("redrive", "-u", redis_url, name, "--to", f"{name}:s", "-o", "json")
    assert moved.rc == 0 and moved.json()["moved"] == 1, moved
    assert [fields for _, fields in r.xrange(f"{name}:s")] == [
        {b"body": b"w"}, {b"body": b"x", b"x-qctl-redrive-count": b"1"}]
    assert r.exists(name) == 0
    missing = qctl("redrive", "-u", redis_url, f"{name}:none:dlq", "-o", "json")
    assert (missing.rc, missing.json()["moved"]) == (0, 0), missing


def test_whole_list_redrive_moves_without_reading_the_messages(qctl: QctlRunner, redis_url: str,
                                                               r: redis.Redis, name: str) -> None:
    """A list holds bare bodies, so a whole-queue redrive (with or without --to) moves them in Lua steps on
    the server and never brings them to qctl: counted in the bytes Redis sent to its clients, which a read
    of the 2 MB below would at least double.  (1,000,000 messages: 1.5 M/s blind, 43 k/s read and sent.)"""
    body = b"x" * 100
    for to in ([], ["--to", f"{name}:elsewhere"]):
        r.delete(f"{name}:dlq")
        for _ in range(4):
            r.rpush(f"{name}:dlq", *[body] * 5000)
        sent_before = int(r.info("stats")["total_net_output_bytes"])
        run = qctl("redrive", "-u", redis_url, f"{name}:dlq", *to, "-o", "json")
        sent = int(r.info("stats")["total_net_output_bytes"]) - sent_before
        assert run.rc == 0 and run.json()["moved"] == 20_000, run
        assert r.llen(to[1] if to else name) == 20_000 and r.exists(f"{name}:dlq") == 0
        assert sent < 1_000_000, sent  # reading the bodies alone is 2,000,000 bytes (other clients: margin)


def test_max_redrives_on_a_list_is_refused_before_anything_moves(qctl: QctlRunner, redis_url: str,
                                                                  r: redis.Redis, name: str) -> None:
    r.rpush(f"{name}:dlq", b"a", b"b")
    for extra in ([], ["--dry-run"], ["--to", f"{name}:other"]):
        run = qctl("redrive", "-u", redis_url, f"{name}:dlq", "--max-redrives", "3", *extra)
        assert run.rc == 2 and run.err.count("\n") == 1 and "--max-redrives" in run.err, run
        assert r.lrange(f"{name}:dlq", 0, -1) == [b"a", b"b"] and not r.exists(name, f"{name}:other")
