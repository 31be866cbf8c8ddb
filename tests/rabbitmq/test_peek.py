"""peek: order kept, streams by offset, x-death, and the quorum delivery-limit guard."""

from __future__ import annotations

import re
from typing import Any

import pika

from qctl.testing.driver import plain
from tests.conftest import QctlRunner
from tests.rabbitmq.driver import RabbitMQDriver

BODIES = [f"m{i}".encode() for i in range(20)]


def test_classic_peek_keeps_order_and_properties(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    queue = names("peek")
    rq.declare(queue)
    props = pika.BasicProperties(content_type="application/json", message_id="id-1", priority=3,
                                 headers={"tenant": "acme"}, delivery_mode=2, timestamp=1700000000)
    rq.publish(queue, BODIES, props)
    run = rmq("peek", queue, "-n", "5", "-o", "jsonl")
    assert run.rc == 0, run
    rows = run.jsonl()
    assert [row["body"] for row in rows] == ["m0", "m1", "m2", "m3", "m4"]
    assert [row["position"] for row in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0]["properties"]["content_type"] == "application/json" and rows[0]["properties"]["priority"] == 3
    assert rows[0]["headers"] == {"tenant": "acme"}
    assert rows[0]["timestamp"] == "2023-11-14T22:13:20Z"
    assert rq.contents(queue) == BODIES  # nothing removed, order unchanged
    again = rmq("peek", queue, "-n", "2", "-o", "jsonl").jsonl()
    assert [row["redelivered"] for row in again] == [True, True]


def test_quorum_peek_keeps_order_and_reports_delivery_count(rq: RabbitMQDriver, rmq: QctlRunner,
                                                           names: Any) -> None:
    queue = names("qpeek")
    rq.declare(queue, **{"x-queue-type": "quorum"})
    rq.publish(queue, BODIES)
    first = rmq("peek", queue, "-n", "3", "-o", "jsonl").jsonl()
    second = rmq("peek", queue, "-n", "3", "-o", "jsonl").jsonl()
    assert [row["delivery_count"] for row in first] == [0, 0, 0]
    assert [row["delivery_count"] for row in second] == [1, 1, 1]
    assert rq.contents(queue) == BODIES


def test_quorum_with_delivery_limit_is_never_pushed_into_its_dlq(rq: RabbitMQDriver, rmq: QctlRunner,
                                                                names: Any) -> None:
    queue, dlq = names("limited"), names("limited-dlq")
    rq.declare(dlq)
    rq.declare(queue, **{"x-queue-type": "quorum", "x-delivery-limit": 1, "x-dead-letter-exchange": "",
                         "x-dead-letter-routing-key": dlq})
    rq.publish(queue, BODIES[:5])
    for _ in range(4):
        run = rmq("peek", queue, "-n", "5")
        assert run.rc == 2, run
        assert "delivery limit" in run.err
    assert rq.depth(dlq) == 0
    with rq.channel() as channel:  # taken with auto-ack: never returned, so the count stays 0
        bodies = [channel.basic_get(queue, auto_ack=True) for _ in range(5)]
    assert [body for _m, _p, body in bodies] == BODIES[:5]
    assert all(int((p.headers or {}).get("x-delivery-count", 0)) == 0 for _m, p, _b in bodies)


def test_stream_peek_by_offset_has_no_side_effects(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    stream = names("stream")
    rq.declare(stream, **{"x-queue-type": "stream"})
    rq.publish(stream, BODIES)
    run = rmq("peek", stream, "-n", "3", "--from", "5", "-o", "jsonl")
    assert run.rc == 0, run
    assert [(row["position"], row["body"]) for row in run.jsonl()] == [("5", "m5"), ("6", "m6"), ("7", "m7")]
    first = rmq("peek", stream, "-n", "2", "-o", "jsonl").jsonl()
    assert [row["body"] for row in first] == ["m0", "m1"]


def test_x_death_becomes_dead_letter(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    source, dlq = names("src"), names("src-dlq")
    rq.make_dead_letters(source, dlq, [b"bad"])
    row = rmq("peek", dlq, "-o", "jsonl").jsonl()[0]
    assert row["dead_letter"]["reason"] == "rejected"
    assert row["dead_letter"]["source_queue"] == source
    assert row["dead_letter"]["count"] == 1 and row["dead_letter"]["time"]


def test_peek_says_on_stderr_that_it_marked_messages_redelivered(qctl: QctlRunner, rabbitmq_driver: Any,
                                                                 names: Any) -> None:
    name = names("note")
    rabbitmq_driver.make_queue(name, plain([b"a", b"b"]))
    run = qctl("peek", "-u", rabbitmq_driver.url, "-o", "jsonl", name)
    assert run.rc == 0, run
    assert "marks them redelivered" in run.err
    assert [row["body"] for row in run.jsonl()] == ["a", "b"]
    quiet = qctl("peek", "-u", rabbitmq_driver.url, "-q", "-o", "jsonl", name)
    assert quiet.err == ""


NO_API = "http://127.0.0.1:1"


def _untouched_quorum(rq: RabbitMQDriver, queue: str, count: int) -> list[bytes]:
    """Take every message with auto-ack (never returned) and check none was ever delivered before."""
    with rq.channel() as channel:
        taken = [channel.basic_get(queue, auto_ack=True) for _ in range(count)]
    assert all(int((p.headers or {}).get("x-delivery-count", 0)) == 0 for _m, p, _b in taken)
    return [body for _m, _p, body in taken]


def test_quorum_peek_without_management_api_is_refused(rq: RabbitMQDriver, qctl: QctlRunner, names: Any) -> None:
    """Without the API qctl cannot read a delivery limit: it finds out over AMQP that the queue is a quorum
    queue (before taking anything) and refuses with exit 2, however often it is asked."""
    queue, dlq, plain = names("nolimit-q"), names("nolimit-q-dlq"), names("nolimit-plain")
    rq.declare(dlq)
    rq.declare(queue, **{"x-queue-type": "quorum", "x-delivery-limit": 1, "x-dead-letter-exchange": "",
                         "x-dead-letter-routing-key": dlq})
    rq.declare(plain, **{"x-queue-type": "quorum"})  # no limit today, but a policy could add one
    rq.publish(queue, BODIES[:5])
    rq.publish(plain, BODIES[:2])
    for _ in range(3):
        for name in (queue, plain):
            run = qctl("peek", "-u", rq.amqp_url, "--management-url", NO_API, name, "-n", "5")
            assert run.rc == 2, run
            assert "delivery limit" in run.err and "--management-url" in run.err
            assert "Traceback" not in run.err
    assert rq.depth(dlq) == 0 and rq.depth(queue) == 5
    assert _untouched_quorum(rq, queue, 5) == BODIES[:5]
    assert _untouched_quorum(rq, plain, 2) == BODIES[:2]


def test_classic_and_stream_peek_without_management_api(rq: RabbitMQDriver, qctl: QctlRunner, names: Any) -> None:
    classic, stream = names("noapi-c"), names("noapi-s")
    rq.declare(classic, **{"x-dead-letter-exchange": "", "x-max-length": 1000})
    rq.declare(stream, **{"x-queue-type": "stream"})
    rq.publish(classic, BODIES)
    rq.publish(stream, BODIES)
    run = qctl("peek", "-u", rq.amqp_url, "--management-url", NO_API, classic, "-n", "4", "-o", "jsonl")
    assert run.rc == 0, run
    assert [row["body"] for row in run.jsonl()] == ["m0", "m1", "m2", "m3"]
    assert rq.contents(classic) == BODIES  # nothing taken, order kept
    run = qctl("peek", "-u", rq.amqp_url, "--management-url", NO_API, stream, "-n", "3", "--from", "4",
               "-o", "jsonl")
    assert run.rc == 0, run
    assert [(row["position"], row["body"]) for row in run.jsonl()] == [("4", "m4"), ("5", "m5"), ("6", "m6")]


def test_delivery_limit_from_a_policy_just_applied_refuses(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    """The API's effective policy lags a new policy by seconds; qctl matches the policies itself."""
    queue = names("polimit")
    rq.declare(queue, **{"x-queue-type": "quorum"})
    rq.publish(queue, BODIES[:3])
    with rq.policy(queue, f"^{re.escape(queue)}$", {"delivery-limit": 2}, priority=50):
        run = rmq("peek", queue, "-n", "3")
        assert run.rc == 2, run
        assert "delivery limit of 2" in run.err
    assert _untouched_quorum(rq, queue, 3) == BODIES[:3]
