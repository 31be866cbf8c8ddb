"""The librdkafka clients ``stats`` makes, counted over several calls of one adapter (what ``--watch`` does).

One admin client for the adapter's life and no consumer: each topic's oldest record comes from a
ListOffsets for timestamp 0 (adapters/kafka/ages.py).  Only a partition whose log start lies past
segments the broker has not deleted yet is read with a consumer, and that is one consumer kept
across calls, closed by the first call that no longer needs it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from qctl.adapters.kafka import rdkafka
from qctl.adapters.kafka.adapter import KafkaAdapter
from qctl.adapters.kafka.ages import FirstRecords
from qctl.options import ConnectOptions
from qctl.urls import parse
from tests.kafka.driver import KafkaDriver

CALLS = 5
MINUTE_MS = 60_000


@pytest.fixture()
def made(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many admin clients and consumers qctl creates (every one goes through these two names)."""
    counts: Counter[str] = Counter()
    admin, consumer = rdkafka.admin, confluent_kafka.Consumer

    def counting_admin(options: ConnectOptions) -> Any:
        counts["admin"] += 1
        return admin(options)

    class CountingConsumer(consumer):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            counts["consumer"] += 1
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(rdkafka, "admin", counting_admin)
    monkeypatch.setattr(confluent_kafka, "Consumer", CountingConsumer)
    return counts


class Topics:
    """Topics made with settings of their own (confluent-kafka's admin client), deleted at the end."""

    def __init__(self, kafka: KafkaDriver) -> None:
        self.admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
        self.made: list[str] = []

    def create(self, topic: str, partitions: int, **configs: str) -> None:
        for future in self.admin.create_topics([NewTopic(topic, partitions, 1, config=configs)]).values():
            future.result(30)
        self.made.append(topic)

    def delete_records(self, topic: str, partition: int, before: int) -> None:
        for future in self.admin.delete_records([confluent_kafka.TopicPartition(topic, partition, before)]).values():
            future.result(30)


@pytest.fixture()
def topics(kafka: KafkaDriver) -> Iterator[Topics]:
    made = Topics(kafka)
    yield made
    if made.made:
        for future in made.admin.delete_topics(made.made).values():
            future.result(30)


def produce(kafka: KafkaDriver, topic: str, stamps: list[tuple[int, int]]) -> None:
    """One record per (partition, timestamp ms), in order, each batch sent on its own."""
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 0})
    for partition, millis in stamps:
        producer.produce(topic, b"x", partition=partition, timestamp=millis)
        producer.flush(30)


def test_several_stats_calls_make_one_admin_client_and_no_consumer(kafka: KafkaDriver, topics: Topics,
                                                              made: Counter[str]) -> None:
    topic, now = kafka.unique("st-clients"), int(time.time() * 1000)
    topics.create(topic, 3)
    produce(kafka, topic, [(p, now - (30 - p) * MINUTE_MS) for p in range(3)] + [(p, now) for p in range(3)])
    adapter = KafkaAdapter(ConnectOptions(url=parse(kafka.url)))
    try:
        ages = [adapter.stats([topic])[0].oldest_age for _ in range(CALLS)]
    finally:
        adapter.close()
    assert made == {"admin": 1}, made  # no consumer at all, one admin client for the five calls
    assert all(age is not None and 30 * 60 - 5 < age < 30 * 60 + 60 for age in ages), ages  # partition 0's first


def test_a_log_start_past_undeleted_segments_is_read_by_one_kept_consumer(kafka: KafkaDriver, topics: Topics,
                                                                          made: Counter[str]) -> None:
    """segment.ms=100 rolls a segment per batch; DeleteRecords past two of them leaves them on disk until
    the broker's retention check, and ListOffsets for timestamp 0 then answers -1."""
    stale, plain = kafka.unique("st-stale"), kafka.unique("st-plain")
    now = int(time.time() * 1000)
    topics.create(stale, 1, **{"segment.ms": "100"})
    topics.create(plain, 1)
    for minutes in (50, 40, 30):
        produce(kafka, stale, [(0, now - minutes * MINUTE_MS)])
        time.sleep(0.3)  # the next batch rolls a new segment
    produce(kafka, plain, [(0, now - 10 * MINUTE_MS)])
    topics.delete_records(stale, 0, before=2)
    adapter = KafkaAdapter(ConnectOptions(url=parse(kafka.url)))
    try:
        cluster = adapter.cluster
        assert cluster.first_records(cluster.topic_partitions(stale))[confluent_kafka.TopicPartition(stale, 0)] \
            == (-1, -1), "the broker answered: this test no longer sets up the case it is for"
        ages = [adapter.stats([stale])[0].oldest_age for _ in range(CALLS)]
        assert made == {"admin": 1, "consumer": 1}, made  # the one fallback consumer, reassigned each call
        reader = FirstRecords.of(adapter.cluster.admin, adapter.options)
        assert reader.consumer is not None and reader.consumer.assignment() == []  # nothing fetched between calls
        assert adapter.stats([plain])[0].oldest_age is not None
        assert reader.consumer is None  # a call that did not need it closed it
    finally:
        adapter.close()
    assert all(age is not None and 30 * 60 - 5 < age < 30 * 60 + 60 for age in ages), ages  # offset 2's record
