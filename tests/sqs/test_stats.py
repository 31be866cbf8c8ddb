"""stats on ElasticMQ: the SQS counts, the dead-letter links both ways, FIFO type, purge counts."""

from __future__ import annotations

from typing import Any

from qctl.testing.driver import plain
from tests.conftest import QctlRunner
from tests.sqs.driver import SQSDriver


def test_rows_carry_the_counts_and_the_dead_letter_links(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    source, dlq = names("links"), names("links-dlq")
    sqs.create(dlq)
    url = sqs.create(source, dlq=dlq, max_receive_count=4)
    sqs.send(source, plain([b"a", b"b", b"c"]))
    sqs.send(dlq, plain([b"x"]))
    sqs.client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=600)  # one in flight
    sqs.client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)  # one delayed
    expected_source = {"queue": source, "type": "standard", "depth": 2, "in_flight": 1, "delayed": 1,
                       "dead_letter_queue": dlq, "dead_letter_depth": 1, "max_receive_count": 4,
                       "dead_letter_sources": [], "oldest_age": None, "consumers": None, "lag": None}
    expected_dlq = {"queue": dlq, "depth": 1, "in_flight": 0, "delayed": 0, "dead_letter_queue": None,
                    "dead_letter_depth": None, "max_receive_count": None, "dead_letter_sources": [source]}
    for args in ([source, dlq], [source.rsplit("-", 1)[0] + "-*"], []):  # named, a glob, everything
        rows = {row["queue"]: row for row in q("stats", "-o", "json", *args).json()}
        assert {k: rows[source][k] for k in expected_source} == expected_source, args
        assert {k: rows[dlq][k] for k in expected_dlq} == expected_dlq, args
    # A source named alone still shows its DLQ's depth (asked for it).
    alone = q("stats", "-o", "json", source).json()
    assert len(alone) == 1 and alone[0]["dead_letter_depth"] == 1


def test_fifo_queues_say_so(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    name = names("kind", fifo=True)
    sqs.create(name)
    row = q("stats", name, "-o", "json").json()[0]
    assert (row["queue"], row["type"], row["depth"]) == (name, "fifo", 0)


def test_purge_counts_in_flight_and_delayed_messages_too(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    name = names("purge")
    url = sqs.create(name)
    sqs.send(name, plain([b"1", b"2", b"3"]))
    sqs.client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=600)
    sqs.client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    run = q("purge", name, "--yes", "-o", "json")
    assert run.rc == 0 and run.json() == {"queue": name, "purged": 4, "backup": None}, run
    assert "in flight" in run.err
    assert sqs.counts(name) == (0, 0) and sqs.attributes(name)["ApproximateNumberOfMessagesDelayed"] == "0"
