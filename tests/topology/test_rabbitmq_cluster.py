"""A three-node RabbitMQ cluster (the harness's ``rabbitmq-cluster``): stats, quorum queues and failover.

* ``stats`` through any node lists every queue of the cluster, with ``leader`` (the quorum leader, or
  a classic queue's node) and ``members``;
* peek, redrive and purge work on quorum queues whatever node the URL names;
* the quorum leader's node is killed (SIGKILL) in the middle of a 20,000-message redrive: the run
  ends by itself (0, 3 or 6), nothing is lost (every message is in the DLQ, the target, or both),
  and a re-run through a surviving node completes.

The cluster is left running afterwards (``tools/brokers down`` or CI's trap stops it): starting it
takes about a minute, and the harness tests use it too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika
import pytest

from qctl.testing.driver import unique_name
from tests.conftest import BROKERS, QctlRunner, brokers_up

sys.path.insert(0, str(BROKERS.parent))
from harness import rabbitmq_cluster  # tools/ is no package: the way bench/ imports it

FAILOVER_MESSAGES = 20_000


@pytest.fixture(scope="module")
def cluster() -> dict[str, str]:
    env = brokers_up("rabbitmq-cluster")
    for n in (1, 2, 3):  # a previous run may have left a node down
        if rabbitmq_cluster.rabbitmq.running_pid(rabbitmq_cluster.node(n)) is None:
            rabbitmq_cluster.start_node(n)
    return env


class Nodes:
    def __init__(self, env: dict[str, str]) -> None:
        self.urls = env["QCTL_TEST_RABBITMQ_CLUSTER_URLS"].split(",")
        self.apis = env["QCTL_TEST_RABBITMQ_CLUSTER_MANAGEMENT_URLS"].split(",")
        self.names = [member.name for member in rabbitmq_cluster.NODES]

    def args(self, n: int) -> list[str]:
        """``-u`` and ``--management-url`` of node ``n`` (1..3)."""
        return ["-u", self.urls[n - 1], "--management-url", self.apis[n - 1]]

    @contextmanager
    def channel(self, n: int) -> Iterator[Any]:
        connection = pika.BlockingConnection(pika.URLParameters(self.urls[n - 1]))
        try:
            yield connection.channel()
        finally:
            if connection.is_open:
                connection.close()

    def depth(self, n: int, queue: str) -> int:
        with self.channel(n) as channel:
            return int(channel.queue_declare(queue, passive=True).method.message_count)

    def declare(self, n: int, queue: str, kind: str) -> None:
        with self.channel(n) as channel:
            channel.queue_declare(queue, durable=True, arguments={"x-queue-type": kind})

    def publish(self, n: int, queue: str, bodies: list[bytes]) -> None:
        """Publish with publisher confirms, pipelined, and wait for every confirm before closing: a quorum
        queue may drop enqueues its channel still had pending when the connection closed (seen here: 1 of
        4 arrived on a queue just declared, about one run in 30)."""
        connection = pika.BlockingConnection(pika.URLParameters(self.urls[n - 1]))
        try:
            impl = connection.channel()._impl  # pika's async channel: confirms without a round trip each
            acked: set[int] = set()
            floor = [0]  # every tag up to this one is confirmed
            refused: list[int] = []
            ready: list[bool] = []

            def on_confirm(frame: Any) -> None:
                method = frame.method
                if isinstance(method, pika.spec.Basic.Nack):
                    refused.append(method.delivery_tag)
                if method.multiple:
                    floor[0] = max(floor[0], method.delivery_tag)
                else:
                    acked.add(method.delivery_tag)
                while floor[0] + 1 in acked:
                    floor[0] += 1

            impl.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _frame: ready.append(True))
            wait_for("confirm mode", lambda: bool(connection.process_data_events(0) or ready), 30)
            for body in bodies:
                impl.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
            wait_for(f"{len(bodies)} confirms from {queue}",
                     lambda: bool(connection.process_data_events(0.05) or floor[0] >= len(bodies)), 120,
                     lambda: f"{floor[0]} confirmed, refused {refused[:5]}")
            assert not refused, f"the broker refused {len(refused)} publish(es) to {queue}"
        finally:
            if connection.is_open:
                connection.close()

    def drain(self, n: int, queue: str) -> list[bytes]:
        """Every message of ``queue``, taken and acked (the queue is deleted afterwards anyway)."""
        bodies: list[bytes] = []
        with self.channel(n) as channel:
            expected = int(channel.queue_declare(queue, passive=True).method.message_count)
            channel.basic_qos(prefetch_count=2000)
            for method, _properties, body in channel.consume(queue, inactivity_timeout=5):
                if method is None:
                    break
                bodies.append(body)
                channel.basic_ack(method.delivery_tag, multiple=True)
                if len(bodies) >= expected:
                    break
            channel.cancel()
        return bodies

    def delete(self, queue: str) -> None:
        for n in (1, 2, 3):
            if rabbitmq_cluster.rabbitmq.running_pid(rabbitmq_cluster.node(n)) is None:
                continue
            with self.channel(n) as channel:
                channel.queue_delete(queue)
            return


@pytest.fixture(scope="module")
def nodes(cluster: dict[str, str]) -> Nodes:
    return Nodes(cluster)


@pytest.fixture()
def names(nodes: Nodes) -> Iterator[Any]:
    made: list[str] = []

    def make(name: str) -> str:
        made.append(name)
        return name

    yield make
    for name in made:
        nodes.delete(name)


def test_stats_through_any_node_sees_every_queue_with_leader_and_members(nodes: Nodes, names: Any,
                                                                           qctl: QctlRunner) -> None:
    prefix = unique_name("clu")
    classic = {n: names(f"{prefix}-classic-{n}") for n in (1, 2, 3)}
    quorum = {n: names(f"{prefix}-quorum-{n}") for n in (2, 3)}
    for n, queue in classic.items():
        nodes.declare(n, queue, "classic")  # a classic queue lives on the node that declared it
        nodes.publish(n, queue, [b"x"] * n)
    for n, queue in quorum.items():
        nodes.declare(n, queue, "quorum")
        nodes.publish(n, queue, [b"q"] * 4)
    leaders = {queue: rabbitmq_cluster.quorum_leader(queue) for queue in quorum.values()}
    for via in (1, 2, 3):
        run = qctl("stats", *nodes.args(via), f"{prefix}-*", "-o", "json")
        assert run.rc == 0, run
        rows = {row["queue"]: row for row in run.json()}
        assert set(rows) == set(classic.values()) | set(quorum.values()), run
        for n, queue in classic.items():
            assert (rows[queue]["type"], rows[queue]["leader"], rows[queue]["members"], rows[queue]["depth"]) == \
                ("classic", nodes.names[n - 1], 1, n), rows[queue]
        for queue in quorum.values():
            assert (rows[queue]["type"], rows[queue]["leader"], rows[queue]["members"], rows[queue]["depth"]) == \
                ("quorum", leaders[queue], 3, 4), rows[queue]
        named = qctl("stats", *nodes.args(via), quorum[2], "-o", "json")  # a named queue: the per-queue request
        assert named.rc == 0 and named.json()[0]["leader"] == leaders[quorum[2]], named
        assert named.json()[0]["members"] == 3


def test_peek_redrive_and_purge_on_quorum_queues_whatever_node(nodes: Nodes, names: Any, qctl: QctlRunner,
                                                               tmp_path: Any) -> None:
    base = names(unique_name("cluq"))
    dlq = names(base + ".dlq")
    nodes.declare(1, base, "quorum")
    nodes.declare(1, dlq, "quorum")
    bodies = [f"m-{i}".encode() for i in range(30)]
    nodes.publish(1, dlq, bodies)
    leader = rabbitmq_cluster.node_number(str(rabbitmq_cluster.quorum_leader(dlq)))
    followers = [n for n in (1, 2, 3) if n != leader]
    for via in (1, 2, 3):
        peek = qctl("peek", *nodes.args(via), dlq, "-n", "5", "-o", "jsonl")
        assert peek.rc == 0, peek
        assert [row["body"].encode() for row in peek.jsonl()] == bodies[:5]
    assert nodes.depth(2, dlq) == len(bodies)  # peek took nothing
    moved = qctl("redrive", *nodes.args(followers[0]), dlq, "--to", base, "--limit", "10", "-o", "json", "-q")
    assert moved.rc == 0 and moved.json()["moved"] == 10, moved
    rest = qctl("redrive", *nodes.args(leader), dlq, "--to", base, "-o", "json", "-q")
    assert rest.rc == 0 and rest.json()["moved"] == 20, rest
    assert nodes.depth(followers[1], dlq) == 0
    backup = tmp_path / "purged.jsonl"
    purge = qctl("purge", *nodes.args(followers[1]), base, "--yes", "--backup", str(backup), "-o", "json", "-q")
    assert purge.rc == 0 and purge.json()["purged"] == len(bodies), purge
    assert len(backup.read_text().splitlines()) == 1 + len(bodies)
    assert nodes.depth(leader, base) == 0


def wait_for(what: str, check: Any, timeout: float, state: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f": {state()}" if state else ""))
        time.sleep(0.05)


@pytest.mark.parametrize("via_leader", [pytest.param(True, id="url-names-the-leader"),
                                       pytest.param(False, id="url-names-a-follower", marks=pytest.mark.slow)])
def test_killing_the_quorum_leader_mid_redrive_loses_nothing(nodes: Nodes, names: Any, clean_env: dict[str, str],
                                                             qctl: QctlRunner, via_leader: bool) -> None:
    base = names(unique_name("fail"))
    dlq = names(base + ".dlq")
    nodes.declare(1, base, "quorum")
    nodes.declare(1, dlq, "quorum")
    bodies = [f"f-{i:05d}".encode() for i in range(FAILOVER_MESSAGES)]
    nodes.publish(1, dlq, bodies)
    leader = rabbitmq_cluster.node_number(str(rabbitmq_cluster.quorum_leader(dlq)))
    survivor = next(n for n in (1, 2, 3) if n != leader)
    via = leader if via_leader else survivor
    # --rate keeps the run long enough (a few seconds) that the kill lands in its middle.
    proc = subprocess.Popen([sys.executable, "-m", "qctl", "redrive", *nodes.args(via), dlq, "--to", base,
                             "--rate", "4000", "-o", "json", "-q", "--timeout", "10"],
                            env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        wait_for("the redrive to move some", lambda: nodes.depth(survivor, base) >= 2_000, 60)
        rabbitmq_cluster.kill_node(leader)
        out, err = proc.communicate(timeout=180)
    except BaseException:
        rabbitmq_cluster.start_node(leader)
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    # Messages the dead node's consumers held come back once the cluster knows that node again: start
    # it before counting (the harness needs all three for the next test anyway).
    rabbitmq_cluster.start_node(leader)
    assert proc.returncode in (0, 3, 6), (proc.returncode, out, err)
    if proc.returncode != 0:
        assert len(err.strip().splitlines()) == 1 and err.startswith("qctl: error: "), err
    # Nothing lost: the two queues together still hold every message (a message may be in both).
    # (Messages held by a consumer cancelled on the dead node stayed checked out on RabbitMQ 3.10: see
    # adapters/rabbitmq/consume.py.)
    wait_for("every message back in a queue",
             lambda: nodes.depth(survivor, dlq) + nodes.depth(survivor, base) >= len(bodies), 60,
             lambda: f"rc {proc.returncode}, {err.strip()!r}; ready: {nodes.depth(survivor, dlq)} in the DLQ, "
                     f"{nodes.depth(survivor, base)} in the target")
    rerun = qctl("redrive", *nodes.args(survivor), dlq, "--to", base, "-o", "json", "-q", timeout=300)
    assert rerun.rc == 0, rerun
    assert nodes.depth(survivor, dlq) == 0
    assert set(nodes.drain(survivor, base)) == set(bodies)
