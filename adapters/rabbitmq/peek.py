"""``peek``: read without consuming, and what reading a queue costs (:func:`traits`).

Streams are read by offset (``x-stream-offset``: ``--from`` offset, ``--since``
time, else the first) with a consumer that is then cancelled: no side effects.
Classic and quorum queues can only be read by taking messages: up to N are
taken unacked (consumer windows, :class:`~.consume.Taker`) on one channel,
then returned by closing that channel; RabbitMQ puts them back in their old
places, so the order is kept (``basic.nack`` would not: quorum queues put
nacked messages at the back).  They come back marked redelivered (and on
quorum queues with ``x-delivery-count`` one higher).

Delivery limits
---------------
A quorum queue with a delivery limit dead-letters (or drops) a message returned
once too often, and RabbitMQ 3.10 shows a message's count only after it has
been taken -- when returning it is already unavoidable.  So reading such a
queue *counts* (``SourceTraits.counts_reads``), and the core's guard
(:mod:`qctl.guard`) refuses a peek and makes passes copy kept messages to the
tail instead of returning them.  A queue counts when it has, or might have, a
limit: its ``x-delivery-limit`` argument, or ``delivery-limit`` in its policy
or operator policy (the API's ``effective_policy_definition`` lags policy
changes by seconds, so the vhost's policies are matched here too and any limit
either way counts).

Without the management API neither the limit nor even the queue's type can be
read.  The type can be learnt without touching a message that matters: a
consumer on a channel with a *global* prefetch (``basic.qos`` global, prefetch
1) and no per-consumer prefetch is refused by quorum queues (540
NOT_IMPLEMENTED "does not support global qos", which closes the connection)
and by streams (406 PRECONDITION_FAILED "consumer prefetch count is not set",
checked first), before anything is delivered; a classic queue accepts it (at
most one message is delivered, and it goes back in place when the channel is
closed).  The broker checks the type atomically with the consume, a consume
never creates or changes a queue, and it needs only the read permission a peek
needs anyway.  A quorum queue then counts as limited, with a hint to pass
``--management-url``.  (A non-passive ``queue.declare`` with ``x-queue-type``
was considered and rejected: on 3.10 it compares every argument the existing
queue's type knows plus ``durable``/``auto_delete``, so it fails 406 on classic
*and* quorum queues alike unless all of them are repeated -- a quorum queue
with ``x-delivery-limit`` reports "inequivalent arg 'x-delivery-limit'" -- it
needs the configure permission, and if the queue was deleted meanwhile it
creates one.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pika.exceptions as pe

from qctl.adapters.rabbitmq import compat
from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.consume import Taker
from qctl.adapters.rabbitmq.dlx import default_delivery_limit, delivery_limit, setting_number
from qctl.adapters.rabbitmq.errors import (
    ACCESS_REFUSED,
    NOT_IMPLEMENTED,
    PRECONDITION_FAILED,
    ManagementUnavailable,
    translated,
)
from qctl.adapters.rabbitmq.management import Management
from qctl.adapters.rabbitmq.messages import to_message
from qctl.errors import Unsupported, UsageError
from qctl.models import Message, PeekRequest
from qctl.primitives import SourceTraits

STREAM_IDLE = 0.3
# Windows double from 1,000 (the first rows print soon) to the largest prefetch: a 3.10 quorum queue
# puts the windows back in place only while they are at most 32 (see consume.py), which covers a peek
# of about 1.7 million messages.
PEEK_WINDOW = 1000
PEEK_WINDOW_MAX = 65535
STREAM_FIRST_WAIT = 1.0


@dataclass(frozen=True, slots=True)
class QueueFacts:
    """What the management API tells about a queue before a peek."""

    type: str | None  # None: unknown (the API is unavailable, or does not list the queue yet)
    delivery_limits: tuple[int, ...] = ()  # every limit that applies or might (argument, policy, operator policy)
    limit_set: bool = False  # an argument or policy sets the limit (negative: none), so no server default applies
    unavailable: str | None = None  # why the API could not be asked


def queue_facts(management: Management, queue: str) -> QueueFacts:
    try:
        row = management.queue(queue)
    except ManagementUnavailable as exc:
        return QueueFacts(type=None, unavailable=str(exc.args[0]))
    if row is None:
        return QueueFacts(type=None)
    kind = row.get("type")
    arguments = _mapping(row.get("arguments"))
    definition = _mapping(row.get("effective_policy_definition"))
    limits = {delivery_limit(arguments, definition)}
    limit_set = setting_number(arguments, definition) is not None
    try:
        book = management.policy_book()
    except ManagementUnavailable:
        book = None  # the row's effective policy (seconds old at worst) is all there is
    if book is not None:
        kind_known = str(kind) if kind in ("classic", "quorum", "stream") else None
        for value in book.possible_values("delivery-limit", queue, kind_known):
            limits.add(delivery_limit(arguments, {"delivery-limit": value}))
        limits.add(delivery_limit(arguments, {}))
    known = tuple(sorted(limit for limit in limits if limit is not None))
    return QueueFacts(type=str(kind) if kind else None, delivery_limits=known, limit_set=limit_set)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def traits(session: Session, facts: QueueFacts, queue: str) -> tuple[str, SourceTraits]:
    """The queue's type and what reading it costs: a quorum queue with a delivery limit (or one that
    cannot be read) counts every return as a delivery."""
    kind = facts.type or probe_type(session, queue)
    if kind != "quorum":
        return kind, SourceTraits()
    default = None if facts.limit_set else default_delivery_limit(session.server_major())
    if default is not None and not facts.delivery_limits:
        return kind, SourceTraits(counts_reads=True, read_limit=default,
                                  limit_reason=f"RabbitMQ 4's default delivery limit of {default} (no "
                                               f"x-delivery-limit or policy sets one)",
                                  limit_hint="set a delivery-limit policy of -1 (no limit) or a higher one first")
    if facts.delivery_limits:
        limit = min(facts.delivery_limits)
        return kind, SourceTraits(counts_reads=True, read_limit=limit,
                                  limit_reason=f"a delivery limit of {limit} (x-delivery-limit or policy)",
                                  limit_hint="remove or raise the delivery limit (x-delivery-limit / policy "
                                             "delivery-limit) first")
    if facts.type is None:
        if facts.unavailable:
            why, hint = f"the management API is not available ({facts.unavailable})", NO_API_HINT
        else:
            why, hint = "the management API does not list it yet", "retry in a few seconds"
        return kind, SourceTraits(counts_reads=True, limit_reason=f"a delivery limit that cannot be checked, as {why}",
                                  limit_hint=hint)
    return kind, SourceTraits()


NO_API_HINT = ("pass --management-url http://HOST:15672 (or set the profile's management_url) so that qctl can "
               "read the queue's delivery limit")


def peek(session: Session, kind: str, queue: str, request: PeekRequest) -> Iterator[Message]:
    """``kind`` and the delivery-limit guard come first (:func:`traits`, :mod:`qctl.guard`)."""
    if kind == "stream":
        yield from peek_stream(session, queue, request)
        return
    if request.from_position is not None or request.since is not None:
        raise Unsupported(f"--from/--since apply to RabbitMQ streams; {queue!r} is a {kind} queue")
    if session.passive(queue).ready == 0:
        return
    yield from peek_by_get(session, queue, request.count, quorum=kind == "quorum")


def probe_type(session: Session, queue: str) -> str:
    """``classic``, ``quorum`` or ``stream``, told by the broker's answer to a global-prefetch consumer.

    See the module docstring.  A quorum queue refuses it with 540, which closes the connection.
    """
    channel = session.channel()
    impl: Any = compat.channel_impl(channel)
    connection = session.connection
    consumed: list[bool] = []
    try:
        with session.deadline():
            impl.basic_qos(prefetch_count=1, global_qos=True)
            impl.basic_consume(queue, lambda *_args: None, callback=lambda _frame: consumed.append(True))
            compat.process_io(connection, lambda: bool(consumed) or channel.is_closed)
    except pe.ConnectionClosedByBroker as exc:
        session.close()  # a 540 is a connection error; the next request opens a new connection
        if exc.reply_code == NOT_IMPLEMENTED:
            return "quorum"
        raise
    with translated(session.where, f"peek {queue!r}"):
        if channel.is_closed:
            reason: Any = compat.closing_reason(channel)
            if isinstance(reason, pe.ChannelClosedByBroker):
                if reason.reply_code == PRECONDITION_FAILED:
                    return "stream"  # "consumer prefetch count is not set": checked by streams alone
                if reason.reply_code == ACCESS_REFUSED and "exclusive" in str(reason.reply_text):
                    return "classic"  # only classic queues get as far as their exclusive consumer
                raise reason
            raise pe.ChannelClosed(0, "channel closed during the queue type probe")
        channel.close()  # the one message it may have been given goes back in place
    return "classic"


def peek_by_get(session: Session, queue: str, count: int, *, quorum: bool) -> Iterator[Message]:
    """Take up to ``count`` messages unacked, in windows, and return them all in place when done.

    Closing the channel returns every taken message to its old place.  Not basic.nack: on RabbitMQ
    3.10 quorum queues a nacked message goes to the back of the queue."""
    taker = Taker(session, queue)
    ordinal = 0
    window = PEEK_WINDOW
    try:
        with translated(session.where, f"peek {queue!r}"):
            while ordinal < count:
                deliveries = taker.take(min(window, count - ordinal))
                window = min(window * 2, PEEK_WINDOW_MAX)
                for delivery in deliveries:
                    ordinal += 1
                    yield to_message(queue, str(ordinal), delivery.properties, delivery.body,
                                     redelivered=delivery.redelivered, quorum=quorum)
                if not deliveries or taker.dry:
                    break
    finally:
        with translated(session.where, f"peek {queue!r}"):
            taker.return_all()


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


def peek_stream(session: Session, queue: str, request: PeekRequest) -> Iterator[Message]:
    offset = stream_offset(request)
    channel = session.channel()
    impl: Any = compat.channel_impl(channel)
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
    yield from messages
