"""Behaviour every adapter must show, checked on each real broker afterwards.

The driver (tests/<backend>/driver.py) seeds and reads the broker without
qctl; qctl runs as a real process.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import QctlRunner
from tests.drivers import BackendDriver

STATS_FIELDS = {"backend", "queue", "type", "depth", "in_flight", "consumers", "lag", "dead_letter_queue",
                "dead_letter_depth"}
PEEK_FIELDS = {"queue", "position", "partition", "offset", "key", "headers", "body", "body_encoding", "timestamp",
               "redelivered", "delivery_count", "dead_letter"}
BODIES = [f"message {i}".encode() for i in range(5)]


def test_stats_row_for_a_named_queue(driver: BackendDriver, qctl: QctlRunner) -> None:
    name = driver.unique("stats")
    driver.make_queue(name, BODIES)
    run = qctl("stats", "-u", driver.url, "-o", "json", name)
    assert run.rc == 0, run
    rows = run.json()
    assert len(rows) == 1, run
    row = rows[0]
    assert set(row) >= STATS_FIELDS
    assert (row["backend"], row["queue"], row["type"], row["depth"]) == (driver.name, name, driver.queue_type, 5)


def test_stats_globs_and_listing_everything(driver: BackendDriver, qctl: QctlRunner) -> None:
    prefix = driver.unique("glob")
    for suffix, count in (("a", 1), ("b", 2)):
        driver.make_queue(f"{prefix}.{suffix}", BODIES[:count])
    run = qctl("stats", "-u", driver.url, "-o", "jsonl", f"{prefix}.*")
    assert run.rc == 0, run
    assert {(r["queue"], r["depth"]) for r in run.jsonl()} == {(f"{prefix}.a", 1), (f"{prefix}.b", 2)}
    everything = qctl("stats", "-u", driver.url, "-o", "json")
    assert everything.rc == 0, everything
    assert {f"{prefix}.a", f"{prefix}.b"} <= {r["queue"] for r in everything.json()}
    nothing = qctl("stats", "-u", driver.url, "-o", "json", f"{prefix}-no-such-*")
    assert (nothing.rc, nothing.json()) == (0, [])


def test_stats_thresholds_and_prometheus(driver: BackendDriver, qctl: QctlRunner) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    name = driver.unique("thr")
    driver.make_queue(name, BODIES[:3])
    assert qctl("stats", "-u", driver.url, "--fail-above", "3", name).rc == 0
    crossed = qctl("stats", "-u", driver.url, "--fail-above", "2", name)
    assert crossed.rc == 5, crossed
    assert "qctl: error:" in crossed.err and name in crossed.err
    prom = qctl("stats", "-u", driver.url, "-o", "prom", name)
    assert prom.rc == 0, prom
    samples = {(s.name, s.labels["queue"], s.labels["backend"]): s.value
               for family in text_string_to_metric_families(prom.out) for s in family.samples}
    assert samples[("qctl_queue_depth", name, driver.name)] == 3


def test_peek_shows_messages_in_order_and_changes_nothing(driver: BackendDriver, qctl: QctlRunner) -> None:
    name = driver.unique("peek")
    driver.make_queue(name, BODIES)
    run = qctl("peek", "-u", driver.url, "-n", "3", "-o", "jsonl", name)
    assert run.rc == 0, run
    rows = run.jsonl()
    assert [r["body"] for r in rows] == ["message 0", "message 1", "message 2"]
    assert all(set(r) >= PEEK_FIELDS and r["body_encoding"] == "utf-8" and r["queue"] == name for r in rows)
    assert driver.contents(name) == BODIES
    again = qctl("peek", "-u", driver.url, "-o", "json", name)
    assert [r["body"] for r in again.json()] == [b.decode() for b in BODIES]
    assert driver.contents(name) == BODIES


def test_peek_binary_bodies_come_out_base64(driver: BackendDriver, qctl: QctlRunner) -> None:
    import base64

    name = driver.unique("bin")
    raw = b"\xff\xfe\x00\x01 not utf-8"
    driver.make_queue(name, [raw])
    row = qctl("peek", "-u", driver.url, "-o", "json", name).json()[0]
    assert row["body_encoding"] == "base64"
    assert base64.b64decode(row["body"]) == raw


def test_purge_without_yes_and_without_terminal_refuses(driver: BackendDriver, qctl: QctlRunner) -> None:
    name = driver.unique("refuse")
    driver.make_queue(name, BODIES)
    run = qctl("purge", "-u", driver.url, name)
    assert run.rc == 2, run
    assert run.err.startswith("qctl: error:") and "--yes" in run.err
    assert driver.contents(name) == BODIES


def test_purge_dry_run_changes_nothing(driver: BackendDriver, qctl: QctlRunner) -> None:
    name = driver.unique("dry")
    driver.make_queue(name, BODIES)
    run = qctl("purge", "-u", driver.url, "--dry-run", "-o", "json", name)
    assert run.rc == 0, run
    assert run.json()["purged"] == 5
    assert driver.contents(name) == BODIES


def test_purge_empties_the_queue(driver: BackendDriver, qctl: QctlRunner) -> None:
    name = driver.unique("purge")
    driver.make_queue(name, BODIES)
    run = qctl("purge", "-u", driver.url, "--yes", "-o", "json", name)
    assert run.rc == 0, run
    assert run.json() == {"queue": name, "purged": 5, "backup": None}
    assert driver.contents(name) == []
    assert qctl("stats", "-u", driver.url, "-o", "json", name).json()[0]["depth"] == 0


def test_purge_backup_then_restore_round_trips(driver: BackendDriver, qctl: QctlRunner, tmp_path: Path) -> None:
    name = driver.unique("backup")
    bodies = [*BODIES, b"\x00\xffbinary"]
    driver.make_queue(name, bodies)
    backup = tmp_path / "backup.jsonl"
    run = qctl("purge", "-u", driver.url, "--yes", "--backup", str(backup), "-o", "json", name)
    assert run.rc == 0, run
    assert run.json() == {"queue": name, "purged": 6, "backup": str(backup)}
    assert len(backup.read_text().splitlines()) == 6
    assert driver.contents(name) == []
    restored = qctl("restore", str(backup), "--to", name, "-u", driver.url, "-o", "json")
    assert restored.rc == 0, restored
    assert restored.json()["restored"] == 6
    assert driver.contents(name) == bodies


def test_redrive_moves_dead_letters_back_to_their_source(driver: BackendDriver, qctl: QctlRunner) -> None:
    source, dlq = _dead_letter_pair(driver)
    driver.make_dead_letters(source, dlq, BODIES)
    dry = qctl("redrive", "-u", driver.url, "--dry-run", "-o", "json", dlq)
    assert dry.rc == 0, dry
    assert dry.json()["targets"] == {source: 5}
    assert driver.contents(dlq) == BODIES and driver.contents(source) == []
    run = qctl("redrive", "-u", driver.url, "-o", "json", dlq)
    assert run.rc == 0, run
    result = run.json()
    assert (result["source"], result["moved"], result["skipped"], result["failed"]) == (dlq, 5, 0, 0)
    assert result["targets"] == {source: 5}
    assert driver.contents(source) == BODIES
    if driver.name != "kafka":  # Kafka keeps records; its progress lives in the redrive group
        assert driver.contents(dlq) == []
    again = qctl("redrive", "-u", driver.url, "-o", "json", dlq)
    assert (again.rc, again.json()["moved"]) == (0, 0), again
    assert driver.contents(source) == BODIES


def test_redrive_to_with_limit_moves_only_the_first(driver: BackendDriver, qctl: QctlRunner) -> None:
    source, dlq = _dead_letter_pair(driver)
    driver.make_dead_letters(source, dlq, BODIES)
    other = driver.unique("other")
    driver.make_queue(other, [])
    run = qctl("redrive", "-u", driver.url, "--to", other, "--limit", "2", "-o", "json", dlq)
    assert run.rc == 0, run
    assert run.json()["moved"] == 2 and run.json()["targets"] == {other: 2}
    assert driver.contents(other) == BODIES[:2]
    assert driver.contents(source) == []
    if driver.name != "kafka":  # Kafka keeps records; its progress lives in the redrive group
        assert driver.contents(dlq) == BODIES[2:]


def test_missing_queue(driver: BackendDriver, qctl: QctlRunner) -> None:
    name = driver.unique("missing")
    run = qctl("peek", "-u", driver.url, "-o", "json", name)
    if driver.name == "redis":  # Redis deletes empty lists: a missing key is an empty queue
        assert (run.rc, run.json()) == (0, [])
        return
    assert run.rc == 4, run
    assert run.err.startswith("qctl: error:") and name in run.err
    assert qctl("stats", "-u", driver.url, name).rc == 4


def test_wrong_password_exits_3_without_showing_it(driver: BackendDriver, qctl: QctlRunner) -> None:
    url = driver.bad_password_url()
    run = qctl("stats", "-u", url, "--timeout", "5", "anything")
    assert run.rc == 3, run
    assert len(run.err.strip().splitlines()) == 1 and run.err.startswith("qctl: error:")
    assert "Traceback" not in run.err
    assert "wrong-password" not in run.out + run.err


def test_unreachable_broker_exits_3_within_timeout(driver: BackendDriver, qctl: QctlRunner) -> None:
    started = time.monotonic()
    run = qctl("stats", "-u", driver.unreachable_url(), "--timeout", "3", "anything")
    elapsed = time.monotonic() - started
    assert run.rc == 3, run
    assert run.err.startswith("qctl: error:") and "Traceback" not in run.err
    assert elapsed < 3 + 5, f"took {elapsed:.1f}s"


def _dead_letter_pair(driver: BackendDriver) -> tuple[str, str]:
    source = driver.unique("src")
    suffix = {"redis": ":dlq", "rabbitmq": ".dlq", "kafka": ".DLT"}[driver.name]
    return source, source + suffix
