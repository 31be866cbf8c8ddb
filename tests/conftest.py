"""Shared fixtures: real brokers (started once per run), and qctl as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qctl.testing.runner import QctlRunner, Run, clean_environment, runner

__all__ = ["QctlRunner", "Run", "brokers_up"]

REPO = Path(__file__).resolve().parents[1]
BROKERS = REPO / "tools" / "brokers"
ENV_FILE = REPO / ".brokers" / "env"


def brokers_up(*names: str) -> dict[str, str]:
    """Start (or find running) the named brokers with the project's harness; return .brokers/env."""
    proc = subprocess.run([sys.executable, str(BROKERS), "up", *names], capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"tools/brokers up {' '.join(names)} failed:\n{proc.stderr[-6000:]}", pytrace=False)
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    return dict(pairs)


@pytest.fixture(scope="session")
def redis_env() -> dict[str, str]:
    return brokers_up("redis")


@pytest.fixture(scope="session")
def rabbitmq_env() -> dict[str, str]:
    return brokers_up("rabbitmq")


@pytest.fixture(scope="session")
def kafka_env() -> dict[str, str]:
    return brokers_up("kafka")


@pytest.fixture(scope="session")
def redis_url(redis_env: dict[str, str]) -> str:
    return redis_env["QCTL_TEST_REDIS_URL"]


@pytest.fixture(scope="session")
def amqp_url(rabbitmq_env: dict[str, str]) -> str:
    return rabbitmq_env["QCTL_TEST_AMQP_URL"]


@pytest.fixture(scope="session")
def management_url(rabbitmq_env: dict[str, str]) -> str:
    return rabbitmq_env["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"]


@pytest.fixture(scope="session")
def kafka_url(kafka_env: dict[str, str]) -> str:
    return kafka_env["QCTL_TEST_KAFKA_URL"]


@pytest.fixture()
def clean_env(tmp_path: Path) -> dict[str, str]:
    """The process environment without the caller's qctl settings, config in a temp dir."""
    return clean_environment(str(tmp_path / "xdg"))


@pytest.fixture()
def qctl(clean_env: dict[str, str]) -> QctlRunner:
    """Run qctl as a real process: ``qctl("stats", "-u", url, "-o", "json")``."""
    return runner(clean_env)


# One driver per backend (tests/<backend>/driver.py), for the contract suite and backend tests.
@pytest.fixture(scope="session")
def redis_driver(redis_env: dict[str, str]) -> Any:
    from tests.redis.driver import RedisDriver

    return RedisDriver(redis_env)


@pytest.fixture(scope="session")
def rabbitmq_driver(rabbitmq_env: dict[str, str]) -> Any:
    from tests.rabbitmq.driver import RabbitMQDriver

    return RabbitMQDriver(rabbitmq_env)


@pytest.fixture(scope="session")
def kafka_driver(kafka_env: dict[str, str]) -> Any:
    from tests.kafka.driver import KafkaDriver

    return KafkaDriver(kafka_env)
