#!/usr/bin/env python3
"""Benchmark qctl on Kafka, side by side with Kafka's own tool and kcat, whole-process timings.

    .venv/bin/python bench/kafka.py [--url kafka://127.0.0.1:39092] [--runs 7] [--big-runs 3]
                                    [--records 1000000] [--redrive-runs 3] [--out bench/results/kafka.md]

1. ``qctl stats --groups -o json`` with a 1,000-partition topic read by 50 groups, against Kafka's
   ``ConsumerGroupCommand --describe --all-groups`` (JVM, the harness's Maven jars).  Both cover every
   group of the cluster.  Goal: qctl <= 0.1x.
2. ``qctl peek -n 10000 -o jsonl`` against ``kcat -C -e -J -c 10000``.  Goal: qctl <= 0.30 s.
3. ``qctl peek -n 1000000 -o jsonl`` against ``kcat -C -e -J -c 1000000`` (per-record cost).  Goal: <= 3x.
4. ``qctl redrive`` of ``--records`` Spring-style dead letters, 4 partitions to 4, records/s and CPU per
   record.  Goal: >= 50,000 records/s.

Each pair runs interleaved (A B A B ...) after one warm-up round; figures are min / median / max of the
wall time and the median CPU (user + system of the process and its threads).  The load average is
recorded at the start and the end.  kcat is Debian's (tools/system-packages.sh); the script installs it
with apt-get when missing (outside CI).  Floors measured in the same run: ``python -c pass``, ``python -c
"import confluent_kafka"``, ``qctl --version`` and a 1-record peek.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# This file is called kafka.py: keep its folder off sys.path so nothing imports it as "kafka".
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

QCTL = str(REPO / ".venv" / "bin" / "qctl")
# Timed as installed: Python writes its bytecode cache on a module's first import (the warm-up round).  A
# shell with PYTHONDONTWRITEBYTECODE set would have every child recompile each module edited since.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
PYTHON = str(REPO / ".venv" / "bin" / "python")
STATS_PARTITIONS = 1000
STATS_GROUPS = 50
PEEK = 10_000


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    def cells(self) -> str:
        return f"{self.median:.3f} s ({min(self.wall):.3f}-{max(self.wall):.3f}) | {statistics.median(self.cpu):.3f} s"


def default_url() -> str:
    env = REPO / ".brokers" / "env"
    pairs = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line) if env.exists() else {}
    return pairs.get("QCTL_TEST_KAFKA_URL", "kafka://127.0.0.1:39092")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: Sequence[str]) -> tuple[float, float]:
    cpu, started = children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1800)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(argv)}\n{proc.stderr.decode()[-2000:]}")
    return wall, children_cpu() - cpu


def interleaved(commands: dict[str, Sequence[str]], runs: int) -> dict[str, Sample]:
    samples = {name: Sample() for name in commands}
    for argv in commands.values():
        run_once(argv)
    for _ in range(runs):
        for name, argv in commands.items():
            wall, cpu = run_once(argv)
            samples[name].wall.append(wall)
            samples[name].cpu.append(cpu)
    return samples


def ensure_kcat() -> None:
    """kcat from Debian, as tools/system-packages.sh installs it (here only when it is missing)."""
    if shutil.which("kcat") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "kcat"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


CREATED: list[str] = []  # topics and groups this run made, deleted at the end
GROUPS: list[str] = []


def create(admin: AdminClient, topic: str, partitions: int) -> None:
    CREATED.append(topic)
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every partition led before anything is timed
        found = admin.list_topics(topic, timeout=10).topics[topic].partitions
        if len(found) == partitions and all(p.leader >= 0 for p in found.values()):
            return
        time.sleep(0.5)
    raise SystemExit(f"{topic}: partitions without a leader after 60 s")


def seed(bootstrap: str, topic: str, count: int, headers: Sequence[str] = ()) -> None:
    """``count`` records (key, ~90-byte value) through kcat, not timed."""
    lines = b"".join(b"k%d\tbody-%d-%s\n" % (i, i, b"x" * 80) for i in range(count))
    command = ["kcat", "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-X", "linger.ms=50"]
    for header in headers:
        command += ["-H", header]
    subprocess.run(command, input=lines, check=True, timeout=900)


def bench_stats(admin: AdminClient, url: str, bootstrap: str, runs: int) -> tuple[dict[str, Sequence[str]],
                                                                                  dict[str, Sample]]:
    from harness.kafka import tools_classpath

    topic = f"bench-stats-{uuid.uuid4().hex[:6]}"
    create(admin, topic, STATS_PARTITIONS)
    seed(bootstrap, topic, 20_000)
    for g in range(STATS_GROUPS):
        group = f"{topic}-g{g}"
        GROUPS.append(group)
        offsets = [TopicPartition(topic, p, 0) for p in range(STATS_PARTITIONS)]
        admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, offsets)])[group].result()
    commands: dict[str, Sequence[str]] = {
        "qctl": [QCTL, "stats", "-u", url, "--groups", "-o", "json"],
        "ConsumerGroupCommand": ["java", "-cp", tools_classpath(),
                                 "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                                 "--bootstrap-server", bootstrap, "--describe", "--all-groups"],
    }
    return commands, interleaved(commands, runs)


def bench_peek(url: str, bootstrap: str, topic: str, count: int, runs: int) -> tuple[dict[str, Sequence[str]],
                                                                                   dict[str, Sample]]:
    commands: dict[str, Sequence[str]] = {
        "qctl": [QCTL, "peek", "-u", url, topic, "-n", str(count), "-o", "jsonl"],
        "kcat": ["kcat", "-C", "-b", bootstrap, "-t", topic, "-c", str(count), "-e", "-J", "-q"],
    }
    return commands, interleaved(commands, runs)


def bench_redrive(admin: AdminClient, url: str, bootstrap: str, records: int,
                  runs: int) -> tuple[list[str], list[float], list[float]]:
    source = f"bench-orders-{uuid.uuid4().hex[:6]}"
    dlq = source + ".DLT"
    create(admin, source, 4)
    create(admin, dlq, 4)
    seed(bootstrap, dlq, records, [f"kafka_dlt-original-topic={source}", "kafka_dlt-exception-message=boom"])
    rates, cpu = [], []
    command: list[str] = []
    for run in range(runs):  # a fresh progress group per run: each moves every record again
        command = [QCTL, "redrive", "-u", url, dlq, "--group", f"{dlq}-bench-{run}", "-q", "-o", "json"]
        GROUPS.append(f"{dlq}-bench-{run}")
        wall, used = run_once(command)
        rates.append(records / wall)
        cpu.append(used / records * 1e6)
    return command, rates, cpu


def shell(argv: Sequence[str]) -> str:
    return shlex.join(argv).replace(str(REPO) + "/", "").replace(str(REPO), ".")


def rows(commands: dict[str, Sequence[str]], samples: dict[str, Sample], peer: str) -> list[str]:
    return [f"| {name} | `{shell(commands[name])}` | {samples[name].cells()} | "
            f"{samples[name].median / samples[peer].median:.2f}x |" for name in commands]


HEAD = ["| tool | command | wall: median (min-max) | CPU median | vs peer |", "| --- | --- | --- | --- | --- |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--big-runs", type=int, default=3, help="runs of the 1,000,000-record peek")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--redrive-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "kafka.md")
    args = parser.parse_args()
    ensure_kcat()
    bootstrap = args.url.split("://", 1)[1]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    started = datetime.datetime.now(datetime.UTC)
    load_start = os.getloadavg()

    peek_topic = f"bench-peek-{uuid.uuid4().hex[:6]}"
    create(admin, peek_topic, 1)
    seed(bootstrap, peek_topic, args.records, ["kafka_dlt-original-topic=orders"])
    floors = interleaved({
        "python -c pass": [PYTHON, "-c", "pass"],
        'python -c "import confluent_kafka"': [PYTHON, "-c", "import confluent_kafka"],
        "qctl --version": [QCTL, "--version"],
        "qctl peek -n 1": [QCTL, "peek", "-u", args.url, peek_topic, "-n", "1", "-o", "jsonl"],
    }, args.runs)
    stats_cmds, stats = bench_stats(admin, args.url, bootstrap, args.runs)
    peek_cmds, peek = bench_peek(args.url, bootstrap, peek_topic, PEEK, args.runs)
    big_cmds, big = bench_peek(args.url, bootstrap, peek_topic, args.records, args.big_runs)
    redrive_cmd, rates, cpu = bench_redrive(admin, args.url, bootstrap, args.records, args.redrive_runs)
    load_end = os.getloadavg()

    stats_ratio = stats["qctl"].median / stats["ConsumerGroupCommand"].median
    big_ratio = big["qctl"].median / big["kcat"].median
    rate = statistics.median(rates)
    yes = {True: "**met**", False: "**NOT met**"}
    report = [
        "# qctl on Kafka: benchmark", "",
        f"Produced by `{shell(['.venv/bin/python', 'bench/kafka.py', *sys.argv[1:]])}` on "
        f"{started:%Y-%m-%d %H:%M} UTC ({platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs shared with other work, Apache Kafka 4.x single KRaft "
        "node from the harness on the same machine).  Load average "
        f"{' '.join(f'{v:.2f}' for v in load_start)} at the start, {' '.join(f'{v:.2f}' for v in load_end)} at the "
        f"end.  Whole processes, each pair interleaved after one warm-up round: {args.runs} rounds "
        f"({args.big_runs} for the {args.records:,}-record peek); wall time median (min-max) and median CPU.", "",
        "| case | goal | result |", "| --- | --- | --- |",
        f"| stats --groups, {STATS_PARTITIONS:,} partitions x {STATS_GROUPS} groups | <= 0.1x ConsumerGroupCommand | "
        f"{stats_ratio:.3f}x {yes[stats_ratio <= 0.1]} |",
        f"| peek -n {PEEK:,} | <= 0.30 s | {peek['qctl'].median:.3f} s {yes[peek['qctl'].median <= 0.30]} |",
        f"| peek -n {args.records:,} | <= 3x kcat | {big_ratio:.2f}x {yes[big_ratio <= 3]} |",
        f"| redrive {args.records:,} records | >= 50,000 records/s | {rate:,.0f}/s {yes[rate >= 50_000]} |", "",
        f"## stats --groups ({STATS_PARTITIONS:,} partitions x {STATS_GROUPS} groups, every group of the cluster)", "",
        *HEAD, *rows(stats_cmds, stats, "ConsumerGroupCommand"), "",
        f"## peek -n {PEEK:,} (JSON lines; the topic holds {args.records:,})", "",
        *HEAD, *rows(peek_cmds, peek, "kcat"), "",
        f"## peek -n {args.records:,}", "",
        *HEAD, *rows(big_cmds, big, "kcat"), "",
        f"Per record (median wall over {args.records:,}): qctl {big['qctl'].median / args.records * 1e6:.1f} us, "
        f"kcat {big['kcat'].median / args.records * 1e6:.1f} us.", "",
        "## Floors", "",
        "| command | wall: median (min-max) | CPU median |", "| --- | --- | --- |",
        *[f"| `{name}` | {sample.cells()} |" for name, sample in floors.items()], "",
        f"## redrive of {args.records:,} records ({args.redrive_runs} runs)", "",
        f"`{shell(redrive_cmd)}` (a fresh group per run): "
        f"{', '.join(f'{r:,.0f}' for r in rates)} records/s (median **{rate:,.0f}**), "
        f"{statistics.median(cpu):.1f} us of CPU a record.", "",
        NOTES,
    ]
    for future in [*admin.delete_topics(CREATED).values(), *admin.delete_consumer_groups(GROUPS).values()]:
        future.result()
    args.out.write_text("\n".join(report) + "\n")
    print(args.out.read_text())


NOTES = """## What changed, and why

- **One client.**  kafka-python is gone from qctl: the admin questions (metadata, ListOffsets, committed
  offsets, groups, configs, DeleteRecords) go through librdkafka's admin client like the records do.
  `import kafka.admin` alone cost ~185 ms against ~75 ms for confluent_kafka, and a peek needed both.
  kafka-python decoded every record in Python (~12 us each); librdkafka decodes them in C and qctl turns
  into Python objects only the records it shows (tests/perf/test_kafka.py counts them).
- **Fetches sized to the peek.**  librdkafka prefetches until 100,000 records wait per partition, and an
  8 MB fetch costs the broker ~50-100 ms to read where 10,000 small records need ~1 MB: a peek asks for
  `queued.min.messages` = `-n` and 1 MB fetches (a pass keeps 8 MB).  `consume()` waits until its whole
  batch is there or its time is up, so the last batch of a short topic waited 0.2 s: the wait is 10 ms.
- **Per record.**  One JSON encoder for every row (json.dumps built two per call), headers decoded once
  as UTF-8 without the general converter, dead-letter fields read from the decoded headers.
- **stats --groups** stays batched per kind of request: one Metadata, ListOffsets per leader for the
  starts, the ends and the first records, one ListGroups; librdkafka takes one group per OffsetFetch, so
  those go one per group, never one per partition.  librdkafka describes members by their assignment, not
  their subscription: a member given none of a topic's partitions is not counted as its consumer.
- **stats: every request in flight at once** (issue 14).  The kinds went one after another, each waiting
  for the last; now ListGroups goes with the Metadata, every OffsetFetch as soon as the groups are known,
  then the ListOffsets, and only then is any answer waited for (a test logs sends and waits).  ListOffsets
  go in calls of at most 500 partitions: librdkafka's handling of one call grows with the square of its
  partitions (2,849 in one call: 51 ms of CPU, in calls of 500: ~10 ms).  DescribeGroups only for groups
  ListGroups does not call Empty or Dead: librdkafka asked each group twice (KIP-848's
  ConsumerGroupDescribe, then the classic DescribeGroups) with a FindCoordinator before each, ~1,350
  requests and ~90 ms of broker CPU for 340 groups, all Empty.  The lag per group is worked out from each
  topic's sums and the group's own commits (50,000 steps for 50 groups x 1,000 partitions before), and the
  committed offsets keep librdkafka's TopicPartitions as keys instead of making 50,000 new ones.  A second
  admin client for the OffsetFetches was tried: librdkafka's main thread spends ~2 ms on a 1,000-partition
  OffsetFetch (quadratic too), but with the broker on the same 2 CPUs the run was CPU-bound and did not get
  faster, and a watch would hold two connections per broker.
- **peek: no batch waits, less per record** (issue 14).  `consume(n, wait)` returns when it has n records
  or the wait is over, so the first batch of a peek waited for a full batch it would not get from the first
  fetch (16-85 ms from assign to the first record; now ~7 ms): what has arrived is taken with no wait, and
  a wait is for one record.  `to_message` decodes a set of headers once for the records that carry the
  same (the search for dead-letter fields with it) and fills the frozen Message through its slots rather
  than the dataclass's `__init__` by keyword (13 `object.__setattr__` calls): 4.8 -> 2.4 us a record.
  The adapter imports stats, purge, ping, the reader and the destination only when used.  Making the
  consumer before the admin requests, to connect meanwhile, was tried and dropped: left unassigned it
  drops its bootstrap connection, and the metadata its assignment needs then waited ~50 ms for a new one.
- **What is left of a peek -n 10,000** (~9 us a record): the row's JSON (`message_to_json` ~2 us, the C
  encoder ~3.5 us, both outside the Kafka adapter, byte for byte what they were), `to_message` ~2.4 us,
  librdkafka ~1 us; and ~125 ms before the first record, of which ~100 ms is importing Python, typer and
  confluent_kafka (its `__init__` imports asyncio: ~20 ms).  About 1 run in 30, librdkafka's admin client
  loses its first request to the bootstrap connection it is closing and retries 1-3 s later (librdkafka
  2.16; the median does not see it).
- **Three runs of this script on 2026-12-07 after these changes**: at load 1.2, peek -n 10,000 0.277 s (CPU
  0.241 s), -n 1,000,000 1.99x kcat, stats 0.083x; with another test suite busy on the other CPU (load 2.9,
  every floor 10-20% slower), 0.352 s; and the run above, on a quiet machine with the broker emptied first
  of the ~1,400 topics and ~330 groups earlier test runs had left (``stats`` and ConsumerGroupCommand both
  cover every group, so leftovers slow both, ConsumerGroupCommand more): 0.247 s, 1.61x, 0.078x.
"""


if __name__ == "__main__":
    main()
