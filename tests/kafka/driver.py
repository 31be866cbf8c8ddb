"""Test-side access to the real Kafka broker (no qctl): seed topics, read them back, inspect groups.

Implements :class:`qctl.testing.driver.Driver`.  Topics made by ``make_queue``
have one partition so that "consumption order" is one well-defined sequence;
backend tests make multi-partition topics with :meth:`KafkaDriver.create_topic`.
Bulk seeding goes through ``kcat`` (librdkafka): kafka-python produces ~20k
records/s, kcat ~250k.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import NodeNotReadyError, UnknownBrokerIdError, UnknownTopicOrPartitionError

from qctl.codec import header_bytes
from qctl.models import Message
from qctl.testing.driver import Capabilities, unique_name

Record = tuple[bytes | None, bytes, Sequence[tuple[str, bytes]]]  # key, value, headers


def spring_headers(source: str, partition: int = 0, offset: int = 0, reason: str = "boom") -> list[tuple[str, bytes]]:
    """Headers as Spring Kafka's DeadLetterPublishingRecoverer writes them (ints big-endian)."""
    return [
        ("kafka_dlt-original-topic", source.encode()),
        ("kafka_dlt-original-partition", partition.to_bytes(4, "big")),
        ("kafka_dlt-original-offset", offset.to_bytes(8, "big")),
        ("kafka_dlt-original-timestamp", int(time.time() * 1000).to_bytes(8, "big")),
        ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", reason.encode()),
    ]


class KafkaDriver:
    capabilities = Capabilities(backend="kafka", queue_type="topic", dlq_suffix=".DLT", carries_headers=True,
                                carries_keys=True, repeats_headers=True, keeps_settled=True, deletes_singly=False)

    def __init__(self, env: dict[str, str], url_key: str = "QCTL_TEST_KAFKA_URL") -> None:
        self.url = env[url_key]
        self.bootstrap = self.url.split("://", 1)[1].split("?")[0]
        self.admin = KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","), request_timeout_ms=30000)
        self._producer: Any = None
        self.replication = min(3, len(self.bootstrap.split(",")))

    # --- BackendDriver -----------------------------------------------------

    def unique(self, prefix: str = "q") -> str:
        return unique_name(prefix)

    def make_queue(self, name: str, messages: list[Message]) -> None:
        self.create_topic(name, 1)
        self.produce(name, [(m.key, m.body, [(str(k), header_bytes(v)) for k, v in m.pairs()]) for m in messages])

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        self.create_topic(source, 1)
        self.create_topic(dlq, 1)
        self.produce(dlq, [(None, body, spring_headers(source, 0, i)) for i, body in enumerate(bodies)])

    def contents(self, name: str) -> list[bytes]:
        return [record.value or b"" for record in self.records(name)]

    def messages(self, name: str) -> list[Message]:
        found = []
        for record in self.records(name):
            pairs = tuple((key, (value or b"").decode("utf-8", "replace")) for key, value in record.headers or [])
            found.append(Message(queue=name, position=f"{record.partition}:{record.offset}", body=record.value or b"",
                                 key=record.key, headers=dict(pairs), header_pairs=pairs,
                                 partition=record.partition, offset=record.offset))
        return found

    def make_limited_queue(self, name: str, bodies: list[bytes], limit: int) -> str:
        raise NotImplementedError("Kafka counts no reads")

    def delete(self, name: str) -> None:
        try:
            self.admin.delete_topics([name])
        except UnknownTopicOrPartitionError:
            pass

    def bad_password_url(self) -> str:
        return f"kafka://qctl:wrong-password@{self.bootstrap}?sasl_mechanism=PLAIN"

    def unreachable_url(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return f"kafka://127.0.0.1:{port}"

    # --- Kafka specifics ---------------------------------------------------

    def create_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.admin.create_topics({name: {"num_partitions": partitions, "replication_factor": self.replication,
                                                 "configs": configs or {}}}, wait_for_metadata=True)
                return
            except (UnknownBrokerIdError, NodeNotReadyError):
                # A cluster that has just started: kafka-python knows its controller's id before its metadata
                # lists that broker, and fails before sending anything.  Ask again with fresh metadata.
                if time.monotonic() > deadline:
                    raise
                self.admin.close()
                self.admin = KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","), request_timeout_ms=30000)
                time.sleep(1)

    @property
    def producer(self) -> Any:
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap.split(","), acks="all", linger_ms=5)
        return self._producer

    def produce(self, topic: str, records: Iterable[Record], partition: int | None = None) -> None:
        for key, value, headers in records:
            self.producer.send(topic, key=key, value=value, headers=list(headers), partition=partition)
        self.producer.flush(timeout=60)

    def bulk_produce(self, topic: str, count: int, headers: Sequence[tuple[str, str]] = (), prefix: str = "m") -> None:
        """``count`` records keyed ``k<i>`` with body ``<prefix>-<i>``, fast, through kcat."""
        lines = "".join(f"k{i}\t{prefix}-{i}\n" for i in range(count)).encode()
        command = ["kcat", "-P", "-b", self.bootstrap, "-t", topic, "-K", "\t", "-X", "linger.ms=20"]
        for name, value in headers:
            command += ["-H", f"{name}={value}"]
        subprocess.run(command, input=lines, check=True, timeout=300)

    def partitions(self, topic: str) -> list[TopicPartition]:
        described = self.admin.describe_topics([topic])[0]
        return [TopicPartition(topic, p["partition_index"]) for p in described["partitions"]]

    def offsets(self, topic: str) -> tuple[dict[int, int], dict[int, int]]:
        """(start offsets, end offsets) by partition."""
        tps = self.partitions(topic)
        starts = self.admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
        ends = self.admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
        return ({tp.partition: o.offset for tp, o in starts.items()},
                {tp.partition: o.offset for tp, o in ends.items()})

    def records(self, topic: str) -> list[Any]:
        """Every record between start and end offsets, partition by partition, in offset order."""
        starts, ends = self.offsets(topic)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap.split(","), group_id=None,
                                 enable_auto_commit=False, max_poll_records=10000)
        found: list[Any] = []
        try:
            for partition in sorted(starts):
                if ends[partition] <= starts[partition]:
                    continue
                tp = TopicPartition(topic, partition)
                consumer.assign([tp])
                consumer.seek(tp, starts[partition])
                deadline = time.monotonic() + 60
                while consumer.position(tp) < ends[partition] and time.monotonic() < deadline:
                    for batch in consumer.poll(timeout_ms=500).values():
                        found.extend(r for r in batch if r.offset < ends[partition])
        finally:
            consumer.close(autocommit=False)
        return found

    def groups(self) -> set[str]:
        return {group["group_id"] for group in self.admin.list_groups()}

    def committed(self, group: str, topic: str) -> dict[int, int]:
        offsets = self.admin.list_group_offsets({group: None}).get(group, {})
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}

    def commit(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError
        from kafka.structs import OffsetAndMetadata

        wanted = {tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()}
        for _ in range(60):  # a new cluster creates __consumer_offsets on the first group: retry a while
            try:
                self.admin.alter_group_offsets(group, wanted)
                return
            except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                time.sleep(0.5)
        self.admin.alter_group_offsets(group, wanted)

    def bulk_keyed(self, topic: str, lines: Iterable[tuple[str, str]], headers: Sequence[tuple[str, str]] = ()) -> None:
        """Produce (key, body) text pairs fast through kcat (librdkafka partitions them by key)."""
        data = "".join(f"{key}\t{body}\n" for key, body in lines).encode()
        command = ["kcat", "-P", "-b", self.bootstrap, "-t", topic, "-K", "\t", "-X", "linger.ms=20"]
        for name, value in headers:
            command += ["-H", f"{name}={value}"]
        subprocess.run(command, input=data, check=True, timeout=300)

    def bulk_records(self, topic: str) -> list[tuple[bytes, bytes, int, int]]:
        """(key, body, partition, offset) of every record in ``topic``, through kcat; stops at the end offsets."""
        proc = subprocess.run(["kcat", "-C", "-b", self.bootstrap, "-t", topic, "-e", "-q", "-f", "%k %s %p %o\n"],
                              capture_output=True, check=True, timeout=300)
        found = []
        for line in proc.stdout.splitlines():
            key, body, partition, offset = line.split(b" ")
            found.append((key, body, int(partition), int(offset)))
        return found

    def bulk_bodies(self, topic: str) -> list[bytes]:
        """Every body in ``topic`` (any order), fast, through kcat; stops at the end offsets."""
        proc = subprocess.run(["kcat", "-C", "-b", self.bootstrap, "-t", topic, "-e", "-q", "-f", "%s\n"],
                              capture_output=True, check=True, timeout=300)
        return proc.stdout.splitlines()
