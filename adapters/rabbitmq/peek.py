"""``peek``: read without consuming.

Streams are read by offset (``x-stream-offset``: ``--from`` offset, ``--since``
time, else the first) with a consumer that is then cancelled: no side effects.
Classic and quorum queues can only be read by taking messages: up to N are
taken unacked with basic.get on one channel, then returned by closing that
channel; RabbitMQ puts them back in their old places, so the order is kept
(``basic.nack`` would not: quorum queues put nacked messages at the back).
They come back marked redelivered (and on quorum queues with
``x-delivery-count`` one higher).

A quorum queue with a delivery limit dead-letters (or drops) a message returned
once too often, and RabbitMQ 3.10 shows a message's count only after it has
been taken -- when returning it is already unavoidable.  So no peek on such a
queue is provably safe, and it is refused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pika.exceptions as pe

from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.dlx import delivery_limit
from qctl.adapters.rabbitmq.errors import NOT_IMPLEMENTED, PRECONDITION_FAILED, translated
from qctl.adapters.rabbitmq.messages import to_message
from qctl.errors import Unsupported, UsageError
from qctl.models import Message, PeekRequest

STREAM_IDLE = 0.3
STREAM_FIRST_WAIT = 1.0


def peek(session: Session, row: Mapping[str, Any] | None, queue: str, request: PeekRequest) -> list[Message]:
    """``row`` is the queue's management-API row, or None when the API is unavailable."""
    ready = session.passive(queue).ready
    kind = (row or {}).get("type")
    if kind == "stream":
        return peek_stream(session, queue, request)
    if request.from_position is not None or request.since is not None:
        raise Unsupported(f"--from/--since apply to RabbitMQ streams; {queue!r} is a {kind or 'queue'}")
    if ready == 0:
        return []
    if kind == "quorum":
        refuse_over_limit(queue, delivery_limit(row or {}))
    try:
        return peek_by_get(session, queue, request.count, quorum=kind == "quorum")
    except UsageError:
        if kind is None:  # no API to tell the type: a stream refuses basic.get
            return peek_stream(session, queue, request)
        raise


def refuse_over_limit(queue: str, limit: int | None) -> None:
    if limit is None:
        return
    raise UsageError(
        f"refusing to peek quorum queue {queue!r}: it has a delivery limit ({limit}) and every return counts "
        f"toward it, so a message already at its limit would be dead-lettered (or dropped) by the peek; "
        f"RabbitMQ shows a message's count only after it is taken",
        hint="remove or raise the delivery limit (x-delivery-limit / policy delivery-limit) first")


def peek_by_get(session: Session, queue: str, count: int, *, quorum: bool) -> list[Message]:
    channel = session.channel()
    messages: list[Message] = []
    with translated(session.where, f"peek {queue!r}"):
        try:
            for ordinal in range(1, count + 1):
                with session.deadline():
                    method, properties, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                messages.append(to_message(queue, str(ordinal), properties, body,
                                           redelivered=method.redelivered, quorum=quorum))
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code in (NOT_IMPLEMENTED, PRECONDITION_FAILED):
                raise UsageError(f"queue {queue!r} cannot be read with basic.get: {exc.reply_text}") from None
            raise
        # Closing the channel returns every taken message to its old place.  Not basic.nack: on
        # RabbitMQ 3.10 quorum queues a nacked message goes to the back of the queue.
        channel.close()
    return messages


def stream_offset(request: PeekRequest) -> Any:
    if request.since is not None:
        return request.since
    if request.from_position is None:
        return "first"
    text = request.from_position.strip()
    if text.isdigit():
        return int(text)
    if text in ("first", "last", "next"):
        return text
    raise UsageError(f"--from {request.from_position!r} is not a stream offset",
                     hint="an offset number, or first / last / next")


def peek_stream(session: Session, queue: str, request: PeekRequest) -> list[Message]:
    offset = stream_offset(request)
    channel = session.channel()
    impl: Any = channel._impl
    messages: list[Message] = []
    last = [time.monotonic() + STREAM_FIRST_WAIT - STREAM_IDLE]

    def on_message(_channel: Any, method: Any, properties: Any, body: bytes) -> None:
        last[0] = time.monotonic()
        impl.basic_ack(method.delivery_tag)  # acks on a stream only grant credit
        position = (properties.headers or {}).get("x-stream-offset")
        if isinstance(offset, int) and isinstance(position, int) and position < offset:
            return  # the broker starts at the chunk holding the offset
        if len(messages) < request.count:
            messages.append(to_message(queue, str(position), properties, body, redelivered=None))

    with translated(session.where, f"peek stream {queue!r}"):
        impl.basic_qos(prefetch_count=min(max(request.count, 10), 1000))
        tag = impl.basic_consume(queue, on_message, arguments={"x-stream-offset": offset})
        while len(messages) < request.count and time.monotonic() - last[0] < STREAM_IDLE:
            session.pump(lambda size=len(messages): len(messages) != size, STREAM_IDLE)  # type: ignore[misc]
        impl.basic_cancel(tag)
        channel.close()
    return messages
