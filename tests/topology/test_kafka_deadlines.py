"""A Kafka broker that stops answering ends a pass within --timeout, and undelivered records are never settled.

test_restarts.py stops the real broker; these stand librdkafka's clients in with fakes that never answer,
so each wait is checked by itself and in a second: the group commit (the admin client's
AlterConsumerGroupOffsets, whose future never completes here), and the wait for delivery reports (a
producer whose flush reports nothing, or reports only that the broker never answered).
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

import pytest

from qctl.adapters.kafka import rdkafka
from qctl.adapters.kafka.cluster import Bounds
from qctl.adapters.kafka.destination import KafkaDestination
from qctl.adapters.kafka.reader import COMMIT_EVERY, KafkaReader
from qctl.errors import BrokerUnavailable
from qctl.models import Message
from qctl.options import ConnectOptions
from qctl.primitives import ReadMode, Taken
from qctl.urls import parse

TIMEOUT = 0.5


class SilentAdmin:
    """An admin client whose commits are never answered (librdkafka's own request_timeout ignored too)."""

    def __init__(self) -> None:
        self.requests = 0

    def alter_consumer_group_offsets(self, requests: list[Any], request_timeout: float) -> dict[str, Future[Any]]:
        self.requests += 1
        return {requests[0].group_id: Future()}


class FakeCluster:
    def __init__(self, admin: Any) -> None:
        self.admin = admin

    def topic_partitions(self, topic: str) -> list[Any]:
        return [rdkafka.library().TopicPartition(topic, 0)]

    def bounds(self, tps: list[Any]) -> dict[Any, Bounds]:
        return {tp: Bounds(0, 10) for tp in tps}

    def committed(self, groups: dict[str, Any]) -> dict[str, dict[Any, int]]:
        return {}


def options() -> ConnectOptions:
    return ConnectOptions(url=parse("kafka://127.0.0.1:9"), timeout=TIMEOUT)


def message() -> Message:
    return Message(queue="t", position="0", body=b"x")


def test_a_group_commit_nobody_answers_is_exit_3_within_the_timeout() -> None:
    admin = SilentAdmin()
    reader = KafkaReader(FakeCluster(admin), options(), "t", ReadMode.MOVE)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="cannot commit progress for group 'qctl-redrive'"):
        reader.settle([Taken(message(), (0, offset)) for offset in range(COMMIT_EVERY)])
    assert time.monotonic() - started < TIMEOUT + 1.0 + 2.0  # request_timeout, the future's backstop, slack
    assert reader.starts == {0: 0}  # nothing counted as committed
    reader.close()  # the commit failed: close() does not wait on the same broker again
    assert admin.requests == 1


class SilentProducer:
    """A producer whose records get no delivery report, or (``report``) one with this error each."""

    def __init__(self, report: Any = None) -> None:
        self.report = report
        self.callbacks: list[Any] = []

    def produce(self, topic: str, *, value: bytes, key: Any, headers: Any, on_delivery: Any) -> None:
        self.callbacks.append(on_delivery)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        if self.report is not None:
            for callback in self.callbacks:
                callback(self.report, None)
            self.callbacks = []
        time.sleep(timeout)
        return len(self.callbacks)


def test_records_without_a_delivery_report_are_exit_3_within_the_timeout() -> None:
    destination = KafkaDestination("t", lambda: producer, 1_000_000, TIMEOUT)
    producer = SilentProducer()
    ticket = destination.send([message(), message()])
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"2 record\(s\) not acknowledged: no delivery report"):
        destination.confirmed(ticket, wait=True)
    assert time.monotonic() - started < TIMEOUT + 2.0  # not librdkafka's 30 s message timeout


def test_a_record_the_broker_never_answered_is_not_a_failure_that_could_be_committed_past() -> None:
    """A Kafka source's group moves past a failed (kept) record; a timed-out one must end the pass instead."""
    ck = rdkafka.library()
    producer = SilentProducer(report=ck.KafkaError(ck.KafkaError._MSG_TIMED_OUT))
    destination = KafkaDestination("t", lambda: producer, 1_000_000, TIMEOUT)
    ticket = destination.send([message()])
    with pytest.raises(BrokerUnavailable, match=r"1 record\(s\) not acknowledged by the broker of 't'"):
        destination.confirmed(ticket, wait=True)


def test_a_record_the_broker_refused_is_still_a_failure() -> None:
    ck = rdkafka.library()
    producer = SilentProducer(report=ck.KafkaError(ck.KafkaError.MSG_SIZE_TOO_LARGE))
    destination = KafkaDestination("t", lambda: producer, 1_000_000, TIMEOUT)
    ticket = destination.send([message()])
    assert destination.confirmed(ticket, wait=True) == [False]
