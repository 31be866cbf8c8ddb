"""The RabbitMQ adapter: one AMQP session and one management-API client per command."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from qctl.adapter import Adapter, ConnectOptions
from qctl.adapters.rabbitmq import ping as pinging
from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.destination import RabbitMQDestination
from qctl.adapters.rabbitmq.errors import translated
from qctl.adapters.rabbitmq.management import Management
from qctl.adapters.rabbitmq.peek import peek, queue_facts, traits
from qctl.adapters.rabbitmq.publisher import ConfirmedPublisher
from qctl.adapters.rabbitmq.purge import purge
from qctl.adapters.rabbitmq.reader import RabbitMQReader
from qctl.adapters.rabbitmq.stats import StatsCollector
from qctl.errors import Unsupported
from qctl.models import Check, Message, PeekRequest, PurgeResult, QueueStats
from qctl.primitives import ReadMode, SourceTraits


class RabbitMQAdapter(Adapter):
    backend = "rabbitmq"
    understands = frozenset({"--management-url", "--via-exchange", "--from", "--since"})

    def __init__(self, options: ConnectOptions) -> None:
        super().__init__(options)
        self.session = Session(options)
        self.management = Management(options)
        self._kinds: dict[str, tuple[str, SourceTraits]] = {}
        self._publisher: ConfirmedPublisher | None = None

    def _kind(self, queue: str) -> tuple[str, SourceTraits]:
        """The queue's type and read traits, asked once per command (management API, else an AMQP probe)."""
        if queue not in self._kinds:
            with translated(self.session.where, f"queue {queue!r}"):
                self.session.passive(queue)  # QueueNotFound first
                self._kinds[queue] = traits(self.session, queue_facts(self.management, queue), queue)
        return self._kinds[queue]

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        with translated(self.session.where, "stats"):
            return StatsCollector(self.session, self.management, self.options.dead_letter).collect(patterns)

    def names(self, prefix: str) -> list[str]:
        with translated(self.session.where, "list queues"):
            return [name for name in self.management.queue_names() if name.startswith(prefix)]

    def depth(self, queue: str) -> int:
        return self.session.passive(queue).ready

    def read_traits(self, queue: str) -> SourceTraits:
        return self._kind(queue)[1]

    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        kind, _ = self._kind(queue)
        count = 0
        with translated(self.session.where, f"peek {queue!r}"):
            for message in peek(self.session, kind, queue, request):
                count += 1
                yield message
        if kind != "stream" and count:
            # Classic and quorum queues can only be read by taking and returning messages.
            self.notices.append(f"peek took and returned {count} message(s) in order; RabbitMQ now "
                                "marks them redelivered (and counts a delivery on quorum queues)")

    def purge(self, queue: str) -> PurgeResult:
        with translated(self.session.where, f"purge {queue!r}"):
            return purge(self.session, self.management, queue)

    def reader(self, queue: str, mode: ReadMode) -> RabbitMQReader:
        kind, read_traits = self._kind(queue)
        if kind == "stream":
            raise Unsupported(f"{queue!r} is a RabbitMQ stream: its messages cannot be taken one by one",
                              hint="peek reads streams; purge and redrive work on classic and quorum queues")
        with translated(self.session.where, f"read {queue!r}"):
            return RabbitMQReader(self.session, queue, mode, read_traits, quorum=kind == "quorum")

    def destination(self, queue: str) -> RabbitMQDestination:
        with translated(self.session.where, f"publish to {queue!r}"):
            return RabbitMQDestination(self.session, queue, self._confirming,
                                       via_exchange=bool(self.options.flags.get("via_exchange")))

    def _confirming(self) -> ConfirmedPublisher:
        if self._publisher is None or self._publisher.channel.is_closed:
            self._publisher = ConfirmedPublisher(self.session)
        return self._publisher

    def ping(self) -> list[Check]:
        return pinging.ping(self.session, self.management)

    def close(self) -> None:
        self.management.close()
        self.session.close()
