"""Fixtures for the MQTT tests: the harness's mosquitto, a driver, and a unique topic tree per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import brokers_up
from tests.mqtt.driver import MQTTDriver


@pytest.fixture(scope="session")
def mqtt_env() -> dict[str, str]:
    return brokers_up("mqtt")


@pytest.fixture(scope="session")
def mqtt_driver(mqtt_env: dict[str, str]) -> MQTTDriver:
    return MQTTDriver(mqtt_env)


@pytest.fixture(scope="session")
def mqtt_url(mqtt_env: dict[str, str]) -> str:
    return mqtt_env["QCTL_TEST_MQTT_URL"]


@pytest.fixture()
def tree(mqtt_driver: MQTTDriver) -> Iterator[str]:
    """A fresh topic filter ``qctl-test/t-<hex>/#``; its retained messages are cleared afterwards."""
    name = mqtt_driver.unique("t")
    yield name
    mqtt_driver.delete(name)
