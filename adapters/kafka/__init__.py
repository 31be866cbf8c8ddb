"""Apache Kafka (≥ 3.x, KRaft or ZooKeeper) through kafka-python 3.x.

Features
    stats: depth Σ(end − start), lag per consumer group (idle groups included),
    members, dead-letter topics by convention; all batched per broker.
    peek: assign + seek with no group (never subscribes, commits or creates a
    group); ``--partition``, ``--from``, ``--since``, ``--group``.
    purge: DeleteRecords up to the end offsets read at the start, optional backup.
    redrive: resumable through a consumer group on the DLQ, acks=all and
    idempotent producer, commit after acknowledgement.
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
"""

from qctl.adapters.kafka.adapter import KafkaAdapter

__all__ = ["KafkaAdapter"]
