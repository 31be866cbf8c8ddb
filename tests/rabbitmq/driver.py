"""Test-side access to the real RabbitMQ node, with pika and the management API, never qctl."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel

from qctl.codec import header_bytes
from qctl.models import Message
from qctl.testing.driver import Capabilities, unique_name

PERSISTENT = pika.DeliveryMode.Persistent
PROPERTY_NAMES = ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id", "reply_to",
                  "expiration", "message_id", "timestamp", "type", "user_id", "app_id")


class RabbitMQDriver:
    capabilities = Capabilities(backend="rabbitmq", queue_type="classic", dlq_suffix=".dlq", carries_headers=True,
                                carries_properties=True, carries_timestamps=True, has_read_limits=True,
                                peek_marks_redelivered=True)

    def __init__(self, env: Mapping[str, str]) -> None:
        self.amqp_url = env["QCTL_TEST_AMQP_URL"]
        self.management_url = env["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"]
        # What an operator passes: the harness's management API is not on the default port.
        self.url = f"{self.amqp_url}?management={self.management_url}"
        self.params = pika.URLParameters(self.amqp_url)
        self.limited: set[str] = set()  # quorum queues with a delivery limit: read them without counting

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A management-API request as the harness's administrator; the decoded JSON (None if empty)."""
        params = pika.URLParameters(self.amqp_url)
        credentials: Any = params.credentials
        auth = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
        request = urllib.request.Request(self.management_url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": "Basic " + auth,
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    @contextmanager
    def policy(self, name: str, pattern: str, definition: Mapping[str, Any], *, priority: int = 0,
               apply_to: str = "queues", operator: bool = False) -> Iterator[None]:
        """A (operator) policy on vhost /, applied through the management API, removed afterwards."""
        kind = "operator-policies" if operator else "policies"
        self.api("PUT", f"/api/{kind}/%2F/{quote(name, safe='')}",
                 {"pattern": pattern, "definition": dict(definition), "priority": priority, "apply-to": apply_to})
        try:
            yield
        finally:
            self.api("DELETE", f"/api/{kind}/%2F/{quote(name, safe='')}")

    @contextmanager
    def user(self, name: str, password: str, tags: str) -> Iterator[str]:
        """A user with full permissions on / and the given tags; yields its AMQP URL (with ?management=)."""
        self.api("PUT", f"/api/users/{quote(name, safe='')}", {"password": password, "tags": tags})
        self.api("PUT", f"/api/permissions/%2F/{quote(name, safe='')}",
                 {"configure": ".*", "write": ".*", "read": ".*"})
        try:
            parts = urlsplit(self.url)
            host = parts.netloc.rsplit("@", 1)[-1]
            yield urlunsplit(parts._replace(netloc=f"{quote(name, safe='')}:{quote(password, safe='')}@{host}"))
        finally:
            self.api("DELETE", f"/api/users/{quote(name, safe='')}")

    def unique(self, prefix: str = "q") -> str:
        return unique_name(prefix)

    @contextmanager
    def channel(self) -> Iterator[BlockingChannel]:
        connection = pika.BlockingConnection(self.params)
        try:
            yield connection.channel()
        finally:
            connection.close()

    def declare(self, name: str, **arguments: Any) -> None:
        with self.channel() as channel:
            channel.queue_declare(name, durable=True, arguments=arguments or None)

    def publish(self, name: str, bodies: list[bytes], properties: pika.BasicProperties | None = None) -> None:
        with self.channel() as channel:
            channel.confirm_delivery()
            for body in bodies:
                channel.basic_publish("", name, body, properties or pika.BasicProperties(delivery_mode=PERSISTENT))

    def make_queue(self, name: str, messages: list[Message]) -> None:
        self.declare(name)
        with self.channel() as channel:
            channel.confirm_delivery()
            for message in messages:
                channel.basic_publish("", name, message.body, _properties(message))

    def make_limited_queue(self, name: str, bodies: list[bytes], limit: int) -> str:
        """A quorum queue with x-delivery-limit and no DLX: a message returned more often is dropped."""
        self.declare(name, **{"x-queue-type": "quorum", "x-delivery-limit": limit})
        self.limited.add(name)
        self.publish(name, bodies)
        self.wait_depth(name, len(bodies))
        return self.url

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        """``source`` dead-letters into ``dlq``; a consumer rejects every message, so x-death is the broker's."""
        self.declare(dlq)
        self.declare(source, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
        self.publish(source, bodies)
        with self.channel() as channel:
            for _ in bodies:
                method, _props, _body = channel.basic_get(source)
                assert method is not None
                channel.basic_reject(method.delivery_tag, requeue=False)
        self.wait_depth(dlq, len(bodies))

    def taken(self, name: str) -> list[tuple[Any, pika.BasicProperties, bytes]]:
        """Every message in ``name``, taken unacked and returned in place (order kept).

        A queue with a delivery limit is read by copying each message to its tail and acking the
        original instead, so that reading it counts no delivery."""
        taken = []
        with self.channel() as channel:
            while True:
                method, properties, body = channel.basic_get(name)
                if method is None:
                    break
                taken.append((method, properties, body))
            if name in self.limited:
                channel.confirm_delivery()
                for method, properties, body in taken:
                    channel.basic_publish("", name, body, properties)
                    channel.basic_ack(method.delivery_tag)
        # Closing the connection returns them in place (a nack would send quorum messages to the back).
        return taken

    def messages(self, name: str) -> list[Message]:
        found = []
        for position, (method, props, body) in enumerate(self.taken(name)):
            headers = {key: _plain(value) for key, value in (props.headers or {}).items()}
            properties = {key: getattr(props, key) for key in PROPERTY_NAMES if getattr(props, key) is not None}
            found.append(Message(queue=name, position=str(position), body=body, headers=headers,
                                 header_pairs=tuple(headers.items()), properties=properties,
                                 redelivered=method.redelivered))
        return found

    def contents(self, name: str) -> list[bytes]:
        return [body for _m, _p, body in self.taken(name)]

    def depth(self, name: str) -> int:
        with self.channel() as channel:
            return int(channel.queue_declare(name, passive=True).method.message_count)

    def wait_depth(self, name: str, expected: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.depth(name) != expected and time.monotonic() < deadline:
            time.sleep(0.05)

    def delete(self, name: str) -> None:
        with self.channel() as channel:
            channel.queue_delete(name)

    def bad_password_url(self) -> str:
        return self.url.replace(":qctl-secret@", ":wrong-password@")

    def unreachable_url(self) -> str:
        return "amqp://qctl:qctl-secret@127.0.0.1:1/%2F"


def _properties(message: Message) -> pika.BasicProperties:
    values = {key: value for key, value in message.properties.items() if key in PROPERTY_NAMES}
    values.setdefault("delivery_mode", PERSISTENT)
    headers = {name: (value if isinstance(value, (int, str)) else header_bytes(value))
               for name, value in message.pairs()}
    return pika.BasicProperties(headers=headers or None, **values)


def _plain(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
