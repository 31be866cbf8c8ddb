"""Retained messages on the real mosquitto: inventory, peek, purge, backup and restore, moving a tree.

A 10,000-topic tree is counted, peeked and purged with one SUBSCRIBE (a counting
proxy in front of the broker shows it), and the broker is checked afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from qctl.testing.runner import QctlRunner
from tests.mqtt.driver import Client, MQTTDriver
from tests.mqtt.proxy import SUBSCRIBE, CountingProxy, RefusesMQTT5

BIG = 10_000


def seed_tree(driver: MQTTDriver, name: str, count: int) -> list[str]:
    """``count`` retained topics three levels deep under ``name``'s root, in the order mosquitto sends them:
    depth first, each level's topics in the order they were created (here, by number)."""
    base = driver.base(name)
    topics = [f"{base}/site-{i % 10}/dev-{i % 100:02d}/t{i:05d}" for i in range(count)]
    client = driver.client
    client.wait([client.publish(topic, f"reading {i}".encode(), retain=True) for i, topic in enumerate(topics)])
    return sorted(topics, key=lambda topic: [int(part.split("-")[-1].lstrip("t")) for part in topic.split("/")[2:]])


@pytest.fixture(scope="module")
def big_tree(mqtt_driver: MQTTDriver) -> Iterator[tuple[str, list[str]]]:
    name = mqtt_driver.unique("big")
    topics = seed_tree(mqtt_driver, name, BIG)
    yield name, topics
    mqtt_driver.delete(name)


@pytest.fixture()
def proxy(mqtt_url: str) -> Iterator[CountingProxy]:
    from qctl.urls import parse

    url = parse(mqtt_url)
    with CountingProxy(url.host, url.port or 1883) as counting:
        yield counting


def test_stats_counts_a_10000_topic_tree_with_one_subscription(big_tree: tuple[str, list[str]],
                                                             proxy: CountingProxy, qctl: QctlRunner) -> None:
    name, _ = big_tree
    subtree = name[:-1] + "site-3/#"
    started = time.monotonic()
    run = qctl("stats", "-u", proxy.url(), "-o", "json", name)
    elapsed = time.monotonic() - started
    assert run.rc == 0, run
    (row,) = run.json()
    assert (row["queue"], row["type"], row["depth"]) == (name, "retained", BIG)
    assert row["retained_bytes"] == sum(len(f"reading {i}") for i in range(BIG))
    assert proxy.count(SUBSCRIBE) == 1  # the whole tree in one subscription
    assert elapsed < 20, f"{elapsed:.1f}s"
    both = qctl("stats", "-u", proxy.url(), "-o", "json", name, subtree)
    assert [(r["queue"], r["depth"]) for r in both.json()] == [(name, BIG), (subtree, BIG // 10)]
    assert proxy.count(SUBSCRIBE) == 3


def test_peek_a_10000_topic_tree_in_broker_order(big_tree: tuple[str, list[str]], proxy: CountingProxy,
                                                   qctl: QctlRunner, mqtt_driver: MQTTDriver) -> None:
    name, topics = big_tree
    run = qctl("peek", "-u", proxy.url(), "-n", str(BIG), "-o", "jsonl", name)
    assert run.rc == 0, run
    rows = run.jsonl()
    assert [r["position"] for r in rows] == topics
    assert rows[1]["body"] == "reading 100" and rows[1]["properties"] == {"retain": True}
    assert proxy.count(SUBSCRIBE) == 1
    few = qctl("peek", "-u", mqtt_driver.url, "-n", "3", "-o", "json", name)
    assert [r["position"] for r in few.json()] == topics[:3]
    where = qctl("peek", "-u", mqtt_driver.url, "-o", "json", name, "--where", "ends_with(position, 't09999')")
    assert [r["body"] for r in where.json()] == ["reading 9999"], where
    assert len(mqtt_driver.contents(name)) == BIG  # peek changed nothing


def test_purge_a_10000_topic_tree_dry_run_first(mqtt_driver: MQTTDriver, proxy: CountingProxy, qctl: QctlRunner,
                                                tree: str) -> None:
    topics = seed_tree(mqtt_driver, tree, BIG)
    dry = qctl("purge", "-u", proxy.url(), "--dry-run", "-o", "json", tree)
    assert dry.rc == 0 and dry.json() == {"queue": tree, "purged": BIG, "backup": None, "dry_run": True}, dry
    assert len(mqtt_driver.contents(tree)) == BIG  # the dry run changed nothing
    started = time.monotonic()
    run = qctl("purge", "-u", proxy.url(), "--yes", "-o", "json", tree)
    elapsed = time.monotonic() - started
    assert run.rc == 0 and run.json() == {"queue": tree, "purged": BIG, "backup": None}, run
    assert mqtt_driver.contents(tree) == []
    assert proxy.count(SUBSCRIBE) == 2  # one scan for the dry run, one for the purge (its depth scan, reused)
    assert elapsed < 30, f"{elapsed:.1f}s"
    assert len(topics) == BIG


def rich(index: int) -> tuple[bytes, Properties]:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = [("tenant", "acme"), ("trace", f"t-{index}"), ("tenant", "second")]
    properties.ContentType = "application/json"
    properties.CorrelationData = b"\x00\x01\xff" + bytes([index])
    properties.ResponseTopic = f"replies/{index}"
    properties.MessageExpiryInterval = 3600
    properties.PayloadFormatIndicator = 1
    return json.dumps({"n": index}).encode(), properties


def test_backup_and_restore_round_trip_with_properties(mqtt_driver: MQTTDriver, qctl: QctlRunner, tree: str,
                                                       tmp_path: Path) -> None:
    base = mqtt_driver.base(tree)
    client = mqtt_driver.client
    sent = {}
    for index in range(4):
        body, properties = rich(index)
        sent[f"{base}/dev/{index}"] = body
        client.wait([client.publish(f"{base}/dev/{index}", body, retain=True, properties=properties)])
    client.wait([client.publish(f"{base}/raw", b"\xff\xfe binary", retain=True)])
    backup = tmp_path / "tree.jsonl"
    run = qctl("purge", "-u", mqtt_driver.url, "--yes", "--backup", str(backup), "-o", "json", tree)
    assert run.rc == 0 and run.json()["purged"] == 5, run
    assert mqtt_driver.contents(tree) == []
    lines = [json.loads(line) for line in backup.read_text().splitlines()[1:]]
    first = lines[0]
    assert first["position"] == f"{base}/dev/0" and first["header_pairs"] == [
        ["tenant", "acme"], ["trace", "t-0"], ["tenant", "second"]]
    assert first["properties"]["retain"] is True and first["properties"]["content_type"] == "application/json"
    assert first["properties"]["correlation_data"] == {"$base64": "AAH/AA=="}
    restored = qctl("restore", str(backup), "--to", tree, "-u", mqtt_driver.url, "-o", "json")
    assert restored.rc == 0 and restored.json()["restored"] == 5, restored
    got = {m.position: m for m in mqtt_driver.messages(tree)}
    assert set(got) == {*sent, f"{base}/raw"}
    assert got[f"{base}/raw"].body == b"\xff\xfe binary"
    for topic, body in sent.items():
        message = got[topic]
        index = int(topic.rsplit("/", 1)[1])
        assert message.body == body and message.properties["retain"] is True
        assert list(message.pairs()) == [("tenant", "acme"), ("trace", f"t-{index}"), ("tenant", "second")]
        assert message.properties["content_type"] == "application/json"
        assert message.properties["response_topic"] == f"replies/{index}"
        assert message.properties["payload_format_indicator"] == 1
        assert message.properties["correlation_data"] == {"$base64": "AAH/" + ["AA==", "AQ==", "Ag==", "Aw=="][index]}
        assert 3500 < message.properties["message_expiry_interval"] <= 3600  # the time left travels


def test_restore_and_move_into_another_tree(mqtt_driver: MQTTDriver, qctl: QctlRunner, tree: str,
                                             tmp_path: Path) -> None:
    other = mqtt_driver.unique("moved")
    base, other_base = mqtt_driver.base(tree), mqtt_driver.base(other)
    client = mqtt_driver.client
    body, properties = rich(1)
    client.wait([client.publish(f"{base}/a/b", body, retain=True, properties=properties),
                 client.publish(f"{base}/c", b"plain", retain=True)])
    backup = tmp_path / "copy.jsonl"
    assert qctl("backup", tree, str(backup), "-u", mqtt_driver.url).rc == 0
    try:
        restored = qctl("restore", str(backup), "--to", other, "-u", mqtt_driver.url, "-o", "json")
        assert restored.rc == 0 and restored.json()["restored"] == 2, restored
        assert [m.position for m in mqtt_driver.messages(other)] == [f"{other_base}/a/b", f"{other_base}/c"]
        mqtt_driver.delete(other)
        moved = qctl("move", tree, other, "-u", mqtt_driver.url, "-o", "json")
        assert moved.rc == 0 and moved.json()["moved"] == 2, moved
        assert mqtt_driver.contents(tree) == []
        got = mqtt_driver.messages(other)
        assert [(m.position, m.body) for m in got] == [(f"{other_base}/a/b", body), (f"{other_base}/c", b"plain")]
        assert got[0].properties["response_topic"] == "replies/1" and got[0].headers["trace"] == "t-1"
        into_topic = qctl("restore", str(backup), "--to", "+/nowhere", "-u", mqtt_driver.url)
        assert into_topic.rc == 2 and "not one under" in into_topic.err, into_topic
    finally:
        mqtt_driver.delete(other)


def test_a_topic_changed_or_cleared_after_reading_is_left_alone(mqtt_driver: MQTTDriver, tree: str) -> None:
    """The reader settles only what it read: another client's new value survives a purge in progress."""
    from qctl.adapters.mqtt.adapter import MQTTAdapter
    from qctl.options import ConnectOptions
    from qctl.primitives import ReadMode
    from qctl.urls import parse

    base = mqtt_driver.base(tree)
    client = mqtt_driver.client
    client.wait([client.publish(f"{base}/{i}", f"old {i}".encode(), retain=True) for i in range(4)])
    with MQTTAdapter(ConnectOptions(url=parse(mqtt_driver.url), timeout=10)) as adapter:
        reader = adapter.reader(tree, ReadMode.DELETE)
        client.wait([client.publish(f"{base}/0", b"changed before reading", retain=True)])
        time.sleep(0.3)
        taken = reader.read(10)
        assert [item.message.body for item in taken] == [b"changed before reading", b"old 1", b"old 2", b"old 3"]
        client.wait([client.publish(f"{base}/1", b"new value", retain=True), client.publish(f"{base}/2", b"",
                                                                                             retain=True)])
        time.sleep(0.3)
        assert reader.settle(taken) == [True, False, False, True]
        reader.close()
        assert any("replaced by another client" in line for line in adapter.notices), adapter.notices
    assert [(m.position, m.body) for m in mqtt_driver.messages(tree)] == [(f"{base}/1", b"new value")]


def test_mqtt_3_1_1_reads_and_purges_without_properties(mqtt_driver: MQTTDriver, qctl: QctlRunner, tree: str) -> None:
    base = mqtt_driver.base(tree)
    client = mqtt_driver.client
    body, properties = rich(2)
    client.wait([client.publish(f"{base}/x", body, retain=True, properties=properties)])
    url = mqtt_driver.url + "/?protocol=3.1.1"
    rows = qctl("peek", "-u", url, "-o", "json", tree).json()
    assert [(r["position"], r["body"], r["headers"], r["properties"]) for r in rows] == [
        (f"{base}/x", body.decode(), {}, {"retain": True})]
    run = qctl("purge", "-u", url, "--yes", "-o", "json", tree)
    assert run.rc == 0 and run.json()["purged"] == 1, run
    assert mqtt_driver.contents(tree) == []


def test_a_broker_that_refuses_mqtt_5_gets_3_1_1(mqtt_driver: MQTTDriver, mqtt_url: str, qctl: QctlRunner,
                                                 tree: str) -> None:
    from qctl.urls import parse

    base = mqtt_driver.base(tree)
    mqtt_driver.client.wait([mqtt_driver.client.publish(f"{base}/x", b"old broker", retain=True)])
    url = parse(mqtt_url)
    with RefusesMQTT5(url.host, url.port or 1883) as old:
        run = qctl("peek", "-u", old.url(), "-o", "json", tree)
        assert run.rc == 0 and [(r["body"], r["properties"]) for r in run.json()] == [
            ("old broker", {"retain": True})], run
        assert old.levels == [5, 4]  # asked for MQTT 5, was refused, came back with 3.1.1
        pinned = qctl("peek", "-u", old.url() + "/?protocol=5", tree)
        assert pinned.rc == 3 and "does not speak MQTT 5" in pinned.err, pinned


def test_filters_are_checked_before_anything_is_sent(mqtt_driver: MQTTDriver, qctl: QctlRunner) -> None:
    for bad in ("a/#/b", "a+/b", "a/b#", ""):
        run = qctl("peek", "-u", mqtt_driver.url, bad)
        assert run.rc == 2 and "topic filter" in run.err, run
    system = qctl("purge", "-u", mqtt_driver.url, "--yes", "$SYS/#")
    assert system.rc == 2 and "belong to the broker" in system.err, system
    with_path = qctl("peek", "-u", mqtt_driver.url + "/sensors", "a/#")
    assert with_path.rc == 2 and "no path" in with_path.err, with_path


def test_redrive_exits_2_with_one_line(mqtt_driver: MQTTDriver, qctl: QctlRunner, tree: str) -> None:
    run = qctl("redrive", "-u", mqtt_driver.url, tree)
    assert run.rc == 2, run
    assert run.err.strip() == ("qctl: error: MQTT has no dead letters, so there is nothing to redrive (retained "
                               "messages move with qctl move; offline sessions go with purge --session)")


def test_a_subscriber_sees_the_purge_as_clears(mqtt_driver: MQTTDriver, qctl: QctlRunner, tree: str) -> None:
    """What a purge looks like to a live subscriber: one empty retained-flag-less message per topic, nothing else."""
    base = mqtt_driver.base(tree)
    mqtt_driver.client.wait([mqtt_driver.client.publish(f"{base}/{i}", b"v", retain=True) for i in range(3)])
    watcher = Client(mqtt_driver.url)
    try:
        watcher.subscribe(tree)
        watcher.take(3, timeout=5)  # the retained ones, at subscribe
        assert qctl("purge", "-u", mqtt_driver.url, "--yes", tree).rc == 0
        seen = watcher.take(3, timeout=5)
        assert sorted((m.topic, bytes(m.payload)) for m in seen) == [(f"{base}/{i}", b"") for i in range(3)]
    finally:
        watcher.close()


def test_a_retained_message_is_never_replaced_by_restore_or_move(mqtt_driver: MQTTDriver, qctl: QctlRunner,
                                                                 tree: str, tmp_path: Path) -> None:
    """A topic holds one retained message: publishing another there would lose the one it holds.  Restore
    refuses the line (exit 2, nothing published), move leaves the message in its source (exit 6); the same
    payload again loses nothing and goes through."""
    other = mqtt_driver.unique("held")
    base, other_base = mqtt_driver.base(tree), mqtt_driver.base(other)
    client = mqtt_driver.client
    client.wait([client.publish(f"{base}/a", b"new a", retain=True),
                 client.publish(f"{base}/b", b"same b", retain=True)])
    client.wait([client.publish(f"{other_base}/a", b"old a", retain=True),
                 client.publish(f"{other_base}/b", b"same b", retain=True)])
    backup = tmp_path / "tree.jsonl"
    try:
        assert qctl("backup", tree, str(backup), "-u", mqtt_driver.url).rc == 0
        restored = qctl("restore", str(backup), "--to", other, "-u", mqtt_driver.url)
        assert restored.rc == 2 and "line 2" in restored.err and "already holds a retained message" in restored.err, \
            restored
        moved = qctl("move", tree, other, "-u", mqtt_driver.url, "-o", "json")
        assert moved.rc == 6 and (moved.json()["moved"], moved.json()["failed"]) == (1, 1), moved
        assert {m.position: m.body for m in mqtt_driver.messages(other)} == {
            f"{other_base}/a": b"old a", f"{other_base}/b": b"same b"}  # nothing replaced
        assert mqtt_driver.contents(tree) == [b"new a"]  # the one that could not go stays
    finally:
        mqtt_driver.delete(other)
