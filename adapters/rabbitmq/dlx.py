"""Which queue a queue dead-letters into: its dead-letter exchange, followed to a bound queue.

The exchange and routing key come from the queue's arguments
(``x-dead-letter-exchange``, ``x-dead-letter-routing-key``) or its effective
policy (``dead-letter-exchange``, ``dead-letter-routing-key``); the argument
wins, as in RabbitMQ.  Without a key RabbitMQ uses the message's own routing
key, which for the usual publish through the default exchange is the queue's
name.  The default exchange ``""`` routes straight to the queue named by the
key; other exchanges are followed through their bindings (direct, fanout,
topic; headers: the first queue bound).  Bindings are read once per exchange,
and when a listing names many dead-letter exchanges, all exchanges and bindings
of the vhost are read in two requests instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qctl.adapters.rabbitmq.management import Management
from qctl.adapters.rabbitmq.policies import queue_setting

BULK_EXCHANGES = 8  # more distinct dead-letter exchanges than this: read all bindings at once


@dataclass(frozen=True, slots=True)
class DeadLetterRoute:
    exchange: str
    routing_key: str


def route_of(name: str, arguments: Mapping[str, Any], definition: Mapping[str, Any]) -> DeadLetterRoute | None:
    """The dead-letter exchange and key of a queue, from its arguments and effective policy definition."""
    exchange = queue_setting("dead-letter-exchange", arguments, definition)
    if exchange is None:
        return None
    key = queue_setting("dead-letter-routing-key", arguments, definition)
    return DeadLetterRoute(_text(exchange), _text(key) if key is not None else name)


# RabbitMQ 4.0 gave every quorum queue a delivery limit of 20 unless an argument or policy sets one
# (-1: none), so on 4.x a queue with no setting counts reads too.
DEFAULT_DELIVERY_LIMIT_FROM = 4
DEFAULT_DELIVERY_LIMIT = 20


def delivery_limit(arguments: Mapping[str, Any], definition: Mapping[str, Any]) -> int | None:
    """A quorum queue's delivery limit: the smaller of argument and policy; None when neither sets one or
    the setting is negative (RabbitMQ 4's way of saying "no limit")."""
    value = setting_number(arguments, definition)
    return None if value is None or value < 0 else value


def setting_number(arguments: Mapping[str, Any], definition: Mapping[str, Any]) -> int | None:
    """The delivery-limit setting in force, as a number (negative included); None when nothing sets it."""
    value = queue_setting("delivery-limit", arguments, definition)
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.lstrip("-").isdigit() else None


def default_delivery_limit(server_major: int | None) -> int | None:
    """The limit a quorum queue has when nothing sets one, on a server of this major version."""
    return DEFAULT_DELIVERY_LIMIT if server_major is not None and server_major >= DEFAULT_DELIVERY_LIMIT_FROM else None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more."""
    return _words_match(pattern.split("."), key.split("."))


def _words_match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_words_match(rest, words[skip:]) for skip in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _words_match(rest, words[1:])


@dataclass
class DeadLetterResolver:
    """Follows dead-letter routes; caches each exchange's type and bindings."""

    management: Management
    _exchanges: dict[str, tuple[str | None, list[dict[str, Any]]]] = field(default_factory=dict)

    def queue_for(self, route: DeadLetterRoute) -> str | None:
        if route.exchange == "":
            return route.routing_key or None
        kind, bindings = self._exchange(route.exchange)
        queues = [b for b in bindings if b.get("destination_type") == "queue"]
        for binding in queues:
            if self._binding_matches(kind, str(binding.get("routing_key", "")), route.routing_key):
                return str(binding["destination"])
        return None

    def prefetch(self, routes: Iterable[DeadLetterRoute]) -> None:
        """Many distinct dead-letter exchanges: read every exchange and binding in two requests."""
        wanted = {route.exchange for route in routes if route.exchange} - set(self._exchanges)
        if len(wanted) <= BULK_EXCHANGES:
            return
        kinds = self.management.exchanges()
        by_source: dict[str, list[dict[str, Any]]] = {}
        for binding in self.management.bindings():
            by_source.setdefault(str(binding.get("source", "")), []).append(binding)
        for name in wanted:
            kind = kinds.get(name)
            self._exchanges[name] = (kind, by_source.get(name, []) if kind else [])

    def _exchange(self, name: str) -> tuple[str | None, list[dict[str, Any]]]:
        if name not in self._exchanges:
            kind = self.management.exchange_type(name)
            self._exchanges[name] = (kind, self.management.bindings_from(name) if kind else [])
        return self._exchanges[name]

    @staticmethod
    def _binding_matches(kind: str | None, binding_key: str, key: str) -> bool:
        if kind in ("fanout", "headers"):
            return True
        if kind == "topic":
            return topic_matches(binding_key, key)
        return binding_key == key
