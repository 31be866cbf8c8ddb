"""Reading never counts against a delivery limit: a quorum DLQ with x-delivery-limit 1, with and without a DLX.

The first wave's worst bug: ``qctl redrive --dry-run`` twice on such a queue printed "nothing moved" and
every message was gone, because each dry run took the messages and returned them, and each return counted.
Every test here counts the messages on the broker afterwards (and the DLX's queue, where there is one):
a count that drops is a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qctl.testing.driver import plain
from tests.conftest import QctlRunner
from tests.rabbitmq.driver import RabbitMQDriver

BODIES = [f"d{i}".encode() for i in range(8)]


@pytest.fixture(params=["no-dlx", "dlx"])
def limited(request: pytest.FixtureRequest, rq: RabbitMQDriver, names: Any) -> tuple[str, str | None]:
    """A quorum DLQ with delivery limit 1 holding BODIES; with a DLX, where an over-limit message would land."""
    queue = names("limit1")
    graveyard = None
    arguments: dict[str, Any] = {"x-queue-type": "quorum", "x-delivery-limit": 1}
    if request.param == "dlx":
        graveyard = names("limit1-grave")
        rq.declare(graveyard)
        arguments |= {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": graveyard}
    rq.declare(queue, **arguments)
    rq.limited.add(queue)
    rq.publish(queue, BODIES)
    rq.wait_depth(queue, len(BODIES))
    return queue, graveyard


def _intact(rq: RabbitMQDriver, queue: str, graveyard: str | None, expected: list[bytes] = BODIES) -> None:
    assert rq.depth(queue) == len(expected)
    if graveyard is not None:
        assert rq.depth(graveyard) == 0
    assert sorted(rq.contents(queue)) == sorted(expected)


def test_dry_runs_twice_lose_nothing(rmq: QctlRunner, rq: RabbitMQDriver, limited: tuple[str, str | None],
                                     names: Any) -> None:
    queue, graveyard = limited
    for _ in range(2):
        run = rmq("redrive", queue, "--dry-run")
        assert run.rc == 2 and "delivery limit of 1" in run.err, run
    target = names("limit1-target")
    rq.declare(target)
    for _ in range(2):  # with --to, a dry run counts from the queue's depth: no message is taken
        run = rmq("redrive", queue, "--to", target, "--dry-run", "-o", "json")
        assert run.rc == 0 and run.json()["targets"] == {target: len(BODIES)}, run
    _intact(rq, queue, graveyard)


def test_peek_is_refused_without_taking_anything(rmq: QctlRunner, rq: RabbitMQDriver,
                                                 limited: tuple[str, str | None]) -> None:
    queue, graveyard = limited
    for _ in range(3):
        run = rmq("peek", queue)
        assert run.rc == 2 and "refusing to peek" in run.err, run
    _intact(rq, queue, graveyard)


def test_skipped_messages_are_copied_to_the_tail_never_returned(rmq: QctlRunner, rq: RabbitMQDriver,
                                                                limited: tuple[str, str | None], names: Any) -> None:
    queue, graveyard = limited
    target = names("limit1-out")
    rq.declare(target)
    for round_ in range(3):  # each round skips seven messages; a return would have dropped them by round two
        run = rmq("redrive", queue, "--to", target, "--where", f"body == 'd{round_}'", "-o", "json")
        assert run.rc == 0 and (run.json()["moved"], run.json()["skipped"]) == (1, 7 - round_), run
        assert "copied to the tail" in run.err
    assert rq.contents(target) == [b"d0", b"d1", b"d2"]
    _intact(rq, queue, graveyard, BODIES[3:])


def test_purge_where_and_backup_keep_the_others_without_counting(rmq: QctlRunner, rq: RabbitMQDriver,
                                                                 limited: tuple[str, str | None],
                                                                 tmp_path: Path) -> None:
    queue, graveyard = limited
    backup = tmp_path / "limited.jsonl"
    run = rmq("purge", queue, "--yes", "--where", "body == 'd7'", "--backup", str(backup), "-o", "json")
    assert run.rc == 0 and (run.json()["purged"], run.json()["kept"]) == (1, 7), run
    _intact(rq, queue, graveyard, BODIES[:7])
    again = rmq("purge", queue, "--yes", "--backup", str(tmp_path / "all.jsonl"), "-o", "json")
    assert again.rc == 0 and again.json()["purged"] == 7, again
    assert rq.depth(queue) == 0 and (graveyard is None or rq.depth(graveyard) == 0)
    copy = rmq("backup", queue, str(tmp_path / "copy.jsonl"))
    assert copy.rc == 2 and "delivery limit" in copy.err  # a copy would take and return every message


def test_the_limit_of_a_policy_counts_too(rmq: QctlRunner, rq: RabbitMQDriver, names: Any) -> None:
    import re

    queue = names("policy-limit")
    rq.declare(queue, **{"x-queue-type": "quorum"})
    rq.publish(queue, BODIES[:3])
    rq.wait_depth(queue, 3)
    with rq.policy(queue, f"^{re.escape(queue)}$", {"delivery-limit": 1}, priority=90):
        rq.limited.add(queue)
        for _ in range(2):
            assert rmq("redrive", queue, "--dry-run").rc == 2
            assert rmq("peek", queue).rc == 2
        assert rq.depth(queue) == 3


def test_a_classic_queue_is_read_as_before(rmq: QctlRunner, rq: RabbitMQDriver, names: Any) -> None:
    queue = names("classic")
    rq.make_queue(queue, plain(BODIES[:3]))
    assert rmq("redrive", queue, "--to", queue + "-none", "--dry-run").rc == 4  # no such target
    assert [row["body"] for row in rmq("peek", queue, "-o", "json").json()] == ["d0", "d1", "d2"]


def test_rabbitmq_4_default_limit_guards_a_quorum_queue_with_no_setting(rq: RabbitMQDriver, names: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """RabbitMQ 4 gives every quorum queue a delivery limit of 20 unless an argument or policy sets one (-1:
    none).  No 4.x server can be installed here (Debian 12 ships 3.10), so the version the handshake
    reports is the one stand-in; the queues, arguments and policies are real."""
    from qctl.adapters.rabbitmq import connection
    from qctl.adapters.rabbitmq.adapter import RabbitMQAdapter
    from qctl.options import ConnectOptions
    from qctl.urls import parse

    bare, unlimited, own = names("v4-bare"), names("v4-unlimited"), names("v4-own")
    rq.declare(bare, **{"x-queue-type": "quorum"})
    rq.declare(unlimited, **{"x-queue-type": "quorum", "x-delivery-limit": -1})
    rq.declare(own, **{"x-queue-type": "quorum", "x-delivery-limit": 5})
    real = RabbitMQAdapter(ConnectOptions(url=parse(rq.amqp_url), management_url=rq.management_url))
    try:
        assert real.session.server_major() == 3  # the harness's 3.10, told by its handshake
    finally:
        real.close()
    for major, expected in ((3, {bare: None, unlimited: None, own: 5}), (4, {bare: 20, unlimited: None, own: 5})):
        monkeypatch.setattr(connection.Session, "server_major", lambda self, major=major: major)
        adapter = RabbitMQAdapter(ConnectOptions(url=parse(rq.amqp_url), management_url=rq.management_url))
        try:
            got = {queue: adapter.read_traits(queue) for queue in expected}
        finally:
            adapter.close()
        assert {queue: t.read_limit if t.counts_reads else None for queue, t in got.items()} == expected, major
    assert "default delivery limit of 20" in (got[bare].limit_reason or "")
