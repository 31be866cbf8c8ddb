"""Lossless text for bytes: bodies, keys and header values in JSON.

Bytes that are valid UTF-8 become text; others become base64 and say so
(``body_encoding: base64`` for bodies and keys, ``{"$base64": ...}`` for a header
value), so ``peek -o jsonl`` output can be restored byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from qctl.models import DeadLetter, Message

UTF8 = "utf-8"
BASE64 = "base64"
BASE64_KEY = "$base64"


def json_encoder(*, item_separator: str = ", ", key_separator: str = ": ", allow_nan: bool = True
                 ) -> Callable[[Any], str]:
    """``JSONEncoder(ensure_ascii=False, check_circular=False, ...).encode``, for values that are never cyclic
    (trees just parsed or built), made once.  The encoder's ``encode`` builds its C encoder anew on every
    call, about 1 us of a small object's 2 to 4; this calls one built here.  Without the C accelerator,
    the plain encoder."""
    plain = json.JSONEncoder(ensure_ascii=False, check_circular=False, allow_nan=allow_nan,
                             separators=(item_separator, key_separator))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain.encode
    encode = make(None, plain.default, json.encoder.encode_basestring, None, key_separator, item_separator,
                  False, False, allow_nan)
    join = "".join

    def dumps(value: Any) -> str:
        return join(encode(value, 0))

    return dumps


# One encoder for every line; the values are JSON-safe trees made here, never cyclic.
_dump = json_encoder()
_text: Any = json.encoder.encode_basestring  # a str as a JSON string, non-ASCII kept (C)


_NONCE = secrets.randbits(62)  # see parse_each
_parse = json.JSONDecoder().decode


def parse_each(texts: Sequence[str]) -> list[Any] | None:
    """The JSON value of each of ``texts``, from one parse of them all; None when some text is not exactly one
    JSON value (then parse them one by one, to say which).

    One parse of a thousand small documents costs about two thirds of a thousand parses (the per-call work,
    and the decoder's memo of object keys, are shared).  Each text is wrapped as ``[nonce, text]`` with a
    random ``nonce`` no text can know, so a text that is not exactly one value (``{..}, {..}``, or half a value
    that the next one completes) cannot pass: every element must be one wrapper, in order."""
    if not texts:
        return []
    head = f"[{_NONCE},"
    try:
        values = _parse("[" + ",".join([head + text + "]" for text in texts]) + "]")
    except (ValueError, RecursionError):
        return None
    if type(values) is not list or len(values) != len(texts):
        return None
    parsed = []
    for value in values:
        if type(value) is not list or len(value) != 2 or type(value[0]) is not int or value[0] != _NONCE:
            return None
        parsed.append(value[1])
    return parsed


def encode_bytes(data: bytes) -> tuple[str, str]:
    """Return (text, encoding) for ``data``: UTF-8 text when it decodes, else base64."""
    try:
        return data.decode(UTF8), UTF8
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), BASE64


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
    kind = type(value)
    if kind is str:  # nearly every header; then the redrive count (an int): no ABC check on the way
        return value.encode(UTF8)  # type: ignore[no-any-return]
    if kind is int:
        return int.__repr__(value).encode()  # what json.dumps writes for an int
    if isinstance(value, Mapping) and set(value) == {BASE64_KEY}:
        return base64.b64decode(value[BASE64_KEY])
    if isinstance(value, str):
        return value.encode(UTF8)
    if value is None:
        return b""
    import json

    return json.dumps(value).encode(UTF8)


# The last moment written and its text: the records of a batch mostly share their millisecond (and the
# adapters reuse the datetime object for it), so a peek of a million formats a fraction of them.
_last_iso: tuple[datetime | None, str | None] = (None, None)


def iso(moment: datetime | None) -> str | None:
    global _last_iso
    if moment is None:
        return None
    last = _last_iso
    if last[0] is moment:
        return last[1]
    given = moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.isoformat().replace("+00:00", "Z")
    _last_iso = (given, text)
    return text


def parse_iso(text: str) -> datetime:
    """Parse ISO 8601 (``Z`` allowed); naive times are taken as UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def message_to_json(message: Message, *, pairs: bool = False) -> dict[str, Any]:
    """The contract's peek row for ``message``; with ``pairs`` also ``header_pairs`` (the backup line)."""
    body, body_encoding = encode_bytes(message.body)
    key: str | None = None
    key_encoding: str | None = None
    if message.key is not None:
        key, key_encoding = encode_bytes(message.key)
    dead = message.dead_letter
    row: dict[str, Any] = {
        "queue": message.queue,
        "position": message.position,
        "partition": message.partition,
        "offset": message.offset,
        "key": key,
        "key_encoding": key_encoding,
        "headers": _json_safe(message.headers),
        "properties": _json_safe(message.properties),
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
    if pairs:
        row["header_pairs"] = [[name, header_value(value)] for name, value in message.pairs()]
    return row


def _json_safe(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: header_value(value)}``, text passed through as it is (nearly every header value)."""
    if not values:
        return {}
    return {name: value if type(value) is str else header_value(value) for name, value in values.items()}


def backup_line(message: Message) -> str:
    """``json.dumps(message_to_json(message, pairs=True), ensure_ascii=False)``, the same text, built from
    pieces: a backup writes a million of these, and this is about three times faster (a test compares them)."""
    body, body_encoding = encode_bytes(message.body)
    if message.key is None:
        key = 'null, "key_encoding": null'
    else:
        key_text, key_kind = encode_bytes(message.key)
        key = f'{_text(key_text)}, "key_encoding": {_text(key_kind)}'
    headers, properties, pairs = message.headers, message.properties, message.pairs()
    stamp, dead = message.timestamp, message.dead_letter
    return (f'{{"queue": {_string(message.queue)}, "position": {_string(message.position)}, '
            f'"partition": {_integer(message.partition)}, "offset": {_integer(message.offset)}, "key": {key}, '
            f'"headers": {_dump({n: header_value(v) for n, v in headers.items()}) if headers else "{}"}, '
            f'"properties": {_dump({n: header_value(v) for n, v in properties.items()}) if properties else "{}"}, '
            f'"body": {_text(body)}, "body_encoding": {_text(body_encoding)}, '
            f'"timestamp": {"null" if stamp is None else _text(iso(stamp))}, '
            f'"redelivered": {_LITERALS.get(message.redelivered) or _dump(message.redelivered)}, '
            f'"delivery_count": {_integer(message.delivery_count)}, '
            f'"dead_letter": {"null" if dead is None else _dead(dead)}, '
            f'"header_pairs": {_dump([[n, header_value(v)] for n, v in pairs]) if pairs else "[]"}}}')


_LITERALS: dict[Any, str] = {None: "null", True: "true", False: "false"}


def _dead(dead: DeadLetter) -> str:
    return _dump({"reason": dead.reason, "source_queue": dead.source_queue, "count": dead.count,
                  "time": iso(dead.time)})


def _string(value: Any) -> str:
    return _text(value) if type(value) is str else _dump(value)


def _integer(value: Any) -> str:
    if value is None:
        return "null"
    return int.__repr__(value) if type(value) is int else _dump(value)


class BadRow(ValueError):
    """A backup or peek line that does not describe a message (the reader adds the line number)."""


# Version-1 backups (and peek output before ``properties`` existed) mixed these into ``headers``:
# AMQP properties, a Redis sorted-set score, and the name of a Redis stream entry's body field.
LEGACY_PROPERTIES = frozenset({
    "content_type", "content_encoding", "delivery_mode", "priority", "correlation_id", "reply_to",
    "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "score",
})
LEGACY_BODY_FIELD = "x-qctl-body-field"


def message_from_json(row: Any) -> Message:
    """Rebuild a :class:`Message` from a backup line or peek row; :class:`BadRow` says what is wrong.

    A row without ``properties`` is from a version-1 file: the names in :data:`LEGACY_PROPERTIES`
    move from its headers to its properties (except on Kafka rows, whose headers never held them).
    A restore reads every line twice (checked, then published), so the common shapes take short paths.
    """
    if type(row) is not dict and not isinstance(row, Mapping):
        raise BadRow(f"expected a JSON object, got {type(row).__name__}")
    get = row.get
    if "body" not in row:
        raise BadRow("no 'body' field")
    text, encoding = get("body"), get("body_encoding", UTF8)
    if type(text) is str and (encoding == UTF8 or encoding is None):
        body = text.encode(UTF8, "surrogatepass")
    else:
        body = _decoded(text, encoding, "body")
    key = get("key")
    headers = _mapping(get("headers"), "headers")
    raw_pairs = get("header_pairs")
    pairs = () if type(raw_pairs) is list and not raw_pairs else _pairs(raw_pairs)
    properties = _mapping(get("properties"), "properties")
    if "properties" not in row:
        headers, properties = _legacy_split(dict(headers), get("partition") is not None)
    dead = get("dead_letter")
    if dead is not None and not isinstance(dead, Mapping):
        raise BadRow("'dead_letter' must be an object or null")
    queue, position, stamp, redelivered = get("queue"), get("position"), get("timestamp"), get("redelivered")
    partition, offset, count = get("partition"), get("offset"), get("delivery_count")
    try:
        return Message(
            queue=queue if type(queue) is str else str(queue or ""),
            position=position if type(position) is str else str(position or ""),
            body=body,
            partition=None if partition is None else _int_or_none(partition, "partition"),
            offset=None if offset is None else _int_or_none(offset, "offset"),
            key=None if key is None else _decoded(key, get("key_encoding"), "key"),
            headers=dict(pairs) if pairs is not None else headers,
            header_pairs=pairs,
            properties=properties,
            timestamp=None if stamp is None else _time(stamp, "timestamp"),
            redelivered=redelivered if isinstance(redelivered, bool) else None,
            delivery_count=None if count is None else _int_or_none(count, "delivery_count"),
            dead_letter=None if not dead else DeadLetter(
                reason=_text_or_none(dead.get("reason")),
                source_queue=_text_or_none(dead.get("source_queue")),
                count=_int_or_none(dead.get("count"), "dead_letter.count"),
                time=_time(dead.get("time"), "dead_letter.time"),
            ),
        )
    except ValueError as exc:
        raise BadRow(str(exc)) from None


def _decoded(text: Any, encoding: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BadRow(f"{what!r} must be a string")
    if encoding in (None, UTF8):
        return text.encode(UTF8, "surrogatepass")
    if encoding == BASE64:
        try:
            return base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            raise BadRow(f"{what!r} is not valid base64") from None
    raise BadRow(f"unknown {what}_encoding {encoding!r} (expected utf-8 or base64)")


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if type(value) is dict:
        return value  # used as it is (never changed here; a legacy split works on a copy)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadRow(f"{what!r} must be an object")
    return dict(value)


def _pairs(value: Any) -> tuple[tuple[str, Any], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in value):
        raise BadRow("'header_pairs' must be a list of [name, value] pairs")
    return tuple((pair[0], pair[1]) for pair in value)


def _legacy_split(headers: dict[str, Any], kafka: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    if kafka:
        return headers, {}
    properties = {name: headers.pop(name) for name in list(headers) if name in LEGACY_PROPERTIES}
    if LEGACY_BODY_FIELD in headers:
        properties["body_field"] = headers.pop(LEGACY_BODY_FIELD)
    return headers, properties


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRow(f"{what!r} must be a whole number or null")
    return value


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _time(value: Any, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_iso(str(value))
    except ValueError:
        raise BadRow(f"{what!r} is not an ISO 8601 time: {value!r}") from None
