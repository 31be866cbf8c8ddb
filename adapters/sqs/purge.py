"""``purge`` without a backup: PurgeQueue.

PurgeQueue deletes every message of the queue, in flight and delayed ones
included, so the count reported is the three approximate counts read just
before.  AWS deletes them over up to 60 seconds and takes one PurgeQueue per
queue every 60 seconds: a second one within that time is refused with
PurgeQueueInProgress, which qctl reports as exit 3 with that reason (see
:mod:`.errors`).  With ``--backup`` or ``--where`` the core runs a DELETE pass
over the queue's reader instead, which deletes exactly what it wrote.
"""

from __future__ import annotations

from qctl.adapters.sqs.client import Connection
from qctl.adapters.sqs.names import name_of
from qctl.models import PurgeResult

COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


def purge(conn: Connection, url: str, notices: list[str]) -> PurgeResult:
    queue = name_of(url)
    counts = conn.attributes(url, COUNTS)
    conn.call("purge_queue", f"purge {queue!r}", QueueUrl=url)
    in_flight = int(counts.get("ApproximateNumberOfMessagesNotVisible") or 0)
    if in_flight:
        notices.append(f"{in_flight} of them were in flight (received by consumers, not yet deleted): purged too")
    if conn.aws:
        notices.append("SQS deletes purged messages within 60 seconds, and takes one purge per queue every 60 seconds")
    return PurgeResult(queue=queue, purged=sum(int(counts.get(name) or 0) for name in COUNTS))
