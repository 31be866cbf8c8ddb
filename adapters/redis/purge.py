"""``qctl purge`` for Redis without a backup or ``--where``: bounded atomic chunks, no data moved.

It purges at most the messages present when it starts (a queue with busy
producers cannot keep it running): LTRIM in a script that counts, XDEL of the
oldest IDs up to the last one at the start (the stream and its consumer
groups stay), ZREMRANGEBYRANK.  With a backup or a selection, purge is a pass
of the core engine over a :class:`~qctl.adapters.redis.reader.RedisReader`.
"""

from __future__ import annotations

from collections.abc import Callable

from qctl.adapters.redis import scripts
from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.keys import DEPTH_COMMAND, command, key_bytes
from qctl.models import PurgeResult


def purge(client: Client, queue: str, kind: str, list_end: str) -> PurgeResult:
    key = key_bytes(queue)
    total = int(command(client, DEPTH_COMMAND[kind], key))
    step = _step(client, key, kind, "R" if list_end == "right" else "L")
    purged = 0
    while purged < total:
        removed = step(min(scripts.CHUNK, total - purged))
        if removed <= 0:
            break  # consumers emptied it first
        purged += removed
    return PurgeResult(queue=queue, purged=purged)


def _step(client: Client, key: bytes, kind: str, end: str) -> Callable[[int], int]:
    if kind == "stream":
        last = command(client, "XREVRANGE", key, "+", "-", "COUNT", 1)
        last_id = last[0][0] if last else b"0-0"
        return lambda n: int(scripts.run(client, scripts.STREAM_REMOVE, [key], [last_id, n]))
    if kind == "zset":
        return lambda n: int(command(client, "ZREMRANGEBYRANK", key, 0, n - 1))
    return lambda n: int(scripts.run(client, scripts.LIST_REMOVE, [key], [end, n]))
