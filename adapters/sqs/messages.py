"""SQS messages <-> :class:`qctl.models.Message`: the mapping, in one place, both ways.

Reading (ReceiveMessage with every attribute):

* ``body``: the message body as UTF-8 bytes, or, when the message carries the
  String attribute ``x-qctl-body-encoding`` = ``base64``, the bytes that body
  decodes to (see below).
* ``headers``: the message attributes -- String as text, Number as an integer
  or a float when its text is exactly that number's (else the text), Binary as
  text when it is UTF-8, else ``{"$base64": ...}``.
* ``properties``: ``MessageId`` and the system attributes (``SenderId``,
  ``SentTimestamp``, ``ApproximateFirstReceiveTimestamp``, ``SequenceNumber``,
  ``MessageGroupId``, ``MessageDeduplicationId``, ``AWSTraceHeader``,
  ``DeadLetterQueueSourceArn``; timestamps as integers) -- not
  ApproximateReceiveCount, which every receive changes (it is
  ``delivery_count``), so two backups of the same messages agree -- plus
  ``attribute_types``: the DataType of each attribute whose type the value
  alone would not give back (``Binary`` holding UTF-8, ``Number`` "1.50",
  custom types such as ``String.json``), so SQS to SQS keeps them exactly.
* ``timestamp`` is SentTimestamp, ``delivery_count`` ApproximateReceiveCount
  (this receive included), ``redelivered`` whether that is above 1, and
  ``dead_letter.source_queue`` the queue named by DeadLetterQueueSourceArn.

Writing (SendMessageBatch entries):

* Headers become message attributes, each of the type recorded in
  ``attribute_types`` or else the value's own: text String (Binary if SQS
  would refuse its characters), numbers Number, ``{"$base64"}`` Binary, and
  anything else (true, null, lists, objects) String holding its JSON.  Among
  them the core's redrive count (an int), a Number.
* A body SQS cannot carry as text -- bytes that are not UTF-8, or text with
  characters SQS refuses (NUL, ESC and most other control characters) -- is
  sent base64-encoded with ``x-qctl-body-encoding: base64``, and qctl decodes
  it when it reads the message (consumers of such a queue see base64).
* ``AWSTraceHeader`` is kept (a system attribute SQS lets senders set).  On a
  FIFO queue ``MessageGroupId`` is the message's own (else its key, else
  ``qctl``: one group keeps the order they came in) and
  ``MessageDeduplicationId`` is the source message's ``MessageId`` (a Kafka
  record's topic:partition:offset hashed; else a random id).  Not its old
  MessageDeduplicationId: the source queue remembers that id for 5 minutes
  after the first send, and would drop a redriven copy while answering
  "successful".  A MessageId is new to every queue, yet the same on a rerun
  after a crash, so the rerun's copy is the one FIFO drops.
* Other properties (AMQP ``content_type``...) have no place on an SQS message
  and are dropped (counted in a notice); the key and the timestamp likewise.

Limits, refused before sending with the reason: at most 10 message
attributes (the body-encoding marker counts), names SQS takes, no empty
values, and the queue's MaximumMessageSize for body plus attributes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qctl.adapters.sqs.names import name_from_arn
from qctl.codec import BASE64_KEY, header_bytes, header_value
from qctl.models import DeadLetter, Message

BODY_ENCODING = "x-qctl-body-encoding"
BASE64 = "base64"
ATTRIBUTE_TYPES = "attribute_types"
MAX_ATTRIBUTES = 10
DEFAULT_MAX_SIZE = 1_048_576  # AWS's limit (and MaximumMessageSize default) since 2025; older queues may set 262,144
DEFAULT_GROUP = "qctl"
# System attributes SQS sets itself: not "dropped" when a message moves to another SQS queue.
SYSTEM = frozenset({
    "MessageId", "SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
    "SequenceNumber", "MessageDeduplicationId", "MessageGroupId", "AWSTraceHeader", "DeadLetterQueueSourceArn",
    "MD5OfBody", ATTRIBUTE_TYPES,
})
INTEGER_PROPERTIES = frozenset({"SentTimestamp", "ApproximateFirstReceiveTimestamp"})
RECEIVE_COUNT = "ApproximateReceiveCount"
# Characters SQS accepts in a body or String attribute: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000+
_REFUSED_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_ID_CHARS = re.compile(r"[!-~]{1,128}")  # group and deduplication ids: printable ASCII, no space


def sqs_text(text: str) -> bool:
    """Whether SQS takes ``text`` as a body or String value (no NUL, ESC, ...)."""
    return _REFUSED_CHARS.search(text) is None


# --- reading -----------------------------------------------------------------------


def to_message(queue: str, position: str, raw: Mapping[str, Any]) -> Message:
    """A received SQS message as qctl's Message."""
    system: Mapping[str, Any] = raw.get("Attributes") or {}
    attributes: Mapping[str, Any] = raw.get("MessageAttributes") or {}
    text = str(raw.get("Body") or "")
    body = text.encode("utf-8", "surrogatepass")
    marker = attributes.get(BODY_ENCODING)
    encoded = isinstance(marker, Mapping) and marker.get("StringValue") == BASE64
    if encoded:
        try:
            body = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            encoded = False  # not what qctl wrote: show it as it is, marker included
    headers: dict[str, Any] = {}
    types: dict[str, str] = {}
    for name, value in attributes.items():
        if encoded and name == BODY_ENCODING:
            continue
        headers[name], declared = attribute_value(value)
        if declared != implied_type(headers[name]):
            types[name] = declared
    properties: dict[str, Any] = {"MessageId": raw.get("MessageId")}
    for name, value in system.items():
        if name != RECEIVE_COUNT:
            properties[name] = int(value) if name in INTEGER_PROPERTIES and str(value).isdigit() else value
    if types:
        properties[ATTRIBUTE_TYPES] = types
    received = system.get(RECEIVE_COUNT)
    count = int(str(received)) if str(received).isdigit() else None
    sent = properties.get("SentTimestamp")
    source = system.get("DeadLetterQueueSourceArn")
    return Message(
        queue=queue, position=position, body=body, headers=headers, header_pairs=tuple(headers.items()),
        properties=properties,
        timestamp=datetime.fromtimestamp(sent / 1000, UTC) if isinstance(sent, int) else None,
        delivery_count=count if isinstance(count, int) else None,
        redelivered=count > 1 if isinstance(count, int) else None,
        dead_letter=DeadLetter(reason=None, source_queue=name_from_arn(str(source)), count=None, time=None)
        if source else None,
    )


def attribute_value(value: Mapping[str, Any]) -> tuple[Any, str]:
    """(JSON-safe value, DataType) of one message attribute."""
    declared = str(value.get("DataType") or "String")
    kind = declared.split(".", 1)[0]
    if kind == "Binary":
        return header_value(bytes(value.get("BinaryValue") or b"")), declared
    text = str(value.get("StringValue") or "")
    if kind == "Number":
        return _number(text), declared
    return text, declared


def _number(text: str) -> Any:
    """An int or float when the text is exactly how Python writes that number, else the text itself."""
    try:
        if str(int(text)) == text:
            return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) and repr(number) == text else text


def implied_type(value: Any) -> str:
    """The DataType qctl writes for a header value when nothing says otherwise."""
    if isinstance(value, bool) or value is None:
        return "String"
    if isinstance(value, (int, float)):
        return "Number" if not isinstance(value, float) or math.isfinite(value) else "String"
    if _is_base64(value):
        return "Binary"
    if isinstance(value, str):
        return "String" if sqs_text(value) else "Binary"
    return "String"


def _is_base64(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {BASE64_KEY}


# --- writing -----------------------------------------------------------------------


class Refused(ValueError):
    """A message this queue cannot take as it is; the text says why."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One SendMessageBatch entry (without its Id), its size as SQS counts it, and its body's MD5."""

    entry: dict[str, Any]
    size: int
    md5: str


def to_entry(message: Message, *, fifo: bool, max_size: int) -> Outgoing:
    """The SendMessageBatch entry for ``message``; :class:`Refused` when SQS would not take it."""
    try:
        text = message.body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    encoded = text is None or not sqs_text(text)
    body = base64.b64encode(message.body).decode("ascii") if encoded else str(text)
    declared = message.properties.get(ATTRIBUTE_TYPES)
    types: Mapping[str, Any] = declared if isinstance(declared, Mapping) else {}
    attributes: dict[str, dict[str, Any]] = {}
    for name, value in message.headers.items():
        if name == BODY_ENCODING:
            continue  # describes how an earlier SQS hop stored the body; set below when it applies again
        _check_name(name)
        attributes[name] = to_attribute(name, value, types.get(name))
    if encoded:
        attributes[BODY_ENCODING] = {"DataType": "String", "StringValue": BASE64}
    if len(attributes) > MAX_ATTRIBUTES:
        extra = " (one of them marks the body as base64)" if encoded else ""
        raise Refused(f"{len(attributes)} message attributes{extra}: an SQS message carries at most {MAX_ATTRIBUTES}")
    size = len(body.encode("utf-8")) + sum(_attribute_size(name, value) for name, value in attributes.items())
    if size > max_size:
        raise Refused(f"{size:,} bytes with its message attributes: over the queue's MaximumMessageSize of "
                      f"{max_size:,}")
    entry: dict[str, Any] = {"MessageBody": body}
    if attributes:
        entry["MessageAttributes"] = attributes
    trace = message.properties.get("AWSTraceHeader")
    if isinstance(trace, str) and trace:
        entry["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    if fifo:
        entry["MessageGroupId"] = group_id(message)
        entry["MessageDeduplicationId"] = deduplication_id(message)
    return Outgoing(entry, size, hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest())


def to_attribute(name: str, value: Any, declared: Any = None) -> dict[str, Any]:
    """One message attribute for a header value (of the DataType recorded for it, when it fits)."""
    kind = str(declared).split(".", 1)[0] if isinstance(declared, str) else None
    data_type = str(declared) if kind in ("String", "Number", "Binary") else implied_type(value)
    kind = data_type.split(".", 1)[0]
    if kind == "Number" and isinstance(value, str) and not _number_text(value):
        data_type, kind = implied_type(value), implied_type(value)
    if kind == "Binary":
        raw = header_bytes(value) if isinstance(value, (str, Mapping)) else _json(value).encode("utf-8")
        if not raw:
            raise Refused(f"header {name!r} is empty: SQS takes no empty message attribute")
        return {"DataType": data_type, "BinaryValue": raw}
    text = value if isinstance(value, str) else _json(value) if kind == "String" else str(value)
    if not text:
        raise Refused(f"header {name!r} is empty: SQS takes no empty message attribute")
    if kind == "String" and not sqs_text(text):
        return {"DataType": "Binary", "BinaryValue": text.encode("utf-8")}
    return {"DataType": data_type, "StringValue": text}


def _number_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _json(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _check_name(name: str) -> None:
    lowered = name.lower()
    if (not _ATTRIBUTE_NAME.fullmatch(name) or name.startswith(".") or name.endswith(".") or ".." in name
            or lowered.startswith(("aws.", "amazon."))):
        raise Refused(f"header {name!r} cannot be an SQS message attribute name (1-256 letters, digits, '_', '-' "
                      f"and '.', not starting with AWS. or Amazon.)")


def _attribute_size(name: str, value: Mapping[str, Any]) -> int:
    data = value.get("BinaryValue")
    payload = len(data) if isinstance(data, bytes) else len(str(value.get("StringValue", "")).encode("utf-8"))
    return len(name.encode("utf-8")) + len(str(value["DataType"]).encode("utf-8")) + payload


def group_id(message: Message) -> str:
    given = message.properties.get("MessageGroupId")
    if isinstance(given, str) and _ID_CHARS.fullmatch(given):
        return given
    if message.key:
        try:
            text = message.key.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        return text if _ID_CHARS.fullmatch(text) else hashlib.sha256(message.key).hexdigest()
    return DEFAULT_GROUP


def deduplication_id(message: Message) -> str:
    source = message.properties.get("MessageId")
    if isinstance(source, str) and _ID_CHARS.fullmatch(source):
        return source
    if message.offset is not None:
        identity = f"{message.queue}:{message.partition}:{message.offset}"
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()
    return uuid.uuid4().hex


def foreign_properties(message: Message) -> list[str]:
    """The message's properties that no SQS message can carry (dropped when it is sent to SQS); an AMQP
    ``timestamp`` is the message's time, which the core tells about as such."""
    return [name for name, value in message.properties.items()
            if name not in SYSTEM and value is not None and not (name == "timestamp" and message.timestamp)]
