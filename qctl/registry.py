"""URL scheme -> adapter class, imported only when a URL names it.

Built-in adapters are import strings so that ``qctl --help`` imports no broker
client.  Third-party adapters register an entry point in the ``qctl.adapters``
group; entry points are read only when a scheme is not built in.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Final

from qctl.adapter import Adapter
from qctl.errors import UsageError

# Keep sorted: a test asserts it.
BUILTIN: Final = MappingProxyType({
    "amqp": "qctl.adapters.rabbitmq:RabbitMQAdapter",
    "amqps": "qctl.adapters.rabbitmq:RabbitMQAdapter",
    "kafka": "qctl.adapters.kafka:KafkaAdapter",
    "kafka+ssl": "qctl.adapters.kafka:KafkaAdapter",
    "redis": "qctl.adapters.redis:RedisAdapter",
    "rediss": "qctl.adapters.redis:RedisAdapter",
    "unix": "qctl.adapters.redis:RedisAdapter",
})
ENTRY_POINT_GROUP: Final = "qctl.adapters"

# Names operators type by habit, and the scheme they meant.
ALIASES: Final = MappingProxyType({
    "rabbit": "amqp", "rabbitmq": "amqp", "amqp091": "amqp", "pyamqp": "amqp",
    "http": "amqp", "https": "amqps", "ssl": "kafka+ssl", "kafka-ssl": "kafka+ssl",
    "kafkas": "kafka+ssl", "tcp": "redis", "valkey": "redis", "redis-cluster": "redis",
})


def adapter_class(scheme: str) -> type[Adapter]:
    target = BUILTIN.get(scheme) or _from_entry_points(scheme)
    if target is None:
        raise UsageError(f"unknown URL scheme {scheme + '://'!r}", hint=_suggest(scheme))
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UsageError(f"{scheme}:// needs the Python package {exc.name!r}",
                         hint=f"pip install {exc.name}") from None
    cls: type[Adapter] = getattr(module, class_name)
    return cls


def _from_entry_points(scheme: str) -> str | None:
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == scheme:
            return entry.value
    return None


def known_schemes() -> list[str]:
    extra = {entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(BUILTIN) | extra)


def _suggest(scheme: str) -> str:
    if scheme in ALIASES:
        return f"did you mean {ALIASES[scheme]}://?"
    close = difflib.get_close_matches(scheme, known_schemes(), n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]}://?"
    return "known schemes: " + ", ".join(s + "://" for s in known_schemes())
