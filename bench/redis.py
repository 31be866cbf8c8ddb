#!/usr/bin/env python3
"""Benchmark qctl on Redis, side by side with redis-cli, whole-process timings.

    .venv/bin/python bench/redis.py [--url redis://127.0.0.1:16379/12] [--runs 9] [--redrive-runs 3]
                                    [--out bench/results/redis.md]

1. ``qctl stats`` over 10,000 lists, default table and ``-o json``, with a glob (``'perf:q:*'``) and
   without (every key of the database: the 10,000 lists, 10 prefix DLQs the glob does not match and 9
   strings), against the peer: ``redis-cli --scan [--pattern GLOB]`` piped into one ``redis-cli`` that
   runs ``LLEN`` for every key (it assumes every key is a list, skips TYPE, finds no DLQ: the cheapest
   honest shell equivalent).  qctl must still find the 15 DLQs (5 by suffix inside the glob, 10 by
   prefix outside it); the script checks.  Goal: qctl <= 1.0x the peer.
2. ``qctl redrive`` of 1,000,000 list messages vs ``redis-cli --pipe`` sending 1,000,000 pre-generated
   ``LMOVE dlq target RIGHT LEFT`` commands.  For each: messages/s, peak RSS, and the slowest SLOWLOG
   entry of the run; qctl's peak RSS also for 100,000 messages, to show it is flat.

Each group runs interleaved (A B A B ...) after one warm-up round: min / median / max of the wall time
and the median CPU (user + system).  The URL's database is the benchmark's own (``perf:*`` keys, deleted
before and after; default db 12 of the harness's Redis, which no test uses).  The load average is recorded
at the start and the end.
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
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# This file is called redis.py: keep its folder off sys.path so `import redis` finds redis-py.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import redis  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Timed as installed: Python writes its bytecode cache on a module's first import (the warm-up round).  A
# shell with PYTHONDONTWRITEBYTECODE set would have every child recompile each module edited since.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
QCTL = str(REPO / ".venv" / "bin" / "qctl")
QUEUES = 10_000
SUFFIX_DLQS = 5  # perf:q:0:dlq ... inside the glob (rows of their own)
PREFIX_DLQS = 10  # dlq:perf:q:5 ... outside the glob
OTHER_KEYS = 9  # strings: not queues
MESSAGES = 1_000_000


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    def cells(self) -> str:
        return f"{self.median:.3f} s ({min(self.wall):.3f}-{max(self.wall):.3f}) | {statistics.median(self.cpu):.3f} s"


def default_url() -> str:
    env = REPO / ".brokers" / "env"
    pairs = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line) if env.exists() else {}
    base = pairs.get("QCTL_TEST_REDIS_URL", "redis://127.0.0.1:16379/0")
    return base.rsplit("/", 1)[0] + "/12"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: Sequence[str], *, shell: bool = False, stdin: Path | None = None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one command, which must succeed.

    RSS comes from /usr/bin/time -v: a child's own ru_maxrss would include this (large) process it forks from.
    """
    command = ["/bin/sh", "-c", "set -e; " + argv[0]] if shell else list(argv)
    with open(stdin or os.devnull, "rb") as source:
        cpu, started = children_cpu(), time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", *command], stdin=source, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {command}\n{proc.stderr[-2000:]}")
    rss = next(int(line.rsplit(":", 1)[1]) for line in proc.stderr.splitlines() if "Maximum resident" in line)
    return wall, children_cpu() - cpu, rss / 1024


def interleaved(commands: dict[str, tuple[Sequence[str], bool]], runs: int) -> dict[str, Sample]:
    samples = {name: Sample() for name in commands}
    for argv, shell in commands.values():
        run_once(argv, shell=shell)
    for _ in range(runs):
        for name, (argv, shell) in commands.items():
            wall, cpu, rss = run_once(argv, shell=shell)
            samples[name].wall.append(wall)
            samples[name].cpu.append(cpu)
            samples[name].rss.append(rss)
    return samples


def clear(r: redis.Redis) -> None:
    keys = list(r.scan_iter(match="perf:*", count=5000)) + list(r.scan_iter(match="dlq:perf:*", count=5000))
    for start in range(0, len(keys), 5000):
        r.unlink(*keys[start:start + 5000])


def seed_queues(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(QUEUES - SUFFIX_DLQS):
        pipe.lpush(f"perf:q:{i}", b"x" * (i % 7 + 1))
    for i in range(SUFFIX_DLQS):
        pipe.lpush(f"perf:q:{i}:dlq", b"d")
    for i in range(SUFFIX_DLQS, SUFFIX_DLQS + PREFIX_DLQS):
        pipe.lpush(f"dlq:perf:q:{i}", b"d", b"d")
    for i in range(OTHER_KEYS):
        pipe.set(f"perf:other:{i}", b"v")
    pipe.execute()


def seed_dlq(r: redis.Redis, count: int) -> None:
    r.delete("perf:dlq", "perf:target")
    pipe = r.pipeline(transaction=False)
    for start in range(0, count, 10_000):
        pipe.lpush("perf:dlq", *[b"message-%08d" % i for i in range(start, min(count, start + 10_000))])
    pipe.execute()


def lmove_file(count: int) -> Path:
    """RESP for `count` LMOVE commands, for redis-cli --pipe."""
    parts = [b"LMOVE", b"perf:dlq", b"perf:target", b"RIGHT", b"LEFT"]
    one = b"*5\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    fd, name = tempfile.mkstemp(prefix="qctl-bench-", suffix=".resp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(one * count)
    return Path(name)


class SlowLog:
    """The slowest command of one run, per client name ('' = redis-cli)."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.saved = r.config_get("slowlog-*")

    def start(self) -> None:
        self.r.config_set("slowlog-log-slower-than", 1000)  # record every step over 1 ms
        self.r.config_set("slowlog-max-len", 100_000)
        self.r.slowlog_reset()

    def slowest_ms(self, client: str) -> float:
        entries = [e for e in self.r.slowlog_get(100_000) if e.get("client_name", b"").decode() == client]
        return max((e["duration"] for e in entries), default=0) / 1000

    def restore(self) -> None:
        for key, value in self.saved.items():
            self.r.config_set(key, value)


def address(r: redis.Redis) -> str:
    kwargs = r.connection_pool.connection_kwargs
    return f"-h {kwargs['host']} -p {kwargs['port']} -n {kwargs.get('db', 0)}"


def check_dlqs(url: str, args: Sequence[str]) -> int:
    """How many rows of ``qctl stats -o json ARGS`` name a dead-letter queue."""
    import json

    out = subprocess.run([QCTL, "stats", "-u", url, "-o", "json", *args], capture_output=True, text=True, check=True)
    return sum(1 for row in json.loads(out.stdout) if row["dead_letter_queue"])


def bench_stats(r: redis.Redis, url: str, runs: int) -> tuple[dict[str, tuple[Sequence[str], bool]],
                                                              dict[str, Sample], dict[str, int]]:
    clear(r)
    seed_queues(r)
    where = address(r)
    commands: dict[str, tuple[Sequence[str], bool]] = {}
    found: dict[str, int] = {}
    for label, scan, args in (("glob", "--scan --pattern 'perf:q:*'", ["perf:q:*"]), ("all", "--scan", [])):
        peer = f"redis-cli {where} {scan} | sed 's/^/LLEN /' | redis-cli {where} > /dev/null"
        replies = subprocess.run(["/bin/sh", "-c", peer.replace("> /dev/null", "| wc -l")], capture_output=True,
                                 text=True, check=True).stdout.strip()
        keys = QUEUES if label == "glob" else QUEUES + PREFIX_DLQS + OTHER_KEYS
        # A string key's WRONGTYPE error takes two lines of redis-cli's output.
        assert int(replies) == keys + (0 if label == "glob" else OTHER_KEYS), f"the peer answered {replies} lines"
        found[label] = check_dlqs(url, args)
        assert found[label] == SUFFIX_DLQS + PREFIX_DLQS, (label, found[label])
        commands[f"qctl, {label}, table"] = ([QCTL, "stats", "-u", url, *args], False)
        commands[f"qctl, {label}, -o json"] = ([QCTL, "stats", "-u", url, "-o", "json", *args], False)
        commands[f"redis-cli, {label}"] = ([peer], True)
    samples = interleaved(commands, runs)
    clear(r)
    return commands, samples, found


def bench_redrive(r: redis.Redis, url: str, runs: int) -> dict[str, object]:
    slow = SlowLog(r)
    qctl = [QCTL, "redrive", "-u", url, "perf:dlq", "--to", "perf:target", "-q", "-o", "json"]
    kwargs = r.connection_pool.connection_kwargs
    resp = lmove_file(MESSAGES)
    peer = ["redis-cli", "-h", str(kwargs["host"]), "-p", str(kwargs["port"]), "-n", str(kwargs.get("db", 0)), "--pipe"]
    results: dict[str, list[float]] = {"qctl_s": [], "qctl_rss": [], "qctl_slow": [], "peer_s": [], "peer_rss": [],
                                       "peer_slow": []}
    try:
        for _ in range(runs):
            for who, argv, stdin, client in (("qctl", qctl, None, "qctl"), ("peer", peer, resp, "")):
                seed_dlq(r, MESSAGES)
                slow.start()
                seconds, _, rss = run_once(argv, stdin=stdin)
                assert r.llen("perf:target") == MESSAGES and not r.exists("perf:dlq")
                results[f"{who}_s"].append(seconds)
                results[f"{who}_rss"].append(rss)
                results[f"{who}_slow"].append(slow.slowest_ms(client))
        seed_dlq(r, MESSAGES // 10)
        small_rss = run_once(qctl)[2]
    finally:
        slow.restore()
        resp.unlink()
        clear(r)
    return {"qctl_cmd": shlex.join(qctl), "peer_cmd": shlex.join(peer) + " < (1,000,000 x LMOVE in RESP)",
            "small_rss": small_rss, **{k: statistics.median(v) for k, v in results.items()},
            "qctl_all": results["qctl_s"], "peer_all": results["peer_s"],
            "slow_max_qctl": max(results["qctl_slow"]), "slow_max_peer": max(results["peer_slow"])}


def shell(text: str) -> str:
    return text.replace(str(REPO) + "/", "")


def report(url: str, args: argparse.Namespace, started: datetime.datetime, loads: tuple[str, str],
           stats: tuple[dict[str, tuple[Sequence[str], bool]], dict[str, Sample], dict[str, int]],
           redrive: dict[str, object]) -> str:
    commands, samples, found = stats
    server = redis.Redis.from_url(url).info("server")
    lines = [
        "# Redis benchmark", "",
        f"Produced by `{shell(shlex.join(['.venv/bin/python', 'bench/redis.py', *sys.argv[1:]]))}` on "
        f"{started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs shared with other work, Python "
        f"{platform.python_version()}, Redis {server['redis_version']} on the same host (loopback), URL `{url}`.  "
        f"Load average {loads[0]} at the start, {loads[1]} at the end.  Whole processes, each group interleaved "
        f"(A B A B ...) after one warm-up round, {args.runs} rounds for stats and {args.redrive_runs} for redrive; "
        "wall time median (min-max) and median CPU.", "",
        f"## `stats` over {QUEUES:,} lists (goal: <= 1.0x the redis-cli pipeline)", "",
        f"The database holds {QUEUES - SUFFIX_DLQS:,} lists `perf:q:N`, {SUFFIX_DLQS} DLQs `perf:q:N:dlq` (matched by "
        f"the glob), {PREFIX_DLQS} DLQs `dlq:perf:q:N` (not matched) and {OTHER_KEYS} strings.  qctl found "
        f"{found['glob']} dead-letter queues with the glob and {found['all']} without (checked: "
        f"{SUFFIX_DLQS + PREFIX_DLQS} expected).", "",
        "| case | command | wall: median (min-max) | CPU median | vs redis-cli |", "| --- | --- | --- | --- | --- |",
    ]
    for name, (argv, is_shell) in commands.items():
        label = name.split(", ")[1]
        peer = samples[f"redis-cli, {label}"].median
        text = argv[0] if is_shell else shlex.join(argv)
        lines.append(f"| {name} | `{shell(text)}` | {samples[name].cells()} | {samples[name].median / peer:.2f}x |")
    worst = max(samples[n].median / samples[f"redis-cli, {n.split(', ')[1]}"].median for n in samples
                if n.startswith("qctl"))
    q_rate = MESSAGES / float(redrive["qctl_s"])  # type: ignore[arg-type]
    p_rate = MESSAGES / float(redrive["peer_s"])  # type: ignore[arg-type]
    lines += [
        "", f"Goal <= 1.0x: **{'met' if worst <= 1.0 else 'NOT met'}** (worst case {worst:.2f}x).  The peer only "
        "scans and asks `LLEN`, one round trip per key (redis-cli reads its stdin line by line); qctl scans, then "
        "asks one script call per thousand keys (LLEN; TYPE and XLEN/ZCARD only for keys that are not lists), "
        "finds the DLQs outside the glob with one more SCAN (`d*perf:q:*` covers the prefixes dlq:, dlq., dlq-, "
        "dead:) and renders the table.  About one Redis command per key (tests/redis/test_stats.py counts them "
        "in INFO commandstats); before: TYPE + LLEN per key and a TYPE for each of 4 prefix candidates, 9.3.", "",
        f"## `redrive` of {MESSAGES:,} list messages (goals: >= 200,000 msg/s; no Redis step over 20 ms; memory flat)",
        "",
        "| tool | command | median time | messages/s | all runs | peak RSS | slowest SLOWLOG entry (max over runs) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| qctl | `{shell(str(redrive['qctl_cmd']))}` | {redrive['qctl_s']:.2f} s | **{q_rate:,.0f}** | "
        f"{', '.join(f'{t:.2f}' for t in redrive['qctl_all'])} | {redrive['qctl_rss']:.0f} MiB | "  # type: ignore[attr-defined]
        f"{redrive['slow_max_qctl']:.2f} ms |",
        f"| redis-cli | `{redrive['peer_cmd']}` | {redrive['peer_s']:.2f} s | {p_rate:,.0f} | "
        f"{', '.join(f'{t:.2f}' for t in redrive['peer_all'])} | {redrive['peer_rss']:.0f} MiB | "  # type: ignore[attr-defined]
        f"{redrive['slow_max_peer']:.2f} ms |", "",
        "qctl moves chunks of 2,000 messages per Lua script (LRANGE + LPUSH + LTRIM, atomic per chunk).  Memory is "
        f"flat: qctl's peak RSS is {redrive['small_rss']:.0f} MiB for {MESSAGES // 10:,} messages and "
        f"{redrive['qctl_rss']:.0f} MiB for {MESSAGES:,}.  SLOWLOG recorded every command over 1 ms during each run "
        "(`0.00 ms`: no step of that tool took over 1 ms).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--redrive-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "redis.md")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC)
    load_start = " ".join(f"{v:.2f}" for v in os.getloadavg())
    r = redis.Redis.from_url(args.url)
    stats = bench_stats(r, args.url, args.runs)
    redrive = bench_redrive(r, args.url, args.redrive_runs)
    load_end = " ".join(f"{v:.2f}" for v in os.getloadavg())
    text = report(args.url, args, started, (load_start, load_end), stats, redrive)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
