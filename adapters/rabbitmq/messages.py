"""AMQP deliveries <-> :class:`qctl.models.Message`.

A message's ``headers`` are its AMQP headers table and its ``properties`` the
basic properties that are set (``content_type``, ``message_id``, ``priority``,
...), JSON-safe and kept apart, so a header named ``type`` or ``priority``
survives a backup and restore.  ``x-death`` becomes the contract's
``dead_letter``.  :func:`properties_from` turns a Message back into what is
published: headers the broker sets on delivery (``x-delivery-count``) are not
published again.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pika.spec import BasicProperties

from qctl.codec import BASE64_KEY, header_value, parse_iso
from qctl.models import DeadLetter, Message

PROPERTY_NAMES = ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id", "reply_to",
                  "expiration", "message_id", "timestamp", "type", "user_id", "app_id")
DELIVERY_COUNT = "x-delivery-count"
PERSISTENT = 2  # delivery_mode
BROKER_SET = frozenset({DELIVERY_COUNT})


def first_death(headers: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The most recent x-death entry (RabbitMQ keeps the array newest first)."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return None


def dead_letter_of(headers: Mapping[str, Any]) -> DeadLetter | None:
    death = first_death(headers)
    if death is None:
        if "x-first-death-queue" not in headers:
            return None
        return DeadLetter(reason=_text(headers.get("x-first-death-reason")),
                          source_queue=_text(headers.get("x-first-death-queue")), count=None, time=None)
    moment = death.get("time")
    return DeadLetter(reason=_text(death.get("reason")), source_queue=_text(death.get("queue")),
                      count=int(death["count"]) if isinstance(death.get("count"), int) else None,
                      time=_utc(moment) if isinstance(moment, datetime) else None)


def to_message(queue: str, position: str, properties: BasicProperties, body: bytes, *,
               redelivered: bool | None, quorum: bool = False) -> Message:
    headers: dict[str, Any] = dict(properties.headers or {})
    shown = {name: header_value(getattr(properties, name)) for name in PROPERTY_NAMES
             if getattr(properties, name) is not None}
    count = headers.get(DELIVERY_COUNT)
    stamp = properties.timestamp
    return Message(
        queue=queue, position=position, body=bytes(body),
        headers={name: header_value(value) for name, value in headers.items()},
        properties=shown,
        timestamp=datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int) else None,
        redelivered=redelivered,
        delivery_count=int(count) if isinstance(count, int) else (0 if quorum else None),
        dead_letter=dead_letter_of(headers),
    )


def properties_from(message: Message, *, straight_to_queue: bool) -> BasicProperties:
    """Properties and AMQP headers for publishing ``message`` (redrive, move, restore).

    Straight to a queue through the default exchange, the message loses its ``CC`` and ``BCC``
    headers: RabbitMQ routes a message to every key in them, and through the default exchange those
    keys are queue names -- a redrive would copy the message into any queue named like one of its
    original CC keys.  Through an exchange they stay and route as they did the first time.
    """
    values = {name: _property(name, message.properties[name]) for name in PROPERTY_NAMES
              if message.properties.get(name) is not None}
    dropped = BROKER_SET | ({"CC", "BCC"} if straight_to_queue else set())
    headers = {name: _amqp_value(value) for name, value in message.pairs() if name not in dropped}
    if "x-death" in headers and isinstance(headers["x-death"], list):
        headers["x-death"] = [_death_times(entry) for entry in headers["x-death"]]
    if values.get("timestamp") is None and message.timestamp is not None:
        values["timestamp"] = int(message.timestamp.timestamp())  # from another backend: its time, in seconds
    # Without a delivery mode (every message from another backend) AMQP means transient, whose confirm
    # says nothing about the disk: publish it persistent, so the source is settled only once it is stored.
    values.setdefault("delivery_mode", PERSISTENT)
    return BasicProperties(headers=headers or None, **values)


def _property(name: str, value: Any) -> Any:
    if name in ("delivery_mode", "priority", "timestamp"):
        if isinstance(value, str) and value.isdigit():
            return int(value)
        if name == "timestamp" and isinstance(value, str):
            try:
                return int(parse_iso(value).timestamp())
            except ValueError:
                return None
    return value


def _amqp_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {BASE64_KEY}:
            return base64.b64decode(value[BASE64_KEY])
        return {key: _amqp_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_amqp_value(item) for item in value]
    return value


def _death_times(entry: Any) -> Any:
    # x-death times are AMQP timestamps; JSON carried them as ISO text.
    if isinstance(entry, dict) and isinstance(entry.get("time"), str):
        try:
            return {**entry, "time": parse_iso(entry["time"])}
        except ValueError:
            return entry
    return entry


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
