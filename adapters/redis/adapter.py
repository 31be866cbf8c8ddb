"""The Redis :class:`~qctl.adapter.Adapter`: connects lazily, delegates, translates errors.

Each command lives in its own module (stats, peek, purge, redrive, publish);
this class only holds the connection and turns driver errors into qctl
errors at its edge (:func:`qctl.adapters.redis.errors.translated`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from qctl.adapter import Adapter, ConnectOptions, Progress
from qctl.adapters.redis import peek as peeking
from qctl.adapters.redis import publish as publishing
from qctl.adapters.redis import purge as purging
from qctl.adapters.redis import redrive as redriving
from qctl.adapters.redis import stats as statistics
from qctl.adapters.redis.connection import Client, connect
from qctl.adapters.redis.errors import translated, translating
from qctl.adapters.redis.keys import DEPTH_COMMAND, QUEUE_TYPES, command, key_bytes, queue_type
from qctl.errors import Unsupported
from qctl.models import (
    Message,
    PeekRequest,
    PurgeRequest,
    PurgeResult,
    QueueStats,
    RedriveRequest,
    RedriveResult,
)
from qctl.urls import redact


class RedisAdapter(Adapter):
    backend = "redis"

    def __init__(self, options: ConnectOptions) -> None:
        super().__init__(options)
        self.where = redact(str(options.url))
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            with translating(self.where):
                self._client = connect(self.options)
        return self._client

    def kind(self, queue: str) -> str:
        """``list``/``stream``/``zset``; a missing key is an empty list (Redis deletes emptied lists)."""
        kind = queue_type(self.client, queue)
        if kind == "none":
            return "list"
        if kind not in QUEUE_TYPES:
            raise Unsupported(f"{queue!r} is a Redis {kind}, not a queue (list, stream or sorted set)")
        return kind

    @translated
    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        return statistics.collect(self.client, patterns, self.options.dead_letter, groups=groups)

    @translated
    def depth(self, queue: str) -> int:
        return int(command(self.client, DEPTH_COMMAND[self.kind(queue)], key_bytes(queue)))

    @translated
    def peek(self, queue: str, request: PeekRequest) -> list[Message]:
        return peeking.peek(self.client, queue, self.kind(queue), request, self.options.list_end)

    @translated
    def purge(self, queue: str, request: PurgeRequest) -> PurgeResult:
        return purging.purge(self.client, queue, self.kind(queue), request, self.options.list_end)

    @translated
    def redrive(self, dlq: str, request: RedriveRequest, progress: Progress) -> RedriveResult:
        run = redriving.Run(client=self.client, dlq=dlq, kind=self.kind(dlq), request=request,
                            naming=self.options.dead_letter, list_end=self.options.list_end, progress=progress)
        return redriving.redrive(run)

    @translated
    def publish(self, queue: str, messages: Iterable[Message], progress: Progress) -> int:
        return publishing.publish(self.client, queue, messages, progress, self.options.list_end)

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                client.close()
            except Exception:  # closing a broken connection must not hide the real error
                pass
