"""redrive on the real node: x-death targets, properties, order, termination, kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import pika

from tests.conftest import QctlRunner
from tests.rabbitmq.driver import RabbitMQDriver


def test_redrive_back_to_source_keeps_properties_and_order(rq: RabbitMQDriver, rmq: QctlRunner,
                                                           names: Any) -> None:
    source, dlq = names("orders"), names("orders-dlq")
    bodies = [f"b{i}".encode() for i in range(50)]
    rq.declare(dlq)
    rq.declare(source, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    props = pika.BasicProperties(content_type="text/plain", message_id="m", correlation_id="c", app_id="app",
                                 type="t", priority=2, delivery_mode=2, reply_to="r", headers={"k": "v"})
    rq.publish(source, bodies, props)
    with rq.channel() as channel:  # a consumer rejects them: x-death is the broker's own
        for _ in bodies:
            method, _p, _b = channel.basic_get(source)
            channel.basic_reject(method.delivery_tag, requeue=False)
    rq.wait_depth(dlq, 50)
    run = rmq("redrive", dlq, "-o", "json")
    assert run.rc == 0, run
    assert run.json() == {"source": dlq, "moved": 50, "skipped": 0, "failed": 0, "targets": {source: 50}}
    assert rq.depth(dlq) == 0
    moved = rq.taken(source)
    assert [body for _m, _p, body in moved] == bodies
    p = moved[0][1]
    assert (p.content_type, p.message_id, p.correlation_id, p.app_id, p.type, p.priority, p.delivery_mode,
            p.reply_to) == ("text/plain", "m", "c", "app", "t", 2, 2, "r")
    assert p.headers["k"] == "v" and p.headers["x-qctl-redrive-count"] == 1
    assert p.headers["x-death"][0]["queue"] == source


def test_max_redrives_leaves_poison_in_place_in_order(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    source, dlq = names("src"), names("src-dlq")
    rq.declare(source)
    rq.declare(dlq)
    for i in range(6):
        count = 3 if i % 2 else 0
        rq.publish(dlq, [f"p{i}".encode()], pika.BasicProperties(
            delivery_mode=2, headers={"x-first-death-queue": source, "x-qctl-redrive-count": count}))
    run = rmq("redrive", dlq, "--max-redrives", "3", "-o", "json")
    assert run.rc == 6, run  # partial: skipped ones left in the DLQ
    assert (run.json()["moved"], run.json()["skipped"]) == (3, 3)
    assert rq.contents(dlq) == [b"p1", b"p3", b"p5"]
    assert rq.contents(source) == [b"p0", b"p2", b"p4"]


def test_dry_run_and_limit(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    source, dlq = names("src"), names("src-dlq")
    rq.make_dead_letters(source, dlq, [b"1", b"2", b"3"])
    dry = rmq("redrive", dlq, "--dry-run", "-o", "json")
    assert dry.rc == 0 and dry.json()["targets"] == {source: 3} and dry.json()["moved"] == 0, dry
    assert rq.contents(dlq) == [b"1", b"2", b"3"]
    limited = rmq("redrive", dlq, "--limit", "2", "-o", "json")
    assert limited.json()["moved"] == 2, limited
    assert rq.contents(source) == [b"1", b"2"] and rq.contents(dlq) == [b"3"]


def test_target_that_dead_letters_straight_back_does_not_loop(rq: RabbitMQDriver, rmq: QctlRunner,
                                                             names: Any) -> None:
    source, dlq = names("bounce"), names("bounce-dlq")
    rq.make_dead_letters(source, dlq, [f"{i}".encode() for i in range(100)])
    rq.delete(source)  # now a target that expires everything at once, back into the DLQ
    rq.declare(source, **{"x-message-ttl": 0, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    run = rmq("redrive", dlq, "-o", "json", timeout=60)
    assert run.rc == 0, run
    assert run.json()["moved"] == 100
    rq.wait_depth(dlq, 100)
    assert rq.depth(dlq) == 100  # all came back once; none lost, none moved twice
    assert all(p.headers["x-qctl-redrive-count"] == 1 for _m, p, _b in rq.taken(dlq))


def test_kill_9_mid_redrive_loses_nothing(rq: RabbitMQDriver, names: Any, clean_env: dict[str, str]) -> None:
    source, dlq = names("kill"), names("kill-dlq")
    total = 20_000
    rq.declare(source)
    rq.declare(dlq)
    with rq.channel() as channel:
        channel.confirm_delivery()
        for i in range(total):
            channel.basic_publish("", dlq, str(i).encode(), pika.BasicProperties(
                delivery_mode=2, headers={"x-first-death-queue": source}))
    args = [sys.executable, "-m", "qctl", "redrive", dlq, "-u", rq.url, "--management-url", rq.management_url,
            "--rate", "8000", "-q"]
    proc = subprocess.Popen(args, env=clean_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while rq.depth(source) < 3000 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the broker notices the dead connection and returns its unacked messages
    in_target, in_dlq = set(rq.contents(source)), set(rq.contents(dlq))
    assert 0 < len(in_target) < total
    assert in_target | in_dlq == {str(i).encode() for i in range(total)}
    rerun = subprocess.run([*args[:-1], "-o", "json"], env=clean_env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert rq.depth(dlq) == 0
    assert set(rq.contents(source)) == {str(i).encode() for i in range(total)}


def _exchange_topology(rq: RabbitMQDriver, names: Any, *, twin_key: str) -> tuple[str, str, str, str, str]:
    """A direct exchange; ``source`` bound with key ``k.src`` and ``twin`` bound with ``twin_key``; ``source``
    dead-letters through a fanout exchange (no dead-letter routing key, so RabbitMQ keeps the CC header) into
    ``dlq``.  Three messages published to the direct exchange with ``k.src`` and a CC header are rejected by
    a consumer of ``source``, so ``dlq`` holds them with the broker's own x-death.
    Returns (exchange, dead-letter exchange, source, twin, dlq)."""
    source, twin, dlq = names("via-src"), names("via-twin"), names("via-dlq")
    exchange, dlx = rq.unique("via-x"), rq.unique("via-dlx")
    with rq.channel() as channel:
        channel.exchange_declare(exchange, "direct", durable=True)
        channel.exchange_declare(dlx, "fanout", durable=True)
        channel.queue_declare(dlq, durable=True)
        channel.queue_bind(dlq, dlx)
        channel.queue_declare(source, durable=True, arguments={"x-dead-letter-exchange": dlx})
        channel.queue_declare(twin, durable=True)
        channel.queue_bind(source, exchange, "k.src")
        channel.queue_bind(twin, exchange, twin_key)
        channel.confirm_delivery()
        cc = rq.unique("cc-queue")  # no queue of that name yet: the original publish routes nothing by it
        for body in (b"v0", b"v1", b"v2"):
            channel.basic_publish(exchange, "k.src", body, pika.BasicProperties(delivery_mode=2, headers={"CC": [cc]}))
        for _ in range(3):
            method, _p, _b = channel.basic_get(source)
            channel.basic_reject(method.delivery_tag, requeue=False)
    rq.wait_depth(dlq, 3)
    return exchange, dlx, source, twin, dlq


def _delete_exchanges(rq: RabbitMQDriver, *exchanges: str) -> None:
    with rq.channel() as channel:
        for exchange in exchanges:
            channel.exchange_delete(exchange)


def test_via_exchange_publishes_through_the_original_exchange_and_key(rq: RabbitMQDriver, rmq: QctlRunner,
                                                                      names: Any) -> None:
    exchange, dlx, source, other, dlq = _exchange_topology(rq, names, twin_key="k.other")
    try:
        death = rq.taken(dlq)[0][1].headers["x-death"][0]
        assert (death["exchange"], death["routing-keys"][0]) == (exchange, "k.src")
        run = rmq("redrive", dlq, "--via-exchange", "-o", "json")
        assert run.rc == 0, run
        assert run.json() == {"source": dlq, "moved": 3, "skipped": 0, "failed": 0, "targets": {source: 3}}
        moved = rq.taken(source)
        assert [body for _m, _p, body in moved] == [b"v0", b"v1", b"v2"]
        assert all((m.exchange, m.routing_key) == (exchange, "k.src") for m, _p, _b in moved)  # through the exchange
        assert all(p.headers["x-qctl-redrive-count"] == 1 for _m, p, _b in moved)
        assert rq.depth(other) == 0 and rq.depth(dlq) == 0  # the other key's queue got nothing
    finally:
        _delete_exchanges(rq, exchange, dlx)


def test_default_redrive_goes_straight_to_the_queue(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    """Without --via-exchange the default exchange delivers to the source queue alone: a queue bound to the
    original exchange with the same key gets no copy, nor does a queue named by the message's CC header."""
    exchange, dlx, source, twin, dlq = _exchange_topology(rq, names, twin_key="k.src")
    cc = rq.taken(dlq)[0][1].headers["CC"][0]  # kept: the source has no dead-letter routing key
    rq.declare(cc)
    try:
        assert rq.depth(twin) == 3  # its own copies from the original publish
        run = rmq("redrive", dlq, "-o", "json")
        assert run.rc == 0, run
        assert run.json()["moved"] == 3 and run.json()["targets"] == {source: 3}
        moved = rq.taken(source)
        assert [body for _m, _p, body in moved] == [b"v0", b"v1", b"v2"]
        assert all((m.exchange, m.routing_key) == ("", source) for m, _p, _b in moved)
        assert rq.depth(twin) == 3 and rq.depth(cc) == 0 and rq.depth(dlq) == 0
        assert all("CC" not in p.headers for _m, p, _b in moved)
    finally:
        rq.delete(cc)
        _delete_exchanges(rq, exchange, dlx)
