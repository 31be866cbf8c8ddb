"""redrive on ElasticMQ: the message move task and its cancellation, FIFO group order, kill -9 mid-way."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from qctl.adapters.sqs.destination import SENDERS
from qctl.adapters.sqs.reader import CHUNK, THREADS
from qctl.redrive import REDRIVE_COUNT_HEADER
from qctl.testing.driver import plain
from qctl.testing.runner import interrupted
from tests.conftest import QctlRunner
from tests.sqs.driver import SQSDriver
from tests.sqs.probe import probed


def move_tasks(sqs: SQSDriver, queue: str) -> list[dict[str, Any]]:
    return list(sqs.client.list_message_move_tasks(SourceArn=sqs.arn(queue), MaxResults=10)["Results"])


def test_a_whole_queue_redrive_is_a_message_move_task_to_the_one_source(sqs: SQSDriver, q: QctlRunner,
                                                                         names: Any) -> None:
    source, dlq = names("task"), names("task-dlq")
    bodies = [f"t{i}".encode() for i in range(40)]
    sqs.make_dead_letters(source, dlq, bodies)
    run = q("redrive", dlq, "-o", "json")
    assert run.rc == 0, run
    assert run.json() == {"source": dlq, "moved": 40, "skipped": 0, "failed": 0, "targets": {source: 40}}
    tasks = move_tasks(sqs, dlq)
    assert tasks[0]["Status"] == "COMPLETED" and tasks[0]["DestinationArn"] == sqs.arn(source)
    assert sqs.counts(dlq) == (0, 0)
    moved = sqs.drain(source)
    assert sorted(m.body for m in moved) == sorted(bodies)
    # The server moved them as they were: no x-qctl-redrive-count (a move task cannot add one).
    assert all(REDRIVE_COUNT_HEADER not in m.headers for m in moved)


def test_options_a_move_task_cannot_honour_move_client_side(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    source, dlq = names("client"), names("client-dlq")
    sqs.make_dead_letters(source, dlq, [b"a", b"b", b"c"])
    run = q("redrive", dlq, "--max-redrives", "5", "-o", "json")
    assert run.rc == 0 and run.json()["targets"] == {source: 3}, run
    assert move_tasks(sqs, dlq) == []  # no task was started
    moved = sqs.drain(source)
    assert sorted(m.body for m in moved) == [b"a", b"b", b"c"]
    assert all(m.headers[REDRIVE_COUNT_HEADER] == 1 for m in moved)  # a Number attribute
    sqs.send(dlq, plain([b"d", b"e"]))
    fast = q("redrive", dlq, "--rate", "1000", "-o", "json")  # over what a task takes (1-500/s): client-side
    assert fast.rc == 0 and fast.json()["targets"] == {source: 2}, fast
    assert "1 to 500" in fast.err and move_tasks(sqs, dlq) == []


def test_ctrl_c_cancels_a_slow_move_task_and_reports_what_it_moved(sqs: SQSDriver, names: Any,
                                                                   clean_env: dict[str, str]) -> None:
    source, dlq = names("cancel"), names("cancel-dlq")
    bodies = [b"c%04d" % i for i in range(400)]
    sqs.make_dead_letters(source, dlq, bodies)
    args = ["redrive", "-u", sqs.url, dlq, "--rate", "25", "-o", "json"]
    stopped = interrupted(clean_env, args, lambda: sqs.counts(source)[0] >= 30, signal_number=signal.SIGINT)
    assert stopped.rc == 130, stopped
    assert "nothing was lost" in stopped.err
    result = json.loads(stopped.out)
    time.sleep(0.5)  # a task still running would move more meanwhile
    assert all(task["Status"] != "RUNNING" for task in move_tasks(sqs, dlq))
    in_source, in_dlq = sqs.counts(source)[0], sqs.counts(dlq)[0]
    assert 30 <= result["moved"] == in_source < 400 and result["targets"] == {source: in_source}
    assert in_source + in_dlq == 400  # nothing lost, nothing twice
    rerun = subprocess.run([sys.executable, "-m", "qctl", "redrive", "-u", sqs.url, dlq, "-o", "json"], env=clean_env,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["moved"] == 400 - in_source, rerun
    assert sorted(m.body for m in sqs.drain(source)) == bodies


def test_a_task_already_running_is_refused(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    source, dlq = names("busy"), names("busy-dlq")
    sqs.make_dead_letters(source, dlq, [b"b%03d" % i for i in range(50)])
    handle = sqs.client.start_message_move_task(SourceArn=sqs.arn(dlq), MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    try:
        run = q("redrive", dlq)
        assert run.rc == 3 and "already running" in run.err, run
    finally:
        sqs.client.cancel_message_move_task(TaskHandle=handle)


def fifo_dead_letters(sqs: SQSDriver, source: str, dlq: str, groups: dict[str, list[bytes]]) -> None:
    """FIFO ``source`` dead-letters into FIFO ``dlq``: sent interleaved across groups, received once, moved."""
    sqs.create(dlq)
    url = sqs.create(source, dlq=dlq, max_receive_count=1)
    longest = max(len(bodies) for bodies in groups.values())
    for i in range(longest):
        for group, bodies in groups.items():
            if i < len(bodies):
                sqs.client.send_message(QueueUrl=url, MessageBody=bodies[i].decode(), MessageGroupId=group,
                                        MessageDeduplicationId=f"{group}-{i}")
    total = sum(map(len, groups.values()))
    deadline = time.monotonic() + 60
    while sqs.counts(dlq)[0] < total:
        assert time.monotonic() < deadline, sqs.counts(dlq)
        sqs.client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)


def by_group(messages: list[Any]) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = defaultdict(list)
    for message in messages:
        found[message.properties["MessageGroupId"]].append(message.body)
    return dict(found)


def test_fifo_redrive_keeps_each_group_in_order(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    source, dlq = names("order", fifo=True), names("order-dlq", fifo=True)
    groups = {g: [f"{g}-{i:02d}".encode() for i in range(25)] for g in ("alpha", "beta", "gamma")}
    fifo_dead_letters(sqs, source, dlq, groups)
    run = q("redrive", dlq, "-o", "json")
    assert run.rc == 0, run
    assert run.json()["targets"] == {source: 75}
    assert move_tasks(sqs, dlq) == []  # FIFO: the client-side mover, not a move task
    moved = sqs.drain(source)
    assert by_group(moved) == groups
    assert all(m.headers[REDRIVE_COUNT_HEADER] == 1 for m in moved)
    assert sqs.counts(dlq) == (0, 0)


def test_a_kept_fifo_message_holds_back_the_rest_of_its_group(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    source, dlq = names("held", fifo=True), names("held-dlq", fifo=True)
    groups = {g: [f"{g}-{i:02d}".encode() for i in range(6)] for g in ("one", "two")}
    fifo_dead_letters(sqs, source, dlq, groups)
    run = q("redrive", dlq, "--where", "body != 'one-02'", "-o", "json")
    assert run.rc == 6, run  # partial: messages it was asked to move stayed, behind one-02
    assert (run.json()["moved"], run.json()["skipped"]) == (8, 4)
    assert "3 message(s) left in place: held back behind an earlier message of its group" in run.err
    moved = by_group(sqs.drain(source))
    assert moved == {"one": groups["one"][:2], "two": groups["two"]}  # nothing of "one" jumped over one-02
    assert by_group(sqs.drain(dlq)) == {"one": groups["one"][2:]}  # still in the DLQ, in order


def test_elasticmq_fifo_move_task_moves_nothing(sqs: SQSDriver, names: Any) -> None:
    """The gap qctl works around (ElasticMQ 1.7.1): a move task from a FIFO DLQ reports COMPLETED having moved
    nothing -- FifoMessageQueue never fills the queue MoveMessagesAsyncOps pops.  qctl never starts a task
    for FIFO queues (the client-side mover above keeps group order).  If this starts failing, ElasticMQ
    fixed it."""
    source, dlq = names("gap", fifo=True), names("gap-dlq", fifo=True)
    fifo_dead_letters(sqs, source, dlq, {"g": [b"x", b"y"]})
    sqs.client.start_message_move_task(SourceArn=sqs.arn(dlq), DestinationArn=sqs.arn(source))
    time.sleep(0.5)
    task = move_tasks(sqs, dlq)[0]
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 0)
    assert sqs.counts(dlq) == (2, 0)


def test_kill_9_in_a_client_side_redrive_loses_nothing_and_a_rerun_completes(sqs: SQSDriver, names: Any,
                                                                             clean_env: dict[str, str]) -> None:
    dlq, target = names("kill-dlq"), names("kill-target")
    sqs.create(dlq)
    sqs.create(target)
    bodies = [b"k%05d" % i for i in range(20_000)]
    sqs.send_fast(dlq, bodies)
    assert sqs.counts(dlq) == (20_000, 0)
    visibility = 8
    url = f"{sqs.url}?visibility_timeout={visibility}"  # what a killed pass held comes back after 8 s
    args = [sys.executable, "-m", "qctl", "redrive", "-u", url, dlq, "--to", target, "-q", "-o", "json"]
    proc = subprocess.Popen(args, env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while sqs.counts(target)[0] < 4000:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    time.sleep(visibility + 1)
    visible_dlq, in_flight = sqs.counts(dlq)
    assert in_flight == 0  # what the killed run held is visible again
    in_target, in_dlq = Counter(sqs.contents(target)), Counter(sqs.contents(dlq))
    assert set(in_target) | set(in_dlq) == set(bodies)  # every message in the DLQ, the target, or both
    both = sum(1 for body in in_target if body in in_dlq)
    assert both <= 1000 and max(in_target.values()) == 1 and max(in_dlq.values()) == 1
    rerun = subprocess.run(args, env=clean_env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["moved"] == visible_dlq
    final = Counter(m.body for m in sqs.drain(target))
    assert set(final) == set(bodies) and sum(final.values()) == len(bodies) + both  # "both" ones, twice
    assert sqs.counts(dlq) == (0, 0)


def test_the_client_side_mover_overlaps_its_requests_and_deletes_only_what_sqs_confirmed(
        sqs: SQSDriver, qctl: QctlRunner, names: Any, tmp_path: Path) -> None:
    """Counted in a real process (tests/sqs/probe.py; every request held 20 ms so that requests that can overlap
    do): three requests per ten messages, the next chunk received while this one is sent, sends and deletes
    several at a time -- and no DeleteMessageBatch names a message before a SendMessageBatch confirmed it."""
    dlq, target = names("overlap-dlq"), names("overlap-target")
    sqs.create(dlq)
    sqs.create(target)
    bodies = [b"o%05d" % i for i in range(2000)]
    sqs.send_fast(dlq, bodies)
    probe = probed(tmp_path / "probe", delay=0.02)
    run = qctl("redrive", "-u", sqs.url, dlq, "--to", target, "-o", "json", env=probe.env, timeout=300)
    assert run.rc == 0 and run.json()["moved"] == 2000, run
    seen = probe.result()
    calls, peak = seen["calls"], seen["peak"]
    assert calls["send_message_batch"] == 200 and calls["delete_message_batch"] == 200, calls
    assert 200 <= calls["receive_message"] <= 220 and seen["received"] == 2000, calls  # none received twice
    assert seen["early_deletes"] == [] and seen["deleted"] == 2000
    assert peak["send_message_batch"] >= 4 and peak["delete_message_batch"] >= 4 and peak["receive_message"] >= 4
    assert peak["send_message_batch"] <= SENDERS and peak["receive_message"] + peak["delete_message_batch"] <= THREADS
    # Read-ahead: the next chunk's receives are under way while a chunk is settled (without it, the engine's
    # thread receives and deletes in turn, and no receive is ever in flight beside a delete).
    overlaps = seen["overlaps"]
    assert overlaps.get("delete_message_batch during receive_message", 0) + \
           overlaps.get("receive_message during delete_message_batch", 0) > 0, overlaps
    assert overlaps.get("receive_message during send_message_batch", 0) > 0, overlaps
    assert sorted(m.body for m in sqs.drain(target)) == bodies
    assert sqs.counts(dlq) == (0, 0)


def test_a_limit_ends_the_read_ahead_and_hands_back_what_it_received(sqs: SQSDriver, qctl: QctlRunner,
                                                                    names: Any, tmp_path: Path) -> None:
    """--limit 250 of 1,000: 250 moved; a chunk received ahead and not needed is visible again at once (not
    after its visibility timeout), and nothing else was received."""
    dlq, target = names("ahead-dlq"), names("ahead-target")
    sqs.create(dlq)
    sqs.create(target)
    sqs.send_fast(dlq, [b"a%04d" % i for i in range(1000)])
    probe = probed(tmp_path / "probe")
    run = qctl("redrive", "-u", sqs.url, dlq, "--to", target, "--limit", "250", "-o", "json", env=probe.env)
    assert run.rc == 0 and run.json()["moved"] == 250, run
    assert sqs.counts(dlq) == (750, 0) and sqs.counts(target)[0] == 250
    assert 250 <= probe.result()["received"] <= 250 + CHUNK


def test_a_source_that_counts_reads_is_never_read_ahead(sqs: SQSDriver, qctl: QctlRunner, names: Any,
                                                        tmp_path: Path) -> None:
    """A queue with a RedrivePolicy counts every receive toward maxReceiveCount: the reader takes exactly what
    the engine asks for, so a --limit receives no message it does not move."""
    source, target = names("counted"), names("counted-target")
    sqs.create(target)
    sqs.make_limited_queue(source, [b"c%04d" % i for i in range(500)], limit=5)
    probe = probed(tmp_path / "probe")
    run = qctl("redrive", "-u", sqs.url, source, "--to", target, "--limit", "150", "-o", "json", env=probe.env)
    assert run.rc == 0 and run.json()["moved"] == 150, run
    assert probe.result()["received"] == 150
    assert sqs.counts(source) == (350, 0)


def test_fifo_sends_stay_one_after_another(sqs: SQSDriver, qctl: QctlRunner, names: Any, tmp_path: Path) -> None:
    """FIFO keeps the serial path: one SendMessageBatch and one ReceiveMessage at a time, never two batches of
    a message group in flight at once, each chunk deleted only after its sends were confirmed."""
    source, dlq = names("serial", fifo=True), names("serial-dlq", fifo=True)
    groups = {g: [f"{g}-{i:02d}".encode() for i in range(30)] for g in ("alpha", "beta")}
    fifo_dead_letters(sqs, source, dlq, groups)
    probe = probed(tmp_path / "probe", delay=0.02)
    run = qctl("redrive", "-u", sqs.url, dlq, "-o", "json", env=probe.env, timeout=300)
    assert run.rc == 0 and run.json()["targets"] == {source: 60}, run
    seen = probe.result()
    assert seen["peak"]["send_message_batch"] == 1 and seen["peak"]["receive_message"] == 1, seen["peak"]
    assert seen["send_groups_overlapping"] == 0 and seen["early_deletes"] == []
    assert by_group(sqs.drain(source)) == groups
