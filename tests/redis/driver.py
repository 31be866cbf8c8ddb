"""Test-side access to real Redis for the contract suite: seed and read queues without qctl.

Lists are consumed from the right (LPUSH + BRPOP), qctl's default, so
"consumption order" is right to left.  :class:`RedisStreamDriver` runs the
same cases on streams, whose entries carry fields (headers).
"""

from __future__ import annotations

import socket
from typing import Any

import redis

from qctl.codec import header_bytes
from qctl.models import Message
from qctl.testing.driver import Capabilities, unique_name
from qctl.urls import parse


class RedisDriver:
    capabilities = Capabilities(backend="redis", queue_type="list", dlq_suffix=":dlq", carries_headers=False,
                                dead_letter_metadata=False, missing_queue_is_empty=True)

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.url = env["QCTL_TEST_REDIS_URL"]
        self.client: redis.Redis = redis.Redis.from_url(self.url)

    def unique(self, prefix: str = "q") -> str:
        return unique_name(prefix)

    def make_queue(self, name: str, messages: list[Message]) -> None:
        self.client.delete(name)
        if messages:
            self.client.lpush(name, *(m.body for m in messages))  # first body ends up rightmost: consumed first

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        self.client.delete(source)  # an empty Redis list does not exist
        self.make_queue(dlq, [Message(queue=dlq, position="", body=body) for body in bodies])

    def messages(self, name: str) -> list[Message]:
        return [Message(queue=name, position=str(i), body=body) for i, body in enumerate(self.contents(name))]

    def contents(self, name: str) -> list[bytes]:
        return contents(self.client, name)

    def delete(self, name: str) -> None:
        self.client.delete(name)

    def bad_password_url(self) -> str:
        url = parse(self.env["QCTL_TEST_REDIS_ACL_URL"])
        return f"redis://{url.username}:wrong-password@{url.host}:{url.port}/0"

    def unreachable_url(self) -> str:
        return f"redis://127.0.0.1:{free_port()}/0"

    def make_limited_queue(self, name: str, bodies: list[bytes], limit: int) -> str:
        raise NotImplementedError("Redis counts no reads")


class RedisStreamDriver(RedisDriver):
    """The same broker with streams as queues: fields are headers, the redrive counter is one of them."""

    capabilities = Capabilities(backend="redis", queue_type="stream", dlq_suffix=":dlq", carries_headers=True,
                                dead_letter_metadata=True, missing_queue_is_empty=True)

    def make_queue(self, name: str, messages: list[Message]) -> None:
        self.client.delete(name)
        for message in messages:
            fields: list[tuple[bytes, bytes]] = [(b"body", message.body)]
            fields += [(str(key).encode(), header_bytes(value)) for key, value in message.pairs()]
            self.client.execute_command("XADD", name, "*", *(part for pair in fields for part in pair))
        if not messages:  # an empty stream must exist to be a stream
            self.client.xadd(name, {b"body": b"x"}, id="1-1")
            self.client.xdel(name, "1-1")

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        self.make_queue(source, [])
        self.client.delete(dlq)
        for body in bodies:
            self.client.xadd(dlq, {b"body": body, b"x-original-queue": source.encode(), b"reason": b"boom"})

    def messages(self, name: str) -> list[Message]:
        found = []
        for entry_id, fields in self.client.xrange(name):
            pairs = tuple((key.decode(), value.decode("utf-8", "replace")) for key, value in fields.items()
                          if key != b"body")
            found.append(Message(queue=name, position=entry_id.decode(), body=fields.get(b"body", b""),
                                 headers=dict(pairs), header_pairs=pairs))
        return found


def contents(client: Any, name: str, list_end: str = "right") -> list[bytes]:
    """Bodies of a list, stream (its ``body``-rule field) or sorted set, in consumption order."""
    kind = client.type(name)
    if kind == b"list":
        items: list[bytes] = client.lrange(name, 0, -1)
        return items[::-1] if list_end == "right" else items
    if kind == b"stream":
        return [_body(fields) for _, fields in client.xrange(name)]
    if kind == b"zset":
        return list(client.zrange(name, 0, -1))
    return []


def _body(fields: dict[bytes, bytes]) -> bytes:
    for name in (b"body", b"data", b"payload", b"message"):
        if name in fields:
            return fields[name]
    return b""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
