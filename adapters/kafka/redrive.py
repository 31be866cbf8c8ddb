"""``qctl redrive`` for Kafka: move dead letters back, resumably, through a consumer group on the DLQ.

Per record the target is ``--to``, else the original topic in Spring's or Kafka
Connect's headers, else the DLQ's name without its dead-letter suffix.  Records
are read with assign + seek from the group's committed offsets (the group is
never joined) up to the end offsets read at the start, produced with acks=all
and idempotence (key, value and headers kept, ``x-qctl-redrive-count``
incremented, partitioned by key), and the group's offsets are committed only
after the producer has flushed a window with no error.  Killed at any instant,
a record is in the DLQ past the committed offset, in the target, or both: the
next run repeats at most one window (at least once, never lost).

The records are moved by :class:`Mover` (kafka-python) or, when the optional
confluent-kafka package is installed, by :class:`qctl.adapters.kafka.rdkafka.RdMover`
(librdkafka, ~5x less CPU a record), with the same protocol.  kafka-python is
pure Python and one process moves ~20-25k records/s, so large redrives of
several partitions are split over worker processes
(:mod:`qctl.adapters.kafka.workers`): each owns some of the DLQ's partitions,
with its own consumer and producer, and commits only those partitions, each
after its own records were acknowledged; so every rule above holds per worker,
and order is kept per partition (one partition, one worker).

``--limit N`` takes the first N offsets partition by partition (0, 1, ...).
Skipped records (no target, a target topic that does not exist, or
``--max-redrives`` reached) stay in the DLQ topic (Kafka cannot remove single
records) and the group moves past them, so a second run moves only what the
first did not and does not count them again; reset with another ``--group``.
On a produce error the window is not committed and the run stops (failed > 0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qctl.adapter import ConnectOptions, Progress
from qctl.adapters.kafka.cluster import Cluster
from qctl.adapters.kafka.connection import reader, translated, writer
from qctl.adapters.kafka.fetch import read_ranges
from qctl.adapters.kafka.records import REDRIVE_COUNT, original_topic, redrive_count
from qctl.errors import UsageError
from qctl.models import RedriveRequest, RedriveResult
from qctl.pacing import RateLimiter

WINDOW = 50_000  # records produced between commits: the most a crash makes the next run repeat
POLL_BATCH = 5_000

Ranges = dict[Any, tuple[int, int]]  # TopicPartition -> (first offset to move, end offset read at the start)


@dataclass
class Tally:
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    targets: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.moved += other.moved
        self.skipped += other.skipped
        self.failed += other.failed
        self.targets.update(other.targets)


def limited(ranges: Ranges, limit: int | None) -> Ranges:
    """``ranges`` cut to ``limit`` offsets in all, taken partition by partition in partition order."""
    if limit is None:
        return dict(ranges)
    left = limit
    cut: Ranges = {}
    for tp in sorted(ranges, key=lambda tp: tp.partition):
        start, end = ranges[tp]
        take = max(0, min(end - start, left))
        cut[tp] = (start, start + take)
        left -= take
    return cut


class Mover:
    """Moves the records of some of the DLQ's partitions: a whole redrive, or one worker's share of it."""

    def __init__(self, options: ConnectOptions, dlq: str, request: RedriveRequest,
                 exists: Callable[[str], bool]) -> None:
        self.options = options
        self.dlq = dlq
        self.request = request
        self.exists = exists
        self.known: dict[str, bool] = {dlq: True}
        self.by_name = options.dead_letter.origin(dlq)
        self.tally = Tally()
        self.window: list[tuple[Any, str]] = []  # (future, target) since the last commit
        self.next_offsets: dict[Any, int] = {}

    def target_of(self, headers: Mapping[str, bytes | None]) -> str | None:
        if self.request.max_redrives is not None and redrive_count(headers) >= self.request.max_redrives:
            return None
        target = self.request.to or original_topic(headers) or self.by_name
        if target is None or target == self.dlq:
            return None
        known = self.known.get(target)
        if known is None:
            known = self.known[target] = self.exists(target)
        return target if known else None

    def run(self, ranges: Ranges, advance: Callable[[int], None],
            stopping: Callable[[], bool] = lambda: False) -> Tally:
        """Move every record in ``ranges``; ``stopping()`` true ends early, after committing what was acknowledged."""
        limiter = RateLimiter(self.request.rate)
        batch = limiter.batch_size(POLL_BATCH)
        group = None if self.request.dry_run else self.request.group
        consumer = reader(self.options, group_id=group, batch=batch)
        producer = None if self.request.dry_run else writer(self.options)
        try:
            complete = True
            for tp, records in read_ranges(consumer, ranges, self.options.timeout, max_records=batch):
                limiter.wait(len(records))
                self._send(producer, tp, records)
                advance(len(records))
                if len(self.window) >= WINDOW and not self._commit(consumer, producer):
                    return self.tally
                if stopping():
                    complete = False
                    break
            if complete:  # every offset below each end was read (offsets with no record too, e.g. markers)
                self.next_offsets.update({tp: end for tp, (start, end) in ranges.items() if end > start})
            self._commit(consumer, producer)
        finally:
            with translated("cannot close the Kafka clients"):
                consumer.close(autocommit=False)
                if producer is not None:
                    producer.close(timeout=self.options.timeout)
        return self.tally

    def _send(self, producer: Any, tp: Any, records: list[Any]) -> None:
        tally = self.tally
        window = self.window
        with translated("cannot produce records"):
            for record in records:
                headers = {name: value for name, value in record.headers or ()}  # repeats: the last one wins
                target = self.target_of(headers)
                if target is None:
                    tally.skipped += 1
                    continue
                if producer is None:  # dry run: count only
                    tally.targets[target] += 1
                    continue
                headers[REDRIVE_COUNT] = str(redrive_count(headers) + 1).encode()
                future = producer.send(target, value=record.value, key=record.key, headers=list(headers.items()))
                window.append((future, target))
        if records:
            self.next_offsets[tp] = records[-1].offset + 1

    def _commit(self, consumer: Any, producer: Any) -> bool:
        """Flush, and commit the window's offsets only if every record in it was acknowledged."""
        from kafka.structs import OffsetAndMetadata

        if producer is None:
            return True
        with translated("cannot flush produced records"):
            producer.flush(timeout=max(self.options.timeout, 30.0))
        failed = [target for future, target in self.window if not future.succeeded()]
        self.tally.targets.update(target for _, target in self.window)
        self.tally.targets.subtract(failed)
        self.tally.moved += len(self.window) - len(failed)
        self.tally.failed += len(failed)
        self.window = []
        if failed:
            return False
        if self.next_offsets:
            with translated(f"cannot commit progress for group {self.request.group!r}"):
                consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self.next_offsets.items()})
            self.next_offsets = {}
        return True


class Redrive:
    def __init__(self, cluster: Cluster, options: ConnectOptions, dlq: str, request: RedriveRequest) -> None:
        self.cluster = cluster
        self.options = options
        self.dlq = dlq
        self.request = request

    def exists(self, topic: str) -> bool:
        return topic in self.cluster.partitions([topic])

    def ranges(self) -> Ranges:
        tps = self.cluster.topic_partitions(self.dlq)
        if self.request.to is not None:
            if self.request.to == self.dlq:
                raise UsageError("--to names the dead-letter topic itself")
            self.cluster.topic_partitions(self.request.to)  # QueueNotFound (exit 4) before anything moves
        bounds = self.cluster.bounds(tps)
        committed = {} if self.request.dry_run else (
            self.cluster.committed({self.request.group: tps}).get(self.request.group, {}))
        ranges = {tp: (max(committed.get(tp, b.start), b.start), b.end) for tp, b in bounds.items()}
        return limited(ranges, self.request.limit)

    def run(self, progress: Progress) -> RedriveResult:
        from qctl.adapters.kafka import rdkafka, workers

        ranges = {tp: span for tp, span in self.ranges().items() if span[1] > span[0]}
        total = sum(end - start for start, end in ranges.values())
        progress.start(total, f"redrive {self.dlq}")
        tally = Tally()
        if total:
            count = workers.how_many(ranges, self.request)
            if rdkafka.wanted(self.request.dry_run):
                tally = rdkafka.RdMover(self.options, self.dlq, self.request, self.exists).run(ranges, progress.advance)
            elif count > 1:
                tally = workers.run_parallel(self.options, self.dlq, self.request,
                                             workers.split(ranges, count), progress)
            else:
                tally = Mover(self.options, self.dlq, self.request, self.exists).run(ranges, progress.advance)
        return RedriveResult(source=self.dlq, moved=tally.moved, skipped=tally.skipped, failed=tally.failed,
                             targets={t: n for t, n in tally.targets.items() if n > 0},
                             dry_run=self.request.dry_run)
