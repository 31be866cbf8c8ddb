"""The one interface every backend implements.

Adapters live in ``qctl.adapters`` (or register an entry point) and are reached
only through ``qctl.registry``.  An adapter never prints and never exits: it
returns ``qctl.models`` dataclasses and ``qctl.primitives`` readers and
destinations, and raises ``qctl.errors`` exceptions (it translates its
driver's errors at its edge).  It holds no rule about redrive, move, limits,
dry runs or interruption: those are the core's (``qctl.engine``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from qctl.errors import Unsupported
from qctl.models import Check, Message, PeekRequest, PurgeResult, QueueStats
from qctl.options import ConnectOptions, TLSFiles
from qctl.primitives import Destination, Reader, ReadMode, SourceTraits
from qctl.progress import NoProgress, Progress

__all__ = ["About", "Adapter", "ConnectOptions", "NoProgress", "Progress", "TLSFiles"]


@dataclass(frozen=True, slots=True, kw_only=True)
class About:
    """What the man page and README say about a backend, kept in its package's ``__init__`` (no driver import)."""

    backend: str
    urls: tuple[tuple[str, str], ...]  # (URL form, what it reaches and how)
    environment: tuple[tuple[str, str], ...] = ()  # (variable, meaning)
    extra: str | None = None  # the optional install it needs, e.g. "qctl[sqs]"


class Adapter(abc.ABC):
    """One connection to one broker, built from :class:`ConnectOptions`."""

    backend: ClassVar[str]
    # Command-line options that only some backends understand (the CLI's names, e.g. "--group"):
    # given to an adapter that does not list them, they are a usage error (exit 2), not ignored.
    understands: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: ConnectOptions) -> None:
        self.options = options
        # Things the operator should know that are not data (e.g. "this peek marked messages
        # redelivered"); the CLI prints them on stderr unless --quiet.
        self.notices: list[str] = []

    def check_name(self, queue: str) -> None:  # noqa: B027 - optional hook
        """Raise UsageError when ``queue`` cannot be a queue name on this broker (before any request)."""

    @abc.abstractmethod
    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        """Rows for the queues matching ``patterns`` (names or globs); all queues when empty.

        A plain name that does not exist raises QueueNotFound (Redis: an empty queue);
        a glob that matches nothing gives no rows.
        """

    @abc.abstractmethod
    def depth(self, queue: str) -> int:
        """Messages waiting in ``queue`` (QueueNotFound if it does not exist; Redis: 0)."""

    def names(self, prefix: str) -> list[str]:
        """Queue names starting with ``prefix``, cheaply (shell completion: no depths, no DLQ lookups)."""
        return [row.queue for row in self.stats([prefix + "*"] if prefix else [])]

    def read_traits(self, queue: str) -> SourceTraits:
        """What reading ``queue`` costs (does a return count toward a delivery limit?), asked before reading."""
        return SourceTraits()

    @abc.abstractmethod
    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        """Up to ``request.count`` messages in order, leaving the queue exactly as it was.

        A generator: the caller may stop early and closes it; cleanup (returning taken
        messages in place) happens in its ``finally``."""

    @abc.abstractmethod
    def purge(self, queue: str) -> PurgeResult:
        """Delete every waiting message the fast way (no backup, no selection)."""

    @abc.abstractmethod
    def reader(self, queue: str, mode: ReadMode) -> Reader:
        """Open a pass over ``queue`` (QueueNotFound if it does not exist; Redis: an empty one)."""

    @abc.abstractmethod
    def destination(self, queue: str) -> Destination:
        """Publish into ``queue``: QueueNotFound if it does not exist, Unsupported if it cannot take messages."""

    def ping(self) -> list[Check]:
        """``qctl ping``: connect, authenticate, version, permissions (checked without changing anything), round
        trip.  Never raises for what it checks: a failed connection is a failed Check, in order."""
        raise Unsupported(f"ping is not implemented for {self.backend}")

    def drop_session(self, client_id: str, *, force: bool, dry_run: bool) -> Mapping[str, Any]:
        """Drop an offline persistent session and the messages queued for it (``purge --session``, MQTT).

        Refuses while the client is connected unless ``force``; with ``dry_run`` only says what would go.
        Returns the result record (JSON fields)."""
        raise Unsupported(f"{self.backend} has no client sessions to drop", hint="purge --session is for MQTT")

    def close(self) -> None:  # noqa: B027 - optional hook; adapters without connections need nothing
        """Release connections; safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
