"""Apache Kafka (>= 3.x, KRaft or ZooKeeper): admin questions and records alike through librdkafka.

Features
    stats: depth Σ(end − start), lag per consumer group (idle groups included),
    members assigned its partitions, dead-letter topics by convention, oldest
    record age; batched per broker (committed offsets: one request per group,
    all in flight at once).
    peek: assign + seek with no group (never subscribes, commits or creates a
    group); ``--partition``, ``--from``, ``--since``, ``--group``.
    purge: DeleteRecords up to the end offsets read at the start.
    The engine's primitives: a :class:`~.reader.KafkaReader` reads a range per
    partition and commits a progress group past what was settled (redrive,
    move: resumable) or deletes up to it (purge --backup); a
    :class:`~.destination.KafkaDestination` produces with acks=all and
    idempotence, partitioned by key with the Java clients' murmur2, every
    header pair kept.  Every request goes through confluent-kafka (librdkafka).

URL format
    ``kafka://host:port[,host:port...]`` (PLAINTEXT), ``kafka+ssl://...`` (SSL);
    SASL with ``kafka://user:password@host:port?sasl_mechanism=PLAIN`` (also
    ``SCRAM-SHA-256``, ``SCRAM-SHA-512``; PLAIN when userinfo is given without
    one), over TLS with ``kafka+ssl://``.  The default port is 9092.

Options
    ``--timeout``: bootstrap, every request, and the longest wait without
    progress while reading; profile TLS files (``ca_file``, ``cert_file``,
    ``key_file``, ``verify``) for ``kafka+ssl``; ``dead_letter`` naming rules;
    ``--include-internal`` shows ``__consumer_offsets`` and other ``__`` topics;
    ``--group`` names the progress group of a redrive or move.
"""

from qctl.adapter import About

ABOUT = About(
    backend="kafka",
    urls=(
        ("kafka://host:port[,host:port...], kafka+ssl://",
         "Apache Kafka 3.x or later. SASL via user:pass@ plus ?sasl_mechanism=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512. "
         "A redrive or move records its progress in a consumer group (--group) that it never joins."),
    ),
)
