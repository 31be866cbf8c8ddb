"""The one place where pika, socket and HTTP errors become qctl errors.

Every call into pika or the management API runs inside :func:`translated`, so
no driver exception escapes the adapter, and every message goes through
:func:`qctl.urls.redact` (a broker's reply text may quote a URL).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pika.exceptions as pe
from pika.adapters.utils import connection_workflow

from qctl import tls
from qctl.errors import BrokerUnavailable, QctlError, QueueNotFound, UsageError
from qctl.urls import redact

NOT_FOUND = 404
ACCESS_REFUSED = 403
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
NOT_IMPLEMENTED = 540


class RequestTimeout(Exception):
    """Raised from a pika timer when one request outlives ``--timeout``."""


class ManagementUnavailable(BrokerUnavailable):
    """The management API did not answer (port closed, plugin off, refused credentials)."""


class QueueLocked(UsageError):
    """RESOURCE_LOCKED: an exclusive queue of another connection (even a passive declare is refused)."""


def channel_error(exc: pe.ChannelClosedByBroker, what: str) -> QctlError:
    text = redact(str(exc.reply_text))
    if exc.reply_code == NOT_FOUND:
        return QueueNotFound(f"{what}: {text}")
    if exc.reply_code == ACCESS_REFUSED:
        return BrokerUnavailable(f"{what}: access refused: {text}",
                                 hint="check the user's permissions on this vhost")
    if exc.reply_code == RESOURCE_LOCKED:
        return QueueLocked(f"{what}: the broker refused: {text}")
    return UsageError(f"{what}: the broker refused: {text}")


def connection_error(exc: BaseException, where: str) -> QctlError:
    if isinstance(exc, (pe.ProbableAuthenticationError, pe.AuthenticationError)):
        return BrokerUnavailable(f"authentication to {where} failed", hint="check the user name and password")
    if isinstance(exc, pe.ProbableAccessDeniedError):
        return BrokerUnavailable(f"access to the vhost of {where} was denied",
                                 hint="check the vhost in the URL (%2F is '/') and the user's permissions")
    if isinstance(exc, pe.ConnectionClosedByBroker) and exc.reply_code == ACCESS_REFUSED:
        return BrokerUnavailable(f"authentication to {where} failed: {redact(exc.reply_text)}",
                                 hint="check the user name and password")
    if isinstance(exc, connection_workflow.AMQPConnectorStackTimeout):
        return BrokerUnavailable(f"RabbitMQ at {where} accepted the connection but did not complete the AMQP "
                                 f"handshake in time", hint="is that port really AMQP, and the broker responsive? "
                                                            "(--timeout)")
    detail = redact(" ".join(str(exc).split())) or type(exc).__name__
    hint = tls.explain(detail) or "is the broker running and the port right (AMQP default 5672)?"
    return BrokerUnavailable(f"cannot reach RabbitMQ at {where}: {detail}", hint=hint)


@contextmanager
def translated(where: str, what: str = "request") -> Iterator[None]:
    """Turn any pika/socket error raised inside the block into a qctl error."""
    try:
        yield
    except QctlError:
        raise
    except RequestTimeout:
        raise BrokerUnavailable(f"{what} on {where} timed out", hint="raise --timeout") from None
    except pe.ChannelClosedByBroker as exc:
        raise channel_error(exc, what) from None
    except pe.UnroutableError as exc:
        raise UsageError(f"{what}: message unroutable ({len(exc.messages)} returned)") from None
    except (TimeoutError, pe.AMQPError, connection_workflow.AMQPConnectorException, OSError) as exc:
        raise connection_error(exc, where) from None
