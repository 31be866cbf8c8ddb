"""Produce messages from a backup (``qctl restore``): key, value and headers, acks=all, partitioned by key.

The original timestamp is not reused: the broker stamps the record now, so a
restore of old records is not deleted at once by the topic's retention.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qctl.adapter import Progress
from qctl.adapters.kafka.connection import translated
from qctl.codec import header_bytes
from qctl.errors import BrokerUnavailable
from qctl.models import Message

CHUNK = 10_000


def publish(producer: Any, topic: str, messages: Iterable[Message], progress: Progress, timeout: float) -> int:
    sent = 0
    pending: list[Any] = []
    with translated(f"cannot produce to {topic!r}"):
        for message in messages:
            headers = [(name, header_bytes(value)) for name, value in message.headers.items()]
            pending.append(producer.send(topic, value=message.body, key=message.key, headers=headers))
            if len(pending) >= CHUNK:
                sent += _settle(producer, pending, timeout)
                progress.advance(len(pending))
                pending = []
        sent += _settle(producer, pending, timeout)
        progress.advance(len(pending))
    return sent


def _settle(producer: Any, pending: list[Any], timeout: float) -> int:
    producer.flush(timeout=max(timeout, 30.0))
    failed = [future for future in pending if not future.succeeded()]
    if failed:
        raise BrokerUnavailable(f"{len(failed)} record(s) were not acknowledged: {failed[0].exception}")
    return len(pending)
