#!/usr/bin/env python3
"""Benchmark ``purge --backup`` and ``restore`` of 1,000,000 messages per backend, beside the nearest peer.

    .venv/bin/python bench/backup.py [--messages 1000000] [--runs 3] [--backends redis,rabbitmq,kafka]
                                     [--out bench/results/backup.md]

Whole-process wall times, median of ``--runs``, qctl and the peer alternating within each run; messages
per second and each process's peak RSS (``/usr/bin/time -v``); the load average before and after.
Bodies are 97 bytes (``message-%08d-`` and 80 ``x``), persistent where the broker asks.

* **Redis** (db 9 of the harness's Redis, list ``bench:backup``): ``qctl purge --backup FILE`` and
  ``qctl restore FILE``.  Peer: this script's own pipelined dump and restore (``peer-redis-dump`` /
  ``peer-redis-restore``, redis-py: LRANGE 10,000 at a time, write, fsync, then LTRIM what was written;
  restore LPUSHes 10,000 bodies per command, pipelined).  ``redis-cli --rdb`` is not comparable (a
  snapshot of the whole server, nothing deleted, nothing restorable into one key).  Beside them, the
  floor of a Python tool that writes and reads qctl's format (``floor-redis-dump`` / ``floor-redis-restore``):
  the peer's dump with each body in the line qctl writes for a list item (one template), and the peer's
  restore reading qctl's file, parsed a thousand lines a ``json`` call, each line once.
* **RabbitMQ** (the harness's node, a durable classic queue, persistent messages): ``qctl purge
  --backup FILE`` and ``qctl restore FILE``.  Peer: a dynamic shovel moving the queue to another one
  (``rabbitmqctl set_parameter shovel``, ``ack-mode`` on-confirm like qctl, ``src-delete-after``
  queue-length), timed from setting the parameter until the other queue holds every message.  The
  rabbitmq_shovel plugin is started inside the running node for the benchmark and stopped after it,
  without touching the node's enabled-plugins file (so the harness does not restart the node).
* **Kafka** (the harness's broker, one-partition topics): ``qctl purge --backup FILE`` and ``qctl
  restore FILE``.  Peer: ``kcat -C`` to a file and ``kcat -P`` back (acks=all, idempotent, like qctl).
  Beside them, the floor of any Python tool (``floor-kafka-dump`` / ``floor-kafka-restore``, this script
  with confluent-kafka, the library qctl uses): consume and write each value and a newline, one fsync at
  the end, nothing deleted; and read qctl's own backup file, ``json.loads`` each line (the least a tool
  reading the format must do) and produce its body.  What no Python tool can beat, whatever its format.

Also qctl's peak RSS at a tenth of the messages, to show that memory is flat.
Writes bench/results/backup.md (``--out``).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# This folder holds redis.py and kafka.py: keep it off sys.path so `import redis` finds redis-py.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]
QCTL = str(REPO / ".venv" / "bin" / "qctl")
PEER_CHUNK = 10_000
FLOOR = "Python floor"  # the least a Python tool does (floor-*): not a peer, a bound


def env() -> dict[str, str]:
    text = (REPO / ".brokers" / "env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def body(i: int) -> bytes:
    return b"message-%08d-" % i + b"x" * 80


@dataclass
class Timed:
    seconds: float
    rss_mib: float
    cpu: float  # user + system seconds of the process (and its children)
    broker_cpu: float  # the broker's CPU seconds meanwhile (other clients' work included)


def process_cpu(pid: int | None) -> float:
    """CPU seconds a process has used so far (/proc/PID/stat utime + stime)."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv: list[str], *, broker: int | None, shell: bool = False, check: Callable[[], None] | None = None,
          environment: dict[str, str] | None = None) -> Timed:
    """Wall time, peak RSS and CPU of one whole process (it must succeed; ``check`` then verifies its work),
    and the CPU the broker (process ``broker``) used meanwhile.

    RSS and CPU come from /usr/bin/time -v: a child's own ru_maxrss would include this process, which it
    starts as a fork of.  CPU time is steadier than wall time on a shared machine."""
    command = ["/bin/sh", "-c", argv[0]] if shell else argv
    broker_before = process_cpu(broker)
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, env=environment)
    seconds = time.perf_counter() - started
    broker_used = process_cpu(broker) - broker_before
    if proc.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(command)}\n{proc.stderr[-3000:]}")
    report = dict(line.strip().rsplit(": ", 1) for line in proc.stderr.splitlines() if ": " in line)
    rss = int(report["Maximum resident set size (kbytes)"])
    cpu = float(report["User time (seconds)"]) + float(report["System time (seconds)"])
    if check is not None:
        check()
    return Timed(seconds, rss / 1024, cpu, broker_used)


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


@dataclass
class Case:
    """One operation of one tool: its command line (as shown) and its runs."""

    backend: str
    operation: str
    tool: str
    command: str
    runs: list[Timed] = field(default_factory=list)

    def seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    def rss(self) -> float:
        return max(run.rss_mib for run in self.runs)

    def cpu(self) -> float:
        return statistics.median(run.cpu for run in self.runs)

    def broker_cpu(self) -> float:
        return statistics.median(run.broker_cpu for run in self.runs)


# --- Redis -----------------------------------------------------------------------------------------------


def _dump_durably(url: str, key: str, path: str, lines: Callable[[list[bytes]], bytes], first: bytes = b"") -> None:
    """LRANGE ``key`` 10,000 at a time, write ``lines(items)``, fsync, then LTRIM what was written; the folder
    fsynced at the end: durable, deleting only what was written."""
    import redis

    client = redis.Redis.from_url(url)
    with open(path, "xb") as file:
        file.write(first)
        while True:
            items = client.lrange(key, 0, PEER_CHUNK - 1)
            if not items:
                break
            file.write(lines(items))
            file.flush()
            os.fsync(file.fileno())
            client.ltrim(key, len(items), -1)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    os.fsync(directory)
    os.close(directory)


def _push_all(url: str, key: str, bodies: Iterator[bytes]) -> None:
    """RPUSH ``bodies`` in order, 10,000 per command, ten commands a round trip."""
    import redis

    pipe = redis.Redis.from_url(url).pipeline(transaction=False)
    chunk: list[bytes] = []
    for item in bodies:
        chunk.append(item)
        if len(chunk) == PEER_CHUNK:
            pipe.rpush(key, *chunk)
            chunk = []
            if len(pipe) >= 10:
                pipe.execute()
    if chunk:
        pipe.rpush(key, *chunk)
    pipe.execute()


def peer_redis_dump(url: str, key: str, path: str) -> None:
    """Dump ``key`` to ``path`` (one base64 body a line), durably, deleting only what was written."""
    _dump_durably(url, key, path, lambda items: b"".join(base64.b64encode(item) + b"\n" for item in items))


def peer_redis_restore(url: str, key: str, path: str) -> None:
    """Push every body of ``path`` back in order, 10,000 per RPUSH, pipelined."""
    with open(path, "rb") as file:
        _push_all(url, key, (base64.b64decode(line) for line in file))


def floor_redis_dump(url: str, key: str, path: str) -> None:
    """The least a Python tool writing qctl's format can do: the peer's dump, each body in a line of the same
    text qctl writes for a list item (one template, the body escaped by the C encoder)."""
    import json

    escape = json.encoder.encode_basestring
    head = f'{{"queue": {escape(key)}, "position": "-'
    tail = ('", "partition": null, "offset": null, "key": null, "key_encoding": null, "headers": {}, '
            '"properties": {}, "body": %s, "body_encoding": %s, "timestamp": null, "redelivered": null, '
            '"delivery_count": null, "dead_letter": null, "header_pairs": []}\n')
    written = 0

    def lines(items: list[bytes]) -> bytes:
        nonlocal written
        out = []
        for item in items:
            written += 1
            try:
                text, kind = item.decode(), '"utf-8"'
            except UnicodeDecodeError:
                text, kind = base64.b64encode(item).decode(), '"base64"'
            out.append(head + str(written) + tail % (escape(text), kind))
        return "".join(out).encode()

    first = f'{{"qctl_backup": 2, "backend": "redis", "queue": {escape(key)}}}\n'.encode()
    _dump_durably(url, key, path, lines, first)


def floor_redis_restore(url: str, key: str, path: str) -> None:
    """The least a Python restore of a qctl backup file can do: parse its lines (a thousand a ``json`` call,
    the cheapest way to parse them), push each body back in order, 10,000 per RPUSH, pipelined.  It parses
    each line once; the contract's restore validates every line before it publishes any, with flat memory."""
    import json

    decode = json.JSONDecoder().decode

    def bodies() -> Iterator[bytes]:
        with open(path, encoding="utf-8") as file:
            next(file)  # the header line
            while True:
                lines = [line for _, line in zip(range(1000), file, strict=False)]
                if not lines:
                    return
                for row in decode("[" + ",".join(lines) + "]"):
                    text = row["body"]
                    yield text.encode() if row["body_encoding"] == "utf-8" else base64.b64decode(text)

    _push_all(url, key, bodies())


def floor_kafka_dump(bootstrap: str, topic: str, path: str, count: str) -> None:
    """The least a Python backup of ``topic`` can do: consume in batches, write each value and a newline."""
    import confluent_kafka as ck

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"floor-{uuid.uuid4().hex[:8]}",
                            "enable.auto.commit": False, "fetch.max.bytes": 64 << 20, "check.crcs": False,
                            "max.partition.fetch.bytes": 8 << 20, "queued.min.messages": 200_000})
    consumer.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
    got, wanted = 0, int(count)
    with open(path, "xb") as file:
        while got < wanted:
            batch = consumer.consume(10_000, 5.0)
            if not batch:
                raise RuntimeError(f"only {got} of {wanted} records arrived")
            file.write(b"".join([record.value() + b"\n" for record in batch if record.error() is None]))
            got += len(batch)
        file.flush()
        os.fsync(file.fileno())
    consumer.close()


def floor_kafka_restore(bootstrap: str, topic: str, path: str) -> None:
    """The least a Python restore of a qctl backup file can do: parse each line, produce its body."""
    import json

    import confluent_kafka as ck

    producer = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                            "linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
    with open(path, "rb") as file:
        next(file)  # the header line
        for line in file:
            row = json.loads(line)
            body = row["body"].encode() if row["body_encoding"] == "utf-8" else base64.b64decode(row["body"])
            while True:
                try:
                    producer.produce(topic, body)
                    break
                except BufferError:
                    producer.poll(0.01)
    if producer.flush(60) != 0:
        raise RuntimeError("records left unsent")


def bench_redis(count: int, runs: int, folder: Path) -> list[Case]:
    import redis

    url = env()["QCTL_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/9"
    client = redis.Redis.from_url(url)
    key = "bench:backup"
    me = [sys.executable, str(Path(__file__).resolve())]
    pid = int(client.info("server")["process_id"])

    def seed(n: int) -> None:
        client.delete(key)
        pipe = client.pipeline(transaction=False)
        for start in range(0, n, 10_000):
            pipe.lpush(key, *[body(i) for i in range(start, min(n, start + 10_000))])
        pipe.execute()

    def holds(n: int) -> Callable[[], None]:
        def check() -> None:
            assert client.llen(key) == n, (client.llen(key), n)
        return check

    file = folder / "redis.jsonl"
    peer_file = folder / "redis.b64"
    floor_file = folder / "redis.floor.jsonl"
    cases = {name: Case("Redis", operation, tool, command) for name, operation, tool, command in (
        ("q-dump", "purge --backup", "qctl", f"qctl purge -u {url} {key} --yes --backup FILE -q -o json"),
        ("q-load", "restore", "qctl", f"qctl restore FILE --to {key} -u {url} -q -o json"),
        ("p-dump", "purge --backup", "peer", f"bench/backup.py peer-redis-dump {url} {key} FILE"),
        ("p-load", "restore", "peer", f"bench/backup.py peer-redis-restore {url} {key} FILE"),
        ("f-dump", "purge --backup", FLOOR, f"bench/backup.py floor-redis-dump {url} {key} FILE"),
        ("f-load", "restore", FLOOR, f"bench/backup.py floor-redis-restore {url} {key} QCTL-FILE"))}
    try:
        for _ in range(runs):
            seed(count)
            for path in (file, peer_file):
                path.unlink(missing_ok=True)
            cases["q-dump"].runs.append(timed([QCTL, "purge", "-u", url, key, "--yes", "--backup", str(file), "-q",
                                               "-o", "json"], check=holds(0), broker=pid))
            cases["q-load"].runs.append(timed([QCTL, "restore", str(file), "--to", key, "-u", url, "-q", "-o", "json"],
                                              check=holds(count), broker=pid))
            cases["p-dump"].runs.append(timed([*me, "peer-redis-dump", url, key, str(peer_file)], check=holds(0),
                                              broker=pid))
            cases["p-load"].runs.append(timed([*me, "peer-redis-restore", url, key, str(peer_file)],
                                              check=holds(count), broker=pid))
            floor_file.unlink(missing_ok=True)
            cases["f-dump"].runs.append(timed([*me, "floor-redis-dump", url, key, str(floor_file)], check=holds(0),
                                              broker=pid))
            cases["f-load"].runs.append(timed([*me, "floor-redis-restore", url, key, str(file)], check=holds(count),
                                              broker=pid))
        small = small_runs("Redis", lambda: seed(count // 10), url, key, folder, holds(0), holds(count // 10), pid)
    finally:
        client.delete(key)
        for path in (file, peer_file, floor_file):
            path.unlink(missing_ok=True)
    return [*cases.values(), *small]


def small_runs(backend: str, seed: Callable[[], None], url: str, queue: str, folder: Path,
               emptied: Callable[[], None], refilled: Callable[[], None], pid: int | None) -> list[Case]:
    """qctl's purge --backup and restore of a tenth of the messages, once: the RSS to compare."""
    file = folder / "small.jsonl"
    file.unlink(missing_ok=True)
    seed()
    dump = Case(backend, "purge --backup, 1/10", "qctl", "the same, a tenth of the messages")
    load_ = Case(backend, "restore, 1/10", "qctl", "the same, a tenth of the messages")
    dump.runs.append(timed([QCTL, "purge", "-u", url, queue, "--yes", "--backup", str(file), "-q", "-o", "json"],
                           check=emptied, broker=pid))
    load_.runs.append(timed([QCTL, "restore", str(file), "--to", queue, "-u", url, "-q", "-o", "json"],
                            check=refilled, broker=pid))
    file.unlink()
    return [dump, load_]


# --- RabbitMQ --------------------------------------------------------------------------------------------


def rabbit_harness() -> Any:
    sys.path.insert(0, str(REPO / "tools"))
    from harness import rabbitmq

    return rabbitmq


SHOVEL_APPS = "rabbit_plugins:dependencies(false, [rabbitmq_shovel], rabbit_plugins:list(rabbit_plugins:plugins_dir()))"


def start_shovel(harness: Any) -> list[str]:
    """Start rabbitmq_shovel (and the apps it needs) inside the running node; the apps this started."""
    expression = (f"Wanted = [A || A <- {SHOVEL_APPS}, not lists:member(A, rabbit_plugins:active())], "
                  "ok = rabbit:start_apps(Wanted), io:format(\"~w~n\", [Wanted]).")
    output = harness.rabbitmqctl("eval", expression).strip().splitlines()
    started = output[0].strip("[]") if output else ""
    return [name.strip() for name in started.split(",") if name.strip()]


def stop_shovel(harness: Any, started: list[str]) -> None:
    if started:
        harness.rabbitmqctl("eval", f"rabbit:stop_apps([{', '.join(started)}]).")


def bench_rabbitmq(count: int, runs: int, folder: Path) -> list[Case]:
    import pika

    harness = rabbit_harness()
    urls = env()
    amqp, api = urls["QCTL_TEST_AMQP_URL"], urls["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"]
    url = f"{amqp}?management={api}"
    queues = [f"bench-backup-{uuid.uuid4().hex[:6]}-{side}" for side in ("a", "b")]
    pid = harness.running_pid()

    def channel() -> Any:
        return pika.BlockingConnection(pika.URLParameters(amqp)).channel()

    def depth(name: str) -> int:
        ch = channel()
        try:
            return int(ch.queue_declare(name, passive=True).method.message_count)
        finally:
            ch.connection.close()

    def holds(name: str, n: int) -> Callable[[], None]:
        def check() -> None:
            assert depth(name) == n, (name, depth(name), n)
        return check

    def seed(name: str, n: int) -> None:
        ch = channel()
        ch.queue_purge(name)
        properties = pika.BasicProperties(delivery_mode=2)
        for i in range(n):
            ch.basic_publish("", name, body(i), properties)
        ch.connection.close()
        deadline = time.monotonic() + 600
        while depth(name) < n and time.monotonic() < deadline:
            time.sleep(0.5)
        assert depth(name) == n

    def shovel(source: str, target: str, n: int) -> Timed:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        definition = ({"src-protocol": "amqp091", "src-uri": amqp, "src-queue": source,
                                 "dest-protocol": "amqp091", "dest-uri": amqp, "dest-queue": target,
                                 "ack-mode": "on-confirm", "prefetch-count": 2000, "src-delete-after": "queue-length"})
        broker_before = process_cpu(pid)
        started = time.perf_counter()
        status, _ = harness.api("PUT", f"/api/parameters/shovel/%2F/{name}", {"value": definition})
        assert status in (200, 201, 204), status
        while depth(target) < n:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        broker_used = process_cpu(pid) - broker_before
        deadline = time.monotonic() + 60
        while harness.api("GET", f"/api/parameters/shovel/%2F/{name}")[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.2)  # the shovel deletes itself once it has moved the queue's length
        assert depth(source) == 0
        return Timed(seconds, float("nan"), float("nan"), broker_used)

    ch = channel()
    for name in queues:
        ch.queue_declare(name, durable=True)
    ch.connection.close()
    file = folder / "rabbitmq.jsonl"
    started_apps = start_shovel(harness)
    cases = {name: Case("RabbitMQ", operation, tool, command) for name, operation, tool, command in (
        ("q-dump", "purge --backup", "qctl", "qctl purge -u 'amqp://...?management=...' QUEUE --yes --backup FILE "
                                             "-q -o json"),
        ("q-load", "restore", "qctl", "qctl restore FILE --to QUEUE -u 'amqp://...?management=...' -q -o json"),
        ("p-move", "queue to queue", "shovel",
         "PUT /api/parameters/shovel/%2F/NAME {\"value\": {\"src-queue\": A, \"dest-queue\": B, \"ack-mode\": "
         "\"on-confirm\", \"prefetch-count\": 2000, \"src-delete-after\": \"queue-length\", ...}} (the "
         "management API's form of `rabbitmqctl set_parameter shovel`)"))}
    try:
        source, other = queues
        seed(source, count)
        for _ in range(runs):
            file.unlink(missing_ok=True)
            cases["q-dump"].runs.append(timed([QCTL, "purge", "-u", url, source, "--yes", "--backup", str(file), "-q",
                                               "-o", "json"], check=holds(source, 0), broker=pid))
            cases["q-load"].runs.append(timed([QCTL, "restore", str(file), "--to", source, "-u", url, "-q", "-o",
                                               "json"], check=holds(source, count), broker=pid))
            cases["p-move"].runs.append(shovel(source, other, count))
            source, other = other, source
        small = small_runs("RabbitMQ", lambda: seed(source, count // 10), url, source, folder, holds(source, 0),
                           holds(source, count // 10), pid)
    finally:
        file.unlink(missing_ok=True)
        ch = channel()
        for name in queues:
            ch.queue_delete(name)
        ch.connection.close()
        stop_shovel(harness, started_apps)
    return [*cases.values(), *small]


# --- Kafka -------------------------------------------------------------------------------------------------


def bench_kafka(count: int, runs: int, folder: Path) -> list[Case]:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic, OffsetSpec
    from kafka.structs import TopicPartition

    url = env()["QCTL_TEST_KAFKA_URL"]
    bootstrap = url.split("://", 1)[1].split("?")[0]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=60_000)
    made: list[str] = []
    pid = int((REPO / ".brokers" / "kafka" / "pid").read_text())

    def topic() -> str:
        name = f"bench-backup-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(name, 1, 1)])
        made.append(name)
        return name

    def records(name: str) -> int:
        tp = TopicPartition(name, 0)
        start = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST})[tp].offset
        end = admin.list_partition_offsets({tp: OffsetSpec.LATEST})[tp].offset
        return int(end - start)

    def holds(name: str, n: int) -> Callable[[], None]:
        def check() -> None:
            assert records(name) == n, (name, records(name), n)
        return check

    def lines(path: Path, n: int) -> Callable[[], None]:
        def check() -> None:
            with open(path, "rb") as file:
                found = sum(1 for _ in file)
            assert found == n, (path, found, n)
        return check

    seed_file = folder / "kafka-seed.tsv"
    with open(seed_file, "wb") as file:
        file.writelines(b"k%d\t%s\n" % (i, body(i)) for i in range(count))
    produce = "kcat -P -b {b} -t {t} -K '\\t' -X acks=all -X enable.idempotence=true -X linger.ms=20 < {f}"
    consume = "kcat -C -b {b} -t {t} -o beginning -e -q -f '%k\\t%s\\n' > {f}"
    cases = {name: Case("Kafka", operation, tool, command) for name, operation, tool, command in (
        ("q-dump", "purge --backup", "qctl", f"qctl purge -u {url} TOPIC --yes --backup FILE -q -o json"),
        ("q-load", "restore", "qctl", f"qctl restore FILE --to TOPIC -u {url} -q -o json"),
        ("p-dump", "purge --backup", "kcat", consume.format(b=bootstrap, t="TOPIC", f="FILE")),
        ("p-load", "restore", "kcat", produce.format(b=bootstrap, t="TOPIC", f="FILE")),
        ("f-dump", "purge --backup", FLOOR, f"bench/backup.py floor-kafka-dump {bootstrap} TOPIC FILE N"),
        ("f-load", "restore", FLOOR, f"bench/backup.py floor-kafka-restore {bootstrap} TOPIC QCTL-FILE"))}
    file, peer_file, floor_file = folder / "kafka.jsonl", folder / "kafka.tsv", folder / "kafka.floor"
    me = [sys.executable, str(Path(__file__).resolve())]

    def seed(n: int) -> str:
        name = topic()
        source = seed_file if n == count else folder / "kafka-small.tsv"
        if n != count:
            with open(source, "wb") as handle:
                handle.writelines(b"k%d\t%s\n" % (i, body(i)) for i in range(n))
        subprocess.run(["/bin/sh", "-c", produce.format(b=bootstrap, t=name, f=source)], check=True)
        assert records(name) == n
        return name

    try:
        for _ in range(runs):
            for path in (file, peer_file):
                path.unlink(missing_ok=True)
            first, second, third = seed(count), topic(), topic()
            cases["q-dump"].runs.append(timed([QCTL, "purge", "-u", url, first, "--yes", "--backup", str(file), "-q",
                                               "-o", "json"], check=holds(first, 0), broker=pid))
            cases["q-load"].runs.append(timed([QCTL, "restore", str(file), "--to", second, "-u", url, "-q", "-o",
                                               "json"], check=holds(second, count), broker=pid))
            cases["p-dump"].runs.append(timed([consume.format(b=bootstrap, t=second, f=peer_file)], shell=True,
                                              check=lines(peer_file, count), broker=pid))
            cases["p-load"].runs.append(timed([produce.format(b=bootstrap, t=third, f=peer_file)], shell=True,
                                              check=holds(third, count), broker=pid))
            floor_file.unlink(missing_ok=True)
            fourth = topic()
            cases["f-dump"].runs.append(timed([*me, "floor-kafka-dump", bootstrap, third, str(floor_file),
                                               str(count)], check=lines(floor_file, count), broker=pid))
            cases["f-load"].runs.append(timed([*me, "floor-kafka-restore", bootstrap, fourth, str(file)],
                                              check=holds(fourth, count), broker=pid))
            admin.delete_topics([first, second, third, fourth])
            made.clear()
        small_topic = seed(count // 10)
        small = small_runs("Kafka", lambda: None, url, small_topic, folder, holds(small_topic, 0),
                           holds(small_topic, count // 10), pid)
    finally:
        for path in (file, peer_file, floor_file, seed_file, folder / "kafka-small.tsv"):
            path.unlink(missing_ok=True)
        if made:
            admin.delete_topics(made)
        admin.close()
    return [*cases.values(), *small]


# --- report ----------------------------------------------------------------------------------------------------


BENCHES: dict[str, Callable[[int, int, Path], list[Case]]] = {
    "redis": bench_redis, "rabbitmq": bench_rabbitmq, "kafka": bench_kafka}


def report(results: list[Case], count: int, runs: int, loads: list[tuple[str, str, str]], started: str,
           args: list[str], notes: str) -> str:
    lines = [
        "# Backups: `purge --backup` and `restore` of 1,000,000 messages", "",
        f"Produced by `{shlex.join(['.venv/bin/python', 'bench/backup.py', *args])}` on {started}, "
        f"{os.cpu_count()} CPUs shared with other work, Python {platform.python_version()}, the harness's "
        "brokers on the same host (loopback).  Whole-process wall times, median of "
        f"{runs} run(s), qctl and the peer alternating within each run; {count:,} messages of 97-byte bodies; "
        "peak RSS from `/usr/bin/time -v` (largest of the runs).", "",
        "| backend | load average before | after |", "| --- | --- | --- |",
        *[f"| {backend} | {before} | {after} |" for backend, before, after in loads], "",
        "| backend | operation | tool | median time | messages/s | rate / peer's | peak RSS | CPU us/msg "
        "| broker CPU us/msg | all runs (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    peers = {(case.backend): case for case in results if case.tool != "qctl" and case.operation == "queue to queue"}
    by_op = {(case.backend, case.operation): case for case in results if case.tool not in ("qctl", FLOOR)}
    for case in results:
        n = count // 10 if "1/10" in case.operation else count
        rate = n / case.seconds()
        ratio = ""
        peer = by_op.get((case.backend, case.operation)) or peers.get(case.backend)
        if case.tool in ("qctl", FLOOR) and peer is not None and n == count:
            ratio = f"{rate / (count / peer.seconds()):.2f}"
        inside = case.rss() != case.rss()  # NaN: the peer runs inside the broker (the shovel)
        rss = "inside the broker" if inside else f"{case.rss():.0f} MiB"
        cpu = "(in the broker's)" if inside else f"{case.cpu() / n * 1e6:.1f}"
        lines.append(f"| {case.backend} | {case.operation} | {case.tool} | {case.seconds():.2f} s | "
                     f"**{rate:,.0f}** | {ratio} | {rss} | {cpu} | {case.broker_cpu() / n * 1e6:.1f} | "
                     f"{', '.join(f'{r.seconds:.2f}' for r in case.runs)} |")
    lines += ["", "Commands (FILE a new file in a temporary folder; QUEUE/TOPIC made by the script):", ""]
    lines += [f"- {case.backend}, {case.tool}, {case.operation}: `{case.command}`" for case in results
              if "1/10" not in case.operation]
    lines += ["", notes, ""]
    return "\n".join(lines)


# The peers and floors this script runs as processes of their own (timed whole, like qctl): name -> function.
HELPERS: dict[str, Callable[..., None]] = {
    "peer-redis-dump": peer_redis_dump, "peer-redis-restore": peer_redis_restore,
    "floor-redis-dump": floor_redis_dump, "floor-redis-restore": floor_redis_restore,
    "floor-kafka-dump": floor_kafka_dump, "floor-kafka-restore": floor_kafka_restore}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in HELPERS:
        HELPERS[sys.argv[1]](*sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="redis,rabbitmq,kafka")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "backup.md")
    parser.add_argument("--notes", type=Path, help="Markdown appended to the report (findings)")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results: list[Case] = []
    loads = []
    with tempfile.TemporaryDirectory(prefix="qctl-bench-backup-") as folder:
        for name in args.backends.split(","):
            before = load()
            results += BENCHES[name](args.messages, args.runs, Path(folder))
            loads.append((name, before, load()))
            print(f"{name} done: load {loads[-1][1]} -> {loads[-1][2]}", file=sys.stderr)
    notes = args.notes.read_text() if args.notes else ""
    text = report(results, args.messages, args.runs, loads, started, sys.argv[1:], notes)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
