#!/usr/bin/env python3
"""Soak: ``qctl stats --watch 1`` for N minutes per broker while another process pushes and pops.

    .venv/bin/python bench/soak.py [--minutes 10] [--brokers redis,rabbitmq,kafka] [--out bench/results/soak.md]

For each broker, at the same time (one thread each, so the brokers' soaks overlap):

* a load process (this script with ``--load``) creates a queue, seeds it, then pushes and pops
  ``--rate`` messages per second each way until the soak ends (Redis LPUSH/RPOP, RabbitMQ
  publish/basic_get+ack, Kafka produce/consume in a group with commits);
* ``qctl stats --watch 1 QUEUE -o jsonl`` runs as a real process; every line it prints is a frame,
  parsed as JSON and checked (the queue, an integer depth); a frame fails if a line does not parse,
  something is written to stderr, or the process ends before it is stopped;
* every ``SAMPLE`` seconds the qctl process's RSS (``/proc/PID/status`` VmRSS) and its TCP
  connections (its socket inodes matched against ``/proc/PID/net/tcp``, grouped by the broker port
  they go to) are sampled, and the broker's own client list where it has one (Redis ``CLIENT LIST``
  by name, RabbitMQ ``/api/connections`` by ``connection_name``);
* in between, every ``FAST`` seconds, the process's fd table is read, and whenever a socket has
  appeared the TCP table too: so a connection that lives for one request or one frame is counted
  (the most open at once, and how many were opened over the soak), which 5-s samples mostly miss;
* at the end qctl gets SIGINT and must exit 0.

A soak passes when no frame failed, qctl exited 0, RSS stayed flat, and no sample found more than one
connection to any of the broker's ports: the protocol port, and for RabbitMQ the management API's
HTTP port as well (qctl keeps one keep-alive connection to it beside the AMQP one).

RSS "flat" compares the median of the samples in the second minute (after imports and the first
frames have settled) with the median of the last minute: within 10%.  A broker whose adapter or
server is missing is reported as not run, with the reason.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# bench/redis.py is a neighbour: keep this folder off sys.path so `import redis` finds redis-py.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / ".venv" / "bin" / "python")
SAMPLE = 5.0
FAST = 0.02  # seconds between looks at the process's open sockets (its fd table) for new connections
RATE = 50.0  # messages per second pushed, and popped
SEED = 1_000


def env() -> dict[str, str]:
    path = REPO / ".brokers" / "env"
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# --- the load process ------------------------------------------------------------------------------

def load(backend: str, queue: str, seconds: float, rate: float) -> None:
    """Push and pop ``rate`` messages a second each way on ``queue`` until SIGTERM (at most ``seconds``)."""
    urls = env()
    pushed = popped = 0
    interval = 1.0 / rate
    deadline = time.monotonic() + seconds  # a bound in case the soak never says stop
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, _frame: stopped.append(number))
    if backend == "redis":
        import redis

        client = redis.Redis.from_url(urls["QCTL_TEST_REDIS_URL"])
        client.delete(queue)
        client.lpush(queue, *[b"seed-%d" % i for i in range(SEED)])

        def push() -> None:
            client.lpush(queue, b"m-%d" % pushed)

        def pop() -> bool:
            return client.rpop(queue) is not None

        def finish() -> None:
            client.delete(queue)
    elif backend == "rabbitmq":
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(urls["QCTL_TEST_AMQP_URL"]))
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        for i in range(SEED):
            channel.basic_publish("", queue, b"seed-%d" % i)

        def push() -> None:
            channel.basic_publish("", queue, b"m-%d" % pushed)

        def pop() -> bool:
            method, _, _ = channel.basic_get(queue)
            if method is None:
                return False
            channel.basic_ack(method.delivery_tag)
            return True

        def finish() -> None:
            channel.queue_delete(queue)
            connection.close()
    elif backend == "kafka":
        from confluent_kafka import Consumer, Producer
        from confluent_kafka.admin import AdminClient, NewTopic

        servers = urls["QCTL_TEST_KAFKA_URL"].removeprefix("kafka://")
        admin = AdminClient({"bootstrap.servers": servers})
        for future in admin.create_topics([NewTopic(queue, 3, 1)]).values():
            future.result(30)
        producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
        for i in range(SEED):
            producer.produce(queue, b"seed-%d" % i)
        producer.flush(30)
        consumer = Consumer({"bootstrap.servers": servers, "group.id": f"{queue}-pop",
                             "auto.offset.reset": "earliest", "enable.auto.commit": True})
        consumer.subscribe([queue])

        def push() -> None:
            producer.produce(queue, b"m-%d" % pushed)
            producer.poll(0)

        def pop() -> bool:
            message = consumer.poll(0.01)
            return message is not None and message.error() is None

        def finish() -> None:
            producer.flush(30)
            consumer.close()
            for future in admin.delete_topics([queue]).values():
                future.result(30)
    elif backend == "sqs":
        import botocore.session

        endpoint = urls["QCTL_TEST_SQS_URL"].replace("sqs+", "", 1)
        sqs = botocore.session.get_session().create_client("sqs", region_name="us-east-1", endpoint_url=endpoint,
                                                           aws_access_key_id="soak", aws_secret_access_key="soak")
        queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        for start in range(0, SEED, 10):
            sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "MessageBody": f"seed-{i}"} for i in range(start, start + 10)])

        def push() -> None:
            sqs.send_message(QueueUrl=queue_url, MessageBody=f"m-{pushed}")

        def pop() -> bool:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
            for message in got.get("Messages", []):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                return True
            return False

        def finish() -> None:
            sqs.delete_queue(QueueUrl=queue_url)
    elif backend == "mqtt":
        import paho.mqtt.client as paho

        # MQTT's queue-like thing here is a subtree of retained messages: a push retains a message on a
        # new topic under it, a pop clears the oldest one (an empty retained publish).
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{queue}-load")
        client.connect("127.0.0.1", int(urls["QCTL_TEST_MQTT_URL"].rsplit(":", 1)[1]))
        client.loop_start()
        root = queue.removesuffix("/#")
        for i in range(SEED):
            client.publish(f"{root}/seed-{i}", f"seed-{i}", qos=1, retain=True)
        topics = [f"{root}/seed-{i}" for i in range(SEED)]

        def push() -> None:
            topics.append(f"{root}/m-{pushed}")
            client.publish(topics[-1], f"m-{pushed}", qos=1, retain=True)

        def pop() -> bool:
            client.publish(topics.pop(0), b"", qos=1, retain=True).wait_for_publish(5)
            return True

        def finish() -> None:
            for topic in topics:
                client.publish(topic, b"", qos=1, retain=True)
            client.publish(f"{root}/done", b"", qos=1).wait_for_publish(5)
            client.loop_stop()
            client.disconnect()
    else:
        raise SystemExit(f"no load for {backend}")
    print(json.dumps({"ready": True}), flush=True)
    next_at = time.monotonic()
    while time.monotonic() < deadline and not stopped:
        push()
        pushed += 1
        if pop():
            popped += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    finish()
    print(json.dumps({"pushed": pushed, "popped": popped}), flush=True)


# --- measuring qctl ---------------------------------------------------------------------------------

def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def socket_inodes(pid: int) -> set[str]:
    """The inodes of ``pid``'s open sockets (cheap: its fd table, not the system's TCP table)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    return inodes


def tcp_sockets(pid: int) -> dict[str, tuple[int, int, bool]]:
    """``pid``'s TCP connections, established or being opened: inode -> (local port, remote port, established).

    A socket pair of the process itself (pika wakes its I/O loop through one on loopback TCP) is
    not a connection to a broker: a socket whose remote port is the local port of another socket
    of the same process is left out."""
    inodes = socket_inodes(pid)
    found: dict[str, tuple[int, int, bool]] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] in ("01", "02") and parts[9] in inodes:  # ESTABLISHED, SYN_SENT
                found[parts[9]] = (int(parts[1].rsplit(":", 1)[1], 16), int(parts[2].rsplit(":", 1)[1], 16),
                                   parts[3] == "01")
    own = {local for local, _, _ in found.values()}
    return {inode: ports for inode, ports in found.items() if ports[1] not in own}


def tcp_connections(pid: int) -> tuple[dict[int, int], set[int]]:
    """Established TCP connections of ``pid``: (count per remote port, the local ports of those sockets)."""
    counts: dict[int, int] = {}
    locals_ = set()
    for local, remote, established in tcp_sockets(pid).values():
        if established:
            counts[remote] = counts.get(remote, 0) + 1
            locals_.add(local)
    return counts, locals_


def broker_clients(backend: str, urls: dict[str, str], ports: set[int]) -> int | None:
    """How many connections the broker itself lists from this qctl process (None where it keeps no list).

    Other qctl processes (other people's tests) use the same brokers: a connection is this process's
    when its client port is one of the process's own local ports."""
    try:
        if backend == "redis":
            import redis

            with redis.Redis.from_url(urls["QCTL_TEST_REDIS_URL"]) as client:
                return sum(1 for row in client.client_list()
                           if row.get("name") == "qctl" and int(row["addr"].rsplit(":", 1)[1]) in ports)
        if backend == "rabbitmq":
            import base64

            auth = base64.b64encode(b"qctl:qctl-secret").decode()
            request = urllib.request.Request(urls["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"] + "/api/connections",
                                             headers={"Authorization": "Basic " + auth})
            with urllib.request.urlopen(request, timeout=5) as response:
                rows = json.loads(response.read())
            return sum(1 for row in rows if (row.get("client_properties") or {}).get("connection_name") == "qctl"
                       and row.get("peer_port") in ports)
    except Exception:
        return None
    return None


@dataclass
class Soak:
    backend: str
    url: str
    ports: dict[int, str]  # broker port -> what it is
    queue: str = ""
    frames: int = 0
    bad_frames: list[str] = field(default_factory=list)
    stderr: str = ""
    exit_code: int | None = None
    rss: list[tuple[float, int]] = field(default_factory=list)
    connections: dict[str, int] = field(default_factory=dict)  # what -> max seen
    crowded: dict[str, int] = field(default_factory=dict)  # what -> samples with more than one connection
    samples: int = 0
    opened: dict[str, set[str]] = field(default_factory=dict)  # what -> every connection seen (socket inodes)
    broker_listed: int | None = None
    load: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0


def run_soak(soak: Soak, minutes: float, rate: float) -> None:
    urls = env()
    soak.queue = f"soak-{soak.backend}-{int(time.time())}" + ("/#" if soak.backend == "mqtt" else "")
    seconds = minutes * 60
    loader = subprocess.Popen([PYTHON, __file__, "--load", soak.backend, soak.queue, "--seconds", str(seconds + 120),
                               "--rate", str(rate)], stdout=subprocess.PIPE, text=True)
    assert loader.stdout is not None
    ready = loader.stdout.readline()
    if "ready" not in ready:
        soak.skipped = f"the load process did not start: {ready!r}"
        loader.kill()
        return
    qctl_env = {k: v for k, v in os.environ.items() if not k.startswith("QCTL_")} | {"NO_COLOR": "1"}
    if soak.backend == "sqs":  # ElasticMQ takes any credentials; qctl finds these in the AWS chain
        qctl_env.update(AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak", AWS_DEFAULT_REGION="us-east-1")
    args = [PYTHON, "-m", "qctl", "stats", "--watch", "1", soak.queue, "-u", soak.url, "-o", "jsonl"]
    if soak.backend == "rabbitmq":
        args += ["--management-url", urls["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"]]
    # SIGINT is how the soak stops qctl (Ctrl-C); a shell that started this script in the background
    # left SIGINT ignored, which a child inherits (and Python then installs no KeyboardInterrupt).
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=qctl_env,
                            stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None and proc.stderr is not None

    def frames() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                row = json.loads(line)
                assert row["queue"] == soak.queue and isinstance(row["depth"], int), row
            except (ValueError, AssertionError, KeyError) as exc:
                soak.bad_frames.append(f"{line[:200]!r}: {exc}")
                continue
            soak.frames += 1

    def errors() -> None:
        assert proc.stderr is not None
        soak.stderr = proc.stderr.read()

    stop = threading.Event()

    def connections() -> None:
        """Between the 5-s samples: every change of the process's sockets, looked at within FAST seconds, so a
        connection that lives for one request is seen (and counted) too."""
        seen: set[str] = set()
        while not stop.wait(FAST):
            inodes = socket_inodes(proc.pid)
            if inodes <= seen:
                continue  # nothing opened since the last look: no need to read the system's TCP table
            seen = inodes
            note(tcp_sockets(proc.pid), crowding=False)

    noting = threading.Lock()

    def note(sockets: dict[str, tuple[int, int, bool]], *, crowding: bool) -> None:
        counts: dict[str, int] = {}
        with noting:
            for inode, (_, remote, established) in sockets.items():
                what = soak.ports.get(remote, f"port {remote}")
                soak.opened.setdefault(what, set()).add(inode)
                if established:
                    counts[what] = counts.get(what, 0) + 1
            for what, count in counts.items():
                soak.connections[what] = max(soak.connections.get(what, 0), count)
                if crowding and count > 1:
                    soak.crowded[what] = soak.crowded.get(what, 0) + 1

    threads = [threading.Thread(target=frames, daemon=True), threading.Thread(target=errors, daemon=True),
               threading.Thread(target=connections, daemon=True)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    while time.monotonic() - started < seconds and proc.poll() is None:
        time.sleep(SAMPLE)
        elapsed = time.monotonic() - started
        rss = rss_kib(proc.pid)
        if rss is not None:
            soak.rss.append((elapsed, rss))
        sockets = tcp_sockets(proc.pid)
        local_ports = {local for local, _, established in sockets.values() if established}
        soak.samples += 1
        note(sockets, crowding=True)
        listed = broker_clients(soak.backend, urls, local_ports)
        if listed is not None:
            soak.broker_listed = max(soak.broker_listed or 0, listed)
    soak.seconds = time.monotonic() - started
    stop.set()
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        soak.exit_code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        soak.exit_code = None  # reported: it did not stop on SIGINT
    for thread in threads:
        thread.join(timeout=10)
    loader.terminate()
    out, _ = loader.communicate(timeout=120)
    for line in out.splitlines():
        if line.startswith("{"):
            soak.load.update(json.loads(line))


def growth(soak: Soak) -> tuple[int, int, float]:
    """(median RSS KiB in minute 2, median in the last minute, growth %)."""
    early = [kib for at, kib in soak.rss if 60 <= at < 120] or [kib for _, kib in soak.rss[:6]]
    late = [kib for at, kib in soak.rss if at >= soak.seconds - 60] or [kib for _, kib in soak.rss[-6:]]
    first, last = int(statistics.median(early)), int(statistics.median(late))
    return first, last, 100.0 * (last - first) / first


def verdict(soak: Soak) -> list[str]:
    """What failed (empty: the soak passed)."""
    problems = []
    if soak.exit_code != 0:
        problems.append("did not stop on SIGINT" if soak.exit_code is None else f"exit {soak.exit_code}")
    if soak.bad_frames:
        problems.append(f"{len(soak.bad_frames)} bad frame(s)")
    if soak.stderr.strip():
        problems.append("stderr: " + soak.stderr.strip().splitlines()[-1][:200])
    if soak.rss:
        _, _, pct = growth(soak)
        if abs(pct) > 10:
            problems.append(f"RSS moved {pct:+.1f}%")
    # Every endpoint counts, the RabbitMQ management API's HTTP port too: one connection to each at most.
    problems += [f"{count} connections to {what}" for what, count in sorted(soak.connections.items()) if count > 1]
    return problems


def report(soaks: list[Soak], minutes: float, rate: float, out: Path, command: str) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Soak: `stats --watch 1` under load",
        "",
        f"Produced by `{command}` on {now}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"the harness's brokers on loopback, every broker's soak at the same time.",
        f"{minutes:g} minutes per broker; a separate load process pushed and popped {rate:g} messages/s each way "
        f"on the watched queue (seeded with {SEED:,}). RSS sampled every {SAMPLE:g} s from /proc; connections are "
        "the qctl process's established TCP sockets (from /proc) by broker port: the most open at once (over "
        f"the samples and a look at every new socket, every {FAST * 1000:g} ms) and how many were opened over "
        "the soak; and the broker's own client list where it has one. A soak fails with more than one "
        "connection at once to any port (RabbitMQ's management HTTP port included).",
        "",
        "| broker | frames | bad frames | exit | RSS minute 2 | RSS last minute | change | RSS max "
        "| connections (most at once, by port) | connections opened | broker's client list (max) "
        "| pushed / popped | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for soak in soaks:
        if soak.skipped:
            lines.append(f"| {soak.backend} | not run: {soak.skipped} |" + " |" * 11)
            continue
        first, last, pct = growth(soak) if soak.rss else (0, 0, 0.0)
        peak = max((kib for _, kib in soak.rss), default=0)
        conns = ", ".join(f"{what}: {count}" + (f" ({soak.crowded[what]} of {soak.samples} samples over 1)"
                                                  if what in soak.crowded else "")
                          for what, count in sorted(soak.connections.items())) or "-"
        opened = ", ".join(f"{what}: {len(inodes)}" for what, inodes in sorted(soak.opened.items())) or "-"
        listed = "-" if soak.broker_listed is None else str(soak.broker_listed)
        problems = verdict(soak)
        lines.append(
            f"| {soak.backend} | {soak.frames} in {soak.seconds:.0f} s | {len(soak.bad_frames)} | {soak.exit_code} "
            f"| {first / 1024:.1f} MiB | {last / 1024:.1f} MiB | {pct:+.1f}% | {peak / 1024:.1f} MiB | {conns} "
            f"| {opened} | {listed} | {soak.load.get('pushed', '?')} / {soak.load.get('popped', '?')} "
            f"| {'pass' if not problems else 'FAIL: ' + '; '.join(problems)} |")
    lines += ["", "RSS over time (MiB, one sample a minute):", ""]
    for soak in soaks:
        if soak.rss:
            per_minute = [f"{kib / 1024:.1f}" for at, kib in soak.rss if int(at) % 60 < SAMPLE]
            lines.append(f"- {soak.backend}: " + ", ".join(per_minute))
    for soak in soaks:
        if soak.bad_frames:
            lines += ["", f"Bad frames of {soak.backend} (first 5):", ""]
            lines += [f"    {frame}" for frame in soak.bad_frames[:5]]
    out.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--brokers", default="redis,rabbitmq,kafka,sqs,mqtt")
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "soak.md")
    parser.add_argument("--load", nargs=2, metavar=("BACKEND", "QUEUE"), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(args.load[0], args.load[1], args.seconds, args.rate)
        return 0
    urls = env()

    def port(url: str) -> int:
        return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    known = {
        "redis": Soak("redis", urls["QCTL_TEST_REDIS_URL"], {port(urls["QCTL_TEST_REDIS_URL"]): "redis"}),
        "rabbitmq": Soak("rabbitmq", urls["QCTL_TEST_AMQP_URL"],
                         {port(urls["QCTL_TEST_AMQP_URL"]): "amqp",
                          port(urls["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"]): "management http"}),
        "kafka": Soak("kafka", urls["QCTL_TEST_KAFKA_URL"], {port(urls["QCTL_TEST_KAFKA_URL"]): "kafka"}),
        "sqs": Soak("sqs", urls["QCTL_TEST_SQS_URL"], {port(urls["QCTL_TEST_SQS_URL"]): "sqs http"}),
        "mqtt": Soak("mqtt", urls["QCTL_TEST_MQTT_URL"], {port(urls["QCTL_TEST_MQTT_URL"]): "mqtt"}),
    }
    soaks = []
    for name in args.brokers.split(","):
        import importlib.util

        if importlib.util.find_spec(f"qctl.adapters.{name}.adapter") is None:
            soaks.append(Soak(name, "", {}, skipped=f"qctl has no {name} adapter in this tree"))
        else:
            soaks.append(known[name])
    threads = [threading.Thread(target=run_soak, args=(soak, args.minutes, args.rate)) for soak in soaks
               if not soak.skipped]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    command = "python bench/soak.py " + " ".join(sys.argv[1:])
    report(soaks, args.minutes, args.rate, args.out, command.strip())
    print(args.out.read_text())
    return 0 if all(not verdict(soak) for soak in soaks if not soak.skipped) else 1


if __name__ == "__main__":
    sys.exit(main())
