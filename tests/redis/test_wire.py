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


def test_a_window_read_ahead_serves_the_jobs_it_guessed_and_only_those(r: redis.Redis, name: str) -> None:
    """The next window is read in a thread while the current one is worked on; a guess that went wrong (the
    set changed meanwhile) costs a read of the jobs it missed, never another job's data."""
    from qctl.adapters.redis.layouts.fetch import Prefetch

    ids = [f"{i:03d}".encode() for i in range(20)]
    r.zadd(f"{name}:set", {job_id: i for i, job_id in enumerate(ids)})  # the set the windows come from
    for job_id in ids:
        r.hset(f"{name}:job:{job_id.decode()}".encode(), mapping={"id": job_id})
    ahead = Prefetch(r, lambda job_id: f"{name}:job:".encode() + job_id)
    ahead.ahead(ids[5:10])
    assert [fields[b"id"] for fields, _ in ahead.hashes(ids[5:10])] == ids[5:10]
    assert ahead.fetched == 5
    reads: list[int] = []
    real = wire.pipeline

    def counted(client: object, commands: list[tuple[bytes, ...]]) -> list[object]:
        reads.append(sum(1 for c in commands if c[0] == b"HGETALL"))
        return real(client, commands)  # type: ignore[arg-type]

    import qctl.adapters.redis.layouts.fetch as fetch_module
    original = fetch_module.wire.pipeline
    fetch_module.wire.pipeline = counted  # type: ignore[assignment]
    try:
        ahead.ahead(ids[10:15])  # the guess: ranks 10-14 ...
        r.zrem(f"{name}:set", ids[10], ids[11])  # ... but another client removed two meanwhile,
        got = ahead.hashes(ids[12:17])  # so the window read next is 12-16
    finally:
        fetch_module.wire.pipeline = original  # type: ignore[assignment]
    assert [fields[b"id"] for fields, _ in got] == ids[12:17]
    assert reads[-1] == 2  # 15 and 16: the only ones the guess did not hold
    assert ahead.hashes(ids[0:2]) and ahead.fetched == 10  # nothing left over from the last guess
    ahead.close()
