"""Publish messages (``qctl restore``) to a list, stream or sorted set.

The target's type decides how; a missing target gets the type of the first
message (:func:`qctl.adapters.redis.messages.restore_kind`: a stream-ID
position means a stream, a lone ``score`` header a sorted set, else a list).
Lists get the messages at the producer end so consumers take them in file
order; streams get one XADD per message (fields from headers, the body under
``body`` or ``x-qctl-body-field``); sorted sets ZADD with ``headers["score"]``.
Each chunk is one atomic command or MULTI block.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from qctl.adapter import Progress
from qctl.adapters.redis.connection import Client, is_cluster
from qctl.adapters.redis.keys import key_bytes, queue_type
from qctl.adapters.redis.messages import SCORE_HEADER, restore_kind, stream_fields
from qctl.adapters.redis.moves import list_ends
from qctl.errors import Unsupported, UsageError
from qctl.models import Message

PUBLISH_CHUNK = 1000


def publish(client: Client, queue: str, messages: Iterable[Message], progress: Progress, list_end: str) -> int:
    kind = queue_type(client, queue)
    if kind not in ("list", "stream", "zset", "none"):
        raise Unsupported(f"cannot restore into {queue!r}: it is a Redis {kind}")
    published = 0
    for chunk in _chunks(messages):
        if kind == "none":
            kind = restore_kind(chunk[0])
        pipe = client.pipeline(transaction=not is_cluster(client))
        for command in _commands(queue, kind, chunk, list_end):
            pipe.execute_command(*command)
        pipe.execute()
        published += len(chunk)
        progress.advance(len(chunk))
    return published


def _chunks(messages: Iterable[Message]) -> Iterator[list[Message]]:
    iterator = iter(messages)
    while chunk := list(islice(iterator, PUBLISH_CHUNK)):
        yield chunk


def _commands(queue: str, kind: str, chunk: Sequence[Message], list_end: str) -> list[tuple[Any, ...]]:
    key = key_bytes(queue)
    if kind == "stream":
        return [("XADD", key, "*", *stream_fields(message)) for message in chunk]
    if kind == "zset":
        return [("ZADD", key, *[part for message in chunk for part in (_score(message), message.body)])]
    # Pushed in file order at the producer end: the first line is consumed first.
    push = "LPUSH" if list_ends(list_end)[1] == "L" else "RPUSH"
    return [(push, key, *(message.body for message in chunk))]


def _score(message: Message) -> float:
    score = message.headers.get(SCORE_HEADER)
    if isinstance(score, bool) or not isinstance(score, (int, float, str)):
        raise UsageError(f"message {message.position!r} has no numeric 'score' header for a sorted set")
    try:
        return float(score)
    except ValueError:
        raise UsageError(f"message {message.position!r}: score {score!r} is not a number") from None
