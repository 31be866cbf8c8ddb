"""RabbitMQ fixtures: the driver, and qctl with this broker's URL and management API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import QctlRunner, Run
from tests.rabbitmq.driver import RabbitMQDriver


@pytest.fixture()
def rq(rabbitmq_driver: RabbitMQDriver) -> Iterator[RabbitMQDriver]:
    yield rabbitmq_driver


@pytest.fixture()
def names(rabbitmq_driver: RabbitMQDriver) -> Iterator[Any]:
    """Fresh queue names, deleted after the test."""
    made: list[str] = []

    def make(prefix: str = "q") -> str:
        made.append(rabbitmq_driver.unique(prefix))
        return made[-1]

    yield make
    for name in made:
        rabbitmq_driver.delete(name)


@pytest.fixture()
def rmq(qctl: QctlRunner, rabbitmq_driver: RabbitMQDriver) -> QctlRunner:
    """``rmq("peek", "q")`` runs ``qctl peek -u AMQP --management-url API q``."""

    def run(command: str, *args: str, **kwargs: Any) -> Run:
        return qctl(command, "-u", rabbitmq_driver.url, "--management-url", rabbitmq_driver.management_url,
                    *args, **kwargs)

    return run
