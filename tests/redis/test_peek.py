"""`qctl peek` on real Redis: order, positions, options, and the queue left exactly as it was."""

from __future__ import annotations

import base64

import redis

from tests.conftest import QctlRunner

BINARY = b"\xff\x00\xfe binary"


def test_list_peek_right_end_is_read_only_and_ordered(qctl: QctlRunner, redis_url: str, r: redis.Redis,
                                                       name: str) -> None:
    r.lpush(name, b"first", b"second", BINARY, b"fourth")  # BRPOP takes "first" first
    before = r.lrange(name, 0, -1)
    run = qctl("peek", "-u", redis_url, name, "-n", "3", "-o", "jsonl")
    assert run.rc == 0, run
    rows = run.jsonl()
    assert [row["position"] for row in rows] == ["-1", "-2", "-3"]
    assert [row["body"] for row in rows[:2]] == ["first", "second"]
    assert rows[2]["body_encoding"] == "base64" and base64.b64decode(rows[2]["body"]) == BINARY
    assert r.lrange(name, 0, -1) == before
    # --from continues where the first page stopped; the position is what LINDEX takes.
    rows = qctl("peek", "-u", redis_url, name, "--from", "-3", "-o", "jsonl").jsonl()
    assert [row["position"] for row in rows] == ["-3", "-4"]
    assert r.lindex(name, int(rows[1]["position"])) == b"fourth"


def test_list_peek_left_end_for_rq_style_queues(qctl: QctlRunner, redis_url: str, r: redis.Redis,
                                                name: str) -> None:
    r.rpush(name, b"first", b"second", b"third")  # BLPOP takes "first" first
    rows = qctl("peek", "-u", redis_url + "?list_end=left", name, "-o", "jsonl", "--from", "1").jsonl()
    assert [(row["position"], row["body"]) for row in rows] == [("1", "second"), ("2", "third")]


def test_stream_peek_from_id_and_since(qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str) -> None:
    ids = [r.xadd(name, {b"body": f"m{i}".encode(), b"kind": b"test"}, id=f"{1_700_000_000_000 + i * 1000}-0")
           for i in range(5)]
    r.xadd(name, {b"data": BINARY}, id="1700000009000-0")
    r.xgroup_create(name, "workers", id="0")
    rows = qctl("peek", "-u", redis_url, name, "-o", "jsonl", "--from", ids[2].decode(), "-n", "2").jsonl()
    assert [row["body"] for row in rows] == ["m2", "m3"]
    assert rows[0]["position"] == ids[2].decode() and rows[0]["headers"] == {"kind": "test"}
    assert rows[0]["timestamp"] == "2023-11-14T22:13:22Z"
    rows = qctl("peek", "-u", redis_url, name, "-o", "jsonl", "--since", "2023-11-14T22:13:24Z").jsonl()
    assert [row["body"] for row in rows][:1] == ["m4"]
    last = rows[-1]
    assert last["headers"] == {} and last["properties"] == {"body_field": "data"}
    assert base64.b64decode(last["body"]) == BINARY
    # Never XREADGROUP: the group saw nothing.
    assert r.xinfo_groups(name)[0]["pending"] == 0 and r.xinfo_groups(name)[0]["entries-read"] is None


def test_zset_peek_lowest_score_first_with_score_property(qctl: QctlRunner, redis_url: str, r: redis.Redis,
                                                        name: str) -> None:
    r.zadd(name, {b"later": 20.5, b"sooner": 10})
    rows = qctl("peek", "-u", redis_url, name, "-o", "jsonl").jsonl()
    assert [(row["position"], row["body"], row["properties"]) for row in rows] == [
        ("0", "sooner", {"score": 10}), ("1", "later", {"score": 20.5})]
    assert r.zcard(name) == 2


def test_peek_missing_key_is_empty_and_bad_options_are_usage_errors(qctl: QctlRunner, redis_url: str,
                                                                   r: redis.Redis, name: str) -> None:
    run = qctl("peek", "-u", redis_url, f"{name}:missing", "-o", "json")
    assert (run.rc, run.json()) == (0, []), run
    r.lpush(name, b"x")
    assert qctl("peek", "-u", redis_url, name, "--since", "2024-01-01T00:00:00Z").rc == 2
    assert qctl("peek", "-u", redis_url, name, "--partition", "1").rc == 2
    assert qctl("peek", "-u", redis_url, name, "--from", "abc").rc == 2
    r.set(f"{name}:s", b"x")
    assert qctl("peek", "-u", redis_url, f"{name}:s").rc == 2
    r.xadd(f"{name}:st", {b"body": b"x"})
    assert qctl("peek", "-u", redis_url, f"{name}:st", "--from", "not-an-id").rc == 2
