"""The one place where paho-mqtt's failures become qctl errors.

paho reports three kinds of trouble: exceptions from ``connect()`` (the socket
and the TLS handshake), a refusing CONNACK (a reason code), and a connection
that drops later.  Each becomes a :class:`~qctl.errors.BrokerUnavailable`
(exit 3) with one line that says what happened; a local TLS file that cannot
be read was already exit 2 in :mod:`qctl.tls`.  Every text goes through
:func:`qctl.urls.redact`, so no password reaches the terminal.
"""

from __future__ import annotations

import socket
import ssl

from qctl.errors import BrokerUnavailable, QctlError
from qctl.urls import redact

AUTH_HINT = "check the user and password in the URL or profile"
REACH_HINT = "is the broker running and reachable? (--timeout)"

# CONNACK reason codes (MQTT 5; 3.1.1 return codes are mapped onto these by the connection).
CONNACK_REASONS = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x83: "implementation specific error", 0x84: "unsupported protocol version", 0x85: "client identifier not valid",
    0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy",
    0x8A: "banned", 0x8C: "bad authentication method", 0x90: "topic name invalid", 0x95: "packet too large",
    0x97: "quota exceeded", 0x99: "payload format invalid", 0x9A: "retain not supported", 0x9B: "QoS not supported",
    0x9C: "use another server", 0x9D: "server moved", 0x9F: "connection rate exceeded",
}


CLOSED_BEFORE_CONNACK = -1  # the broker closed the connection without a CONNACK


def connack_error(reason: int, where: str, *, v5: bool, pinned: bool = False) -> QctlError:
    if reason == CLOSED_BEFORE_CONNACK:
        return BrokerUnavailable(f"{where}: the broker closed the connection without answering the CONNECT",
                                 hint="is this a TLS port? (mqtts:// is TLS, mqtt:// plain TCP); check the port")
    text = CONNACK_REASONS.get(reason, f"reason code 0x{reason:02X}")
    if reason in (0x86, 0x87, 0x8C):
        return BrokerUnavailable(f"{where}: authentication failed: the broker says {text}", hint=AUTH_HINT)
    if reason == 0x85:
        return BrokerUnavailable(f"{where}: the broker refused the client id: {text}",
                                 hint="some brokers limit client ids (length, characters, a prefix)")
    if reason == 0x84 and pinned:
        return BrokerUnavailable(f"{where}: the broker does not speak MQTT {'5' if v5 else '3.1.1'}",
                                 hint="leave out ?protocol= and qctl tries both")
    if reason == 0x84:
        return BrokerUnavailable(f"{where}: the broker speaks neither MQTT 5 nor 3.1.1",
                                 hint="qctl needs an MQTT 3.1.1 or 5 broker")
    version = "MQTT 5" if v5 else "MQTT 3.1.1"
    return BrokerUnavailable(f"{where}: the broker refused the connection ({version}): {text}", hint=REACH_HINT)


def socket_error(exc: BaseException, where: str, *, tls: bool) -> QctlError:
    """What a failing ``connect()`` means: name resolution, refusal, timeout, or the TLS handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or str(exc)
        return BrokerUnavailable(f"{where}: TLS: the broker's certificate cannot be trusted: {redact(detail)}",
                                 hint="check ca_file (the CA that signed the broker's certificate) and the host name")
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or str(exc)
        return BrokerUnavailable(f"{where}: TLS handshake failed: {redact(str(reason)).lower().replace('_', ' ')}",
                                 hint="is this a TLS port (mqtts://)? check ca_file, cert_file and key_file")
    if isinstance(exc, socket.gaierror):
        return BrokerUnavailable(f"{where}: cannot resolve the host: {exc.strerror or exc}", hint=REACH_HINT)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return BrokerUnavailable(f"{where}: timed out connecting", hint=REACH_HINT)
    if isinstance(exc, ConnectionRefusedError):
        return BrokerUnavailable(f"{where}: connection refused", hint=REACH_HINT)
    if tls and isinstance(exc, (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)):
        return BrokerUnavailable(f"{where}: the connection closed during the TLS handshake",
                                 hint="is this the broker's TLS port? (mqtt:// is plain TCP, mqtts:// is TLS)")
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        return BrokerUnavailable(f"{where}: {redact(text)}", hint=REACH_HINT)
    return BrokerUnavailable(f"{where}: {type(exc).__name__}: {redact(str(exc))}", hint=REACH_HINT)


def lost_error(reason: str, where: str) -> QctlError:
    text = redact(reason) or "connection closed"
    if "not authori" in text.lower():
        return BrokerUnavailable(f"{where}: the broker closed the connection: {text}",
                                 hint="the user may lack the permission (ACL) for a topic qctl used")
    return BrokerUnavailable(f"{where}: the connection to the broker was lost: {text}", hint=REACH_HINT)
