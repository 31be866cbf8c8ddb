"""qctl peek: assign + seek only; order, --partition/--from/--since/--group, headers, no group made."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from kafka import TopicPartition

from tests.conftest import QctlRunner
from tests.kafka.driver import KafkaDriver, spring_headers


def _seed(kafka: KafkaDriver, partitions: int = 3, per: int = 4) -> str:
    topic = kafka.unique("pk")
    kafka.create_topic(topic, partitions)
    for partition in range(partitions):
        kafka.produce(topic, [(f"k{partition}".encode(), f"p{partition}-{i}".encode(), [("h", b"v")])
                              for i in range(per)], partition)
    return topic


def test_peek_order_keys_headers_and_no_group(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = _seed(kafka)
    groups_before = kafka.groups()

    rows = qctl("peek", "-u", kafka.url, topic, "-n", "6", "-o", "jsonl").jsonl()

    # partition by partition, each in offset order
    assert [row["body"] for row in rows] == ["p0-0", "p0-1", "p0-2", "p0-3", "p1-0", "p1-1"]
    assert [row["position"] for row in rows[3:5]] == ["0:3", "1:0"]
    assert (rows[4]["partition"], rows[4]["offset"], rows[4]["key"]) == (1, 0, "k1")
    assert rows[0]["headers"] == {"h": "v"} and rows[0]["timestamp"].endswith("Z")
    assert kafka.groups() == groups_before  # no group created
    assert kafka.contents(topic) == [f"p{p}-{i}".encode() for p in range(3) for i in range(4)]  # nothing consumed


def test_partition_from_and_since(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = _seed(kafka)
    rows = qctl("peek", "-u", kafka.url, topic, "--partition", "2", "--from", "1", "-o", "json").json()
    assert [row["body"] for row in rows] == ["p2-1", "p2-2", "p2-3"]
    rows = qctl("peek", "-u", kafka.url, topic, "--from", "1:3", "-o", "json").json()
    assert [row["body"] for row in rows] == ["p1-3"]
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    kafka.produce(topic, [(None, b"late", [])], partition=1)
    rows = qctl("peek", "-u", kafka.url, topic, "--since", since.isoformat(), "-o", "json").json()
    assert [row["body"] for row in rows] == ["late"]
    bad = qctl("peek", "-u", kafka.url, topic, "--partition", "7")
    assert bad.rc == 2, bad


def test_group_start_without_joining_or_committing(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = _seed(kafka, partitions=2, per=3)
    group = topic + "-g"
    kafka.commit(group, {TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 3})

    rows = qctl("peek", "-u", kafka.url, topic, "--group", group, "-o", "json").json()

    assert [row["body"] for row in rows] == ["p0-2"]
    assert kafka.committed(group, topic) == {0: 2, 1: 3}  # unchanged
    described = kafka.admin.describe_groups([group])[group]
    assert described["members"] == []  # never joined
    unknown = qctl("peek", "-u", kafka.url, topic, "--group", topic + "-nobody")
    assert unknown.rc == 2, unknown


def test_spring_dead_letter_fields(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    dlq = kafka.unique("pk-orders") + ".DLT"
    kafka.create_topic(dlq, 1)
    kafka.produce(dlq, [(b"key", b"\xff\xfe", spring_headers("orders", 2, 40, reason="bad amount"))])

    row = qctl("peek", "-u", kafka.url, dlq, "-o", "json").json()[0]

    assert row["dead_letter"]["reason"] == "bad amount"
    assert row["dead_letter"]["source_queue"] == "orders"
    assert row["dead_letter"]["time"] == row["timestamp"]
    assert (row["body"], row["body_encoding"]) == ("//4=", "base64")
    assert row["headers"]["kafka_dlt-original-partition"] == "\x00\x00\x00\x02"  # lossless text


def test_connect_dead_letter_fields(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    dlq = kafka.unique("dlq-connect")
    kafka.create_topic(dlq, 1)
    kafka.produce(dlq, [(None, b"{}", [("__connect.errors.topic", b"payments"),
                                       ("__connect.errors.exception.message", b"Converting byte[] failed")])])
    row = qctl("peek", "-u", kafka.url, dlq, "-o", "json").json()[0]
    assert row["dead_letter"]["source_queue"] == "payments"
    assert row["dead_letter"]["reason"] == "Converting byte[] failed"


def test_empty_topic_and_missing_topic(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = kafka.unique("pk-empty")
    kafka.create_topic(topic, 2)
    started = time.monotonic()
    empty = qctl("peek", "-u", kafka.url, topic, "-o", "json")
    assert (empty.rc, empty.json()) == (0, [])
    assert time.monotonic() - started < 8
    assert qctl("peek", "-u", kafka.url, kafka.unique("pk-missing")).rc == 4
