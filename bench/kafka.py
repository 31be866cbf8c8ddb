#!/usr/bin/env python3
"""Benchmark qctl on Kafka, side by side with Kafka's own tool and kcat, whole-process timings (medians).

    .venv/bin/python bench/kafka.py [--url kafka://127.0.0.1:39092] [--runs 5] [--records 1000000]
                                    [--redrive-runs 3] [--out bench/results/kafka.md]

1. ``qctl stats --groups -o json`` over a 200-partition topic read by 20 groups, vs Kafka's
   ``ConsumerGroupCommand --describe --all-groups`` (JVM, from the harness's Maven jars).
   Goal: qctl <= 0.2x the JVM tool's time.
2. Peeking 10,000 records: ``qctl peek -n 10000 -o jsonl`` vs ``kcat -C -c 10000 -e``.
   Goal: <= 3x kcat.
3. ``qctl redrive`` of ``--records`` (1,000,000) Spring-style dead letters, 4 partitions to 4,
   in records per second (seeded with kcat, not timed).  Goal: >= 50,000 records/s.
   Also the CPU time qctl and its worker processes spent per record (less sensitive to other
   load on the machine than wall time), and the same redrive in one process
   (``QCTL_KAFKA_REDRIVE_WORKERS=1``).

Floors measured in the same run: ``python -c "import kafka"``, ``qctl --version`` and a 1-record peek.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from importlib.util import find_spec
from pathlib import Path

# This file is called kafka.py: keep its folder off sys.path so `import kafka` finds kafka-python.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from kafka import KafkaAdminClient, TopicPartition  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

QCTL = [str(REPO / ".venv" / "bin" / "qctl")]
STATS_PARTITIONS = 200
STATS_GROUPS = 20
PEEK = 10_000
NOTES = """
## Redrive: what each step gained

Measured while tuning (2026-11-21, same machine), 300,000 of the records above (4 partitions), the
variants interleaved, 3 runs each, medians; CPU = user + system time of qctl and its workers per record
(the machine is shared, so wall time varies by up to 2x between runs; CPU per record much less):

| step | records/s | CPU us/record |
| --- | --- | --- |
| before (commit 1c10a44): kafka-python, gzip, pure-Python CRC32C, 512 KB batches, 20 ms linger | 22,700 | 42.4 |
| + the C `crc32c` package (kafka-python picks it up by itself; still gzip) | 23,700 | 41.3 |
| + no compression when CRC32C is in C, 1 MB batches, 50 ms linger (one process) | 26,900 | 35.6 |
| + one worker process per CPU (2), each with its own partitions, consumer and producer | 48,100 | 37.1 |
| the same without `crc32c` (falls back to gzip) | 44,800 | 40.0 |
| confluent-kafka (librdkafka) mover instead of kafka-python, one process | 142,400 | 7.3 |

- kafka-python costs ~35 us of CPU a record (read ~12 us, `KafkaProducer.send` ~20-25 us: partitioner,
  accumulator, a future and callbacks per record), so one process tops out at ~25-28k records/s and two
  processes on two CPUs at ~50k, only while nothing else needs the CPUs: the same worker variant
  measured 25,000 records/s in an earlier full run of this benchmark (1-minute load 3-5, another
  project's broker using a CPU). Appending to the producer's private accumulator instead of `send()`
  would save ~6 us a record (measured): not done, it is not a public API.
- The test records have an 80-byte run of `x`, which gzip shrinks ~10x; with real payloads the
  pure-Python CRC32C over gzip's output costs more, so `crc32c` matters more than it shows here.
- confluent-kafka does the same protocol (assign without joining the group, acks=all + idempotence,
  murmur2 partitioning like the Java clients, commit only after `flush` saw every record acknowledged)
  in C at ~6-7 us a record: the only variant that meets 50,000 records/s with margin on 2 shared CPUs.
  It is optional: qctl uses it when it is installed (`QCTL_KAFKA_ENGINE` overrides).

## Peek: why 3x kcat is out of reach

kcat is a C binary that reads 10,000 records in ~0.02-0.04 s; 3x that is 0.06-0.12 s. The floors
above are higher: the Python interpreter with qctl's CLI (`qctl --version`) ~0.1 s and importing
kafka-python alone ~0.15-0.25 s (it imports its admin, consumer and producer and builds its protocol
classes at import time), so a 1-record peek needs ~0.3-0.4 s before reading anything big. Then
~30 us a record: kafka-python decodes each record in Python, and qctl builds a row and JSON for it.

What was cut (interleaved medians while tuning: 1-record peek 0.43 -> 0.32 s, 10,000-record peek
0.79 -> 0.67 s; the committed results before this work had 0.82 s for 10,000):
- kafka-python 3.0 holds every Metadata request back 100 ms after the previous one, the bootstrap's
  included (the Java client's KAFKA-4024), so a new consumer waited ~0.1 s to learn the partition
  leader: the consumer's next Metadata request is now let through at once;
- a poll with nothing to fetch yet sleeps `retry_backoff_ms` (100 ms): the first polls are short;
- fetches are sized to `-n` (64 KB for a few records, 8 MB for many) instead of always 8 MB.
Taking partitions and offsets from the consumer instead of an admin client saved ~10 ms here but
costs a Metadata request for every topic in the cluster (11 ms at this broker's 381 topics, more on
big clusters): not taken.

## stats --groups

Unchanged and still well under 0.2x: one Metadata request, one ListOffsets per leader for start and
end offsets, committed offsets of every group in one OffsetFetch per coordinator, one DescribeGroups.
"""


def default_url() -> str:
    env = REPO / ".brokers" / "env"
    pairs = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line) if env.exists() else {}
    return pairs.get("QCTL_TEST_KAFKA_URL", "kafka://127.0.0.1:39092")


def seconds(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800,
                   env={**os.environ, **(env or {})})
    return time.perf_counter() - started


def median_of(argv: list[str], runs: int) -> float:
    seconds(argv)  # warm the page cache and the broker
    return statistics.median(seconds(argv) for _ in range(runs))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def seed(bootstrap: str, topic: str, count: int, headers: list[str] = ()) -> None:  # type: ignore[assignment]
    lines = "".join(f"k{i}\tbody-{i}-{'x' * 80}\n" for i in range(count)).encode()
    command = ["kcat", "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-X", "linger.ms=50"]
    for header in headers:
        command += ["-H", header]
    subprocess.run(command, input=lines, check=True, timeout=600)


Timings = tuple[list[str], list[str], float, float]


def bench_stats(admin: KafkaAdminClient, url: str, bootstrap: str, runs: int) -> Timings:
    from harness.kafka import tools_classpath

    topic = f"bench-stats-{uuid.uuid4().hex[:6]}"
    admin.create_topics({topic: {"num_partitions": STATS_PARTITIONS, "replication_factor": 1}}, wait_for_metadata=True)
    seed(bootstrap, topic, 20_000)
    tps = [TopicPartition(topic, p) for p in range(STATS_PARTITIONS)]
    for g in range(STATS_GROUPS):
        admin.alter_group_offsets(f"{topic}-g{g}", {tp: OffsetAndMetadata(0, "", -1) for tp in tps})
    qctl = [*QCTL, "stats", "-u", url, "--groups", "-o", "json"]
    jvm = ["java", "-cp", tools_classpath(), "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
           "--bootstrap-server", bootstrap, "--describe", "--all-groups"]
    return qctl, jvm, median_of(qctl, runs), median_of(jvm, runs)


def bench_peek(admin: KafkaAdminClient, url: str, bootstrap: str, runs: int) -> Timings:
    topic = f"bench-peek-{uuid.uuid4().hex[:6]}"
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
    seed(bootstrap, topic, PEEK, ["kafka_dlt-original-topic=orders"])
    qctl = [*QCTL, "peek", "-u", url, topic, "-n", str(PEEK), "-o", "jsonl"]
    kcat = ["kcat", "-C", "-b", bootstrap, "-t", topic, "-c", str(PEEK), "-e", "-q"]
    FLOORS["qctl peek -n 1 (same topic)"] = median_of([*QCTL, "peek", "-u", url, topic, "-n", "1", "-o", "jsonl"], runs)
    return qctl, kcat, median_of(qctl, runs), median_of(kcat, runs)


FLOORS: dict[str, float] = {}


def bench_floors(runs: int) -> None:
    python = str(REPO / ".venv" / "bin" / "python")
    FLOORS["python -c pass"] = median_of([python, "-c", "pass"], runs)
    FLOORS['python -c "import kafka"'] = median_of([python, "-c", "import kafka"], runs)
    FLOORS["qctl --version"] = median_of([*QCTL, "--version"], runs)


VARIANTS = {  # label -> environment; the first is qctl as installed (confluent-kafka when present)
    "as installed": {},
    "kafka-python, worker processes": {"QCTL_KAFKA_ENGINE": "kafka-python"},
    "kafka-python, one process": {"QCTL_KAFKA_ENGINE": "kafka-python", "QCTL_KAFKA_REDRIVE_WORKERS": "1"},
}
Redrive = tuple[list[str], dict[str, list[float]], dict[str, list[float]]]


def bench_redrive(admin: KafkaAdminClient, url: str, bootstrap: str, records: int, runs: int) -> Redrive:
    source = f"bench-orders-{uuid.uuid4().hex[:6]}"
    dlq = source + ".DLT"
    admin.create_topics({name: {"num_partitions": 4, "replication_factor": 1} for name in (source, dlq)},
                        wait_for_metadata=True)
    seed(bootstrap, dlq, records, [f"kafka_dlt-original-topic={source}", "kafka_dlt-exception-message=boom"])
    rates: dict[str, list[float]] = {label: [] for label in VARIANTS}
    cpu: dict[str, list[float]] = {label: [] for label in VARIANTS}
    command: list[str] = []
    for run in range(runs):  # a fresh progress group per run and variant: each moves every record again
        for index, (label, env) in enumerate(VARIANTS.items()):
            argv = [*QCTL, "redrive", "-u", url, dlq, "--group", f"bench-{index}-{run}", "-o", "json"]
            command = command or argv
            before = children_cpu()
            rates[label].append(records / seconds(argv, env))
            cpu[label].append((children_cpu() - before) / records * 1e6)
    return command, rates, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--redrive-runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "kafka.md")
    args = parser.parse_args()
    bootstrap = args.url.split("://", 1)[1]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))

    load_before = os.getloadavg()
    bench_floors(args.runs)
    stats_q, stats_jvm, q_stats, jvm_stats = bench_stats(admin, args.url, bootstrap, args.runs)
    peek_q, peek_k, q_peek, k_peek = bench_peek(admin, args.url, bootstrap, args.runs)
    redrive_cmd, rates, cpu = bench_redrive(admin, args.url, bootstrap, args.records, args.redrive_runs)
    rate = statistics.median(rates["as installed"])
    load_after = os.getloadavg()
    sys.path.insert(0, str(REPO))
    from qctl.adapters.kafka import rdkafka
    from qctl.adapters.kafka.connection import compression
    from qctl.adapters.kafka.workers import cpus

    engine = "confluent-kafka (librdkafka)" if rdkafka.wanted(False) else "kafka-python"
    variants = "\n".join(
        f"| {label} | {statistics.median(rates[label]):,.0f} | {statistics.median(cpu[label]):.1f} "
        f"| {', '.join(f'{r:,.0f}' for r in rates[label])} | `{' '.join(f'{k}={v}' for k, v in env.items())}` |"
        for label, env in VARIANTS.items())

    def cmd(argv: list[str]) -> str:
        return shlex.join(argv).replace(str(REPO) + "/", "")

    met = {"stats": q_stats <= 0.2 * jvm_stats, "peek": q_peek <= 3 * k_peek, "redrive": rate >= 50_000}
    yes = {True: "yes", False: "no"}
    report = f"""# qctl on Kafka: benchmark

Produced by `{cmd([".venv/bin/python", "bench/kafka.py", *sys.argv[1:]])}` on {datetime.date.today()}
({platform.machine()}, {platform.python_implementation()} {platform.python_version()}, kafka-python,
Apache Kafka 4.x single KRaft node from the harness on the same machine, {cpus()} CPUs). Whole-process
wall time, median of {args.runs} runs after one warm-up; redrive: {args.redrive_runs} run(s), median.
Redrive engine as installed: {engine}; C `crc32c` installed: {yes[find_spec("crc32c") is not None]}
(kafka-python producer compression: {compression() or "none"}). Load average (1 min) before / after:
{load_before[0]:.2f} / {load_after[0]:.2f} (other work on the machine makes wall times noisy).

| case | qctl | peer | ratio | goal | met |
| --- | --- | --- | --- | --- | --- |
| stats --groups, {STATS_PARTITIONS} partitions x {STATS_GROUPS} groups | {q_stats:.2f} s \
| ConsumerGroupCommand {jvm_stats:.2f} s \
| {q_stats / jvm_stats:.2f}x | <= 0.2x | {yes[met["stats"]]} |
| peek {PEEK:,} records | {q_peek:.2f} s | kcat {k_peek:.2f} s \
| {q_peek / k_peek:.2f}x | <= 3x | {yes[met["peek"]]} |
| redrive {args.records:,} records ({engine}) | {rate:,.0f} records/s | - | - | >= 50,000/s \
| {yes[met["redrive"]]} |

Redrive of the same {args.records:,} records by engine, {args.redrive_runs} run(s) each, interleaved (CPU: user +
system time of qctl and its worker processes per record):

| variant | records/s (median) | CPU us/record | runs | environment |
| --- | --- | --- | --- | --- |
{variants}

Floors (median wall time): {"; ".join(f"`{name}` {value:.3f} s" for name, value in FLOORS.items())};
kcat's 10,000-record peek: {k_peek:.3f} s.

Commands:

- `{cmd(stats_q)}`
- `{cmd(stats_jvm).replace(str(REPO), ".")}`
- `{cmd(peek_q)}`
- `{cmd(peek_k)}`
- `{cmd(redrive_cmd)}` (group bench-V-R, one per variant and run)
{NOTES}"""
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
