"""Kafka fixtures: the single-node driver, the 3-broker cluster, a live group member."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer

from tests.conftest import brokers_up
from tests.kafka.driver import KafkaDriver


@pytest.fixture(scope="session")
def kafka(kafka_driver: KafkaDriver) -> KafkaDriver:
    return kafka_driver


@pytest.fixture(scope="session")
def kafka_cluster() -> KafkaDriver:
    env = brokers_up("kafka-cluster")
    return KafkaDriver(env, url_key="QCTL_TEST_KAFKA_CLUSTER_URL")


MemberFactory = Callable[[str, str], None]


@pytest.fixture()
def live_member(kafka: KafkaDriver) -> Iterator[MemberFactory]:
    """Start a subscribed consumer (an active group member) that polls in a thread until the test ends."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    consumers: list[Any] = []

    def start(group: str, topic: str) -> None:
        joined = threading.Event()
        consumer = KafkaConsumer(topic, bootstrap_servers=kafka.bootstrap.split(","), group_id=group,
                                 enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=1000,
                                 auto_offset_reset="latest")
        consumers.append(consumer)

        def poll() -> None:
            while not stop.is_set():
                consumer.poll(timeout_ms=200)
                if consumer.assignment():
                    joined.set()

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        threads.append(thread)
        assert joined.wait(30), "the test consumer never joined its group"

    yield start
    stop.set()
    for thread in threads:
        thread.join(10)
    for consumer in consumers:
        consumer.close(autocommit=False)
