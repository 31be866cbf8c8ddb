"""Topic metadata, offsets, groups and configs, asked in batches through librdkafka's admin client.

One Metadata request for the topics (``describe_topics`` for named ones: it never
asks the broker to auto-create them), one ListOffsets per partition leader for
start or end offsets (librdkafka groups ``list_offsets`` by leader; start and end
are asked at the same time) or for the first records' timestamps, in calls of at
most :data:`OFFSETS_CHUNK` partitions, one DeleteRecords per leader.  Committed
offsets and group members are one OffsetFetch and one DescribeGroups per group,
all groups' requests in flight at once (librdkafka takes one group per call);
nothing here is per partition.  The ``*_soon`` methods send their requests and
return what waits for the answers, so that ``stats`` has every kind in flight at
once.  Every future is waited on inside :func:`rdkafka.translated`, so a driver
error becomes a qctl error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from qctl.adapters.kafka import rdkafka
from qctl.errors import QueueNotFound

DEFAULT_MAX_MESSAGE_BYTES = 1048588  # the broker default of message.max.bytes
RETRY_S = 0.3
# Partitions per list_offsets call: librdkafka's handling of one call grows with the square of its partitions
# (2,849 partitions in one call: 51 ms of CPU; in calls of 500, all in flight at once: 10 ms).
OFFSETS_CHUNK = 500
T = TypeVar("T")
Answer = Callable[[], T]  # waits for the answer to requests already sent


def admin_module() -> Any:
    import confluent_kafka.admin

    return confluent_kafka.admin


def coordinator_call(call: Callable[[], T], timeout: float) -> T:
    """Retry a group call while the coordinator is loading or not yet elected (fresh clusters), up to ``timeout``."""
    ck = rdkafka.library()
    return _retried(call, {ck.KafkaError.COORDINATOR_NOT_AVAILABLE, ck.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                           ck.KafkaError.NOT_COORDINATOR}, timeout)


def leader_call(call: Callable[[], T], timeout: float) -> T:
    """Retry a partition call while leadership moves (a topic just created, a broker restarting), up to ``timeout``:
    kafka-python refreshed its metadata and retried these by itself, librdkafka's admin calls report them."""
    ck = rdkafka.library()
    return _retried(call, {ck.KafkaError.NOT_LEADER_FOR_PARTITION, ck.KafkaError.LEADER_NOT_AVAILABLE,
                           ck.KafkaError.FENCED_LEADER_EPOCH, ck.KafkaError.UNKNOWN_LEADER_EPOCH}, timeout)


def _retried(call: Callable[[], T], waiting: set[Any], timeout: float) -> T:
    ck = rdkafka.library()
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ck.KafkaException as exc:
            if rdkafka.code_of(exc) not in waiting or time.monotonic() + RETRY_S > deadline:
                raise
            time.sleep(RETRY_S)


@dataclass(frozen=True, slots=True)
class Bounds:
    """Start (log start) and end (high watermark) offset of one partition."""

    start: int
    end: int

    @property
    def depth(self) -> int:
        return max(0, self.end - self.start)


def is_internal(name: str) -> bool:
    return name.startswith("__")


class Cluster:
    """Read-only questions about topics and groups (and DeleteRecords), answered with few requests."""

    def __init__(self, admin: Any, timeout: float = 10.0) -> None:
        self.admin = admin
        self.timeout = timeout

    def partitions(self, topics: Sequence[str] | None = None) -> dict[str, list[int]]:
        """Partition ids of ``topics`` (every topic when None); missing topics are left out."""
        if topics is not None:
            return {topic: [tp.partition for tp in found] for topic in topics
                    if (found := self._described(topic)) is not None}
        with rdkafka.translated("cannot read topic metadata"):
            metadata = self.admin.list_topics(timeout=self.timeout)
        return {name: sorted(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None}

    def _described(self, topic: str) -> list[Any] | None:
        ck = rdkafka.library()
        with rdkafka.translated("cannot read topic metadata"):
            future = self.admin.describe_topics(ck.TopicCollection([topic]), request_timeout=self.timeout)[topic]
            try:
                described = future.result()
            except ck.KafkaException as exc:
                if rdkafka.code_of(exc) == ck.KafkaError.UNKNOWN_TOPIC_OR_PART:
                    return None
                raise
        return [ck.TopicPartition(topic, p.id) for p in sorted(described.partitions, key=lambda p: p.id)]

    def topic_partitions(self, topic: str) -> list[Any]:
        """TopicPartitions of one topic; QueueNotFound when it does not exist."""
        found = self._described(topic)
        if found is None:
            raise QueueNotFound(f"topic {topic!r} not found",
                                hint="'qctl stats' lists the topics; auto-creation is never used")
        return found

    def _soon(self, ask: Callable[[], Answer[T]], retried: Callable[[Callable[[], T], float], T],
              what: str) -> Answer[T]:
        """Send ``ask``'s requests now; the answer, when asked for, is theirs.  Where ``retried`` asks again (a
        leader or coordinator not ready), it sends them again."""
        with rdkafka.translated(what):
            sent = [ask()]

        def answer() -> T:
            def attempt() -> T:
                return (sent.pop() if sent else ask())()

            with rdkafka.translated(what):
                return retried(attempt, self.timeout)

        return answer

    def _offsets(self, wanted: Mapping[Any, Any]) -> dict[Any, Any]:
        """Futures of ListOffsets for ``{TopicPartition: OffsetSpec}``, batched per leader by librdkafka, at most
        OFFSETS_CHUNK partitions a call."""
        items = list(wanted.items())
        futures: dict[Any, Any] = {}
        for first in range(0, len(items), OFFSETS_CHUNK):
            futures.update(self.admin.list_offsets(dict(items[first:first + OFFSETS_CHUNK]),
                                                   request_timeout=self.timeout))
        return futures

    @staticmethod
    def _results(futures: Mapping[Any, Any]) -> dict[Any, int]:
        return {tp: int(future.result().offset) for tp, future in futures.items()}

    def offsets(self, tps: Iterable[Any], millis: int) -> dict[Any, int]:
        """The first offset at or after ``millis`` per partition (-1: none), batched per leader."""
        spec = admin_module().OffsetSpec.for_timestamp(millis)
        wanted = {tp: spec for tp in tps}

        def ask() -> Answer[dict[Any, int]]:
            futures = self._offsets(wanted)
            return lambda: self._results(futures)

        return self._soon(ask, leader_call, "cannot list partition offsets")()

    def first_records_soon(self, tps: Iterable[Any]) -> Answer[dict[Any, tuple[int, int]]]:
        """(offset, timestamp in ms) of each partition's first record at or after its log start, batched per
        leader: ListOffsets for timestamp 0 answers with the first record whose timestamp is at least 0, and
        its timestamp.  ``(-1, -1)`` where the broker finds none (see :mod:`.ages` for when it misses)."""
        spec = admin_module().OffsetSpec.for_timestamp(0)
        wanted = {tp: spec for tp in tps}

        def ask() -> Answer[dict[Any, tuple[int, int]]]:
            futures = self._offsets(wanted)
            return lambda: {tp: (int(found.offset), int(found.timestamp))
                            for tp, found in ((tp, future.result()) for tp, future in futures.items())}

        return self._soon(ask, leader_call, "cannot list partition offsets")

    def first_records(self, tps: Iterable[Any]) -> dict[Any, tuple[int, int]]:
        return self.first_records_soon(tps)()

    def bounds_soon(self, tps: Iterable[Any]) -> Answer[dict[Any, Bounds]]:
        spec = admin_module().OffsetSpec
        tps = list(tps)

        def ask() -> Answer[dict[Any, Bounds]]:
            starts = self._offsets({tp: spec.earliest() for tp in tps})  # both in flight at once
            ends = self._offsets({tp: spec.latest() for tp in tps})

            def answer() -> dict[Any, Bounds]:
                first, last = self._results(starts), self._results(ends)
                return {tp: Bounds(first[tp], last[tp]) for tp in tps}

            return answer

        return self._soon(ask, leader_call, "cannot list partition offsets")

    def bounds(self, tps: Iterable[Any]) -> dict[Any, Bounds]:
        return self.bounds_soon(tps)()

    def groups_soon(self) -> Answer[dict[str, bool]]:
        """Every consumer group id (classic and KIP-848 consumer groups), in order, each with whether it may have
        members: ListGroups tells each group's state, and an Empty or Dead one has none.  One ListGroups per
        broker."""
        ck = rdkafka.library()
        memberless = {ck.ConsumerGroupState.EMPTY, ck.ConsumerGroupState.DEAD}

        def ask() -> Answer[dict[str, bool]]:
            future = self.admin.list_consumer_groups(request_timeout=self.timeout)
            return lambda: {group.group_id: group.state not in memberless
                            for group in sorted(future.result().valid, key=lambda group: group.group_id)}

        return self._soon(ask, lambda call, _timeout: call(), "cannot list consumer groups")

    def groups(self) -> list[str]:
        return list(self.groups_soon()())

    def committed_soon(self, groups: Mapping[str, Sequence[Any] | None]) -> Answer[dict[str, dict[Any, int]]]:
        """Committed offsets per group (``None`` = all of the group's partitions), every group's OffsetFetch in
        flight at once."""
        if not groups:
            return dict
        ck = rdkafka.library()

        def ask() -> Answer[dict[str, dict[Any, int]]]:
            futures = {}
            for group, tps in groups.items():
                if tps is not None and not tps:
                    continue  # no partitions asked: nothing committed to tell
                request = ck.ConsumerGroupTopicPartitions(group, None if tps is None else [
                    ck.TopicPartition(tp.topic, tp.partition) for tp in tps])
                futures[group] = self.admin.list_consumer_group_offsets([request],
                                                                       request_timeout=self.timeout)[group]
            # The answer's own TopicPartitions are the keys: they hash and compare by topic and partition only
            # (a stats run over 50 groups of 1,000 partitions made 50,000 new ones to the same effect).
            return lambda: {group: {tp: tp.offset for tp in future.result().topic_partitions
                                    if tp.offset >= 0 and tp.error is None}
                            for group, future in futures.items()}

        return self._soon(ask, coordinator_call, "cannot read committed offsets")

    def committed(self, groups: Mapping[str, Sequence[Any] | None]) -> dict[str, dict[Any, int]]:
        return self.committed_soon(groups)()

    def members_soon(self, groups: Sequence[str]) -> Answer[dict[str, list[Any]]]:
        """Members of each group (librdkafka's MemberDescription: client, host, assigned partitions)."""
        if not groups:
            return dict

        def ask() -> Answer[dict[str, list[Any]]]:
            futures = self.admin.describe_consumer_groups(list(groups), request_timeout=self.timeout)
            return lambda: {group: list(future.result().members or []) for group, future in futures.items()}

        return self._soon(ask, coordinator_call, "cannot describe consumer groups")

    def members(self, groups: Sequence[str]) -> dict[str, list[Any]]:
        return self.members_soon(groups)()

    def topic_config(self, topic: str, name: str) -> str | None:
        """One setting of a topic as the broker applies it (its own, or the broker's default)."""
        admin = admin_module()
        resource = admin.ConfigResource(admin.ResourceType.TOPIC, topic)
        with rdkafka.translated(f"cannot read the configuration of {topic!r}"):
            described = self.admin.describe_configs([resource], request_timeout=self.timeout)[resource].result()
        entry = described.get(name)
        return None if entry is None or entry.value is None else str(entry.value)

    def cleanup_policy(self, topic: str) -> str:
        return self.topic_config(topic, "cleanup.policy") or "delete"

    def max_message_bytes(self, topic: str) -> int:
        value = self.topic_config(topic, "max.message.bytes")
        return int(value) if value and value.isdigit() else DEFAULT_MAX_MESSAGE_BYTES

    def delete_records(self, upto: Mapping[Any, int], what: str) -> None:
        """DeleteRecords before ``upto[tp]`` in each partition, one request per leader; waits for every one."""
        if not upto:
            return
        ck = rdkafka.library()
        with rdkafka.translated(what):
            futures = self.admin.delete_records([ck.TopicPartition(tp.topic, tp.partition, offset)
                                                 for tp, offset in upto.items()],
                                                request_timeout=self.timeout, operation_timeout=self.timeout)
            for future in futures.values():
                future.result()
