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

from qctl.adapters.kafka.cluster import Bounds


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


def groups_by_topic(group_ids: Sequence[str], committed: Mapping[str, Mapping[Any, int]],
                    members: Mapping[str, Sequence[Any]], bounds: Mapping[Any, Bounds],
                    topics: Sequence[str]) -> dict[str, list[GroupOnTopic]]:
    """For each of ``topics``: the groups consuming it, with lag and member count, from every group's committed
    offsets and members (:meth:`.cluster.Cluster.committed_soon`, :meth:`~.cluster.Cluster.members_soon`).

    A group's position on a partition is its committed offset, or the log start where it committed none or
    one before it; the lag is Σ(end − position).  Worked out from each topic's sums (Σ end, Σ start) and the
    group's own commits past the start, so a group costs what it committed, not every partition of the topics
    it reads (50 groups x 1,000 partitions: 50,000 steps before)."""
    wanted = set(topics)
    by_topic: dict[str, list[GroupOnTopic]] = {topic: [] for topic in topics}
    ends: dict[str, int] = {}
    starts: dict[str, int] = {}
    for tp, bound in bounds.items():
        if tp.topic in wanted:
            ends[tp.topic] = ends.get(tp.topic, 0) + bound.end
            starts[tp.topic] = starts.get(tp.topic, 0) + bound.start
    for group in group_ids:
        ahead: dict[str, int] = {}  # per topic: Σ over committed partitions of how far past the log start
        for tp, offset in committed.get(group, {}).items():
            topic = tp.topic
            if topic in wanted:
                known = bounds.get(tp)
                past = 0 if known is None or offset <= known.start else offset - known.start
                ahead[topic] = ahead.get(topic, 0) + past
        member_counts = _members_per_topic(members.get(group, []), wanted)
        for topic in sorted(ahead.keys() | member_counts.keys()):
            position = starts.get(topic, 0) + ahead.get(topic, 0)
            by_topic[topic].append(GroupOnTopic(group, max(0, ends.get(topic, 0) - position),
                                                member_counts.get(topic, 0), position))
    return by_topic


def _members_per_topic(members: Sequence[Any], wanted: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for member in members:
        for topic in member_topics(member) & wanted:
            counts[topic] = counts.get(topic, 0) + 1
    return counts
