"""Kafka records as qctl Messages, and the dead-letter metadata their headers carry.

Spring Kafka's DeadLetterPublishingRecoverer writes ``kafka_dlt-original-topic``
(text), ``-original-partition`` (4-byte big-endian int), ``-original-offset``
and ``-original-timestamp`` (8-byte longs), ``-exception-message`` and
``-exception-fqcn``; Kafka Connect's dead-letter queue writes
``__connect.errors.topic``, ``.partition``, ``.offset``,
``.exception.class.name`` and ``.exception.message`` as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from qctl.codec import header_value
from qctl.models import DeadLetter, Message, new_dead_letter, new_message

SPRING_TOPIC = "kafka_dlt-original-topic"
SPRING_MESSAGE = "kafka_dlt-exception-message"
SPRING_FQCN = "kafka_dlt-exception-fqcn"
CONNECT_TOPIC = "__connect.errors.topic"
CONNECT_MESSAGE = "__connect.errors.exception.message"
CONNECT_CLASS = "__connect.errors.exception.class.name"


def _header(value: bytes | None) -> Any:
    """A header value as JSON-safe text: UTF-8 (nearly always) without the general converter's checks."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return header_value(value)


def to_message(record: Any) -> Message:
    """A confluent-kafka Message as the qctl Message that peek prints and passes carry.

    Every header is kept in order (``header_pairs``: Kafka allows repeats); ``headers`` keeps the last
    value of each name.  A record without a value (a tombstone) has an empty body.  Called once a
    record (peek ``-n 1000000`` calls it a million times), hence no general helpers on the way."""
    global _last_headers
    raw = record.headers()
    kind, millis = record.timestamp()
    stamp = _moment(millis) if kind and millis >= 0 else None
    value = record.value()
    partition, offset = record.partition(), record.offset()
    if raw:
        last = _last_headers
        if raw != last[0]:  # records in a batch mostly carry the same headers: decoded once for all of them
            last = _last_headers = _decoded(raw)
        _, pairs, source, reason = last
        dead = None if source is None and reason is None else _dead_letter(source, reason, stamp)
        headers = dict(pairs)  # every message its own dict: a caller may change it
    else:
        pairs, headers, dead = (), {}, None
    return new_message(record.topic(), f"{partition}:{offset}", value if value is not None else b"", partition,
                       offset, record.key(), headers, pairs, {}, stamp, None, None, dead)


_DEAD_LETTER_HEADERS = frozenset({SPRING_TOPIC, CONNECT_TOPIC, SPRING_MESSAGE, CONNECT_MESSAGE, SPRING_FQCN,
                                  CONNECT_CLASS})


# One-entry caches, each a tuple replaced whole: the records of a batch mostly share their millisecond and
# their headers, and consecutive dead letters mostly say the same; datetimes and DeadLetters are immutable.
_last_moment: tuple[int | None, datetime | None] = (None, None)
_last_headers: tuple[Any, tuple[tuple[str, Any], ...], str | None, str | None] = (None, (), None, None)
_last_dead: tuple[str | None, str | None, datetime | None, DeadLetter | None] = (None, None, None, None)


def _moment(millis: int) -> datetime:
    """The record time as a datetime (the last one reused for the same millisecond)."""
    global _last_moment
    last = _last_moment
    if last[0] == millis and last[1] is not None:
        return last[1]
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    _last_moment = (millis, moment)
    return moment


def _decoded(raw: list[tuple[str, bytes | None]]) -> tuple[Any, tuple[tuple[str, Any], ...], str | None, str | None]:
    """(``raw``, every header pair decoded by :func:`_header`, dead-letter source, dead-letter reason): Spring's
    or Kafka Connect's headers, the last of each name as Spring reads them, text only (bytes that were not
    UTF-8 say nothing)."""
    pairs = tuple([(name, _header(item)) for name, item in raw])
    if _DEAD_LETTER_HEADERS.isdisjoint([name for name, _ in pairs]):
        return raw, pairs, None, None
    headers = dict(pairs)
    return (raw, pairs, _first_text(headers, (SPRING_TOPIC, CONNECT_TOPIC)),
            _first_text(headers, (SPRING_MESSAGE, CONNECT_MESSAGE, SPRING_FQCN, CONNECT_CLASS)))


def _dead_letter(source: str | None, reason: str | None, stamp: datetime | None) -> DeadLetter:
    """The dead-letter metadata (the last one reused when the same headers come at the same moment)."""
    global _last_dead
    last = _last_dead
    if last[0] is source and last[1] is reason and last[2] is stamp and last[3] is not None:
        return last[3]
    # The dead-letter record is written when the failure happened: its own timestamp is that time.
    dead = new_dead_letter(reason, source, None, stamp)
    _last_dead = (source, reason, stamp, dead)
    return dead


def _first_text(headers: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` whose header is non-empty text (not base64: the bytes were not UTF-8)."""
    for name in names:
        value = headers.get(name)
        if value and type(value) is str:
            return value
    return None
