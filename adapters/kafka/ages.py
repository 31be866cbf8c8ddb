"""The age of each topic's oldest retained record: the first record of every partition, read in one go.

Kafka has no API for "the timestamp at the log start" (ListOffsets finds
offsets *for* a timestamp, and KIP-734's max timestamp is the newest), so a
librdkafka consumer is assigned every non-empty partition at its start offset
and reads until each has shown one record: librdkafka batches the fetches per
broker, ``max.partition.fetch.bytes`` keeps each partition's answer to one
batch, and the consumer has no group a broker ever hears of (nothing is
committed).  A partition that does not answer in time is left out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from qctl.adapters.kafka import rdkafka
from qctl.adapters.kafka.cluster import Bounds
from qctl.options import ConnectOptions

WAIT_S = 2.0  # at most this long for the first records, whatever --timeout says: stats must stay quick


def oldest_ages(options: ConnectOptions, bounds: Mapping[Any, Bounds], topics: set[str]) -> dict[str, float]:
    """Seconds since the oldest retained record of each of ``topics`` (topics with records only)."""
    wanted = {(tp.topic, tp.partition): bound.start for tp, bound in bounds.items()
              if tp.topic in topics and bound.depth > 0}
    if not wanted:
        return {}
    ck = rdkafka.library()
    consumer = ck.Consumer({**rdkafka.settings(options), "group.id": "qctl-never-committed",
                            "enable.auto.commit": False, "enable.auto.offset.store": False,
                            "max.partition.fetch.bytes": 1024, "fetch.wait.max.ms": 50, "check.crcs": False})
    oldest: dict[str, int] = {}
    try:
        with rdkafka.translated("cannot read the first records"):
            consumer.assign([ck.TopicPartition(topic, partition, start)
                             for (topic, partition), start in wanted.items()])
            deadline = time.monotonic() + min(WAIT_S, options.timeout)
            while wanted and time.monotonic() < deadline:
                for record in consumer.consume(len(wanted), 0.1):
                    where = (record.topic(), record.partition())
                    if record.error() is not None or where not in wanted:
                        continue
                    del wanted[where]
                    kind, millis = record.timestamp()
                    if kind and millis >= 0:
                        oldest[where[0]] = min(oldest.get(where[0], millis), millis)
                    consumer.pause([ck.TopicPartition(*where)])
    finally:
        with rdkafka.translated("cannot close the consumer"):
            consumer.close()
    now = time.time() * 1000
    return {topic: max(0.0, (now - millis) / 1000) for topic, millis in oldest.items()}
