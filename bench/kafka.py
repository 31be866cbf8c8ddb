#!/usr/bin/env python3
"""Benchmark qctl on Kafka, side by side with Kafka's own tool and kcat, whole-process timings (medians).

    .venv/bin/python bench/kafka.py [--url kafka://127.0.0.1:39092] [--runs 5] [--records 1000000]
                                    [--out bench/results/kafka.md]

1. ``qctl stats --groups -o json`` over a 200-partition topic read by 20 groups, vs Kafka's
   ``ConsumerGroupCommand --describe --all-groups`` (JVM, from the harness's Maven jars).
   Goal: qctl <= 0.2x the JVM tool's time.
2. Peeking 10,000 records: ``qctl peek -n 10000 -o jsonl`` vs ``kcat -C -c 10000 -e``.
   Goal: <= 3x kcat.
3. ``qctl redrive`` of ``--records`` (1,000,000) Spring-style dead letters, 4 partitions to 4,
   in records per second (seeded with kcat, not timed).  Goal: >= 50,000 records/s.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import statistics
import subprocess
import sys
import time
import uuid
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
Why two goals are missed (measured while tuning, same machine):

- peek: a qctl process that peeks 1 record takes ~0.69 s and one that peeks 10,000 ~0.97 s; the
  fixed cost is the Python interpreter with typer/rich (~0.10 s for `qctl --help`), importing
  kafka-python (~0.19 s), and bootstrapping an admin client and a consumer. kcat is a C binary that
  finishes in ~0.02-0.04 s, so 3x kcat means ~0.1 s, below what this Python stack needs just to start.
- redrive: kafka-python is pure Python. `KafkaProducer.send` costs ~25-40 us a record (partitioner,
  accumulator, varint encoding, futures) and CRC32C is pure Python (~9 MB/s) unless the optional
  `crc32c` C package is installed. Tuning already applied: consumer `check_crcs=False`, 5,000-record
  polls, 64 MB fetches; producer gzip (zlib in C shrinks each batch before the pure-Python CRC),
  512 KB batches, linger 20 ms. That moved redrive from ~10,000 to ~22,000 records/s.
"""


def default_url() -> str:
    env = REPO / ".brokers" / "env"
    pairs = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line) if env.exists() else {}
    return pairs.get("QCTL_TEST_KAFKA_URL", "kafka://127.0.0.1:39092")


def seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    return time.perf_counter() - started


def median_of(argv: list[str], runs: int) -> float:
    seconds(argv)  # warm the page cache and the broker
    return statistics.median(seconds(argv) for _ in range(runs))


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
    return qctl, kcat, median_of(qctl, runs), median_of(kcat, runs)


def bench_redrive(admin: KafkaAdminClient, url: str, bootstrap: str, records: int,
                  runs: int) -> tuple[list[str], list[float]]:
    source = f"bench-orders-{uuid.uuid4().hex[:6]}"
    dlq = source + ".DLT"
    admin.create_topics({name: {"num_partitions": 4, "replication_factor": 1} for name in (source, dlq)},
                        wait_for_metadata=True)
    seed(bootstrap, dlq, records, [f"kafka_dlt-original-topic={source}", "kafka_dlt-exception-message=boom"])
    rates = []
    command: list[str] = []
    for run in range(runs):  # a fresh progress group per run: each moves every record again
        command = [*QCTL, "redrive", "-u", url, dlq, "--group", f"bench-{run}", "-o", "json"]
        rates.append(records / seconds(command))
    return command, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--redrive-runs", type=int, default=2)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "kafka.md")
    args = parser.parse_args()
    bootstrap = args.url.split("://", 1)[1]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))

    stats_q, stats_jvm, q_stats, jvm_stats = bench_stats(admin, args.url, bootstrap, args.runs)
    peek_q, peek_k, q_peek, k_peek = bench_peek(admin, args.url, bootstrap, args.runs)
    redrive_cmd, rates = bench_redrive(admin, args.url, bootstrap, args.records, args.redrive_runs)
    rate = statistics.median(rates)

    def cmd(argv: list[str]) -> str:
        return shlex.join(argv).replace(str(REPO) + "/", "")

    met = {"stats": q_stats <= 0.2 * jvm_stats, "peek": q_peek <= 3 * k_peek, "redrive": rate >= 50_000}
    yes = {True: "yes", False: "no"}
    report = f"""# qctl on Kafka: benchmark

Produced by `{cmd([".venv/bin/python", "bench/kafka.py", *sys.argv[1:]])}` on {datetime.date.today()}
({platform.machine()}, {platform.python_implementation()} {platform.python_version()}, kafka-python,
Apache Kafka 4.x single KRaft node from the harness on the same machine). Whole-process wall time,
median of {args.runs} runs after one warm-up; redrive: {args.redrive_runs} run(s), median.

| case | qctl | peer | ratio | goal | met |
| --- | --- | --- | --- | --- | --- |
| stats --groups, {STATS_PARTITIONS} partitions x {STATS_GROUPS} groups | {q_stats:.2f} s \
| ConsumerGroupCommand {jvm_stats:.2f} s \
| {q_stats / jvm_stats:.2f}x | <= 0.2x | {yes[met["stats"]]} |
| peek {PEEK:,} records | {q_peek:.2f} s | kcat {k_peek:.2f} s \
| {q_peek / k_peek:.2f}x | <= 3x | {yes[met["peek"]]} |
| redrive {args.records:,} records | {rate:,.0f} records/s | - | - | >= 50,000/s | {yes[met["redrive"]]} |

Redrive runs (records/s): {", ".join(f"{r:,.0f}" for r in rates)}.

Commands:

- `{cmd(stats_q)}`
- `{cmd(stats_jvm).replace(str(REPO), ".")}`
- `{cmd(peek_q)}`
- `{cmd(peek_k)}`
- `{cmd(redrive_cmd)}` (group bench-0 ... bench-N, one per run)
{NOTES}"""
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
