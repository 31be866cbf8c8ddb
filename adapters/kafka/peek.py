"""``qctl peek`` for Kafka: assign + seek, never subscribe, never commit, never create a group.

Order: partition by partition (ascending), each in offset order, ``-n`` records
in total; so ``-n 10`` on a busy topic shows partition 0 first.  Use
``--partition P`` to look at another one.  The start is, per partition:
``--from OFFSET`` (or ``P:OFFSET``), else the first offset at or after
``--since``, else ``--group G``'s committed offset (read with the admin API,
G is never joined), else the log start.  Reading stops at the end offsets read
when the peek began.

Topic metadata and offsets come from the admin client (one Metadata request
for the one topic, ListOffsets per leader); asking the consumer instead saves
that client's bootstrap (~10 ms) but costs a Metadata request for every topic
of the cluster, which grows with the cluster (11 ms at 381 topics here).
"""

from __future__ import annotations

from typing import Any

from qctl.adapters.kafka.cluster import Bounds, Cluster
from qctl.adapters.kafka.fetch import read_ranges
from qctl.adapters.kafka.records import to_message
from qctl.errors import UsageError
from qctl.models import Message, PeekRequest


def fetch_bytes(count: int) -> int:
    """Bytes to fetch per partition for ``count`` records: ~1 KB a record, 64 KB to 8 MB.

    kafka-python decodes a whole fetch response in Python: a 1-record peek used to
    ask for up to 8 MB (its fetch took ~60 ms here, ~30 ms with 64 KB).  A batch
    larger than the limit still comes whole, so any record can be read.
    """
    return max(64 * 1024, min(8 * 1024 * 1024, count * 1024))


def choose_partitions(tps: list[Any], request: PeekRequest) -> list[Any]:
    partition = request.partition
    from_partition, _ = parse_from(request.from_position)
    if partition is None:
        partition = from_partition
    elif from_partition is not None and from_partition != partition:
        raise UsageError("--from P:OFFSET and --partition name different partitions")
    if partition is None:
        return tps
    chosen = [tp for tp in tps if tp.partition == partition]
    if not chosen:
        raise UsageError(f"topic has no partition {partition}", hint=f"it has {len(tps)} (0-{len(tps) - 1})")
    return chosen


def parse_from(position: str | None) -> tuple[int | None, int | None]:
    """``--from`` as (partition or None, offset or None): ``OFFSET`` or ``PARTITION:OFFSET``."""
    if position is None:
        return None, None
    head, colon, tail = position.partition(":")
    try:
        return (int(head), int(tail)) if colon else (None, int(head))
    except ValueError:
        raise UsageError(f"--from {position!r} is not a Kafka offset",
                         hint="give OFFSET or PARTITION:OFFSET, e.g. --from 1200 or --from 3:1200") from None


def start_offsets(cluster: Cluster, tps: list[Any], bounds: dict[Any, Bounds],
                  request: PeekRequest) -> dict[Any, int]:
    _, offset = parse_from(request.from_position)
    if offset is not None:
        return {tp: offset for tp in tps}
    if request.since is not None:
        millis = int(request.since.timestamp() * 1000)
        found = cluster.offsets(tps, millis)
        # -1 means no record at or after that time: start at the end (nothing to show).
        return {tp: found[tp] if found.get(tp, -1) >= 0 else bounds[tp].end for tp in tps}
    if request.group is not None:
        committed = cluster.committed({request.group: tps}).get(request.group, {})
        if not committed:
            raise UsageError(f"group {request.group!r} has no committed offsets on this topic",
                             hint="'qctl stats --groups TOPIC' lists the groups reading it")
        return {tp: committed.get(tp, bounds[tp].start) for tp in tps}
    return {tp: bounds[tp].start for tp in tps}


def peek(cluster: Cluster, consumer: Any, topic: str, request: PeekRequest, timeout: float) -> list[Message]:
    if request.count <= 0:
        return []
    tps = choose_partitions(cluster.topic_partitions(topic), request)
    bounds = cluster.bounds(tps)
    starts = start_offsets(cluster, tps, bounds, request)
    messages: list[Message] = []
    for tp in tps:
        start = min(max(starts[tp], bounds[tp].start), bounds[tp].end)
        wanted = request.count - len(messages)
        for _, records in read_ranges(consumer, {tp: (start, bounds[tp].end)}, timeout, max_records=wanted):
            messages.extend(to_message(record) for record in records[:wanted])
            wanted = request.count - len(messages)
            if wanted <= 0:
                return messages
    return messages
