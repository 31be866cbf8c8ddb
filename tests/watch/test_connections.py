"""The TCP connections a ``stats --watch`` process holds, counted after each of several frames.

A watch keeps its clients for its whole life: Kafka one admin client (one connection to the one
broker, no consumer made per frame), RabbitMQ one AMQP connection and one keep-alive connection to
the management API (no new HTTP connection per request).  bench/soak.py measures the same over ten
minutes under load (bench/results/soak.md); this counts frames, not seconds, and reads /proc every few
milliseconds meanwhile, so a connection opened and closed within a frame is counted as well.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pika
import pytest

from tests.kafka.driver import KafkaDriver

FRAMES = 12
SETTLED = 2  # frames before counting: the first connects (librdkafka drops its bootstrap connection then)


def sockets(pid: int) -> set[tuple[int, int]]:
    """Established TCP connections of ``pid`` as (local port, remote port), from /proc, leaving out a socket
    pair of the process itself (pika wakes its I/O loop through one on loopback)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        found = set()
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "01" and parts[9] in inodes:  # ESTABLISHED
                    found.add((int(parts[1].rsplit(":", 1)[1], 16), int(parts[2].rsplit(":", 1)[1], 16)))
    except OSError:
        return set()  # the process is ending
    own = {local for local, _ in found}
    return {(local, remote) for local, remote in found if remote not in own}


@dataclass
class Seen:
    """What the watch held while frames SETTLED+1..FRAMES were drawn, by broker port."""

    most: Counter[int] = field(default_factory=Counter)  # the most connections open at once
    made: Counter[int] = field(default_factory=Counter)  # distinct connections seen (a new one per local port)


def watch(args: list[str], env: dict[str, str], queue: str) -> Seen:
    """Run ``qctl stats --watch 0.1 ... -o jsonl``; /proc is read every few milliseconds from the end of frame
    SETTLED to the end of frame FRAMES, so a connection opened for one request is seen too."""
    proc = subprocess.Popen([sys.executable, "-m", "qctl", "stats", "--watch", "0.1", "-o", "jsonl", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen, every = Seen(), set()
    counting, done = threading.Event(), threading.Event()

    def sample() -> None:
        counting.wait()
        while not done.is_set():
            now = sockets(proc.pid)
            every.update(now)
            for remote, count in Counter(remote for _, remote in now).items():
                seen.most[remote] = max(seen.most[remote], count)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for frame in range(1, FRAMES + 1):
            line = proc.stdout.readline()
            assert line, f"the watch ended after {frame - 1} frames: {proc.communicate(timeout=30)[1]}"
            assert json.loads(line)["queue"] == queue
            if frame == SETTLED:
                counting.set()
        done.set()
        counting.set()
        sampler.join(10)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and not err, (proc.returncode, err)
    seen.made = Counter(remote for _, remote in every)
    return seen


def port(url: str) -> int:
    return urlsplit(url.split(",")[0]).port or 0


def test_a_kafka_watch_holds_one_connection_to_the_broker(kafka_driver: KafkaDriver,
                                                          clean_env: dict[str, str]) -> None:
    topic = kafka_driver.unique("watch-conns")
    kafka_driver.create_topic(topic, 3)
    kafka_driver.produce(topic, [(None, b"x", [])] * 30)
    try:
        seen = watch([topic, "-u", kafka_driver.url], clean_env, topic)
    finally:
        kafka_driver.delete(topic)
    one = Counter({port(kafka_driver.url): 1})
    assert (seen.most, seen.made) == (one, one), seen  # before: a consumer a frame, two connections of its own


@pytest.fixture()
def rabbit_queue(amqp_url: str) -> Iterator[str]:
    name = f"watch-conns-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.queue_declare(name, durable=True)
    for _ in range(5):
        channel.basic_publish("", name, b"x")
    yield name
    channel.queue_delete(name)
    connection.close()


def test_a_rabbitmq_watch_holds_one_amqp_and_one_management_connection(
        amqp_url: str, management_url: str, rabbit_queue: str, clean_env: dict[str, str]) -> None:
    # ~20 management requests a frame: the queue, the policies, and its dead-letter candidates
    seen = watch([rabbit_queue, "-u", amqp_url, "--management-url", management_url], clean_env, rabbit_queue)
    one_each = Counter({port(amqp_url): 1, port(management_url): 1})
    assert (seen.most, seen.made) == (one_each, one_each), seen  # before: a new HTTP connection a request


def test_an_sqs_watch_of_a_queue_and_its_dlq_holds_one_connection(clean_env: dict[str, str]) -> None:
    from tests.conftest import brokers_up
    from tests.sqs.driver import SQSDriver

    sqs = SQSDriver(brokers_up("sqs"))
    source, dlq = sqs.unique("watch-conns"), sqs.unique("watch-conns-dlq")
    sqs.create(dlq)
    sqs.create(source, dlq=dlq, max_receive_count=3)  # each frame asks the queue and its DLQ
    try:
        seen = watch([source, "-u", sqs.url], clean_env, source)
    finally:
        sqs.delete(source)
        sqs.delete(dlq)
    one = Counter({port(sqs.url): 1})
    assert (seen.most, seen.made) == (one, one), seen  # before: a pool thread, and a connection, per request
