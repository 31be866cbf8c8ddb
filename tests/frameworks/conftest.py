"""Fixtures for the job-framework layout tests: the frameworks installed, qctl URLs with ?layout=."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.frameworks import fixtures


@pytest.fixture(scope="session")
def frameworks_env() -> Iterator[dict[str, str]]:
    yield fixtures.frameworks_up()
    fixtures.forget_all()  # the queues this session's tests made (unique_queue), jobs and all


def layout_url(framework: str, **settings: str) -> str:
    """The framework's database on the harness Redis, as qctl addresses it with ``?layout=``."""
    query = "&".join(f"{key}={value}" for key, value in {"layout": framework, **settings}.items())
    return f"{fixtures.redis_url(framework)}?{query}"
