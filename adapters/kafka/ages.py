"""The age of each topic's oldest retained record, asked of the admin client: no consumer in the usual case.

Kafka has no API named "the timestamp at the log start", but ListOffsets for a
timestamp answers with the offset *and the timestamp* of the first record at
or after the log start whose timestamp is at least the one asked
(``UnifiedLog.fetchOffsetByTimestamp``).  Asked for timestamp 0, that is the
first retained record: one ListOffsets per partition leader, through the
admin client qctl already holds (:meth:`.cluster.Cluster.first_records`).

One case it misses: after DeleteRecords (a purge, a move) the log start can
lie past whole segments that the broker deletes only at its next retention
check (``log.retention.check.interval.ms``, 5 minutes by default).  The broker
searches the first segment whose newest timestamp is high enough -- a
segment now below the log start -- finds nothing there at or after the log
start, and answers offset -1 although the partition has records.  Those
partitions only are read with a librdkafka consumer assigned at their start
offsets until each has shown one record (``max.partition.fetch.bytes`` keeps
each answer to one batch; the consumer's group is one no broker ever hears of:
nothing is committed), and a partition that does not answer in time is left
out.

Connections: the admin client holds one connection per broker it asks (the
bootstrap connection is dropped once the metadata names the brokers:
librdkafka >= 2.10 removes brokers the metadata does not list, the bootstrap
entry among them).  A consumer adds two to its coordinator's broker -- one to
fetch, and the group coordinator's own (confluent-kafka insists on a
``group.id`` even for ``assign()``, and librdkafka then opens a coordinator
connection whether or not a group is ever joined) -- which is why it is only
the fallback.  While frames of ``stats --watch`` need it, it is one consumer,
kept and reassigned per frame (a consumer made and closed every frame, as
before, grew a 10-minute watch's RSS by 17.6% and held up to three connections
to the one broker: the first bench/results/soak.md); the first frame that does
not need it closes it.  So a watch holds one connection per broker, and two
more (the consumer's, to the partition's leader and to the coordinator) while
a partition is in the case above.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from typing import Any, ClassVar

from qctl.adapters.kafka import rdkafka
from qctl.adapters.kafka.cluster import Bounds, Cluster
from qctl.options import ConnectOptions

WAIT_S = 2.0  # at most this long for the first records, whatever --timeout says: stats must stay quick


def oldest_ages(cluster: Cluster, options: ConnectOptions, bounds: Mapping[Any, Bounds], topics: set[str],
                first: Mapping[Any, tuple[int, int]]) -> dict[str, float]:
    """Seconds since the oldest retained record of each of ``topics`` (topics with records only), from the
    answers of :meth:`.cluster.Cluster.first_records_soon` (``first``: asked at the same time as ``bounds``,
    for every partition of ``topics``; those without records are left out here)."""
    oldest: dict[str, int] = {}
    missed: dict[tuple[str, int], int] = {}
    for tp, (offset, millis) in first.items():
        bound = bounds.get(tp)
        if tp.topic not in topics or bound is None or bound.depth <= 0:
            continue
        if offset >= 0 and millis >= 0:
            oldest[tp.topic] = min(oldest.get(tp.topic, millis), millis)
        elif offset < 0:  # the log start is past segments the broker has not deleted yet: read the record
            missed[(tp.topic, tp.partition)] = bound.start
    if missed:
        for (topic, _), millis in FirstRecords.of(cluster.admin, options).read(missed).items():
            oldest[topic] = min(oldest.get(topic, millis), millis)
    else:
        FirstRecords.drop(cluster.admin)
    now = time.time() * 1000
    return {topic: max(0.0, (now - millis) / 1000) for topic, millis in oldest.items()}


class FirstRecords:
    """One assign-only consumer that reads the first record of given partitions, reassigned per call.

    Kept per admin client (the adapter's, which lives as long as the adapter and builds a
    :class:`.cluster.Cluster` around it per call), so a watch holds one consumer, not one per frame;
    closed when the admin client goes, or when a frame no longer needs it."""

    _kept: ClassVar[weakref.WeakKeyDictionary[Any, FirstRecords]] = weakref.WeakKeyDictionary()

    def __init__(self, options: ConnectOptions) -> None:
        self.options = options
        self.consumer: Any = None

    @classmethod
    def of(cls, admin: Any, options: ConnectOptions) -> FirstRecords:
        reader = cls._kept.get(admin)
        if reader is None:
            reader = cls._kept[admin] = cls(options)
            weakref.finalize(admin, reader.close_quietly)
        return reader

    @classmethod
    def drop(cls, admin: Any) -> None:
        reader = cls._kept.get(admin)
        if reader is not None:
            reader.close()

    def read(self, wanted: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """The first record's timestamp (ms) of each ``(topic, partition)`` read from its offset in ``wanted``;
        partitions that show none within WAIT_S, or only a record without a timestamp, are left out."""
        ck = rdkafka.library()
        if self.consumer is None:
            with rdkafka.translated(f"cannot connect to {self.options.url}"):
                self.consumer = ck.Consumer({
                    **rdkafka.settings(self.options), "group.id": "qctl-never-committed",
                    "enable.auto.commit": False, "enable.auto.offset.store": False,
                    "max.partition.fetch.bytes": 1024, "fetch.wait.max.ms": 50, "check.crcs": False})
        consumer, pending = self.consumer, dict(wanted)
        found: dict[tuple[str, int], int] = {}
        try:
            with rdkafka.translated("cannot read the first records"):
                consumer.incremental_assign([ck.TopicPartition(topic, partition, start)
                                             for (topic, partition), start in pending.items()])
                deadline = time.monotonic() + min(WAIT_S, self.options.timeout)
                while pending and time.monotonic() < deadline:
                    for record in consumer.consume(len(pending), 0.1):
                        where = (record.topic(), record.partition())
                        if record.error() is not None or where not in pending:
                            continue
                        del pending[where]
                        consumer.incremental_unassign([ck.TopicPartition(*where)])  # no more fetches for it
                        kind, millis = record.timestamp()
                        if kind and millis >= 0:
                            found[where] = millis
                if pending:  # an empty assignment between calls: nothing is fetched while a watch sleeps
                    consumer.incremental_unassign([ck.TopicPartition(*where) for where in pending])
        except BaseException:
            self.close_quietly()  # the next call starts on a new consumer, not one in an unknown state
            raise
        return found

    def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            with rdkafka.translated("cannot close the consumer"):
                consumer.close()

    def close_quietly(self) -> None:
        """Close when the admin client goes (possibly at exit): nothing left to report an error to."""
        try:
            self.close()
        except Exception:  # a failed close of a reader nobody uses any more changes nothing
            pass
