"""A million messages: bounded steps (SLOWLOG), and kill -9 in the middle of a redrive loses nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from tests.conftest import QctlRunner
from tests.redis.driver import contents

MILLION = 1_000_000
SLOW_US = 20_000  # the contract's bound for one Redis step

pytestmark = pytest.mark.slow


def bodies(count: int) -> list[bytes]:
    return [b"msg-%07d" % i for i in range(count)]


def seed_list(r: redis.Redis, key: str, items: list[bytes]) -> None:
    """LPUSH in consumption order (first item consumed first), 10,000 per command, pipelined."""
    pipe = r.pipeline(transaction=False)
    for start in range(0, len(items), 10_000):
        pipe.lpush(key, *items[start:start + 10_000])
    pipe.execute()


@contextmanager
def slowlog(r: redis.Redis) -> Iterator[list[Any]]:
    """Collect SLOWLOG entries slower than 20 ms from qctl's connections while the block runs."""
    old = r.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    r.config_set("slowlog-log-slower-than", SLOW_US)
    r.slowlog_reset()
    entries: list[Any] = []
    try:
        yield entries
        entries.extend(e for e in r.slowlog_get(1024) if e.get("client_name") == b"qctl")
    finally:
        r.config_set("slowlog-log-slower-than", old)


def test_million_message_redrive_and_purge_stay_under_20ms_per_step(qctl: QctlRunner, redis_url: str,
                                                                    r: redis.Redis, name: str) -> None:
    items = bodies(MILLION)
    seed_list(r, f"{name}:dlq", items)
    with slowlog(r) as slow:
        run = qctl("redrive", "-u", redis_url, f"{name}:dlq", "-o", "json", timeout=300)
        assert run.rc == 0 and run.json()["moved"] == MILLION, run
        assert r.exists(f"{name}:dlq") == 0
        assert contents(r, name) == items
        run = qctl("purge", "-u", redis_url, name, "--yes", "-o", "json", timeout=300)
        assert run.rc == 0 and run.json()["purged"] == MILLION, run
    assert r.exists(name) == 0
    assert slow == [], slow


def test_kill_9_in_the_middle_of_a_million_message_redrive(redis_url: str, r: redis.Redis, name: str,
                                                            clean_env: dict[str, str]) -> None:
    items = bodies(MILLION)
    dlq, target = f"{name}:dlq", name
    seed_list(r, dlq, items)
    command = [sys.executable, "-m", "qctl", "redrive", "-u", redis_url, dlq, "-q"]
    proc = subprocess.Popen(command, env=clean_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while r.llen(target) < MILLION // 5 and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    moved = r.llen(target)
    assert 0 < moved < MILLION, "the kill must land in the middle of the run"
    # Every message exactly once, in order: the target holds a prefix, the DLQ the rest.
    assert contents(r, target) + contents(r, dlq) == items
    rerun = subprocess.run([*command, "-o", "json"], env=clean_env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert contents(r, target) == items and r.exists(dlq) == 0
