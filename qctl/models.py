"""What adapters return and what the CLI asks of them: frozen dataclasses.

Field names are the contract's JSON field names, so output is built straight
from these (``qctl.output``); a field that does not apply is ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    backend: str
    queue: str
    type: str
    depth: int | None
    in_flight: int | None = None
    consumers: int | None = None
    lag: int | None = None
    dead_letter_queue: str | None = None
    dead_letter_depth: int | None = None
    oldest_age: float | None = None
    # Set only for `stats --groups` rows (one row per queue x consumer group).
    group: str | None = None
    # Backend-specific additions (SQS delayed, Sidekiq retry-set size, quorum leader...): extra JSON fields.
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The broker's own cumulative counters of messages in and out, where it keeps them, for the
    # rates of `stats --watch` (not printed).
    total_in: int | None = None
    total_out: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """Dead-letter metadata read from a message (x-death, Spring or Connect headers, a framework's error)."""

    reason: str | None
    source_queue: str | None
    count: int | None
    time: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One message as peek shows it and as backups, restore, redrive and move carry it.

    ``headers`` holds JSON-safe values only (adapters convert; bytes that are not
    UTF-8 go through :func:`qctl.codec.header_value`) and keeps the last value of
    a repeated name; ``header_pairs``, when set, is every header in order with
    repeats (Kafka).  ``properties`` are the broker's message properties that are
    not headers (AMQP ``content_type``, ``priority``...; SQS system attributes;
    a Redis sorted-set ``score``), so a header named like a property survives.
    """

    queue: str
    position: str
    body: bytes
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    header_pairs: tuple[tuple[str, Any], ...] | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None
    redelivered: bool | None = None
    delivery_count: int | None = None
    dead_letter: DeadLetter | None = None

    def pairs(self) -> tuple[tuple[str, Any], ...]:
        """Every header in order, repeats kept."""
        return self.header_pairs if self.header_pairs is not None else tuple(self.headers.items())


def with_pairs(message: Message, pairs: Sequence[tuple[str, Any]]) -> Message:
    """``message`` with these headers (``headers`` becomes their last value per name).  Built field by field:
    ``dataclasses.replace`` looks every field up again on each call, ~25 us a message of a redrive."""
    m = message
    return new_message(m.queue, m.position, m.body, m.partition, m.offset, m.key, dict(pairs), tuple(pairs),
                       m.properties, m.timestamp, m.redelivered, m.delivery_count, m.dead_letter)


# --- the same classes, built a million times a pass ---------------------------------------------------------
#
# A frozen dataclass's __init__ sets each field through object.__setattr__ from a call by keyword: 1.8 us for
# a Message, a tenth of what a redrive of a job does with it.  Its slots' own setters, called in field order,
# take 0.8 us.  These build exactly what the constructor builds (tests/core/test_fast_builders.py compares) and
# are the constructor again if a class stops being the plain slotted dataclass they expect.


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...] | None:
    """Each field's slot setter, in ``names`` order; None unless ``names`` are exactly the class's fields, in
    order, and nothing else runs in its __init__."""
    if tuple(f.name for f in fields(cls)) != names or hasattr(cls, "__post_init__") or "__slots__" not in vars(cls):
        return None
    return tuple(getattr(cls, name).__set__ for name in names)


_MESSAGE_FIELDS = ("queue", "position", "body", "partition", "offset", "key", "headers", "header_pairs",
                   "properties", "timestamp", "redelivered", "delivery_count", "dead_letter")
_MESSAGE_SETTERS = _slot_setters(Message, _MESSAGE_FIELDS)
_new = object.__new__


def new_message(queue: str, position: str, body: bytes, partition: int | None, offset: int | None,
                key: bytes | None, headers: Mapping[str, Any], header_pairs: tuple[tuple[str, Any], ...] | None,
                properties: Mapping[str, Any], timestamp: datetime | None, redelivered: bool | None,
                delivery_count: int | None, dead_letter: DeadLetter | None) -> Message:
    """``Message(queue=queue, ...)``, every field given, in the order the class declares them."""
    setters = _MESSAGE_SETTERS
    if setters is None:
        return Message(queue=queue, position=position, body=body, partition=partition, offset=offset, key=key,
                       headers=headers, header_pairs=header_pairs, properties=properties, timestamp=timestamp,
                       redelivered=redelivered, delivery_count=delivery_count, dead_letter=dead_letter)
    message = _new(Message)
    (set_queue, set_position, set_body, set_partition, set_offset, set_key, set_headers, set_pairs, set_properties,
     set_time, set_redelivered, set_count, set_dead) = setters
    set_queue(message, queue)
    set_position(message, position)
    set_body(message, body)
    set_partition(message, partition)
    set_offset(message, offset)
    set_key(message, key)
    set_headers(message, headers)
    set_pairs(message, header_pairs)
    set_properties(message, properties)
    set_time(message, timestamp)
    set_redelivered(message, redelivered)
    set_count(message, delivery_count)
    set_dead(message, dead_letter)
    return message


_DEAD_LETTER_SETTERS = _slot_setters(DeadLetter, ("reason", "source_queue", "count", "time"))


def new_dead_letter(reason: str | None, source_queue: str | None, count: int | None,
                    time: datetime | None) -> DeadLetter:
    """``DeadLetter(reason=reason, source_queue=source_queue, count=count, time=time)``."""
    setters = _DEAD_LETTER_SETTERS
    if setters is None:
        return DeadLetter(reason=reason, source_queue=source_queue, count=count, time=time)
    dead = _new(DeadLetter)
    set_reason, set_source, set_count, set_time = setters
    set_reason(dead, reason)
    set_source(dead, source_queue)
    set_count(dead, count)
    set_time(dead, time)
    return dead


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeResult:
    queue: str
    purged: int
    backup: str | None = None
    # Messages a --where left in place (None without --where).
    kept: int | None = None
    # Extra facts the CLI reports on stderr (e.g. RabbitMQ unacked messages left in place).
    remaining_unacked: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RedriveResult:
    source: str
    moved: int
    skipped: int
    failed: int
    targets: Mapping[str, int]
    dry_run: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One line of ``qctl ping``: a capability, whether it holds (None: not known or not needed), and why."""

    check: str  # connect, authenticate, version, management API, list, read, write, configure, round trip
    ok: bool | None
    detail: str
    needed_by: str | None = None  # the commands that need it, when it is a permission


@dataclass(frozen=True, slots=True, kw_only=True)
class PeekRequest:
    count: int = 10
    from_position: str | None = None
    partition: int | None = None
    since: datetime | None = None
    group: str | None = None
