"""Run every contract case (qctl.testing.contract) against each real broker, through its driver."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import brokers_up

BACKENDS = ["redis", "redis-stream", "rabbitmq", "kafka", "mqtt", "redis-sidekiq", "redis-rq", "redis-bullmq",
            "redis-celery", "sqs"]
LAYOUTS = {"redis-sidekiq": "SidekiqDriver", "redis-rq": "RQDriver", "redis-bullmq": "BullMQDriver",
           "redis-celery": "CeleryDriver"}


@pytest.fixture(scope="session", params=BACKENDS)
def driver(request: pytest.FixtureRequest) -> Any:
    if request.param == "redis-stream":
        from tests.redis.driver import RedisStreamDriver

        return RedisStreamDriver(brokers_up("redis"))
    if request.param == "sqs":
        from tests.sqs.driver import SQSDriver

        return SQSDriver(brokers_up("sqs"))
    if request.param == "mqtt":
        from tests.mqtt.driver import MQTTDriver

        return MQTTDriver(brokers_up("mqtt"))
    if request.param in LAYOUTS:  # the job-framework layouts of the Redis adapter (tests/frameworks/drivers.py)
        from tests.frameworks import drivers

        return getattr(drivers, LAYOUTS[request.param])(brokers_up("redis", "frameworks"))
    return request.getfixturevalue(f"{request.param}_driver")
