"""The primitives a backend supplies to the core engine (:mod:`qctl.engine`).

An adapter opens a :class:`Reader` on a queue (read a batch, settle it, keep
it) and a :class:`Destination` per target queue (publish a batch with
confirmation).  Every rule about *what* to move, when a source may be
settled, ``--limit``, ``--rate``, dry runs, termination, interruption and the
delivery-limit guard lives in the core; these classes only say *how* on their
broker.  An atomic shortcut a broker offers (a Redis Lua step that moves and
removes in one go, a server-side move task) is :meth:`Destination.move_from`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from qctl.models import Message


class ReadMode(enum.Enum):
    """What settling a message means for this pass."""

    MOVE = "move"  # redrive and move: settled once its target has it (Kafka: the group moves past it)
    DELETE = "delete"  # purge: settled once the backup file has it (Kafka: DeleteRecords)
    READ = "read"  # backup and dry runs: never settled


@dataclass(frozen=True, slots=True)
class Taken:
    """A message read from a source and not yet settled; ``handle`` is the adapter's own token."""

    message: Message
    handle: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceTraits:
    """Honest differences between sources, which the engine and the guard act on."""

    # Taking a message and returning it counts toward a limit (quorum x-delivery-limit, SQS maxReceiveCount):
    # kept messages must then be copied to the tail and settled, never returned.
    counts_reads: bool = False
    read_limit: int | None = None  # that limit, when known
    limit_reason: str | None = None  # how it was found, for messages ("x-delivery-limit 1 (policy dlq-limit)")
    limit_hint: str | None = None  # how an operator lifts the guard, for refusals
    # Settling shifts the positions of what comes after (Redis lists): settle each chunk before reading on.
    settle_before_read: bool = False
    # A kept message stays exactly where it was (False: Kafka, whose group moves past it in MOVE mode).
    keeps_in_place: bool = True
    # DELETE mode can remove any single message (False: Kafka deletes only up to an offset).
    deletes_singly: bool = True
    # Messages carry nothing but a body (Redis lists and sorted sets): no metadata can decide a target.
    metadata_free: bool = False
    # The queue every message of this DLQ came from, by the broker's own configuration (SQS: the one
    # source queue whose RedrivePolicy names it), when there is exactly one.
    origin: str | None = None
    # The broker can move the whole queue itself (SQS StartMessageMoveTask): Destination.start_move.
    server_moves: bool = False
    # Messages with the same value of this property must stay in order (SQS FIFO ``MessageGroupId``): once
    # one of a group is left in place, the engine holds back the rest of that group for the pass.
    group_property: str | None = None
    chunk: int = 1000  # messages per read


@runtime_checkable
class Reader(Protocol):
    """One pass over a source queue, from a snapshot taken when it opens."""

    queue: str
    traits: SourceTraits

    def total(self) -> int | None:
        """How many messages the pass may read at most: those present when it opened (None: unknown)."""

    def read(self, limit: int) -> list[Taken]:
        """The next messages in order, at most ``limit``; ``[]`` when the snapshot is exhausted.

        Never takes more from the broker than ``limit`` when ``traits.counts_reads``."""

    def settle(self, taken: Sequence[Taken]) -> list[bool]:
        """Remove these from the source (their target has them); per message, False if it was gone already."""

    def keep(self, taken: Sequence[Taken]) -> None:
        """Leave these where they were (returned in place when the pass closes, for take-based brokers)."""

    def close(self) -> None:
        """End the pass: return what is kept, commit progress.  Safe to call twice."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Carries:
    """What of a message a destination can carry; the rest is dropped (and counted in a notice, see
    :mod:`qctl.mapping` and docs/mapping.md).  Read after a send: a destination that takes the shape of
    its first message (a new Redis key) may only know then."""

    key: bool = False
    headers: bool = False
    header_repeats: bool = False  # a header name given twice keeps both values (else the last one wins)
    properties: bool = False
    property_names: frozenset[str] | None = None  # with ``properties``: only these (None: any)
    timestamp: bool = False  # the message's own time, not the time it arrived here

    def keeps_property(self, name: str) -> bool:
        return self.properties and (self.property_names is None or name in self.property_names)


@runtime_checkable
class Destination(Protocol):
    """Where a pass publishes: one queue, durably, with confirmation."""

    queue: str

    @property
    def carries(self) -> Carries:
        """What of a message this destination keeps."""

    def refusal(self, message: Message) -> str | None:
        """Why ``message`` cannot be published here (over a size or attribute limit), else None."""

    def send(self, messages: Sequence[Message]) -> Any:
        """Publish ``messages`` in order; return a ticket for :meth:`confirmed`."""

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool] | None:
        """Per message whether the broker durably has it; None while unknown (only when not ``wait``)."""

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> list[bool] | None:
        """Move ``taken`` (published as ``outgoing``) from ``reader``'s queue here in one atomic step.

        Returns per message whether it moved, or None when this broker has no such step for this
        reader (another broker, another cluster slot...): the engine then sends and settles."""

    # Optional, looked up with getattr by the engine:
    #   move_blind(reader, limit) -> int | None: move the reader's next ``limit`` messages here without
    #       reading them (Redis lists), when nothing in a message could change where it goes;
    #   start_move(reader, rate) -> MoveTask | None: have the broker move every message of the reader's
    #       queue here by itself (SQS), at ``rate`` messages per second if given.


class MoveTask(Protocol):
    """A move the broker runs by itself (SQS message move task), started by ``Destination.start_move``."""

    def poll(self) -> tuple[int, bool]:
        """(messages moved so far, finished); may wait a little (about a second) for news."""

    def cancel(self) -> None:
        """Stop the task; what it moved so far stays moved (nothing is lost either way)."""


class Sync:
    """A ticket for a destination that confirms during :meth:`Destination.send` (Redis, a backup file)."""

    __slots__ = ("results",)

    def __init__(self, results: list[bool]) -> None:
        self.results = results


def sync_confirmed(ticket: Any) -> list[bool]:
    assert isinstance(ticket, Sync)
    return ticket.results
