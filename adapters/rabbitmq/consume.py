"""Take exactly N messages from a queue, fast, without ever receiving one more.

Each :meth:`Taker.take` is a consumer with prefetch N: the broker delivers
nothing beyond the credit it gave, so a pass never holds more than it asked
for -- on a quorum queue with a delivery limit, a message held and then
returned would count a delivery.  Messages stay unacked on
:attr:`Taker.channel` until the caller acks them by tag; closing the channel
returns every unacked message to its old place, in order (``basic.nack``
would not: RabbitMQ 3.10 quorum queues put nacked messages at the back).

A consumer that got all N stays up, its credit spent, while it holds them,
and is cancelled just before the first ack that would give it credit again
(cancel and ack go out together, in that order).  RabbitMQ 3.10 quorum
queues return the messages of a consumer whose node was lost only when that
consumer is up: messages held by a cancelled one stay checked out to it
until the queue's leader changes.  A take that ran dry is cancelled at once
(its consumer still has credit).

Consumer tags sort in the order the consumers were made: when the channel
closes, a 3.10 quorum queue returns each consumer's messages in turn, taking
the consumers in the order of their ``{tag, channel}`` keys -- sorted while a
queue has at most 32 consumer records, so up to 32 windows go back in place
(with pika's random tags, the windows came back shuffled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pika.spec import Basic, BasicProperties

from qctl.adapters.rabbitmq import compat
from qctl.adapters.rabbitmq.connection import Session, require_open

IDLE_CHECK = 0.25  # seconds without a delivery before asking whether the queue is empty
POLL = 0.05


@dataclass(frozen=True, slots=True)
class Window:
    """A consumer left up, its credit spent, holding delivery tags ``first``..``last``."""

    consumer: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Delivery:
    tag: int
    redelivered: bool
    routing_key: str
    exchange: str
    properties: BasicProperties
    body: bytes


class Taker:
    def __init__(self, session: Session, queue: str) -> None:
        self.session = session
        self.queue = queue
        self.channel = session.channel()
        self._impl: Any = compat.channel_impl(self.channel)
        self._prefetch = 0
        self._got: list[Delivery] = []
        self._tag: str | None = None
        self._holding: list[Window] = []
        self._consumers = 0
        self.dry = False  # the queue ran dry: no more to take

    def take(self, n: int) -> list[Delivery]:
        """Up to ``n`` deliveries in queue order; fewer only when the queue has no more ready."""
        if n <= 0 or self.dry:
            return []
        self._got = []
        if n != self._prefetch:
            # basic.qos is a synchronous request: pika holds the consume until qos-ok comes back.
            self._impl.basic_qos(prefetch_count=min(n, 65535))
            self._prefetch = n
        compat.reset_consume_ok(self.channel)
        self._consumers += 1
        self._tag = self._impl.basic_consume(self.queue, self._on_message, consumer_tag=f"qctl.{self._consumers:08d}")
        last = time.monotonic()
        while len(self._got) < n:
            before = len(self._got)
            self.session.pump(lambda count=before: len(self._got) != count, POLL)  # type: ignore[misc]
            require_open(self.channel, f"consume from {self.queue!r}")
            if len(self._got) != before:
                last = time.monotonic()
            elif time.monotonic() - last > IDLE_CHECK:
                last = time.monotonic()
                if self.session.passive(self.queue).ready == 0:
                    self.dry = True
                    break
        if len(self._got) >= n and self._tag is not None:
            self._holding.append(Window(self._tag, self._got[0].tag, self._got[-1].tag))
            self._tag = None
        self._cancel()
        return self._got

    def _on_message(self, _channel: Any, method: Basic.Deliver, properties: BasicProperties, body: bytes) -> None:
        self._got.append(Delivery(method.delivery_tag, method.redelivered, method.routing_key, method.exchange,
                                  properties, body))

    def _cancel(self) -> None:
        """Synchronous cancel: a delivery in flight until cancel-ok is still received (and counted)."""
        if self._tag is None:
            return
        tag, self._tag = self._tag, None
        done: list[bool] = []
        self._impl.basic_cancel(tag, callback=lambda _frame: done.append(True))
        self.session.pump(lambda: bool(done), self.session.options.timeout)

    def ack(self, tag: int, *, multiple: bool) -> None:
        """Ack; first cancel every holding consumer this ack gives credit (no deliveries after it)."""
        still: list[Window] = []
        for window in self._holding:
            if window.first <= tag and (multiple or tag <= window.last):
                self._impl.basic_cancel(window.consumer)  # nowait: queued before the ack, handled first
            else:
                still.append(window)
        self._holding = still
        self._impl.basic_ack(tag, multiple=multiple)

    @property
    def holding(self) -> int:
        """Consumers left up while they hold their messages (for tests)."""
        return len(self._holding)

    def return_all(self) -> None:
        """Every unacked message back to its old place, by closing the channel."""
        self._holding = []
        if self.channel.is_open:
            self.channel.close()
