"""``qctl purge`` for Kafka: DeleteRecords up to the end offsets read at the start.

Records produced after the purge began stay.  ``purged`` is Σ(end − start) at
that moment (the same count ``stats`` shows as depth).  With ``--backup`` the
records are first read from start to those end offsets and written (fsynced)
chunk by chunk; DeleteRecords then goes only up to what was written.  A topic
with ``cleanup.policy=compact`` only cannot delete records: UsageError (exit 2).
"""

from __future__ import annotations

from typing import Any

from qctl.adapters.kafka.cluster import Bounds, Cluster
from qctl.adapters.kafka.connection import translated
from qctl.adapters.kafka.fetch import read_ranges
from qctl.adapters.kafka.records import to_message
from qctl.errors import UsageError
from qctl.models import PurgeRequest, PurgeResult


def check_deletable(cluster: Cluster, topic: str) -> None:
    policy = cluster.cleanup_policy(topic)
    if "delete" not in {part.strip() for part in policy.split(",")}:
        raise UsageError(f"topic {topic!r} has cleanup.policy={policy}: Kafka cannot delete records from it",
                         hint="only topics with cleanup.policy 'delete' (or 'compact,delete') can be purged")


def backup_records(consumer: Any, bounds: dict[Any, Bounds], writer: Any, timeout: float) -> dict[Any, int]:
    """Write every record below the end offsets to the backup; return per partition the offset written up to."""
    written = {tp: bound.start for tp, bound in bounds.items()}
    ranges = {tp: (bound.start, bound.end) for tp, bound in bounds.items()}
    for tp, records in read_ranges(consumer, ranges, timeout):
        writer.write([to_message(record) for record in records])
        written[tp] = records[-1].offset + 1
    for tp, bound in bounds.items():
        # Reading stops at the end offset; offsets with no record (transaction markers) need no backup.
        if written[tp] >= bound.end or _reached_end(consumer, tp, bound):
            written[tp] = bound.end
    return written


def _reached_end(consumer: Any, tp: Any, bound: Bounds) -> bool:
    if bound.depth == 0:
        return True
    with translated("cannot read records"):
        return bool(consumer.position(tp) >= bound.end)


def purge(cluster: Cluster, consumer_factory: Any, topic: str, request: PurgeRequest,
          timeout: float) -> PurgeResult:
    tps = cluster.topic_partitions(topic)
    check_deletable(cluster, topic)
    bounds = cluster.bounds(tps)
    upto = {tp: bound.end for tp, bound in bounds.items()}
    backup = request.backup
    if backup is not None:
        consumer = consumer_factory()
        try:
            upto = backup_records(consumer, bounds, backup, timeout)
        finally:
            consumer.close()
    deletions = {tp: offset for tp, offset in upto.items() if offset > bounds[tp].start}
    if deletions:
        with translated(f"cannot delete records from {topic!r}"):
            cluster.admin.delete_records(deletions, timeout_ms=int(timeout * 1000))
    purged = sum(offset - bounds[tp].start for tp, offset in deletions.items())
    return PurgeResult(queue=topic, purged=purged, backup=str(backup.path) if backup is not None else None)
