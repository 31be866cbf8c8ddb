"""A pass over a topic: read records between a start and the end offsets read when the pass opened.

* MOVE (redrive, move): starts at the progress group's committed offsets
  (``--group``, default ``qctl-redrive`` / ``qctl-move``; the group is never
  joined), and settling a record -- or keeping it: Kafka cannot remove single
  records, so the group moves past a skipped one -- commits the group past it,
  at least every :data:`COMMIT_EVERY` records and when the pass closes.  A
  second run moves only what the first did not.
* DELETE (purge --backup): starts at the log start; settled records are
  deleted with DeleteRecords up to the offset written, when the pass closes.
* READ (backup, move --copy, dry runs use MOVE but settle nothing): starts at
  the log start and never commits or deletes.

Offsets without a record (transaction markers) count as read once a partition
reaches its end offset, so progress can be committed up to that end.

Every commit and deletion waits at most ``--timeout``: with the broker gone, the
pass ends with exit 3 instead of waiting for it to come back (see :meth:`KafkaReader._commit_group`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from qctl.adapters.kafka import rdkafka
from qctl.adapters.kafka.cluster import Cluster
from qctl.adapters.kafka.records import to_message
from qctl.errors import BrokerUnavailable
from qctl.options import ConnectOptions
from qctl.primitives import ReadMode, SourceTraits, Taken

COMMIT_EVERY = 5000  # records settled between commits: the most a crash makes the next run repeat
POLL_S = 0.01  # consume() waits for a whole batch or this long: a pass's last batch no longer waits 0.2 s
RETRY_S = 0.3  # between commit attempts while the group's coordinator is loading or moving
CHUNK = 5000


class KafkaReader:
    def __init__(self, cluster: Cluster, options: ConnectOptions, topic: str, mode: ReadMode) -> None:
        self.cluster = cluster
        self.options = options
        self.queue = topic
        self.mode = mode
        self.group: str | None = str(options.flags.get("group") or "qctl-redrive") if mode is ReadMode.MOVE else None
        self.traits = SourceTraits(keeps_in_place=mode is not ReadMode.MOVE, deletes_singly=False, chunk=CHUNK)
        tps = cluster.topic_partitions(topic)
        bounds = cluster.bounds(tps)
        committed = cluster.committed({self.group: tps}).get(self.group, {}) if self.group else {}
        self.ranges = {tp.partition: (max(committed.get(tp, b.start), b.start), b.end) for tp, b in bounds.items()}
        self.starts = {partition: start for partition, (start, _) in self.ranges.items()}
        self._open = {partition for partition, (start, end) in self.ranges.items() if start < end}
        self._finished: set[int] = set()  # read to the end offset (records and markers)
        self._read_to = dict(self.starts)  # partition -> offset after the last record handed out
        self._done = dict(self.starts)  # partition -> offset after the last record settled (or kept, MOVE)
        self._blocked: dict[int, int] = {}  # DELETE: the first kept offset, which nothing may be deleted past
        self._since_commit = 0
        self._advanced = False  # settled or kept anything: only then is there progress to commit
        self._commit_failed = False  # a commit or deletion failed: close() does not wait on another
        self._consumer: Any = None

    def total(self) -> int:
        return sum(end - start for start, end in self.ranges.values())

    def _client(self) -> Any:
        if self._consumer is None:
            ck = rdkafka.library()
            self._consumer = rdkafka.consumer(self.options, self.group)
            with rdkafka.translated("cannot read records"):
                self._consumer.assign([ck.TopicPartition(self.queue, p, self.ranges[p][0]) for p in sorted(self._open)])
        return self._consumer

    def read(self, limit: int) -> list[Taken]:
        taken: list[Taken] = []
        last_progress = time.monotonic()
        while self._open and not taken:
            consumer = self._client()
            with rdkafka.translated("cannot read records"):
                polled = consumer.consume(limit, POLL_S)
            finished = []
            behind: set[int] = set()
            for record in polled:
                partition = record.partition()
                if partition not in self._open:
                    continue
                end = self.ranges[partition][1]
                error = record.error()
                if error is not None:
                    if error.code() != rdkafka.library().KafkaError._PARTITION_EOF:
                        raise rdkafka.error(error, "cannot read records")
                    if record.offset() >= end:
                        finished.append(partition)
                    continue
                offset = record.offset()
                if offset >= end:
                    finished.append(partition)
                    continue
                if len(taken) < limit and offset >= self._read_to[partition]:
                    taken.append(Taken(to_message(record), (partition, offset)))
                    self._read_to[partition] = offset + 1
                    if offset + 1 >= end:
                        finished.append(partition)
                elif len(taken) >= limit:
                    behind.add(partition)
            for partition in behind - set(finished):  # read past what was asked: read it again next time
                self._seek(partition, self._read_to[partition])
            if finished:
                self._finish(finished)
            if taken or polled:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > self.options.timeout:
                raise BrokerUnavailable(f"no records arrived for {self.options.timeout:g} s while reading "
                                        f"{len(self._open)} partition(s) of {self.queue!r}", hint="raise --timeout")
        return taken

    def _seek(self, partition: int, offset: int) -> None:
        ck = rdkafka.library()
        with rdkafka.translated("cannot read records"):
            self._consumer.seek(ck.TopicPartition(self.queue, partition, offset))

    def _finish(self, partitions: list[int]) -> None:
        ck = rdkafka.library()
        closed = [p for p in set(partitions) if p in self._open]
        self._open.difference_update(closed)
        self._finished.update(closed)
        with rdkafka.translated("cannot read records"):
            self._consumer.pause([ck.TopicPartition(self.queue, p) for p in closed])

    def settle(self, taken: Sequence[Taken]) -> list[bool]:
        self._advance(taken)
        return [True] * len(taken)

    def keep(self, taken: Sequence[Taken]) -> None:
        if self.mode is ReadMode.MOVE:
            self._advance(taken)  # Kafka keeps the record; the group moves past it (documented)
        elif self.mode is ReadMode.DELETE:
            for item in taken:  # nothing at or after a kept record may be deleted
                partition, offset = item.handle
                self._blocked[partition] = min(self._blocked.get(partition, offset), offset)

    def _advance(self, taken: Sequence[Taken]) -> None:
        if self.mode is ReadMode.READ:
            return
        for item in taken:
            partition, offset = item.handle
            self._done[partition] = max(self._done[partition], offset + 1)
        self._advanced = self._advanced or bool(taken)
        self._since_commit += len(taken)
        if self._since_commit >= COMMIT_EVERY:
            self._commit()

    def _progress(self) -> dict[int, int]:
        """Per partition the offset before which everything is settled (a finished partition whose every
        record is settled: its end offset, markers included)."""
        progress = {}
        for partition, done in self._done.items():
            if partition in self._finished and done >= self._read_to[partition]:
                done = self.ranges[partition][1]
            progress[partition] = min(done, self._blocked.get(partition, done))
        return progress

    def _commit(self) -> None:
        progress = {p: offset for p, offset in self._progress().items() if offset > self.starts[p]}
        self._since_commit = 0
        if not progress:
            return
        self._commit_failed = True
        if self.mode is ReadMode.MOVE:
            self._commit_group(progress)
        else:
            ck = rdkafka.library()
            deletions = {ck.TopicPartition(self.queue, p): offset for p, offset in progress.items()}
            self.cluster.delete_records(deletions, f"cannot delete records from {self.queue!r}")
        self._commit_failed = False
        self.starts.update(progress)

    def _commit_group(self, progress: dict[int, int]) -> None:
        """Commit the group's offsets, waiting at most ``--timeout``; BrokerUnavailable (exit 3) past it.

        Through the admin client's AlterConsumerGroupOffsets (the group is never joined, so it is the same
        OffsetCommit an assign-only consumer sends), not the consumer's commit: librdkafka's synchronous
        commit has no timeout at all (a redrive whose broker stopped waited for it to come back, minutes),
        and an asynchronous one left pending makes the consumer's close() wait for it (measured: 42 s with
        the broker down).  An admin request ends at its request_timeout, the future is waited on no longer.

        Giving up loses nothing, it repeats: the records settled since the last commit are in their target
        already, and the next run starts from the last commit that did land, so it delivers them again
        (at least once, never lost).
        """
        ck = rdkafka.library()
        group = str(self.group)
        request = ck.ConsumerGroupTopicPartitions(
            group, [ck.TopicPartition(self.queue, p, offset) for p, offset in sorted(progress.items())])
        waiting = {ck.KafkaError.COORDINATOR_NOT_AVAILABLE, ck.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                   ck.KafkaError.NOT_COORDINATOR}
        deadline = time.monotonic() + max(0.1, self.options.timeout)

        def attempt(left: float) -> None:
            future = self.cluster.admin.alter_consumer_group_offsets([request], request_timeout=left)[group]
            try:
                result = future.result(timeout=left + 1.0)  # librdkafka ends it at `left`: only a backstop
            except FutureTimeout:
                future.cancel()
                raise ck.KafkaException(ck.KafkaError(ck.KafkaError._TIMED_OUT)) from None
            for tp in result.topic_partitions or []:
                if tp.error is not None:
                    raise ck.KafkaException(tp.error)

        with rdkafka.translated(f"cannot commit progress for group {group!r}"):
            while True:
                try:
                    attempt(max(0.1, deadline - time.monotonic()))
                    return
                except ck.KafkaException as exc:  # a coordinator not ready yet: again while there is time
                    if rdkafka.code_of(exc) not in waiting or time.monotonic() + RETRY_S > deadline:
                        raise
                    time.sleep(RETRY_S)

    def close(self) -> None:
        try:
            # After a failed commit the pass is ending on that error: another --timeout spent on the same
            # broker would only delay exit 3 (the next run repeats what was not committed).
            if self._advanced and not self._commit_failed:
                self._commit()
        finally:
            consumer, self._consumer = self._consumer, None
            if consumer is not None:
                with rdkafka.translated("cannot close the consumer"):
                    consumer.close()
