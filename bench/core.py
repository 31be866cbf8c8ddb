"""qctl's own costs, side by side with the nearest peer in the same run: start-up, tables, one stats per broker.

    .venv/bin/python bench/core.py [--runs 21] [--restart-brokers] [--out bench/results/core.md]

1. Start-up, whole process: ``qctl --version`` and ``qctl --help`` against ``python -c "import typer"``
   (qctl's CLI is a typer app: the floor any typer CLI pays).  Goal: <= 1.2x.
2. A table of 10,000 ``stats`` rows, rendered in this process (CPU time of the call, cells formatted
   included): qctl's aligned writer (qctl/output.py) against the tabulate call it replaced, and the same
   rows as json and jsonl.  Goal: <= 60 ms of CPU.  Plus ``python -c "import tabulate"`` against
   ``python -c pass``: what importing tabulate cost every table.
3. One small ``stats`` per broker, with ``redis-cli LLEN`` as the floor of a whole-process answer.
   With --restart-brokers also ``tools/brokers down X; tools/brokers up X`` for each broker.

Every group is interleaved (A B C A B C ...), after one warm-up round, so a busy moment of the shared
machine hits every command alike; each figure is min / median / max over the runs, wall and CPU (user +
system of the process and its children).  The load average is recorded at the start and the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Timed as installed: Python writes its bytecode cache on a module's first import (the warm-up round).  A
# shell with PYTHONDONTWRITEBYTECODE set would have every child recompile each module edited since.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
PYTHON = str(REPO / ".venv" / "bin" / "python")
QCTL = str(REPO / ".venv" / "bin" / "qctl")
ROWS = 10_000
COLUMNS = ["queue", "type", "depth", "in_flight", "consumers", "lag", "dead_letter_queue", "dead_letter_depth",
           "oldest_age"]


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def cells(self, scale: float = 1000.0, unit: str = "ms") -> str:
        """`median (min-max)` wall, then median CPU."""
        wall = f"{statistics.median(self.wall) * scale:.0f} {unit} ({min(self.wall) * scale:.0f}-" \
               f"{max(self.wall) * scale:.0f})"
        return f"{wall} | {statistics.median(self.cpu) * scale:.0f} {unit}"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: Sequence[str]) -> tuple[float, float]:
    cpu, started = children_cpu(), time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(command)}\n{proc.stderr[-2000:]}")
    return wall, children_cpu() - cpu


def interleaved(commands: dict[str, Sequence[str]], runs: int) -> dict[str, Sample]:
    """Whole-process wall and CPU seconds of each command, run A B C A B C ... after one warm-up round."""
    samples = {name: Sample() for name in commands}
    for command in commands.values():
        run_once(command)
    for _ in range(runs):
        for name, command in commands.items():
            wall, cpu = run_once(command)
            samples[name].wall.append(wall)
            samples[name].cpu.append(cpu)
    return samples


def in_process(calls: dict[str, Callable[[], Any]], runs: int) -> dict[str, Sample]:
    """CPU (and wall) seconds of each call in this process, interleaved, after one warm-up round."""
    samples = {name: Sample() for name in calls}
    for call in calls.values():
        call()
    for _ in range(runs):
        for name, call in calls.items():
            cpu, started = time.process_time(), time.perf_counter()
            call()
            samples[name].wall.append(time.perf_counter() - started)
            samples[name].cpu.append(time.process_time() - cpu)
    return samples


def env() -> dict[str, str]:
    text = (REPO / ".brokers" / "env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# --- 2. tables ---------------------------------------------------------------------------------------------

def stats_rows() -> list[dict[str, Any]]:
    """10,000 rows shaped like ``qctl stats`` over Redis lists (one DLQ per hundred queues)."""
    return [{"backend": "redis", "queue": f"perf:q:{i}", "type": "list", "depth": i % 7 + 1, "in_flight": None,
             "consumers": None, "lag": None, "dead_letter_queue": f"perf:q:{i}:dlq" if i % 100 == 0 else None,
             "dead_letter_depth": 1 if i % 100 == 0 else None, "oldest_age": None} for i in range(ROWS)]


def tabulate_table(records: list[dict[str, Any]], out: io.StringIO) -> None:
    """The plain table as qctl printed it before (qctl/output.py at 3242d4e): tabulate over the same cells."""
    from tabulate import tabulate

    from qctl.output import cell, visible

    data = [[visible(cell(record.get(col))) for col in COLUMNS] for record in records]
    out.write(tabulate(data, headers=[col.upper() for col in COLUMNS], tablefmt="plain", disable_numparse=True)
              + "\n")


def bench_tables(runs: int) -> tuple[dict[str, Sample], bool]:
    sys.path.insert(0, str(REPO))
    from qctl import output

    records = stats_rows()
    ours, theirs = io.StringIO(), io.StringIO()
    output.table(records, COLUMNS, ours)
    tabulate_table(records, theirs)
    same = ours.getvalue() == theirs.getvalue()
    samples = in_process({
        "qctl's aligned writer (`output.rows(rows, 'table', ...)`)":
            lambda: output.rows(records, "table", COLUMNS, stream=io.StringIO()),
        "tabulate, as before (`tabulate(cells, tablefmt='plain', disable_numparse=True)`)":
            lambda: tabulate_table(records, io.StringIO()),
        "qctl `-o json`": lambda: output.rows(records, "json", COLUMNS, stream=io.StringIO()),
        "`json.dumps` per row, as before (`-o json`)":
            lambda: io.StringIO().write(",\n  ".join(json.dumps(r, ensure_ascii=False) for r in records)),
        "qctl `-o jsonl`": lambda: output.rows(records, "jsonl", COLUMNS, stream=io.StringIO()),
    }, runs)
    return samples, same


# --- report ----------------------------------------------------------------------------------------------

def table(samples: dict[str, Sample], commands: dict[str, Sequence[str]] | None = None,
          floor: str | None = None) -> list[str]:
    lines = ["| command | wall: median (min-max) | CPU median | vs floor (median wall) |", "| --- | --- | --- | --- |"]
    base = statistics.median(samples[floor].wall) if floor else None
    for name, sample in samples.items():
        shown = f"`{shell(commands[name])}`" if commands else name
        ratio = f"{statistics.median(sample.wall) / base:.2f}x" if base else "-"
        lines.append(f"| {shown} | {sample.cells()} | {ratio} |")
    return lines


def shell(command: Sequence[str]) -> str:
    return shlex.join(command).replace(str(REPO) + "/", "")


def broker_startups() -> dict[str, float]:
    times = {}
    for name in ("redis", "rabbitmq", "kafka"):
        subprocess.run([sys.executable, "tools/brokers", "down", name], cwd=REPO, check=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "tools/brokers", "up", name], cwd=REPO, check=True)
        times[name] = time.monotonic() - started
    return times


def seed(urls: dict[str, str]) -> None:
    """One small queue per broker named bench-startup, so `stats` has something to read."""
    subprocess.run([PYTHON, "-c", SEED, urls["QCTL_TEST_REDIS_URL"], urls["QCTL_TEST_AMQP_URL"],
                    urls["QCTL_TEST_KAFKA_URL"]], check=True)


SEED = """
import sys, redis, pika
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
r, a, k = sys.argv[1:4]
client = redis.Redis.from_url(r); client.delete("bench-startup"); client.lpush("bench-startup", *[b"x"] * 10)
conn = pika.BlockingConnection(pika.URLParameters(a)); ch = conn.channel()
ch.queue_declare("bench-startup", durable=True)
for _ in range(10): ch.basic_publish("", "bench-startup", b"x")
conn.close()
boot = k.split("://", 1)[1]
admin = AdminClient({"bootstrap.servers": boot})
if "bench-startup" not in admin.list_topics(timeout=10).topics:
    admin.create_topics([NewTopic("bench-startup", 1, 1)])["bench-startup"].result()
producer = Producer({"bootstrap.servers": boot})
for _ in range(10): producer.produce("bench-startup", b"x")
producer.flush(10)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--restart-brokers", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "core.md")
    args = parser.parse_args()
    started = datetime.now(UTC)
    load_start = os.getloadavg()
    startups = broker_startups() if args.restart_brokers else {}

    start_cmds: dict[str, Sequence[str]] = {
        "typer": [PYTHON, "-c", "import typer"], "version": [QCTL, "--version"], "help": [QCTL, "--help"],
        "pass": [PYTHON, "-c", "pass"], "tabulate": [PYTHON, "-c", "import tabulate"],
    }
    start = interleaved(start_cmds, args.runs)
    tables, same = bench_tables(args.runs)

    subprocess.run([sys.executable, "tools/brokers", "up", "redis", "rabbitmq", "kafka"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    urls = env()
    seed(urls)
    stats_cmds: dict[str, Sequence[str]] = {
        "redis-cli": ["redis-cli", "-u", urls["QCTL_TEST_REDIS_URL"], "LLEN", "bench-startup"],
        "redis": [QCTL, "stats", "-u", urls["QCTL_TEST_REDIS_URL"], "bench-startup"],
        "rabbitmq": [QCTL, "stats", "-u", urls["QCTL_TEST_AMQP_URL"], "bench-startup"],
        "kafka": [QCTL, "stats", "-u", urls["QCTL_TEST_KAFKA_URL"], "bench-startup"],
    }
    stats = interleaved(stats_cmds, max(5, args.runs // 3))
    load_end = os.getloadavg()

    typer_wall = statistics.median(start["typer"].wall)
    ratios = {name: statistics.median(start[name].wall) / typer_wall for name in ("version", "help")}
    cpu_ratios = {name: statistics.median(start[name].cpu) / statistics.median(start["typer"].cpu)
                  for name in ("version", "help")}
    writer = next(iter(tables.values()))
    writer_cpu = statistics.median(writer.cpu) * 1000
    command = shell([".venv/bin/python", "bench/core.py", *sys.argv[1:]])
    lines = [
        "# qctl's own costs: start-up, tables, one stats per broker",
        "",
        f"Produced by `{command}` on {started:%Y-%m-%d %H:%M} UTC ({os.cpu_count()} CPUs shared with other work, "
        f"{platform.python_implementation()} {platform.python_version()}); load average "
        f"{' '.join(f'{v:.2f}' for v in load_start)} at the start, {' '.join(f'{v:.2f}' for v in load_end)} at the "
        f"end.  Each group interleaved (A B C A B C ...) after one warm-up round, {args.runs} rounds; wall time "
        "median (min-max) and the median CPU (user + system).",
        "",
        "## Start-up (goal: <= 1.2x `python -c \"import typer\"`)",
        "",
        *table(start, start_cmds, floor="typer"),
        "",
        f"`qctl --version` {ratios['version']:.2f}x and `qctl --help` {ratios['help']:.2f}x the typer import "
        f"(wall medians; CPU {cpu_ratios['version']:.2f}x and {cpu_ratios['help']:.2f}x): goal "
        f"**{'met' if max(ratios.values()) <= 1.2 else 'NOT met'}**.  What was cut, counted by "
        "tests/perf/test_startup.py: typer evaluated ~550 string annotations of qctl/cli.py on every run "
        "(`from __future__ import annotations`, ~40 ms); qctl.urls (with hashlib), csv and importlib.metadata "
        "are imported when first used, not at start-up.",
        "",
        f"## A table of {ROWS:,} stats rows (goal: <= 60 ms of CPU)",
        "",
        "Rendered in this process into a string buffer (cells formatted included), CPU time of the call:",
        "",
        *table(tables),
        "",
        f"qctl's writer: **{writer_cpu:.0f} ms** of CPU, goal **{'met' if writer_cpu <= 60 else 'NOT met'}**; "
        f"its output is {'byte for byte the same as' if same else 'NOT the same as'} tabulate's (also "
        "tests/perf/test_render.py, on generated tables).  tabulate sniffs every cell's type (number? bool? "
        "ANSI codes? several lines?) before aligning it; qctl's cells are already strings with control "
        "characters escaped, so its writer measures each column once.  `python -c \"import tabulate\"` "
        "above is what importing it added to every table.  On a terminal rich still draws tables of up to "
        "200 rows; it needs ~90 us a cell (8.8 s of CPU for 10,000 rows), so longer ones get this form.",
        "",
        "## One small `stats` per broker (whole process)",
        "",
        *table(stats, stats_cmds, floor="redis-cli"),
    ]
    if startups:
        lines += ["", "Broker start-up in the harness (`tools/brokers down X && tools/brokers up X`, data kept, "
                  "until the broker really serves):", "", "| broker | start-up |", "| --- | --- |",
                  *[f"| {name} | {seconds:.1f} s |" for name, seconds in startups.items()]]
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
