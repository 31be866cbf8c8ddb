"""What adapters return and what the CLI asks of them: frozen dataclasses.

Field names are the contract's JSON field names, so output is built straight
from these (``qctl.output``); a field that does not apply is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    return Message(queue=m.queue, position=m.position, body=m.body, partition=m.partition, offset=m.offset,
                   key=m.key, headers=dict(pairs), header_pairs=tuple(pairs), properties=m.properties,
                   timestamp=m.timestamp, redelivered=m.redelivered, delivery_count=m.delivery_count,
                   dead_letter=m.dead_letter)


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
