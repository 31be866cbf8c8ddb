"""Publishing into a list, sorted set or stream, and moving into it from a pass on the same server.

:meth:`RedisDestination.send` pushes a chunk in one MULTI block (lists get the
messages at the producer end, so consumers take them in order; streams one
XADD per message with its fields in order; sorted sets ZADD with the message's
score).  :meth:`move_from` is the atomic shortcut for a pass over a key of the
same Redis: one :data:`~qctl.adapters.redis.scripts.TAKE` step removes the
chosen messages from the source and pushes them here, so killed at any instant
a message is in one place, never both.  Keys in different cluster slots go
through :mod:`qctl.adapters.redis.crossslot`.  A missing key is created with
the type its first message asks for (:func:`~qctl.adapters.redis.messages.kind_for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qctl.adapters.redis import crossslot, scripts
from qctl.adapters.redis.connection import Client, is_cluster
from qctl.adapters.redis.errors import translating
from qctl.adapters.redis.keys import key_bytes, queue_type
from qctl.adapters.redis.messages import STREAM_PROPERTIES, ZSET_PROPERTIES, kind_for, score_of, stream_fields
from qctl.adapters.redis.reader import RedisReader
from qctl.errors import Unsupported
from qctl.models import Message
from qctl.primitives import Carries, Reader, Sync, Taken, sync_confirmed

QUEUE_KINDS = ("list", "zset", "stream")


def push_end(list_end: str) -> str:
    """The producer end of a list whose consumers pop at ``list_end``."""
    return "L" if list_end == "right" else "R"


class RedisDestination:
    def __init__(self, client: Client, where: str, queue: str, list_end: str) -> None:
        self.client = client
        self.where = where
        self.queue = queue
        self.key = key_bytes(queue)
        self.push = push_end(list_end)
        with translating(where):
            kind = queue_type(client, queue)
        if kind not in (*QUEUE_KINDS, "none"):
            raise Unsupported(f"cannot publish into {queue!r}: it is a Redis {kind}, not a list, stream or sorted set")
        self.kind: str | None = None if kind == "none" else kind

    @property
    def carries(self) -> Carries:
        """A list keeps the body; a sorted set the body and its score; a stream the body, every header as
        a field (one value per name) and where the body field sits.  None keeps a key or the message's
        time: XADD gives an entry a new ID, that is, the time it arrived (docs/mapping.md)."""
        if self.kind == "stream":
            return Carries(headers=True, properties=True, property_names=STREAM_PROPERTIES)
        if self.kind == "zset":
            return Carries(properties=True, property_names=ZSET_PROPERTIES)
        return Carries()

    def _kind(self, first: Message) -> str:
        if self.kind is None:
            self.kind = kind_for(first)
        return self.kind

    def refusal(self, message: Message) -> str | None:
        if (self.kind or kind_for(message)) == "zset" and score_of(message) is None:
            return f"a sorted set needs a numeric score (properties.score) for each member ({self.queue!r})"
        return None

    def payload(self, kind: str, message: Message) -> list[bytes]:
        if kind == "stream":
            return stream_fields(message)
        if kind == "zset":
            return [repr(score_of(message) or 0.0).encode(), message.body]
        return [message.body]

    def send(self, messages: Sequence[Message]) -> Sync:
        if not messages:
            return Sync([])
        kind = self._kind(messages[0])
        with translating(self.where):
            pipe = self.client.pipeline(transaction=not is_cluster(self.client))
            if kind == "list":
                pipe.execute_command("LPUSH" if self.push == "L" else "RPUSH", self.key,
                                     *(message.body for message in messages))
            elif kind == "zset":
                pipe.execute_command("ZADD", self.key, *(part for m in messages for part in self.payload(kind, m)))
            else:
                for message in messages:
                    pipe.execute_command("XADD", self.key, "*", *stream_fields(message))
            pipe.execute()
        return Sync([True] * len(messages))

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool]:
        return sync_confirmed(ticket)

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> list[bool] | None:
        if not isinstance(reader, RedisReader) or reader.client is not self.client or not taken:
            return None
        kind = self._kind(outgoing[0])
        payloads = [self.payload(kind, message) for message in outgoing]
        if not crossslot.same_slot(self.client, reader.queue, self.queue):
            return crossslot.take(reader, self, kind, taken, payloads)
        return reader.step(taken, self.key, kind, payloads, self.push)

    def move_blind(self, reader: Reader, limit: int) -> int | None:
        """Move the next ``limit`` messages of a list here without reading them (None: cannot).  A sorted
        set's members are read (the regular path, atomic too): their scores do not survive in a list, and
        the pass counts that for its notice."""
        if (not isinstance(reader, RedisReader) or reader.client is not self.client or reader.kind != "list"
                or reader.offset != 0 or (self.kind or "list") != "list"
                or not crossslot.same_slot(self.client, reader.queue, self.queue)):
            return None
        with translating(self.where):
            moved = int(scripts.run(self.client, scripts.LIST_MOVE, [reader.key, self.key],
                                    [limit, reader.end, self.push]))
        self.kind = self.kind or "list"
        reader.read_count += moved
        return moved
