#!/usr/bin/env python3
"""Benchmark qctl on Redis, side by side with redis-cli, whole-process timings (medians).

    .venv/bin/python bench/redis.py [--url redis://127.0.0.1:16379/9] [--runs 5] [--out bench/results/redis.md]

1. ``qctl stats -o json`` over 10,000 lists vs the peer: ``redis-cli --scan`` piped
   into one ``redis-cli`` that runs ``LLEN`` for every key (pipelined by redis-cli
   reading stdin; it knows every key is a list, so it skips TYPE: the fastest
   honest shell equivalent).
2. ``qctl redrive`` of 1,000,000 list messages vs the peer: ``redis-cli --pipe``
   sending 1,000,000 pre-generated ``LMOVE dlq target RIGHT LEFT`` commands
   (one atomic move per message, fully pipelined).  For each: messages/s, the
   child's peak RSS (``wait4``), and the slowest SLOWLOG entry of the run.
   qctl's peak RSS is also measured for 100,000 messages to show it is flat.

The URL's database is used for the benchmark's keys (``bench:*``), which are
deleted before and after; the default is db 9 of the harness's Redis.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file is called redis.py: keep its folder off sys.path so `import redis` finds redis-py.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import redis  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QCTL = [str(REPO / ".venv" / "bin" / "qctl")]
QUEUES = 10_000
MESSAGES = 1_000_000


def default_url() -> str:
    env = REPO / ".brokers" / "env"
    pairs = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line) if env.exists() else {}
    base = pairs.get("QCTL_TEST_REDIS_URL", "redis://127.0.0.1:16379/0")
    return base.rsplit("/", 1)[0] + "/9"


def timed(argv: list[str], *, shell: bool = False, stdin: Path | None = None) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one command; it must succeed.

    RSS comes from /usr/bin/time -v: a child's own ru_maxrss would include this
    (large) benchmark process, which it starts as a fork of.
    """
    command = ["/bin/sh", "-c", "set -e; " + argv[0]] if shell else argv
    with open(stdin or os.devnull, "rb") as source:
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", *command], stdin=source, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {command}\n{proc.stderr[-2000:]}")
    rss = next(int(line.rsplit(":", 1)[1]) for line in proc.stderr.splitlines() if "Maximum resident" in line)
    return elapsed, rss


def clear(r: redis.Redis) -> None:
    keys = list(r.scan_iter(match="bench:*", count=5000))
    for start in range(0, len(keys), 5000):
        r.unlink(*keys[start:start + 5000])


def seed_queues(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(QUEUES):
        pipe.lpush(f"bench:q:{i}", b"x" * (i % 7 + 1))
    pipe.execute()


def seed_dlq(r: redis.Redis, count: int) -> None:
    r.delete("bench:dlq", "bench:target")
    pipe = r.pipeline(transaction=False)
    for start in range(0, count, 10_000):
        pipe.lpush("bench:dlq", *[b"message-%08d" % i for i in range(start, min(count, start + 10_000))])
    pipe.execute()


def lmove_file(count: int) -> Path:
    """RESP for `count` LMOVE commands, for redis-cli --pipe."""
    parts = [b"LMOVE", b"bench:dlq", b"bench:target", b"RIGHT", b"LEFT"]
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


def bench_stats(r: redis.Redis, url: str, runs: int) -> dict[str, object]:
    clear(r)
    seed_queues(r)
    host, port, db = r.connection_pool.connection_kwargs["host"], r.connection_pool.connection_kwargs["port"], \
        r.connection_pool.connection_kwargs.get("db", 0)
    peer = (f"redis-cli -h {host} -p {port} -n {db} --scan | sed 's/^/LLEN /' "
            f"| redis-cli -h {host} -p {port} -n {db} > /dev/null")
    replies = subprocess.run(["/bin/sh", "-c", peer.replace("> /dev/null", "| wc -l")], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert replies == str(QUEUES), f"the peer answered {replies} of {QUEUES} LLENs"
    qctl = [*QCTL, "stats", "-u", url, "-o", "json"]
    rows = int(subprocess.run(qctl, capture_output=True, text=True, check=True).stdout.count('"queue"'))
    assert rows == QUEUES, rows
    qctl_times = [timed(qctl)[0] for _ in range(runs)]
    peer_times = [timed([peer], shell=True)[0] for _ in range(runs)]
    clear(r)
    return {"qctl": statistics.median(qctl_times), "peer": statistics.median(peer_times),
            "qctl_cmd": shlex.join(qctl), "peer_cmd": peer, "qctl_all": qctl_times, "peer_all": peer_times}


def bench_redrive(r: redis.Redis, url: str, runs: int) -> dict[str, object]:
    slow = SlowLog(r)
    qctl = [*QCTL, "redrive", "-u", url, "bench:dlq", "--to", "bench:target", "-q", "-o", "json"]
    host, port = r.connection_pool.connection_kwargs["host"], r.connection_pool.connection_kwargs["port"]
    db = r.connection_pool.connection_kwargs.get("db", 0)
    resp = lmove_file(MESSAGES)
    peer = ["redis-cli", "-h", str(host), "-p", str(port), "-n", str(db), "--pipe"]
    results: dict[str, list[float]] = {"qctl_s": [], "qctl_rss": [], "qctl_slow": [], "peer_s": [], "peer_rss": [],
                                       "peer_slow": []}
    try:
        for _ in range(runs):
            for who, argv, stdin, client in (("qctl", qctl, None, "qctl"), ("peer", peer, resp, "")):
                seed_dlq(r, MESSAGES)
                slow.start()
                seconds, rss = timed(argv, stdin=stdin)
                assert r.llen("bench:target") == MESSAGES and not r.exists("bench:dlq")
                results[f"{who}_s"].append(seconds)
                results[f"{who}_rss"].append(rss / 1024)
                results[f"{who}_slow"].append(slow.slowest_ms(client))
        seed_dlq(r, MESSAGES // 10)
        small_rss = timed(qctl)[1] / 1024
    finally:
        slow.restore()
        resp.unlink()
        clear(r)
    return {"qctl_cmd": shlex.join(qctl), "peer_cmd": shlex.join(peer) + " < (1,000,000 x LMOVE in RESP)",
            "small_rss": small_rss, **{k: statistics.median(v) for k, v in results.items()},
            "slow_max_qctl": max(results["qctl_slow"]), "slow_max_peer": max(results["peer_slow"])}


def report(url: str, runs: int, stats: dict[str, object], redrive: dict[str, object]) -> str:
    q_rate = MESSAGES / float(redrive["qctl_s"])  # type: ignore[arg-type]
    p_rate = MESSAGES / float(redrive["peer_s"])  # type: ignore[arg-type]
    server = redis.Redis.from_url(url).info("server")
    return f"""# Redis benchmark

Produced by `{shlex.join([".venv/bin/python", "bench/redis.py", *sys.argv[1:]])}` on
{datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}, {os.cpu_count()} CPUs, Python
{platform.python_version()}, Redis {server["redis_version"]} on the same host (loopback), URL `{url}`.
Whole-process wall times, median of {runs} runs each, qctl and the peer alternating in the same run.

## `stats` over {QUEUES:,} lists (goal: <= 0.5 s)

| tool | command | median | all runs |
| --- | --- | --- | --- |
| qctl | `{stats["qctl_cmd"]}` | **{stats["qctl"]:.3f} s** | {", ".join(f"{t:.3f}" for t in stats["qctl_all"])} |
| redis-cli | `{stats["peer_cmd"]}` | {stats["peer"]:.3f} s | {", ".join(f"{t:.3f}" for t in stats["peer_all"])} |

The peer only scans and asks `LLEN` (it assumes every key is a list); qctl also runs TYPE for every key,
finds dead-letter queues by name and renders JSON.

## `redrive` of {MESSAGES:,} list messages (goals: >= 200,000 msg/s; no Redis step over 20 ms; memory flat)

| tool | command | median time | messages/s | peak RSS | slowest SLOWLOG entry (max over runs) |
| --- | --- | --- | --- | --- | --- |
| qctl | `{redrive["qctl_cmd"]}` | {redrive["qctl_s"]:.2f} s | **{q_rate:,.0f}** | {redrive["qctl_rss"]:.0f} MiB \
| {redrive["slow_max_qctl"]:.2f} ms |
| redis-cli | `{redrive["peer_cmd"]}` | {redrive["peer_s"]:.2f} s | {p_rate:,.0f} | {redrive["peer_rss"]:.0f} MiB \
| {redrive["slow_max_peer"]:.2f} ms |

qctl moves chunks of 2,000 messages per Lua script (LRANGE + LPUSH + LTRIM, atomic per chunk).
Memory is flat: qctl's peak RSS is {redrive["small_rss"]:.0f} MiB for {MESSAGES // 10:,} messages and
{redrive["qctl_rss"]:.0f} MiB for {MESSAGES:,}.  SLOWLOG was set to record every command over 1 ms during
each run (`0.00 ms` means no step of that tool took over 1 ms).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "redis.md")
    args = parser.parse_args()
    r = redis.Redis.from_url(args.url)
    stats = bench_stats(r, args.url, args.runs)
    redrive = bench_redrive(r, args.url, max(3, args.runs // 2))
    text = report(args.url, args.runs, stats, redrive)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
