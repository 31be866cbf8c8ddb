"""Publishing into an SQS queue: SendMessageBatch, confirmed per entry, several batches in flight.

A chunk is cut into batches of at most 10 messages and at most the queue's
MaximumMessageSize in total (SQS's limits for one SendMessageBatch).  On a
standard queue the batches go out at once on the connection's pool of
:data:`SENDERS` send threads (so a source's receives and deletes never queue
behind them); on a FIFO queue one after another, in order, on a single thread
of its own, so that a message group reaches the queue in the order it was
read.  ``send`` returns as soon as the batches are queued -- the ticket holds
their futures -- unless :data:`MAX_QUEUED` batches are already queued or in
flight: then it first waits for the oldest, so that a fast reader cannot hold
thousands of messages invisible while they wait for a send.  ``confirmed``
reads each entry of SQS's answer (Successful with the body's MD5 as sent, or
Failed with a code), so the source settles exactly what SQS took, and only
after SQS took it.

The entry :meth:`SQSDestination.refusal` builds to check a message is kept
for :meth:`~SQSDestination.send` (the engine asks one, then sends the same
message object), so each message is converted once.

What a message becomes on SQS (attributes, base64 bodies, FIFO group and
deduplication ids) and what is refused before sending is in :mod:`.messages`.
:meth:`SQSDestination.start_move` is the server-side redrive (:mod:`.movetask`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from qctl.adapters.sqs import movetask
from qctl.adapters.sqs.client import SEND_THREADS, Connection
from qctl.adapters.sqs.messages import BODY_ENCODING, Outgoing, Refused, foreign_properties, to_entry
from qctl.adapters.sqs.names import is_fifo, name_of
from qctl.adapters.sqs.notes import Notes
from qctl.adapters.sqs.reader import SQSReader
from qctl.models import Message
from qctl.primitives import Carries, MoveTask, Reader, Taken

BATCH = 10
SENDERS = SEND_THREADS  # a chunk's batches (reader.CHUNK // BATCH) at once, on the connection's pool
MAX_QUEUED = 4 * SENDERS  # batches queued or in flight before send() waits for the oldest
CACHE = 2_000  # entries built by refusal() and not yet sent, at most (restore checks a whole file first)


@dataclass(slots=True)
class _Ticket:
    size: int
    batches: list[tuple[Future[list[bool]], list[int]]]


class SQSDestination:
    carries = Carries(headers=True, properties=True)

    def __init__(self, conn: Connection, url: str, *, max_size: int, notes: Notes) -> None:
        self.conn = conn
        self.url = url
        self.queue = name_of(url)
        self.fifo = is_fifo(url)
        self.max_size = max_size
        self.notes = notes
        self._serial: ThreadPoolExecutor | None = None
        self._queued: deque[Future[list[bool]]] = deque()
        self._built: dict[int, tuple[Message, Outgoing | Refused]] = {}  # id(message) -> what refusal() built
        self._dropped: dict[str, None] = {}  # names of the properties dropped so far, in the order seen

    def refusal(self, message: Message) -> str | None:
        built = self._build(message)
        if len(self._built) >= CACHE:
            self._built.clear()
        self._built[id(message)] = (message, built)
        return str(built) if isinstance(built, Refused) else None

    def _build(self, message: Message) -> Outgoing | Refused:
        cached = self._built.get(id(message))
        if cached is not None and cached[0] is message:
            return cached[1]
        try:
            return to_entry(message, fifo=self.fifo, max_size=self.max_size)
        except Refused as exc:
            return exc.with_traceback(None)

    def send(self, messages: Sequence[Message]) -> _Ticket:
        built: list[tuple[int, Outgoing]] = []
        encoded = foreign = 0
        for index, message in enumerate(messages):
            outgoing = self._build(message)
            if isinstance(outgoing, Refused):
                continue  # the engine asked refusal() first; such a message simply fails
            built.append((index, outgoing))
            encoded += BODY_ENCODING in outgoing.entry.get("MessageAttributes", {})
            dropped = foreign_properties(message)
            foreign += bool(dropped)
            self._dropped.update(dict.fromkeys(dropped))
        self._built.clear()
        self._note(encoded, foreign)
        executor = self._serial_executor() if self.fifo else self.conn.senders
        batches = []
        for batch in self._batches(built):
            self._make_room()
            future = executor.submit(self._send_batch, [o for _, o in batch])
            self._queued.append(future)
            batches.append((future, [i for i, _ in batch]))
        return _Ticket(len(messages), batches)

    def _make_room(self) -> None:
        """Wait until fewer than MAX_QUEUED batches are queued or in flight (their errors are confirmed()'s)."""
        while self._queued and self._queued[0].done():
            self._queued.popleft()
        while len(self._queued) >= MAX_QUEUED:
            wait([self._queued.popleft()])

    def _batches(self, built: list[tuple[int, Outgoing]]) -> list[list[tuple[int, Outgoing]]]:
        batches: list[list[tuple[int, Outgoing]]] = []
        current: list[tuple[int, Outgoing]] = []
        size = 0
        for item in built:
            if current and (len(current) == BATCH or size + item[1].size > self.max_size):
                batches.append(current)
                current, size = [], 0
            current.append(item)
            size += item[1].size
        if current:
            batches.append(current)
        return batches

    def _send_batch(self, batch: list[Outgoing]) -> list[bool]:
        response = self.conn.call("send_message_batch", f"publish to {self.queue!r}", QueueUrl=self.url,
                                  Entries=[{"Id": str(i), **outgoing.entry} for i, outgoing in enumerate(batch)])
        sent = {int(entry["Id"]): entry.get("MD5OfMessageBody") for entry in response.get("Successful") or []}
        results = [sent.get(i) == outgoing.md5 for i, outgoing in enumerate(batch)]
        mismatched = sum(1 for i, outgoing in enumerate(batch) if i in sent and sent[i] != outgoing.md5)
        self.notes.add("md5", mismatched, lambda n: f"{n} message(s) sent to {self.queue!r} came back with another "
                                                    f"MD5 than their body's: counted as not sent")
        for entry in response.get("Failed") or []:
            self._refused(str(entry.get("Code") or "refused"), str(entry.get("Message") or ""))
        return results

    def _refused(self, code: str, text: str) -> None:
        self.notes.add(f"failed:{code}", 1, lambda n: f"SQS refused {n} message(s) for {self.queue!r} ({code}: {text})")

    def _serial_executor(self) -> ThreadPoolExecutor:
        if self._serial is None:
            self._serial = ThreadPoolExecutor(1, thread_name_prefix=f"qctl-sqs-fifo-{self.queue}")
        return self._serial

    def _note(self, encoded: int, foreign: int) -> None:
        self.notes.add("base64", encoded, lambda n: f"{n} message body(ies) that SQS cannot carry as text went to "
                                                    f"{self.queue!r} base64-encoded, marked {BODY_ENCODING}: base64 "
                                                    f"(qctl decodes them; other consumers see base64)")
        shown = ", ".join(self._dropped)
        self.notes.add("properties", foreign, lambda n: f"{n} message(s) carried properties that {self.queue!r} "
                                                        f"cannot keep ({shown}): dropped (see qctl(1), MAPPING)")

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool] | None:
        assert isinstance(ticket, _Ticket)
        if not wait and not all(future.done() for future, _ in ticket.batches):
            return None
        results = [False] * ticket.size
        for future, indexes in ticket.batches:
            for index, ok in zip(indexes, future.result(), strict=True):
                results[index] = ok
        return results

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> None:
        return None  # SQS has no atomic move between queues: send, then delete what was confirmed

    def start_move(self, reader: Reader, rate: float | None) -> MoveTask | None:
        """A server-side move of the whole of ``reader``'s queue here (see :mod:`.movetask`), or None."""
        if not isinstance(reader, SQSReader) or reader.conn is not self.conn or reader.fifo or self.fifo:
            return None
        if rate is not None and not 1 <= rate <= movetask.MAX_RATE:
            self.notes.add("rate", 1, lambda _n: f"an SQS message move task takes 1 to {movetask.MAX_RATE} "
                                                 f"messages per second, not --rate {rate:g}: moved client-side")
            return None
        if reader.total() == 0:
            return None
        return movetask.start(self.conn, reader.url, self.url, int(rate) if rate is not None else None, self.notes)

    def close(self) -> None:
        self._built.clear()
        queued, self._queued = list(self._queued), deque()
        for future in queued:
            future.cancel()  # not sent yet: never sent (on the shared pool, nothing else would stop it)
        serial, self._serial = self._serial, None
        if serial is not None:
            serial.shutdown(wait=True, cancel_futures=True)
        wait(queued)
