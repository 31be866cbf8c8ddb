"""stats against the real node: types, exact depth, dead-letter queues, errors."""

from __future__ import annotations

from typing import Any

from tests.conftest import QctlRunner
from tests.rabbitmq.driver import RabbitMQDriver


def test_types_depth_and_dead_letter_queue(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    classic, quorum, stream, dlq = names("c"), names("qq"), names("s"), names("c-dlq")
    rq.declare(dlq)
    rq.declare(classic, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    rq.declare(quorum, **{"x-queue-type": "quorum"})
    rq.declare(stream, **{"x-queue-type": "stream"})
    rq.publish(classic, [b"a", b"b", b"c"])
    rq.publish(dlq, [b"x"])
    run = rmq("stats", classic, quorum, stream, "-o", "json")
    assert run.rc == 0, run
    rows = {row["queue"]: row for row in run.json()}
    assert rows[classic]["type"] == "classic" and rows[classic]["depth"] == 3  # exact, not lagging
    assert rows[classic]["dead_letter_queue"] == dlq and rows[classic]["dead_letter_depth"] == 1
    assert rows[quorum]["type"] == "quorum" and rows[quorum]["dead_letter_queue"] is None
    assert rows[stream]["type"] == "stream"


def test_dead_letter_exchange_followed_through_bindings(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    source, parked = names("src"), names("parked")
    exchange = rq.unique("dlx")
    with rq.channel() as channel:
        channel.exchange_declare(exchange, "topic")
        channel.queue_declare(parked, durable=True)
        channel.queue_bind(parked, exchange, "dead.#")
        channel.queue_declare(source, durable=True, arguments={"x-dead-letter-exchange": exchange,
                                                                 "x-dead-letter-routing-key": "dead.orders"})
    try:
        run = rmq("stats", source, "-o", "json")
        assert run.rc == 0, run
        assert run.json()[0]["dead_letter_queue"] == parked
    finally:
        with rq.channel() as channel:
            channel.exchange_delete(exchange)


def test_glob_lists_through_management(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    prefix = rq.unique("glob")
    first, second = names(prefix + "-a"), names(prefix + "-b")
    rq.make_queue(first, [b"1"])
    rq.make_queue(second, [])
    run = rmq("stats", prefix + "*", "-o", "json")
    assert run.rc == 0, run
    assert sorted(row["queue"] for row in run.json()) == sorted([first, second])


def test_without_management_named_queues_work_over_amqp(rq: RabbitMQDriver, qctl: QctlRunner, names: Any) -> None:
    queue = names("noapi")
    rq.make_queue(queue, [b"1", b"2"])
    run = qctl("stats", "-u", rq.url, "--management-url", "http://127.0.0.1:1", queue, "-o", "json")
    assert run.rc == 0, run
    row = run.json()[0]
    assert (row["depth"], row["consumers"], row["in_flight"]) == (2, 0, None)
    listing = qctl("stats", "-u", rq.url, "--management-url", "http://127.0.0.1:1")
    assert listing.rc == 3 and "management API" in listing.err and "--management-url" in listing.err


def test_wrong_password_exits_3_without_showing_it(rq: RabbitMQDriver, qctl: QctlRunner) -> None:
    run = qctl("stats", "-u", rq.bad_password_url(), "--management-url", rq.management_url, "anything")
    assert run.rc == 3, run
    assert "wrong-password" not in run.err + run.out


def test_unreachable_exits_3(rq: RabbitMQDriver, qctl: QctlRunner) -> None:
    run = qctl("stats", "-u", rq.unreachable_url(), "--management-url", "http://127.0.0.1:1", "q", "--timeout", "2")
    assert run.rc == 3, run


def test_missing_queue_exits_4(rmq: QctlRunner, rq: RabbitMQDriver) -> None:
    for command in (["stats"], ["peek"], ["purge", "--yes"], ["redrive"]):
        run = rmq(command[0], *command[1:], rq.unique("missing"))
        assert run.rc == 4, run
