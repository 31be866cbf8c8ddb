"""A pass over a list, sorted set or stream: read chunks without touching them, settle exactly those.

Reading is LRANGE / ZRANGE / XRANGE, so it changes nothing.  Settling a chunk
is one :data:`~qctl.adapters.redis.scripts.TAKE` step that checks the chunk is
still where it was read and removes only the chosen messages; the ones kept
stay in place, in order, and the pass reads on past them.  The snapshot is
the depth when the pass opened (lists, sorted sets) or the last entry ID
(streams), so it terminates while producers keep pushing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from qctl.adapters.redis import crossslot, scripts
from qctl.adapters.redis.connection import Client, is_cluster
from qctl.adapters.redis.errors import translating
from qctl.adapters.redis.keys import DEPTH_COMMAND, command, key_bytes, score_pairs
from qctl.adapters.redis.messages import list_message, stream_message, zset_message
from qctl.primitives import ReadMode, SourceTraits, Taken

# A tombstone no real message holds: LSET it over the chosen items, then one LREM removes them.
TOMBSTONE_PREFIX = b"\x00qctl-settled-"


class RedisReader:
    """One pass over ``queue`` of ``kind`` (list, zset or stream)."""

    def __init__(self, client: Client, where: str, queue: str, kind: str, mode: ReadMode, list_end: str) -> None:
        self.client = client
        self.where = where
        self.queue = queue
        self.key = key_bytes(queue)
        self.kind = kind
        self.mode = mode
        self.end = "R" if list_end == "right" else "L"
        self.offset = 0  # lists and sorted sets: messages before the unread part that the pass left in place
        self.read_count = 0
        self._chunk: list[Taken] = []  # the last chunk read: a list step checks all of it, settles the chosen
        # A list or sorted-set member is a bare body: nothing in it can change where a redrive sends it,
        # so a whole-queue redrive may move it blind (RedisDestination.move_blind: one Lua step a chunk).
        self.traits = SourceTraits(settle_before_read=kind != "stream", metadata_free=kind != "stream",
                                   chunk=scripts.CHUNK)
        with translating(where):
            if mode is not ReadMode.READ and is_cluster(client):
                crossslot.finish_pending(client, queue)  # a batch a killed run left staged
            self._total = int(command(client, DEPTH_COMMAND[kind], self.key))
            self._cursor = b"-"
            self._end_id = b"0-0"
            if kind == "stream":
                last = command(client, "XREVRANGE", self.key, "+", "-", "COUNT", 1)
                self._end_id = last[0][0] if last else b"0-0"
                if not last:
                    self._total = 0

    def total(self) -> int:
        return self._total

    def read(self, limit: int) -> list[Taken]:
        limit = min(limit, self._total - self.read_count)
        if limit <= 0:
            return []
        with translating(self.where):
            taken = self._read(limit)
        self.read_count += len(taken)
        self._chunk = taken
        return taken

    def _read(self, n: int) -> list[Taken]:
        start = self.offset
        if self.kind == "stream":
            entries = command(self.client, "XRANGE", self.key, self._cursor, self._end_id, "COUNT", n)
            if entries:
                self._cursor = b"(" + entries[-1][0]
            return [Taken(stream_message(self.queue, entry_id, fields), entry_id) for entry_id, fields in entries]
        if self.kind == "zset":
            pairs = score_pairs(command(self.client, "ZRANGE", self.key, start, start + n - 1, "WITHSCORES"))
            self.offset += len(pairs)
            return [Taken(zset_message(self.queue, start + i, member, score), member)
                    for i, (member, score) in enumerate(pairs)]
        if self.end == "R":
            items = list(reversed(command(self.client, "LRANGE", self.key, -start - n, -start - 1)))
            messages = [list_message(self.queue, -1 - start - i, body) for i, body in enumerate(items)]
        else:
            items = command(self.client, "LRANGE", self.key, start, start + n - 1)
            messages = [list_message(self.queue, start + i, body) for i, body in enumerate(items)]
        self.offset += len(items)
        return [Taken(message, start) for message in messages]  # handle: the chunk's offset when read

    def step(self, taken: Sequence[Taken], target: bytes | None, target_kind: str,
             payloads: Sequence[Sequence[bytes]], push: str, meta: Sequence[Any] = (),
             meta_key: bytes | None = None) -> list[bool]:
        """Remove ``taken`` (some of the last chunk read), pushing ``payloads`` to ``target``, in one step.

        Returns per message of ``taken`` whether it was removed.  A list step checks the whole chunk is
        still where it was read (chunks are settled before the next read: traits.settle_before_read)."""
        if not taken:
            return []
        chunk = self._chunk if self.kind == "list" else list(taken)
        chosen = {id(item): payload for item, payload in zip(taken, payloads, strict=True)}
        offset = chunk[0].handle if self.kind == "list" else 0
        args: list[Any] = [self.kind, target_kind if target else "", self.end, offset, push, len(chunk),
                           TOMBSTONE_PREFIX + uuid.uuid4().hex.encode(), len(meta), *meta]
        for item in chunk:
            token = item.message.body if self.kind == "list" else item.handle
            payload = chosen.get(id(item))
            args += [token, "0" if payload is None else "1", len(payload or ()), *(payload or ())]
        keys = [self.key] + ([target] if target else []) + ([meta_key] if target and meta_key else [])
        with translating(self.where):
            flags = scripts.run(self.client, scripts.TAKE, keys, args)
        if flags == -1 or flags is None:
            return [False] * len(taken)  # a consumer popped meanwhile: the chunk is not where it was read
        text = flags.decode() if isinstance(flags, bytes) else str(flags)
        done = {id(item): flag == "1" for item, flag in zip(chunk, text, strict=True)}
        if self.kind != "stream":
            self.offset -= sum(done.values())  # removed ones no longer stand before the unread part
        return [done[id(item)] for item in taken]

    def settle(self, taken: Sequence[Taken]) -> list[bool]:
        return self.step(taken, None, "", [[] for _ in taken], "")

    def keep(self, taken: Sequence[Taken]) -> None:
        pass  # read-only: they are where they were, and the offset already steps over them

    def close(self) -> None:
        pass
