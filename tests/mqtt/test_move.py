"""Across brokers: ``move`` from Redis and RabbitMQ into an MQTT topic, and RabbitMQ's MQTT session queues."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from qctl.models import Message
from qctl.testing.runner import QctlRunner
from tests.mqtt.driver import Client, MQTTDriver


@pytest.fixture()
def subscriber(mqtt_driver: MQTTDriver) -> Iterator[tuple[Client, str]]:
    """A live QoS 1 subscriber to a fresh topic: what a move publishes reaches it."""
    topic = f"qctl-test/inbox-{uuid.uuid4().hex[:10]}"
    client = Client(mqtt_driver.url)
    client.subscribe(topic, qos=1)
    yield client, topic
    client.close()


def user_properties(message: Any) -> list[tuple[str, str]]:
    return list(getattr(message.properties, "UserProperty", None) or [])


def test_move_a_redis_stream_into_an_mqtt_topic(mqtt_driver: MQTTDriver, redis_url: str, qctl: QctlRunner,
                                                subscriber: tuple[Client, str]) -> None:
    client, topic = subscriber
    r = redis.Redis.from_url(redis_url)
    key = f"qctl-test:mqtt-move:{uuid.uuid4().hex[:8]}"
    for i in range(4):
        r.xadd(key, {b"body": f"order {i}".encode(), b"tenant": b"acme", b"attempt": str(i).encode()})
    try:
        run = qctl("move", f"{redis_url}#{key}", f"{mqtt_driver.url}#{topic}", "-o", "json")
        assert run.rc == 0 and run.json()["moved"] == 4, run
        got = client.take(4)
        assert [bytes(m.payload) for m in got] == [f"order {i}".encode() for i in range(4)]  # in order
        assert [user_properties(m) for m in got] == [[("tenant", "acme"), ("attempt", str(i))] for i in range(4)]
        assert all(not m.retain and m.qos == 1 for m in got)  # a live publish, not a retained one
        assert r.xlen(key) == 0  # settled only after the broker acknowledged
    finally:
        r.delete(key)


def test_a_move_nobody_hears_leaves_everything_in_the_source(mqtt_driver: MQTTDriver, redis_url: str,
                                                             qctl: QctlRunner) -> None:
    r = redis.Redis.from_url(redis_url)
    key = f"qctl-test:mqtt-unheard:{uuid.uuid4().hex[:8]}"
    r.lpush(key, b"a", b"b", b"c")
    try:
        run = qctl("move", f"{redis_url}#{key}", f"{mqtt_driver.url}#qctl-test/nobody-{uuid.uuid4().hex[:8]}",
                   "-o", "json")
        assert run.rc == 6 and run.json()["moved"] == 0 and run.json()["failed"] == 3, run
        assert "matched no subscription" in run.err
        assert r.lrange(key, 0, -1) == [b"c", b"b", b"a"]  # nothing lost: MQTT would have dropped them
    finally:
        r.delete(key)


def test_move_from_rabbitmq_keeps_headers_and_properties(mqtt_driver: MQTTDriver, rabbitmq_driver: Any,
                                                         qctl: QctlRunner, subscriber: tuple[Client, str]) -> None:
    client, topic = subscriber
    queue = rabbitmq_driver.unique("to-mqtt")
    pairs = (("tenant", "acme"), ("retries", 3))
    rabbitmq_driver.make_queue(queue, [
        Message(queue=queue, position="", body=f"job {i}".encode(), headers=dict(pairs), header_pairs=pairs,
                properties={"content_type": "application/json", "correlation_id": f"c-{i}",
                            "message_id": f"m-{i}"}) for i in range(3)])
    try:
        run = qctl("move", f"{rabbitmq_driver.url}#{queue}", f"{mqtt_driver.url}#{topic}", "-o", "json")
        assert run.rc == 0 and run.json()["moved"] == 3, run
        assert "message_id" in run.err  # the property MQTT has no place for, told in a notice
        got = client.take(3)
        assert [bytes(m.payload) for m in got] == [b"job 0", b"job 1", b"job 2"]
        for i, message in enumerate(got):
            assert user_properties(message) == [("tenant", "acme"), ("retries", "3")]
            assert message.properties.ContentType == "application/json"
            assert message.properties.CorrelationData == f"c-{i}".encode()
        assert rabbitmq_driver.contents(queue) == []
    finally:
        rabbitmq_driver.delete(queue)


def test_rabbitmq_rows_name_the_mqtt_client_of_a_session_queue(rabbitmq_driver: Any, qctl: QctlRunner) -> None:
    """RabbitMQ's MQTT plugin keeps a session as mqtt-subscription-<client id>qos1 (declared here as the
    plugin would: the harness's node runs without the plugin)."""
    client_id = f"sensor {uuid.uuid4().hex[:6]}"
    session, plain = f"mqtt-subscription-{client_id}qos1", rabbitmq_driver.unique("plain")
    rabbitmq_driver.make_queue(session, [Message(queue=session, position="", body=b"queued")])
    rabbitmq_driver.make_queue(plain, [])
    try:
        rows = {r["queue"]: r for r in qctl("stats", "-u", rabbitmq_driver.url, "-o", "json", session, plain).json()}
        assert (rows[session]["mqtt_client"], rows[session]["depth"]) == (client_id, 1)
        assert rows[plain]["mqtt_client"] is None
        listed = qctl("stats", "-u", rabbitmq_driver.url, "-o", "json", "mqtt-subscription-*").json()
        assert {r["queue"]: r["mqtt_client"] for r in listed}[session] == client_id
    finally:
        rabbitmq_driver.delete(session)
        rabbitmq_driver.delete(plain)
