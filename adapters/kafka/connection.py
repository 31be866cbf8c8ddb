"""Kafka clients built from qctl's ConnectOptions, and the one place driver errors become qctl errors.

Every kafka-python call the adapter makes runs inside :func:`translated`, so no
``kafka.errors`` exception escapes: unreachable/auth/timeout -> BrokerUnavailable
(exit 3), unknown topic -> QueueNotFound (exit 4), policy/config refusals ->
UsageError (exit 2).  Timeouts come from ``options.timeout`` for bootstrap and
every request, so an unreachable bootstrap fails within ``--timeout``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qctl import tls
from qctl.errors import BrokerUnavailable, QctlError, QueueNotFound, UsageError
from qctl.options import ConnectOptions
from qctl.urls import redact

DEFAULT_PORT = 9092
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
CLIENT_ID = "qctl"


def bootstrap_servers(options: ConnectOptions) -> list[str]:
    return [f"{host}:{port or DEFAULT_PORT}" for host, port in options.url.hosts]


def common_config(options: ConnectOptions) -> dict[str, Any]:
    """Settings shared by admin, consumer and producer: servers, security, timeouts."""
    timeout_ms = max(100, int(options.timeout * 1000))
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(options),
        "client_id": CLIENT_ID,
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
        # Fail fast on a dead broker instead of kafka-python's 30 s reconnect backoff ceiling.
        "reconnect_backoff_max_ms": 1000,
    }
    config.update(_security(options))
    return config


def sasl_settings(options: ConnectOptions) -> tuple[bool, str | None, str, str]:
    """(TLS?, SASL mechanism or None, user, password) from the URL; UsageError for an unknown mechanism."""
    url = options.url
    mechanism = url.query.get("sasl_mechanism")
    if mechanism is None and url.username is not None:
        mechanism = "PLAIN"  # userinfo without a mechanism: the common SASL/PLAIN setup
    if mechanism is not None:
        mechanism = mechanism.upper()
        if mechanism not in SASL_MECHANISMS:
            raise UsageError(f"unsupported sasl_mechanism {mechanism!r}",
                             hint="use one of " + ", ".join(SASL_MECHANISMS))
    return url.scheme == "kafka+ssl", mechanism, url.username or "", url.password or ""


def _security(options: ConnectOptions) -> dict[str, Any]:
    tls, mechanism, username, password = sasl_settings(options)
    config: dict[str, Any] = {}
    if mechanism is not None:
        config.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
        config["security_protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    else:
        config["security_protocol"] = "SSL" if tls else "PLAINTEXT"
    if tls:
        config["ssl_context"] = _ssl_context(options)
    return config


def _ssl_context(options: ConnectOptions) -> ssl.SSLContext:
    """The one TLS helper's context: a missing or bad file is exit 2 naming it."""
    return tls.context(options.tls)


def _classify(exc: Exception, what: str) -> QctlError:
    from kafka import errors

    text = redact(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, errors.UnknownTopicOrPartitionError):
        return QueueNotFound(f"{what}: topic not found")
    if isinstance(exc, (errors.PolicyViolationError, errors.InvalidConfigurationError,
                        errors.InvalidTopicError, errors.InvalidGroupIdError)):
        return UsageError(text)
    if isinstance(exc, (errors.AuthorizationError, errors.SaslAuthenticationFailedError,
                        errors.UnsupportedSaslMechanismError, errors.IllegalSaslStateError)):
        return BrokerUnavailable(text, hint="check the user, password and sasl_mechanism in the URL")
    if isinstance(exc, (errors.RetriableError, errors.KafkaConnectionError, errors.BrokerNotAvailableError,
                        errors.UnrecognizedBrokerVersion, errors.KafkaProtocolError)):
        return BrokerUnavailable(text, hint="is the broker running and the URL right? (--timeout raises the wait)")
    return QctlError(text)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run a block of kafka-python calls; re-raise its errors as qctl errors saying ``what`` failed."""
    from kafka import errors

    try:
        yield
    except errors.KafkaError as exc:
        raise _classify(exc, what) from None
    except (OSError, ssl.SSLError) as exc:
        raise BrokerUnavailable(redact(f"{what}: {exc}")) from None


def admin_client(options: ConnectOptions) -> Any:
    from kafka import KafkaAdminClient

    with translated(f"cannot connect to {options.url}"):
        return KafkaAdminClient(**common_config(options))


def reader(options: ConnectOptions, group_id: str | None = None, batch: int = 2000,
           partition_fetch_bytes: int = 8 * 1024 * 1024) -> Any:
    """A consumer for assign + seek only: never subscribes, never auto-commits.

    With ``group_id`` None it has no group at all (peek, purge backups); redrive passes
    its progress group so it can commit offsets without ever joining the group.
    ``partition_fetch_bytes`` caps one fetch per partition: a peek of a few records
    asks for little (kafka-python decodes whole responses in Python).
    """
    from kafka import KafkaConsumer

    with translated(f"cannot connect to {options.url}"):
        return KafkaConsumer(**common_config(options), group_id=group_id, enable_auto_commit=False,
                             auto_offset_reset="earliest", allow_auto_create_topics=False,
                             max_poll_records=batch, fetch_max_wait_ms=100,
                             # CRC32C may be pure Python (~9 MB/s); TCP and the broker already check it.
                             check_crcs=False,
                             fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=partition_fetch_bytes)


def metadata_now(client: Any) -> None:
    """Let the client's next Metadata request go at once, not up to 100 ms later.

    kafka-python 3.0 holds every Metadata request back until ``retry_backoff_ms``
    (100 ms; the setting is not passed on to its ClusterMetadata) after the
    previous one, the bootstrap's topic-less request included: so a new client
    waited ~0.1 s before it could learn a topic's partitions or leaders (the
    start-up delay the Java client fixed in KAFKA-4024).  Called just before a
    client first needs a topic's metadata; retries keep their backoff.  A no-op
    if kafka-python's internals differ.
    """
    cluster = getattr(getattr(client, "_manager", None), "cluster", None)
    if isinstance(getattr(cluster, "_last_refresh_ms", None), (int, float)):
        cluster._last_refresh_ms = 0  # type: ignore[union-attr]


def writer(options: ConnectOptions) -> Any:
    """A durable producer: acks=all and idempotent, large batches for throughput.

    kafka-python checksums every batch with CRC32C: in C when the optional
    ``crc32c`` package is installed, else in pure Python (~9 MB/s).  With the C
    checksum batches go uncompressed (no zlib on the client, no decompression on
    the broker); without it gzip shrinks each batch before the slow checksum
    (~1.7x faster than uncompressed there).  1 MB batches with 50 ms linger cut
    the per-record cost ~10% against 512 KB / 20 ms (measured in redrive).
    """
    from kafka import KafkaProducer

    timeout_ms = max(100, int(options.timeout * 1000))
    with translated(f"cannot connect to {options.url}"):
        return KafkaProducer(**common_config(options), acks="all", enable_idempotence=True,
                             allow_auto_create_topics=False, max_block_ms=timeout_ms,
                             batch_size=1024 * 1024, linger_ms=50, compression_type=compression(),
                             max_request_size=8 * 1024 * 1024)


def compression() -> str | None:
    """None when kafka-python checksums in C (it found the ``crc32c`` package), else gzip (see :func:`writer`)."""
    from kafka.record import util

    return None if getattr(util, "crc32c_c", None) is not None else "gzip"
