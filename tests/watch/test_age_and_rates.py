"""oldest_age and --fail-age-above on the real brokers, and the rates of ``stats --watch`` under real traffic."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pika
import pytest
import redis

from tests.conftest import QctlRunner
from tests.kafka.driver import KafkaDriver
from tests.rabbitmq.driver import RabbitMQDriver
from tests.watch import later, median, watch_frames

HOUR_MS = 3600 * 1000


@pytest.fixture()
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_redis_stream_age_from_its_first_entry_and_fail_age_above(qctl: QctlRunner, redis_url: str,
                                                                  r: redis.Redis) -> None:
    name = f"age-{uuid.uuid4().hex[:8]}"
    old = int(time.time() * 1000) - HOUR_MS
    r.xadd(name, {b"body": b"old"}, id=f"{old}-0")
    r.xadd(name, {b"body": b"new"})
    r.lpush(name + "-list", b"x")
    try:
        rows = {row["queue"]: row for row in qctl("stats", "-u", redis_url, "-o", "json", name, name + "-list").json()}
        assert 3590 < rows[name]["oldest_age"] < 3700 and rows[name + "-list"]["oldest_age"] is None
        assert qctl("stats", "-u", redis_url, name, "--fail-age-above", "7200").rc == 0
        crossed = qctl("stats", "-u", redis_url, name, "--fail-age-above", "1800")
        assert crossed.rc == 5 and "oldest message age" in crossed.err, crossed
        prom = qctl("stats", "-u", redis_url, name, "-o", "prom").out
        assert f'qctl_queue_oldest_age_seconds{{backend="redis",queue="{name}"}}' in prom
    finally:
        r.delete(name, name + "-list")


def test_kafka_age_from_the_first_retained_record_without_a_group(qctl: QctlRunner, kafka_driver: KafkaDriver) -> None:
    topic = kafka_driver.unique("age")
    kafka_driver.create_topic(topic, 2)
    old = int(time.time() * 1000) - 2 * HOUR_MS
    kafka_driver.producer.send(topic, value=b"old", partition=0, timestamp_ms=old)
    kafka_driver.producer.send(topic, value=b"new", partition=1)
    kafka_driver.producer.flush()
    groups_before = kafka_driver.groups()
    row = qctl("stats", "-u", kafka_driver.url, "-o", "json", topic).json()[0]
    assert 7100 < row["oldest_age"] < 7400
    assert qctl("stats", "-u", kafka_driver.url, topic, "--fail-age-above", "3600").rc == 5
    assert kafka_driver.groups() == groups_before  # reading the first records created no group


def test_watch_rates_from_counters_and_from_depth(redis_url: str, r: redis.Redis, clean_env: dict[str, str]) -> None:
    stream, backlog = f"rate-s-{uuid.uuid4().hex[:6]}", f"rate-l-{uuid.uuid4().hex[:6]}"
    r.lpush(backlog, *[b"x"] * 400)
    stop = threading.Event()

    def traffic() -> None:  # ~100/s into the stream; the list drains ~50/s
        client = redis.Redis.from_url(redis_url)
        while not stop.is_set():
            for _ in range(10):
                client.xadd(stream, {b"body": b"m"})
            for _ in range(5):
                client.rpop(backlog)
            time.sleep(0.1)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        frames = watch_frames(["stats", "-u", redis_url, "--watch", "1", "-o", "jsonl", stream, backlog], clean_env,
                              4.5)
    finally:
        stop.set()
        worker.join()
        r.delete(stream, backlog)
    later = [row for row in frames if row["in_rate"] is not None or row["out_rate"] is not None]
    assert later, frames
    assert all(row["in_rate"] is None and row["drain_eta"] is None for row in frames[:2])  # the first frame
    by_queue = {row["queue"]: row for row in later}
    assert 40 < float(by_queue[stream]["in_rate"]) < 200  # from entries-added
    assert 20 < float(by_queue[backlog]["out_rate"]) < 100 and by_queue[backlog]["in_rate"] == 0  # from depth
    assert by_queue[backlog]["drain_eta"] and float(by_queue[backlog]["drain_eta"]) > 0


def test_watch_in_prometheus_form_carries_the_rate_gauges(redis_url: str, r: redis.Redis,
                                                          clean_env: dict[str, str]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    name = f"rate-p-{uuid.uuid4().hex[:6]}"
    r.lpush(name, *[b"x"] * 10)
    proc = subprocess.Popen([sys.executable, "-m", "qctl", "stats", "-u", redis_url, "--watch", "1", "-o", "prom",
                             name], env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(2.5)
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    r.delete(name)
    frames = [frame for frame in out.split("# HELP qctl_queue_depth") if frame.strip()]
    assert len(frames) >= 2, out
    names = {family.name for family in text_string_to_metric_families("# HELP qctl_queue_depth" + frames[-1])}
    assert {"qctl_queue_in_rate", "qctl_queue_out_rate", "qctl_queue_depth"} <= names


def test_watch_rates_on_rabbitmq_from_its_message_stats(rabbitmq_driver: RabbitMQDriver,
                                                       clean_env: dict[str, str]) -> None:
    """In from the broker's ``publish`` counter, out from its first deliveries (``deliver_get - redeliver``).

    ``through`` is consumed as fast as it is fed: its depth stays near 0, so depth changes would show no flow at
    all.  ``backlog`` is drained by basic.get and fed by nothing."""
    rq = rabbitmq_driver
    through, backlog = rq.unique("rate-through"), rq.unique("rate-backlog")
    rq.declare(through)
    rq.declare(backlog)
    try:
        rq.publish(backlog, [b"x"] * 800)
        _until_published(rq, backlog, 800)  # the statistics have the backlog's publishes before the first frame
        stop = threading.Event()

        def traffic() -> None:  # ~100/s through `through`, ~50/s out of `backlog`
            publisher, consumer = pika.BlockingConnection(rq.params), pika.BlockingConnection(rq.params)
            sending, taking = publisher.channel(), consumer.channel()
            taking.basic_consume(through, lambda *_: None, auto_ack=True)
            while not stop.is_set():
                for _ in range(10):
                    sending.basic_publish("", through, b"m")
                for _ in range(5):
                    taking.basic_get(backlog, auto_ack=True)
                consumer.process_data_events(0)
                publisher.process_data_events(0)
                time.sleep(0.1)
            consumer.close()
            publisher.close()

        worker = threading.Thread(target=traffic, daemon=True)
        worker.start()
        try:
            frames = watch_frames(["stats", "-u", rq.url, "--watch", "1", "-o", "jsonl", through, backlog],
                                  clean_env, 8)
        finally:
            stop.set()
            worker.join(30)
    finally:
        rq.delete(through)
        rq.delete(backlog)
    flowing, draining = later(frames, through), later(frames, backlog)
    assert len(flowing) >= 4, frames
    assert max(row["depth"] for row in flowing) < 50  # depth alone would say nothing moves
    assert 30 < median(flowing, "in_rate") < 250, flowing
    assert 30 < median(flowing, "out_rate") < 250, flowing
    assert all(row["in_rate"] == 0 for row in draining), draining  # its publish counter stood still
    assert 15 < median(draining, "out_rate") < 120, draining
    assert median(draining, "drain_eta") > 0


def _until_published(rq: RabbitMQDriver, queue: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = rq.api("GET", f"/api/queues/%2F/{queue}?columns=message_stats.publish") or {}
        if (row.get("message_stats") or {}).get("publish") == count:
            return
        time.sleep(0.2)
    raise AssertionError(f"the management API never counted {count} publishes into {queue}")
