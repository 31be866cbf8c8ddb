"""Seed the harness brokers with sample queues and real dead letters, for the demo.

Run with the project's venv (it needs redis, pika and kafka-python):
    .venv/bin/python tools/seed.py
Idempotent: each run replaces the demo queues with the same contents.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ENV_FILE = Path(__file__).resolve().parents[1] / ".brokers" / "env"


def env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    return dict(pairs)


def order(i: int) -> bytes:
    return json.dumps({"order_id": 1000 + i, "amount": round(9.99 * (i % 7 + 1), 2)}).encode()


def seed_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.delete("demo:orders", "demo:orders:dlq", "demo:events", "demo:retry")
    # Celery/Sidekiq style: producers LPUSH, consumers BRPOP from the right.
    client.lpush("demo:orders", *[order(i) for i in range(25)])
    client.lpush("demo:orders:dlq", *[order(i) for i in range(100, 106)])
    for i in range(12):
        client.xadd("demo:events", {"body": order(i), "type": "order.created"})
    client.xgroup_create("demo:events", "billing", id="0")
    client.xreadgroup("billing", "worker-1", {"demo:events": ">"}, count=4)  # 4 pending, lag 8
    client.zadd("demo:retry", {order(i): time.time() + 60 * i for i in range(3)})


def seed_rabbitmq(url: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for queue in ("demo.orders", "demo.orders.dlq"):
        channel.queue_delete(queue)
    channel.exchange_declare("demo.dlx", "direct", durable=True)
    channel.queue_declare("demo.orders.dlq", durable=True)
    channel.queue_bind("demo.orders.dlq", "demo.dlx", routing_key="demo.orders")
    channel.queue_declare("demo.orders", durable=True, arguments={"x-dead-letter-exchange": "demo.dlx"})
    persistent = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    for i in range(20):
        channel.basic_publish("", "demo.orders", order(i), persistent)
    # A consumer rejects five orders, so the broker itself dead-letters them (real x-death headers).
    for _ in range(5):
        method, _props, _body = channel.basic_get("demo.orders")
        channel.basic_reject(method.delivery_tag, requeue=False)
    connection.close()


def seed_kafka(url: str) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.structs import OffsetAndMetadata

    bootstrap = urlsplit(url).netloc
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    existing = set(admin.list_topics())
    stale = [t for t in ("demo.orders", "demo.orders.DLT") if t in existing]
    if stale:
        admin.delete_topics(stale)
        time.sleep(2)
    admin.create_topics([NewTopic("demo.orders", 3, 1), NewTopic("demo.orders.DLT", 1, 1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(30):
        producer.send("demo.orders", key=str(i % 5).encode(), value=order(i))
    for i in range(4):  # Spring Kafka's DeadLetterPublishingRecoverer headers
        producer.send("demo.orders.DLT", key=str(i).encode(), value=order(200 + i), headers=[
            ("kafka_dlt-original-topic", b"demo.orders"),
            ("kafka_dlt-original-partition", b"\x00\x00\x00\x00"),
            ("kafka_dlt-exception-message", b"payment service timed out"),
        ])
    producer.flush()
    # A consumer group that committed part of the topic: lag without active members.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id="demo-billing", enable_auto_commit=False)
    partitions = [TopicPartition("demo.orders", p) for p in range(3)]
    consumer.commit({tp: OffsetAndMetadata(2, "", -1) for tp in partitions})
    consumer.close()
    admin.close()


def main() -> int:
    urls = env()
    seed_redis(urls["QCTL_TEST_REDIS_URL"])
    seed_rabbitmq(urls["QCTL_TEST_AMQP_URL"])
    seed_kafka(urls["QCTL_TEST_KAFKA_URL"])
    print("seeded demo:* queues on redis, demo.* on rabbitmq and kafka", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
