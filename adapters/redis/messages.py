"""Redis items <-> :class:`qctl.models.Message`, exactly.

Lists hold bare bodies; a sorted set's members are bodies with their score in
``properties["score"]``.  A stream entry is a field map; its **body** is the
first of the fields ``body``, ``data``, ``payload``, ``message`` that is
present (its name in ``properties["body_field"]``, null when the entry has
none, and its place among the fields in ``properties["body_index"]`` when it
is not the first), and every other field is a header, in order.  So a backup
or a move writes the entry back field for field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from qctl.codec import header_bytes, header_value
from qctl.models import DeadLetter, Message, new_message

BODY_FIELDS = (b"body", b"data", b"payload", b"message")
SCORE = "score"
BODY_FIELD = "body_field"
BODY_INDEX = "body_index"
# The properties each kind of key can keep (docs/mapping.md); any other property is dropped there.
ZSET_PROPERTIES = frozenset({SCORE})
STREAM_PROPERTIES = frozenset({BODY_FIELD, BODY_INDEX})
# Stream fields that name the queue a dead letter came from, most specific first.
SOURCE_FIELDS = (b"x-original-queue", b"x-first-death-queue", b"original_queue", b"source_queue")
REASON_FIELDS = (b"x-death-reason", b"x-exception-message", b"reason", b"error")
STREAM_ID = re.compile(r"^\d+-\d+$")


def list_message(queue: str, index: int, body: bytes) -> Message:
    return new_message(queue, str(index), body, None, None, None, {}, None, {}, None, None, None, None)


def zset_message(queue: str, rank: int, member: bytes, score: float) -> Message:
    return new_message(queue, str(rank), member, None, None, None, {}, None, {SCORE: _number(score)}, None, None,
                       None, None)


def stream_message(queue: str, entry_id: bytes, fields: Mapping[bytes, bytes]) -> Message:
    names = list(fields)
    body_field = next((name for name in BODY_FIELDS if name in fields), None)
    pairs = tuple((header_value(name), header_value(value)) for name, value in fields.items() if name != body_field)
    properties: dict[str, Any] = {BODY_FIELD: body_field.decode() if body_field is not None else None}
    if body_field is not None and names.index(body_field) != 0:
        properties[BODY_INDEX] = names.index(body_field)
    position = entry_id.decode()
    return Message(queue=queue, position=position, body=fields[body_field] if body_field else b"",
                   headers=dict(pairs), header_pairs=pairs, properties=properties, timestamp=id_time(position),
                   dead_letter=_dead_letter(fields))


def stream_fields(message: Message) -> list[bytes]:
    """The XADD field/value list that :func:`stream_message` reads back as ``message``.

    A header name given twice (Kafka) is written once, with its last value, where it first came: that is
    the entry every Redis client that reads fields as a map (redis-py, qctl included) would see anyway."""
    fields: list[bytes] = []
    for name, value in dict(message.pairs()).items():
        fields += [str(name).encode("utf-8", "surrogateescape"), header_bytes(value)]
    body_field = message.properties.get(BODY_FIELD, "body")
    if body_field is not None or message.body:
        index = message.properties.get(BODY_INDEX, 0)
        index = index if isinstance(index, int) and 0 <= index <= len(fields) // 2 else 0
        fields[2 * index:2 * index] = [str(body_field or "body").encode(), message.body]
    if not fields:  # XADD needs a field: an entry with nothing at all keeps an empty body
        fields = [b"body", b""]
    return fields


def kind_for(message: Message) -> str:
    """The key type a message asks for when its target does not exist yet."""
    if BODY_FIELD in message.properties or STREAM_ID.match(message.position):
        return "stream"
    if SCORE in message.properties:
        return "zset"
    return "list"


def score_of(message: Message) -> float | None:
    score = message.properties.get(SCORE)
    if isinstance(score, bool) or not isinstance(score, (int, float, str)):
        return None
    try:
        return float(score)
    except ValueError:
        return None


def source_queue(fields: Mapping[bytes, bytes]) -> str | None:
    raw = next((fields[name] for name in SOURCE_FIELDS if fields.get(name)), None)
    return raw.decode("utf-8", "surrogateescape") if raw else None


def id_time(entry_id: str) -> datetime:
    return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, tz=UTC)


def _dead_letter(fields: Mapping[bytes, bytes]) -> DeadLetter | None:
    source = source_queue(fields)
    reason = next((fields[name] for name in REASON_FIELDS if fields.get(name)), None)
    if source is None and reason is None:
        return None
    return DeadLetter(reason=reason.decode("utf-8", "replace") if reason else None, source_queue=source,
                      count=None, time=None)


def _number(score: float) -> int | float:
    return int(score) if float(score).is_integer() else float(score)
