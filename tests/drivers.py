"""Test-side access to each real broker, for the shared contract suite.

A driver seeds queues and reads them back *without qctl*, so tests can check
what is on the broker after a command.  Each backend's folder provides one
(``tests/<backend>/driver.py``) and ``tests/contract/`` runs the same cases
against all three.
"""

from __future__ import annotations

import uuid
from typing import Protocol


class BackendDriver(Protocol):
    name: str  # "redis", "rabbitmq", "kafka": the contract's `backend` field
    url: str  # what qctl gets with -u
    queue_type: str  # the `type` stats reports for queues made by make_queue

    def unique(self, prefix: str = "q") -> str:
        """A fresh queue/topic name."""

    def make_queue(self, name: str, bodies: list[bytes]) -> None:
        """Create ``name`` (if the broker needs that) holding ``bodies`` in consumption order."""

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        """Create ``source`` (empty) and ``dlq`` holding ``bodies`` as dead letters of ``source``,
        with the broker's own dead-letter metadata where it has any (x-death, Spring headers);
        for Redis, whose lists carry no metadata, ``dlq`` is named by convention (``<source>:dlq``)."""

    def contents(self, name: str) -> list[bytes]:
        """Every body waiting in ``name``, in consumption order, leaving the queue unchanged
        (Kafka: the records between start and end offsets, partition by partition)."""

    def delete(self, name: str) -> None:
        """Remove the queue/topic if it exists."""

    def bad_password_url(self) -> str:
        """A URL to the same broker whose password is the literal ``wrong-password`` (qctl must exit 3)."""

    def unreachable_url(self) -> str:
        """A URL where nothing listens (qctl must exit 3 quickly)."""


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
