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


def test_a_publish_the_queue_refuses_stops_restore_at_exit_6_and_skip_resumes_with_the_rest(
        rq: RabbitMQDriver, rmq: QctlRunner, names: Any, tmp_path: Path) -> None:
    """A queue at its x-max-length with x-overflow reject-publish nacks what it cannot hold, as a full queue
    does in production: restore stops at the first refusal (exit 6) after more than one chunk was published."""
    queue = names("full")
    room, total = 1500, 2000  # restore publishes 1,000 a chunk: the second chunk is refused half way
    rq.declare(queue, **{"x-max-length": room, "x-overflow": "reject-publish"})
    bodies = [f"line-{i}".encode() for i in range(total)]
    file = tmp_path / "backup.jsonl"
    header = {"qctl_backup": 2, "backend": "rabbitmq", "queue": "orders", "created": "2026-01-01T00:00:00Z"}
    file.write_text("".join(json.dumps(row) + "\n" for row in [
        header, *({"body": body.decode(), "body_encoding": "utf-8", "headers": {"n": i}, "properties": {}}
                  for i, body in enumerate(bodies))]))

    run = rmq("restore", str(file), "--to", queue, "-o", "json")

    assert run.rc == 6, run
    assert run.json() == {"queue": queue, "restored": room, "source_file": str(file), "resume_skip": room}, run
    error = run.err.strip().splitlines()[-1]
    assert f"refused a message after {room} of {total} were published in order" in error, run
    assert f"rerun with --skip {room} to restore the rest" in error, run
    messages = rq.taken(queue)
    assert [body for _m, _p, body in messages] == bodies[:room]  # exactly the lines it says, in order
    assert [props.headers for _m, props, _b in messages[:2]] == [{"n": 0}, {"n": 1}]

    with rq.channel() as channel:  # consumers take what was restored; the queue has room again
        channel.queue_purge(queue)
    rest = rmq("restore", str(file), "--to", queue, "--skip", str(room), "-o", "json")

    assert rest.rc == 0, rest
    assert rest.json()["restored"] == total - room and rest.json()["resume_skip"] == total, rest
    assert rq.contents(queue) == bodies[room:]  # only the rest, once each
