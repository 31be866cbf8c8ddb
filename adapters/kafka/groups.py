"""Consumer groups per topic: which groups read a topic, their lag and their members.

A group "consumes" a topic when it has committed offsets on it or when one of
its members is assigned one of its partitions, so a group with no active
members still counts (its lag keeps growing) and a brand-new group shows up
before its first commit.  librdkafka describes a member by its assignment, not
its subscription: a member subscribed to a topic but given none of its
partitions (more members than partitions) is not counted as its consumer.  A partition the group never committed
counts from the log start: the records there are waiting for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qctl.adapters.kafka.cluster import Bounds, Cluster


@dataclass(frozen=True, slots=True)
class GroupOnTopic:
    group: str
    lag: int
    members: int
    committed: int  # Σ committed offsets on the topic (a partition never committed: its log start)


def member_topics(member: Any) -> set[str]:
    """Topics a group member is assigned partitions of (librdkafka's MemberDescription: the current
    assignment, and for KIP-848 consumer groups the target one too)."""
    topics: set[str] = set()
    for assignment in (getattr(member, "assignment", None), getattr(member, "target_assignment", None)):
        topics.update(str(tp.topic) for tp in getattr(assignment, "topic_partitions", None) or [])
    return topics


def groups_by_topic(cluster: Cluster, bounds: Mapping[Any, Bounds],
                    topics: Sequence[str]) -> dict[str, list[GroupOnTopic]]:
    """For each of ``topics``: the groups consuming it, with lag and member count (3-4 requests in all)."""
    group_ids = cluster.groups()
    if not group_ids or not topics:
        return {topic: [] for topic in topics}
    committed = cluster.committed({group: None for group in group_ids})
    members = cluster.members(group_ids)
    wanted = set(topics)
    by_topic: dict[str, list[GroupOnTopic]] = {topic: [] for topic in topics}
    partitions_of: dict[str, list[Any]] = {}
    for tp in bounds:
        partitions_of.setdefault(tp.topic, []).append(tp)
    for group in group_ids:
        offsets = committed.get(group, {})
        member_counts = _members_per_topic(members.get(group, []), wanted)
        used = {tp.topic for tp in offsets if tp.topic in wanted} | set(member_counts)
        for topic in sorted(used):
            positions = [(tp, max(offsets.get(tp, bounds[tp].start), bounds[tp].start))
                         for tp in partitions_of.get(topic, [])]
            lag = sum(bounds[tp].end - position for tp, position in positions)
            by_topic[topic].append(GroupOnTopic(group, max(0, lag), member_counts.get(topic, 0),
                                                sum(position for _, position in positions)))
    return by_topic


def _members_per_topic(members: Sequence[Any], wanted: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for member in members:
        for topic in member_topics(member) & wanted:
            counts[topic] = counts.get(topic, 0) + 1
    return counts
