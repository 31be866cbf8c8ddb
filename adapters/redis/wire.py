"""Many small read commands in one round trip, without redis-py's per-command Python work.

A job-framework pass reads a hash (and for RQ a stream entry) per job: a
hundred thousand jobs are a few hundred thousand commands.  redis-py's
pipeline packs each command and runs a reply callback for it in Python (~13 us
a job); this writes the RESP commands with one ``bytes`` join and lets the
connection's parser (hiredis, in C) read the replies.  Read-only commands
only: a pipeline is not a step, so anything that changes data still goes
through a script.

Replies are raw (no callbacks): ``HGETALL`` is a flat ``[field, value, ...]``
list on RESP2 and a dict on RESP3 (:func:`pairs` takes both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis import exceptions as rex

Raw = tuple[bytes, ...]


def pack(commands: Sequence[Raw]) -> bytes:
    """RESP arrays of bulk strings for ``commands`` (every part already bytes)."""
    out: list[bytes] = []
    for parts in commands:
        out.append(b"*%d\r\n" % len(parts))
        out += [b"$%d\r\n%s\r\n" % (len(part), part) for part in parts]
    return b"".join(out)


def pipeline(client: redis.Redis, commands: Sequence[Raw]) -> list[Any]:
    """Each command's raw reply, in order; the first error reply is raised once every reply has been read
    (so the connection stays in step), a connection failure at once (the connection is dropped)."""
    if not commands:
        return []
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([pack(commands)], check_health=False)
        replies: list[Any] = []
        failed: rex.ResponseError | None = None
        for _ in range(len(commands)):
            try:
                replies.append(connection.read_response())
            except rex.ResponseError as exc:
                failed = failed or exc
                replies.append(None)
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
    if failed is not None:
        raise failed
    return replies


def pairs(reply: Any) -> dict[bytes, bytes]:
    """A hash reply as a dict, on either protocol (empty when the hash is gone)."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True)) if reply else {}
