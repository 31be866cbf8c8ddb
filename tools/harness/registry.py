"""Every harness NAME and the functions behind it: ``tools/brokers``' table, importable by tests.

Tests that stop a broker in the middle of an operation use ``terminate``/``start``/``restart`` here
(``sys.path`` gets ``tools/`` first, as ``bench/`` does, then ``from harness import registry``):
``terminate`` SIGTERMs the broker's processes and waits until its ports close but keeps its data and
its ``.brokers/env`` lines, and ``start`` is the broker's ``up``, which finds the data again.
Standard library only: this runs before qctl's venv exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from . import frameworks, kafka, mqtt, rabbitmq, rabbitmq_cluster, redis, sqs


@dataclass(frozen=True)
class Broker:
    up: Callable[[], dict[str, str]]
    down: Callable[[], None]
    status: Callable[[], str]
    # SIGTERM and wait, data and env kept; None where a restart means nothing (throw-away clusters).
    terminate: Callable[[], None] | None = None


BROKERS: dict[str, Broker] = {
    "redis": Broker(redis.up, redis.down, redis.status, lambda: redis.terminate(redis.MAIN)),
    "redis-tls": Broker(redis.tls_up, redis.tls_down, redis.tls_status, lambda: redis.terminate(redis.TLS)),
    "redis-mtls": Broker(redis.mtls_up, redis.mtls_down, redis.mtls_status,
                         lambda: redis.terminate(redis.MTLS)),
    "redis-persist": Broker(redis.persist_up, redis.persist_down, redis.persist_status,
                            lambda: redis.terminate(redis.PERSIST)),
    "redis-cluster": Broker(redis.cluster_up, redis.cluster_down, redis.cluster_status),
    "rabbitmq": Broker(rabbitmq.up, rabbitmq.down, rabbitmq.status, rabbitmq.terminate),
    "rabbitmq-cluster": Broker(rabbitmq_cluster.up, rabbitmq_cluster.down, rabbitmq_cluster.status),
    "kafka": Broker(kafka.up, kafka.down, kafka.status, kafka.terminate),
    "kafka-cluster": Broker(kafka.cluster_up, kafka.cluster_down, kafka.cluster_status),
    "sqs": Broker(sqs.up, sqs.down, sqs.status, sqs.terminate),
    "mqtt": Broker(mqtt.up, mqtt.down, mqtt.status, mqtt.terminate),
    # Not a server: RQ/Celery venv, Sidekiq and BullMQ installs for tests/frameworks/.
    "frameworks": Broker(frameworks.up, frameworks.down, frameworks.status),
}

# What `tools/brokers up` with no NAME starts: what the normal test run needs.
DEFAULT = ("redis", "rabbitmq", "kafka", "sqs", "mqtt", "frameworks")


def terminate(name: str) -> None:
    """SIGTERM broker ``name`` and wait until it has stopped; its data and env lines stay."""
    stop = BROKERS[name].terminate
    if stop is None:
        raise ValueError(f"{name} has no restart: its data is throw-away")
    stop()


def start(name: str) -> dict[str, str]:
    """Start broker ``name`` again (its ``up``) on the same ports, with the data it had."""
    return BROKERS[name].up()


def restart(name: str, *, pause: float = 0.0) -> float:
    """``terminate``, wait ``pause`` seconds, ``start``; returns the seconds the broker was away."""
    started = time.monotonic()
    terminate(name)
    time.sleep(pause)
    start(name)
    return time.monotonic() - started
