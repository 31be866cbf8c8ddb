#!/usr/bin/env python3
"""Benchmark qctl on MQTT retained messages, side by side with mosquitto_sub, whole-process timings (medians).

    .venv/bin/python bench/mqtt.py [--url mqtt://127.0.0.1:18830] [--runs 5] [--out bench/results/mqtt.md]

A tree of 10,000 retained topics three levels deep (``bench-mqtt/site-N/dev-NN/tNNNNN``,
~10-byte payloads) on the harness's mosquitto (``python3 tools/brokers up mqtt``).  Each row
times one whole process, qctl and the peer alternating within the same run, after checking
that both did the job:

1. inventory: ``qctl stats FILTER`` (a row with the retained count) against
   ``mosquitto_sub -t FILTER --retained-only -W 1 -v | wc -l``;
2. peek: ``qctl peek FILTER -n 10000 -o jsonl`` against ``mosquitto_sub -t FILTER
   --retained-only -W 1 -v`` (both print every message);
3. purge: ``qctl purge FILTER --yes`` (its depth scan, then one empty retained publish per
   topic, each PUBACKed) against ``mosquitto_sub -t FILTER --retained-only
   --remove-retained -W 1``; the tree is seeded again before every run of either.

``mosquitto_sub --retained-only`` cannot know when a tree is complete: it stops at the first
non-retained message or at its ``-W`` timeout (1 s here, the smallest it takes), so its time
is about one second however small the tree.  qctl ends a scan when a marker it publishes to
a private ``$qctl/...`` topic comes back, right after the last retained message.

The machine is shared; the load average before and after each section is in the report.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
QCTL = [str(REPO / ".venv" / "bin" / "qctl")]
TOPICS = 10_000
ROOT = "bench-mqtt"
FILTER = f"{ROOT}/#"
TIMEOUT_RC = 27  # mosquitto_sub's exit status when -W ends it


def default_url() -> str:
    env = REPO / ".brokers" / "env"
    pairs = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line) if env.exists() else {}
    return pairs.get("QCTL_TEST_MQTT_URL", "mqtt://127.0.0.1:18830")


def topics() -> list[str]:
    return [f"{ROOT}/site-{i % 10}/dev-{i % 100:02d}/t{i:05d}" for i in range(TOPICS)]


def client(url: str):  # type: ignore[no-untyped-def]
    from tests.mqtt.driver import Client

    return Client(url, f"bench-{os.getpid()}")


def seed(url: str) -> None:
    publisher = client(url)
    try:
        for start in range(0, TOPICS, 2000):
            publisher.wait([publisher.publish(topic, f"reading {i}".encode(), retain=True)
                            for i, topic in enumerate(topics()[start:start + 2000], start=start)])
    finally:
        publisher.close()


def retained(url: str) -> int:
    reader = client(url)
    try:
        return len(reader.retained(FILTER))
    finally:
        reader.close()


def clear(url: str) -> None:
    reader = client(url)
    try:
        found = reader.retained(FILTER)
        reader.wait([reader.publish(message.topic, b"", retain=True) for message in found])
    finally:
        reader.close()


CPU: list[float] = []  # CPU seconds (user + system) of the last timed command and its children


def timed(argv: list[str], *, shell: bool = False, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    command = ["/bin/sh", "-c", argv[0]] if shell else argv
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if proc.returncode not in ok:
        raise SystemExit(f"failed ({proc.returncode}): {command}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def sub(url: str) -> str:
    from qctl.urls import parse

    parsed = parse(url)
    return f"mosquitto_sub -h {parsed.host} -p {parsed.port or 1883}"


def bench(url: str, runs: int) -> dict[str, dict[str, object]]:
    peer = sub(url)
    rows: dict[str, dict[str, object]] = {}
    cases = {
        "stats": ([*QCTL, "stats", "-u", url, "-o", "json", FILTER],
                  f"{peer} -t '{FILTER}' --retained-only -W 1 -v | wc -l"),
        "peek": ([*QCTL, "peek", "-u", url, "-n", str(TOPICS), "-o", "jsonl", FILTER],
                 f"{peer} -t '{FILTER}' --retained-only -W 1 -v"),
        "purge": ([*QCTL, "purge", "-u", url, "--yes", "-q", "-o", "json", FILTER],
                  f"{peer} -t '{FILTER}' --retained-only --remove-retained -W 1"),
    }
    clear(url)
    seed(url)
    for name, (qctl, shell) in cases.items():
        load_before = os.getloadavg()
        q_times: list[float] = []
        p_times: list[float] = []
        q_cpu: list[float] = []
        p_cpu: list[float] = []
        passes: list[int] = []  # purge: mosquitto_sub runs it took to empty the tree
        leftovers: list[int] = []  # purge: topics its first run left
        for _ in range(runs):
            if name == "purge":
                seed(url)
            seconds, out = timed(qctl)
            q_cpu.append(CPU[-1])
            check(name, "qctl", out, url)
            q_times.append(seconds)
            if name == "purge":
                seed(url)
                mark = len(CPU)
                seconds, rounds, first_left = peer_purge(shell, url)
                p_cpu.append(sum(CPU[mark:]))
                passes.append(rounds)
                leftovers.append(first_left)
            else:
                seconds, out = timed([shell], shell=True, ok=(0, TIMEOUT_RC))
                p_cpu.append(CPU[-1])
                check(name, "peer", out, url)
            p_times.append(seconds)
        rows[name] = {"qctl": statistics.median(q_times), "peer": statistics.median(p_times), "qctl_all": q_times,
                      "peer_all": p_times, "qctl_cmd": shlex.join(qctl), "peer_cmd": shell,
                      "load": (load_before, os.getloadavg()), "passes": passes, "leftovers": leftovers,
                      "qctl_cpu": statistics.median(q_cpu), "peer_cpu": statistics.median(p_cpu)}
    clear(url)
    return rows


def peer_purge(shell: str, url: str) -> tuple[float, int, int]:
    """mosquitto_sub --remove-retained, run again until the tree is empty: (seconds of its runs, runs, left by
    the first).  It queues a QoS 1 clear per message and disconnects at its -W timeout, dropping the clears
    still queued, so one run does not empty a big tree; the counting between runs is not timed."""
    total, rounds, first_left = 0.0, 0, -1
    while True:
        seconds, _ = timed([shell + " > /dev/null"], shell=True, ok=(0, TIMEOUT_RC))
        total += seconds
        rounds += 1
        left = retained(url)
        if first_left < 0:
            first_left = left
        if left == 0 or rounds >= 50:
            assert left == 0, ("mosquitto_sub --remove-retained left", left)
            return total, rounds, first_left


def check(name: str, who: str, out: str, url: str) -> None:
    """Both tools must have done the whole job, or their times mean nothing."""
    if name == "stats":
        value = int(out.split('"depth": ')[1].split(",")[0]) if who == "qctl" else int(out.strip())
        assert value == TOPICS, (name, who, value)
    elif name == "peek":
        assert len(out.splitlines()) == TOPICS, (name, who, len(out.splitlines()))
    else:
        left = retained(url)
        assert left == 0, (name, who, left)


def report(url: str, runs: int, rows: dict[str, dict[str, object]]) -> str:
    version = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout.splitlines()[0]
    lines = [f"""# MQTT benchmark

Produced by `{shlex.join([".venv/bin/python", "bench/mqtt.py", *sys.argv[1:]])}` on
{datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}, {os.cpu_count()} CPUs shared with other work,
Python {platform.python_version()}, {version} (the harness's broker, loopback), URL `{url}`.
Whole-process wall times, median of {runs} runs each, qctl and mosquitto_sub alternating in the same run; every
run was checked (count, lines printed, tree empty after a purge).  The tree: {TOPICS:,} retained topics,
three levels deep, ~10-byte payloads; it is seeded again before every purge run.

| what | tool | command | median | all runs | CPU s (median) | load average (1 min) before / after |
| --- | --- | --- | --- | --- | --- | --- |"""]
    for name, row in rows.items():
        before, after = row["load"]  # type: ignore[misc]
        load = f"{before[0]:.2f} / {after[0]:.2f}"
        for who in ("qctl", "peer"):
            tool = "qctl" if who == "qctl" else "mosquitto_sub"
            times = ", ".join(f"{t:.2f}" for t in row[f"{who}_all"])  # type: ignore[attr-defined]
            median = f"**{row[who]:.2f} s**" if who == "qctl" else f"{row[who]:.2f} s"
            command = str(row[f"{who}_cmd"]).replace("|", "\\|")  # a pipe inside a table cell
            cpu = f"{row[f'{who}_cpu']:.2f}"
            lines.append(f"| {name} | {tool} | `{command}` | {median} | {times} | {cpu} | {load} |")
    purge = rows.get("purge")
    if purge:
        lines.append(f"""
purge, mosquitto_sub: its time is the sum of the runs it took to empty the tree ({purge["passes"]} runs; the first
left {purge["leftovers"]} of {TOPICS:,} topics in place).  It publishes a QoS 1 clear for each retained message it
receives, libmosquitto sends 20 at a time, and at its `-W 1` timeout it disconnects with the rest still queued:
the "capped and flaky" bulk delete of big trees that users report (mosquitto #1323).""")
    lines.append("""
On a loaded machine the wall times favour mosquitto_sub, which spends its second asleep waiting for `-W`, while
qctl's work is Python on the CPU (hence the CPU column: what each costs the machine).
mosquitto_sub's times are bounded below by its `-W 1` timeout: with `--retained-only` it has no other way to know
the tree is complete (it stops early only when a non-retained message arrives).  qctl's include its start-up
(Python, paho-mqtt's import) and, for purge, the scan that counts the tree for the confirmation (reused by the
purge itself) and a PUBACK for every clear, in a window of the broker's Receive Maximum (20 on mosquitto's
defaults).  `qctl stats` speaks MQTT 3.1.1 (nothing in it needs MQTT 5, and paho decodes a 3.1.1 PUBLISH about three
times faster); peek and purge speak MQTT 5 (user properties, and the "retain as published" that lets a purge tell
another client's new value from the one it read).
""")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "mqtt.md")
    args = parser.parse_args()
    rows = bench(args.url, args.runs)
    text = report(args.url, args.runs, rows)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
