"""qctl stats against the real broker: depth, lag per group (idle and active), consumers, DLT, internals."""

from __future__ import annotations

import threading
import time

from kafka import TopicPartition

from tests.conftest import QctlRunner
from tests.kafka.conftest import MemberFactory
from tests.kafka.driver import KafkaDriver
from tests.watch import later, median, watch_frames


def test_depth_lag_and_dead_letter_topic(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = kafka.unique("st-orders")
    kafka.create_topic(topic, 3)
    kafka.create_topic(topic + ".DLT", 2)
    for partition in range(3):
        kafka.produce(topic, [(None, f"p{partition}-{i}".encode(), []) for i in range(10 + partition)], partition)
    kafka.produce(topic + ".DLT", [(None, b"dead", [])] * 4)
    # An idle group (no members) that read 5 records of partition 0 and 2 of partition 1.
    kafka.commit(topic + "-idle", {TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 2})

    rows = qctl("stats", "-u", kafka.url, topic, "-o", "json").json()

    age = rows[0].pop("oldest_age")
    assert rows == [{
        "backend": "kafka", "queue": topic, "type": "topic", "depth": 33, "in_flight": None, "consumers": 0,
        # uncommitted partition 2 counts from the log start: 5 + 9 + 12
        "lag": 26, "dead_letter_queue": topic + ".DLT", "dead_letter_depth": 4,
    }]
    assert 0 <= age < 60  # the first record's timestamp, just produced


def test_groups_rows_with_an_active_member(kafka: KafkaDriver, qctl: QctlRunner, live_member: MemberFactory) -> None:
    topic = kafka.unique("st-live")
    kafka.create_topic(topic, 2)
    kafka.produce(topic, [(None, b"x", [])] * 6, partition=0)
    kafka.commit(topic + "-a", {TopicPartition(topic, 0): 6, TopicPartition(topic, 1): 0})
    kafka.commit(topic + "-b", {TopicPartition(topic, 0): 1})
    live_member(topic + "-live", topic)

    rows = qctl("stats", "-u", kafka.url, topic, "--groups", "-o", "json").json()

    by_group = {row["group"]: (row["lag"], row["consumers"], row["depth"]) for row in rows}
    assert by_group == {topic + "-a": (0, 0, 6), topic + "-b": (5, 0, 6), topic + "-live": (6, 1, 6)}
    summary = qctl("stats", "-u", kafka.url, topic, "-o", "json").json()
    assert (summary[0]["lag"], summary[0]["consumers"]) == (6, 1)


def test_missing_topic_exits_4_and_globs(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    missing = qctl("stats", "-u", kafka.url, kafka.unique("nope"))
    assert missing.rc == 4, missing
    assert missing.err.startswith("qctl: error:")
    assert qctl("stats", "-u", kafka.url, "no-such-prefix-*", "-o", "json").json() == []
    prefix = kafka.unique("st-glob")
    kafka.create_topic(prefix + "-a", 1)
    kafka.create_topic(prefix + "-b", 1)
    rows = qctl("stats", "-u", kafka.url, prefix + "-*", "-o", "json").json()
    assert [row["queue"] for row in rows] == [prefix + "-a", prefix + "-b"]


def test_internal_topics_hidden_unless_asked(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = kafka.unique("st-internal")
    kafka.create_topic(topic, 1)
    kafka.commit(topic + "-g", {TopicPartition(topic, 0): 0})  # makes sure __consumer_offsets exists
    plain = {row["queue"] for row in qctl("stats", "-u", kafka.url, "-o", "json").json()}
    assert not any(name.startswith("__") for name in plain)
    shown = qctl("stats", "-u", kafka.url, "--include-internal", "-o", "json")
    assert "__consumer_offsets" in {row["queue"] for row in shown.json()}, shown


def test_fail_lag_above_exits_5(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = kafka.unique("st-lag")
    kafka.create_topic(topic, 1)
    kafka.produce(topic, [(None, b"x", [])] * 3)
    kafka.commit(topic + "-g", {TopicPartition(topic, 0): 0})
    assert qctl("stats", "-u", kafka.url, topic, "--fail-lag-above", "2").rc == 5
    assert qctl("stats", "-u", kafka.url, topic, "--fail-lag-above", "3").rc == 0


def test_prometheus_output(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = kafka.unique("st-prom")
    kafka.create_topic(topic, 1)
    kafka.produce(topic, [(None, b"x", [])] * 2)
    out = qctl("stats", "-u", kafka.url, topic, "-o", "prom").out
    assert f'qctl_queue_depth{{backend="kafka",queue="{topic}"}} 2' in out


def test_watch_rates_from_end_offsets_and_committed_offsets(kafka: KafkaDriver, clean_env: dict[str, str]) -> None:
    """In from the end offsets' growth, out from the committed offsets' (the group with the most lag).

    Committing does not change a topic's depth (records stay until retention), so out_rate here can only come
    from the committed offsets."""
    topic = kafka.unique("st-rates")
    kafka.create_topic(topic, 1)
    tp = TopicPartition(topic, 0)
    kafka.produce(topic, [(None, b"backlog", [])] * 1000, partition=0)
    group = topic + "-workers"
    kafka.commit(group, {tp: 0})
    stop = threading.Event()

    def traffic() -> None:  # ~100/s produced, the group commits ~50/s
        committed = 0
        while not stop.is_set():
            for _ in range(10):
                kafka.producer.send(topic, value=b"m", partition=0)
            kafka.producer.flush(timeout=30)
            committed += 5
            kafka.commit(group, {tp: committed})
            time.sleep(0.1)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        frames = watch_frames(["stats", "-u", kafka.url, "--watch", "1", "-o", "jsonl", topic], clean_env, 8)
    finally:
        stop.set()
        worker.join(30)
    rows = later(frames, topic)
    assert len(rows) >= 3, frames
    assert rows[-1]["depth"] > rows[0]["depth"] and rows[-1]["lag"] > rows[0]["lag"]
    assert 30 < median(rows, "in_rate") < 250, rows
    assert 15 < median(rows, "out_rate") < 120, rows
    assert median(rows, "out_rate") < median(rows, "in_rate")
    assert all(row["drain_eta"] is None for row in rows)  # growing, not draining
