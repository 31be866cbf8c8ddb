"""The raw pipeline and EVALSHA path (adapters/redis/wire.py) on the real server: replies in order, an error
reply raised only after every reply is read, and a script the server forgot loaded again."""

from __future__ import annotations

import pytest
import redis

from qctl.adapters.redis import scripts, wire


def test_replies_come_back_in_order_and_an_error_leaves_the_connection_in_step(r: redis.Redis, name: str) -> None:
    kwargs = r.connection_pool.connection_kwargs
    client = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0), max_connections=1)
    r.rpush(f"{name}:list", b"a", b"b")
    r.hset(f"{name}:hash", mapping={"f": "v", "g": "\xff"})
    replies = wire.pipeline(client, [(b"LRANGE", f"{name}:list", 0, -1), (b"HGETALL", f"{name}:hash"),
                                     (b"HGETALL", f"{name}:gone")])
    assert replies[0] == [b"a", b"b"]
    assert wire.pairs(replies[1]) == {b"f": b"v", b"g": "\xff".encode()} and wire.pairs(replies[2]) == {}
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        wire.pipeline(client, [(b"HGETALL", f"{name}:list"), (b"LLEN", f"{name}:list")])
    # The one connection read the LLEN reply too: the next command gets its own reply, not a stale one.
    assert wire.pipeline(client, [(b"LLEN", f"{name}:list"), (b"ECHO", b"x")]) == [2, b"x"]


def test_a_script_the_server_forgot_is_loaded_again(r: redis.Redis, name: str) -> None:
    source = "return {KEYS[1], ARGV[1], ARGV[2], ARGV[3]}"
    assert scripts.run(r, source, [f"{name}:k"], [b"\x00bytes", 12, 1.5]) == [f"{name}:k".encode(), b"\x00bytes",
                                                                              b"12", b"1.5"]
    r.script_flush()
    assert scripts.run(r, source, [f"{name}:k"], ["text", -1, 0.25]) == [f"{name}:k".encode(), b"text", b"-1",
                                                                         b"0.25"]


def test_a_value_redis_cannot_take_is_refused_before_anything_is_sent(r: redis.Redis) -> None:
    with pytest.raises(TypeError):
        scripts.run(r, "return 1", [], [True])
    assert r.ping()
