"""stats against the real node: types, exact depth, dead-letter queues, errors."""

from __future__ import annotations

import re
import time
from typing import Any

from qctl.testing.driver import plain
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
    rq.make_queue(first, plain([b"1"]))
    rq.make_queue(second, [])
    run = rmq("stats", prefix + "*", "-o", "json")
    assert run.rc == 0, run
    assert sorted(row["queue"] for row in run.json()) == sorted([first, second])


def test_without_management_named_queues_work_over_amqp(rq: RabbitMQDriver, qctl: QctlRunner, names: Any) -> None:
    queue = names("noapi")
    rq.make_queue(queue, plain([b"1", b"2"]))
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


def _rows_until(run: Any, queue: str, ready: Any, timeout: float = 15) -> dict[str, Any]:
    """Run ``run()`` (a stats listing) until ``queue``'s row satisfies ``ready`` (API counters lag a little)."""
    deadline = time.monotonic() + timeout
    while True:
        result = run()
        assert result.rc == 0, result
        rows = {row["queue"]: row for row in result.json()}
        if (queue in rows and ready(rows[queue])) or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def test_listing_follows_policy_dead_letter_and_counts_consumers(rq: RabbitMQDriver, rmq: QctlRunner,
                                                                 names: Any) -> None:
    """A DLX set by a policy (not an argument), consumers attached: the whole-vhost listing (no exact
    AMQP counts), a glob (exact counts) and the named queue all report them."""
    prefix = rq.unique("pol")
    source, dlq, wrong = names(prefix + "-src"), names(prefix + "-src-parked"), names(prefix + "-wrong")
    own, own_dlq = names(prefix + "-own"), names(prefix + "-own-dlq")
    for queue in (dlq, wrong, own_dlq):
        rq.declare(queue)
    rq.declare(source)
    rq.declare(own, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": own_dlq})
    rq.publish(dlq, [b"x", b"y"])
    high = {"dead-letter-exchange": "", "dead-letter-routing-key": dlq}
    low = {"dead-letter-exchange": "", "dead-letter-routing-key": wrong}
    with rq.policy(prefix + "-high", f"^({re.escape(source)}|{re.escape(own)})$", high, priority=7), \
            rq.policy(prefix + "-low", f"^{prefix}-", low, priority=3), \
            rq.policy(prefix + "-op", f"^{prefix}-", {"max-length": 1000}, priority=9, operator=True), \
            rq.channel() as channel:
        channel.basic_consume(source, lambda *_args: None)
        channel.basic_consume(source, lambda *_args: None)
        listing = _rows_until(lambda: rmq("stats", "-o", "json"), source, lambda row: row["consumers"] == 2)
        for rows in (listing, {row["queue"]: row for row in rmq("stats", prefix + "*", "-o", "json").json()},
                     {row["queue"]: row for row in rmq("stats", source, own, "-o", "json").json()}):
            assert rows[source]["consumers"] == 2
            assert (rows[source]["dead_letter_queue"], rows[source]["dead_letter_depth"]) == (dlq, 2)
            # the queue's own x-dead-letter-routing-key wins over the policy's, as in RabbitMQ
            assert rows[own]["dead_letter_queue"] == own_dlq and rows[own]["consumers"] == 0
        assert listing[wrong]["dead_letter_queue"] == wrong  # the low-priority policy routes it to itself
        assert listing[source]["type"] == "classic" and listing[source]["depth"] == 0


def test_listing_for_a_user_who_sees_only_its_own_consumers(rq: RabbitMQDriver, qctl: QctlRunner,
                                                             names: Any) -> None:
    """A user tagged only 'management' sees its own consumers in /api/consumers: qctl uses the
    statistics listing instead, and still counts every consumer and follows the policy."""
    source, dlq = names("mgmt-src"), names("mgmt-parked")
    rq.declare(dlq)
    rq.declare(source)
    policy = {"dead-letter-exchange": "", "dead-letter-routing-key": dlq}
    with rq.policy(source, f"^{re.escape(source)}$", policy, priority=5), \
            rq.user(rq.unique("viewer"), "viewer-pw", "management") as url, rq.channel() as channel:
        channel.basic_consume(source, lambda *_args: None)
        rows = _rows_until(lambda: qctl("stats", "-u", url, "-o", "json"), source,
                           lambda row: row["consumers"] == 1)
        assert rows[source]["consumers"] == 1 and rows[source]["dead_letter_queue"] == dlq


def test_policy_choice_matches_the_brokers(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    """RabbitMQ skips a policy whose definition has a key the queue's type does not support (delivery-limit on
    a classic queue) and one that applies to exchanges only, then takes the highest priority left.  qctl's
    own matching (named queues) and the broker's choice (listing) agree with what the broker reports."""
    prefix = rq.unique("choice")
    classic, quorum = names(prefix + "-c"), names(prefix + "-q")
    to_quorum, to_classic, nowhere = names(prefix + "-qdlq"), names(prefix + "-cdlq"), names(prefix + "-x")
    for queue in (to_quorum, to_classic, nowhere):
        rq.declare(queue)
    rq.declare(classic)
    rq.declare(quorum, **{"x-queue-type": "quorum"})
    pattern = f"^{re.escape(prefix)}-(c|q)-"

    def dlx(queue: str) -> dict[str, Any]:
        return {"dead-letter-exchange": "", "dead-letter-routing-key": queue}

    with rq.policy(prefix + "-quorum-only", pattern, {**dlx(to_quorum), "delivery-limit": 5}, priority=30), \
            rq.policy(prefix + "-exchanges", pattern, dlx(nowhere), priority=20, apply_to="exchanges"), \
            rq.policy(prefix + "-any", pattern, dlx(to_classic), priority=10):
        named = {row["queue"]: row for row in rmq("stats", classic, quorum, "-o", "json").json()}
        listed = {row["queue"]: row for row in rmq("stats", "-o", "json").json()}
        for rows in (named, listed):
            assert rows[classic]["dead_letter_queue"] == to_classic
            assert rows[quorum]["dead_letter_queue"] == to_quorum
        brokers = {row["name"]: row.get("policy") for row in rq.api(
            "GET", "/api/queues/%2F?disable_stats=true&columns=name,policy") if row["name"] in (classic, quorum)}
        assert brokers == {classic: prefix + "-any", quorum: prefix + "-quorum-only"}


def test_exclusive_queue_of_another_connection(rq: RabbitMQDriver, rmq: QctlRunner) -> None:
    """Such a queue refuses even a passive declare (RESOURCE_LOCKED): stats reports it from the API."""
    prefix = rq.unique("excl")
    with rq.channel() as channel:
        channel.queue_declare(prefix + "-a", exclusive=True)
        channel.basic_publish("", prefix + "-a", b"1")
        channel.basic_publish("", prefix + "-a", b"2")
        run = rmq("stats", prefix + "*", "-o", "json")
        assert run.rc == 0, run
        assert [(row["queue"], row["depth"]) for row in run.json()] == [(prefix + "-a", 2)]
        named = rmq("stats", prefix + "-a", "-o", "json")
        assert named.rc == 0, named
        assert named.json()[0]["queue"] == prefix + "-a"


def test_many_dead_letter_exchanges_are_followed(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    """More distinct dead-letter exchanges than it reads one by one: qctl reads all bindings at once."""
    prefix = rq.unique("manydlx")
    exchanges = [rq.unique("dlx") for _ in range(10)]
    expected = {}
    with rq.channel() as channel:
        for number, exchange in enumerate(exchanges):
            source, parked = names(f"{prefix}-{number}"), names(f"parked-{prefix}-{number}")
            channel.exchange_declare(exchange, "direct")
            channel.queue_declare(parked, durable=True)
            channel.queue_bind(parked, exchange, "dead")
            channel.queue_declare(source, durable=True, arguments={"x-dead-letter-exchange": exchange,
                                                                     "x-dead-letter-routing-key": "dead"})
            expected[source] = parked
    try:
        run = rmq("stats", prefix + "-*", "-o", "json")
        assert run.rc == 0, run
        assert {row["queue"]: row["dead_letter_queue"] for row in run.json()} == expected
    finally:
        with rq.channel() as channel:
            for exchange in exchanges:
                channel.exchange_delete(exchange)


def test_oldest_age_from_the_head_message_timestamp(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    """oldest_age is the head message's AMQP timestamp: an hour old here; null without one, and for quorum queues
    (RabbitMQ reports head_message_timestamp for classic queues only)."""
    import pika

    tag = rq.unique("age")
    stamped, millis, plain, quorum = names(tag + "-c"), names(tag + "-ms"), names(tag + "-none"), names(tag + "-qq")
    hour_ago = int(time.time()) - 3600
    for queue in (stamped, millis, plain):
        rq.declare(queue)
    rq.declare(quorum, **{"x-queue-type": "quorum"})
    for queue, stamp in ((stamped, hour_ago), (quorum, hour_ago), (millis, hour_ago * 1000)):
        rq.publish(queue, [b"old"], pika.BasicProperties(delivery_mode=2, timestamp=stamp))
        rq.publish(queue, [b"new"], pika.BasicProperties(delivery_mode=2, timestamp=int(time.time())))
    rq.publish(plain, [b"no timestamp"])

    def aged(row: dict[str, Any]) -> bool:
        return row["oldest_age"] is not None

    # Named outright (the per-queue statistics request), then a glob (the listing and one filtered request).
    named = _rows_until(lambda: rmq("stats", "-o", "json", stamped, millis, plain, quorum), millis, aged)
    listed = _rows_until(lambda: rmq("stats", "-o", "json", tag + "-*"), millis, aged)
    for rows in (named, listed):
        assert 3590 < rows[stamped]["oldest_age"] < 3700, rows[stamped]
        assert 3590 < rows[millis]["oldest_age"] < 3700, rows[millis]  # given in milliseconds by the publisher
        assert rows[plain]["oldest_age"] is None and rows[quorum]["oldest_age"] is None
        assert rows[quorum]["depth"] == 2 and rows[plain]["depth"] == 1

    assert rmq("stats", stamped, plain, "--fail-age-above", "7200").rc == 0
    crossed = rmq("stats", tag + "-*", "--fail-age-above", "1800")
    assert crossed.rc == 5 and "oldest message age" in crossed.err and stamped in crossed.err, crossed
    prom = rmq("stats", stamped, plain, "-o", "prom").out
    assert re.search(rf'^qctl_queue_oldest_age_seconds{{backend="rabbitmq",queue="{stamped}"}} 36\d\d', prom,
                     re.MULTILINE), prom
    assert f'qctl_queue_oldest_age_seconds{{backend="rabbitmq",queue="{plain}"}}' not in prom

    # Emptied, the queue has no oldest message, whatever the statistics still say of its head.
    with rq.channel() as channel:
        channel.queue_purge(stamped)
    assert rmq("stats", "-o", "json", stamped).json()[0]["oldest_age"] is None
