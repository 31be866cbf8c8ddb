"""confluent-kafka (librdkafka, C): the one Kafka client -- admin questions, peek, passes and publishing.

kafka-python spent ~35-40 us of CPU on each record it read and produced again,
librdkafka ~6 us (bench/results/kafka.md), and importing kafka-python's admin
client alone took ~185 ms against ~75 ms for confluent_kafka, so every request
qctl makes goes through librdkafka: records (consumer, producer) and the admin
questions (:mod:`.cluster`: metadata, offsets, groups, configs, DeleteRecords).

Settings come from the URL (:mod:`.connection`): servers, security, SASL, TLS
files (checked by the one TLS helper first, so a missing file is exit 2 naming
it), timeouts.  No client may ask a broker to create a topic
(``allow.auto.create.topics`` defaults to true for producers and admin clients).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qctl.adapters.kafka.connection import CLIENT_ID, bootstrap_servers, sasl_settings
from qctl.errors import BrokerUnavailable, QueueNotFound, UsageError
from qctl.options import ConnectOptions
from qctl.urls import redact

PEEK_FETCH_BYTES = 1024 * 1024  # librdkafka's default; a bigger batch than that is still returned whole
MAX_BATCH_BYTES = 1024 * 1024  # a producer's batch.size where the topic allows more
PRODUCER_MARGIN = 1024  # message.max.bytes over the topic's limit: librdkafka counts framing its own way


def library() -> Any:
    import confluent_kafka

    return confluent_kafka


def settings(options: ConnectOptions) -> dict[str, Any]:
    """librdkafka settings shared by every client: servers, security, timeouts, never auto-creating topics."""
    timeout_ms = max(100, int(options.timeout * 1000))
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(bootstrap_servers(options)),
        "client.id": CLIENT_ID,
        "socket.timeout.ms": max(timeout_ms, 10),
        "socket.connection.setup.timeout.ms": max(timeout_ms, 1000),
        "reconnect.backoff.max.ms": 1000,
        "allow.auto.create.topics": False,
        "log_level": 0,  # librdkafka logs to stderr by itself; its errors reach us as exceptions instead
    }
    secure, mechanism, username, password = sasl_settings(options)
    if mechanism is not None:
        config.update({"sasl.mechanism": mechanism, "sasl.username": username, "sasl.password": password})
        config["security.protocol"] = "sasl_ssl" if secure else "sasl_plaintext"
    else:
        config["security.protocol"] = "ssl" if secure else "plaintext"
    if secure:
        from qctl import tls  # imports ssl (~7 ms): only for kafka+ssl

        files = tls.checked(options.tls)
        tls.context(files)  # a file that is not PEM: exit 2 naming it, not librdkafka's message
        config["ssl.ca.location"] = files.ca_file or "probe"
        if files.cert_file:
            config["ssl.certificate.location"] = files.cert_file
            config["ssl.key.location"] = files.key_file or files.cert_file
        if not files.verify:
            config["enable.ssl.certificate.verification"] = False
            config["ssl.endpoint.identification.algorithm"] = "none"
    return config


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run a block of confluent-kafka calls (futures' ``result()`` included); re-raise its errors as qctl errors
    saying ``what`` failed."""
    ck = library()
    try:
        yield
    except ck.KafkaException as exc:
        raise error(exc.args[0] if exc.args else exc, what) from None
    except (BufferError, RuntimeError) as exc:
        raise BrokerUnavailable(redact(f"{what}: {exc}")) from None


def code_of(exc: BaseException) -> Any:
    """The KafkaError code a KafkaException carries (None if it carries none)."""
    error: Any = exc.args[0] if exc.args else None
    return error.code() if hasattr(error, "code") else None


def error(kafka_error: Any, what: str) -> Exception:
    ck = library()
    code = kafka_error.code() if hasattr(kafka_error, "code") else None
    text = redact(f"{what}: {kafka_error.str() if hasattr(kafka_error, 'str') else kafka_error}")
    if code in (ck.KafkaError._UNKNOWN_TOPIC, ck.KafkaError.UNKNOWN_TOPIC_OR_PART):
        return QueueNotFound(f"{what}: topic not found")
    if code in (ck.KafkaError._AUTHENTICATION, ck.KafkaError.SASL_AUTHENTICATION_FAILED,
                ck.KafkaError.TOPIC_AUTHORIZATION_FAILED, ck.KafkaError.GROUP_AUTHORIZATION_FAILED):
        return BrokerUnavailable(text, hint="check the user, password and sasl_mechanism in the URL")
    if code in (ck.KafkaError._INVALID_ARG, ck.KafkaError.INVALID_CONFIG, ck.KafkaError.POLICY_VIOLATION,
                ck.KafkaError.TOPIC_EXCEPTION, ck.KafkaError.INVALID_GROUP_ID):
        return UsageError(text)
    if code == ck.KafkaError.MSG_SIZE_TOO_LARGE:
        return UsageError(text, hint="the record is larger than the topic's max.message.bytes")
    return BrokerUnavailable(text, hint="is the broker running and the URL right? (--timeout raises the wait)")


def admin(options: ConnectOptions) -> Any:
    """An admin client (it connects on its first request, within ``options.timeout``)."""
    from confluent_kafka.admin import AdminClient

    with translated(f"cannot connect to {options.url}"):
        return AdminClient(settings(options))


def consumer(options: ConnectOptions, group: str | None, wanted: int | None = None) -> Any:
    """An assign-only consumer: never subscribes, never auto-commits; ``group`` only for explicit commits.

    librdkafka wants a group id even for assign(); without ``group`` it gets one no broker ever hears
    of, as nothing is ever committed with it.  ``wanted`` (a peek's ``-n``) keeps librdkafka from
    fetching far ahead of what will be shown: it prefetches until ``queued.min.messages`` records wait
    per partition (100,000 by default), and an 8 MB fetch costs the broker ~50-100 ms to read where a
    peek of 10,000 small records needs one of about 1 MB (measured: 10,000 records in ~20 ms instead of
    60-150 ms).  Passes (``wanted`` None) read everything, in big fetches."""
    ck = library()
    fetch: dict[str, Any] = {"fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 8 * 1024 * 1024}
    if wanted is not None:
        fetch = {"fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": PEEK_FETCH_BYTES,
                 "queued.min.messages": max(1, min(wanted, 100_000))}
    with translated(f"cannot connect to {options.url}"):
        return ck.Consumer({
            **settings(options), "group.id": group or "qctl-never-committed", "enable.auto.commit": False,
            "enable.auto.offset.store": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
            "check.crcs": False, **fetch, "fetch.wait.max.ms": 100})


def producer(options: ConnectOptions, on_error: Any, max_bytes: int) -> Any:
    """acks=all, idempotent, partitioned by key with the Java clients' murmur2 (librdkafka's own default
    would pick other partitions than the applications that wrote the topic), for topics whose
    ``max.message.bytes`` is ``max_bytes``.

    librdkafka refuses a record at ``produce()`` by its own ``message.max.bytes`` (1,000,000 by default,
    under the broker's default topic limit of 1,048,588), so it gets the topic's limit plus a margin: a
    record that fits the topic (checked first, exactly, by the destination) is one librdkafka takes.
    ``batch.size`` stays within the limit too: librdkafka fills a batch with several records up to
    ``batch.size``, and the broker refuses a whole batch over the topic's limit (a batch of small
    records on a topic limited to 2 kB was refused)."""
    ck = library()
    budget = max(options.timeout, 30.0)
    with translated(f"cannot connect to {options.url}"):
        return ck.Producer({
            **settings(options), "acks": "all", "enable.idempotence": True, "linger.ms": 20,
            "message.max.bytes": min(max(max_bytes + PRODUCER_MARGIN, 1000), 1_000_000_000),
            "batch.size": max(1, min(MAX_BATCH_BYTES, max_bytes)), "compression.type": "none",
            "partitioner": "murmur2_random", "message.timeout.ms": int(budget * 1000),
            "queue.buffering.max.messages": 200_000, "error_cb": on_error})
