"""Kafka work, counted: records turned into Python objects, requests per stats run, kafka-python never loaded.

Goals timed by bench/kafka.py (peek -n 10,000 <= 0.30 s, -n 1,000,000 <= 3x kcat, stats --groups
<= 0.1x ConsumerGroupCommand); what these tests hold still is the work behind them: librdkafka decodes the
records (kafka-python decoded each one in Python), qctl converts exactly the records it shows, and a stats
run asks for offsets once per kind however many partitions there are.
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


class CountingAdmin:
    """librdkafka's admin client, counting each call (each is one request per broker, group or topic)."""

    def __init__(self, real: Any, calls: Counter[str]) -> None:
        self._real, self._calls = real, calls

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._real, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls[name] += 1
            return method(*args, **kwargs)

        return call


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
    real_admin = rdkafka.admin
    monkeypatch.setattr(rdkafka, "admin", lambda options: CountingAdmin(real_admin(options), calls))
    adapter = _adapter(kafka_url)
    try:
        rows = adapter.stats([topic], groups=True)
    finally:
        adapter.close()
    mine = [row for row in rows if row.group in groups]
    assert len(mine) == GROUPS and {row.lag for row in mine} == {RECORDS - 2}  # partitions 0 and 1 hold records
    assert calls["list_topics"] == 1
    # start and end of all 60 partitions, and the first records' timestamps (oldest_age, asked of the admin
    # client instead of a consumer made per call): each batched per leader by librdkafka
    assert calls["list_offsets"] == 3
    assert calls["list_consumer_groups"] == 1
    assert calls["describe_consumer_groups"] == 1
    # librdkafka takes one group per OffsetFetch call: one per group of the cluster, all in flight together,
    # never one per partition (60 here)
    assert GROUPS <= calls["list_consumer_group_offsets"] <= len(admin.list_consumer_groups().result().valid)
    for future in admin.delete_consumer_groups(groups).values():
        future.result()


def test_kafka_commands_never_load_kafka_python(kafka_url: str, topic: str) -> None:
    code = ("import contextlib, io, json, sys\nfrom qctl.boundary import run_app\nfrom qctl.cli import app\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    run_app(app, ['peek', '-u', {kafka_url!r}, {topic!r}, '-n', '5', '-o', 'jsonl'])\n"
            f"    run_app(app, ['stats', '-u', {kafka_url!r}, {topic!r}, '--groups', '-o', 'json'])\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'kafka', 'tabulate'})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
