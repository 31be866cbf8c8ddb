"""A broker restart in the middle of a redrive and of a purge --backup, on every backend.

For each backend (Redis with AOF persistence, RabbitMQ, Kafka, the SQS server), trials run as real
qctl processes against fresh queues; once every trial has made progress the broker is stopped with
SIGTERM (``harness.registry.terminate``: its data is kept), then started again.  Each qctl must end
by itself (exit 3 or 6, or 0 when it had finished first) with nothing lost, and a re-run must
complete:

* redrive: every seeded message is in the DLQ or the target afterwards (both is allowed, except on
  Redis), and after the re-run the DLQ is empty and the target holds every message;
* purge --backup: every seeded message is still in the queue or in the backup file, and after the
  re-run (with a new backup file) the queue is empty and the two files hold every message.

ElasticMQ (the SQS server) keeps its queues but not their messages across a restart, by design: what
was still on it when it stopped is gone, for every client.  So on SQS "nothing lost" can only be
checked on qctl's side: the backup file's lines are whole, distinct messages that were seeded, and
what the server dropped is counted in the table as ``dropped by the server``, not as lost.  (It
also writes queue definitions out a moment after they are created, so a queue made just before the
stop may be gone too; the re-run then gets it made again, empty.)

In the normal run the five trials of each operation share one restart of their broker (started a
moment apart and paced differently, so the stop finds each at another point), and the four brokers
restart at the same time: a Kafka restart alone takes ~30 s here.  The ``slow`` variant restarts the
broker once per trial.  Each run writes its table to ``bench/results/restarts.md`` (this test is
what generates that file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import pytest
import redis

from qctl.testing.driver import unique_name
from tests.conftest import BROKERS, REPO, brokers_up

sys.path.insert(0, str(BROKERS.parent))
from harness import registry  # tools/ is no package: the way bench/ imports it

TRIALS = 5
RESULTS = REPO / "bench" / "results" / "restarts.md"
EXIT_OK = (0, 3, 6)  # done before the stop, unavailable, partial
WAIT_AFTER_STOP = 30.0  # a qctl still running this long after its broker stopped has hung (it is then killed)


@dataclass
class Backend:
    """How the trials reach one broker: qctl's URL, seeding and reading behind qctl's back."""

    name: str  # the registry name restarted
    url: str
    seed: Callable[[str, list[bytes]], None]  # create the queue holding these bodies
    make: Callable[[str], None]  # create an empty queue
    bodies: Callable[[str], list[bytes]]  # what waits in the queue (a multiset)
    delete: Callable[[str], None]
    messages: int  # per redrive trial
    purge_messages: int  # per purge trial: more, since a purge is much faster than a paced redrive
    rates: tuple[int, ...]  # redrive --rate of each trial
    keeps_messages: bool = True  # False: the server drops every message when it restarts (ElasticMQ)
    never_both: bool = False  # a redrive never leaves a message in both queues (Redis: one atomic step)


def redis_backend(env: dict[str, str]) -> Backend:
    client = redis.Redis.from_url(env["QCTL_TEST_REDIS_PERSIST_URL"], socket_timeout=30)

    def seed(name: str, bodies: list[bytes]) -> None:
        client.delete(name)
        for start in range(0, len(bodies), 5000):
            client.lpush(name, *bodies[start:start + 5000])

    return Backend("redis-persist", env["QCTL_TEST_REDIS_PERSIST_URL"], seed, lambda name: None,
                   lambda name: list(client.lrange(name, 0, -1)), lambda name: client.delete(name),
                   messages=6000, purge_messages=30_000, rates=(600, 900, 1200, 1500, 1800), never_both=True)


def rabbitmq_backend(env: dict[str, str]) -> Backend:
    params = pika.URLParameters(env["QCTL_TEST_AMQP_URL"])
    management = env["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"]

    def connect() -> pika.BlockingConnection:
        return pika.BlockingConnection(params)

    def count(channel: Any, name: str) -> int:
        return int(channel.queue_declare(name, passive=True).method.message_count)

    def make(name: str) -> None:
        with connect() as connection:
            connection.channel().queue_declare(name, durable=True)

    def seed(name: str, bodies: list[bytes]) -> None:
        with connect() as connection:
            channel = connection.channel()
            channel.queue_declare(name, durable=True)
            persistent = pika.BasicProperties(delivery_mode=2)
            for body in bodies:
                channel.basic_publish("", name, body, persistent)
            deadline = time.monotonic() + 60
            while count(channel, name) < len(bodies) and time.monotonic() < deadline:
                time.sleep(0.05)

    def bodies(name: str) -> list[bytes]:
        """Every message, taken unacked and given back by closing the connection (order does not matter)."""
        with connect() as connection:
            channel = connection.channel()
            expected = count(channel, name)
            found: list[bytes] = []
            if expected:
                channel.basic_qos(prefetch_count=expected)
                for method, _props, body in channel.consume(name, inactivity_timeout=5):
                    if method is None:
                        break
                    found.append(body)
                    if len(found) >= expected:
                        break
        # The broker requeues them after the connection is gone: wait, or the next reader (a re-run
        # counting its start snapshot) would see fewer.
        with connect() as connection:
            channel = connection.channel()
            deadline = time.monotonic() + 30
            while count(channel, name) < expected and time.monotonic() < deadline:
                time.sleep(0.05)
        return found

    def delete(name: str) -> None:
        with connect() as connection:
            connection.channel().queue_delete(name)

    return Backend("rabbitmq", f"{env['QCTL_TEST_AMQP_URL']}?management={management}", seed, make, bodies, delete,
                   messages=6000, purge_messages=20_000, rates=(600, 900, 1200, 1500, 1800))


def kafka_backend(env: dict[str, str]) -> Backend:
    from tests.kafka.driver import KafkaDriver

    driver = KafkaDriver(env)

    def seed(name: str, bodies: list[bytes]) -> None:
        driver.create_topic(name, 1)
        driver.produce(name, [(None, body, []) for body in bodies])

    def bodies(name: str) -> list[bytes]:
        """Records still waiting: after the start offset (purge) and after redrive's committed offset."""
        from kafka.errors import KafkaError

        for attempt in range(60):  # just restarted, the group coordinator loads for a while
            try:
                start, _end = driver.offsets(name)
                first = max(start.get(0, 0), driver.committed("qctl-redrive", name).get(0, 0))
                return [record.value for record in driver.records(name) if record.offset >= first]
            except KafkaError:
                if attempt == 59:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    return Backend("kafka", env["QCTL_TEST_KAFKA_URL"], seed, lambda name: driver.create_topic(name, 1), bodies,
                   driver.delete, messages=6000, purge_messages=20_000, rates=(600, 900, 1200, 1500, 1800))


def sqs_backend(env: dict[str, str]) -> Backend:
    from tests.sqs.driver import SQSDriver

    driver = SQSDriver(env)
    client = driver.client

    def make(name: str) -> None:
        client.create_queue(QueueName=name)

    def seed(name: str, bodies: list[bytes]) -> None:
        url = client.create_queue(QueueName=name)["QueueUrl"]
        batches = [bodies[i:i + 10] for i in range(0, len(bodies), 10)]

        def send(batch: list[bytes]) -> None:
            client.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body.decode()}
                                                             for i, body in enumerate(batch)])

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(send, batches))

    def bodies(name: str) -> list[bytes]:
        try:
            url = client.get_queue_url(QueueName=name)["QueueUrl"]
        except client.exceptions.QueueDoesNotExist:
            return []  # ElasticMQ writes its queue definitions out a moment after a create: lost with it
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        waiting = sum(int(attributes[key]) for key in ("ApproximateNumberOfMessages",
                                                       "ApproximateNumberOfMessagesNotVisible"))
        return [b"?"] * waiting  # only counted: reading an SQS queue without changing it is costly (tests/sqs)

    def delete(name: str) -> None:
        try:
            client.delete_queue(QueueUrl=client.get_queue_url(QueueName=name)["QueueUrl"])
        except client.exceptions.QueueDoesNotExist:
            pass

    return Backend("sqs", env["QCTL_TEST_SQS_URL"], seed, make, bodies, delete, messages=1000, purge_messages=1000,
                   rates=(100, 150, 200, 250, 300), keeps_messages=False)


BACKENDS: dict[str, Callable[[dict[str, str]], Backend]] = {
    "redis-persist": redis_backend, "rabbitmq": rabbitmq_backend, "kafka": kafka_backend, "sqs": sqs_backend}


# --- one trial ---------------------------------------------------------------------------------------

@dataclass
class Trial:
    backend: Backend
    operation: str  # "redrive" or "purge --backup"
    number: int
    folder: Path
    queue: str = ""
    target: str = ""
    seeded: list[bytes] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    started: float = 0.0
    rc: int | None = None
    err: str = ""
    seconds: float = 0.0
    finished_before_stop: bool = False
    rerun_rc: int | None = None
    row: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def backup(self) -> Path:
        return self.folder / f"{self.queue}.jsonl"

    @property
    def rerun_backup(self) -> Path:
        return self.folder / f"{self.queue}.rerun.jsonl"

    def prepare(self) -> None:
        tag = "rd" if self.operation == "redrive" else "pg"
        self.queue = unique_name(f"restart-{tag}{self.number}")
        count = self.backend.messages if self.operation == "redrive" else self.backend.purge_messages
        self.seeded = [f"{self.queue}-{i:05d}".encode() for i in range(count)]
        self.backend.seed(self.queue, self.seeded)
        if self.operation == "redrive":
            self.target = self.queue + "-target"
            self.backend.make(self.target)

    def argv(self, *, rerun: bool = False) -> list[str]:
        common = ["-u", self.backend.url, "-o", "json", "-q", "--timeout", "5"]
        if self.operation == "redrive":
            pace = [] if rerun else ["--rate", str(self.backend.rates[self.number % len(self.backend.rates)])]
            return ["redrive", self.queue, "--to", self.target, *pace, *common]
        return ["purge", self.queue, "--yes", "--backup", str(self.rerun_backup if rerun else self.backup), *common]

    def start(self, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "qctl", *self.argv()], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def progressed(self) -> bool:
        """Has it done some of its work (so that the stop lands in its middle)?"""
        if self.proc is not None and self.proc.poll() is not None:
            return True
        if self.operation == "redrive":
            return time.monotonic() - self.started > 1.5 + self.number * 0.3
        return self.backup.exists() and self.backup.stat().st_size > 300  # the first chunk is in it

    def wait(self) -> None:
        assert self.proc is not None
        try:
            _out, self.err = self.proc.communicate(timeout=WAIT_AFTER_STOP)
            self.rc = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, self.err = self.proc.communicate()
            self.rc = None
            self.problems.append(f"hung: still running {WAIT_AFTER_STOP:.0f} s after the broker stopped")
        self.seconds = time.monotonic() - self.started
        if self.rc not in EXIT_OK:
            self.problems.append(f"exit {self.rc}: {self.err.strip()[-300:]}")
        elif self.rc != 0 and not (len(self.err.strip().splitlines()) == 1 and self.err.startswith("qctl: error:")):
            self.problems.append(f"not one line on stderr: {self.err!r}")

    def check(self, env: dict[str, str], qctl_env: dict[str, str]) -> None:
        """After the restart: nothing lost, then a re-run that completes."""
        backend, seeded = self.backend, Counter(self.seeded)
        source = Counter(backend.bodies(self.queue))
        if self.operation == "redrive":
            target = Counter(backend.bodies(self.target))
            self.row.update(after_source=sum(source.values()), after_target=sum(target.values()))
            if backend.keeps_messages:
                lost = seeded - (source | target)
                both = sum((source & target).values())
                self.row.update(lost=sum(lost.values()), both=both)
                if lost:
                    self.problems.append(f"{sum(lost.values())} message(s) in neither queue")
                if both and backend.never_both:
                    self.problems.append(f"{both} message(s) in both queues")
            else:
                self.row.update(lost=0, dropped=len(self.seeded) - sum(source.values()) - sum(target.values()))
        else:
            written = self.backup_bodies(self.backup)
            self.row.update(after_source=sum(source.values()), backed_up=len(written))
            if len(set(written)) != len(written) or not set(written) <= set(seeded):
                self.problems.append("the backup holds duplicates or messages never seeded")
            if backend.keeps_messages:
                lost = seeded - (source | Counter(written))
                self.row.update(lost=sum(lost.values()))
                if lost:
                    self.problems.append(f"{sum(lost.values())} message(s) neither in the queue nor the backup")
            else:
                self.row.update(lost=0, dropped=len(self.seeded) - len(written) - sum(source.values()))
        if not backend.keeps_messages:  # and maybe not a queue created just before the stop: make it again
            for queue in (self.queue, self.target):
                if queue:
                    backend.make(queue)
        rerun = subprocess.run([sys.executable, "-m", "qctl", *self.argv(rerun=True)], env=qctl_env, text=True,
                               capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        self.rerun_rc = rerun.returncode
        if rerun.returncode != 0:
            self.problems.append(f"re-run exit {rerun.returncode}: {rerun.stderr.strip()[-300:]}")
            return
        if backend.bodies(self.queue):
            self.problems.append("the queue is not empty after the re-run")
        if self.operation == "redrive" and backend.keeps_messages and \
                set(backend.bodies(self.target)) != set(self.seeded):
            self.problems.append("the target does not hold every message after the re-run")
        if self.operation != "redrive" and backend.keeps_messages:
            every = self.backup_bodies(self.backup) + self.backup_bodies(self.rerun_backup)
            if set(every) != set(self.seeded):
                self.problems.append("the two backups do not hold every message")

    @staticmethod
    def backup_bodies(path: Path) -> list[bytes]:
        if not path.exists():
            return []
        lines = path.read_text().splitlines()
        return [json.loads(line)["body"].encode() for line in lines[1:] if line.strip()]


def restart_with(backend: Backend, trials: list[Trial], qctl_env: dict[str, str], env: dict[str, str]) -> float:
    """Start the trials a moment apart, stop the broker once each has progressed, start it again."""
    for trial in trials:
        trial.start(qctl_env)
        time.sleep(0.15)
    deadline = time.monotonic() + 60
    while not all(trial.progressed() for trial in trials) and time.monotonic() < deadline:
        time.sleep(0.02)
    stopped = time.monotonic()
    for trial in trials:
        trial.finished_before_stop = trial.proc is not None and trial.proc.poll() is not None
    registry.terminate(backend.name)
    waiters = [threading.Thread(target=trial.wait) for trial in trials]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join()  # every qctl ends while its broker is down (or hangs: a problem)
    registry.start(backend.name)
    return time.monotonic() - stopped


def run_backend(name: str, env: dict[str, str], folder: Path, qctl_env: dict[str, str],
                one_per_restart: bool) -> list[Trial]:
    backend = BACKENDS[name](env)
    trials = [Trial(backend, operation, number, folder) for operation in ("redrive", "purge --backup")
              for number in range(TRIALS)]
    try:
        for trial in trials:
            trial.prepare()
        groups = [[trial] for trial in trials] if one_per_restart else [trials]
        for group in groups:
            away = restart_with(backend, group, qctl_env, env)
            for trial in group:
                trial.row["away"] = away
        for trial in trials:
            trial.check(env, qctl_env)
    finally:
        for trial in trials:
            for queue in (trial.queue, trial.target):
                if queue:
                    try:
                        backend.delete(queue)
                    except Exception:
                        pass
    return trials


def table(trials: list[Trial], variant: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Broker restarts in the middle of an operation",
        "",
        f"Generated by `tests/topology/test_restarts.py` ({variant}) on {stamp}, {os.cpu_count()} CPUs, the "
        "harness's brokers on loopback (Redis: `redis-persist`, AOF). Each trial is a real qctl process on fresh "
        "queues; the broker got SIGTERM once every trial of its group had made progress "
        "(`harness.registry.terminate`, data kept), then was started again; qctl had `--timeout 5`. "
        "`both` counts messages in the DLQ and the target at once (allowed, except on Redis); `lost` must be 0; "
        f"a qctl still running {WAIT_AFTER_STOP:.0f} s after the stop is killed and marked hung. "
        "ElasticMQ keeps no messages across a restart, so on SQS what was on the server when it stopped is "
        "`dropped by the server` (for every client alike), not lost by qctl.",
        "",
        "| backend | operation | trial | messages | done before the stop | qctl exit | qctl ran (s) | broker away (s) "
        "| left in source | in target | backed up | both | dropped by the server | lost | re-run exit | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for trial in trials:
        row = trial.row
        lines.append(
            f"| {trial.backend.name} | {trial.operation} | {trial.number + 1} | {len(trial.seeded)} "
            f"| {'yes' if trial.finished_before_stop else 'no'} | {trial.rc} | {trial.seconds:.1f} "
            f"| {row.get('away', 0):.1f} | {row.get('after_source', '-')} | {row.get('after_target', '-')} "
            f"| {row.get('backed_up', '-')} | {row.get('both', '-')} | {row.get('dropped', '-')} "
            f"| {row.get('lost', '-')} | {trial.rerun_rc} | {'; '.join(trial.problems) or 'ok'} |")
    total_lost = sum(trial.row.get("lost", 0) or 0 for trial in trials)
    lines += ["", f"{len(trials)} trials, lost messages: {total_lost}."]
    return "\n".join(lines) + "\n"


def run_all(tmp_path: Path, qctl_env: dict[str, str], one_per_restart: bool) -> list[Trial]:
    env = brokers_up("redis-persist", "rabbitmq", "kafka", "sqs")
    qctl_env = {**qctl_env, "AWS_ACCESS_KEY_ID": "restart-test", "AWS_SECRET_ACCESS_KEY": "restart-test"}
    # RESTART_TEST_BACKENDS=redis-persist,sqs runs a subset while working on one (the table is then
    # not written: bench/results/restarts.md always holds a whole run).
    names = [name for name in os.environ.get("RESTART_TEST_BACKENDS", ",".join(BACKENDS)).split(",") if name]
    for name in names:
        (tmp_path / name).mkdir()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:  # the brokers restart at the same time
        futures = [pool.submit(run_backend, name, env, tmp_path / name, qctl_env, one_per_restart) for name in names]
        results = [future.result() for future in futures]
    trials = [trial for group in results for trial in group]
    variant = "slow variant: one restart per trial" if one_per_restart else "normal run: one restart per broker"
    text = table(trials, variant)
    if names == list(BACKENDS):
        RESULTS.write_text(text)
    print(text)
    return trials


def assert_trials(trials: list[Trial]) -> None:
    """Every problem fails the test, a hang included (no trial is excused)."""
    failed = [f"{t.backend.name} {t.operation} #{t.number + 1}: {'; '.join(t.problems)}" for t in trials if t.problems]
    assert not failed, "\n".join(failed)


def test_a_broker_restart_mid_redrive_and_mid_purge_loses_nothing(tmp_path: Path, clean_env: dict[str, str]) -> None:
    assert_trials(run_all(tmp_path, clean_env, one_per_restart=False))


@pytest.mark.slow
def test_one_broker_restart_per_trial(tmp_path: Path, clean_env: dict[str, str]) -> None:
    assert_trials(run_all(tmp_path, clean_env, one_per_restart=True))
