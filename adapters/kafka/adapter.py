"""KafkaAdapter: admin questions and records alike through librdkafka (confluent-kafka)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from qctl.adapter import Adapter, ConnectOptions
from qctl.adapters.kafka import peek as peeking
from qctl.adapters.kafka import rdkafka
from qctl.adapters.kafka.cluster import Cluster
from qctl.errors import UsageError
from qctl.models import Check, Message, PeekRequest, PurgeResult, QueueStats
from qctl.primitives import ReadMode

if TYPE_CHECKING:
    from qctl.adapters.kafka.destination import KafkaDestination
    from qctl.adapters.kafka.reader import KafkaReader

# stats, purge, ping, the reader and the destination are imported by the methods that use them: a peek, the
# command that must answer quickest, loads none of them (~4 ms).

# Kafka's own rule (org.apache.kafka.common.internals.Topic): ASCII letters, digits, '.', '_', '-'; at most 249.
LEGAL_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class KafkaAdapter(Adapter):
    backend = "kafka"
    understands = frozenset({"--group", "--partition", "--include-internal", "--from", "--since"})

    def __init__(self, options: ConnectOptions) -> None:
        super().__init__(options)
        self._admin: Any = None
        self._producers: dict[int, Any] = {}  # by the max.message.bytes they were made for

    def check_name(self, queue: str) -> None:
        if not LEGAL_TOPIC.match(queue) or queue in (".", ".."):
            raise UsageError(f"{queue!r} is not a legal Kafka topic name",
                             hint="topic names use ASCII letters, digits, '.', '_' and '-' (at most 249)")

    @property
    def cluster(self) -> Cluster:
        if self._admin is None:  # connect on first use, so a usage error needs no broker
            self._admin = rdkafka.admin(self.options)
        return Cluster(self._admin, self.options.timeout)

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        from qctl.adapters.kafka import stats as statistics

        return statistics.collect(self.cluster, self.options, patterns, groups=groups,
                                  include_internal=self.options.include_internal, naming=self.options.dead_letter)

    def names(self, prefix: str) -> list[str]:
        return [name for name in self.cluster.partitions() if name.startswith(prefix) and not name.startswith("__")]

    def depth(self, queue: str) -> int:
        cluster = self.cluster
        return sum(bound.depth for bound in cluster.bounds(cluster.topic_partitions(queue)).values())

    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        yield from peeking.peek(self.cluster, self.options, queue, request)

    def purge(self, queue: str) -> PurgeResult:
        from qctl.adapters.kafka import purge as purging

        return purging.purge(self.cluster, queue, self.options.timeout)

    def reader(self, queue: str, mode: ReadMode) -> KafkaReader:
        from qctl.adapters.kafka import purge as purging
        from qctl.adapters.kafka.reader import KafkaReader

        if mode is ReadMode.DELETE:
            purging.check_deletable(self.cluster, queue)
        return KafkaReader(self.cluster, self.options, queue, mode)

    def destination(self, queue: str) -> KafkaDestination:
        from qctl.adapters.kafka.destination import KafkaDestination

        cluster = self.cluster
        cluster.topic_partitions(queue)  # QueueNotFound now; auto-creation is never used
        max_bytes = cluster.max_message_bytes(queue)
        return KafkaDestination(queue, partial(self._producing, max_bytes), max_bytes, self.options.timeout)

    def _producing(self, max_bytes: int) -> Any:
        """The producer for topics limited to ``max_bytes`` (one per limit: librdkafka's size settings are
        per producer, and most topics share the broker's default)."""
        producer = self._producers.get(max_bytes)
        if producer is None:
            # A fatal producer error fails every delivery report after it: those records count as failed.
            producer = self._producers[max_bytes] = rdkafka.producer(self.options, lambda _error: None, max_bytes)
        return producer

    def ping(self) -> list[Check]:
        from qctl.adapters.kafka import ping as pinging

        return pinging.ping(self.options)

    def close(self) -> None:
        producers, self._producers = self._producers, {}
        for producer in producers.values():
            with rdkafka.translated("cannot close the producer"):
                producer.flush(self.options.timeout)
        self._admin = None  # librdkafka's admin client has no close: dropping it closes its connections
