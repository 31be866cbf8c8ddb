"""``stats`` on mosquitto: the broker's row from $SYS, rows per filter, Prometheus, thresholds, --watch."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from qctl.testing.runner import QctlRunner
from tests.mqtt.driver import Client, MQTTDriver

BROKER_FIELDS = {"offline_sessions", "clients_total", "subscriptions", "store_messages", "store_bytes",
                 "retained_messages", "received_per_minute", "sent_per_minute", "messages_received",
                 "messages_sent", "uptime_seconds", "version"}


@pytest.fixture()
def backlog(mqtt_driver: MQTTDriver) -> Iterator[str]:
    """An offline persistent session with 4 messages queued for it: 4 messages the broker holds."""
    client_id = f"stats-{uuid.uuid4().hex[:10]}"
    worker = Client(mqtt_driver.url, client_id, session_expiry=3600)
    worker.subscribe(f"qctl-test/{client_id}", qos=1)
    worker.close()
    mqtt_driver.client.wait([mqtt_driver.client.publish(f"qctl-test/{client_id}", b"held", qos=1)
                             for _ in range(4)])
    mqtt_driver.client.sys_figures()  # until $SYS says so
    yield client_id
    Client(mqtt_driver.url, client_id).close()


def test_the_broker_row(mqtt_driver: MQTTDriver, qctl: QctlRunner, backlog: str) -> None:
    run = qctl("stats", "-u", mqtt_driver.url, "-o", "json")
    assert run.rc == 0, run
    (row,) = run.json()
    assert (row["backend"], row["queue"], row["type"]) == ("mqtt", "$SYS", "broker")
    assert set(row) >= BROKER_FIELDS
    assert row["version"].startswith("mosquitto version 2.")
    assert row["offline_sessions"] >= 1 and row["depth"] >= 4  # at least our backlog's four
    assert row["depth"] <= row["store_messages"] - row["retained_messages"]  # retained ones are not held for anyone
    assert row["in_flight"] is None and row["lag"] is None and row["oldest_age"] is None
    named = qctl("stats", "-u", mqtt_driver.url, "-o", "json", "$SYS")
    assert [r["queue"] for r in named.json()] == ["$SYS"]


def test_prometheus_and_thresholds(mqtt_driver: MQTTDriver, qctl: QctlRunner, backlog: str, tree: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    mqtt_driver.client.wait([mqtt_driver.client.publish(mqtt_driver.base(tree) + f"/{i}", b"r", retain=True)
                             for i in range(3)])
    prom = qctl("stats", "-u", mqtt_driver.url, "-o", "prom", "$SYS", tree)
    assert prom.rc == 0, prom
    samples = {(s.name, s.labels["queue"]): s.value for family in text_string_to_metric_families(prom.out)
               for s in family.samples}
    assert samples[("qctl_queue_depth", tree)] == 3
    assert samples[("qctl_queue_depth", "$SYS")] >= 4
    assert ("qctl_queue_consumers", "$SYS") in samples
    assert qctl("stats", "-u", mqtt_driver.url, "--fail-above", "3", tree).rc == 0
    crossed = qctl("stats", "-u", mqtt_driver.url, "--fail-above", "2", tree)
    assert crossed.rc == 5 and tree in crossed.err, crossed
    held = qctl("stats", "-u", mqtt_driver.url, "--fail-above", "3", "$SYS")
    assert held.rc == 5 and "$SYS depth" in held.err, held  # the backlog of offline sessions


def test_retained_counts_never_include_the_brokers_own(mqtt_driver: MQTTDriver, qctl: QctlRunner) -> None:
    """'#' matches no $SYS topic, so a row for '#' is the user's retained messages only."""
    everything = qctl("stats", "-u", mqtt_driver.url, "-o", "json", "#").json()[0]
    broker = qctl("stats", "-u", mqtt_driver.url, "-o", "json").json()[0]
    users = len(mqtt_driver.client.retained("#"))
    assert everything["depth"] == users
    assert abs(broker["retained_messages"] - users) <= 50  # the broker's counter, without its $SYS topics


def test_watch_gives_rates(mqtt_driver: MQTTDriver, clean_env: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "qctl", "stats", "--watch", "1", "-u", mqtt_driver.url,
                             "-o", "jsonl"], env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    frames = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(frames) >= 2 and all(frame["queue"] == "$SYS" for frame in frames)
    assert frames[0]["in_rate"] is None and frames[-1]["in_rate"] is not None and frames[-1]["out_rate"] is not None
