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

Standard queues are read with :data:`CHUNK` // 10 receives at once, on the
pass's own pool of :data:`THREADS` threads (its receives and deletes never wait
behind the destination's sends), and the next chunk is received in the
background while the engine sends and settles the one it was handed
(prefetch: as many as the last read asked for, never beyond ``total``).  A
prefetched chunk the pass ends without reading (``--limit`` reached, a
signal) is made visible again when the pass closes, like anything it holds:
one more receive on their ApproximateReceiveCount.  So no prefetch on a queue
that counts reads (a RedrivePolicy: the engine's promise is that reading
never counts against that limit, and there the reader takes exactly what the
engine asks for).  FIFO queues are read one receive after another and each
chunk is settled before the next is read (``settle_before_read``): SQS hands
out no further message of a group while one of its messages is in flight, so
an unsettled chunk would look like an empty queue.  For the same reason a
message kept in place holds back the rest of its group until the pass ends:
later messages of that group are not read (their order would break), and the
pass says so.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from qctl.adapters.sqs.client import READ_THREADS, Connection
from qctl.adapters.sqs.messages import to_message
from qctl.adapters.sqs.names import is_fifo, name_of
from qctl.adapters.sqs.peek import receive
from qctl.adapters.sqs.visibility import change, make_visible
from qctl.primitives import ReadMode, SourceTraits, Taken

CHUNK = 100
BATCH = 10
VISIBILITY = 60
THREADS = READ_THREADS  # a chunk's receives (CHUNK // BATCH) and a chunk's deletes at once


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
        self._prefetch = not self.fifo and not traits.counts_reads
        self._buffer: list[tuple[dict[str, Any], float]] = []  # received, not yet handed out: (raw, until)
        self._ahead: list[Future[list[dict[str, Any]]]] = []  # the prefetch's receives
        self._ahead_until = 0.0
        self._pool: ThreadPoolExecutor | None = None

    def total(self) -> int:
        return self._total

    def read(self, limit: int) -> list[Taken]:
        limit = min(limit, self._total - self._read)
        if limit <= 0 or self._dry:
            return []
        self._extend()
        if not self._buffer:
            self._buffer = self._collect() if self._ahead else self._receive(limit)
        taken = self._take_buffered(limit)
        if not taken:
            self._buffer = self._stamped(receive(self.conn, self.url, min(BATCH, limit), self.visibility,
                                                 self.conn.long_poll))
            taken = self._take_buffered(limit)
        if not taken:
            self._dry = True
            return []
        self._read_ahead(limit)
        return taken

    def _receive(self, limit: int) -> list[tuple[dict[str, Any], float]]:
        if self.fifo:
            got: list[dict[str, Any]] = []
            while len(got) < limit:
                batch = receive(self.conn, self.url, min(BATCH, limit - len(got)), self.visibility)
                if not batch:
                    break
                got += batch
            return self._stamped(got)
        self._ahead_until = time.monotonic() + self.visibility
        self._ahead = self._submit_receives(limit)
        return self._collect()

    def _submit_receives(self, count: int) -> list[Future[list[dict[str, Any]]]]:
        """``count`` messages' worth of receives (10 a request) on the pass's pool."""
        sizes = [BATCH] * (count // BATCH) + ([count % BATCH] if count % BATCH else [])
        pool = self._executor()
        return [pool.submit(receive, self.conn, self.url, size, self.visibility) for size in sizes]

    def _read_ahead(self, limit: int) -> None:
        """Start receiving the next chunk (as big as this one was asked to be) while the engine works."""
        want = min(limit, self._total - self._read - len(self._buffer))
        if self._prefetch and not self._ahead and want > 0:
            self._ahead_until = time.monotonic() + self.visibility
            self._ahead = self._submit_receives(want)

    def _collect(self) -> list[tuple[dict[str, Any], float]]:
        """The prefetch's messages (waiting for its receives); its first error is raised once all are in."""
        ahead, self._ahead = self._ahead, []
        got: list[tuple[dict[str, Any], float]] = []
        error: BaseException | None = None
        for future in ahead:
            try:
                got += [(raw, self._ahead_until) for raw in future.result()]
            except BaseException as exc:  # what the others received must still be tracked, to be handed back
                error = error or exc
        if error is not None:
            self._buffer += got
            raise error
        return got

    def _stamped(self, received: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float]]:
        until = time.monotonic() + self.visibility
        return [(raw, until) for raw in received]

    def _take_buffered(self, limit: int) -> list[Taken]:
        """Up to ``limit`` messages from the buffer (second copies of a message are not handed out twice)."""
        taken: list[Taken] = []
        while self._buffer and len(taken) < limit:
            count = min(len(self._buffer), limit - len(taken))
            batch, self._buffer = self._buffer[:count], self._buffer[count:]
            taken += self._take(batch)
        return taken

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix=f"qctl-sqs-read-{self.queue}")
        return self._pool

    def _take(self, received: list[tuple[dict[str, Any], float]]) -> list[Taken]:
        taken = []
        for raw, until in received:
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
        if not self._held and not self._buffer:
            return
        now = time.monotonic()
        soonest = min([held.until for held in self._held.values()] + [until for _, until in self._buffer])
        if soonest - now > self.visibility / 3:
            return
        change(self.conn, self.url, [held.handle for held in self._held.values()] +
               [str(raw["ReceiptHandle"]) for raw, _ in self._buffer], self.visibility)
        for held in self._held.values():
            held.until = now + self.visibility
        self._buffer = [(raw, now + self.visibility) for raw, _ in self._buffer]

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

        def one(batch: list[str]) -> list[tuple[str, str]]:
            response = self.conn.call("delete_message_batch", f"delete from {self.queue!r}", QueueUrl=self.url,
                                      Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(batch)])
            return [(batch[int(entry["Id"])], str(entry.get("Code") or "refused"))
                    for entry in response.get("Failed") or []]

        if len(batches) <= 1:
            answers = [one(batch) for batch in batches]
        else:  # in parallel on the pass's pool; an error is raised (the first in order) once it is in
            futures = [self._executor().submit(one, batch) for batch in batches]
            answers = [future.result() for future in futures]
        refused = set()
        for handle, code in (pair for answer in answers for pair in answer):
            refused.add(handle)
            self._refused[code] += 1
        return refused

    def keep(self, taken: Sequence[Taken]) -> None:
        self._kept.update(str(item.handle) for item in taken)  # held, handed back when the pass closes

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._ahead:
            future.cancel()  # a receive not yet sent is not sent; one under way is awaited and handed back
        try:
            self._buffer += self._collect()
        except Exception:  # what did arrive is in the buffer, handed back below; the pass ends anyway
            pass
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        held = [entry.handle for entry in self._held.values()] + [str(raw["ReceiptHandle"]) for raw, _ in
                                                                   self._buffer]
        self._held.clear()
        self._buffer.clear()
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

