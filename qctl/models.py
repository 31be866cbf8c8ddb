"""What adapters return and what the CLI asks of them: frozen dataclasses.

Field names are the contract's JSON field names, so output is built straight
from these (``qctl.output``); a field that does not apply is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qctl.backup import BackupWriter


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
    # Set only for `stats --groups` rows (one row per queue x consumer group).
    group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """Dead-letter metadata read from a message (x-death, Spring or Connect headers)."""

    reason: str | None
    source_queue: str | None
    count: int | None
    time: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One message as peek shows it and as purge backups and restore carry it.

    ``headers`` holds JSON-safe values only (adapters convert); bytes that are
    not UTF-8 go through :func:`qctl.codec.header_value`.
    """

    queue: str
    position: str
    body: bytes
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None
    redelivered: bool | None = None
    delivery_count: int | None = None
    dead_letter: DeadLetter | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeResult:
    queue: str
    purged: int
    backup: str | None = None
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
class PeekRequest:
    count: int = 10
    from_position: str | None = None
    partition: int | None = None
    since: datetime | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RedriveRequest:
    to: str | None = None
    limit: int | None = None
    rate: float | None = None
    dry_run: bool = False
    max_redrives: int | None = None
    group: str = "qctl-redrive"
    # RabbitMQ: publish through the original exchange and routing keys from x-death.
    via_original_exchange: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeRequest:
    # Written (and synced) chunk by chunk before that chunk is deleted; --dry-run never reaches adapters.
    backup: BackupWriter | None = None
