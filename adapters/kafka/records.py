"""Kafka records as qctl Messages, and the dead-letter metadata their headers carry.

Spring Kafka's DeadLetterPublishingRecoverer writes ``kafka_dlt-original-topic``
(text), ``-original-partition`` (4-byte big-endian int), ``-original-offset``
and ``-original-timestamp`` (8-byte longs), ``-exception-message`` and
``-exception-fqcn``; Kafka Connect's dead-letter queue writes
``__connect.errors.topic``, ``.partition``, ``.offset``,
``.exception.class.name`` and ``.exception.message`` as text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from qctl.codec import header_value
from qctl.models import DeadLetter, Message

SPRING_TOPIC = "kafka_dlt-original-topic"
SPRING_MESSAGE = "kafka_dlt-exception-message"
SPRING_FQCN = "kafka_dlt-exception-fqcn"
CONNECT_TOPIC = "__connect.errors.topic"
CONNECT_MESSAGE = "__connect.errors.exception.message"
CONNECT_CLASS = "__connect.errors.exception.class.name"


def last_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, bytes | None]:
    """Headers by name; Kafka allows repeats and the last one wins (as Spring reads them)."""
    return {name: value for name, value in headers or ()}


def text(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def original_topic(headers: Mapping[str, bytes | None]) -> str | None:
    """The topic a dead letter came from, per Spring's or Kafka Connect's headers."""
    return text(headers.get(SPRING_TOPIC)) or text(headers.get(CONNECT_TOPIC)) or None


def dead_letter(headers: Mapping[str, bytes | None], timestamp: datetime | None) -> DeadLetter | None:
    source = original_topic(headers)
    reason = (text(headers.get(SPRING_MESSAGE)) or text(headers.get(CONNECT_MESSAGE))
              or text(headers.get(SPRING_FQCN)) or text(headers.get(CONNECT_CLASS)))
    if source is None and reason is None:
        return None
    # The dead-letter record is written when the failure happened: its own timestamp is that time.
    return DeadLetter(reason=reason, source_queue=source, count=None, time=timestamp)


def moment(millis: int | None) -> datetime | None:
    if millis is None or millis < 0:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def to_message(record: Any) -> Message:
    """A confluent-kafka Message as the qctl Message that peek prints and passes carry.

    Every header is kept in order (``header_pairs``: Kafka allows repeats); ``headers`` keeps the last
    value of each name.  A record without a value (a tombstone) has an empty body."""
    raw = record.headers() or []
    pairs = tuple((name, header_value(value)) for name, value in raw)
    kind, millis = record.timestamp()
    stamp = moment(millis) if kind else None
    value = record.value()
    return Message(
        queue=record.topic(),
        position=f"{record.partition()}:{record.offset()}",
        body=value if value is not None else b"",
        partition=record.partition(),
        offset=record.offset(),
        key=record.key(),
        headers=dict(pairs),
        header_pairs=pairs,
        timestamp=stamp,
        dead_letter=dead_letter(last_headers(raw), stamp),
    )
