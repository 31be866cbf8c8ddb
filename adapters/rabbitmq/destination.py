"""Publishing into a queue with publisher confirms: a window of unconfirmed messages, no round trip each.

Every destination of one adapter shares one :class:`~.publisher.ConfirmedPublisher`
(one channel in confirm mode).  A message is published straight to its queue
through the default exchange, so queues bound to its original exchange get no
copies -- or, for a redrive with ``--via-exchange``, through the exchange and
first routing key of its newest ``x-death`` entry, as the first time.  Body,
properties and headers are kept (``x-delivery-count`` is the broker's, not
published again); every publish is ``mandatory``, so one the broker cannot
route comes back and counts as failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.errors import translated
from qctl.adapters.rabbitmq.messages import PROPERTY_NAMES, first_death, properties_from
from qctl.adapters.rabbitmq.publisher import ConfirmedPublisher
from qctl.errors import QueueNotFound
from qctl.models import Message
from qctl.primitives import Carries, Reader, Taken

MAX_UNCONFIRMED = 10_000  # publishes awaiting confirms before send() waits for some


class RabbitMQDestination:
    # The AMQP headers table is a map (a repeated name keeps its last value); of other backends' properties
    # only the AMQP ones have a place; the time is the AMQP timestamp, in whole seconds (docs/mapping.md).
    carries = Carries(headers=True, properties=True, property_names=frozenset(PROPERTY_NAMES), timestamp=True)

    def __init__(self, session: Session, queue: str, publisher: Callable[[], ConfirmedPublisher], *,
                 via_exchange: bool = False) -> None:
        self.session = session
        self.queue = queue
        self.via_exchange = via_exchange
        self._publisher = publisher
        self._exchanges: dict[str, bool] = {}
        if not session.exists(queue):
            raise QueueNotFound(f"queue {queue!r} not found", hint="list queues with 'qctl stats'")

    def refusal(self, message: Message) -> str | None:
        return None

    def _route(self, message: Message) -> tuple[str, str]:
        """(exchange, routing key): straight to the queue, or --via-exchange through the original route."""
        if self.via_exchange:
            death = first_death(message.headers)
            keys = (death or {}).get("routing-keys")
            exchange = str((death or {}).get("exchange") or "")
            if isinstance(keys, list) and keys and exchange and self._exchange_exists(exchange):
                return exchange, str(keys[0])
        return "", self.queue

    def _exchange_exists(self, exchange: str) -> bool:
        if exchange not in self._exchanges:
            self._exchanges[exchange] = self.session.exchange_exists(exchange)
        return self._exchanges[exchange]

    def send(self, messages: Sequence[Message]) -> list[int]:
        publisher = self._publisher()
        seqs = []
        with translated(self.session.where, f"publish to {self.queue!r}"):
            for message in messages:
                exchange, key = self._route(message)
                seqs.append(publisher.publish(exchange, key, properties_from(message, straight_to_queue=not exchange),
                                              message.body))
                if len(publisher.pending) >= MAX_UNCONFIRMED:
                    publisher.wait_below(MAX_UNCONFIRMED // 2)
        return seqs

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool] | None:
        with translated(self.session.where, f"publish to {self.queue!r}"):
            return self._publisher().collect(list(ticket), wait=wait)

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> None:
        return None
