"""What a Kafka URL says about reaching the cluster: servers, TLS, SASL; no driver here.

:mod:`.rdkafka` turns these into librdkafka settings for every client qctl makes
(admin, consumer, producer) and is the one place driver errors become qctl
errors.
"""

from __future__ import annotations

from qctl.errors import UsageError
from qctl.options import ConnectOptions

DEFAULT_PORT = 9092
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
CLIENT_ID = "qctl"


def bootstrap_servers(options: ConnectOptions) -> list[str]:
    return [f"{host}:{port or DEFAULT_PORT}" for host, port in options.url.hosts]


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
