"""``peek --live``: live traffic under a filter, for -n messages or --timeout seconds, never the retained ones."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from qctl.testing.runner import QctlRunner
from tests.mqtt.driver import MQTTDriver


def test_peek_live_taps_n_messages(mqtt_driver: MQTTDriver, clean_env: dict[str, str], tree: str) -> None:
    base = mqtt_driver.base(tree)
    client = mqtt_driver.client
    client.wait([client.publish(f"{base}/retained", b"old news", retain=True)])
    proc = subprocess.Popen([sys.executable, "-m", "qctl", "peek", "--live", "-n", "3", "--timeout", "30", "-u",
                             mqtt_driver.url, "-o", "jsonl", tree], env=clean_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = [("source", "sensor-1")]
    properties.ContentType = "text/plain"
    sent = 0
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:  # until the tap has what it wants
        client.wait([client.publish(f"{base}/live/{sent}", f"reading {sent}".encode(), qos=1,
                                    properties=properties)])
        sent += 1
        time.sleep(0.1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3 and all(row["body"].startswith("reading ") for row in rows), rows
    first = int(rows[0]["body"].split()[1])
    assert [row["body"] for row in rows] == [f"reading {first + i}" for i in range(3)]  # in order, none lost
    assert rows[0]["position"] == f"{base}/live/{first}" and rows[0]["queue"] == tree
    assert rows[0]["properties"] == {"retain": False, "qos": 1, "content_type": "text/plain"}
    assert rows[0]["headers"] == {"source": "sensor-1"} and rows[0]["redelivered"] is False


def test_peek_live_stops_at_the_timeout(mqtt_driver: MQTTDriver, qctl: QctlRunner, tree: str) -> None:
    mqtt_driver.client.wait([mqtt_driver.client.publish(mqtt_driver.base(tree) + "/r", b"retained", retain=True)])
    started = time.monotonic()
    run = qctl("peek", "--live", "--timeout", "2", "-u", mqtt_driver.url, "-o", "json", tree)
    assert (run.rc, run.json()) == (0, []), run  # the retained message is not live traffic
    assert 2 <= time.monotonic() - started < 10
    assert mqtt_driver.contents(tree) == [b"retained"]


def test_live_is_an_mqtt_option(qctl: QctlRunner, redis_url: str) -> None:
    run = qctl("peek", "--live", "-u", redis_url, "q")
    assert run.rc == 2 and "--live does not apply" in run.err, run
