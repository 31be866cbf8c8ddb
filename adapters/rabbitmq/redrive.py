"""``redrive``: move dead letters back, acking each only after its republish is confirmed.

Per message the target is ``--to``, else the queue in its newest ``x-death``
entry (or ``x-first-death-queue``), else the DLQ's name without its suffix.
It is published through the default exchange straight to that queue, so that
other queues bound to the original exchange get no copies (or, with
``--via-exchange`` and no ``--to``, through the newest x-death entry's exchange
with its first routing key; a ``CC`` header the message still carries routes
to its other keys, as the first time), with body, properties and headers kept
and ``x-qctl-redrive-count`` incremented.

Throughput: the DLQ is read by consumer windows of 2,000 deliveries (the
prefetch is set once), each delivery is republished at once and its confirm
counted when it comes (a window of unconfirmed publishes, not a round trip
each; at MAX_UNCONFIRMED outstanding, reading pauses), and confirmed messages
are acked in delivery order with one ``multiple`` ack per batch; outgoing
frames leave in large chunks (:func:`connection.coalesce_writes`).  On the
bench's 2-CPU node the broker spends about 100 us of CPU per redriven
persistent message (deliver, ack, publish, confirm) and qctl about 35 us, so
the rate is bounded by the CPU left to both (bench/results/rabbitmq.md).

Terminates: it takes at most the messages the DLQ held at the start
(:class:`BoundedConsumer`).  Skipped messages (no target, target missing,
``--max-redrives`` reached) stay unacked until the end and are then nacked
back in one go (by closing the channel), so they keep their places and are not taken twice.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from pika.spec import BasicProperties

from qctl.adapter import Progress
from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.consume import BoundedConsumer, Delivery
from qctl.adapters.rabbitmq.messages import REDRIVE_COUNT, first_death
from qctl.adapters.rabbitmq.publisher import ConfirmedPublisher
from qctl.deadletter import DeadLetterNaming
from qctl.errors import BrokerUnavailable, QueueNotFound
from qctl.models import RedriveRequest, RedriveResult
from qctl.pacing import RateLimiter

POLL = 0.05
MAX_UNCONFIRMED = 10_000  # publishes awaiting confirms before taking more (bounds memory on both sides)


@dataclass(frozen=True, slots=True)
class Route:
    queue: str  # the name reported under `targets`
    exchange: str
    routing_key: str


def redrive_count(properties: BasicProperties) -> int:
    value = (properties.headers or {}).get(REDRIVE_COUNT)
    return value if isinstance(value, int) else 0


def republished(properties: BasicProperties, route: Route) -> BasicProperties:
    """The same properties (all of them, in place: the delivery is not used again), redrive count + 1.

    Published straight to a queue through the default exchange, the message loses its ``CC`` header
    (and ``BCC``, which RabbitMQ strips on delivery anyway): RabbitMQ routes a message to every key in
    it, and through the default exchange those keys are queue names -- a redrive would copy the
    message into any queue named like one of its original CC keys.  Through the original exchange
    (``--via-exchange``) the header stays and routes as it did the first time.
    """
    headers = dict(properties.headers or {})
    headers[REDRIVE_COUNT] = redrive_count(properties) + 1
    if not route.exchange:
        headers.pop("CC", None)
        headers.pop("BCC", None)
    properties.headers = headers
    return properties


class Router:
    """Decides each message's target and remembers which targets exist."""

    def __init__(self, session: Session, dlq: str, request: RedriveRequest, naming: DeadLetterNaming) -> None:
        self.session = session
        self.request = request
        self.fallback = naming.origin(dlq)
        self._exists: dict[tuple[str, str], bool] = {}

    def route(self, delivery: Delivery) -> Route | None:
        if self.request.max_redrives is not None and redrive_count(delivery.properties) >= self.request.max_redrives:
            return None
        headers: dict[str, Any] = delivery.properties.headers or {}
        death = first_death(headers)
        queue = self.request.to or _text((death or {}).get("queue")) or _text(headers.get("x-first-death-queue")) \
            or self.fallback
        if queue is None:
            return None
        route = Route(queue, "", queue)
        if self.request.via_original_exchange and self.request.to is None and death is not None:
            keys = death.get("routing-keys")
            if isinstance(keys, list) and keys:
                route = Route(queue, _text(death.get("exchange")) or "", _text(keys[0]) or queue)
        return route if self._target_exists(route) else None

    def _target_exists(self, route: Route) -> bool:
        key = (route.exchange, route.routing_key)
        if key not in self._exists:
            if route.exchange:
                self._exists[key] = self.session.exchange_exists(route.exchange)
            else:
                self._exists[key] = self.session.exists(route.queue)
        return self._exists[key]

    def forget(self, route: Route) -> None:
        self._exists.pop((route.exchange, route.routing_key), None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Redrive:
    def __init__(self, session: Session, dlq: str, request: RedriveRequest, naming: DeadLetterNaming,
                 progress: Progress) -> None:
        self.session = session
        self.dlq = dlq
        self.request = request
        self.progress = progress
        self.router = Router(session, dlq, request, naming)
        self.limiter = RateLimiter(request.rate)
        self.targets: Counter[str] = Counter()
        self.moved = self.skipped = self.failed = 0
        # Delivery tags in order, each "sent" (awaiting confirm), "done" (confirmed) or "keep" (stays).
        self.order: deque[int] = deque()
        self.state: dict[int, str] = {}
        self.kept_any = False
        self.in_flight: dict[int, tuple[int, Route]] = {}  # publish seq -> (delivery tag, route)
        self.last_settled = time.monotonic()

    def run(self) -> RedriveResult:
        start = self.session.passive(self.dlq).ready
        if self.request.to is not None and not self.session.exists(self.request.to):
            raise QueueNotFound(f"--to queue {self.request.to!r} not found")
        budget = min(start, self.request.limit) if self.request.limit is not None else start
        publisher = None if self.request.dry_run else ConfirmedPublisher(self.session)
        consumer = BoundedConsumer(self.session, self.dlq, budget,
                                   hold=(lambda: len(publisher.pending) >= MAX_UNCONFIRMED) if publisher else None)
        self.progress.start(budget, f"redrive {self.dlq}")
        while not consumer.exhausted or consumer.inbox:
            consumer.poll(POLL, (lambda: bool(publisher.settled)) if publisher else None)
            self._handle(consumer, publisher)
            if publisher is not None:
                self._check_stalled(publisher)
        if publisher is not None:
            publisher.drain()
            self._settle(publisher)
        consumer.stop()
        self._ack(consumer)
        consumer.requeue_all()  # the kept ones, back in their places
        return RedriveResult(source=self.dlq, moved=self.moved, skipped=self.skipped, failed=self.failed,
                             targets=dict(self.targets), dry_run=self.request.dry_run)

    def _handle(self, consumer: BoundedConsumer, publisher: ConfirmedPublisher | None) -> None:
        while consumer.inbox:
            delivery = consumer.inbox.popleft()
            self.order.append(delivery.tag)
            route = self.router.route(delivery)
            if route is None or publisher is None:
                self._keep(delivery.tag, skipped=route is None)
                if route is not None:
                    self.targets[route.queue] += 1
                continue
            self.limiter.wait()
            seq = publisher.publish(route.exchange, route.routing_key, republished(delivery.properties, route),
                                    delivery.body)
            self.in_flight[seq] = (delivery.tag, route)
            self.state[delivery.tag] = "sent"
        if publisher is not None:
            self._settle(publisher)
        self._ack(consumer)

    def _keep(self, tag: int, *, skipped: bool) -> None:
        self.state[tag] = "keep"
        if skipped:
            self.skipped += 1
        self.progress.advance()

    def _check_stalled(self, publisher: ConfirmedPublisher) -> None:
        """Holding at MAX_UNCONFIRMED with no confirm for --timeout: the broker stopped confirming."""
        if len(publisher.pending) < MAX_UNCONFIRMED:
            return
        timeout = self.session.options.timeout
        if time.monotonic() - self.last_settled > timeout:
            raise BrokerUnavailable(f"{len(publisher.pending)} publish(es) not confirmed within {timeout}s",
                                    hint="nothing was lost: their sources were not acknowledged")

    def _settle(self, publisher: ConfirmedPublisher) -> None:
        settled = publisher.take_settled()
        if settled:
            self.last_settled = time.monotonic()
        for seq, ok in settled:
            tag, route = self.in_flight.pop(seq)
            if ok:
                self.state[tag] = "done"
                self.moved += 1
                self.targets[route.queue] += 1
                self.progress.advance()
            else:
                self.failed += 1
                self.router.forget(route)  # returned: check again whether it still exists
                self._keep(tag, skipped=False)

    def _ack(self, consumer: BoundedConsumer) -> None:
        """Ack confirmed messages in delivery order, as far as the consumer allows."""
        last = 0
        singles: list[int] = []
        while self.order and self.order[0] <= consumer.ackable_tag and self.state[self.order[0]] != "sent":
            tag = self.order.popleft()
            if self.state.pop(tag) == "keep":
                self.kept_any = True  # from now on a multiple ack would take it too
            elif self.kept_any:
                singles.append(tag)
            else:
                last = tag
        if last:
            consumer.ack(last, multiple=True)
        for tag in singles:
            consumer.ack(tag, multiple=False)
