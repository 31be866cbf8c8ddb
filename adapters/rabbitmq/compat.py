"""Every use of pika's private attributes, in one place (pika is pinned to the tested minor, 1.4).

pika's BlockingConnection has no per-request timeout, waits one round trip for
each publisher confirm, and writes every frame with its own ``send()``.  qctl
works around all three through the objects below; a test checks that no other
module of this adapter touches a private attribute, and each function degrades
to pika's public behaviour (or a clear error) if the internals change.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection


def channel_impl(channel: BlockingChannel) -> Any:
    """The asynchronous channel under a BlockingChannel (consume, qos, publish without waiting)."""
    return channel._impl


def connection_impl(connection: BlockingConnection) -> Any:
    return connection._impl


def call_later(connection: BlockingConnection, seconds: float, callback: Callable[[], None]) -> Any:
    return connection._impl._adapter_call_later(seconds, callback)


def remove_timeout(connection: BlockingConnection, handle: Any) -> None:
    connection._impl._adapter_remove_timeout(handle)


def process_io(connection: BlockingConnection, *conditions: Callable[[], bool]) -> None:
    """Run pika's I/O loop until one of ``conditions`` holds (BlockingConnection._flush_output)."""
    connection._flush_output(*conditions)


def reset_consume_ok(channel: BlockingChannel) -> None:
    """The BlockingChannel wrapper records one consume-ok; clear it before the next consumer on the channel."""
    result = getattr(channel, "_basic_consume_ok_result", None)
    if result is not None:
        result.reset()


def closing_reason(channel: BlockingChannel) -> Any:
    """Why the broker closed a channel (a ChannelClosedByBroker), or None."""
    return getattr(channel, "_closing_reason", None)


def coalesce_writes(connection: BlockingConnection, join_bytes: int) -> None:
    """Send the frames queued on ``connection`` in chunks of up to ``join_bytes``, one ``send()`` each.

    Wraps the pika transport's ``_produce`` (which loops ``send()`` over its deque of frames) on this
    instance; if pika's internals are not what this expects, it leaves them alone.
    """
    transport: Any = getattr(getattr(connection, "_impl", None), "_transport", None)
    buffers = getattr(transport, "_tx_buffers", None)
    produce = getattr(transport, "_produce", None)
    if not isinstance(buffers, deque) or not callable(produce):
        return

    def produce_joined() -> None:
        if len(buffers) > 1:
            chunks: list[bytes] = []
            parts: list[bytes] = []
            size = 0
            for part in buffers:
                if len(part) >= join_bytes:
                    if parts:
                        chunks.append(b"".join(parts))
                        parts, size = [], 0
                    chunks.append(part)
                    continue
                parts.append(part)
                size += len(part)
                if size >= join_bytes:
                    chunks.append(b"".join(parts))
                    parts, size = [], 0
            if parts:
                chunks.append(b"".join(parts))
            buffers.clear()
            buffers.extend(chunks)
        produce()

    transport._produce = produce_joined
