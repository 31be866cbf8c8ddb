"""The Redis :class:`~qctl.adapter.Adapter`: connects lazily, delegates, translates errors.

Each command lives in its own module (stats, peek, purge, reader,
destination); this class only holds the connection and turns driver errors
into qctl errors at its edge (:func:`qctl.adapters.redis.errors.translated`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from qctl.adapter import Adapter, ConnectOptions
from qctl.adapters.redis import layouts
from qctl.adapters.redis import peek as peeking
from qctl.adapters.redis import ping as pinging
from qctl.adapters.redis import purge as purging
from qctl.adapters.redis import stats as statistics
from qctl.adapters.redis.connection import Client, connect
from qctl.adapters.redis.destination import RedisDestination
from qctl.adapters.redis.errors import translated, translating
from qctl.adapters.redis.keys import DEPTH_COMMAND, QUEUE_TYPES, command, key_bytes, queue_type
from qctl.adapters.redis.layouts.base import Layout
from qctl.adapters.redis.reader import RedisReader
from qctl.errors import Unsupported, UsageError
from qctl.models import Check, Message, PeekRequest, PurgeResult, QueueStats
from qctl.primitives import Destination, Reader, ReadMode, SourceTraits
from qctl.urls import redact


class RedisAdapter(Adapter):
    backend = "redis"
    understands = frozenset({"--from", "--since", "--dead"})

    def __init__(self, options: ConnectOptions) -> None:
        super().__init__(options)
        self.where = redact(str(options.url))
        self._client: Client | None = None
        self._layout_name = layouts.chosen(options)  # ?layout=... (layouts/): a job framework's view, or plain
        self._layout: Layout | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            with translating(self.where):
                self._client = connect(self.options)
        return self._client

    def framework(self, *queues: str) -> Layout | None:
        """The job-framework layout (``auto``: detected once, from ``queues`` too), None for the plain view."""
        if self._layout is None and self._layout_name != "plain":
            with translating(self.where):
                self._layout = layouts.select(self.client, self.options, self.where, self.notices,
                                              self._layout_name, queues)
        if self._layout is None and self.options.flags.get("dead"):
            raise UsageError("--dead is for job-framework layouts", hint="add ?layout=celery|rq|sidekiq|bullmq")
        return self._layout

    def check_name(self, queue: str) -> None:
        if self._layout_name not in ("plain", "auto"):
            self.framework(queue).check_name(queue)  # type: ignore[union-attr]

    def read_traits(self, queue: str) -> SourceTraits:
        layout = self.framework(queue)
        return layout.read_traits(queue) if layout else super().read_traits(queue)

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
        if layout := self.framework(*patterns):
            return layout.stats(patterns, groups=groups)
        return statistics.collect(self.client, patterns, self.options.dead_letter, groups=groups)

    @translated
    def depth(self, queue: str) -> int:
        if layout := self.framework(queue):
            return layout.depth(queue)
        return int(command(self.client, DEPTH_COMMAND[self.kind(queue)], key_bytes(queue)))

    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        with translating(self.where):
            if layout := self.framework(queue):
                yield from layout.peek(queue, request)
                return
            yield from peeking.peek(self.client, queue, self.kind(queue), request, self.options.list_end)

    @translated
    def purge(self, queue: str) -> PurgeResult:
        if layout := self.framework(queue):
            return layout.purge(queue)
        return purging.purge(self.client, queue, self.kind(queue), self.options.list_end)

    def ping(self) -> list[Check]:
        """Its own connection, so that a refused password is told apart from a refused connection."""
        client: Client | None = None

        def connecting() -> Client:
            nonlocal client
            client = connect(self.options)
            return client

        try:
            return pinging.ping(connecting, self.where)
        finally:
            if client is not None:
                client.close()

    @translated
    def reader(self, queue: str, mode: ReadMode) -> Reader:
        if layout := self.framework(queue):
            return layout.reader(queue, mode)
        return RedisReader(self.client, self.where, queue, self.kind(queue), mode, self.options.list_end)

    @translated
    def destination(self, queue: str) -> Destination:
        if layout := self.framework(queue):
            return layout.destination(queue)
        return RedisDestination(self.client, self.where, queue, self.options.list_end)

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                client.close()
            except Exception:  # closing a broken connection must not hide the real error
                pass
