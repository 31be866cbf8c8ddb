"""The 3-broker KRaft cluster: partitions led by different brokers, groups on any coordinator."""

from __future__ import annotations

import time

from kafka import TopicPartition

from tests.conftest import QctlRunner
from tests.kafka.driver import KafkaDriver, spring_headers


def test_stats_peek_purge_redrive_on_three_brokers(kafka_cluster: KafkaDriver, qctl: QctlRunner) -> None:
    kafka = kafka_cluster
    source = kafka.unique("cl-orders")
    dlq = source + ".DLT"
    kafka.create_topic(source, 6)
    kafka.create_topic(dlq, 6)
    leaders: set[int] = set()
    for _ in range(20):  # metadata reaches every broker shortly after creation
        leaders = {p["leader_id"] for p in kafka.admin.describe_topics([dlq])[0]["partitions"]}
        if len(leaders) == 3:
            break
        time.sleep(0.5)
    assert len(leaders) == 3  # the case under test: offsets come from every broker
    kafka.produce(dlq, [(f"k{i}".encode(), f"m{i}".encode(), spring_headers(source, 0, i)) for i in range(60)])
    kafka.commit(source + "-g", {TopicPartition(source, p): 0 for p in range(6)})

    rows = qctl("stats", "-u", kafka.url, source, dlq, "--groups", "-o", "json").json()
    assert {(r["queue"], r["group"], r["depth"]) for r in rows} == {(source, source + "-g", 0), (dlq, None, 60)}
    assert rows[0]["dead_letter_queue"] == dlq and rows[0]["dead_letter_depth"] == 60

    peeked = qctl("peek", "-u", kafka.url, dlq, "-n", "100", "-o", "json").json()
    assert sorted(r["body"] for r in peeked) == sorted(f"m{i}" for i in range(60))

    moved = qctl("redrive", "-u", kafka.url, dlq, "-o", "json")
    assert moved.json()["moved"] == 60, moved
    assert sorted(kafka.contents(source)) == sorted(f"m{i}".encode() for i in range(60))
    lag = qctl("stats", "-u", kafka.url, source, "-o", "json").json()[0]["lag"]
    assert lag == 60

    purged = qctl("purge", "-u", kafka.url, dlq, "--yes", "-o", "json")
    assert purged.json()["purged"] == 60, purged
    starts, ends = kafka.offsets(dlq)
    assert starts == ends and sum(ends.values()) == 60
