"""The Taker's consumers on a real broker: a full window's consumer stays up while it holds its messages.

RabbitMQ 3.10 quorum queues give back the messages of a lost node's consumer only if that consumer is
up; one cancelled while holding them keeps them checked out until the queue's leader changes (the
cluster test kills a quorum leader mid-redrive). So a consumer that got all it asked for is left up,
its credit spent, and cancelled in the same write as the ack that settles its messages.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.consume import Taker
from qctl.options import ConnectOptions
from qctl.urls import parse
from tests.rabbitmq.driver import RabbitMQDriver


@pytest.fixture()
def session(rq: RabbitMQDriver) -> Iterator[Session]:
    session = Session(ConnectOptions(url=parse(rq.url)))
    yield session
    session.close()


@pytest.mark.parametrize("kind", ["classic", "quorum"])
def test_a_full_window_stays_up_holding_its_messages_until_its_ack(rq: RabbitMQDriver, names: Any,
                                                                   session: Session, kind: str) -> None:
    queue = names(f"taker-{kind}")
    rq.declare(queue, **{"x-queue-type": kind})
    rq.publish(queue, [f"t{i}".encode() for i in range(10)])
    rq.wait_depth(queue, 10)
    taker = Taker(session, queue)
    first = taker.take(4)
    second = taker.take(4)
    assert [d.body for d in first + second] == [f"t{i}".encode() for i in range(8)]
    assert taker.holding == 2
    session.poll_now()
    count = session.passive(queue)
    assert (count.ready, count.consumers) == (2, 2)  # two consumers up, credit spent: nothing more delivered
    taker.ack(first[-1].tag, multiple=True)  # cancels the first window's consumer before the ack
    assert taker.holding == 1
    session.pump(lambda: False, 0.3)
    assert session.passive(queue).ready == 2  # the credit the ack gave went to no consumer
    rest = taker.take(10)  # runs dry: its consumer is cancelled at once
    assert [d.body for d in rest] == [b"t8", b"t9"] and taker.dry
    taker.ack(second[1].tag, multiple=False)  # one message of the second window: its consumer goes too
    assert taker.holding == 0
    if kind == "classic":  # (a quorum queue counts a cancelled consumer until its messages are settled)
        _wait(lambda: session.passive(queue).consumers == 0, session)
    taker.return_all()  # the unacked ones go back, in order
    assert rq.contents(queue) == [b"t4", b"t6", b"t7", b"t8", b"t9"]


def _wait(check: Any, session: Session, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        session.pump(lambda: False, 0.05)


def test_a_peek_in_several_windows_leaves_a_quorum_queue_in_order(rq: RabbitMQDriver, rmq: Any, names: Any) -> None:
    """Windows of 1,000, 2,000 and 4,000: with pika's random consumer tags they came back shuffled."""
    queue = names("taker-order")
    rq.declare(queue, **{"x-queue-type": "quorum"})
    bodies = [f"o{i:05d}".encode() for i in range(7000)]
    rq.publish(queue, bodies)
    rq.wait_depth(queue, len(bodies))
    run = rmq("peek", queue, "-n", str(len(bodies)), "-o", "jsonl")
    assert run.rc == 0 and len(run.jsonl()) == len(bodies), run
    assert rq.contents(queue) == bodies
