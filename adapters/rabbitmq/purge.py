"""``purge``: queue.purge of ready messages, or consume-backup-ack with ``--backup``.

Unacknowledged messages (held by consumers) are never purged; their number is
reported.  With a backup, messages are taken with manual acks, at most the
depth read at the start; each chunk is written and fsynced before it is acked,
so a crash leaves every message in the queue, the file, or both.
"""

from __future__ import annotations

from typing import Any

from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.consume import BoundedConsumer
from qctl.adapters.rabbitmq.errors import ManagementUnavailable, translated
from qctl.adapters.rabbitmq.management import Management
from qctl.adapters.rabbitmq.messages import to_message
from qctl.backup import BackupWriter
from qctl.models import Message, PurgeResult

CHUNK_WAIT = 0.05


def purge(session: Session, management: Management, queue: str, backup: BackupWriter | None) -> PurgeResult:
    depth = session.passive(queue).ready
    if backup is not None:
        purged = _purge_with_backup(session, queue, depth, backup)
    else:
        channel = session.channel()
        with translated(session.where, f"purge {queue!r}"), session.deadline():
            purged = channel.queue_purge(queue).method.message_count
        channel.close()
    return PurgeResult(queue=queue, purged=purged, backup=str(backup.path) if backup else None,
                       remaining_unacked=_unacked(management, queue))


def _purge_with_backup(session: Session, queue: str, depth: int, backup: BackupWriter) -> int:
    consumer = BoundedConsumer(session, queue, depth)
    written_tag = 0
    acked_tag = 0
    count = 0
    while not consumer.exhausted or consumer.inbox:
        consumer.poll(CHUNK_WAIT)
        chunk: list[Message] = []
        while consumer.inbox:
            delivery = consumer.inbox.popleft()
            count += 1
            chunk.append(to_message(queue, str(count), delivery.properties, delivery.body,
                                    redelivered=delivery.redelivered))
            written_tag = delivery.tag
        if chunk:
            backup.write(chunk)  # flushed and fsynced before anything is acked
        acked_tag = _ack_written(consumer, written_tag, acked_tag)
    consumer.stop()
    _ack_written(consumer, written_tag, acked_tag)
    return count


def _ack_written(consumer: BoundedConsumer, written_tag: int, acked_tag: int) -> int:
    tag = min(written_tag, consumer.ackable_tag)
    if tag > acked_tag:
        consumer.ack(tag, multiple=True)
        return tag
    return acked_tag


def _unacked(management: Management, queue: str) -> int | None:
    try:
        row: Any = management.queue(queue)
    except ManagementUnavailable:
        return None  # without the API the number is unknown, not zero
    value = (row or {}).get("messages_unacknowledged")
    return value if isinstance(value, int) else None
