"""purge (with and without backup) and restore, checked on the broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pika

from qctl.testing.driver import plain
from tests.conftest import QctlRunner
from tests.rabbitmq.driver import RabbitMQDriver


def test_purge_leaves_unacked_and_reports_them(rq: RabbitMQDriver, rmq: QctlRunner, names: Any) -> None:
    queue = names("purge")
    rq.make_queue(queue, plain([b"1", b"2", b"3"]))
    with rq.channel() as channel:
        held, _p, _b = channel.basic_get(queue)  # held unacked by "a consumer" during the purge
        run = rmq("purge", queue, "--yes", "-o", "json")
        assert run.rc == 0, run
        assert run.json()["purged"] == 2
        assert rq.depth(queue) == 0
        channel.basic_nack(held.delivery_tag, requeue=True)
    assert rq.contents(queue) == [b"1"]


def test_purge_backup_then_restore_round_trip(rq: RabbitMQDriver, rmq: QctlRunner, names: Any,
                                             tmp_path: Path) -> None:
    queue, again = names("backup"), names("restored")
    bodies = [f"m{i}".encode() for i in range(3000)] + [b"\xff\x00"]
    rq.declare(queue)
    rq.declare(again)
    rq.publish(queue, bodies, pika.BasicProperties(delivery_mode=2, message_id="x", headers={"h": 1}))
    backup = tmp_path / "backup.jsonl"
    run = rmq("purge", queue, "--yes", "--backup", str(backup), "-o", "json")
    assert run.rc == 0, run
    assert run.json()["purged"] == len(bodies) and rq.depth(queue) == 0
    assert len(backup.read_text().splitlines()) == 1 + len(bodies)  # the format line, then a line each
    assert json.loads(backup.read_text().splitlines()[-1])["body_encoding"] == "base64"
    restored = rmq("restore", str(backup), "--to", again, "-o", "json")
    assert restored.rc == 0 and restored.json()["restored"] == len(bodies), restored
    messages = rq.taken(again)
    assert [body for _m, _p, body in messages] == bodies
    assert messages[0][1].message_id == "x" and messages[0][1].headers == {"h": 1}
