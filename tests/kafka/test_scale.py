"""Stats stays a few batched requests: 1,000 partitions x 50 groups in seconds."""

from __future__ import annotations

import time

from kafka import TopicPartition

from tests.conftest import QctlRunner
from tests.kafka.driver import KafkaDriver

PARTITIONS = 1000
GROUPS = 50


def test_thousand_partitions_fifty_groups(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = kafka.unique("sc-wide")
    kafka.create_topic(topic, PARTITIONS)
    kafka.bulk_produce(topic, 5000)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    for g in range(GROUPS):
        kafka.commit(f"{topic}-g{g:02d}", dict.fromkeys(tps, 0))

    started = time.monotonic()
    run = qctl("stats", "-u", kafka.url, topic, "--groups", "-o", "json")
    elapsed = time.monotonic() - started

    rows = run.json()
    assert len(rows) == GROUPS and {row["lag"] for row in rows} == {5000}, run
    assert elapsed < 6, elapsed
    kafka.delete(topic)
