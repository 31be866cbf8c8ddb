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

from tests.drivers import unique_name

PERSISTENT = pika.DeliveryMode.Persistent


class RabbitMQDriver:
    name = "rabbitmq"
    queue_type = "classic"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.amqp_url = env["QCTL_TEST_AMQP_URL"]
        self.management_url = env["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"]
        # What an operator passes: the harness's management API is not on the default port.
        self.url = f"{self.amqp_url}?management={self.management_url}"
        self.params = pika.URLParameters(self.amqp_url)

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

    def make_queue(self, name: str, bodies: list[bytes]) -> None:
        self.declare(name)
        self.publish(name, bodies)

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

    def messages(self, name: str) -> list[tuple[Any, pika.BasicProperties, bytes]]:
        """Every message in ``name``, taken unacked and returned in place (order kept)."""
        taken = []
        with self.channel() as channel:
            while True:
                method, properties, body = channel.basic_get(name)
                if method is None:
                    break
                taken.append((method, properties, body))
        # Closing the connection returns them in place (a nack would send quorum messages to the back).
        return taken

    def contents(self, name: str) -> list[bytes]:
        return [body for _m, _p, body in self.messages(name)]

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
