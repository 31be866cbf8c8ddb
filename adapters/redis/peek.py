"""``qctl peek`` for Redis: LRANGE / XRANGE / ZRANGE, read-only by construction.

Lists are read from the end consumers pop first.  With ``list_end="right"``
(LPUSH + BRPOP: Celery, Sidekiq) the next message is index ``-1`` and positions
are negative LINDEX indexes, which stay valid while producers push on the left;
with ``"left"`` (RPUSH + BLPOP: RQ) they are ``0, 1, ...``.  ``--from`` takes such
an index (lists), a stream ID (streams) or a rank (sorted sets).  Streams never
use XREADGROUP, so no group, pending entry or delivery count changes.
"""

from __future__ import annotations

from collections.abc import Iterator

from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.keys import command, key_bytes, score_pairs
from qctl.adapters.redis.messages import list_message, stream_message, zset_message
from qctl.errors import Unsupported, UsageError
from qctl.models import Message, PeekRequest

STEP = 1000  # messages per read: a peek of 10,000 is ten round trips, and stops early when closed


def peek(client: Client, queue: str, kind: str, request: PeekRequest, list_end: str) -> Iterator[Message]:
    """Up to ``request.count`` messages in consumption order, read ``STEP`` at a time."""
    if request.since is not None and kind != "stream":
        raise Unsupported(f"--since works on streams; {queue!r} is a Redis {kind}")
    if kind == "stream":
        yield from _stream(client, queue, request)
        return
    start = _index(request.from_position)
    left = request.count
    while left > 0:
        step = min(STEP, left)
        if kind == "zset":
            batch = _zset(client, queue, start or 0, step)
        else:
            batch = _list(client, queue, start, step, list_end)
        yield from batch
        if len(batch) < step:
            return
        left -= len(batch)
        start = int(batch[-1].position) + (-1 if kind == "list" and list_end == "right" else 1)


def _index(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--from {text!r} is not a list index or rank", hint="e.g. --from 0 or --from -1") from None


def _list(client: Client, queue: str, start: int | None, count: int, list_end: str) -> list[Message]:
    key = key_bytes(queue)
    if list_end == "right":
        # Walk leftwards from `start` (default -1, the next message BRPOP takes).
        stop = -1 if start is None else start
        if stop >= 0:
            stop -= int(command(client, "LLEN", key))
        if stop >= 0:
            return []
        bodies = list(reversed(command(client, "LRANGE", key, stop - count + 1, stop)))
        return [list_message(queue, stop - offset, body) for offset, body in enumerate(bodies)]
    first = 0 if start is None else start
    if first < 0:
        first = max(0, first + int(command(client, "LLEN", key)))
    items = command(client, "LRANGE", key, first, first + count - 1)
    return [list_message(queue, first + offset, body) for offset, body in enumerate(items)]


def _stream(client: Client, queue: str, request: PeekRequest) -> Iterator[Message]:
    start: str | bytes = request.from_position or "-"
    if request.since is not None:
        start = f"{int(request.since.timestamp() * 1000)}-0"
    left = request.count
    while left > 0:
        entries = command(client, "XRANGE", key_bytes(queue), start, "+", "COUNT", min(STEP, left))
        for entry_id, fields in entries:
            yield stream_message(queue, entry_id, fields)
        if len(entries) < min(STEP, left):
            return
        left -= len(entries)
        start = b"(" + entries[-1][0]


def _zset(client: Client, queue: str, start: int, count: int) -> list[Message]:
    """Lowest score first: the order a delayed or retry set releases its members."""
    key = key_bytes(queue)
    if start < 0:
        start = max(0, start + int(command(client, "ZCARD", key)))
    pairs = score_pairs(command(client, "ZRANGE", key, start, start + count - 1, "WITHSCORES"))
    return [zset_message(queue, start + rank, member, score) for rank, (member, score) in enumerate(pairs)]
