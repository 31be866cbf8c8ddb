"""``qctl stats`` for Kafka: depth, lag, consumers and dead-letter topics, batched.

depth = Σ(end − start) over partitions; in_flight is null (Kafka has no
unacknowledged state); lag = the largest Σ(end − committed) over the groups
consuming the topic; consumers = members of those groups that subscribe to or
are assigned the topic (summed over groups).  A topic row names its
dead-letter topic when one of the naming conventions (``<t>.DLT``, ``<t>-dlt``,
``<t>.dlq``, ``dlq.<t>``, ... plus the profile's) exists.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from qctl.adapters.kafka.cluster import Bounds, Cluster, is_internal
from qctl.adapters.kafka.groups import GroupOnTopic, groups_by_topic
from qctl.deadletter import DeadLetterNaming
from qctl.errors import QueueNotFound
from qctl.models import QueueStats

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


def collect(cluster: Cluster, patterns: Sequence[str], *, groups: bool, include_internal: bool,
            naming: DeadLetterNaming) -> list[QueueStats]:
    from kafka import TopicPartition

    partitions = cluster.partitions()
    topics = select_topics(list(partitions), patterns, include_internal)
    dlqs = dead_letter_topics(topics, set(partitions), naming)
    needed = set(topics) | set(dlqs.values())
    bounds = cluster.bounds(TopicPartition(t, p) for t in sorted(needed) for p in partitions[t])
    depth = _depths(bounds)
    consuming = groups_by_topic(cluster, bounds, topics)
    rows: list[QueueStats] = []
    for topic in topics:
        dlq = dlqs.get(topic)
        base = dict(backend="kafka", queue=topic, type="topic", depth=depth.get(topic, 0), in_flight=None,
                    dead_letter_queue=dlq, dead_letter_depth=depth.get(dlq, 0) if dlq else None)
        rows.extend(_rows(base, consuming[topic], groups))
    return rows


def _rows(base: dict[str, Any], consuming: Sequence[GroupOnTopic], per_group: bool) -> list[QueueStats]:
    if not per_group:
        lag = max((g.lag for g in consuming), default=None)
        consumers = sum(g.members for g in consuming)
        return [QueueStats(**base, consumers=consumers, lag=lag)]
    if not consuming:  # keep the topic visible: one row with no group
        return [QueueStats(**base, consumers=0, lag=None, group=None)]
    return [QueueStats(**base, consumers=g.members, lag=g.lag, group=g.group) for g in consuming]


def _depths(bounds: Mapping[Any, Bounds]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for tp, bound in bounds.items():
        depth[tp.topic] = depth.get(tp.topic, 0) + bound.depth
    return depth
