"""SQS fixtures: the driver on the harness's ElasticMQ, fresh queue names deleted afterwards, and qctl on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import QctlRunner, Run, brokers_up
from tests.sqs.driver import SQSDriver


@pytest.fixture(scope="session")
def sqs() -> SQSDriver:
    return SQSDriver(brokers_up("sqs"))


@pytest.fixture()
def names(sqs: SQSDriver) -> Iterator[Any]:
    """Fresh queue names (``names("orders", fifo=True)``), deleted after the test."""
    made: list[str] = []

    def make(prefix: str = "q", *, fifo: bool = False) -> str:
        made.append(sqs.unique(prefix) + (".fifo" if fifo else ""))
        return made[-1]

    yield make
    for name in made:
        for queue in (name, name.removesuffix(".fifo") + "-limit-dlq"):
            sqs.delete(queue)


@pytest.fixture()
def q(qctl: QctlRunner, sqs: SQSDriver) -> QctlRunner:
    """``q("peek", "orders")`` runs ``qctl peek -u SQS_URL orders``."""

    def run(command: str, *args: str, **kwargs: Any) -> Run:
        return qctl(command, "-u", sqs.url, *args, **kwargs)

    return run
