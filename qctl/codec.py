"""Lossless text for bytes: bodies, keys and header values in JSON.

Bytes that are valid UTF-8 become text; others become base64 and say so
(``body_encoding: base64`` for bodies and keys, ``{"$base64": ...}`` for a header
value), so ``peek -o jsonl`` output can be restored byte for byte.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from qctl.models import DeadLetter, Message

UTF8 = "utf-8"
BASE64 = "base64"
BASE64_KEY = "$base64"


def encode_bytes(data: bytes) -> tuple[str, str]:
    """Return (text, encoding) for ``data``: UTF-8 text when it decodes, else base64."""
    try:
        return data.decode(UTF8), UTF8
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), BASE64


def decode_text(text: str, encoding: str | None) -> bytes:
    if encoding == BASE64:
        return base64.b64decode(text)
    if encoding in (None, UTF8):
        return text.encode(UTF8)
    raise ValueError(f"unknown encoding {encoding!r}")


def header_value(value: Any) -> Any:
    """Turn a driver's header value into a JSON-safe value (recursively)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        text, encoding = encode_bytes(bytes(value))
        return text if encoding == UTF8 else {BASE64_KEY: text}
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): header_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [header_value(item) for item in value]
    return value


def header_bytes(value: Any) -> bytes:
    """The bytes a JSON header value stands for (Kafka headers are bytes)."""
    if isinstance(value, Mapping) and set(value) == {BASE64_KEY}:
        return base64.b64decode(value[BASE64_KEY])
    if isinstance(value, str):
        return value.encode(UTF8)
    if value is None:
        return b""
    import json

    return json.dumps(value).encode(UTF8)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse ISO 8601 (``Z`` allowed); naive times are taken as UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def message_to_json(message: Message) -> dict[str, Any]:
    """The contract's peek row for ``message`` (also the purge-backup line format)."""
    body, body_encoding = encode_bytes(message.body)
    key: str | None = None
    key_encoding: str | None = None
    if message.key is not None:
        key, key_encoding = encode_bytes(message.key)
    dead = message.dead_letter
    return {
        "queue": message.queue,
        "position": message.position,
        "partition": message.partition,
        "offset": message.offset,
        "key": key,
        "key_encoding": key_encoding,
        "headers": {name: header_value(value) for name, value in message.headers.items()},
        "body": body,
        "body_encoding": body_encoding,
        "timestamp": iso(message.timestamp),
        "redelivered": message.redelivered,
        "delivery_count": message.delivery_count,
        "dead_letter": None if dead is None else {
            "reason": dead.reason,
            "source_queue": dead.source_queue,
            "count": dead.count,
            "time": iso(dead.time),
        },
    }


def message_from_json(row: Mapping[str, Any]) -> Message:
    """Rebuild a :class:`Message` from a peek/backup JSON row (for ``restore``)."""
    key = row.get("key")
    dead = row.get("dead_letter")
    timestamp = row.get("timestamp")
    return Message(
        queue=str(row.get("queue") or ""),
        position=str(row.get("position") or ""),
        body=decode_text(str(row.get("body") or ""), row.get("body_encoding")),
        partition=row.get("partition"),
        offset=row.get("offset"),
        key=None if key is None else decode_text(str(key), row.get("key_encoding")),
        headers=dict(row.get("headers") or {}),
        timestamp=parse_iso(timestamp) if timestamp else None,
        redelivered=row.get("redelivered"),
        delivery_count=row.get("delivery_count"),
        dead_letter=None if not dead else DeadLetter(
            reason=dead.get("reason"),
            source_queue=dead.get("source_queue"),
            count=dead.get("count"),
            time=parse_iso(dead["time"]) if dead.get("time") else None,
        ),
    )
