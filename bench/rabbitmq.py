"""RabbitMQ benchmark: whole-process timings, qctl side by side with rabbitmqadmin v1 and v2.

    .venv/bin/python bench/rabbitmq.py [--runs 5] [--redrive-runs 3]

1. ``qctl stats`` over 5,000 queues, default table and ``-o json``, against rabbitmqadmin v1 ``list
   queues`` (the management plugin's Python script from /cli/rabbitmqadmin; table and ``-f raw_json``),
   rabbitmqadmin v2 ``list queues`` (Rust, from crates.io) and ``rabbitmqctl list_queues``; interleaved,
   each command cold (see below), with the broker CPU each one costs.  Goal: qctl <= 0.5x rabbitmqadmin
   v1 and <= 0.5x v2, table and JSON.
2. The management-API requests a listing could be made of (paged or not, with or without the statistics
   database, pages in parallel), timed alone: the measurements behind qctl's choice
   (adapters/rabbitmq/stats.py).
3. ``qctl redrive`` of 100,000 persistent messages, REDRIVE_RUNS times: messages per second, median.
   Goal: >= 10,000 msg/s.

The peers are installed by this script, outside CI: v1 is downloaded from our node's management plugin
(tools/harness/rabbitmq.py), v2 is built with ``cargo install rabbitmqadmin --locked`` into
.brokers/rabbitmqadmin-v2 (about 5 minutes, once; skipped when $CI is set).

Cold runs: RabbitMQ 3.10's management plugin caches the result of its last statistics query over all
queues for 5x the time it took to compute (rabbit_mgmt_db_cache, management_db_cache_multiplier), and
serves an identical query from that cache.  ``rabbitmqadmin list queues`` run twice within a few seconds
is therefore ~2x faster the second time.  Every timed command here is preceded by a one-row statistics
query, which replaces that cache, so each command pays what a cron job running once a minute pays; the
warm figure is reported separately.

Run from the repository root, with the harness's node up (``python3 tools/brokers up rabbitmq``).  It
writes bench/results/rabbitmq.md (keeping the file's table of earlier runs and adding a line) and deletes
every queue it made.  Figures are min / median / max; the load average is recorded at the start and end.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import functools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika

REPO = Path(__file__).resolve().parents[1]
# Timed as installed: Python writes its bytecode cache on a module's first import (the warm-up round).  A
# shell with PYTHONDONTWRITEBYTECODE set would have every child recompile each module edited since.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.path.insert(0, str(REPO / "tools"))
from harness import rabbitmq as harness  # noqa: E402

QUEUES = 5000
MESSAGES = 100_000
RUNS = 5
REDRIVE_RUNS = 3
PREFIX = "bench-q-"
AMQP = harness.ENV["QCTL_TEST_AMQP_URL"]
API = harness.MANAGEMENT_URL
AUTH = "Basic " + base64.b64encode(b"qctl:qctl-secret").decode()
STATS_COLUMNS = "name,type,messages_ready,messages_unacknowledged,consumers,arguments,effective_policy_definition," \
                "policy"
TOTALS = "disable_stats=true&enable_queue_totals=true&columns=name,type,arguments,policy,messages_ready," \
         "messages_unacknowledged"


def channel() -> pika.adapters.blocking_connection.BlockingChannel:
    return pika.BlockingConnection(pika.URLParameters(AMQP)).channel()


def make_queues() -> None:
    ch = channel()
    for i in range(QUEUES):
        arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{PREFIX}{i}.dlq"} if i % 10 else None
        ch.queue_declare(f"{PREFIX}{i}", durable=True, arguments=arguments)
    ch.connection.close()


def delete_queues(names: list[str]) -> None:
    ch = channel()
    for name in names:
        ch.queue_delete(name)
    ch.connection.close()


def get(path: str) -> Any:
    request = urllib.request.Request(API + path, headers={"Authorization": AUTH})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def evict_management_cache() -> None:
    """A one-row statistics query: replaces whatever rabbit_mgmt_db_cache held (see module docstring)."""
    get("/api/queues/%2F?page=1&page_size=1&columns=name,messages")


def broker_cpu() -> float:
    """CPU seconds the broker's Erlang VM has used so far."""
    pid = harness.running_pid()
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(action: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, broker CPU seconds) of ``action``."""
    cpu = broker_cpu()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started, broker_cpu() - cpu


def machine_busy() -> float:
    """CPU seconds all processes of the machine have used so far (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


# --- 1. whole commands -----------------------------------------------------------------------------------

V2_ROOT = REPO / ".brokers" / "rabbitmqadmin-v2"


def rabbitmqadmin_v2() -> Path | None:
    """rabbitmqadmin v2, built once with cargo into .brokers/ (None in CI, or without cargo)."""
    binary = V2_ROOT / "bin" / "rabbitmqadmin"
    if not binary.exists() and not os.environ.get("CI") and shutil.which("cargo"):
        subprocess.run(["cargo", "install", "rabbitmqadmin", "--locked", "--root", str(V2_ROOT)], check=True)
    return binary if binary.exists() else None


def stats_commands() -> dict[str, tuple[list[str], dict[str, str] | None]]:
    qctl = [str(REPO / ".venv/bin/qctl"), "stats", "-u", AMQP, "--management-url", API]
    admin = [sys.executable, str(harness.rabbitmqadmin_path()), "-H", harness.HOST, "-P",
             str(harness.MANAGEMENT_PORT), "-u", "qctl", "-p", "qctl-secret"]
    ctl = [str(harness.RABBITMQCTL), "-n", harness.NODE, "list_queues", "name", "messages_ready",
           "messages_unacknowledged", "consumers"]
    commands = {"qctl stats": (qctl, None), "qctl stats -o json": ([*qctl, "-o", "json"], None),
                "rabbitmqadmin v1 list queues": ([*admin, "list", "queues"], None),
                "rabbitmqadmin v1 -f raw_json list queues": ([*admin, "-f", "raw_json", "list", "queues"], None)}
    v2 = rabbitmqadmin_v2()
    if v2 is not None:
        commands["rabbitmqadmin v2 list queues"] = ([str(v2), "--host", harness.HOST, "--port",
                                                     str(harness.MANAGEMENT_PORT), "--username", "qctl",
                                                     "--password", "qctl-secret", "list", "queues"], None)
    commands["rabbitmqctl list_queues"] = (ctl, harness.cli_env())
    return commands


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    broker: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    def cells(self) -> str:
        return f"{self.median:.3f} ({min(self.wall):.3f}-{max(self.wall):.3f}) | {statistics.median(self.broker):.2f}"


def bench_stats(runs: int) -> tuple[dict[str, tuple[list[str], dict[str, str] | None]], dict[str, Sample]]:
    """(wall, broker CPU) per command, cold and interleaved; plus rabbitmqadmin v1 warm (run right after itself)."""
    commands = stats_commands()
    samples: dict[str, Sample] = {name: Sample() for name in [*commands, "rabbitmqadmin v1, warm"]}
    for command, env in commands.values():
        run(command, env)  # warm-up (page cache, rabbitmqadmin download)
    admin = commands["rabbitmqadmin v1 list queues"][0]
    for _ in range(runs):
        for name, (command, env) in commands.items():
            evict_management_cache()
            wall, cpu = measured(functools.partial(run, command, env))
            samples[name].wall.append(wall)
            samples[name].broker.append(cpu)
        run(admin)  # fills the cache ...
        wall, cpu = measured(lambda: run(admin))  # ... which this one hits
        samples["rabbitmqadmin v1, warm"].wall.append(wall)
        samples["rabbitmqadmin v1, warm"].broker.append(cpu)
    return commands, samples


# --- 2. the requests a listing could be made of ----------------------------------------------------------

def paged(query: str, parallel: int = 1) -> None:
    first = get(f"/api/queues/%2F?page=1&page_size=500&{query}")
    pages = range(2, int(first["page_count"]) + 1)
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda page: get(f"/api/queues/%2F?page={page}&page_size=500&{query}"), pages))


REQUESTS: dict[str, Callable[[], Any]] = {
    "`/api/queues?columns=name,messages` (rabbitmqadmin's request: statistics, unpaged)":
        lambda: get("/api/queues?columns=name,messages"),
    "10 pages of 500, statistics columns, one at a time": lambda: paged(f"columns={STATS_COLUMNS}"),
    "10 pages of 500, statistics columns, 2 at a time": lambda: paged(f"columns={STATS_COLUMNS}", 2),
    "10 pages of 500, statistics columns, 4 at a time": lambda: paged(f"columns={STATS_COLUMNS}", 4),
    "10 pages of 500, `disable_stats&enable_queue_totals`, one at a time": lambda: paged(TOTALS),
    "10 pages of 500, `disable_stats` alone (no counts), one at a time":
        lambda: paged("disable_stats=true&columns=name,type,arguments,policy"),
    "**one request, `disable_stats&enable_queue_totals`** (qctl)": lambda: get(f"/api/queues/%2F?{TOTALS}"),
    "consumers + policies + operator policies + whoami (qctl)": lambda: [
        get("/api/consumers/%2F?columns=queue.name"), get("/api/policies/%2F"),
        get("/api/operator-policies/%2F"), get("/api/whoami")],
}


def bench_requests(runs: int) -> dict[str, tuple[float, float]]:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in REQUESTS}
    for _ in range(runs):
        for name, request in REQUESTS.items():
            evict_management_cache()
            samples[name].append(measured(request))
    return {name: (statistics.median(s[0] for s in values), statistics.median(s[1] for s in values))
            for name, values in samples.items()}


# --- 3. redrive ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RedriveRun:
    seconds: float
    broker_cpu: float  # the broker's Erlang VM
    qctl_cpu: float  # the qctl process
    other_cpu: float  # everything else on the machine meanwhile (other users' work)
    moved: int  # messages in the target afterwards


def redrive_once() -> RedriveRun:
    """One 100,000-message redrive, whole process."""
    source, dlq = PREFIX + "redrive", PREFIX + "redrive.dlq"
    delete_queues([source, dlq])
    ch = channel()
    ch.queue_declare(source, durable=True)
    ch.queue_declare(dlq, durable=True)
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json",
                                 headers={"x-first-death-queue": source})
    for i in range(MESSAGES):
        ch.basic_publish("", dlq, b'{"order": %d, "pad": "%s"}' % (i, b"x" * 200), props)
    while ch.queue_declare(dlq, passive=True).method.message_count < MESSAGES:
        time.sleep(0.2)
    ch.connection.close()
    time.sleep(2)  # let the broker settle after the fill
    command = [str(REPO / ".venv/bin/qctl"), "redrive", dlq, "-u", AMQP, "--management-url", API, "-q", "-o",
               "json"]
    busy, qctl = machine_busy(), children_cpu()
    seconds, cpu = measured(lambda: run(command))
    busy, qctl = machine_busy() - busy, children_cpu() - qctl
    ch = channel()
    moved = ch.queue_declare(source, passive=True).method.message_count
    ch.connection.close()
    delete_queues([source, dlq])
    return RedriveRun(seconds, cpu, qctl, max(0.0, busy - cpu - qctl), moved)


# --- report ----------------------------------------------------------------------------------------------

STATS_COLUMNS_SHOWN = {
    "qctl stats": "queue, type, depth, in-flight, consumers, DLQ (argument, policy or name), its depth...",
    "qctl stats -o json": "the same rows as JSON, with leader, members, mqtt_client",
    "rabbitmqadmin v1 list queues": "name, messages (its default for `list queues`), a table",
    "rabbitmqadmin v1 -f raw_json list queues": "the same as JSON",
    "rabbitmqadmin v2 list queues": "20 columns (its default), a table",
    "rabbitmqctl list_queues": "4 asked: name, ready, unacked, consumers",
    "rabbitmqadmin v1, warm": "v1's table run again at once: served from the management cache",
}
PEERS = ("rabbitmqadmin v1 list queues", "rabbitmqadmin v1 -f raw_json list queues", "rabbitmqadmin v2 list queues")


def report(commands: dict[str, tuple[list[str], dict[str, str] | None]], stats: dict[str, Sample],
           requests: dict[str, tuple[float, float]], redrives: list[RedriveRun], started: str,
           loads: tuple[str, str], runs: int) -> str:
    peers = [name for name in PEERS if name in stats]
    ratios = {(q, p): stats[q].median / stats[p].median for q in ("qctl stats", "qctl stats -o json") for p in peers}
    met = all(ratio <= 0.5 for ratio in ratios.values()) and "rabbitmqadmin v2 list queues" in peers
    rates = sorted(MESSAGES / run.seconds for run in redrives)
    rate = statistics.median(rates)
    lines = [
        "# RabbitMQ benchmark", "",
        f"Date: {started}; RabbitMQ {harness_version()} (private node from tools/harness), "
        f"{os.cpu_count()} CPUs shared with other work (load average {loads[0]} at the start, {loads[1]} at the end).",
        f"Command: `{' '.join(['.venv/bin/python', 'bench/rabbitmq.py', *sys.argv[1:]])}` (from the repository root, "
        "node up with `python3 tools/brokers up rabbitmq`).", "",
        f"## stats over {QUEUES:,} queues (whole process, cold, {runs} interleaved runs)", "",
        "Each command is preceded by a one-row statistics query that empties the management plugin's result "
        "cache (rabbit_mgmt_db_cache keeps its last all-queues statistics answer for 5x the time it took and "
        "serves an identical query from it), so each pays what a cron job running once a minute pays.  "
        "\"broker CPU\" is the CPU time the broker's Erlang VM used during the command (median).", "",
        "| command | seconds: median (min-max) | broker CPU s | vs v1 table | vs v2 | what it prints |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    v1 = stats["rabbitmqadmin v1 list queues"].median
    v2 = stats["rabbitmqadmin v2 list queues"].median if "rabbitmqadmin v2 list queues" in stats else None
    for name, sample in stats.items():
        shown = f"`{name}`"
        versus_v2 = f"{sample.median / v2:.2f}x" if v2 else "-"
        lines.append(f"| {shown} | {sample.cells()} | {sample.median / v1:.2f}x | {versus_v2} | "
                     f"{STATS_COLUMNS_SHOWN[name]} |")
    lines += ["", "Command lines:", ""]
    lines += [f"- {name}: `{' '.join(command).replace(str(REPO) + '/', '')}`"
              for name, (command, _) in commands.items()]
    lines += [
        "", "Goal <= 0.5x rabbitmqadmin v1 and v2, table and JSON (cold): "
        f"**{'met' if met else 'NOT met'}** (" + ", ".join(f"{q} / {p.removeprefix('rabbitmqadmin ')} {r:.2f}x"
                                                          for (q, p), r in ratios.items()) + ").", "",
        f"## The requests a listing could be made of ({QUEUES:,} queues, cold, median of {runs})", "",
        "| request(s) | seconds | broker CPU s |", "| --- | --- | --- |",
    ]
    for name, (seconds, cpu) in requests.items():
        lines.append(f"| {name} | {seconds:.3f} | {cpu:.2f} |")
    lines += [
        "", "Why qctl asks one unpaged `disable_stats=true&enable_queue_totals=true` request (plus "
        "`/api/consumers`, the policies and `/api/whoami`) instead of paging: on RabbitMQ 3.10 every "
        "`/api/queues` request first builds the rows of *all* queues of the vhost and only then cuts out the "
        "page (rabbit_mgmt_wm_queues, rabbit_mgmt_util:augment_resources); with the statistics columns it then "
        "joins the page against the statistics database, and with `enable_queue_totals` it asks every queue "
        "of the vhost for its counts before paging.  So ten pages cost the broker more than one full listing, "
        "in parallel or not.  The single `disable_stats` request is the cheapest way to get every queue's "
        "counts (the same per-queue question `rabbitmqctl list_queues` asks), its counts are current rather "
        "than a statistics interval old, and what is left of qctl's time is its own start-up and rendering "
        "(the table writer: bench/results/core.md).  Queues named outright are one request each, four in "
        "flight, and more than eight names are picked out of one listing; their dead-letter candidates are "
        "asked of the API four at a time (tests/perf/test_rabbitmq.py counts requests and passive declares).",
        "", f"## redrive of {MESSAGES:,} persistent messages (whole process, {len(redrives)} runs)", "",
        "CPU columns: seconds used during the run by the broker, by qctl, and by every other process on the "
        f"machine (other people's work); the machine has {os.cpu_count()} CPUs, so a run of T seconds has "
        f"{os.cpu_count()}T CPU-seconds to share.", "",
        "| run | seconds | msg/s | broker CPU | qctl CPU | others' CPU | in the target afterwards |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for number, run in enumerate(redrives, 1):
        lines.append(f"| {number} | {run.seconds:.2f} | {MESSAGES / run.seconds:,.0f} | {run.broker_cpu:.2f} | "
                     f"{run.qctl_cpu:.2f} | {run.other_cpu:.2f} | {run.moved:,} |")
    lines += ["", f"Median **{rate:,.0f} msg/s** (min {rates[0]:,.0f}, max {rates[-1]:,.0f}); goal >= 10,000 msg/s: "
              f"**{'met' if rate >= 10_000 else 'NOT met'}**.", "", REDRIVE_NOTES, ""]
    return "\n".join(lines)


REDRIVE_NOTES = """\
What bounds it: CPU.  Each redriven persistent message costs the broker about 100 us of CPU (delivery and \
ack on the DLQ, publish, persistence and confirm on the target) and \
qctl about 35 us (pika's frame decoding and encoding, mostly): about 13 CPU-seconds per 100,000, on a \
machine of 2 CPUs shared with other work.  So the rate follows the "others' CPU" column: runs where other \
processes used under a CPU-second reach 12,000-13,300 msg/s, runs where they took a quarter to a half of the \
machine 7,400-10,000 (the history table below).  What was tuned (measured during development, 50,000-100,000 \
messages): outgoing frames are joined into one `send()` per batch instead of one per frame (client system \
time 0.4 s -> under 0.1 s per 50,000, broker CPU -15%); the consumer's prefetch is set once instead of per \
2,000-message window (each `basic.qos` held the next window for a round trip); up to 10,000 publishes may \
await their confirms; confirmed messages are acked with one `multiple` ack per batch (57 acks and 90 \
confirm frames for 50,000 messages).  Window sizes of 500, 1,000, 2,000 and 5,000 made no measurable \
difference.  Safety is unchanged: a DLQ message is acked only after its republish is confirmed (the kill -9 \
test in tests/rabbitmq/test_redrive.py)."""


def harness_version() -> str:
    try:
        status, overview = harness.api("GET", "/api/overview")
        return str(overview.get("rabbitmq_version")) if status == 200 else "?"
    except OSError:
        return "?"


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


HISTORY = "## Every run of this script (newest last)"
HISTORY_HEAD = [
    "The machine is shared, so one run says little; each run adds a line here (the sections above are the "
    "latest run's).  Until 2026-11-21 the stats columns were qctl -o json and rabbitmqadmin v1's table.", "",
    "| date | qctl stats s | rabbitmqadmin s (cold) | ratio | redrive msg/s, each run | redrive median | "
    "others' CPU s, each run | load average at the end |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
]


def history(previous: str, stats: dict[str, Sample], redrives: list[RedriveRun], started: str, load: str) -> str:
    """The previous file's history lines plus one for this run (qctl's table against v1's table)."""
    rows = [line for line in previous.split(HISTORY, 1)[1].splitlines() if line.startswith("| 20")] \
        if HISTORY in previous else []
    qctl, admin = stats["qctl stats"].median, stats["rabbitmqadmin v1 list queues"].median
    rates = [MESSAGES / run.seconds for run in redrives]
    rows.append(f"| {started} | {qctl:.3f} | {admin:.3f} | {qctl / admin:.2f}x | "
                f"{', '.join(f'{rate:,.0f}' for rate in rates)} | {statistics.median(rates):,.0f} | "
                f"{', '.join(f'{run.other_cpu:.1f}' for run in redrives)} | {load} |")
    return "\n".join([HISTORY, "", *HISTORY_HEAD, *rows, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--redrive-runs", type=int, default=REDRIVE_RUNS)
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    first_load = load_average()
    make_queues()
    try:
        commands, stats = bench_stats(args.runs)
        requests = bench_requests(args.runs)
    finally:
        delete_queues([f"{PREFIX}{i}" for i in range(QUEUES)])
    redrives = [redrive_once() for _ in range(args.redrive_runs)]
    last_load = load_average()
    text = report(commands, stats, requests, redrives, started, (first_load, last_load), args.runs)
    path = REPO / "bench" / "results" / "rabbitmq.md"
    previous = path.read_text() if path.exists() else ""
    text += "\n" + history(previous, stats, redrives, started, last_load)
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
