"""RabbitMQ benchmark: whole-process timings, qctl side by side with the broker's own tools.

1. ``qctl stats`` over 5,000 queues vs ``rabbitmqadmin list queues`` (served by
   the management plugin at /cli/rabbitmqadmin) vs ``rabbitmqctl list_queues``;
   median of RUNS runs each, interleaved, each command cold (see below), with
   the broker CPU each one costs.  Goal: qctl <= 0.7x rabbitmqadmin.
2. The management-API requests a listing could be made of (paged or not, with
   or without the statistics database, pages in parallel), timed alone: the
   measurements behind qctl's choice (adapters/rabbitmq/stats.py).
3. ``qctl redrive`` of 100,000 persistent messages, REDRIVE_RUNS times:
   messages per second, median.  Goal: >= 10,000 msg/s.

Cold runs: RabbitMQ 3.10's management plugin caches the result of its last
statistics query over all queues for 5x the time it took to compute
(rabbit_mgmt_db_cache, management_db_cache_multiplier), and serves an identical
query from that cache.  ``rabbitmqadmin list queues`` run twice within a few
seconds is therefore ~2x faster the second time.  Every timed command here is
preceded by a one-row statistics query, which replaces that cache, so each
command pays what a cron job running once a minute pays; the warm figure is
reported separately.

Run from the repository root, with the harness's node up
(``python3 tools/brokers up rabbitmq``):  ``.venv/bin/python bench/rabbitmq.py``
It writes bench/results/rabbitmq.md (keeping the file's table of earlier runs and adding a line) and
deletes every queue it made.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika

REPO = Path(__file__).resolve().parents[1]
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

def stats_commands() -> dict[str, tuple[list[str], dict[str, str] | None]]:
    qctl = [str(REPO / ".venv/bin/qctl"), "stats", "-u", AMQP, "--management-url", API, "-o", "json"]
    admin = [sys.executable, str(harness.rabbitmqadmin_path()), "-H", harness.HOST, "-P",
             str(harness.MANAGEMENT_PORT), "-u", "qctl", "-p", "qctl-secret", "list", "queues"]
    ctl = [str(harness.RABBITMQCTL), "-n", harness.NODE, "list_queues", "name", "messages_ready",
           "messages_unacknowledged", "consumers"]
    return {"qctl stats": (qctl, None), "rabbitmqadmin list queues": (admin, None),
            "rabbitmqctl list_queues": (ctl, harness.cli_env())}


def bench_stats() -> dict[str, tuple[float, float]]:
    """Median (wall, broker CPU) per command, cold; plus rabbitmqadmin warm (run right after itself)."""
    commands = stats_commands()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in [*commands, "rabbitmqadmin, warm"]}
    for command, env in commands.values():
        run(command, env)  # warm-up (page cache, rabbitmqadmin download)
    admin = commands["rabbitmqadmin list queues"][0]
    for _ in range(RUNS):
        for name, (command, env) in commands.items():
            evict_management_cache()
            samples[name].append(measured(functools.partial(run, command, env)))
        run(admin)  # fills the cache ...
        samples["rabbitmqadmin, warm"].append(measured(lambda: run(admin)))  # ... which this one hits
    return {name: (statistics.median(s[0] for s in values), statistics.median(s[1] for s in values))
            for name, values in samples.items()}


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


def bench_requests() -> dict[str, tuple[float, float]]:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in REQUESTS}
    for _ in range(RUNS):
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
    "qctl stats": "9: queue, type, depth, in-flight, consumers, DLQ (argument or policy) and its depth...",
    "rabbitmqadmin list queues": "2: name, messages (its default for `list queues`)",
    "rabbitmqctl list_queues": "4 asked: name, ready, unacked, consumers",
    "rabbitmqadmin, warm": "the same, run again at once: served from the management cache",
}


def report(stats: dict[str, tuple[float, float]], requests: dict[str, tuple[float, float]],
           redrives: list[RedriveRun], started: str, loads: tuple[str, str]) -> str:
    admin = stats["rabbitmqadmin list queues"][0]
    ratio = stats["qctl stats"][0] / admin
    warm_ratio = stats["qctl stats"][0] / stats["rabbitmqadmin, warm"][0]
    rates = sorted(MESSAGES / run.seconds for run in redrives)
    rate = statistics.median(rates)
    lines = [
        "# RabbitMQ benchmark", "",
        f"Date: {started}; RabbitMQ {harness_version()} (private node from tools/harness), "
        f"{os.cpu_count()} CPUs shared with other work (load average {loads[0]} at the start, {loads[1]} at the end).",
        "Command: `.venv/bin/python bench/rabbitmq.py` (from the repository root, node up with "
        "`python3 tools/brokers up rabbitmq`).  Numbers are medians; the machine is noisy.", "",
        f"## stats over {QUEUES:,} queues (whole process, cold, median of {RUNS} interleaved runs)", "",
        "Each command is preceded by a one-row statistics query that empties the management plugin's result "
        "cache (rabbit_mgmt_db_cache keeps its last all-queues statistics answer for 5x the time it took and "
        "serves an identical query from it), so each pays what a cron job running once a minute pays.  "
        "\"broker CPU\" is the CPU time the broker's Erlang VM used during the command.", "",
        "| command | seconds | vs rabbitmqadmin | broker CPU s | columns |", "| --- | --- | --- | --- | --- |",
    ]
    for name, (seconds, cpu) in stats.items():
        lines.append(f"| `{name}` | {seconds:.3f} | {seconds / admin:.2f}x | {cpu:.2f} | {STATS_COLUMNS_SHOWN[name]} |")
    lines += [
        "", f"Goal <= 0.70x rabbitmqadmin (cold): **{'met' if ratio <= 0.7 else 'NOT met'}** ({ratio:.2f}x).  "
        f"Against rabbitmqadmin served from the management cache qctl is {warm_ratio:.2f}x.", "",
        f"## The requests a listing could be made of ({QUEUES:,} queues, cold, median of {RUNS})", "",
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
        "in parallel or not: paging does not make a listing gentler on 3.10, it makes it dearer.  The single "
        "`disable_stats` request is the cheapest way to get every queue's counts (the same per-queue "
        "question `rabbitmqctl list_queues` asks), its counts are current rather than a statistics interval "
        "old, and it is the only layout that meets the time goal.  `consumers` and the effective policy are "
        "not in it: they come from `/api/consumers/<vhost>` (counted per queue) and from the vhost's policies "
        "and operator policies, matched by qctl as RabbitMQ does (adapters/rabbitmq/policies.py).  Users "
        "whose tags do not show all consumers get the paged statistics listing (2 pages at a time).", "",
        f"## redrive of {MESSAGES:,} persistent messages (whole process, {REDRIVE_RUNS} runs)", "",
        "CPU columns: seconds used during the run by the broker, by qctl, and by every other process on the "
        f"machine (other people's work); the machine has {os.cpu_count()} CPUs, so a run of T seconds has "
        f"{os.cpu_count()}T CPU-seconds to share.", "",
        "| run | seconds | msg/s | broker CPU | qctl CPU | others' CPU | in the target afterwards |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for number, run in enumerate(redrives, 1):
        lines.append(f"| {number} | {run.seconds:.2f} | {MESSAGES / run.seconds:,.0f} | {run.broker_cpu:.2f} | "
                     f"{run.qctl_cpu:.2f} | {run.other_cpu:.2f} | {run.moved:,} |")
    lines += ["", f"Median **{rate:,.0f} msg/s**; goal >= 10,000 msg/s: **{'met' if rate >= 10_000 else 'NOT met'}**.",
              "", REDRIVE_NOTES, ""]
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
    "latest run's).", "",
    "| date | qctl stats s | rabbitmqadmin s (cold) | ratio | redrive msg/s, each run | redrive median | "
    "others' CPU s, each run | load average at the end |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
]


def history(previous: str, stats: dict[str, tuple[float, float]], redrives: list[RedriveRun], started: str,
            load: str) -> str:
    """The previous file's history lines plus one for this run."""
    rows = [line for line in previous.split(HISTORY, 1)[1].splitlines() if line.startswith("| 20")] \
        if HISTORY in previous else []
    qctl, admin = stats["qctl stats"][0], stats["rabbitmqadmin list queues"][0]
    rates = [MESSAGES / run.seconds for run in redrives]
    rows.append(f"| {started} | {qctl:.3f} | {admin:.3f} | {qctl / admin:.2f}x | "
                f"{', '.join(f'{rate:,.0f}' for rate in rates)} | {statistics.median(rates):,.0f} | "
                f"{', '.join(f'{run.other_cpu:.1f}' for run in redrives)} | {load} |")
    return "\n".join([HISTORY, "", *HISTORY_HEAD, *rows, ""])


def main() -> None:
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    first_load = load_average()
    make_queues()
    try:
        stats = bench_stats()
        requests = bench_requests()
    finally:
        delete_queues([f"{PREFIX}{i}" for i in range(QUEUES)])
    redrives = [redrive_once() for _ in range(REDRIVE_RUNS)]
    last_load = load_average()
    text = report(stats, requests, redrives, started, (first_load, last_load))
    path = REPO / "bench" / "results" / "rabbitmq.md"
    previous = path.read_text() if path.exists() else ""
    text += "\n" + history(previous, stats, redrives, started, last_load)
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
