"""Run every contract case against each real broker."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(params=["redis", "rabbitmq", "kafka"])
def driver(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_driver")
