"""RabbitMQ work, counted: management-API requests and passive declares per ``stats``.

Timed against rabbitmqadmin by bench/rabbitmq.py (goal: <= 0.5x over 5,000 queues); held still here: a
queue named outright costs one request (four in flight for several) and its dead-letter candidates are
asked of the API four at a time instead of one failing passive declare each (each closed the channel);
many names cost one listing, not a request each.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from qctl.adapters.rabbitmq import connection, management
from qctl.adapters.rabbitmq.adapter import RabbitMQAdapter
from qctl.options import ConnectOptions
from qctl.urls import parse


@pytest.fixture()
def prefix(amqp_url: str) -> Iterator[str]:
    name = f"perf-rq-{uuid.uuid4().hex[:8]}"
    made: list[str] = []

    def declare(queue: str, messages: int = 0) -> None:
        channel.queue_declare(queue, durable=True)
        made.append(queue)
        for _ in range(messages):
            channel.basic_publish("", queue, b"x")

    connection_ = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection_.channel()
    declare(name)
    declare(name + "-dead", messages=3)  # the 12th naming convention: candidates 9-12 are one batch
    for i in range(20):
        declare(f"{name}-{i}", messages=1)
    yield name
    for queue in made:
        channel.queue_delete(queue)
    connection_.close()


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    get, passive = management.Management.get, connection.Session.passive

    def counting_get(self: Any, path: str, params: Any = None) -> Any:
        calls["http"] += 1
        if params and params.get("use_regex"):
            calls["statistics"] += 1  # the statistics of a short selection's queues, filtered by name
        return get(self, path, params)

    def counting_passive(self: Any, queue: str) -> Any:
        calls["passive"] += 1
        return passive(self, queue)

    monkeypatch.setattr(management.Management, "get", counting_get)
    monkeypatch.setattr(connection.Session, "passive", counting_passive)
    return calls


def _stats(amqp_url: str, management_url: str, patterns: list[str]) -> list[Any]:
    adapter = RabbitMQAdapter(ConnectOptions(url=parse(amqp_url), management_url=management_url))
    try:
        return adapter.stats(patterns)
    finally:
        adapter.close()


def test_a_named_queue_asks_its_dead_letter_candidates_of_the_api(amqp_url: str, management_url: str, prefix: str,
                                                                  counted: Counter[str]) -> None:
    [row] = _stats(amqp_url, management_url, [prefix])
    assert (row.dead_letter_queue, row.dead_letter_depth) == (prefix + "-dead", 3)
    # the queue, the policies and operator policies, and 12 candidates in 3 batches of 4; passive declares:
    # its exact count and its DLQ's depth (before: 3 requests and 14 passive declares, 11 of them failing)
    assert counted["http"] <= 1 + 2 + 12, counted
    assert counted["passive"] == 2, counted


def test_many_named_queues_cost_one_listing(amqp_url: str, management_url: str, prefix: str,
                                            counted: Counter[str]) -> None:
    names = [f"{prefix}-{i}" for i in range(20)]
    rows = _stats(amqp_url, management_url, names)
    assert {row.queue for row in rows} == set(names)
    assert {row.depth for row in rows} == {1}
    # the listing, consumers, whoami, policies, operator policies, and one page of the 20 queues' statistics
    # (oldest_age, the counters of --watch rates): not one request per name (before: 22 requests and 380
    # passive declares, 18 dead-letter candidates probed for each name)
    assert counted["http"] <= 6 and counted["statistics"] == 1, counted
    assert counted["passive"] == len(names), counted  # exact counts for queues named outright


def test_a_long_selection_asks_no_statistics(amqp_url: str, management_url: str, prefix: str,
                                             counted: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from qctl.adapters.rabbitmq import stats

    monkeypatch.setattr(stats, "EXACT_LIMIT", 10)  # the 22 queues of the prefix are a long selection now
    rows = _stats(amqp_url, management_url, [prefix + "*"])
    assert len(rows) == 22 and all(row.oldest_age is None and row.total_in is None for row in rows)
    assert counted["http"] <= 5 and counted["statistics"] == 0, counted
