"""Whole-process timings of qctl's start-up and of one `stats` per broker, plus broker start-up.

    .venv/bin/python bench/core.py [--restart-brokers] [--runs N]

Uses hyperfine (medians of N runs after warm-up) for qctl itself and, for
comparison, `redis-cli LLEN` (the cheapest peer answer to the same question;
the per-backend peers are in bench/redis.py, rabbitmq.py, kafka.py).  With
--restart-brokers it also times
`tools/brokers down X; tools/brokers up X` for each broker (cold start with
data kept, as a test run or the demo sees it).  Writes bench/results/core.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QCTL = str(REPO / ".venv" / "bin" / "qctl")
RESULTS = REPO / "bench" / "results" / "core.md"


def env() -> dict[str, str]:
    text = (REPO / ".brokers" / "env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def hyperfine(commands: dict[str, str], runs: int) -> dict[str, float]:
    """Median seconds per named shell command."""
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        args = ["hyperfine", "-N", "--warmup", "2", "--runs", str(runs), "--export-json", export.name,
                "--style", "none"]
        for name, command in commands.items():
            args += ["-n", name, command]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        data = json.loads(Path(export.name).read_text())
    return {item["command"]: item["median"] for item in data["results"]}


def seed(urls: dict[str, str]) -> None:
    """One small queue per broker named bench-startup, so `stats` has something to read."""
    subprocess.run([sys.executable, "-c", SEED, urls["QCTL_TEST_REDIS_URL"], urls["QCTL_TEST_AMQP_URL"],
                    urls["QCTL_TEST_KAFKA_URL"]], check=True)


SEED = """
import sys, time, redis, pika
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
r, a, k = sys.argv[1:4]
client = redis.Redis.from_url(r); client.delete("bench-startup"); client.lpush("bench-startup", *[b"x"] * 10)
conn = pika.BlockingConnection(pika.URLParameters(a)); ch = conn.channel()
ch.queue_declare("bench-startup", durable=True)
for _ in range(10): ch.basic_publish("", "bench-startup", b"x")
conn.close()
boot = k.split("://", 1)[1]
admin = KafkaAdminClient(bootstrap_servers=boot)
if "bench-startup" not in admin.list_topics(): admin.create_topics([NewTopic("bench-startup", 1, 1)])
producer = KafkaProducer(bootstrap_servers=boot)
for _ in range(10): producer.send("bench-startup", b"x")
producer.flush()
"""


def broker_startups() -> dict[str, float]:
    times = {}
    for name in ("redis", "rabbitmq", "kafka"):
        subprocess.run([sys.executable, "tools/brokers", "down", name], cwd=REPO, check=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "tools/brokers", "up", name], cwd=REPO, check=True)
        times[name] = time.monotonic() - started
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--restart-brokers", action="store_true")
    args = parser.parse_args()
    startups = broker_startups() if args.restart_brokers else {}
    subprocess.run([sys.executable, "tools/brokers", "up"], cwd=REPO, check=True)
    urls = env()
    seed(urls)
    timings = hyperfine({
        "qctl --version": f"{QCTL} --version",
        "qctl --help": f"{QCTL} --help",
        "qctl stats (redis)": f"{QCTL} stats -u {urls['QCTL_TEST_REDIS_URL']} bench-startup",
        "redis-cli LLEN (peer)": f"redis-cli -u {urls['QCTL_TEST_REDIS_URL']} LLEN bench-startup",
        "qctl stats (rabbitmq)": f"{QCTL} stats -u {urls['QCTL_TEST_AMQP_URL']} bench-startup",
        "qctl stats (kafka)": f"{QCTL} stats -u {urls['QCTL_TEST_KAFKA_URL']} bench-startup",
    }, args.runs)
    write_results(timings, startups, args)
    print(RESULTS.read_text())
    return 0


def write_results(timings: dict[str, float], startups: dict[str, float], args: argparse.Namespace) -> None:
    command = "python bench/core.py" + (" --restart-brokers" if args.restart_brokers else "") + \
        f" --runs {args.runs}"
    lines = [
        "# qctl start-up and one `stats` per broker",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on this project's machine (2 cores), with",
        f"`{command}`: whole-process wall time, median of {args.runs} runs after 2 warm-up runs (hyperfine).",
        "",
        "| command | median |",
        "| --- | --- |",
        *[f"| {name} | {seconds * 1000:.0f} ms |" for name, seconds in timings.items()],
    ]
    if startups:
        lines += ["", "Broker start-up in the harness (`tools/brokers down X && tools/brokers up X`, data kept,",
                  "until the broker really serves):", "", "| broker | start-up |", "| --- | --- |",
                  *[f"| {name} | {seconds:.1f} s |" for name, seconds in startups.items()]]
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
