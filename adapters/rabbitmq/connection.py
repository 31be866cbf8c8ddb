"""One AMQP connection per command, the channels on it, and the I/O pump.

pika's BlockingConnection has no per-request timeout and its confirm mode
waits for one broker round trip per publish.  So the hot paths (redrive,
purge --backup, restore) work on the underlying asynchronous channel
(through :mod:`.compat`, the one module that touches pika's internals) and
drive I/O here with :meth:`Session.pump`;
synchronous requests (passive declares, purge) run under :meth:`Session.deadline`
so that ``--timeout`` bounds every request, not only the connect.

pika writes every frame with its own ``send()``: a publish is three frames, so
three syscalls and, with TCP_NODELAY, three segments the broker reads one by
one.  :func:`.compat.coalesce_writes` joins whatever is queued when the socket becomes
writable into one ``send()``; on a 100,000-message redrive that took the
client's system time from 0.4 s to under 0.1 s per 50,000 messages and the
broker's CPU by about 15% (bench/results/rabbitmq.md).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from qctl import tls
from qctl.adapters.rabbitmq import compat
from qctl.adapters.rabbitmq.errors import NOT_FOUND, QueueLocked, RequestTimeout, channel_error, translated
from qctl.errors import BrokerUnavailable, QueueNotFound
from qctl.options import ConnectOptions
from qctl.urls import redact

DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}
JOIN_BYTES = 256 * 1024  # outgoing frames are sent in chunks of about this size


def vhost_of(options: ConnectOptions) -> str:
    """The URL's path is the vhost (already unquoted: ``%2F`` is ``/``); empty means ``/``."""
    return options.url.path or "/"


def tls_context(options: ConnectOptions) -> ssl.SSLContext:
    """The one TLS helper's context: a missing or bad file is exit 2 naming it, before connecting."""
    return tls.context(options.tls)


def parameters(options: ConnectOptions) -> pika.ConnectionParameters:
    url = options.url
    ssl_options = None
    if url.scheme == "amqps":
        ssl_options = pika.SSLOptions(tls_context(options), server_hostname=url.host)
    return pika.ConnectionParameters(
        host=url.host, port=url.port or DEFAULT_PORTS.get(url.scheme, 5672), virtual_host=vhost_of(options),
        credentials=pika.PlainCredentials(url.username or "guest", url.password or "guest"),
        ssl_options=ssl_options, connection_attempts=1, socket_timeout=options.timeout,
        stack_timeout=options.timeout, blocked_connection_timeout=options.timeout,
        client_properties={"connection_name": "qctl"},
    )


@dataclass(frozen=True, slots=True)
class QueueCount:
    """What a passive declare tells: exact ready messages and consumers."""

    ready: int
    consumers: int


class Session:
    """A lazily opened connection; ``where`` (the redacted URL) names it in errors."""

    def __init__(self, options: ConnectOptions) -> None:
        self.options = options
        self.where = redact(str(options.url))
        self._connection: BlockingConnection | None = None
        self._control: BlockingChannel | None = None

    @property
    def connection(self) -> BlockingConnection:
        if self._connection is None or self._connection.is_closed:
            with translated(self.where, "connect"):
                self._connection = BlockingConnection(parameters(self.options))
            compat.coalesce_writes(self._connection, JOIN_BYTES)
        return self._connection

    def server_major(self) -> int | None:
        """The broker's major version from its AMQP handshake (None when it does not say)."""
        server: Any = compat.connection_impl(self.connection).server_properties or {}
        version = server.get("version")
        text = version.decode() if isinstance(version, bytes) else str(version or "")
        major = text.split(".", 1)[0]
        return int(major) if major.isdigit() else None

    def channel(self) -> BlockingChannel:
        with translated(self.where, "open channel"), self.deadline():
            return self.connection.channel()

    def _control_channel(self) -> BlockingChannel:
        if self._control is None or self._control.is_closed:
            self._control = self.channel()
        return self._control

    @contextmanager
    def deadline(self, seconds: float | None = None) -> Iterator[None]:
        """Abort a blocking request that takes longer than ``--timeout``."""
        connection = self._connection
        if connection is None or connection.is_closed:
            yield
            return

        def expire() -> None:
            raise RequestTimeout()

        handle = compat.call_later(connection, seconds or self.options.timeout, expire)
        try:
            yield
        finally:
            compat.remove_timeout(connection, handle)

    def passive(self, queue: str) -> QueueCount:
        """Exact ready count and consumers of ``queue``; QueueNotFound if it does not exist."""
        with translated(self.where, f"queue {queue!r}"):
            channel = self._control_channel()
            try:
                with self.deadline():
                    ok = channel.queue_declare(queue, passive=True)
            except pe.ChannelClosedByBroker as exc:
                self._control = None  # the broker closed it; the next call opens another
                if exc.reply_code == NOT_FOUND:
                    raise QueueNotFound(f"queue {queue!r} not found in vhost {vhost_of(self.options)!r}",
                                        hint="list queues with 'qctl stats'") from None
                raise channel_error(exc, f"queue {queue!r}") from None
        return QueueCount(ready=ok.method.message_count, consumers=ok.method.consumer_count)

    def passive_or_missing(self, queue: str) -> bool:
        """A passive declare that only says whether ``queue`` exists (one round trip)."""
        try:
            self.passive(queue)
        except QueueNotFound:
            return False
        return True

    def exists(self, queue: str) -> bool:
        try:
            self.passive(queue)
        except QueueNotFound:
            return False
        except QueueLocked:
            return True  # another connection's exclusive queue: it exists (and takes publishes)
        return True

    def exchange_exists(self, exchange: str) -> bool:
        if exchange == "":
            return True
        with translated(self.where, f"exchange {exchange!r}"):
            channel = self._control_channel()
            try:
                with self.deadline():
                    channel.exchange_declare(exchange, passive=True)
            except pe.ChannelClosedByBroker as exc:
                self._control = None
                if exc.reply_code == NOT_FOUND:
                    return False
                raise channel_error(exc, f"exchange {exchange!r}") from None
        return True

    def pump(self, ready: Callable[[], bool], max_wait: float) -> None:
        """Process I/O (deliveries, confirms, outgoing frames) until ``ready()`` or ``max_wait`` passes."""
        connection = self.connection
        expired: list[bool] = []
        handle = compat.call_later(connection, max_wait, lambda: expired.append(True))
        try:
            with translated(self.where):
                compat.process_io(connection, lambda: bool(expired), ready)
        finally:
            if not expired:
                compat.remove_timeout(connection, handle)

    def poll_now(self) -> None:
        """Process whatever I/O is ready (confirms, deliveries), without waiting."""
        with translated(self.where):
            self.connection.process_data_events(time_limit=0)

    def close(self) -> None:
        connection, self._connection, self._control = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pe.AMQPError, OSError):
                pass  # closing is best effort; unacked messages return to their queues anyway


def require_open(channel: BlockingChannel, what: str) -> None:
    """A channel the broker closed (e.g. a publish to a deleted exchange) ends the run with its reason."""
    if channel.is_closed:
        reason: Any = compat.closing_reason(channel)
        if isinstance(reason, pe.ChannelClosedByBroker):
            raise channel_error(reason, what)
        raise BrokerUnavailable(f"{what}: channel closed unexpectedly")
