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


VARIED_HEADERS: list[list[tuple[str, bytes]]] = [
    [], [("a", b"1")], [("a", b"1"), ("a", b"2")], [("bin", b"\xff\xfe\x00"), ("t", b"text")],
    spring_headers("orders", 0, 7, "boom"), [("kafka_dlt-original-topic", b"\xff"), ("kafka_dlt-exception-fqcn", b"X")],
    [("__connect.errors.topic", b"src"), ("__connect.errors.exception.message", b"bad")],
    [("kafka_dlt-original-topic", b""), ("kafka_dlt-exception-message", b"")], [("e", b"")],
    [("kafka_dlt-original-topic", b"a"), ("kafka_dlt-original-topic", b"b")],
]


def test_to_message_keeps_nothing_from_the_record_before(kafka: KafkaDriver) -> None:
    """to_message reuses the headers it decoded for the record before when the next has the same, and builds
    Messages without the dataclass's __init__: every record here, converted in a row (runs of the same
    headers, then others), equals the Message built from it alone, with the caches cleared and by the
    dataclass's own constructor."""
    import dataclasses

    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as ConfluentPartition

    from qctl.adapters.kafka import records
    from qctl.models import Message

    topic = kafka.unique("pk-varied")
    kafka.create_topic(topic, 1)
    kafka.produce(topic, [(None if i % 5 == 0 else b"k%d" % i, b"" if i % 11 == 0 else b"\x80body-%d" % i,
                           VARIED_HEADERS[(i // 3) % len(VARIED_HEADERS)]) for i in range(89)], 0)
    kafka.producer.send(topic, key=b"gone", value=None, partition=0)  # a tombstone
    kafka.producer.flush(timeout=60)
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "never-used", "enable.auto.commit": False})
    try:
        consumer.assign([ConfluentPartition(topic, 0, 0)])
        raw: list[object] = []
        deadline = time.monotonic() + 30
        while len(raw) < 90 and time.monotonic() < deadline:
            raw += [record for record in consumer.consume(90, 1.0) if record.error() is None]
    finally:
        consumer.close()
    assert len(raw) == 90
    in_a_row = [records.to_message(record) for record in raw]
    for record, converted in zip(raw, in_a_row, strict=True):
        records._last_headers = (None, (), None, None)
        records._last_dead = (None, None, None, None)
        alone = records.to_message(record)
        assert converted == alone
        # what a Kafka record sets; the rest must be the dataclass's defaults
        given = {field.name: getattr(alone, field.name) for field in dataclasses.fields(Message)
                 if field.name not in ("properties", "redelivered", "delivery_count")}
        assert alone == Message(**given)
    assert sum(message.dead_letter is not None for message in in_a_row) > 20
    assert in_a_row[-1].body == b"" and in_a_row[-1].key == b"gone"
    assert any(message.pairs() == (("a", "1"), ("a", "2")) and message.headers == {"a": "2"} for message in in_a_row)
