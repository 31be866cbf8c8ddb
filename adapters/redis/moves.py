"""One redrive step: move a chunk from the DLQ to one target, atomically.

On a single server, and on a cluster when both keys hash to one slot, a step
is one Lua script.  Keys in different cluster slots cannot share a script, so
those steps go through :mod:`qctl.adapters.redis.crossslot` (a journalled
three-step move that a re-run completes exactly once).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.crc import key_slot

from qctl.adapters.redis import crossslot, scripts
from qctl.adapters.redis.connection import Client, is_cluster
from qctl.adapters.redis.keys import key_bytes
from qctl.adapters.redis.messages import REDRIVE_COUNT_FIELD


def same_slot(client: Client, *names: str) -> bool:
    return not is_cluster(client) or len({key_slot(key_bytes(name)) for name in names}) == 1


def list_ends(list_end: str) -> tuple[str, str]:
    """(consumption end, producer end) of every list, from ``options.list_end``."""
    return ("R", "L") if list_end == "right" else ("L", "R")


def move_list(client: Client, kind: str, dlq: str, target: str, n: int, list_end: str) -> int:
    """Move the next ``n`` messages of a list or sorted set ``dlq`` to the list ``target``."""
    take, push = list_ends(list_end)
    if not same_slot(client, dlq, target):
        return crossslot.move_list(client, kind, dlq, target, n, take, push)
    keys = [key_bytes(dlq), key_bytes(target)]
    if kind == "zset":
        return int(scripts.run(client, scripts.ZSET_MOVE, keys, [n, push]))
    return int(scripts.run(client, scripts.LIST_MOVE, keys, [n, take, push]))


def move_stream(client: Client, dlq: str, target: str, ids: Sequence[bytes]) -> int:
    """Move exactly the entries ``ids`` (in order) of stream ``dlq`` to the stream ``target``."""
    if not same_slot(client, dlq, target):
        return crossslot.move_stream(client, dlq, target, ids)
    keys = [key_bytes(dlq), key_bytes(target)]
    return int(scripts.run(client, scripts.STREAM_MOVE, keys, [REDRIVE_COUNT_FIELD, *ids]))
