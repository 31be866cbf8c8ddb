"""Which queue a queue dead-letters into: its dead-letter exchange, followed to a bound queue.

The exchange and routing key come from the queue's arguments
(``x-dead-letter-exchange``, ``x-dead-letter-routing-key``) or its effective
policy (``dead-letter-exchange``, ``dead-letter-routing-key``); without a key
RabbitMQ uses the message's own routing key, which for the usual publish
through the default exchange is the queue's name.  The default exchange ``""``
routes straight to the queue named by the key; other exchanges are followed
through their bindings (direct, fanout, topic; headers: the first queue bound).
Bindings are read once per exchange, not once per queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qctl.adapters.rabbitmq.management import Management


@dataclass(frozen=True, slots=True)
class DeadLetterRoute:
    exchange: str
    routing_key: str


def route_of(row: Mapping[str, Any]) -> DeadLetterRoute | None:
    """The dead-letter exchange and key of a management-API queue row, if it has one."""
    arguments = row.get("arguments") or {}
    policy = row.get("effective_policy_definition") or {}
    if not isinstance(policy, Mapping):  # the API gives [] for "no policy" in some versions
        policy = {}
    exchange = arguments.get("x-dead-letter-exchange", policy.get("dead-letter-exchange"))
    if exchange is None:
        return None
    key = arguments.get("x-dead-letter-routing-key", policy.get("dead-letter-routing-key"))
    return DeadLetterRoute(str(exchange), str(key) if key is not None else str(row.get("name", "")))


def delivery_limit(row: Mapping[str, Any]) -> int | None:
    """A quorum queue's delivery limit (argument wins over policy, as in RabbitMQ 3.10)."""
    arguments = row.get("arguments") or {}
    policy = row.get("effective_policy_definition") or {}
    value = arguments.get("x-delivery-limit")
    if value is None and isinstance(policy, Mapping):
        value = policy.get("delivery-limit")
    return int(value) if isinstance(value, (int, float, str)) and str(value).strip().isdigit() else None


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
