"""Many small commands in one round trip, and big script calls, without redis-py's per-argument Python work.

A job-framework pass reads a hash (and for RQ a stream entry) per job: a
hundred thousand jobs are a few hundred thousand commands.  redis-py's
pipeline packs each command and runs a reply callback for it in Python (~13 us
a job); this writes the RESP commands with one ``bytes`` join and lets the
connection's parser (hiredis, in C) read the replies.  Read-only commands
only: a pipeline is not a step, so anything that changes data still goes
through a script.

A step's ``EVALSHA`` carries a dozen arguments per job, thousands per call:
:func:`evalsha` has hiredis encode them in C the way redis-py does (bytes as
they are, text as UTF-8, numbers as ``repr``) instead of a generator and an
``isinstance`` chain per argument in Python.

Replies are raw (no callbacks): ``HGETALL`` is a flat ``[field, value, ...]``
list on RESP2 and a dict on RESP3 (:func:`pairs` takes both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
import redis
from redis import exceptions as rex

from qctl.adapters.redis.connection import Client

Raw = tuple[Any, ...]


def pack(commands: Sequence[Sequence[Any]]) -> bytes:
    """RESP arrays for ``commands`` (parts bytes, text, ints or floats, encoded as redis-py does: text as
    UTF-8, numbers as ``repr``), by hiredis in C: half the cost of formatting each part in Python."""
    return b"".join([hiredis.pack_command(tuple(parts)) for parts in commands])


def evalsha(client: redis.Redis, sha: bytes, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """``EVALSHA sha`` on a single server: its reply, or ``NoScriptError`` (the caller loads the script).
    An argument that is not bytes, text, an int or a float (a bool, None) is a TypeError from hiredis."""
    return pipeline(client, [(b"EVALSHA", sha, len(keys), *keys, *args)])[0]


def pipeline(client: Client, commands: Sequence[Raw]) -> list[Any]:
    """Each command's raw reply, in order; the first error reply is raised once every reply has been read
    (so the connection stays in step), a connection failure at once (the connection is dropped).  A single
    server only: the job-framework layouts refuse a Cluster before they read anything."""
    if not commands:
        return []
    assert isinstance(client, redis.Redis), "a raw pipeline needs a single server"
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([pack(commands)], check_health=False)  # type: ignore[no-untyped-call]
        replies: list[Any] = []
        failed: rex.ResponseError | None = None
        for _ in range(len(commands)):
            try:
                replies.append(connection.read_response())
            except rex.ResponseError as exc:
                failed = failed or exc
                replies.append(None)
    except BaseException:
        connection.disconnect()  # type: ignore[no-untyped-call]
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
