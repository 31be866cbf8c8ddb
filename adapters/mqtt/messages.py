"""MQTT PUBLISH packets <-> qctl messages: the mapping, in both directions, in one place.

Reading (``peek``, backups, the engine's reader):

* ``queue`` is the topic filter that was asked for, ``position`` the message's
  own topic (a retained message *is* its topic's current value);
* ``body`` is the payload; ``headers`` are the MQTT 5 user properties, in order
  (a name may repeat: ``header_pairs`` keeps every pair);
* ``properties``: ``retain`` (true for a retained message), ``qos`` (live
  taps only: a retained scan subscribes at QoS 0, so it cannot see the QoS a
  retained message was stored with), ``content_type``,
  ``payload_format_indicator``, ``message_expiry_interval`` (the seconds left,
  as the broker sends them), ``response_topic``, ``correlation_data`` (bytes:
  text when UTF-8, else ``{"$base64": ...}``).  ``redelivered`` is the DUP flag
  of a live QoS 1/2 delivery, else null; MQTT has no timestamps or keys.

Writing (restore, move into MQTT): the same names back, plus what other
brokers call them: AMQP ``correlation_id`` -> correlation data, ``reply_to``
-> response topic (when it is a valid topic name).  Header values become
UTF-8 strings (numbers, booleans and structured values as JSON text); a binary
header value, a header name that is not text, or a message over the broker's
maximum packet size is refused with the reason (:func:`refusal`).  Message
keys, timestamps and every other property have no place in MQTT and are
dropped (counted in a notice).  Under MQTT 3.1.1 there are no properties at
all: only the payload and the retain flag travel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from qctl.adapters.mqtt import topics
from qctl.codec import BASE64_KEY, header_bytes, header_value
from qctl.models import Message

# qctl property name -> paho attribute, for the MQTT 5 properties a PUBLISH can carry.
PUBLISH_PROPERTIES = (
    ("content_type", "ContentType"),
    ("payload_format_indicator", "PayloadFormatIndicator"),
    ("message_expiry_interval", "MessageExpiryInterval"),
    ("response_topic", "ResponseTopic"),
    ("correlation_data", "CorrelationData"),
)
# Other brokers' names for the same thing, used when nothing under the MQTT name is there.
ALIASES = {"correlation_data": "correlation_id", "response_topic": "reply_to"}
# Properties qctl itself sets on read that are not MQTT 5 properties but flags of the PUBLISH.
FLAGS = frozenset({"retain", "qos"})
# Every property name a publish keeps; not ``qos``: every publish is QoS 1, so the broker confirms it.
CARRIED = frozenset({name for name, _ in PUBLISH_PROPERTIES} | set(ALIASES.values()) | {"retain"})
OVERHEAD = 16  # fixed header, packet id and property lengths, generously


def topic_of(message: mqtt.MQTTMessage) -> str:
    try:
        return message.topic
    except UnicodeDecodeError:  # a broker that let an invalid topic through: keep what can be shown
        return bytes(message._topic).decode("utf-8", "replace")  # paho keeps only the bytes


@dataclass(frozen=True, slots=True)
class Packet:
    """A delivered PUBLISH, kept small: a scan holds one per topic of the tree.

    paho's own message object carries a ``Properties`` instance of some sixty dicts and lists; holding
    10,000 of them made the garbage collector walk them all again and again (a 10,000-topic scan took
    2.7 s instead of 0.7 s).  This keeps the values and nothing else."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    dup: bool
    properties: tuple[tuple[str, Any], ...] = ()  # (qctl name, value) of the MQTT 5 properties present
    user: tuple[tuple[str, str], ...] = ()  # user properties, in order


def packet_of(message: mqtt.MQTTMessage, topic: str | None = None) -> Packet:
    found: tuple[tuple[str, Any], ...] = ()
    user: tuple[tuple[str, str], ...] = ()
    packet = message.properties
    if packet is not None:
        found = tuple((name, value) for name, attribute in PUBLISH_PROPERTIES
                      if (value := getattr(packet, attribute, None)) is not None)
        user = tuple((str(name), str(value)) for name, value in getattr(packet, "UserProperty", None) or ())
    return Packet(topic=topic if topic is not None else topic_of(message), payload=bytes(message.payload),
                  retain=bool(message.retain), qos=message.qos, dup=bool(message.dup), properties=found, user=user)


def from_packet(packet: Packet, queue: str, *, live: bool) -> Message:
    """A qctl message for a delivered PUBLISH; ``live`` for a tap (QoS and DUP mean something there)."""
    properties: dict[str, Any] = {"retain": packet.retain}
    if live:
        properties["qos"] = packet.qos
    for name, value in packet.properties:
        properties[name] = header_value(value)
    return Message(queue=queue, position=packet.topic, body=packet.payload, headers=dict(packet.user),
                   header_pairs=packet.user, properties=properties,
                   redelivered=packet.dup if live and packet.qos > 0 else None)


def republish_properties(packet: Packet) -> Properties | None:
    """The properties ``packet`` arrived with, for publishing it again unchanged."""
    if not packet.properties and not packet.user:
        return None
    out = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    attributes = dict(PUBLISH_PROPERTIES)
    for name, value in packet.properties:
        setattr(out, attributes[name], value)
    if packet.user:
        out.UserProperty = list(packet.user)
    return out


def retain_of(message: Message) -> bool:
    value = message.properties.get("retain")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _text_value(value: Any) -> str | None:
    """A header value as MQTT user-property text, or None when it is binary (cannot be UTF-8 text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {BASE64_KEY}:
        data = header_bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _property(message: Message, name: str) -> Any:
    value = message.properties.get(name)
    if value is None and name in ALIASES:
        value = message.properties.get(ALIASES[name])
    return value


def refusal(message: Message, *, v5: bool, maximum_packet_size: int, retain_available: bool,
            topic: str) -> str | None:
    """Why MQTT cannot carry ``message`` to ``topic``, else None."""
    if retain_of(message) and not retain_available:
        return "the broker does not keep retained messages (RetainAvailable 0)"
    size = len(topic.encode("utf-8")) + len(message.body) + OVERHEAD
    if v5:
        for name, value in message.pairs():
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                return f"header name {name!r} is not UTF-8 text, as MQTT user properties must be"
            if "\x00" in name:
                return f"header name {name!r} contains U+0000"
            text = _text_value(value)
            if text is None:
                return f"header {name!r} holds binary data; MQTT user properties are UTF-8 text"
            size += len(name.encode("utf-8")) + len(text.encode("utf-8", "surrogatepass")) + 5
        indicator = _property(message, "payload_format_indicator")
        if indicator in (1, "1"):
            try:
                message.body.decode("utf-8")
            except UnicodeDecodeError:
                return "payload_format_indicator 1 says UTF-8 text, but the body is not valid UTF-8"
        expiry = _property(message, "message_expiry_interval")
        if expiry is not None and not (isinstance(expiry, int) and 0 <= expiry < 2 ** 32):
            return f"message_expiry_interval must be whole seconds, not {expiry!r}"
    if size > maximum_packet_size:
        return f"{size:,} bytes is more than the broker's maximum packet size ({maximum_packet_size:,})"
    return None


def publish_properties(message: Message) -> tuple[Properties, list[str]]:
    """The MQTT 5 properties for ``message``, and the names of its properties MQTT has no place for."""
    packet = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    used: set[str] = set(FLAGS)
    for name, attribute in PUBLISH_PROPERTIES:
        value = message.properties.get(name)
        alias = ALIASES.get(name)
        if value is None and alias:
            value = message.properties.get(alias)
            if value is not None:
                used.add(alias)
        if value is None:
            continue
        used.add(name)
        if name == "correlation_data":
            setattr(packet, attribute, header_bytes(value))
        elif name == "response_topic":
            if topics.name_problem(str(value)) is None:
                packet.ResponseTopic = str(value)
            else:
                used.discard(name)
                used.discard(alias or name)
        elif name in ("payload_format_indicator", "message_expiry_interval"):
            setattr(packet, attribute, int(value))
        else:
            setattr(packet, attribute, str(value))
    pairs = [(name, _text_value(value) or "") for name, value in message.pairs()]
    if pairs:
        packet.UserProperty = pairs
    dropped = sorted(name for name in message.properties if name not in used)
    return packet, dropped
