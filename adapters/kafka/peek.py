"""``qctl peek`` for Kafka: assign + seek with librdkafka, never subscribe, never commit, never create a group.

Order: partition by partition (ascending), each in offset order, ``-n`` records
in total; so ``-n 10`` on a busy topic shows partition 0 first.  Use
``--partition P`` to look at another one.  The start is, per partition:
``--from OFFSET`` (or ``P:OFFSET``), else the first offset at or after
``--since``, else ``--group G``'s committed offset (read with the admin API,
G is never joined), else the log start.  Reading stops at the end offsets read
when the peek began.

Topic metadata and offsets come from the admin client (one Metadata request
for the one topic, ListOffsets per leader); records from a librdkafka consumer
assigned one partition at a time (its group id is never used: nothing is
committed, nothing subscribes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from qctl.adapters.kafka import rdkafka
from qctl.adapters.kafka.cluster import Bounds, Cluster
from qctl.adapters.kafka.records import to_message
from qctl.errors import BrokerUnavailable, UsageError
from qctl.models import Message, PeekRequest
from qctl.options import ConnectOptions

BATCH = 10_000
# The longest wait for one record before the --timeout check comes round again (a record ends it at once).
WAIT_S = 0.1


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


def peek(cluster: Cluster, options: ConnectOptions, topic: str, request: PeekRequest) -> Iterator[Message]:
    if request.count <= 0:
        return
    tps = choose_partitions(cluster.topic_partitions(topic), request)
    bounds = cluster.bounds(tps)
    starts = start_offsets(cluster, tps, bounds, request)
    wanted = request.count
    ranges = _ranges(tps, bounds, starts)
    if not ranges:
        return
    # Made only now, and assigned at once (not made early to connect while the admin client asks): a
    # consumer left unassigned drops its bootstrap connection, and the metadata its assignment then needs
    # waited up to 50 ms for a new one (librdkafka's suppression of cluster connections).
    consumer = rdkafka.consumer(options, None, wanted=wanted)
    try:
        for partition, start, end in ranges:
            for record in _read(consumer, topic, partition, start, min(end, start + wanted), options.timeout):
                yield to_message(record)
                wanted -= 1
            if wanted <= 0:
                return
    finally:
        with rdkafka.translated("cannot close the consumer"):
            consumer.close()


def _ranges(tps: list[Any], bounds: dict[Any, Bounds], starts: dict[Any, int]) -> list[tuple[int, int, int]]:
    """(partition, start, end) of each partition with records to show, starts kept within the bounds."""
    ranges = [(tp.partition, min(max(starts[tp], bounds[tp].start), bounds[tp].end), bounds[tp].end) for tp in tps]
    return [(partition, start, end) for partition, start, end in ranges if start < end]


def _read(consumer: Any, topic: str, partition: int, start: int, end: int, timeout: float) -> Iterator[Any]:
    """The records of one partition with start <= offset < end (fewer if markers or compaction leave gaps)."""
    ck = rdkafka.library()
    eof = ck.KafkaError._PARTITION_EOF
    with rdkafka.translated("cannot read records"):
        consumer.assign([ck.TopicPartition(topic, partition, start)])
    consume = consumer.consume
    last = time.monotonic()
    try:
        while True:
            with rdkafka.translated("cannot read records"):
                # What has arrived, without waiting; else wait for the next record only.  consume(n, wait)
                # returns when it has n records or the wait is over: a wait for a whole batch idled once
                # the partition's fetches had stopped short of it (its end, or a fetch of fewer records).
                batch = consume(min(end - start, BATCH), 0) or consume(1, WAIT_S)
            for record in batch:
                error, offset = record.error(), record.offset()
                if error is not None:
                    if error.code() != eof:
                        raise rdkafka.error(error, "cannot read records")
                    if offset >= end:
                        return
                    continue
                if offset >= end:
                    return
                yield record
                if offset + 1 >= end:
                    return
                start = offset + 1  # the next batch asks only for what is left
            if batch:
                last = time.monotonic()
            elif time.monotonic() - last > timeout:
                raise BrokerUnavailable(f"no records arrived for {timeout:g} s while reading {topic!r} "
                                        f"partition {partition}", hint="raise --timeout")
    finally:
        with rdkafka.translated("cannot read records"):
            consumer.unassign()
