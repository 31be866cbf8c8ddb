"""Redis items <-> :class:`qctl.models.Message`.

Lists and sorted sets hold bare bodies (a sorted set's score goes to
``headers["score"]``).  A stream entry is a field map; its **body** is the first
of the fields ``body``, ``data``, ``payload``, ``message`` that is present, and
every other field becomes a header.  When the body field is not ``body`` its
name is kept in the header ``x-qctl-body-field`` so ``restore`` writes it back
under the same name; an entry with none of those fields has an empty body and
all its fields as headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from qctl.codec import header_bytes, header_value
from qctl.models import DeadLetter, Message

BODY_FIELDS = (b"body", b"data", b"payload", b"message")
BODY_FIELD_HEADER = "x-qctl-body-field"
REDRIVE_COUNT_FIELD = "x-qctl-redrive-count"
SCORE_HEADER = "score"
# Stream fields that name the queue a dead letter came from, most specific first.
SOURCE_FIELDS = (b"x-original-queue", b"x-first-death-queue", b"original_queue", b"source_queue")
REASON_FIELDS = (b"x-death-reason", b"x-exception-message", b"reason", b"error")
STREAM_ID = re.compile(r"^\d+-\d+$")


def list_message(queue: str, index: int, body: bytes) -> Message:
    return Message(queue=queue, position=str(index), body=body)


def zset_message(queue: str, rank: int, member: bytes, score: float) -> Message:
    return Message(queue=queue, position=str(rank), body=member, headers={SCORE_HEADER: _number(score)})


def stream_message(queue: str, entry_id: bytes, fields: Mapping[bytes, bytes]) -> Message:
    body_field = next((name for name in BODY_FIELDS if name in fields), None)
    headers: dict[str, Any] = {}
    if body_field is not None and body_field != b"body":
        headers[BODY_FIELD_HEADER] = body_field.decode()
    for name, value in fields.items():
        if name != body_field:
            headers[header_value(name)] = header_value(value)
    position = entry_id.decode()
    return Message(queue=queue, position=position, body=fields[body_field] if body_field else b"",
                   headers=headers, timestamp=id_time(position), dead_letter=_dead_letter(fields),
                   delivery_count=None)


def stream_fields(message: Message) -> list[bytes]:
    """The XADD field/value list that :func:`stream_message` reads back as ``message``."""
    headers = dict(message.headers)
    body_field = str(headers.pop(BODY_FIELD_HEADER, "body"))
    pairs = [body_field.encode(), message.body] if message.body or not headers else []
    for name, value in headers.items():
        pairs += [name.encode("utf-8", "surrogateescape"), header_bytes(value)]
    return pairs


def restore_kind(message: Message) -> str:
    """The key type ``restore`` creates for a missing target: the rule of its first message."""
    if STREAM_ID.match(message.position):
        return "stream"
    if SCORE_HEADER in message.headers and not message.headers.keys() - {SCORE_HEADER}:
        return "zset"
    return "list"


def redrive_count(fields: Mapping[bytes, bytes]) -> int:
    try:
        return int(fields.get(REDRIVE_COUNT_FIELD.encode(), b"0"))
    except ValueError:
        return 0


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
    count = redrive_count(fields)
    return DeadLetter(reason=reason.decode("utf-8", "replace") if reason else None, source_queue=source,
                      count=count or None, time=None)


def _number(score: float) -> int | float:
    return int(score) if float(score).is_integer() else float(score)
