"""Topic metadata and offsets, read in batches through the admin client.

One Metadata request for the topics, one ListOffsets per partition leader for
start/end offsets (kafka-python's ``list_partition_offsets`` groups by leader),
and committed offsets for many groups in one OffsetFetch per coordinator
(``list_group_offsets`` with a dict of groups).  Nothing here is per partition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from qctl.adapters.kafka.connection import translated
from qctl.errors import QueueNotFound

UNKNOWN_TOPIC = 3  # Kafka error code UNKNOWN_TOPIC_OR_PARTITION
DEFAULT_MAX_MESSAGE_BYTES = 1048588  # the broker default of message.max.bytes
COORDINATOR_RETRY_S = 0.3
T = TypeVar("T")


def coordinator_call(call: Callable[[], T], timeout: float) -> T:
    """Retry a group call while the coordinator is loading or not yet elected (fresh clusters), up to ``timeout``."""
    from kafka import errors

    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except (errors.CoordinatorNotAvailableError, errors.CoordinatorLoadInProgressError,
                errors.NotCoordinatorError):
            if time.monotonic() + COORDINATOR_RETRY_S > deadline:
                raise
            time.sleep(COORDINATOR_RETRY_S)


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
    """Read-only questions about topics and groups, answered with few requests."""

    def __init__(self, admin: Any, timeout: float = 10.0) -> None:
        self.admin = admin
        self.timeout = timeout

    def partitions(self, topics: Sequence[str] | None = None) -> dict[str, list[int]]:
        """Partition ids of ``topics`` (every topic when None); missing topics are left out."""
        with translated("cannot read topic metadata"):
            described = self.admin.describe_topics(list(topics) if topics is not None else None)
        found: dict[str, list[int]] = {}
        for topic in described:
            if topic["error_code"] == UNKNOWN_TOPIC:
                continue
            found[topic["name"]] = sorted(p["partition_index"] for p in topic["partitions"])
        return found

    def topic_partitions(self, topic: str) -> list[Any]:
        """TopicPartitions of one topic; QueueNotFound when it does not exist."""
        from kafka import TopicPartition

        partitions = self.partitions([topic]).get(topic)
        if partitions is None:
            raise QueueNotFound(f"topic {topic!r} not found",
                                hint="'qctl stats' lists the topics; auto-creation is never used")
        return [TopicPartition(topic, partition) for partition in partitions]

    def offsets(self, tps: Iterable[Any], spec: Any) -> dict[Any, int]:
        """``spec`` (OffsetSpec or a timestamp in ms) resolved per partition, batched per leader."""
        wanted = {tp: spec for tp in tps}
        if not wanted:
            return {}
        with translated("cannot list partition offsets"):
            found = self.admin.list_partition_offsets(wanted)
        return {tp: result.offset for tp, result in found.items()}

    def bounds(self, tps: Iterable[Any]) -> dict[Any, Bounds]:
        from kafka.admin import OffsetSpec

        tps = list(tps)
        starts = self.offsets(tps, OffsetSpec.EARLIEST)
        ends = self.offsets(tps, OffsetSpec.LATEST)
        return {tp: Bounds(starts[tp], ends[tp]) for tp in tps}

    def groups(self) -> list[str]:
        """Every consumer group id (classic and KIP-848 consumer groups), one ListGroups per broker."""
        with translated("cannot list consumer groups"):
            listed = self.admin.list_groups()
        return sorted({group["group_id"] for group in listed
                       if group.get("protocol_type") in ("consumer", "")})

    def committed(self, groups: Mapping[str, Sequence[Any] | None]) -> dict[str, dict[Any, int]]:
        """Committed offsets per group (``None`` = all of the group's partitions), one request per coordinator."""
        if not groups:
            return {}
        with translated("cannot read committed offsets"):
            specs = {group: list(tps) if tps is not None else None for group, tps in groups.items()}
            fetched = coordinator_call(lambda: self.admin.list_group_offsets(specs), self.timeout)
        return {group: {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
                for group, offsets in fetched.items()}

    def members(self, groups: Sequence[str]) -> dict[str, list[Any]]:
        """Members of each group (with decoded subscriptions and assignments), one request per coordinator."""
        if not groups:
            return {}
        with translated("cannot describe consumer groups"):
            described = coordinator_call(lambda: self.admin.describe_groups(list(groups)), self.timeout)
        return {group: list(info.get("members") or []) for group, info in described.items()}

    def topic_config(self, topic: str, name: str) -> str | None:
        """One setting of a topic as the broker applies it (its own, or the broker's default)."""
        from kafka.admin import ConfigResource, ConfigResourceType

        resource = ConfigResource(ConfigResourceType.TOPIC, topic, [name])
        with translated(f"cannot read the configuration of {topic!r}"):
            described = self.admin.describe_configs([resource], config_filter="all")
        value = described.get("topic", {}).get(topic, {}).get(name, {}).get("value")
        return None if value is None else str(value)

    def cleanup_policy(self, topic: str) -> str:
        return self.topic_config(topic, "cleanup.policy") or "delete"

    def max_message_bytes(self, topic: str) -> int:
        value = self.topic_config(topic, "max.message.bytes")
        return int(value) if value and value.isdigit() else DEFAULT_MAX_MESSAGE_BYTES
