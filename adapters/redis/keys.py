"""Find queues: SCAN (never KEYS) plus pipelined TYPE and depth, a few round trips per thousand keys.

On a cluster redis-py's ``scan_iter`` walks every primary and its pipelines
split commands by slot, so the same code serves both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from qctl.adapters.redis.connection import Client

QUEUE_TYPES = ("list", "stream", "zset")
DEPTH_COMMAND = {"list": "LLEN", "stream": "XLEN", "zset": "ZCARD"}
SCAN_COUNT = 2000  # keys the server looks at per SCAN call: bounded work per step
PIPELINE_SIZE = 2000
# Keys qctl itself keeps while a cross-slot redrive is in progress (see crossslot.py).
INTERNAL_MARK = "qctl-redrive-"
GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    return any(char in GLOB_CHARS for char in pattern)


def redis_glob(pattern: str) -> str:
    """Shell ``[!x]`` is Redis ``[^x]``; the rest of the syntax is the same."""
    return pattern.replace("[!", "[^")


def key_name(raw: bytes | str) -> str:
    return raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw


def key_bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def scan(client: Client, match: str | None = None) -> Iterator[str]:
    """Every key (matching ``match``), skipping qctl's own bookkeeping keys."""
    for raw in client.scan_iter(match=match, count=SCAN_COUNT):
        name = key_name(raw)
        if INTERNAL_MARK not in name:
            yield name


def chunks(items: Sequence[Any], size: int = PIPELINE_SIZE) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def pipelined(client: Client, commands: Iterable[tuple[Any, ...]]) -> list[Any]:
    """Run commands in pipelines of bounded size; results in order."""
    results: list[Any] = []
    for batch in chunks(list(commands)):
        pipe = client.pipeline(transaction=False)
        for command in batch:
            pipe.execute_command(*command)
        results.extend(pipe.execute())
    return results


def types_of(client: Client, names: Sequence[str]) -> list[str]:
    """Redis TYPE of each key (``none`` when missing)."""
    return [key_name(kind) for kind in pipelined(client, (("TYPE", key_bytes(name)) for name in names))]


def depths(client: Client, typed: Sequence[tuple[str, str]]) -> list[int]:
    """LLEN / XLEN / ZCARD of each (name, type); 0 for a missing key."""
    commands = [(DEPTH_COMMAND.get(kind, "LLEN"), key_bytes(name)) for name, kind in typed]
    return [int(value) for value in pipelined(client, commands)]


def types_and_depths(client: Client, names: Sequence[str]) -> list[tuple[str, int]]:
    """(TYPE, depth) of each key: one script call per thousand keys on a single server;
    on a cluster (a script's keys must share a slot) pipelined TYPE, then pipelined depth."""
    from qctl.adapters.redis import scripts
    from qctl.adapters.redis.connection import is_cluster

    if is_cluster(client):
        kinds = types_of(client, names)
        queues = [(n, k) for n, k in zip(names, kinds, strict=True) if k in QUEUE_TYPES]
        known = dict(zip((n for n, _ in queues), depths(client, queues), strict=True))
        return [(kind, known.get(name, 0)) for name, kind in zip(names, kinds, strict=True)]
    result: list[tuple[str, int]] = []
    for batch in chunks(names, 1000):
        packed = scripts.run(client, scripts.TYPES_AND_DEPTHS, [key_bytes(n) for n in batch], [])
        words = key_name(packed).split(" ")
        result.extend(zip(words[::2], map(int, words[1::2]), strict=True))
    return result


def queue_type(client: Client, name: str) -> str:
    """``list``/``stream``/``zset``, or ``none`` when the key does not exist, or the other type."""
    return key_name(client.type(key_bytes(name)))


def command(client: Client, *args: Any) -> Any:
    """One raw command; redis-py's per-command typing is too loose to be useful here."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def score_pairs(reply: Any) -> list[tuple[bytes, float]]:
    """ZRANGE ... WITHSCORES as (member, score), whether redis-py paired it or not."""
    if reply and not isinstance(reply[0], (list, tuple)):
        reply = zip(reply[::2], reply[1::2], strict=True)
    return [(member, float(score)) for member, score in reply]
