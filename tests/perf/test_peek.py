"""``peek -o jsonl`` streams: lines go out as messages come, so memory does not grow with ``-n``.

A million-record Kafka peek held every message and its JSON row before printing the first (2.4 GB of
RSS, and the garbage collector walked them again and again: ~40% of the CPU); bench/kafka.py times it
against kcat.  Counted here on Redis, the quickest backend to fill: the most memory a peek holds at once
(tracemalloc), for 4,000 and for 40,000 messages.
"""

from __future__ import annotations

import contextlib
import io
import json
import tracemalloc
import uuid
from collections.abc import Iterator

import pytest
import redis

from qctl.boundary import run_app
from qctl.cli import app


class Counting(io.TextIOBase):
    """stdout that keeps only the number of lines written."""

    def __init__(self) -> None:
        self.lines = 0
        self.first = ""

    def write(self, text: str) -> int:
        self.first = self.first or text.split("\n", 1)[0]
        self.lines += text.count("\n")
        return len(text)


@pytest.fixture()
def queue(redis_url: str) -> Iterator[str]:
    client = redis.Redis.from_url(redis_url)
    name = f"perf-peek-{uuid.uuid4().hex[:8]}"
    pipe = client.pipeline(transaction=False)
    for start in range(0, 40_000, 5000):
        pipe.lpush(name, *[b'{"order": %d, "pad": "%s"}' % (i, b"x" * 60) for i in range(start, start + 5000)])
    pipe.execute()
    yield name
    client.delete(name)


def _peak_bytes(redis_url: str, queue: str, count: int) -> tuple[int, Counting]:
    out = Counting()
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(out):  # type: ignore[type-var]
            code = run_app(app, ["peek", "-u", redis_url, queue, "-n", str(count), "-o", "jsonl", "-q"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0 and out.lines == count
    return peak, out


def test_jsonl_peek_memory_does_not_grow_with_the_count(redis_url: str, queue: str) -> None:
    small, _ = _peak_bytes(redis_url, queue, 4_000)
    large, out = _peak_bytes(redis_url, queue, 40_000)
    assert json.loads(out.first)["body"] == '{"order": 0, "pad": "' + "x" * 60 + '"}'
    # Holding the messages and rows costs ~1.5 kB each: 40,000 would add ~60 MB over 4,000.  Streamed, the
    # difference is what the adapter's own read-ahead holds.
    assert large < small + 12 * 1024 * 1024, (small, large)
