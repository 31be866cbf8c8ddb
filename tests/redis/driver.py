"""Test-side access to real Redis for the contract suite: seed and read queues without qctl.

Queues are lists consumed from the right (LPUSH + BRPOP), qctl's default, so
"consumption order" is right to left.
"""

from __future__ import annotations

import socket
from typing import Any

import redis

from qctl.urls import parse
from tests.drivers import unique_name


class RedisDriver:
    name = "redis"
    queue_type = "list"

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.url = env["QCTL_TEST_REDIS_URL"]
        self.client: redis.Redis = redis.Redis.from_url(self.url)

    def unique(self, prefix: str = "q") -> str:
        return unique_name(prefix)

    def make_queue(self, name: str, bodies: list[bytes]) -> None:
        self.client.delete(name)
        if bodies:
            self.client.lpush(name, *bodies)  # first body ends up rightmost: consumed first

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        self.client.delete(source)  # an empty Redis list does not exist
        self.make_queue(dlq, bodies)

    def contents(self, name: str) -> list[bytes]:
        return contents(self.client, name)

    def delete(self, name: str) -> None:
        self.client.delete(name)

    def bad_password_url(self) -> str:
        url = parse(self.env["QCTL_TEST_REDIS_ACL_URL"])
        return f"redis://{url.username}:wrong-password@{url.host}:{url.port}/0"

    def unreachable_url(self) -> str:
        return f"redis://127.0.0.1:{free_port()}/0"


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
