"""What the contract suite needs from a backend: a driver that seeds and reads the real broker without qctl.

A backend's test package implements :class:`Driver` (the built-in ones are in
``tests/<backend>/driver.py``) and declares its honest differences as
:class:`Capabilities`; the cases in :mod:`qctl.testing.contract` read the flags
and never ask which backend they run on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from qctl.models import Message


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    backend: str  # the `backend` field stats reports
    queue_type: str  # the `type` stats reports for queues make_queue makes
    dlq_suffix: str  # a dead-letter suffix its convention knows (":dlq", ".dlq", ".DLT")
    carries_headers: bool = True  # headers survive a backup, restore, redrive and move
    # x-qctl-redrive-count survives a redrive (None: as carries_headers; True for job layouts that keep only it)
    counts_redrives: bool | None = None
    carries_properties: bool = False  # broker properties survive too (AMQP, SQS attributes)
    carries_keys: bool = False  # message keys survive (Kafka)
    repeats_headers: bool = False  # a header name may appear twice, and both survive (Kafka)
    # A message's own time survives into this broker from another (RabbitMQ: the AMQP timestamp, in seconds);
    # elsewhere a moved or restored message is stamped when it arrives (docs/mapping.md).
    carries_timestamps: bool = False
    dead_letter_metadata: bool = True  # make_dead_letters leaves the broker's own metadata (x-death...)
    keeps_settled: bool = False  # settled messages stay on the broker; progress lives in a group (Kafka)
    missing_queue_is_empty: bool = False  # a queue that does not exist is empty, not an error (Redis)
    deletes_singly: bool = True  # purge --where can leave some messages in place
    has_read_limits: bool = False  # the broker can count reads against a limit (make_limited_queue works)
    peek_marks_redelivered: bool = False  # reading by take-and-return shows in `redelivered`
    interrupt_repeats: int = 0  # messages a re-run after a hard kill may move a second time (at least once)
    # Messages come out in the order they went in (False: SQS standard queues, whose order is best-effort only;
    # ElasticMQ hands them out by the millisecond they became visible, a batch's in any order).
    ordered: bool = True
    # A wrong password is refused (False: ElasticMQ accepts any credentials).
    checks_credentials: bool = True
    # stats takes shell globs and lists every queue with no argument.  False (MQTT): a QUEUE is a topic filter,
    # stats gives one row per filter asked for (a filter that matches nothing is a row of depth 0), and with
    # no argument the broker's own row.
    stats_lists_queues: bool = True
    # The broker has dead-letter queues, so redrive has something to do.  False (MQTT): redrive exits 2 with
    # one line and changes nothing (make_dead_letters is never called).
    dead_letters: bool = True
    # A restore line holding nothing but a body can go into a queue.  False (MQTT): a message needs its
    # topic (the position) and its retain flag, so the restore cases use lines a peek wrote.
    restores_bare_rows: bool = True
    # With carries_properties: a per-message property the broker keeps, besides content_type.
    id_property: str = "message_id"
    # Another backend's messages can be moved or restored into a queue make_queue made.  False (MQTT): such a
    # queue is a retained tree, and a message needs a topic under it and its retain flag, which only MQTT
    # messages carry; they go to a topic name instead, as live publishes (tests/mqtt/test_move.py).
    accepts_foreign_messages: bool = True


class Driver(Protocol):
    capabilities: Capabilities
    url: str  # what qctl gets with -u

    def unique(self, prefix: str = "q") -> str:
        """A fresh queue/topic name."""

    def make_queue(self, name: str, messages: list[Message]) -> None:
        """Create ``name`` (if the broker needs that) holding ``messages`` in consumption order.

        Only the parts the capabilities say the broker carries need to be kept (body always)."""

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        """Create ``source`` (empty) and ``dlq`` holding ``bodies`` as dead letters of ``source``,
        with the broker's own dead-letter metadata where it has any; else ``dlq`` is named by
        convention (``source + capabilities.dlq_suffix``)."""

    def messages(self, name: str) -> list[Message]:
        """Every message waiting in ``name``, in consumption order, leaving the queue unchanged
        (Kafka: the records between start and end offsets)."""

    def contents(self, name: str) -> list[bytes]:
        """The bodies of :meth:`messages`."""

    def delete(self, name: str) -> None:
        """Remove the queue/topic if it exists."""

    def bad_password_url(self) -> str:
        """A URL to the same broker whose password is the literal ``wrong-password`` (qctl must exit 3)."""

    def unreachable_url(self) -> str:
        """A URL where nothing listens (qctl must exit 3 quickly)."""

    def make_limited_queue(self, name: str, bodies: list[bytes], limit: int) -> str:
        """With ``has_read_limits``: a queue where each return of a message counts, dropping it (or
        dead-lettering it) after ``limit``; returns the URL qctl must use for it."""


def plain(bodies: list[bytes], queue: str = "") -> list[Message]:
    """Messages that are only bodies, for :meth:`Driver.make_queue`."""
    return [Message(queue=queue, position="", body=body) for body in bodies]


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
