"""The one interface every backend implements.

Adapters live in ``qctl.adapters`` and are reached only through
``qctl.registry``.  An adapter never prints and never exits: it returns
``qctl.models`` dataclasses, reports progress through a :class:`Progress`, and
raises ``qctl.errors`` exceptions (it translates its driver's errors at its edge).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from qctl.deadletter import DeadLetterNaming
from qctl.models import (
    Message,
    PeekRequest,
    PurgeRequest,
    PurgeResult,
    QueueStats,
    RedriveRequest,
    RedriveResult,
)
from qctl.urls import BrokerURL


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSFiles:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectOptions:
    """Everything an adapter needs to connect, resolved from flags, env and profile."""

    url: BrokerURL
    timeout: float = 10.0
    management_url: str | None = None
    tls: TLSFiles = field(default_factory=TLSFiles)
    dead_letter: DeadLetterNaming = field(default_factory=DeadLetterNaming)
    # Redis lists: the end consumers pop first ("right" for LPUSH+BRPOP, "left" for RPUSH+BLPOP).
    list_end: str = "right"
    include_internal: bool = False
    # The profile's raw table, for backend-specific settings.
    settings: Mapping[str, Any] = field(default_factory=dict)


class Progress(Protocol):
    """Where long operations report progress; the CLI draws it on a terminal."""

    def start(self, total: int | None, description: str) -> None: ...

    def advance(self, count: int = 1) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, total: int | None, description: str) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


class Adapter(abc.ABC):
    """One connection to one broker, built from :class:`ConnectOptions`."""

    backend: ClassVar[str]

    def __init__(self, options: ConnectOptions) -> None:
        self.options = options
        # Things the operator should know that are not data (e.g. "this peek marked messages
        # redelivered"); the CLI prints them on stderr unless --quiet.
        self.notices: list[str] = []

    @abc.abstractmethod
    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        """Rows for the queues matching ``patterns`` (names or globs); all queues when empty.

        A plain name that does not exist raises QueueNotFound (Redis: an empty queue);
        a glob that matches nothing gives no rows.
        """

    @abc.abstractmethod
    def depth(self, queue: str) -> int:
        """Messages waiting in ``queue`` (QueueNotFound if it does not exist; Redis: 0)."""

    @abc.abstractmethod
    def peek(self, queue: str, request: PeekRequest) -> list[Message]:
        """Up to ``request.count`` messages, leaving the queue exactly as it was."""

    @abc.abstractmethod
    def purge(self, queue: str, request: PurgeRequest) -> PurgeResult:
        """Delete waiting messages (after writing them to ``request.backup`` if given)."""

    @abc.abstractmethod
    def redrive(self, dlq: str, request: RedriveRequest, progress: Progress) -> RedriveResult:
        """Move dead letters back; the source is removed only after the target has them."""

    @abc.abstractmethod
    def publish(self, queue: str, messages: Iterable[Message], progress: Progress) -> int:
        """Publish ``messages`` (from a backup) to ``queue``, durably; return how many."""

    def close(self) -> None:  # noqa: B027 - optional hook; adapters without connections need nothing
        """Release connections; safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
