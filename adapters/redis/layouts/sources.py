"""Readers over a framework's lists and sorted sets: read chunks without touching them, settle in one step.

Every layout reads the same two shapes: a *list* (a Sidekiq or Celery queue
holds the job itself, an RQ or BullMQ queue a job id) read from the end its
workers pop first, and a *sorted set* (dead, retry and failed sets) read
lowest score first.  A layout supplies ``decode`` (raw items -> Messages, one
round trip for a whole chunk) and, per job, the commands that delete it
(``delete_ops``); settling and the framework's own moves are
:func:`~qctl.adapters.redis.layouts.steps.run` steps with the checks these
readers know (the list chunk's place, or ``ZREM`` of the exact member).

A pass reads at most what the source held when it opened.  A sorted-set pass
re-anchors on the last member it left in place (``ZRANK``), so members that
others remove from the low end meanwhile (Sidekiq's scheduler, RQ's cleanup,
its trimming of the dead set) do not make it skip any.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeGuard

from qctl.adapters.redis import scripts
from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.errors import translating
from qctl.adapters.redis.keys import command, score_pairs
from qctl.adapters.redis.layouts import steps
from qctl.adapters.redis.layouts.base import Layout
from qctl.adapters.redis.layouts.fetch import Prefetch
from qctl.adapters.redis.layouts.steps import Command, Item
from qctl.adapters.redis.reader import TOMBSTONE_PREFIX
from qctl.errors import UsageError
from qctl.models import Message
from qctl.primitives import ReadMode, SourceTraits, Taken

# (item, position) -> Message, or None for an item this view does not show (another queue's job).
Decode = Callable[[Sequence[tuple[bytes, str, float | None]]], list[Message | None]]
DeleteOps = Callable[[Taken], list[Command]]

# KEYS: the set.  ARGV: the last member left in place (or ''), the rank to start at without it, how many,
# '1' to walk from the highest score down.
ZSET_WINDOW = """
local start = tonumber(ARGV[2])
local rev = ARGV[4] == '1'
if ARGV[1] ~= '' then
  local rank = redis.call(rev and 'ZREVRANK' or 'ZRANK', KEYS[1], ARGV[1])
  if rank then start = rank + 1 end
end
local stop = start + tonumber(ARGV[3]) - 1
if rev then return {start, redis.call('ZRANGE', KEYS[1], start, stop, 'REV', 'WITHSCORES')} end
return {start, redis.call('ZRANGE', KEYS[1], start, stop, 'WITHSCORES')}
"""


class Source:
    """What the engine's Reader protocol asks, shared by both shapes."""

    kind = ""

    def __init__(self, layout: Layout, queue: str, key: bytes, mode: ReadMode, decode: Decode,
                 delete_ops: DeleteOps, *, chunk: int, origin: str | None = None, start: int = 0,
                 prefetch: Prefetch | None = None) -> None:
        self.layout = layout  # only this layout's destinations move from it in one step
        self.prefetch = prefetch  # the decoder's read-ahead of job hashes (sorted sets of job ids), if any
        self.client: Client = layout.client
        self.where = layout.where
        self.queue = queue
        self.key = key
        self.mode = mode
        self.decode = decode
        self.delete_ops = delete_ops
        self.macros = layout.macros
        self.pace = steps.Pace()  # jobs per Lua step, kept near a few milliseconds each
        self.read_count = 0  # items looked at (shown or not), bounded by the snapshot
        self.start = max(0, start)  # peek --from: items (from the consumption end) or ranks to pass over
        self.traits = SourceTraits(settle_before_read=True, chunk=chunk, origin=origin)
        self._total = 0

    def total(self) -> int | None:
        return self._total

    def read(self, limit: int) -> list[Taken]:
        raise NotImplementedError

    def keep(self, taken: Sequence[Taken]) -> None:
        pass  # read-only until settled: what is kept is where it was

    def close(self) -> None:
        if self.prefetch is not None:
            self.prefetch.close()

    def settle(self, taken: Sequence[Taken]) -> list[bool]:
        return self.step(taken, [self.delete_ops(item) if self.mode is ReadMode.DELETE else [] for item in taken])

    def step(self, taken: Sequence[Taken], ops: Sequence[list[Command] | None],
             extra: Sequence[Sequence[Command]] = ()) -> list[bool]:
        """Take ``taken`` (of the last chunk read) out of the source and run ``ops[i]`` for each that was
        still there, in one atomic step; ``extra[i]`` are more checks to pass first.  Per job: done?
        ``ops[i]`` None leaves that job where it is (not done); ``[]`` takes it out with nothing else."""
        raise NotImplementedError


class SetSource(Source):
    """A sorted set, lowest score first (``reverse``: highest first); the handle of a job is its exact member."""

    kind = "zset"

    def __init__(self, *args: Any, reverse: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reverse = reverse
        self._start = self.start  # rank of the next unread member, if nothing moved
        self._chunk: list[bytes] = []
        self._removed: set[bytes] = set()
        with translating(self.where):
            self._total = max(0, int(command(self.client, "ZCARD", self.key)) - self.start)

    def read(self, limit: int) -> list[Taken]:
        found: list[Taken] = []
        with translating(self.where):
            while not found and self.read_count < self._total:
                n = min(limit, self._total - self.read_count)
                # With a read-ahead, the window after this one too: its members, read before this one's step.
                following = min(n, self._total - self.read_count - n) if self.prefetch is not None else 0
                anchor = next((m for m in reversed(self._chunk) if m not in self._removed), b"")
                start = self._start + len(self._chunk) - len(self._removed)
                first, reply = scripts.run(self.client, ZSET_WINDOW, [self.key],
                                           [anchor, start, n + max(0, following), "1" if self.reverse else ""])
                pairs = score_pairs(reply)
                pairs, after = pairs[:n], pairs[n:]
                if not pairs:
                    break
                self._start, self._chunk, self._removed = int(first), [m for m, _ in pairs], set()
                self.read_count += len(pairs)
                rows = [(member, str(int(first) + i), score) for i, (member, score) in enumerate(pairs)]
                found = [Taken(message, member) for message, (member, _, _) in zip(self.decode(rows), rows,
                                                                                   strict=True)
                         if message is not None]
                if self.prefetch is not None and after:  # the next window, while the engine works on this one
                    self.prefetch.ahead([member for member, _ in after])
        return found

    def step(self, taken: Sequence[Taken], ops: Sequence[list[Command] | None],
             extra: Sequence[Sequence[Command]] = ()) -> list[bool]:
        chosen = [i for i, commands in enumerate(ops) if commands is not None]
        items = [Item(checks=[*(extra[i] if extra else ()), ("Z", self.key, taken[i].handle)], ops=list(ops[i] or ()))
                 for i in chosen]
        done: list[bool] = []
        with translating(self.where):
            while len(done) < len(items):  # members are independent: a chunk may take several steps
                batch = items[len(done): len(done) + self.pace.size]
                done += steps.run(self.client, batch, macros=self.macros, pace=self.pace) or [False] * len(batch)
        result = [False] * len(taken)
        for i, ok in zip(chosen, done, strict=True):
            result[i] = ok
        self._removed.update(item.handle for item, ok in zip(taken, result, strict=True) if ok)
        return result


class ListSource(Source):
    """A list read from the end its workers pop first (``R``: LPUSH + BRPOP; ``L``: RPUSH + BLPOP).

    The handle of a job is the list element (the job, or its id) as read."""

    kind = "list"

    def __init__(self, *args: Any, end: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.end = end
        self.offset = self.start  # items before the unread part that the pass left in place
        self._rows: list[tuple[bytes, Taken | None]] = []  # the last chunk read, in order
        self._chunk_offset = 0
        with translating(self.where):
            self._total = max(0, int(command(self.client, "LLEN", self.key)) - self.start)

    def read(self, limit: int) -> list[Taken]:
        # A list chunk settles in one step: read no more than a step takes (a READ pass settles nothing).
        n = min(limit, self._total - self.read_count, limit if self.mode is ReadMode.READ else self.pace.size)
        if n <= 0:
            return []
        start = self.offset
        with translating(self.where):
            if self.end == "R":
                items = list(reversed(command(self.client, "LRANGE", self.key, -start - n, -start - 1)))
            else:
                items = command(self.client, "LRANGE", self.key, start, start + n - 1)
            rows = [(item, str(-1 - start - i if self.end == "R" else start + i), None)
                    for i, item in enumerate(items)]
            messages = self.decode(rows) if rows else []
        self.read_count += len(items)
        self.offset += len(items)
        self._chunk_offset = start
        self._rows = [(item, None if message is None else Taken(message, item))
                      for message, (item, _, _) in zip(messages, rows, strict=True)]
        return [taken for _, taken in self._rows if taken is not None]

    def step(self, taken: Sequence[Taken], ops: Sequence[list[Command] | None],
             extra: Sequence[Sequence[Command]] = ()) -> list[bool]:
        if not taken:
            return []
        chosen = {id(item): i for i, item in enumerate(taken) if ops[i] is not None}  # the others hold their place
        items = []
        for element, held in self._rows:
            index = chosen.get(id(held)) if held is not None else None
            if index is None:
                items.append(Item(token=element))
            else:
                items.append(Item(token=element, checks=[*(extra[index] if extra else ()), ("L",)],
                                  ops=list(ops[index] or ())))
        tomb = TOMBSTONE_PREFIX + uuid.uuid4().hex.encode()
        with translating(self.where):
            done = steps.run(self.client, items, list_key=self.key, end=self.end, offset=self._chunk_offset,
                             tomb=tomb, macros=self.macros, pace=self.pace)
        if done is None:
            return [False] * len(taken)  # a worker popped meanwhile: the chunk is not where it was read
        flags = {id(held): ok for (_, held), ok in zip(self._rows, done, strict=True) if held is not None}
        result = [flags.get(id(item), False) for item in taken]
        self.offset -= sum(result)
        return result


class Chain:
    """Several sources read one after the other as one queue (BullMQ's wait, paused and prioritized jobs;
    kombu's priority lists).  A chunk comes from one source, and settles there."""

    def __init__(self, parts: Sequence[Source]) -> None:
        self.parts = list(parts)
        self.queue = parts[0].queue
        self.traits = parts[0].traits
        self.layout = parts[0].layout
        self.client = parts[0].client
        self._index = 0

    @property
    def current(self) -> Source:
        return self.parts[min(self._index, len(self.parts) - 1)]

    def total(self) -> int | None:
        return sum(part.total() or 0 for part in self.parts)

    def read(self, limit: int) -> list[Taken]:
        while self._index < len(self.parts):
            taken = self.parts[self._index].read(limit)
            if taken:
                return taken
            self._index += 1
        return []

    def settle(self, taken: Sequence[Taken]) -> list[bool]:
        return self.current.settle(taken)

    def step(self, taken: Sequence[Taken], ops: Sequence[list[Command] | None],
             extra: Sequence[Sequence[Command]] = ()) -> list[bool]:
        return self.current.step(taken, ops, extra)

    def keep(self, taken: Sequence[Taken]) -> None:
        pass

    def close(self) -> None:
        pass


def peek(source: Source | Chain, count: int, step: int = 1000) -> Iterator[Message]:
    """The first ``count`` messages of a fresh READ pass (which changes nothing)."""
    left = count
    while left > 0:
        batch = source.read(min(step, left))
        if not batch:
            return
        for taken in batch:
            yield taken.message
        left -= len(batch)


def start_at(position: str | None, end: str) -> int:
    """``peek --from``: a list index (``-1`` is the next job of a list popped at the right) or a set rank."""
    if position is None:
        return 0
    try:
        index = int(position)
    except ValueError:
        raise UsageError(f"--from {position!r} is not a list index or rank",
                         hint="e.g. --from 0 or --from -1") from None
    if end == "R":
        if index >= 0:
            raise UsageError(f"--from {position!r}: this queue's next job is -1, the one after it -2...",
                             hint="give a negative index")
        return -index - 1
    if index < 0:
        raise UsageError(f"--from {position!r}: positions here count from 0", hint="give 0 or more")
    return index


def owned(reader: object, layout: Layout) -> TypeGuard[Source | Chain]:
    """Is ``reader`` a pass of this layout over this connection (so that one step can move from it)?"""
    return isinstance(reader, (Source, Chain)) and reader.layout is layout


def part(reader: Source | Chain) -> Source:
    """The source the last chunk came from."""
    return reader.current if isinstance(reader, Chain) else reader
