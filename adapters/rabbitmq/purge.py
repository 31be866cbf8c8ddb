"""``purge`` without a backup or ``--where``: ``queue.purge`` of the ready messages.

Unacknowledged messages (held by consumers) are never purged; their number is
reported.  With ``--backup`` or ``--where``, purge is a pass of the core engine
over a :class:`~.reader.RabbitMQReader` (take, write and sync, then ack).
"""

from __future__ import annotations

from typing import Any

from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.errors import ManagementUnavailable, translated
from qctl.adapters.rabbitmq.management import Management
from qctl.models import PurgeResult


def purge(session: Session, management: Management, queue: str) -> PurgeResult:
    session.passive(queue)
    channel = session.channel()
    with translated(session.where, f"purge {queue!r}"), session.deadline():
        purged = channel.queue_purge(queue).method.message_count
    channel.close()
    return PurgeResult(queue=queue, purged=purged, remaining_unacked=_unacked(management, queue))


def _unacked(management: Management, queue: str) -> int | None:
    try:
        row: Any = management.queue(queue)
    except ManagementUnavailable:
        return None  # without the API the number is unknown, not zero
    value = (row or {}).get("messages_unacknowledged")
    return value if isinstance(value, int) else None
