"""KafkaAdapter: the qctl Adapter interface over kafka-python's admin client, consumer and producer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from qctl.adapter import Adapter, ConnectOptions, Progress
from qctl.adapters.kafka import peek as peeking
from qctl.adapters.kafka import publish as publishing
from qctl.adapters.kafka import purge as purging
from qctl.adapters.kafka import stats as statistics
from qctl.adapters.kafka.cluster import Cluster
from qctl.adapters.kafka.connection import admin_client, reader, translated, writer
from qctl.adapters.kafka.redrive import Redrive
from qctl.models import Message, PeekRequest, PurgeRequest, PurgeResult, QueueStats, RedriveRequest, RedriveResult


class KafkaAdapter(Adapter):
    backend = "kafka"

    def __init__(self, options: ConnectOptions) -> None:
        super().__init__(options)
        self._admin: Any = None

    @property
    def cluster(self) -> Cluster:
        if self._admin is None:  # connect on first use, so a usage error needs no broker
            self._admin = admin_client(self.options)
        return Cluster(self._admin, self.options.timeout)

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        return statistics.collect(self.cluster, patterns, groups=groups,
                                  include_internal=self.options.include_internal, naming=self.options.dead_letter)

    def depth(self, queue: str) -> int:
        cluster = self.cluster
        return sum(bound.depth for bound in cluster.bounds(cluster.topic_partitions(queue)).values())

    def peek(self, queue: str, request: PeekRequest) -> list[Message]:
        cluster = self.cluster
        consumer = reader(self.options, batch=max(1, min(request.count, 10_000)),
                          partition_fetch_bytes=peeking.fetch_bytes(request.count))
        with _Closing(consumer):
            return peeking.peek(cluster, consumer, queue, request, self.options.timeout)

    def purge(self, queue: str, request: PurgeRequest) -> PurgeResult:
        factory: Callable[[], Any] = lambda: reader(self.options)  # noqa: E731
        return purging.purge(self.cluster, factory, queue, request, self.options.timeout)

    def redrive(self, dlq: str, request: RedriveRequest, progress: Progress) -> RedriveResult:
        return Redrive(self.cluster, self.options, dlq, request).run(progress)

    def publish(self, queue: str, messages: Iterable[Message], progress: Progress) -> int:
        self.cluster.topic_partitions(queue)  # QueueNotFound now, not a producer blocked on metadata
        producer = writer(self.options)
        try:
            return publishing.publish(producer, queue, messages, progress, self.options.timeout)
        finally:
            with translated("cannot close the producer"):
                producer.close(timeout=self.options.timeout)

    def close(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            with translated("cannot close the admin client"):
                admin.close()


class _Closing:
    """Close a consumer without committing when the block ends."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    def __enter__(self) -> Any:
        return self.consumer

    def __exit__(self, *exc: object) -> None:
        with translated("cannot close the consumer"):
            self.consumer.close(autocommit=False)
