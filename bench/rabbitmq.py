"""RabbitMQ benchmark: whole-process timings, qctl side by side with the broker's own tools.

1. ``qctl stats`` over 5,000 queues vs ``rabbitmqadmin list queues`` (served by
   the management plugin at /cli/rabbitmqadmin) vs ``rabbitmqctl list_queues``;
   median of RUNS runs each, interleaved.  Goal: qctl <= 0.7x rabbitmqadmin.
2. ``qctl redrive`` of 100,000 persistent messages: messages per second.
   Goal: >= 10,000 msg/s.

Run from the repository root, with the harness's node up
(``python3 tools/brokers up rabbitmq``):  ``.venv/bin/python bench/rabbitmq.py``
It writes bench/results/rabbitmq.md and deletes every queue it made.
"""

from __future__ import annotations

import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pika

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from harness import rabbitmq as harness  # noqa: E402

QUEUES = 5000
MESSAGES = 100_000
RUNS = 5
PREFIX = "bench-q-"
AMQP = harness.ENV["QCTL_TEST_AMQP_URL"]
API = harness.MANAGEMENT_URL


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


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - started


def stats_commands() -> dict[str, tuple[list[str], dict[str, str] | None]]:
    qctl = [str(REPO / ".venv/bin/qctl"), "stats", "-u", AMQP, "--management-url", API, "-o", "json"]
    admin = [sys.executable, str(harness.rabbitmqadmin_path()), "-H", harness.HOST, "-P",
             str(harness.MANAGEMENT_PORT), "-u", "qctl", "-p", "qctl-secret", "list", "queues"]
    ctl = [str(harness.RABBITMQCTL), "-n", harness.NODE, "list_queues", "name", "messages_ready",
           "messages_unacknowledged", "consumers"]
    return {"qctl stats": (qctl, None), "rabbitmqadmin list queues": (admin, None),
            "rabbitmqctl list_queues": (ctl, harness.cli_env())}


def bench_stats() -> dict[str, float]:
    commands = stats_commands()
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for command, env in commands.values():
        timed(command, env)  # warm-up (page cache, rabbitmqadmin download)
    for _ in range(RUNS):
        for name, (command, env) in commands.items():
            samples[name].append(timed(command, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_redrive() -> tuple[float, int]:
    source, dlq = PREFIX + "redrive", PREFIX + "redrive.dlq"
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
    command = [str(REPO / ".venv/bin/qctl"), "redrive", dlq, "-u", AMQP, "--management-url", API, "-q", "-o",
               "json"]
    seconds = timed(command)
    ch = channel()
    moved = ch.queue_declare(source, passive=True).method.message_count
    ch.connection.close()
    delete_queues([source, dlq])
    return seconds, moved


def report(stats: dict[str, float], redrive_seconds: float, moved: int) -> str:
    admin = stats["rabbitmqadmin list queues"]
    rate = MESSAGES / redrive_seconds
    lines = [
        "# RabbitMQ benchmark", "",
        f"Date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"RabbitMQ {harness_version()} (private node from tools/harness), {os.cpu_count()} CPUs.",
        "Command: `.venv/bin/python bench/rabbitmq.py` (from the repository root).", "",
        f"## stats over {QUEUES:,} queues (whole process, median of {RUNS} runs)", "",
        "| command | seconds | vs rabbitmqadmin | columns |", "| --- | --- | --- | --- |",
    ]
    columns = {"qctl stats": "9 (type, depth, in-flight, consumers, DLQ + its depth...)",
               "rabbitmqadmin list queues": "6 (vhost, name, type... default set)",
               "rabbitmqctl list_queues": "4 (asked: name, ready, unacked, consumers)"}
    for name, seconds in stats.items():
        lines.append(f"| `{name}` | {seconds:.3f} | {seconds / admin:.2f}x | {columns[name]} |")
    ratio = stats["qctl stats"] / admin
    lines += ["", f"Goal <= 0.70x rabbitmqadmin: **{'met' if ratio <= 0.7 else 'NOT met'}** ({ratio:.2f}x).", "",
              f"## redrive of {MESSAGES:,} persistent messages (whole process)", "",
              f"{redrive_seconds:.2f} s, **{rate:,.0f} msg/s** ({moved:,} in the target afterwards); "
              f"goal >= 10,000 msg/s: **{'met' if rate >= 10_000 else 'NOT met'}**.", ""]
    return "\n".join(lines)


def harness_version() -> str:
    try:
        status, overview = harness.api("GET", "/api/overview")
        return str(overview.get("rabbitmq_version")) if status == 200 else "?"
    except OSError:
        return "?"


def main() -> None:
    make_queues()
    try:
        stats = bench_stats()
    finally:
        delete_queues([f"{PREFIX}{i}" for i in range(QUEUES)])
    seconds, moved = bench_redrive()
    text = report(stats, seconds, moved)
    (REPO / "bench" / "results" / "rabbitmq.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
