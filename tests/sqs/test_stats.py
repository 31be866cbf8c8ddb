"""stats on ElasticMQ: the SQS counts, the dead-letter links both ways, FIFO type, purge counts."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from qctl.adapters.sqs.client import POOL, Connection
from qctl.adapters.sqs.stats import ATTRIBUTES, dead_letter_links, redrive_policy
from qctl.options import ConnectOptions
from qctl.testing.driver import plain
from qctl.urls import parse as parse_url
from tests.conftest import QctlRunner
from tests.sqs.driver import SQSDriver
from tests.sqs.probe import probed


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


STATS_ATTRIBUTES = sorted(ATTRIBUTES)


def many_queues(sqs: SQSDriver, count: int) -> tuple[str, list[str]]:
    """``count`` fresh queues sharing a unique prefix (their glob is ``PREFIX*``)."""
    prefix = sqs.unique("fan") + "-"
    queues = [f"{prefix}{i:03d}" for i in range(count)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(sqs.create, queues))
    return prefix, queues


@pytest.mark.parametrize("direct", [True, False], ids=["wire", "botocore"])
def test_stats_asks_each_queue_once_and_many_at_a_time(sqs: SQSDriver, qctl: QctlRunner, tmp_path: Path,
                                                       direct: bool) -> None:
    """One GetQueueAttributes per queue, asking only the four attributes a row shows, several in flight at
    once (counted in a real process, each request held 20 ms so that requests that can overlap do), on the
    direct path and on botocore's."""
    prefix, queues = many_queues(sqs, 40)
    try:
        probe = probed(tmp_path / "probe", delay=0.02, wire=direct)
        run = qctl("stats", "-u", sqs.url, f"{prefix}*", "-o", "json", env=probe.env)
        assert run.rc == 0 and [row["queue"] for row in run.json()] == queues, run
        seen = probe.result()
        urls = {sqs.queue_url(name): name for name in queues}
        asked = {urls[url]: lists for url, lists in seen["attributes"].items() if url in urls}
        assert asked == {name: [STATS_ATTRIBUTES] for name in queues}  # each once, the four only
        assert seen["peak"]["get_queue_attributes"] >= 4, seen["peak"]  # not one after another
        assert seen["peak"]["get_queue_attributes"] <= POOL  # the pool bounds it
        assert (seen["wire"] > 0) is direct, seen
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(sqs.delete, queues))


def test_dead_letter_sources_from_the_listing_or_asked_per_row_agree(sqs: SQSDriver, names: Any) -> None:
    """The two ways to dead_letter_sources (the account's listing with every queue's RedrivePolicy, or one
    ListDeadLetterSourceQueues per row) give the same answer; the listing way asks no
    ListDeadLetterSourceQueues and one GetQueueAttributes (RedrivePolicy only) per queue outside the rows."""
    dlq, other_dlq, source, outside = names("links-dlq"), names("links-dlq2"), names("links-src"), names("links-out")
    sqs.create(dlq)
    sqs.create(other_dlq)
    sqs.create(source, dlq=dlq, max_receive_count=3)
    sqs.create(outside, dlq=dlq, max_receive_count=3)  # a source that is not a row
    conn = Connection(ConnectOptions(url=parse_url(sqs.url), timeout=30))
    try:
        rows = {name: sqs.queue_url(name) for name in (dlq, other_dlq, source)}
        policies = {name: redrive_policy(sqs.attributes(name)) for name in rows}
        expected = {dlq: [outside, source], other_dlq: [], source: []}
        calls: Counter[str] = Counter()
        asked: list[list[str]] = []
        call = conn.call

        def counted(operation: str, what: str, **params: Any) -> Any:
            calls[operation] += 1
            if operation == "get_queue_attributes":
                asked.append(list(params["AttributeNames"]))
            return call(operation, what, **params)

        conn.call = counted  # type: ignore[method-assign]
        per_row = dead_letter_links(conn, rows, policies, {})  # a listing without the rows: each is asked
        assert {name: sorted(found) for name, found in per_row.items()} == expected
        assert calls == {"list_dead_letter_source_queues": 3}
        calls.clear()
        listing = {**rows, outside: sqs.queue_url(outside)}
        from_listing = dead_letter_links(conn, rows, policies, listing)
        assert {name: sorted(found) for name, found in from_listing.items()} == expected
        assert calls == {"get_queue_attributes": 1} and asked == [["RedrivePolicy"]]
    finally:
        conn.close()
