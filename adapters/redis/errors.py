"""The one place where redis-py exceptions become qctl errors.

Every public :class:`~qctl.adapters.redis.adapter.RedisAdapter` method runs
inside :func:`translated`, so no ``redis.exceptions.*`` (nor a socket or TLS
error) reaches the CLI; messages go through :func:`qctl.urls.redact`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from redis import exceptions as rex

from qctl import tls
from qctl.errors import BrokerUnavailable, QctlError, Unsupported, UsageError
from qctl.options import TLSFiles
from qctl.urls import redact

F = TypeVar("F", bound=Callable[..., Any])

# Checked in order: subclasses before their bases (AuthenticationError is a ConnectionError).
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    rex.AuthenticationError, rex.AuthenticationWrongNumberOfArgsError, rex.ConnectionError,
    rex.TimeoutError, rex.BusyLoadingError, rex.ClusterDownError, rex.ClusterError,
    rex.MasterDownError, rex.TryAgainError, rex.SlotNotCoveredError, rex.MaxConnectionsError,
    TimeoutError, ConnectionError, OSError,
)


def to_qctl_error(exc: BaseException, where: str, tls_files: TLSFiles | None = None) -> QctlError:
    """The qctl error (and so the exit code) for a driver exception; ``tls_files`` explain TLS failures."""
    text = redact(str(exc)) or type(exc).__name__
    if isinstance(exc, rex.NoPermissionError):
        return BrokerUnavailable(f"{where}: permission denied: {text}",
                                 hint="the ACL user needs the commands and keys qctl uses")
    if isinstance(exc, (rex.AuthenticationError, rex.AuthenticationWrongNumberOfArgsError)) or (
            isinstance(exc, rex.ResponseError) and text.startswith(("WRONGPASS", "NOAUTH", "invalid password"))):
        return BrokerUnavailable(f"{where}: authentication failed: {text}",
                                 hint="check the user and password in the URL or profile")
    if isinstance(exc, _UNAVAILABLE):
        hint = tls.explain(text, tls_files) or "is the server running and reachable? (--timeout)"
        return BrokerUnavailable(f"{where}: {text}", hint=hint)
    if isinstance(exc, rex.ResponseError) and text.startswith("WRONGTYPE"):
        return Unsupported(f"{where}: a key has the wrong type for this operation: {text}")
    if isinstance(exc, rex.ResponseError):
        return UsageError(f"{where}: Redis refused the request: {text}")
    return BrokerUnavailable(f"{where}: {type(exc).__name__}: {text}")


@contextmanager
def translating(where: str, tls_files: TLSFiles | None = None) -> Iterator[None]:
    try:
        yield
    except QctlError:
        raise
    except (rex.RedisError, OSError) as exc:
        raise to_qctl_error(exc, where, tls_files) from None


def translated(method: F) -> F:
    """Decorate an adapter method so driver errors leave it as qctl errors."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        options = getattr(self, "options", None)
        with translating(self.where, getattr(options, "tls", None)):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
