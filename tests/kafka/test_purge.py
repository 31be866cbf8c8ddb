"""qctl purge: DeleteRecords to the end offsets read at the start; backup first; compact topics refused."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import QctlRunner
from tests.kafka.driver import KafkaDriver


def _seed(kafka: KafkaDriver, partitions: int = 3) -> str:
    topic = kafka.unique("pg")
    kafka.create_topic(topic, partitions)
    for partition in range(partitions):
        kafka.produce(topic, [(f"k{i}".encode(), f"p{partition}-{i}".encode(), [("n", str(i).encode())])
                              for i in range(5 + partition)], partition)
    return topic


def test_purge_leaves_start_equal_to_end(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = _seed(kafka)
    run = qctl("purge", "-u", kafka.url, topic, "--yes", "-o", "json")
    assert run.json() == {"queue": topic, "purged": 18, "backup": None}, run
    starts, ends = kafka.offsets(topic)
    assert starts == ends == {0: 5, 1: 6, 2: 7}
    assert kafka.contents(topic) == []
    again = qctl("purge", "-u", kafka.url, topic, "--yes", "-o", "json")
    assert again.json()["purged"] == 0


def test_dry_run_and_refusal_change_nothing(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = _seed(kafka)
    dry = qctl("purge", "-u", kafka.url, topic, "--dry-run", "-o", "json")
    assert dry.json()["purged"] == 18, dry
    refused = qctl("purge", "-u", kafka.url, topic)  # no terminal, no --yes
    assert refused.rc == 2, refused
    assert len(kafka.contents(topic)) == 18


def test_backup_then_restore(kafka: KafkaDriver, qctl: QctlRunner, tmp_path: Path) -> None:
    topic = _seed(kafka, partitions=2)
    before = sorted((r.key, r.value) for r in kafka.records(topic))
    backup = tmp_path / "backup.jsonl"

    run = qctl("purge", "-u", kafka.url, topic, "--yes", "--backup", str(backup), "-o", "json")

    assert run.json() == {"queue": topic, "purged": 11, "backup": str(backup)}, run
    header, *lines = [json.loads(line) for line in backup.read_text().splitlines()]
    assert header["qctl_backup"] == 2 and header["backend"] == "kafka" and header["queue"] == topic
    assert sorted((row["key"].encode(), row["body"].encode()) for row in lines) == before
    assert kafka.contents(topic) == []
    restored = qctl("restore", "-u", kafka.url, str(backup), "--to", topic, "-o", "json")
    assert restored.json()["restored"] == 11, restored
    records = kafka.records(topic)
    assert sorted((r.key, r.value) for r in records) == before
    assert all(dict(r.headers)["n"] == r.key[1:] for r in records)  # headers kept
    by_key: dict[bytes, set[int]] = {}
    for record in records:
        by_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(parts) == 1 for parts in by_key.values())  # partitioned by key


def test_compact_topic_is_a_usage_error(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    topic = kafka.unique("pg-compact")
    kafka.create_topic(topic, 1, {"cleanup.policy": "compact"})
    kafka.produce(topic, [(b"k", b"v", [])])
    run = qctl("purge", "-u", kafka.url, topic, "--yes")
    assert run.rc == 2, run
    assert "cleanup.policy=compact" in run.err and "Traceback" not in run.err
    assert kafka.contents(topic) == [b"v"]


def test_missing_topic_exits_4(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    assert qctl("purge", "-u", kafka.url, kafka.unique("pg-missing"), "--yes").rc == 4
