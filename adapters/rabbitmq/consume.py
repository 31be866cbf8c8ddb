"""Take at most N messages from a queue, fast, without ever receiving one more.

A consumer with prefetch W receives at most W messages until some are acked.
So each *window* is a consumer with prefetch ``min(W, N - received)`` that is
cancelled as soon as it has delivered that many; only messages of cancelled
windows may be acked (``ackable_tag``), which is what keeps the total bounded:
a redrive that moves messages into a queue which dead-letters them straight
back cannot take them a second time.  The next window starts at once, so the
broker's pipeline never drains -- unless ``hold()`` says the caller has enough
in flight (redrive: too many publishes awaiting their confirms), in which case
the next window opens on a later :meth:`BoundedConsumer.poll`.  Messages are
held unacked by the caller, who acks (or nacks) by delivery tag on
:attr:`channel`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pika.spec import Basic, BasicProperties

from qctl.adapters.rabbitmq.connection import Session, require_open

WINDOW = 2000
IDLE_CHECK = 0.25


@dataclass(frozen=True, slots=True)
class Delivery:
    tag: int
    redelivered: bool
    routing_key: str
    exchange: str
    properties: BasicProperties
    body: bytes


class BoundedConsumer:
    def __init__(self, session: Session, queue: str, budget: int, window: int = WINDOW,
                 hold: Callable[[], bool] | None = None) -> None:
        self.session = session
        self.hold = hold or (lambda: False)
        self.queue = queue
        self.budget = budget
        self.window = max(1, min(window, 65535))
        self.channel = session.channel()
        self._impl: Any = self.channel._impl
        self.inbox: deque[Delivery] = deque()
        self.received = 0
        self.ackable_tag = 0  # every tag <= this came from a cancelled window
        self._tag: str | None = None
        self._window_left = 0
        self._last_tag = 0
        self._last_delivery = time.monotonic()
        self._prefetch = 0
        self.exhausted = budget <= 0

    def _open_window(self) -> None:
        size = min(self.window, self.budget - self.received)
        self._window_left = size
        if size != self._prefetch:
            # basic.qos is a synchronous request: pika holds the consume until qos-ok comes back, a round
            # trip with nothing delivered.  Every window but the last has the same size, so it is set once.
            self._impl.basic_qos(prefetch_count=size)
            self._prefetch = size
        # The BlockingChannel wrapper records each consume-ok once; clear it for the next window.
        self.channel._basic_consume_ok_result.reset()
        self._tag = self._impl.basic_consume(self.queue, self._on_message)

    def _on_message(self, _channel: Any, method: Basic.Deliver, properties: BasicProperties, body: bytes) -> None:
        self.inbox.append(Delivery(method.delivery_tag, method.redelivered, method.routing_key, method.exchange,
                                   properties, body))
        self.received += 1
        self._last_tag = method.delivery_tag
        self._last_delivery = time.monotonic()
        self._window_left -= 1
        if self._window_left == 0:
            self._close_window()
            if self.received >= self.budget:
                self.exhausted = True
            elif not self.hold():
                self._open_window()

    def _close_window(self) -> None:
        # No callback: the broker will deliver nothing more to a consumer without credit.
        self._impl.basic_cancel(self._tag)
        self._tag = None
        self.ackable_tag = self._last_tag

    def poll(self, max_wait: float, ready: Any = None) -> None:
        """Pump I/O until a delivery (or ``ready()``), at most ``max_wait`` seconds."""
        if self._tag is None and not self.exhausted and not self.hold():
            self._open_window()
        count = len(self.inbox)
        self.session.pump(lambda: len(self.inbox) != count or bool(ready and ready()), max_wait)
        require_open(self.channel, f"consume from {self.queue!r}")
        if not self.exhausted and not self.inbox and time.monotonic() - self._last_delivery > IDLE_CHECK:
            self._check_empty()

    def _check_empty(self) -> None:
        """No delivery for a while: if the queue is empty, it held fewer than the budget; stop."""
        self._last_delivery = time.monotonic()
        if self.session.passive(self.queue).ready == 0:
            self.stop()

    def stop(self) -> None:
        """Take nothing more; whatever was received becomes ackable."""
        if self._tag is not None:
            tag, self._tag = self._tag, None
            # Synchronous cancel: messages in flight until cancel-ok are rejected back by pika.
            done: list[bool] = []
            self._impl.basic_cancel(tag, callback=lambda _frame: done.append(True))
            self.session.pump(lambda: bool(done), self.session.options.timeout)
        self.ackable_tag = max(self.ackable_tag, self._last_tag)
        self.exhausted = True

    def ack(self, tag: int, *, multiple: bool) -> None:
        self._impl.basic_ack(tag, multiple=multiple)

    def requeue_all(self) -> None:
        """Return every unacked message to its old place by closing the channel.

        Not basic.nack: RabbitMQ 3.10 quorum queues put nacked messages at the back."""
        if self.channel.is_open:
            self.channel.close()
