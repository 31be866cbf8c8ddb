"""A pass over an SQS queue: receive batches, delete what the engine settles, hand back the rest at the end.

SQS has no snapshot and no browse, so a pass works with what it can see:

* ``total`` is ApproximateNumberOfMessages when the pass opens (visible
  messages; in-flight and delayed ones are not counted) and the pass reads at
  most that many.  It also ends when receives come back empty: a round of
  short-poll receives that brings nothing new is followed by one long poll
  (WaitTimeSeconds), which SQS answers empty only when nothing is visible.
* Messages are received with a visibility timeout (:data:`VISIBILITY` seconds,
  or the ``visibility_timeout`` setting) long enough for the engine to publish
  and settle them; if qctl dies, SQS hands them out again after it.
* ``settle`` is DeleteMessageBatch, per entry: a message whose receipt handle
  SQS no longer takes (its timeout ran out and something received it) is
  reported gone.
* ``keep`` holds a message until the pass closes, then hands it back
  (ChangeMessageVisibilityBatch to 0); meanwhile the pass extends the
  visibility of everything it holds, so no message comes back mid-pass and is
  read twice.  (On a queue that counts reads the core never keeps: it copies
  the message to the queue and settles the original -- a return would count.)
* A message received twice in one pass (SQS delivers at least once) is told
  apart by its MessageId: not returned again; if it was already settled, the
  stray copy is deleted too.

Standard queues are read with :data:`CHUNK` // 10 receives at once.  FIFO
queues are read one receive after another and each chunk is settled before
the next is read (``settle_before_read``): SQS hands out no further message of
a group while one of its messages is in flight, so an unsettled chunk would
look like an empty queue.  For the same reason a message kept in place holds
back the rest of its group until the pass ends: later messages of that group
are not read (their order would break), and the pass says so.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qctl.adapters.sqs.client import Connection
from qctl.adapters.sqs.messages import to_message
from qctl.adapters.sqs.names import is_fifo, name_of
from qctl.adapters.sqs.peek import receive
from qctl.adapters.sqs.visibility import change, make_visible
from qctl.primitives import ReadMode, SourceTraits, Taken

CHUNK = 100
BATCH = 10
VISIBILITY = 60


@dataclass(slots=True)
class _Held:
    handle: str  # the newest receipt handle: SQS deletes and changes only by that one
    until: float  # time.monotonic() when its visibility runs out


class SQSReader:
    def __init__(self, conn: Connection, url: str, mode: ReadMode, traits: SourceTraits, *, visibility: int,
                 notices: list[str]) -> None:
        self.conn = conn
        self.url = url
        self.queue = name_of(url)
        self.mode = mode
        self.traits = traits
        self.fifo = is_fifo(url)
        self.visibility = visibility
        self.notices = notices
        depth = conn.attributes(url, ["ApproximateNumberOfMessages"]).get("ApproximateNumberOfMessages")
        self._total = int(depth or 0)
        self._read = 0
        self._held: dict[str, _Held] = {}  # taken, not settled: in flight or kept
        self._kept: set[str] = set()
        self._settled: set[str] = set()
        self._refused: Counter[str] = Counter()
        self._dry = False
        self._closed = False

    def total(self) -> int:
        return self._total

    def read(self, limit: int) -> list[Taken]:
        limit = min(limit, self._total - self._read)
        if limit <= 0 or self._dry:
            return []
        self._extend()
        taken = self._take(self._receive(limit))
        if not taken:
            taken = self._take(receive(self.conn, self.url, min(BATCH, limit), self.visibility,
                                       self.conn.long_poll))
        if not taken:
            self._dry = True
            return []
        return taken

    def _receive(self, limit: int) -> list[dict[str, Any]]:
        if self.fifo:
            got: list[dict[str, Any]] = []
            while len(got) < limit:
                batch = receive(self.conn, self.url, min(BATCH, limit - len(got)), self.visibility)
                if not batch:
                    break
                got += batch
            return got
        sizes = [BATCH] * (limit // BATCH) + ([limit % BATCH] if limit % BATCH else [])
        rounds = self.conn.fan_out(lambda size: receive(self.conn, self.url, size, self.visibility), sizes)
        return [raw for batch in rounds for raw in batch]

    def _take(self, received: list[dict[str, Any]]) -> list[Taken]:
        until = time.monotonic() + self.visibility
        taken = []
        for raw in received:
            message_id, handle = str(raw["MessageId"]), str(raw["ReceiptHandle"])
            if message_id in self._settled:
                self._delete([handle])  # a second copy of one already moved (at-least-once delivery)
                continue
            if message_id in self._held:
                self._held[message_id] = _Held(handle, until)  # received again: only the newest handle works
                continue
            self._held[message_id] = _Held(handle, until)
            self._read += 1
            taken.append(Taken(to_message(self.queue, str(self._read), raw), message_id))
        return taken

    def _extend(self) -> None:
        """Keep what the pass holds invisible: extend it when a third of its timeout is left."""
        if not self._held:
            return
        now = time.monotonic()
        if min(held.until for held in self._held.values()) - now > self.visibility / 3:
            return
        change(self.conn, self.url, [held.handle for held in self._held.values()], self.visibility)
        for held in self._held.values():
            held.until = now + self.visibility

    def settle(self, taken: Sequence[Taken]) -> list[bool]:
        ids = [str(item.handle) for item in taken]
        handles = [self._held[i].handle for i in ids if i in self._held]
        failed = self._delete(handles)
        results = []
        for message_id in ids:
            held = self._held.pop(message_id, None)
            ok = held is not None and held.handle not in failed
            if ok:
                self._settled.add(message_id)
            results.append(ok)
        return results

    def _delete(self, handles: Sequence[str]) -> set[str]:
        """DeleteMessageBatch; returns the handles SQS did not delete."""
        batches = [list(handles[start:start + BATCH]) for start in range(0, len(handles), BATCH)]

        def one(batch: list[str]) -> set[str]:
            response = self.conn.call("delete_message_batch", f"delete from {self.queue!r}", QueueUrl=self.url,
                                      Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(batch)])
            refused = set()
            for entry in response.get("Failed") or []:
                refused.add(batch[int(entry["Id"])])
                self._refused[str(entry.get("Code") or "refused")] += 1
            return refused

        return set().union(*self.conn.fan_out(one, batches)) if batches else set()

    def keep(self, taken: Sequence[Taken]) -> None:
        self._kept.update(str(item.handle) for item in taken)  # held, handed back when the pass closes

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        held = [entry.handle for entry in self._held.values()]
        self._held.clear()
        failed = make_visible(self.conn, self.url, held)
        if failed:
            self.notices.append(f"{failed} message(s) of {self.queue!r} could not be made visible at once; SQS "
                                f"makes them visible again within {self.visibility}s")
        for code, count in self._refused.items():
            self.notices.append(f"SQS did not delete {count} message(s) from {self.queue!r} ({code}): they were "
                                f"delivered (or written) and are still in {self.queue!r} too")
        if self.fifo and self._kept and self._read < self._total:
            self.notices.append(f"{self._total - self._read} message(s) of FIFO queue {self.queue!r} were not read: "
                                f"a message left in place holds back the rest of its message group (their order "
                                f"would break); run again once it is dealt with")

