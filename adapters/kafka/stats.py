"""``qctl stats`` for Kafka: depth, lag, consumers and dead-letter topics, batched.

depth = Σ(end − start) over partitions; in_flight is null (Kafka has no
unacknowledged state); lag = the largest Σ(end − committed) over the groups
consuming the topic; consumers = members of those groups that subscribe to or
are assigned the topic (summed over groups); oldest_age = the first retained
record's timestamp (:mod:`.ages`: one more ListOffsets per leader, for
timestamp 0).  A topic row names its dead-letter topic when one of the naming
conventions (``<t>.DLT``, ``<t>-dlt``, ``<t>.dlq``, ``dlq.<t>``, ... plus the
profile's) exists.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qctl.adapters.kafka import rdkafka
from qctl.adapters.kafka.ages import oldest_ages
from qctl.adapters.kafka.cluster import Bounds, Cluster, is_internal
from qctl.adapters.kafka.groups import GroupOnTopic, groups_by_topic
from qctl.deadletter import DeadLetterNaming
from qctl.errors import QueueNotFound
from qctl.models import QueueStats
from qctl.options import ConnectOptions

GLOB_CHARS = frozenset("*?[")


def select_topics(all_topics: Sequence[str], patterns: Sequence[str], include_internal: bool) -> list[str]:
    """Topics matching names/globs; a plain name that does not exist raises QueueNotFound."""
    visible = [t for t in all_topics if include_internal or not is_internal(t)]
    if not patterns:
        return sorted(visible)
    chosen: dict[str, None] = {}
    for pattern in patterns:
        if GLOB_CHARS & set(pattern):
            chosen.update(dict.fromkeys(t for t in visible if fnmatch.fnmatchcase(t, pattern)))
        elif pattern in all_topics:
            chosen[pattern] = None  # named explicitly: shown even when internal
        else:
            raise QueueNotFound(f"topic {pattern!r} not found", hint="'qctl stats' lists every topic")
    return sorted(chosen)


def dead_letter_topics(topics: Sequence[str], existing: set[str], naming: DeadLetterNaming) -> dict[str, str]:
    found = {}
    for topic in topics:
        for candidate in naming.candidates(topic):
            if candidate in existing and candidate != topic:
                found[topic] = candidate
                break
    return found


def collect(cluster: Cluster, options: ConnectOptions, patterns: Sequence[str], *, groups: bool,
            include_internal: bool, naming: DeadLetterNaming) -> list[QueueStats]:
    """Every kind of request in flight at once, each answer waited for only when it is needed: ListGroups
    with the Metadata, then the OffsetFetch of every group and the DescribeGroups of those that may have
    members (the longest to answer: librdkafka's handling of an OffsetFetch grows with the square of the
    group's partitions), then the start, end and first-record ListOffsets.  One after another, as before,
    the waits added up."""
    TopicPartition = rdkafka.library().TopicPartition

    listed = cluster.groups_soon()
    partitions = cluster.partitions()
    topics = select_topics(list(partitions), patterns, include_internal)
    may_have_members = listed()
    ids = list(may_have_members) if topics else []
    committed_of = cluster.committed_soon({group: None for group in ids})
    # DescribeGroups only where ListGroups named a state that has members: librdkafka asks each group twice
    # (the KIP-848 ConsumerGroupDescribe, then the classic DescribeGroups) with a FindCoordinator before
    # each, ~1,350 requests for 340 groups, and an Empty group (every group no application is running) has none.
    members_of = cluster.members_soon([group for group in ids if may_have_members[group]])
    dlqs = dead_letter_topics(topics, set(partitions), naming)
    needed = set(topics) | set(dlqs.values())
    tps = [TopicPartition(t, p) for t in sorted(needed) for p in partitions[t]]
    bounds_of = cluster.bounds_soon(tps)
    shown = set(topics)
    # Asked of every partition of the topics shown, not only those with records: the bounds are not known yet.
    first_of = cluster.first_records_soon([tp for tp in tps if tp.topic in shown])
    bounds = bounds_of()
    consuming: dict[str, list[GroupOnTopic]] = {topic: [] for topic in topics}
    if ids:
        consuming = groups_by_topic(ids, committed_of(), members_of(), bounds, topics)
    ages = oldest_ages(cluster, options, bounds, shown, first_of())
    depth = _depths(bounds)
    ends = _sums(bounds, lambda bound: bound.end)
    rows: list[QueueStats] = []
    for topic in topics:
        dlq = dlqs.get(topic)
        base = dict(backend="kafka", queue=topic, type="topic", depth=depth.get(topic, 0), in_flight=None,
                    dead_letter_queue=dlq, dead_letter_depth=depth.get(dlq, 0) if dlq else None,
                    oldest_age=ages.get(topic), total_in=ends.get(topic))
        rows.extend(_rows(base, consuming[topic], groups))
    return rows


def _rows(base: dict[str, Any], consuming: Sequence[GroupOnTopic], per_group: bool) -> list[QueueStats]:
    if not per_group:
        slowest = max(consuming, key=lambda g: g.lag, default=None)  # its commits are the topic's out-rate
        consumers = sum(g.members for g in consuming)
        return [QueueStats(**base, consumers=consumers, lag=slowest.lag if slowest else None,
                           total_out=slowest.committed if slowest else None)]
    if not consuming:  # keep the topic visible: one row with no group
        return [QueueStats(**base, consumers=0, lag=None, group=None)]
    return [QueueStats(**base, consumers=g.members, lag=g.lag, group=g.group, total_out=g.committed)
            for g in consuming]


def _depths(bounds: Mapping[Any, Bounds]) -> dict[str, int]:
    return _sums(bounds, lambda bound: bound.depth)


def _sums(bounds: Mapping[Any, Bounds], value: Callable[[Bounds], int]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for tp, bound in bounds.items():
        totals[tp.topic] = totals.get(tp.topic, 0) + value(bound)
    return totals
