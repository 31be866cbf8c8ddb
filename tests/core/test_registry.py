"""Scheme -> adapter table: sorted, lazy, helpful when wrong."""

from __future__ import annotations

import pytest

from qctl import registry
from qctl.errors import UsageError


def test_builtin_table_is_sorted() -> None:
    assert list(registry.BUILTIN) == sorted(registry.BUILTIN)


def test_every_builtin_resolves_to_an_adapter() -> None:
    from qctl.adapter import Adapter

    for scheme in registry.BUILTIN:
        cls = registry.adapter_class(scheme)
        assert issubclass(cls, Adapter)
        assert cls.backend == registry.BACKEND_OF[scheme]


def test_an_entry_point_that_is_not_an_adapter_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    fake = EntryPoint(name="bogus", value="qctl.errors:UsageError", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [fake])
    with pytest.raises(UsageError, match="not a qctl Adapter"):
        registry.adapter_class("bogus")


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("rabbitmq", "amqp://"), ("redsi", "redis://"), ("kafak", "kafka://"), ("http", "amqp://"),
])
def test_unknown_scheme_suggests(typo: str, suggestion: str) -> None:
    with pytest.raises(UsageError) as caught:
        registry.adapter_class(typo)
    assert suggestion in str(caught.value)


def test_entry_points_are_read_for_unknown_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    fake = EntryPoint(name="memq", value="qctl.adapters.redis.adapter:RedisAdapter", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [fake])
    assert registry.adapter_class("memq").backend == "redis"
    assert "memq" in registry.known_schemes()
