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

Skipped records (no target, a target topic that does not exist, or
``--max-redrives`` reached) stay in the DLQ topic (Kafka cannot remove single
records) and the group moves past them, so a second run moves only what the
first did not and does not count them again; reset with another ``--group``.
On a produce error the window is not committed and the run stops (failed > 0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qctl.adapter import ConnectOptions, Progress
from qctl.adapters.kafka.cluster import Cluster
from qctl.adapters.kafka.connection import reader, translated, writer
from qctl.adapters.kafka.fetch import read_ranges
from qctl.adapters.kafka.records import REDRIVE_COUNT, last_headers, original_topic, redrive_count
from qctl.errors import UsageError
from qctl.models import RedriveRequest, RedriveResult
from qctl.pacing import RateLimiter

WINDOW = 50_000  # records produced between commits: the most a crash makes the next run repeat
POLL_BATCH = 5_000


@dataclass
class Tally:
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    targets: Counter[str] = field(default_factory=Counter)


class Redrive:
    def __init__(self, cluster: Cluster, options: ConnectOptions, dlq: str, request: RedriveRequest) -> None:
        self.cluster = cluster
        self.options = options
        self.dlq = dlq
        self.request = request
        self.tally = Tally()
        self.exists: dict[str, bool] = {dlq: True}
        self.window: list[tuple[Any, str]] = []  # (future, target) since the last commit
        self.next_offsets: dict[Any, int] = {}

    def target_of(self, headers: Mapping[str, bytes | None]) -> str | None:
        if self.request.max_redrives is not None and redrive_count(headers) >= self.request.max_redrives:
            return None
        target = self.request.to or original_topic(headers) or self.options.dead_letter.origin(self.dlq)
        if target is None or target == self.dlq or not self._exists(target):
            return None
        return target

    def _exists(self, topic: str) -> bool:
        if topic not in self.exists:
            self.exists[topic] = topic in self.cluster.partitions([topic])
        return self.exists[topic]

    def ranges(self) -> dict[Any, tuple[int, int]]:
        tps = self.cluster.topic_partitions(self.dlq)
        if self.request.to is not None:
            if self.request.to == self.dlq:
                raise UsageError("--to names the dead-letter topic itself")
            self.cluster.topic_partitions(self.request.to)  # QueueNotFound (exit 4) before anything moves
        bounds = self.cluster.bounds(tps)
        committed = {} if self.request.dry_run else (
            self.cluster.committed({self.request.group: tps}).get(self.request.group, {}))
        return {tp: (max(committed.get(tp, b.start), b.start), b.end) for tp, b in bounds.items()}

    def run(self, progress: Progress) -> RedriveResult:
        ranges = self.ranges()
        total = sum(end - start for start, end in ranges.values() if end > start)
        if self.request.limit is not None:
            total = min(total, self.request.limit)
        progress.start(total, f"redrive {self.dlq}")
        if total:
            self._move(ranges, total, progress)
        return RedriveResult(source=self.dlq, moved=self.tally.moved, skipped=self.tally.skipped,
                             failed=self.tally.failed,
                             targets={t: n for t, n in self.tally.targets.items() if n > 0},
                             dry_run=self.request.dry_run)

    def _move(self, ranges: dict[Any, tuple[int, int]], total: int, progress: Progress) -> None:
        limiter = RateLimiter(self.request.rate)
        batch = limiter.batch_size(POLL_BATCH)
        group = None if self.request.dry_run else self.request.group
        consumer = reader(self.options, group_id=group, batch=batch)
        producer = None if self.request.dry_run else writer(self.options)
        try:
            seen = 0
            for tp, records in read_ranges(consumer, ranges, self.options.timeout, max_records=batch):
                records = records[: total - seen]
                limiter.wait(len(records))
                self._send(producer, tp, records)
                seen += len(records)
                progress.advance(len(records))
                if len(self.window) >= WINDOW and not self._commit(consumer, producer):
                    return
                if seen >= total:
                    break
            self._commit(consumer, producer)
        finally:
            with translated("cannot close the Kafka clients"):
                consumer.close(autocommit=False)
                if producer is not None:
                    producer.close(timeout=self.options.timeout)

    def _send(self, producer: Any, tp: Any, records: list[Any]) -> None:
        with translated("cannot produce records"):
            for record in records:
                headers = last_headers(record.headers)
                target = self.target_of(headers)
                if target is None:
                    self.tally.skipped += 1
                    continue
                if producer is None:  # dry run: count only
                    self.tally.targets[target] += 1
                    continue
                headers[REDRIVE_COUNT] = str(redrive_count(headers) + 1).encode()
                future = producer.send(target, value=record.value, key=record.key,
                                       headers=list(headers.items()))
                self.window.append((future, target))
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
        for _, target in self.window:
            self.tally.targets[target] += 1
        for target in failed:
            self.tally.targets[target] -= 1
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
