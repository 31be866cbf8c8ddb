"""Run every contract case (qctl.testing.contract) against each real broker, through its driver."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import brokers_up

BACKENDS = ["redis", "redis-stream", "rabbitmq", "kafka"]


@pytest.fixture(scope="session", params=BACKENDS)
def driver(request: pytest.FixtureRequest) -> Any:
    if request.param == "redis-stream":
        from tests.redis.driver import RedisStreamDriver

        return RedisStreamDriver(brokers_up("redis"))
    return request.getfixturevalue(f"{request.param}_driver")
