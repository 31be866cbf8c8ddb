"""Apache Kafka (≥ 3.x, KRaft or ZooKeeper) through kafka-python 3.x.

Features
    stats: depth Σ(end − start), lag per consumer group (idle groups included),
    members, dead-letter topics by convention; all batched per broker.
    peek: assign + seek with no group (never subscribes, commits or creates a
    group); ``--partition``, ``--from``, ``--since``, ``--group``.
    purge: DeleteRecords up to the end offsets read at the start, optional backup.
    redrive: resumable through a consumer group on the DLQ, acks=all and
    idempotent producer, commit after acknowledgement.  Records are moved by
    confluent-kafka (librdkafka) when that optional package is installed
    (~130k records/s), else by kafka-python split over one worker process per
    CPU (~25-40k records/s on 2 CPUs; ~20k in one process).
    publish (restore): acks=all, partitioned by key.

URL format
    ``kafka://host:port[,host:port...]`` (PLAINTEXT), ``kafka+ssl://...`` (SSL);
    SASL with ``kafka://user:password@host:port?sasl_mechanism=PLAIN`` (also
    ``SCRAM-SHA-256``, ``SCRAM-SHA-512``; PLAIN when userinfo is given without
    one), over TLS with ``kafka+ssl://``.  The default port is 9092.

Options
    ``--timeout``: bootstrap, every request, and the longest wait without
    progress while reading; profile TLS files (``ca_file``, ``cert_file``,
    ``key_file``, ``verify``) for ``kafka+ssl``; ``dead_letter`` naming rules;
    ``--include-internal`` shows ``__consumer_offsets`` and other ``__`` topics.

Environment
    ``QCTL_KAFKA_ENGINE=auto|kafka-python|confluent-kafka`` picks redrive's
    record mover (auto: confluent-kafka when installed);
    ``QCTL_KAFKA_REDRIVE_WORKERS=N`` caps kafka-python's redrive worker
    processes (1: none).

Optional packages
    ``confluent-kafka`` (redrive ~5x faster); ``crc32c`` (kafka-python
    checksums record batches in C instead of pure Python: its producer then
    sends uncompressed instead of gzip, ~15% less CPU a record).
"""

from qctl.adapters.kafka.adapter import KafkaAdapter

__all__ = ["KafkaAdapter"]
