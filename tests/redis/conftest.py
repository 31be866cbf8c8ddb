"""Fixtures for the Redis tests: a real client, unique key names, cleanup afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import brokers_up


@pytest.fixture(scope="session")
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture()
def name(r: redis.Redis) -> Iterator[str]:
    """A unique key prefix; every key under it (and its {tag}ged journal keys) is deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    yield prefix
    keys = list(r.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        r.delete(*keys)


@pytest.fixture(scope="session")
def cluster_env() -> dict[str, str]:
    return brokers_up("redis-cluster")


@pytest.fixture(scope="session")
def tls_env() -> dict[str, str]:
    return brokers_up("redis-tls")

