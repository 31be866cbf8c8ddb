"""The RabbitMQ adapter: one AMQP session and one management-API client per command."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from qctl.adapter import Adapter, ConnectOptions, Progress
from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.errors import translated
from qctl.adapters.rabbitmq.management import Management
from qctl.adapters.rabbitmq.messages import properties_from
from qctl.adapters.rabbitmq.peek import peek, queue_facts
from qctl.adapters.rabbitmq.publisher import ConfirmedPublisher
from qctl.adapters.rabbitmq.purge import purge
from qctl.adapters.rabbitmq.redrive import Redrive
from qctl.adapters.rabbitmq.stats import StatsCollector
from qctl.errors import BrokerUnavailable
from qctl.models import Message, PeekRequest, PurgeRequest, PurgeResult, QueueStats, RedriveRequest, RedriveResult

RESTORE_WINDOW = 5000


class RabbitMQAdapter(Adapter):
    backend = "rabbitmq"

    def __init__(self, options: ConnectOptions) -> None:
        super().__init__(options)
        self.session = Session(options)
        self.management = Management(options)

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        with translated(self.session.where, "stats"):
            return StatsCollector(self.session, self.management, self.options.dead_letter).collect(patterns)

    def depth(self, queue: str) -> int:
        return self.session.passive(queue).ready

    def peek(self, queue: str, request: PeekRequest) -> list[Message]:
        with translated(self.session.where, f"peek {queue!r}"):
            messages = peek(self.session, queue_facts(self.management, queue), queue, request)
        if any(message.redelivered is not None for message in messages):
            # Classic and quorum queues can only be read by taking and returning messages.
            self.notices.append(f"peek took and returned {len(messages)} message(s) in order; RabbitMQ now "
                                "marks them redelivered (and counts a delivery on quorum queues)")
        return messages

    def purge(self, queue: str, request: PurgeRequest) -> PurgeResult:
        with translated(self.session.where, f"purge {queue!r}"):
            return purge(self.session, self.management, queue, request.backup)

    def redrive(self, dlq: str, request: RedriveRequest, progress: Progress) -> RedriveResult:
        with translated(self.session.where, f"redrive {dlq!r}"):
            return Redrive(self.session, dlq, request, self.options.dead_letter, progress).run()

    def publish(self, queue: str, messages: Iterable[Message], progress: Progress) -> int:
        with translated(self.session.where, f"publish to {queue!r}"):
            self.session.passive(queue)
            publisher = ConfirmedPublisher(self.session)
            confirmed = failed = 0
            for message in messages:
                publisher.publish("", queue, properties_from(message.headers), message.body)
                if len(publisher.pending) >= RESTORE_WINDOW:
                    self.session.pump(lambda: len(publisher.pending) < RESTORE_WINDOW, self.options.timeout)
                confirmed, failed = _count(publisher, progress, confirmed, failed)
            publisher.drain()
            confirmed, failed = _count(publisher, progress, confirmed, failed)
        if failed:
            raise BrokerUnavailable(f"{failed} message(s) were not accepted by {queue!r} ({confirmed} were)",
                                    hint="was the queue deleted meanwhile? rerun restore for the rest")
        return confirmed

    def close(self) -> None:
        self.session.close()


def _count(publisher: ConfirmedPublisher, progress: Progress, confirmed: int, failed: int) -> tuple[int, int]:
    for _seq, ok in publisher.take_settled():
        if ok:
            confirmed += 1
            progress.advance()
        else:
            failed += 1
    return confirmed, failed
