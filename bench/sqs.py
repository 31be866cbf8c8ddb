#!/usr/bin/env python3
"""SQS benchmark on the harness's ElasticMQ: whole-process timings, qctl beside its peer in the same run.

    .venv/bin/python bench/sqs.py [--runs 3] [--messages 50000] [--queues 1000] [--out bench/results/sqs.md]

(``QCTL_BENCH_SQS_URL=sqs+http://HOST:PORT`` for another server than the harness's.)

1. Redrive of MESSAGES messages, fresh queues each run, interleaved:
   * qctl's client-side mover, ``qctl redrive DLQ --to TARGET`` (receive 10 at a time, SendMessageBatch,
     DeleteMessageBatch of what was confirmed);
   * ElasticMQ's own StartMessageMoveTask on the same data, started and polled to COMPLETED by a botocore
     script (the whole process, and the task alone from start to COMPLETED);
   * qctl's own use of that task (``qctl redrive DLQ`` to the DLQ's one source);
   * the aws CLI doing the same: ``aws sqs start-message-move-task``, then ``aws sqs
     list-message-move-tasks`` in a shell loop until COMPLETED.
   And the task at 500 messages/s (AWS's highest MaxNumberOfMessagesPerSecond) on a tenth of the data.
   Goal: the client-side mover at >= 0.5x the move task's rate.
2. ``qctl stats`` over QUEUES queues (every queue of the broker, and the glob ``bench-sqs-q-*``) against a
   botocore script doing what a loop of ``aws sqs get-queue-attributes`` does, in one process, and the aws CLI
   itself for one queue (a shell loop over QUEUES queues costs QUEUES of those).  Goal: <= 2 s.
3. ``qctl peek -n 10`` against ``aws sqs receive-message --visibility-timeout 0 --max-number-of-messages 10``.

The aws CLI is awscli 1.x in a scratch venv (.brokers/awscli-venv, made by hand: ``python3 -m venv
.brokers/awscli-venv && .brokers/awscli-venv/bin/pip install awscli``); without it those rows are left out.
Load averages are recorded at the start and the end: the machine is shared and the numbers move with it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config

REPO = Path(__file__).resolve().parents[1]
QCTL = str(REPO / ".venv" / "bin" / "qctl")
PYTHON = str(REPO / ".venv" / "bin" / "python")
AWS = REPO / ".brokers" / "awscli-venv" / "bin" / "aws"
sys.path.insert(0, str(REPO / "tools"))
from harness import sqs as harness  # noqa: E402

from qctl.adapters.sqs.client import POOL  # noqa: E402

# The harness's server unless QCTL_BENCH_SQS_URL names another (e.g. a private ElasticMQ from the same jars,
# so that tests restarting the shared one cannot cut a run short).
URL = os.environ.get("QCTL_BENCH_SQS_URL", harness.ENV["QCTL_TEST_SQS_URL"])
ENDPOINT = URL.replace("sqs+http://", "http://", 1)
AWS_FLAGS = f"--no-sign-request --endpoint-url {ENDPOINT} --region us-east-1"
PREFIX = "bench-sqs-"

MOVE_TASK = f"""
import sys, time, botocore.session
from botocore import UNSIGNED
from botocore.config import Config
c = botocore.session.get_session().create_client("sqs", region_name="us-east-1", endpoint_url="{ENDPOINT}",
                                                  config=Config(signature_version=UNSIGNED))
source, target, rate = sys.argv[1], sys.argv[2], sys.argv[3]
arn = lambda name: c.get_queue_attributes(QueueUrl=c.get_queue_url(QueueName=name)["QueueUrl"],
                                          AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
src, dst = arn(source), arn(target)
started = time.perf_counter()
extra = {{"MaxNumberOfMessagesPerSecond": int(rate)}} if rate != "-" else {{}}
c.start_message_move_task(SourceArn=src, DestinationArn=dst, **extra)
while c.list_message_move_tasks(SourceArn=src, MaxResults=1)["Results"][0]["Status"] == "RUNNING":
    time.sleep(0.02)
print(time.perf_counter() - started)
"""

STATS_PEER = f"""
import json, sys, botocore.session
from botocore import UNSIGNED
from botocore.config import Config
c = botocore.session.get_session().create_client("sqs", region_name="us-east-1", endpoint_url="{ENDPOINT}",
                                                  config=Config(signature_version=UNSIGNED))
urls = c.list_queues(QueueNamePrefix=sys.argv[1], MaxResults=1000).get("QueueUrls", [])
for url in urls:
    print(json.dumps(c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]))
"""

AWS_MOVE = (f"{AWS} sqs start-message-move-task --source-arn {{src}} --destination-arn {{dst}} {AWS_FLAGS} "
            f"> /dev/null; while [ \"$({AWS} sqs list-message-move-tasks --source-arn {{src}} --max-results 1 "
            f"--query 'Results[0].Status' --output text {AWS_FLAGS})\" = RUNNING ]; do :; done")


def client() -> Any:
    return botocore.session.get_session().create_client(
        "sqs", region_name="us-east-1", endpoint_url=ENDPOINT,
        config=Config(signature_version=UNSIGNED, max_pool_connections=24, read_timeout=120,
                      retries={"total_max_attempts": 5}))


SQS = client()


def url_of(name: str) -> str:
    return str(SQS.get_queue_url(QueueName=name)["QueueUrl"])


def arn_of(name: str) -> str:
    return str(SQS.get_queue_attributes(QueueUrl=url_of(name), AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def depth(name: str) -> tuple[int, int]:
    got = SQS.get_queue_attributes(QueueUrl=url_of(name), AttributeNames=["All"])["Attributes"]
    return int(got["ApproximateNumberOfMessages"]), int(got["ApproximateNumberOfMessagesNotVisible"])


def pair(label: str, *, policy: bool = False) -> tuple[str, str]:
    """(dlq, source) freshly made; with ``policy`` the source's RedrivePolicy names the DLQ (its one source)."""
    tag = uuid.uuid4().hex[:8]
    dlq, source = f"{PREFIX}{label}-{tag}-dlq", f"{PREFIX}{label}-{tag}"
    SQS.create_queue(QueueName=dlq)
    attributes = {"RedrivePolicy": json.dumps({"deadLetterTargetArn": arn_of(dlq), "maxReceiveCount": "5"})}
    SQS.create_queue(QueueName=source, Attributes=attributes if policy else {})
    return dlq, source


def seed(name: str, count: int) -> None:
    """Exactly ``count`` messages: a batch that a loaded ElasticMQ answered 503 after storing it is sent again
    by botocore's retry, so a seeding that comes out over the count is purged and done again."""
    url = url_of(name)
    body = "x" * 180  # with its number, a 190-byte body

    def one(start: int) -> None:
        entries = [{"Id": str(i), "MessageBody": f"{start + i:08d}{body}"} for i in range(min(10, count - start))]
        assert not SQS.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")

    for _ in range(3):
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(one, range(0, count, 10)))
        if depth(name) == (count, 0):
            return
        SQS.purge_queue(QueueUrl=url)
    raise SystemExit(f"could not seed exactly {count} messages into {name}: {depth(name)}")


def drop(*names: str) -> None:
    for name in names:
        try:
            SQS.delete_queue(QueueUrl=url_of(name))
        except SQS.exceptions.QueueDoesNotExist:
            pass


def server_pid() -> int | None:
    """The ElasticMQ JVM's pid, to read its CPU time: QCTL_BENCH_SQS_PID for a private server, else the
    harness's own."""
    if os.environ.get("QCTL_BENCH_SQS_PID"):
        return int(os.environ["QCTL_BENCH_SQS_PID"])
    return harness.running_pid() if harness.ENV["QCTL_TEST_SQS_URL"] == URL else None


SERVER_PID = server_pid()
CPU_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu() -> float:
    """CPU seconds the server has used (user + system), 0 when its pid is unknown."""
    if SERVER_PID is None:
        return 0.0
    fields = Path(f"/proc/{SERVER_PID}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CPU_TICK


# (label -> [(qctl's CPU seconds, the server's CPU seconds)]) of every timed run, for the report.
CPU: dict[str, list[tuple[float, float]]] = {}


def timed(argv: list[str], *, shell: bool = False, label: str | None = None) -> tuple[float, str]:
    before, server = resource.getrusage(resource.RUSAGE_CHILDREN), server_cpu()
    started = time.perf_counter()
    proc = subprocess.run(["/bin/sh", "-c", argv[0]] if shell else argv, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {argv}\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if label:
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        CPU.setdefault(label, []).append((cpu, server_cpu() - server))
    return elapsed, proc.stdout


def cpu_of(label: str) -> tuple[float, float]:
    """Median (client, server) CPU seconds of the runs recorded under ``label``."""
    runs = CPU.get(label) or [(0.0, 0.0)]
    return statistics.median(c for c, _ in runs), statistics.median(s for _, s in runs)


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def bench_redrive(runs: int, messages: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"client": [], "task": [], "task_alone": [], "qctl_task": [], "aws_task": []}
    commands: dict[str, str] = {}
    duplicates: list[int] = []

    def moved_to(source: str, dlq: str) -> None:
        """Every message in the target, none left; more than every one only where a send was retried (a loaded
        ElasticMQ may answer 503 after storing a batch), which is counted."""
        deadline = time.monotonic() + 30  # the task hands messages to the target's actor asynchronously
        while depth(source)[0] < messages and time.monotonic() < deadline:
            time.sleep(0.1)
        assert depth(source)[0] >= messages and depth(dlq) == (0, 0), (depth(source), depth(dlq))
        duplicates.append(depth(source)[0] - messages)

    cases: dict[str, Callable[[], None]] = {}

    def client_side() -> None:
        dlq, target = pair("client")
        seed(dlq, messages)
        argv = [QCTL, "redrive", "-u", URL, dlq, "--to", target, "-q", "-o", "json"]
        seconds, out = timed(argv, label="client")
        assert json.loads(out)["moved"] == messages, out
        moved_to(target, dlq)
        times["client"].append(seconds)
        commands["client"] = shlex.join(["qctl", *argv[1:]]).replace(dlq, "DLQ").replace(target, "TARGET")
        drop(dlq, target)

    def server_task() -> None:
        dlq, target = pair("task")
        seed(dlq, messages)
        argv = [PYTHON, "-c", MOVE_TASK, dlq, target, "-"]
        seconds, out = timed(argv, label="task")
        moved_to(target, dlq)
        times["task"].append(seconds)
        times["task_alone"].append(float(out.strip()))
        drop(dlq, target)

    def qctl_task() -> None:
        dlq, source = pair("qtask", policy=True)
        seed(dlq, messages)
        argv = [QCTL, "redrive", "-u", URL, dlq, "-q", "-o", "json"]
        seconds, out = timed(argv)
        assert json.loads(out)["moved"] == messages, out
        moved_to(source, dlq)
        times["qctl_task"].append(seconds)
        commands["qctl_task"] = shlex.join(["qctl", *argv[1:]]).replace(dlq, "DLQ")
        drop(dlq, source)

    def aws_task() -> None:
        dlq, target = pair("awstask")
        seed(dlq, messages)
        seconds, _ = timed([AWS_MOVE.format(src=arn_of(dlq), dst=arn_of(target))], shell=True)
        moved_to(target, dlq)
        times["aws_task"].append(seconds)
        drop(dlq, target)

    cases.update(client=client_side, task=server_task, qctl_task=qctl_task)
    if AWS.exists():
        cases["aws_task"] = aws_task
    for _ in range(runs):
        for case in cases.values():
            case()
    slow = max(1000, messages // 10)
    dlq, target = pair("rate500")
    seed(dlq, slow)
    seconds, out = timed([PYTHON, "-c", MOVE_TASK, dlq, target, "500"])
    moved_to_slow = depth(target)
    drop(dlq, target)
    return {"times": {k: summary(v) for k, v in times.items() if v}, "commands": commands,
            "duplicates": sum(duplicates),
            "rate500": {"messages": slow, "seconds": float(out.strip()), "whole": seconds, "moved": moved_to_slow}}


def bench_stats(runs: int, queues: int) -> dict[str, Any]:
    names = [f"{PREFIX}q-{i:05d}" for i in range(queues)]
    with ThreadPoolExecutor(16) as pool:
        urls = list(pool.map(lambda name: SQS.create_queue(QueueName=name)["QueueUrl"], names))
        list(pool.map(lambda url: SQS.send_message(QueueUrl=url, MessageBody="x"), urls))
    everything = [QCTL, "stats", "-u", URL, "-o", "json"]
    globbed = [QCTL, "stats", "-u", URL, "-o", "json", f"{PREFIX}q-*"]
    peer = [PYTHON, "-c", STATS_PEER, f"{PREFIX}q-"]
    rows = len(json.loads(timed(everything)[1]))
    assert len(json.loads(timed(globbed)[1])) == queues
    assert len(timed(peer)[1].splitlines()) == queues
    results: dict[str, list[float]] = {"all": [], "glob": [], "peer": [], "aws_one": []}
    aws_one = f"{AWS} sqs get-queue-attributes --queue-url {urls[0]} --attribute-names All {AWS_FLAGS} > /dev/null"
    for _ in range(runs):
        results["all"].append(timed(everything, label="stats_all")[0])
        results["glob"].append(timed(globbed, label="stats_glob")[0])
        results["peer"].append(timed(peer, label="stats_peer")[0])
        if AWS.exists():
            results["aws_one"].append(timed([aws_one], shell=True)[0])
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda url: SQS.delete_queue(QueueUrl=url), urls))
    return {"times": {k: summary(v) for k, v in results.items() if v}, "rows": rows,
            "commands": {"all": "qctl stats -u URL -o json", "glob": f"qctl stats -u URL -o json '{PREFIX}q-*'",
                         "peer": "python -c (ListQueues, then GetQueueAttributes All for each queue in turn)",
                         "aws_one": "aws sqs get-queue-attributes --queue-url URL --attribute-names All"}}


def bench_peek(runs: int) -> dict[str, Any]:
    name = f"{PREFIX}peek-{uuid.uuid4().hex[:8]}"
    SQS.create_queue(QueueName=name)
    seed(name, 100)
    qctl = [QCTL, "peek", "-u", URL, name, "-n", "10", "-o", "json", "-q"]
    aws = (f"{AWS} sqs receive-message --queue-url {url_of(name)} --visibility-timeout 0 --max-number-of-messages 10 "
           f"--attribute-names All --message-attribute-names All {AWS_FLAGS} > /dev/null")
    results: dict[str, list[float]] = {"qctl": [], "aws": []}
    for _ in range(runs):
        results["qctl"].append(timed(qctl)[0])
        if AWS.exists():
            results["aws"].append(timed([aws], shell=True)[0])
    drop(name)
    return {"times": {k: summary(v) for k, v in results.items() if v}}


def row(label: str, command: str, stats: dict[str, float], extra: str = "") -> str:
    return (f"| {label} | `{command}` | **{stats['median']:.2f} s** | {stats['min']:.2f} / {stats['median']:.2f} / "
            f"{stats['max']:.2f} |{extra}")


def report(args: argparse.Namespace, started: str, load_start: str, redrive: dict[str, Any],
           stats: dict[str, Any], peek: dict[str, Any]) -> str:
    n, t, s, p = args.messages, redrive["times"], stats["times"], peek["times"]
    rate = {key: n / value["median"] for key, value in t.items()}
    alone = n / t["task_alone"]["median"]
    ratio_whole, ratio_alone = rate["client"] / rate["task"], rate["client"] / alone
    r500 = redrive["rate500"]
    commands = redrive["commands"]
    redrive_rows = [
        row("qctl, client-side mover", commands["client"], t["client"], f" **{rate['client']:,.0f}** |"),
        row("ElasticMQ's StartMessageMoveTask (botocore script: start, poll to COMPLETED)",
            "python -c MOVE_TASK DLQ TARGET", t["task"], f" {rate['task']:,.0f} (the task alone: {alone:,.0f}) |"),
        row("qctl, starting that task itself", commands["qctl_task"], t["qctl_task"], f" {rate['qctl_task']:,.0f} |"),
    ]
    if "aws_task" in t:
        redrive_rows.append(row("aws CLI: start-message-move-task, then list-message-move-tasks until COMPLETED",
                                "aws sqs start-message-move-task ...; while [ $(aws sqs list-message-move-tasks "
                                "...) = RUNNING ]; do :; done", t["aws_task"], f" {rate['aws_task']:,.0f} |"))
    c = stats["commands"]
    stats_rows = [
        row("qctl, every queue of the broker", c["all"], s["all"],
            f" {stats['rows']:,} rows: one ListQueues page, then GetQueueAttributes per queue, {POOL} at a time |"),
        row("qctl, a glob", c["glob"], s["glob"], f" {args.queues:,} rows: the same requests, and one more ListQueues "
                                                  f"for the dead-letter sources |"),
        row("botocore script (what a loop of aws sqs get-queue-attributes asks, in one process)", c["peer"],
            s["peer"], " one request after another |"),
    ]
    if "aws_one" in s:
        loop = s["aws_one"]["median"] * args.queues
        stats_rows.append(row("aws CLI, one queue", c["aws_one"], s["aws_one"],
                              f" a shell loop over {args.queues:,} queues: ~{loop:,.0f} s |"))
    peek_rows = [row("qctl", "qctl peek -u URL QUEUE -n 10 -o json -q", p["qctl"], "")]
    if "aws" in p:
        peek_rows.append(row("aws CLI", "aws sqs receive-message --visibility-timeout 0 --max-number-of-messages 10 "
                             "--attribute-names All --message-attribute-names All", p["aws"], ""))
    client_cpu, client_server = cpu_of("client")
    task_cpu, task_server = cpu_of("task")
    per10 = {"qctl": 10_000 * client_cpu / n, "server": 10_000 * client_server / n}
    ceiling = (os.cpu_count() or 1) * n / (client_cpu + client_server) if client_cpu + client_server else 0
    stats_cpu = {key: cpu_of(f"stats_{key}") for key in ("all", "glob", "peer")}
    cpu_line = "; ".join(f"{label}: {stats_cpu[key][0]:.2f} s of qctl's (or the script's) CPU and "
                         f"{stats_cpu[key][1]:.2f} s of ElasticMQ's" for key, label in
                         (("all", "every queue"), ("glob", "the glob"), ("peer", "the botocore script")))
    unread = "" if SERVER_PID else "; ElasticMQ's CPU was not readable: give QCTL_BENCH_SQS_PID"
    stats_goal = "met" if s["all"]["median"] <= 2 and s["glob"]["median"] <= 2 else "not met"
    rate_goal = "met" if ratio_whole >= 0.5 else "not met"
    nl = "\n"
    server = ("the harness's" if harness.ENV["QCTL_TEST_SQS_URL"] == URL else
              f"a private server from the harness's jars and JVM flags at {URL}, so that tests restarting the shared "
              f"one cannot cut a run short")
    return f"""# SQS benchmark

Produced by `{shlex.join([".venv/bin/python", "bench/sqs.py", *sys.argv[1:]])}` on {started}, {os.cpu_count()}
CPUs shared with other work (load average {load_start} at the start, {load()} at the end), Python
{platform.python_version()}, botocore {botocore.__version__}, ElasticMQ 1.7.1 from tools/harness (in-memory, C1 JIT
only, serial GC, 256 MiB heap) on the same host ({server}).  Whole-process wall times; min / median / max of
{args.runs} runs (peek and stats: {max(5, args.runs)}), the tools interleaved in each run, fresh queues every run.

## redrive of {n:,} messages (190-byte bodies)

| tool | command | median | min / median / max | messages/s (median) |
| --- | --- | --- | --- | --- |
{nl.join(redrive_rows)}

Messages found twice in a target over all runs (a send retried after the server stored it): {redrive["duplicates"]}.

The move task at MaxNumberOfMessagesPerSecond 500 (AWS's highest settable rate): {r500["messages"]:,} messages in
{r500["seconds"]:.2f} s, {r500["messages"] / r500["seconds"]:,.0f} messages/s.

Goal: the client-side mover at >= 0.5x the move task's rate: **{rate_goal}** ({ratio_whole:.2f}x the task's
whole-process rate, {ratio_alone:.3f}x the task alone).  CPU per run (medians{unread}): the client-side mover
used {client_cpu:.2f} s of qctl's CPU and {client_server:.2f} s of ElasticMQ's for {n:,} messages, i.e.
{per10["qctl"]:.2f} ms and {per10["server"]:.2f} ms per ten messages (three HTTP requests: ReceiveMessage,
SendMessageBatch, DeleteMessageBatch); the move task used {task_server:.2f} s of ElasticMQ's CPU for the same
messages (one actor message per message, no HTTP) and its botocore script {task_cpu:.2f} s.  At that CPU per
message, both CPUs of an otherwise idle machine would move at most ~{ceiling:,.0f} messages/s this way, most of
the CPU being ElasticMQ's serving the requests; 0.5x the task is {rate['task'] / 2:,.0f}.  Against AWS the
comparison is different: a task given a rate moves at most 500 messages/s, which the client-side mover passes
here.  qctl uses the task whenever it can (a whole standard DLQ to its one source), so the mover only runs where
the task cannot: --to, --limit, --where, --max-redrives, FIFO.

## stats over {args.queues:,} queues (one message each; goal <= 2 s)

| tool | command | median | min / median / max | |
| --- | --- | --- | --- | --- |
{nl.join(stats_rows)}

Goal <= 2 s: **{stats_goal}**.  CPU per run (medians): {cpu_line}.  The dead-letter sources come from the
RedrivePolicies the rows already hold: a glob lists the whole account once more and asks only the queues it left
out (fewer here than one ListDeadLetterSourceQueues per row).  On a plain-HTTP endpoint like this one qctl speaks
SQS's JSON protocol itself for these requests (about a third of botocore's CPU per request); over HTTPS (AWS) they
go through botocore, and the {POOL} requests in flight are what hide the round trips.

## peek -n 10 (a queue of 100)

| tool | command | median | min / median / max |
| --- | --- | --- | --- |
{nl.join(peek_rows)}

qctl asks the queue's depth first (GetQueueAttributes, so a peek stops once it has seen every message) and then
one ReceiveMessage; both tools start a Python process and botocore.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sqs.md")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = load()
    peek = bench_peek(max(5, args.runs))
    stats = bench_stats(max(5, args.runs), args.queues)
    redrive = bench_redrive(args.runs, args.messages)
    text = report(args, started, load_start, redrive, stats, peek)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
