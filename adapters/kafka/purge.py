"""``qctl purge`` for Kafka: DeleteRecords up to the end offsets read at the start.

Records produced after the purge began stay.  ``purged`` is Σ(end − start) at
that moment (the same count ``stats`` shows as depth).  With ``--backup`` it is
a pass of the core engine over a :class:`~.reader.KafkaReader` in DELETE mode,
which deletes only up to what was written.  A topic with ``cleanup.policy=compact``
only cannot delete records: UsageError (exit 2).
"""

from __future__ import annotations

from qctl.adapters.kafka.cluster import Cluster
from qctl.errors import UsageError
from qctl.models import PurgeResult


def check_deletable(cluster: Cluster, topic: str) -> None:
    policy = cluster.cleanup_policy(topic)
    if "delete" not in {part.strip() for part in policy.split(",")}:
        raise UsageError(f"topic {topic!r} has cleanup.policy={policy}: Kafka cannot delete records from it",
                         hint="only topics with cleanup.policy 'delete' (or 'compact,delete') can be purged")


def purge(cluster: Cluster, topic: str, timeout: float) -> PurgeResult:
    tps = cluster.topic_partitions(topic)
    check_deletable(cluster, topic)
    bounds = cluster.bounds(tps)
    deletions = {tp: bound.end for tp, bound in bounds.items() if bound.end > bound.start}
    cluster.delete_records(deletions, f"cannot delete records from {topic!r}")
    return PurgeResult(queue=topic, purged=sum(bounds[tp].depth for tp in deletions))
