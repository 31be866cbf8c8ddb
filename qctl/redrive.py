"""Redrive and move: the rules, once, for every backend.  The engine (:mod:`qctl.engine`) runs them.

Redrive, per message of the DLQ:

1. ``--where`` not selecting it: kept (``skipped``).
2. ``x-qctl-redrive-count`` at ``--max-redrives`` or more: kept, so a poison
   message cannot cycle forever.
3. The target: ``--to``, else the source queue in its dead-letter metadata
   (``Message.dead_letter.source_queue``: x-death, Spring/Connect headers,
   stream fields, a job framework's queue), else the DLQ's one source queue
   by the broker's configuration (``SourceTraits.origin``: SQS), else the
   DLQ's name without its dead-letter suffix.  None, or the DLQ itself: kept.
4. Sent with ``x-qctl-redrive-count`` one higher (a destination that carries
   no headers, a Redis list, drops it; ``--max-redrives`` on such a source is
   refused: :func:`check_source`).

``--to`` naming the DLQ itself is a usage error (exit 2) on every backend, and
a ``--to`` that does not exist is exit 4 before anything moves.  Move sends
every selected message to DEST unchanged (its headers are the message's).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qctl.deadletter import DeadLetterNaming
from qctl.engine import Decision, Keep, Send, Tally
from qctl.errors import UsageError
from qctl.models import Message, RedriveResult, with_pairs
from qctl.primitives import SourceTraits
from qctl.selection import Selection

REDRIVE_COUNT_HEADER = "x-qctl-redrive-count"
# Where a store without headers keeps the count: a field of the job record itself (Sidekiq's JSON, RQ's and
# BullMQ's hash).  Each framework keeps fields it does not know through its own failures and retries, so
# --max-redrives sees the count next time.
REDRIVE_COUNT_FIELD = "qctl_redrive_count"
NOT_SELECTED = "not selected by --where"
# Kept for these reasons is the operator's choice; any other reason makes the run partial (exit 6).
CHOSEN_REASONS = frozenset({NOT_SELECTED})
UNSELECTED = Keep(NOT_SELECTED)  # one decision for every message --where passes over (half a pass, often)


@dataclass(frozen=True, slots=True, kw_only=True)
class RedriveRequest:
    to: str | None = None
    limit: int | None = None
    rate: float | None = None
    dry_run: bool = False
    max_redrives: int | None = None
    where: Selection = field(default_factory=lambda: Selection(None))

    @property
    def needs_messages(self) -> bool:
        """Whether counting per target needs each message (a dry run on a guarded source cannot read them)."""
        return self.to is None or not self.where.everything or self.max_redrives is not None


def redrive_count(message: Message) -> int:
    value: Any = message.headers.get(REDRIVE_COUNT_HEADER)
    if value is None:
        return 0
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return 0


# For stores that keep the redrive count in a record of their own (a job framework's job), not as a header:
# the count's header is the core's rule, so these are the only way an adapter reads or writes it.
def count_headers(raw: Any) -> dict[str, Any]:
    """A stored redrive count as the message's headers (``{}`` when it has none or it is not a count)."""
    if raw is None or isinstance(raw, bool):
        return {}
    try:
        count = int(raw)
    except (TypeError, ValueError):
        return {}
    return {REDRIVE_COUNT_HEADER: count} if count >= 0 else {}


def stored_count(record: Mapping[Any, Any]) -> dict[str, Any]:
    """The headers of a record that keeps the count in a field of its own (a job hash, str or bytes keys,
    or a job's JSON object): ``{}`` when it has none."""
    raw = record.get(REDRIVE_COUNT_FIELD)
    return count_headers(raw if raw is not None else record.get(_COUNT_FIELD_BYTES))


def count_entry(message: Message) -> dict[str, int]:
    """What to put into a JSON record (a Sidekiq job) for the message's count: ``{}`` when it carries none."""
    count = outgoing_count(message)
    return {} if count is None else {REDRIVE_COUNT_FIELD: count}


def count_pair(message: Message) -> tuple[bytes, ...]:
    """The field and value to HSET into a job hash for the message's count: ``()`` when it carries none."""
    count = outgoing_count(message)
    return () if count is None else (_COUNT_FIELD_BYTES, str(count).encode())


_COUNT_FIELD_BYTES = REDRIVE_COUNT_FIELD.encode()
COUNT_FIELD_NAMES = frozenset({REDRIVE_COUNT_FIELD, _COUNT_FIELD_BYTES})  # a record's fields that are the count


def outgoing_count(message: Message) -> int | None:
    """The redrive count to store with a message: its header (a redrive has bumped it), else None."""
    return redrive_count(message) if REDRIVE_COUNT_HEADER in message.headers else None


def other_headers(messages: Sequence[Message]) -> bool:
    """Does any of these carry a header besides the redrive count?"""
    return any(name != REDRIVE_COUNT_HEADER for message in messages for name, _ in message.pairs())


def bumped(message: Message) -> Message:
    """``message`` with ``x-qctl-redrive-count`` one higher, in the place it had (added last otherwise)."""
    count = redrive_count(message) + 1
    pairs = [(name, value) for name, value in message.pairs() if name != REDRIVE_COUNT_HEADER]
    return with_pairs(message, [*pairs, (REDRIVE_COUNT_HEADER, count)])


def check_request(dlq: str, request: RedriveRequest) -> None:
    if request.to is not None and request.to == dlq:
        raise UsageError(f"--to {request.to!r} is the dead-letter queue itself",
                         hint="redrive moves messages out of the DLQ; name the queue they belong to")


def check_source(dlq: str, request: RedriveRequest, traits: SourceTraits) -> None:
    """``--max-redrives`` needs a count that travels with each message; a bare body has nowhere to keep it."""
    if request.max_redrives is not None and traits.metadata_free:
        raise UsageError(f"--max-redrives cannot be applied to {dlq!r}: its messages are bare bodies (a Redis list "
                         f"or sorted set) with nowhere to keep {REDRIVE_COUNT_HEADER}",
                         hint="redrive it without --max-redrives, or keep dead letters in a stream")


class RedriveRules:
    """``decide`` for a redrive of ``dlq``."""

    def __init__(self, dlq: str, request: RedriveRequest, naming: DeadLetterNaming, *,
                 origin: str | None = None) -> None:
        self.dlq = dlq
        self.request = request
        self.by_name = naming.origin(dlq)
        self.origin = origin  # the DLQ's one source queue by the broker's configuration (traits.origin)

    def blind_target(self, traits: SourceTraits) -> str | None:
        """The one target every message goes to, when nothing in a message can change that: a source
        whose messages carry no metadata, or a DLQ whose broker knows its one source queue."""
        request = self.request
        if not request.where.everything or request.max_redrives is not None:
            return None
        target = request.to or self.by_name if traits.metadata_free else (
            traits.origin if request.to is None else None)
        return target if target != self.dlq else None

    def server_move(self, traits: SourceTraits) -> bool:
        """May the broker move it all by itself?  Only the whole queue to its origin: a move task knows
        no --to, --limit, --where or --max-redrives, and does not count redrives."""
        request = self.request
        return (traits.server_moves and traits.origin is not None and request.to is None and request.limit is None
                and request.where.everything and request.max_redrives is None and not request.dry_run)

    def __call__(self, message: Message) -> Decision:
        request = self.request
        if not request.where(message):
            return UNSELECTED
        if request.max_redrives is not None and redrive_count(message) >= request.max_redrives:
            return Keep(f"already redriven {request.max_redrives} time(s) or more (--max-redrives)")
        target = (request.to or (message.dead_letter.source_queue if message.dead_letter else None) or self.origin
                  or self.by_name)
        if target is None:
            return Keep("no target: no dead-letter metadata, no one source queue configured for the DLQ, and its "
                        "name has no dead-letter suffix (give --to)")
        if target == self.dlq:
            return Keep("its dead-letter metadata names the DLQ itself")
        return Send(target, bumped(message))


class MoveRules:
    """``decide`` for ``qctl move``: every selected message to ``dest``, unchanged."""

    def __init__(self, dest: str, where: Selection) -> None:
        self.dest = dest
        self.where = where

    def blind_target(self, traits: SourceTraits) -> str | None:
        return self.dest if self.where.everything else None

    def __call__(self, message: Message) -> Decision:
        if not self.where(message):
            return UNSELECTED
        return Send(self.dest, message)


def result(source: str, tally: Tally, *, dry_run: bool) -> RedriveResult:
    """The contract's result; a dry run moved nothing (its counts per target are in ``targets``)."""
    return RedriveResult(source=source, moved=0 if dry_run else tally.moved, skipped=tally.skipped,
                         failed=tally.failed,
                         targets={target: n for target, n in tally.targets.items() if n > 0}, dry_run=dry_run)


def partial(tally: Tally) -> bool:
    """Did messages that were meant to move stay behind? (Not selecting them is not partial.)"""
    left = sum(n for reason, n in tally.reasons.items() if reason not in CHOSEN_REASONS)
    return tally.failed > 0 or left > 0


def notices(tally: Tally, selection: Selection | None = None) -> Iterator[str]:
    """What the operator should know about a pass, one line each."""
    yield from reasons(tally.reasons)
    yield from tally.dropped.notices()
    if tally.requeued:
        yield (f"{tally.requeued} kept message(s) were copied to the tail of the queue and the originals removed, "
               f"so that no return counted toward its delivery limit")
    if tally.gone:
        yield (f"{tally.gone} message(s) were delivered and then found already taken from the source by a "
               f"consumer: they may be processed twice")
    if selection is not None and selection.not_applicable:
        yield f"--where could not be applied to {selection.not_applicable} message(s); they were not selected"


def reasons(counts: Mapping[str, int]) -> Iterator[str]:
    for reason, count in sorted(counts.items(), key=lambda item: -item[1]):
        yield f"{count} message(s) left in place: {reason}"
