"""The interface every job-framework layout implements, and what they share.

A layout maps a framework's queue names to its keys and answers the Redis
adapter's primitives for them (:class:`Layout`).  With a layout, QUEUE is the
framework's queue name (``emails``, not ``rq:queue:emails``); its failed,
dead, retry or unacked jobs have their own names (``emails:failed``,
``dead``...), which ``stats`` shows as the queue's ``dead_letter_queue`` and
which ``peek``, ``purge`` and ``redrive`` take.  ``--dead`` on peek and purge
means that name for the queue given.
"""

from __future__ import annotations

import abc
import fnmatch
import json
from collections.abc import Container, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.keys import is_glob, key_name
from qctl.codec import header_value, json_encoder, parse_each
from qctl.errors import UsageError
from qctl.models import Message, PeekRequest, PurgeResult, QueueStats
from qctl.options import ConnectOptions
from qctl.primitives import Destination, Reader, ReadMode, SourceTraits

BACKEND = "redis"
PURGE_STEP = 500  # jobs deleted per step: each takes a few commands


class Layout(abc.ABC):
    """One framework's view of one Redis database."""

    name: ClassVar[str]
    macros: ClassVar[str] = ""  # Lua functions its steps call (layouts/steps.py)

    def __init__(self, client: Client, options: ConnectOptions, where: str, notices: list[str]) -> None:
        self.client = client
        self.options = options
        self.where = where
        self.notices = notices  # the adapter's: printed on stderr by the CLI

    @property
    def dead(self) -> bool:
        """``--dead``: the queue's failed (dead) jobs instead of its waiting ones."""
        return bool(self.options.flags.get("dead"))

    def setting(self, name: str, default: Any = None) -> Any:
        return self.options.setting(name, default)

    def check_name(self, queue: str) -> None:
        if not queue:
            raise UsageError(f"a {self.name} queue needs a name")

    @abc.abstractmethod
    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]: ...

    @abc.abstractmethod
    def depth(self, queue: str) -> int: ...

    @abc.abstractmethod
    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]: ...

    @abc.abstractmethod
    def purge(self, queue: str) -> PurgeResult: ...

    @abc.abstractmethod
    def reader(self, queue: str, mode: ReadMode) -> Reader: ...

    @abc.abstractmethod
    def destination(self, queue: str) -> Destination: ...

    def read_traits(self, queue: str) -> SourceTraits:
        return SourceTraits(settle_before_read=True)

    def dead_name(self, queue: str, suffix: str) -> str:
        """``queue``, or with ``--dead`` the name of its dead-letter set (``queue + suffix``)."""
        if not self.dead:
            return queue
        if queue.endswith(suffix):
            raise UsageError(f"--dead {queue!r}: --dead takes the queue's own name",
                             hint=f"give {queue[:-len(suffix)]!r} with --dead, or {queue!r} without it")
        return queue + suffix


def selected(names: Sequence[str], patterns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(names the patterns' globs match, the plain names asked for), each sorted, no repeats."""
    globs = [p for p in patterns if is_glob(p)] if patterns else ["*"]
    plain = sorted(dict.fromkeys(p for p in patterns if not is_glob(p)))
    matched = sorted({n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)} - set(plain))
    return matched, plain


def text(raw: Any) -> str | None:
    if raw is None:
        return None
    return key_name(raw) if isinstance(raw, bytes) else str(raw)


def loads(raw: bytes | str | None) -> Any:
    """JSON, or None when it is not JSON (a framework's key may hold anything).  Bytes are decoded as UTF-8
    first (what every framework writes): ``json.loads`` of bytes first sniffs for UTF-16 and -32, a fifth of
    its time on a job; bytes that are not UTF-8 (or start with a BOM) still get its sniffing."""
    if raw is None:
        return None
    try:
        if type(raw) is bytes:
            try:
                return _decode(raw.decode())
            except (ValueError, UnicodeDecodeError):  # not UTF-8, or a BOM: json.loads decides
                pass
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


_decode = json.JSONDecoder().decode


def loads_all(raws: Sequence[bytes]) -> list[Any]:
    """:func:`loads` of each, parsed together when they are all UTF-8 JSON (:func:`qctl.codec.parse_each`)."""
    try:
        parsed = parse_each([raw.decode() for raw in raws])
    except UnicodeDecodeError:
        parsed = None
    return parsed if parsed is not None else [loads(raw) for raw in raws]


def ruby_json(value: Any) -> bytes:
    """JSON as Ruby's ``JSON.generate`` writes it (Sidekiq): compact, UTF-8, the shortest float repr."""
    return _ruby_encode(value).encode()


# One encoder for every job: json.dumps with these options builds a new encoder per call.
_ruby_encode = json_encoder(item_separator=",", key_separator=":", allow_nan=False)


def epoch(seconds: float | int | None, *, ms: bool = False) -> datetime | None:
    """The UTC moment of a Unix time in seconds (``ms``: milliseconds); None for None, a bool or one out of
    range.  Twice a job of every pass: the time zone is passed by position, which costs half as much."""
    if seconds is None or seconds is True or seconds is False:
        return None
    try:
        return _fromtimestamp(float(seconds) / 1000 if ms else float(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        return None


_fromtimestamp = datetime.fromtimestamp


def age(moment: datetime | None, now: float) -> float | None:
    return None if moment is None else max(0.0, now - moment.timestamp())


def number(raw: Any) -> int | None:
    """An integer stored as text (BullMQ and RQ hash fields), else None."""
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def row(queue: str, kind: str, depth: int | None, **fields: Any) -> QueueStats:
    return QueueStats(backend=BACKEND, queue=queue, type=kind, depth=depth, **fields)


def json_safe(fields: dict[bytes, bytes], skip: Container[Any] = ()) -> dict[str, Any]:
    """A hash's fields as JSON values, as :func:`qctl.codec.header_value` writes them (text, or
    ``{"$base64": ...}`` for bytes that are not UTF-8), without its per-value dispatch: this runs for every
    field of every job a pass reads."""
    found: dict[str, Any] = {}
    for name, value in fields.items():
        if name in skip:
            continue
        try:
            found[name.decode()] = value.decode()
        except UnicodeDecodeError:
            found[key_name(name)] = header_value(value)
    return found
