"""Kafka work, counted: records turned into Python objects, requests per stats run, kafka-python never loaded.

Goals timed by bench/kafka.py (peek -n 10,000 <= 0.30 s, -n 1,000,000 <= 3x kcat, stats --groups
<= 0.1x ConsumerGroupCommand); what these tests hold still is the work behind them: librdkafka decodes the
records (kafka-python decoded each one in Python), qctl converts exactly the records it shows, decodes a
set of headers once for the records that share it and never waits for a whole batch; a stats run asks for
offsets once per kind however many partitions there are (in calls of bounded size), has every request in
flight before it waits for an answer, and describes only groups that may have members.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from qctl.adapters.kafka import adapter as kafka_adapter
from qctl.adapters.kafka import peek as peeking
from qctl.adapters.kafka import rdkafka
from qctl.adapters.kafka.cluster import Cluster
from qctl.models import PeekRequest
from qctl.options import ConnectOptions
from qctl.urls import parse

RECORDS = 3000
PARTITIONS = 60
GROUPS = 7


@pytest.fixture(scope="module")
def topic(kafka_url: str) -> Iterator[str]:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = kafka_url.split("://", 1)[1]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"perf-{uuid.uuid4().hex[:8]}"
    for future in admin.create_topics([NewTopic(name, PARTITIONS, 1)]).values():
        future.result()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # every partition led before anything asks for offsets
        partitions = admin.list_topics(name, timeout=10).topics[name].partitions
        if len(partitions) == PARTITIONS and all(p.leader >= 0 for p in partitions.values()):
            break
        time.sleep(0.2)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(RECORDS):
        producer.produce(name, value=b"body-%d" % i, key=b"k%d" % i, partition=0 if i < RECORDS // 2 else 1,
                         headers=[("kafka_dlt-original-topic", b"orders")])
    producer.flush(30)
    yield name
    for future in admin.delete_topics([name]).values():
        future.result()


def _adapter(kafka_url: str) -> kafka_adapter.KafkaAdapter:
    return kafka_adapter.KafkaAdapter(ConnectOptions(url=parse(kafka_url)))


def test_peek_converts_only_the_records_it_shows(kafka_url: str, topic: str, monkeypatch: pytest.MonkeyPatch) -> None:
    converted = 0
    to_message = peeking.to_message

    def counting(record: Any) -> Any:
        nonlocal converted
        converted += 1
        return to_message(record)

    monkeypatch.setattr(peeking, "to_message", counting)
    for count in (10, RECORDS // 2 + 5):
        converted = 0
        adapter = _adapter(kafka_url)
        try:
            shown = list(adapter.peek(topic, PeekRequest(count=count)))
        finally:
            adapter.close()
        assert len(shown) == count and converted == count
        assert shown[0].dead_letter is not None and shown[0].dead_letter.source_queue == "orders"


def test_peek_waits_for_one_record_never_for_a_batch(kafka_url: str, topic: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """consume(n, wait) returns when it has n records or the wait is over: asked for a batch with a wait, it
    idled out the wait whenever fewer had come (the last records of a partition, a fetch of fewer).  What
    has arrived is taken without waiting, and a wait is for one record, which ends it as it arrives."""
    asked: list[tuple[int, float]] = []
    real_consumer = rdkafka.consumer

    class Consumer:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        def consume(self, count: int, wait: float) -> Any:
            asked.append((count, wait))
            return self._real.consume(count, wait)

    monkeypatch.setattr(rdkafka, "consumer", lambda *args, **kwargs: Consumer(real_consumer(*args, **kwargs)))
    adapter = _adapter(kafka_url)
    try:
        shown = list(adapter.peek(topic, PeekRequest(count=RECORDS // 2 + 5)))  # partition 0, then 1
    finally:
        adapter.close()
    assert len(shown) == RECORDS // 2 + 5
    assert asked and all(count == 1 for count, wait in asked if wait > 0), asked
    assert sum(count > 1 for count, _ in asked) <= 20  # records taken in batches, not one call each


def test_peek_decodes_each_set_of_headers_once(kafka_url: str, topic: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record of the topic carries the same header: decoded (and searched for dead-letter fields) once,
    not once a record."""
    from qctl.adapters.kafka import records

    decoded = 0
    real = records._decoded

    def counting(raw: Any) -> Any:
        nonlocal decoded
        decoded += 1
        return real(raw)

    monkeypatch.setattr(records, "_decoded", counting)
    monkeypatch.setattr(records, "_last_headers", (None, (), None, None))
    adapter = _adapter(kafka_url)
    try:
        shown = list(adapter.peek(topic, PeekRequest(count=RECORDS)))
    finally:
        adapter.close()
    assert len(shown) == RECORDS and decoded == 1
    assert {message.dead_letter.source_queue for message in shown if message.dead_letter} == {"orders"}


class CountingAdmin:
    """librdkafka's admin client, counting each call (each is one request per broker, group or topic) and
    logging when requests go out and when their answers are waited for (``events``)."""

    def __init__(self, real: Any, calls: Counter[str], events: list[tuple[str, str]] | None = None) -> None:
        self._real, self._calls, self._events = real, calls, events if events is not None else []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._real, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls[name] += 1
            self._events.append(("send", name))
            answer = method(*args, **kwargs)
            if isinstance(answer, dict):
                return {key: WaitedFuture(future, name, self._events) for key, future in answer.items()}
            return WaitedFuture(answer, name, self._events) if hasattr(answer, "result") else answer

        return call


class WaitedFuture:
    def __init__(self, real: Any, name: str, events: list[tuple[str, str]]) -> None:
        self._real, self._name, self._events = real, name, events

    def result(self, *args: Any, **kwargs: Any) -> Any:
        self._events.append(("wait", self._name))
        return self._real.result(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_stats_groups_asks_per_kind_not_per_partition(kafka_url: str, topic: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka_url.split("://", 1)[1]})
    groups = [f"{topic}-g{g}" for g in range(GROUPS)]
    for group in groups:
        offsets = [TopicPartition(topic, p, 1) for p in (0, 1)]  # the rest count from the log start
        admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, offsets)])[group].result()
    calls: Counter[str] = Counter()
    events: list[tuple[str, str]] = []
    real_admin = rdkafka.admin
    monkeypatch.setattr(rdkafka, "admin", lambda options: CountingAdmin(real_admin(options), calls, events))
    described: list[str] = []
    real_members = Cluster.members_soon
    monkeypatch.setattr(Cluster, "members_soon",
                        lambda self, ids: (described.extend(ids), real_members(self, ids))[1])
    adapter = _adapter(kafka_url)
    try:
        rows = adapter.stats([topic], groups=True)
    finally:
        adapter.close()
    mine = [row for row in rows if row.group in groups]
    assert len(mine) == GROUPS and {row.lag for row in mine} == {RECORDS - 2}  # partitions 0 and 1 hold records
    assert {row.total_out for row in mine} == {2}  # the committed positions: 1 + 1, the rest at log start 0
    assert calls["list_topics"] == 1
    # start and end of all 60 partitions, and the first records' timestamps (oldest_age, asked of the admin
    # client instead of a consumer made per call): each batched per leader by librdkafka
    assert calls["list_offsets"] == 3
    assert calls["list_consumer_groups"] == 1
    # DescribeGroups only for groups ListGroups does not call Empty or Dead: never for these (no members)
    assert calls["describe_consumer_groups"] <= 1 and not set(described) & set(groups)
    # librdkafka takes one group per OffsetFetch call: one per group of the cluster, all in flight together,
    # never one per partition (60 here)
    assert GROUPS <= calls["list_consumer_group_offsets"] <= len(admin.list_consumer_groups().result().valid)
    # every request in flight before the first answer is waited for (ListGroups' answer names the groups)
    in_flight = ("list_offsets", "list_consumer_group_offsets", "describe_consumer_groups")
    sends = [i for i, (kind, name) in enumerate(events) if kind == "send" and name in in_flight]
    waits = [i for i, (kind, name) in enumerate(events) if kind == "wait" and name in in_flight]
    assert sends and waits and max(sends) < min(waits), events[:12]
    for future in admin.delete_consumer_groups(groups).values():
        future.result()


def test_stats_asks_offsets_in_calls_of_a_bounded_size(kafka_url: str, topic: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka's handling of a list_offsets call grows with the square of its partitions: none carries more
    than OFFSETS_CHUNK (25 here, so the topic's 60 take three calls per kind), and the answers are the same."""
    from qctl.adapters.kafka import cluster

    sizes: list[int] = []
    real_admin = rdkafka.admin

    class SizingAdmin:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        def list_offsets(self, wanted: Any, **kwargs: Any) -> Any:
            sizes.append(len(wanted))
            return self._real.list_offsets(wanted, **kwargs)

    adapter = _adapter(kafka_url)
    try:
        whole = adapter.stats([topic])
    finally:
        adapter.close()
    monkeypatch.setattr(cluster, "OFFSETS_CHUNK", 25)
    monkeypatch.setattr(rdkafka, "admin", lambda options: SizingAdmin(real_admin(options)))
    adapter = _adapter(kafka_url)
    try:
        chunked = adapter.stats([topic])
    finally:
        adapter.close()
    assert sorted(sizes) == sorted([25, 25, 10] * 3), sizes  # start, end, first records
    assert [(row.depth, row.total_in, row.lag) for row in chunked] == [(row.depth, row.total_in, row.lag)
                                                                       for row in whole] == [(RECORDS, RECORDS, None)]


def test_kafka_commands_never_load_kafka_python(kafka_url: str, topic: str) -> None:
    code = ("import contextlib, io, json, sys\nfrom qctl.boundary import run_app\nfrom qctl.cli import app\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    run_app(app, ['peek', '-u', {kafka_url!r}, {topic!r}, '-n', '5', '-o', 'jsonl'])\n"
            f"    run_app(app, ['stats', '-u', {kafka_url!r}, {topic!r}, '--groups', '-o', 'json'])\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'kafka', 'tabulate'})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
