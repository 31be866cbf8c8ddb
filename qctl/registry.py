"""URL scheme -> adapter class, imported only when a URL names it.

Built-in adapters are import strings so that ``qctl --help`` imports no broker
client.  Third-party adapters register an entry point in the ``qctl.adapters``
group; entry points are read only when a scheme is not built in, and what they
name must be an :class:`~qctl.adapter.Adapter`.  Each built-in package's
``ABOUT`` (no driver import) documents its URLs and environment for the man page.
"""

from __future__ import annotations

import difflib
import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from qctl.adapter import About, Adapter
from qctl.errors import UsageError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoints

# Keep sorted: a test asserts it.
BUILTIN: Final = MappingProxyType({
    "amqp": "qctl.adapters.rabbitmq.adapter:RabbitMQAdapter",
    "amqps": "qctl.adapters.rabbitmq.adapter:RabbitMQAdapter",
    "kafka": "qctl.adapters.kafka.adapter:KafkaAdapter",
    "kafka+ssl": "qctl.adapters.kafka.adapter:KafkaAdapter",
    "mqtt": "qctl.adapters.mqtt.adapter:MQTTAdapter",
    "mqtts": "qctl.adapters.mqtt.adapter:MQTTAdapter",
    "redis": "qctl.adapters.redis.adapter:RedisAdapter",
    "rediss": "qctl.adapters.redis.adapter:RedisAdapter",
    "sqs": "qctl.adapters.sqs.adapter:SQSAdapter",
    "sqs+http": "qctl.adapters.sqs.adapter:SQSAdapter",
    "sqs+https": "qctl.adapters.sqs.adapter:SQSAdapter",
    "unix": "qctl.adapters.redis.adapter:RedisAdapter",
})
# The backend each built-in scheme reaches: names the profile's table for it ([profiles.x.sqs]).
BACKEND_OF: Final = MappingProxyType({
    "amqp": "rabbitmq", "amqps": "rabbitmq", "kafka": "kafka", "kafka+ssl": "kafka", "mqtt": "mqtt",
    "mqtts": "mqtt", "redis": "redis", "rediss": "redis", "sqs": "sqs", "sqs+http": "sqs", "sqs+https": "sqs",
    "unix": "redis",
})
# Optional extras: the package a backend needs beyond qctl's own dependencies.
EXTRAS: Final = MappingProxyType({"sqs": ("botocore", "qctl[sqs]"), "mqtt": ("paho", "qctl[mqtt]")})
ABOUT_MODULES: Final = ("redis", "rabbitmq", "kafka", "sqs", "mqtt")
ENTRY_POINT_GROUP: Final = "qctl.adapters"

# Names operators type by habit, and the scheme they meant.
ALIASES: Final = MappingProxyType({
    "rabbit": "amqp", "rabbitmq": "amqp", "amqp091": "amqp", "pyamqp": "amqp",
    "http": "amqp", "https": "amqps", "ssl": "kafka+ssl", "kafka-ssl": "kafka+ssl",
    "kafkas": "kafka+ssl", "tcp": "redis", "valkey": "redis", "redis-cluster": "redis",
    "aws": "sqs", "elasticmq": "sqs+http", "mosquitto": "mqtt", "ws": "mqtt",
})


def entry_points(*, group: str) -> EntryPoints:
    """``importlib.metadata.entry_points``, imported on first use: ~20 ms (email, zipfile, csv...) that a
    built-in scheme never needs."""
    from importlib import metadata

    return metadata.entry_points(group=group)


def adapter_class(scheme: str) -> type[Adapter]:
    target = BUILTIN.get(scheme) or _from_entry_points(scheme)
    if target is None:
        raise UsageError(f"unknown URL scheme {scheme + '://'!r}", hint=_suggest(scheme))
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get(BACKEND_OF.get(scheme, ""))
        if extra is not None and (exc.name or "").split(".")[0] == extra[0]:
            raise UsageError(f"{scheme}:// needs the optional package {extra[0]!r}",
                             hint=f"install {extra[1]} (pip install '{extra[1]}')") from None
        raise UsageError(f"{scheme}:// needs the Python package {exc.name!r}",
                         hint=f"pip install {exc.name}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise UsageError(f"{scheme}:// is registered as {target!r}, which is not a qctl Adapter",
                         hint="the package that registers it is broken or too old for this qctl")
    return cls


def backend_of(scheme: str) -> str | None:
    if scheme in BACKEND_OF:
        return BACKEND_OF[scheme]
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == scheme:
            return scheme
    return None


def backend_names() -> frozenset[str]:
    return frozenset(BACKEND_OF.values())


def abouts() -> list[About]:
    """Every built-in adapter's documentation (imports no broker client)."""
    found = []
    for name in ABOUT_MODULES:
        module = importlib.import_module(f"qctl.adapters.{name}")
        found.append(module.ABOUT)
    return found


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
