"""``qctl purge`` for Redis, in bounded atomic chunks.

It purges at most the messages present when it starts (a queue with busy
producers cannot keep it running).  Without ``--backup`` each chunk is one
bounded command (LTRIM in a script that counts, XDEL of the oldest IDs,
ZREMRANGEBYRANK).  With ``--backup`` each chunk is read, written and fsynced,
then exactly those items are deleted: a list chunk only if the consumption end
still holds it (else it is read again), stream entries by ID, sorted-set
members by name.  A list chunk read twice because a consumer popped meanwhile
appears twice in the backup; nothing is ever deleted unwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qctl.adapters.redis import scripts
from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.keys import DEPTH_COMMAND, command, key_bytes, score_pairs
from qctl.adapters.redis.messages import list_message, stream_message, zset_message
from qctl.models import Message, PurgeRequest, PurgeResult

BACKUP_CHUNK = 1000  # smaller than a move: a chunk waits for an fsync before it is deleted
Step = Callable[[int, int], int]  # (chunk size, purged so far) -> removed (0: nothing left)


def purge(client: Client, queue: str, kind: str, request: PurgeRequest, list_end: str) -> PurgeResult:
    key = key_bytes(queue)
    total = int(command(client, DEPTH_COMMAND[kind], key))
    backup = request.backup
    step = _step(client, queue, kind, backup, "R" if list_end == "right" else "L")
    chunk = BACKUP_CHUNK if backup is not None else scripts.CHUNK
    purged = 0
    while purged < total:
        removed = step(min(chunk, total - purged), purged)
        if removed <= 0:
            break  # consumers emptied it first
        purged += removed
    return PurgeResult(queue=queue, purged=purged, backup=str(backup.path) if backup is not None else None)


def _step(client: Client, queue: str, kind: str, backup: Any, end: str) -> Step:
    key = key_bytes(queue)
    if kind == "stream":
        last = command(client, "XREVRANGE", key, "+", "-", "COUNT", 1)
        last_id = last[0][0] if last else b"0-0"
        if backup is None:
            return lambda n, _: int(scripts.run(client, scripts.STREAM_REMOVE, [key], [last_id, n]))
        return lambda n, _: _backed_stream(client, queue, last_id, n, backup)
    if kind == "zset":
        if backup is None:
            return lambda n, _: int(command(client, "ZREMRANGEBYRANK", key, 0, n - 1))
        return lambda n, _: _backed_zset(client, queue, n, backup)
    if backup is None:
        return lambda n, _: int(scripts.run(client, scripts.LIST_REMOVE, [key], [end, n]))
    return lambda n, done: _backed_list(client, queue, end, n, done, backup)


def _backed_list(client: Client, queue: str, end: str, n: int, done: int, backup: Any) -> int:
    key = key_bytes(queue)
    while True:
        items = command(client, "LRANGE", key, -n, -1) if end == "R" else command(client, "LRANGE", key, 0, n - 1)
        if not items:
            return 0
        in_order = list(reversed(items)) if end == "R" else items
        backup.write([_purged_list_item(queue, end, done + i, body) for i, body in enumerate(in_order)])
        removed = int(scripts.run(client, scripts.LIST_REMOVE, [key], [end, len(items), *items]))
        if removed >= 0:
            return removed


def _purged_list_item(queue: str, end: str, ordinal: int, body: bytes) -> Message:
    # Positions as peek showed them before the purge started.
    return list_message(queue, -1 - ordinal if end == "R" else ordinal, body)


def _backed_stream(client: Client, queue: str, last_id: bytes, n: int, backup: Any) -> int:
    key = key_bytes(queue)
    entries = command(client, "XRANGE", key, "-", last_id, "COUNT", n)
    if not entries:
        return 0
    backup.write([stream_message(queue, entry_id, fields) for entry_id, fields in entries])
    command(client, "XDEL", key, *(entry_id for entry_id, _ in entries))
    return len(entries)


def _backed_zset(client: Client, queue: str, n: int, backup: Any) -> int:
    key = key_bytes(queue)
    pairs = score_pairs(command(client, "ZRANGE", key, 0, n - 1, "WITHSCORES"))
    if not pairs:
        return 0
    backup.write([zset_message(queue, rank, member, score) for rank, (member, score) in enumerate(pairs)])
    command(client, "ZREM", key, *(member for member, _ in pairs))
    return len(pairs)
