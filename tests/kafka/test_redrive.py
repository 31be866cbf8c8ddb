"""qctl redrive: targets from headers, keys/headers kept, resumable through a group, crash-safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from tests.conftest import QctlRunner
from tests.kafka.driver import KafkaDriver, spring_headers


def _dead_letters(kafka: KafkaDriver, count: int, partitions: int = 3) -> tuple[str, str]:
    source = kafka.unique("rd-orders")
    kafka.create_topic(source, 4)
    kafka.create_topic(source + ".DLT", partitions)
    kafka.produce(source + ".DLT", [(f"k{i % 7}".encode(), f"m{i}".encode(), spring_headers(source, i % 4, i))
                                    for i in range(count)])
    return source, source + ".DLT"


def test_redrive_to_original_topic_keeps_key_value_headers(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    source, dlq = _dead_letters(kafka, 30)

    run = qctl("redrive", "-u", kafka.url, dlq, "-o", "json")

    assert run.rc == 0, run
    assert run.json() == {"source": dlq, "moved": 30, "skipped": 0, "failed": 0, "targets": {source: 30}}
    records = kafka.records(source)
    assert sorted(r.value for r in records) == sorted(f"m{i}".encode() for i in range(30))
    partitions_by_key: dict[bytes, set[int]] = {}
    for record in records:
        headers = dict(record.headers)
        assert headers["x-qctl-redrive-count"] == b"1"
        assert headers["kafka_dlt-original-topic"] == source.encode()
        assert record.key == f"k{int(record.value[1:]) % 7}".encode()
        partitions_by_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(p) == 1 for p in partitions_by_key.values())  # partitioned by key
    assert kafka.committed("qctl-redrive", dlq) == {p: e for p, e in kafka.offsets(dlq)[1].items() if e}
    second = qctl("redrive", "-u", kafka.url, dlq, "-o", "json")
    assert second.json()["moved"] == 0, second
    assert len(kafka.records(source)) == 30


def test_order_is_kept_per_partition(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    source, dlq = _dead_letters(kafka, 0, partitions=1)
    kafka.produce(dlq, [(b"same-key", f"m{i}".encode(), spring_headers(source)) for i in range(200)])
    assert qctl("redrive", "-u", kafka.url, dlq).rc == 0
    assert [r.value for r in kafka.records(source)] == [f"m{i}".encode() for i in range(200)]


def test_to_limit_dry_run_and_custom_group(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    _, dlq = _dead_letters(kafka, 20, partitions=1)
    other = kafka.unique("rd-other")
    kafka.create_topic(other, 2)

    dry = qctl("redrive", "-u", kafka.url, dlq, "--to", other, "--dry-run", "-o", "json")
    assert dry.json()["targets"] == {other: 20}, dry
    assert kafka.records(other) == [] and kafka.committed("qctl-redrive", dlq) == {}

    limited = qctl("redrive", "-u", kafka.url, dlq, "--to", other, "--limit", "5", "--group", "g1", "-o", "json")
    assert limited.json()["moved"] == 5, limited
    assert kafka.committed("g1", dlq) == {0: 5}
    rest = qctl("redrive", "-u", kafka.url, dlq, "--to", other, "--group", "g1", "-o", "json")
    assert rest.json()["moved"] == 15
    assert sorted(r.value for r in kafka.records(other)) == sorted(f"m{i}".encode() for i in range(20))
    assert len(kafka.contents(dlq)) == 20  # the DLQ keeps its records; the group remembers progress

    missing = qctl("redrive", "-u", kafka.url, dlq, "--to", kafka.unique("rd-nowhere"))
    assert missing.rc == 4, missing


def test_a_dry_run_after_a_partial_redrive_counts_only_what_the_group_has_not_committed_past(
        kafka: KafkaDriver, qctl: QctlRunner) -> None:
    total, limit = 30, 7
    source, dlq = _dead_letters(kafka, total, partitions=3)
    group = kafka.unique("rd-dry-group")

    first = qctl("redrive", "-u", kafka.url, dlq, "--limit", str(limit), "--group", group, "-o", "json")
    assert first.rc == 0 and first.json()["moved"] == limit, first
    committed = kafka.committed(group, dlq)
    assert sum(committed.values()) == limit, committed
    moved = sorted(kafka.contents(source))
    assert len(moved) == limit

    dry = qctl("redrive", "-u", kafka.url, dlq, "--dry-run", "--group", group, "-o", "json")

    assert dry.rc == 0, dry
    assert dry.json()["targets"] == {source: total - limit}, dry
    assert kafka.committed(group, dlq) == committed  # the dry run committed nothing
    assert sorted(kafka.contents(source)) == moved  # and moved nothing
    assert len(kafka.contents(dlq)) == total
    fresh = kafka.unique("rd-dry-fresh")
    other = qctl("redrive", "-u", kafka.url, dlq, "--dry-run", "--group", fresh, "-o", "json")
    assert other.json()["targets"] == {source: total}, other  # a group that never committed starts at the start
    assert fresh not in kafka.groups() and kafka.committed(fresh, dlq) == {}

    rest = qctl("redrive", "-u", kafka.url, dlq, "--group", group, "-o", "json")
    assert rest.json()["moved"] == total - limit, rest
    assert sorted(kafka.contents(source)) == sorted(f"m{i}".encode() for i in range(total))  # each once
    after = qctl("redrive", "-u", kafka.url, dlq, "--dry-run", "--group", group, "-o", "json")
    assert after.json()["targets"] == {}, after
    assert kafka.committed(group, dlq) == kafka.offsets(dlq)[1]


def test_max_redrives_and_no_target_are_skipped(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    source, dlq = _dead_letters(kafka, 0, partitions=1)
    kafka.produce(dlq, [
        (b"a", b"fresh", spring_headers(source)),
        (b"b", b"tired", [*spring_headers(source), ("x-qctl-redrive-count", b"3")]),
        (b"c", b"lost", [("kafka_dlt-original-topic", kafka.unique("rd-gone").encode())]),
    ])

    run = qctl("redrive", "-u", kafka.url, dlq, "--max-redrives", "3", "-o", "json")

    assert run.rc == 6, run  # partial: some left in place
    assert run.json() == {"source": dlq, "moved": 1, "skipped": 2, "failed": 0, "targets": {source: 1}}
    assert [r.value for r in kafka.records(source)] == [b"fresh"]
    assert kafka.contents(dlq) == [b"fresh", b"tired", b"lost"]  # skipped records stay in the DLQ topic
    again = qctl("redrive", "-u", kafka.url, dlq, "--max-redrives", "3", "-o", "json")
    assert (again.rc, again.json()["moved"], again.json()["skipped"]) == (0, 0, 0)


def test_target_by_name_when_no_headers(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    source = kafka.unique("rd-plain")
    kafka.create_topic(source, 1)
    kafka.create_topic(source + "-dlq", 1)
    kafka.produce(source + "-dlq", [(None, b"x", [])] * 3)
    run = qctl("redrive", "-u", kafka.url, source + "-dlq", "-o", "json")
    assert run.json()["targets"] == {source: 3}, run
    assert kafka.contents(source) == [b"x"] * 3


def test_rate_limit(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    _, dlq = _dead_letters(kafka, 50, partitions=2)
    started = time.monotonic()
    run = qctl("redrive", "-u", kafka.url, dlq, "--rate", "100", "-o", "json")
    assert run.json()["moved"] == 50, run
    assert time.monotonic() - started >= 0.45  # 50 records at 100/s


def test_kill_9_mid_redrive_then_rerun_moves_everything_once_more_at_most(
        kafka: KafkaDriver, qctl: QctlRunner, clean_env: dict[str, str]) -> None:
    total = 200_000
    source = kafka.unique("rd-crash")
    dlq = source + ".DLT"
    kafka.create_topic(source, 4)
    kafka.create_topic(dlq, 4)
    kafka.bulk_produce(dlq, total, headers=[("kafka_dlt-original-topic", source)])
    proc = subprocess.Popen([sys.executable, "-m", "qctl", "redrive", "-u", kafka.url, dlq, "-o", "json"],
                            env=clean_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while sum(kafka.offsets(source)[1].values()) < total // 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    moved_before = sum(kafka.offsets(source)[1].values())
    assert 0 < moved_before < total, "the kill came too late to test a crash"
    committed = kafka.committed("qctl-redrive", dlq)
    # Progress is committed as it goes (every few thousand records), so the re-run repeats little.
    assert moved_before - sum(committed.values()) <= 20_000 + 5_000

    rerun = qctl("redrive", "-u", kafka.url, dlq, "-o", "json", timeout=300)

    assert rerun.rc == 0, rerun
    assert rerun.json()["moved"] == total - sum(committed.values())
    counts = Counter(kafka.bulk_bodies(source))
    assert set(counts) == {f"m-{i}".encode() for i in range(total)}  # every record arrived
    assert qctl("redrive", "-u", kafka.url, dlq, "-o", "json").json()["moved"] == 0
    assert kafka.committed("qctl-redrive", dlq) == kafka.offsets(dlq)[1]


def test_order_per_key_limit_and_resume(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    per_key = 2_000
    keys = 12
    total = per_key * keys
    source = kafka.unique("rd-par")
    dlq = source + "-dlq"  # target by name
    kafka.create_topic(source, 5)
    kafka.create_topic(dlq, 3)
    kafka.bulk_keyed(dlq, ((f"k{i % keys}", f"{i}") for i in range(total)))
    limit = total // 3 + 17

    first = qctl("redrive", "-u", kafka.url, dlq, "--limit", str(limit), "-o", "json")

    assert first.rc == 0, first
    assert first.json() == {"source": dlq, "moved": limit, "skipped": 0, "failed": 0, "targets": {source: limit}}
    assert sum(kafka.committed("qctl-redrive", dlq).values()) == limit  # --limit counts what moved
    rest = qctl("redrive", "-u", kafka.url, dlq, "-o", "json")
    assert rest.json()["moved"] == total - limit, rest

    records = sorted(kafka.bulk_records(source), key=lambda r: (r[2], r[3]))
    assert sorted(int(body) for _, body, _, _ in records) == list(range(total))  # each once
    by_key: dict[bytes, list[int]] = {}
    for key, body, _, _ in records:
        by_key.setdefault(key, []).append(int(body))
    assert len(by_key) == keys
    assert all(seq == sorted(seq) for seq in by_key.values())  # the DLQ's order, per key
