"""Producing into a topic: acks=all, idempotent, every header pair kept, delivery reports as confirms.

Each record's delivery report fills its slot in the ticket; :meth:`confirmed`
polls for them (or flushes, when asked to wait: BrokerUnavailable once no report
has come for ``--timeout``, or a report says only that the broker never answered;
their sources are then not settled, see :func:`_unanswered`).  The key and every header
(repeats included, in order) are kept; the timestamp is not: the broker stamps
the record now, so moved or restored old records are not deleted at once by
the topic's retention.  Properties from other backends have no place in a
Kafka record and are dropped (and counted).  A record over the topic's
``max.message.bytes`` is refused before anything is sent: :func:`batch_bytes`
is the exact size the broker checks (the record alone in a v2 batch, as the
uncompressed producer sends it), and the producer is made for the topic's
limit (:func:`.rdkafka.producer`), so a record that passes is one librdkafka
takes and the broker keeps, and one that does not is found before the first
publish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from qctl.adapters.kafka import rdkafka
from qctl.codec import BASE64_KEY, header_bytes
from qctl.errors import BrokerUnavailable
from qctl.models import Message
from qctl.primitives import Carries, Reader, Taken

BATCH_HEADER = 61  # a v2 record batch before its records: base offset, length, epoch, magic, CRC, ..., count
FLUSH_SLICE_S = 0.2  # a waiting flush looks at the clock this often


class Ticket:
    __slots__ = ("results", "sent", "unanswered")

    def __init__(self, size: int) -> None:
        self.results: list[bool | None] = [None] * size
        self.sent = time.monotonic()
        self.unanswered = 0  # reports saying the broker never answered (not a refusal of the record)


class KafkaDestination:
    carries = Carries(key=True, headers=True, header_repeats=True)

    def __init__(self, topic: str, producer: Callable[[], Any], max_bytes: int, timeout: float) -> None:
        self.queue = topic
        self._producer = producer
        self.max_bytes = max_bytes
        self.timeout = max(timeout, 30.0)  # librdkafka's message.timeout.ms (rdkafka.producer)
        self.silence = max(timeout, 0.1)  # --timeout: no delivery report for this long is a broker gone
        self.last_report = 0.0

    def refusal(self, message: Message) -> str | None:
        if size_bound(message) <= self.max_bytes:
            return None  # surely fits: the exact size below costs ~25 us a record
        size = batch_bytes(message.key, message.body,
                           [(str(name).encode(), header_bytes(value)) for name, value in message.pairs()])
        if size > self.max_bytes:
            return (f"a record of {size} bytes (in its batch) is over {self.queue!r}'s "
                    f"max.message.bytes ({self.max_bytes})")
        return None

    def send(self, messages: Sequence[Message]) -> Ticket:
        producer = self._producer()
        ticket = Ticket(len(messages))
        with rdkafka.translated(f"cannot produce to {self.queue!r}"):
            for index, message in enumerate(messages):
                headers = [(str(name), header_bytes(value)) for name, value in message.pairs()]
                callback = _reporter(self, ticket, index)
                while True:
                    try:
                        producer.produce(self.queue, value=message.body, key=message.key, headers=headers,
                                         on_delivery=callback)
                        break
                    except BufferError:  # librdkafka's local queue is full: let it send, then retry
                        producer.poll(0.05)
            producer.poll(0)
        return ticket

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool] | None:
        producer = self._producer()
        with rdkafka.translated(f"cannot produce to {self.queue!r}"):
            producer.poll(0)
            if wait and None in ticket.results:
                self._wait(producer, ticket)
        if ticket.unanswered:
            # Not refused, only not acknowledged: a failure would be kept, and a Kafka source's group moves
            # past kept records, so the next run would not send them again.  Ending here settles none of this
            # chunk; the next run sends it again (some records may have arrived: at least once, never lost).
            raise BrokerUnavailable(f"{ticket.unanswered} record(s) not acknowledged by the broker of {self.queue!r}",
                                    hint="nothing was lost: their sources were not settled")
        if None in ticket.results:
            return None
        return [bool(ok) for ok in ticket.results]

    def _wait(self, producer: Any, ticket: Ticket) -> None:
        """Flush until the ticket's reports are in; BrokerUnavailable once none has come for ``--timeout``
        (since the ticket was sent or the last report) or after librdkafka's own message timeout."""
        deadline = time.monotonic() + self.timeout
        while None in ticket.results:
            silent = time.monotonic() - max(ticket.sent, self.last_report)
            if silent > self.silence or time.monotonic() > deadline:
                left = sum(1 for ok in ticket.results if ok is None)
                raise BrokerUnavailable(f"{left} record(s) not acknowledged: no delivery report from the broker "
                                        f"for {silent:.0f} s", hint="nothing was lost: their sources were not settled")
            producer.flush(FLUSH_SLICE_S)

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> None:
        return None


def batch_bytes(key: bytes | None, value: bytes, headers: Sequence[tuple[bytes, bytes]]) -> int:
    """The bytes of a v2 record batch holding this one record, as the broker measures it against
    ``max.message.bytes`` (Kafka's DefaultRecordBatch.sizeInBytes, no compression)."""
    record = 1 + 1 + 1  # attributes, timestamp delta 0, offset delta 0
    record += _varint(-1) if key is None else _varint(len(key)) + len(key)
    record += _varint(len(value)) + len(value) + _varint(len(headers))
    record += sum(_varint(len(name)) + len(name) + _varint(len(data)) + len(data) for name, data in headers)
    return BATCH_HEADER + _varint(record) + record


def size_bound(message: Message) -> int:
    """At least :func:`batch_bytes` of ``message``, from lengths alone (a varint of a length takes at most
    5 bytes, a character at most 4 in UTF-8); a header value of another kind counts as too large to bound."""
    total = BATCH_HEADER + 5 + 3 + 5 + len(message.key or b"") + 5 + len(message.body) + 5
    for name, value in message.pairs():
        kind = type(value)
        if kind is str:
            size = 4 * len(value)
        elif kind is int:
            size = len(str(value))
        elif isinstance(value, dict) and len(value) == 1 and isinstance(value.get(BASE64_KEY), str):
            size = len(value[BASE64_KEY])  # base64 text is longer than the bytes it stands for
        elif isinstance(value, str):
            size = 4 * len(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            size = len(str(value))
        elif isinstance(value, float):
            size = 32  # json.dumps of a float: at most 24 characters
        else:
            return 1 << 62
        total += 10 + 4 * len(str(name)) + size
    return total


def _varint(number: int) -> int:
    """Length of a zig-zag varint (Kafka's record fields)."""
    zigzag = (number << 1) ^ (number >> 63)
    return max(1, (zigzag.bit_length() + 6) // 7)


def _unanswered(error: Any) -> bool:
    """A delivery error that says the broker never answered (timed out, connection lost, producer failed),
    not that it refused the record."""
    ck = rdkafka.library()
    return bool(error.retriable() or error.fatal() or error.code() in (
        ck.KafkaError._MSG_TIMED_OUT, ck.KafkaError._TIMED_OUT, ck.KafkaError._TIMED_OUT_QUEUE,
        ck.KafkaError._TRANSPORT, ck.KafkaError._ALL_BROKERS_DOWN, ck.KafkaError._PURGE_QUEUE,
        ck.KafkaError._PURGE_INFLIGHT, ck.KafkaError._FATAL, ck.KafkaError._DESTROY))


def _reporter(destination: KafkaDestination, ticket: Ticket, index: int) -> Callable[[Any, Any], None]:
    def report(error: Any, _message: Any) -> None:
        destination.last_report = time.monotonic()
        if error is not None and _unanswered(error):
            ticket.unanswered += 1
        ticket.results[index] = error is None

    return report
