"""Redis Cluster (3 primaries from tools/brokers): discovery on every primary, and redrive within
and across slots, exactly once even when killed mid-run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from tests.conftest import QctlRunner
from tests.redis.driver import contents
from tests.redis.test_scale import bodies


@pytest.fixture(scope="module")
def cluster_url(cluster_env: dict[str, str]) -> str:
    return cluster_env["QCTL_TEST_REDIS_CLUSTER_URL"]


@pytest.fixture()
def rc(cluster_url: str, name: str) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(cluster_url)
    yield client
    for key in list(client.scan_iter(match=f"*{name}*", count=1000)):
        client.delete(key)
    client.close()


@pytest.fixture()
def name() -> str:  # overrides the single-server fixture: cleanup happens in `rc`
    import uuid

    return f"c{uuid.uuid4().hex[:8]}"


def cross_slot_names(name: str) -> tuple[str, str]:
    for suffix in range(100):
        target = f"{name}-{suffix}"
        if key_slot(target.encode()) != key_slot(f"{target}:dlq".encode()):
            return target, f"{target}:dlq"
    raise AssertionError("no cross-slot pair found")


def test_stats_sees_keys_on_every_primary(qctl: QctlRunner, cluster_url: str, rc: RedisCluster, name: str) -> None:
    keys = [f"{name}:{i}" for i in range(60)]
    for key in keys:
        rc.lpush(key, b"x")
    rc.xadd(f"{name}:s", {b"body": b"x"})
    rc.zadd(f"{name}:z", {b"x": 1})
    slots_on = {rc.get_node_from_key(key).name for key in keys}
    assert len(slots_on) == 3, "keys spread over all three primaries"
    run = qctl("stats", "-u", cluster_url, "-o", "json")
    assert run.rc == 0, run
    rows = {row["queue"]: row for row in run.json() if row["queue"].startswith(name)}
    assert set(rows) == {*keys, f"{name}:s", f"{name}:z"}
    run = qctl("stats", "-u", cluster_url, "-o", "json", f"{name}:1*")
    assert {row["queue"] for row in run.json()} == {k for k in keys if k.startswith(f"{name}:1")}


def test_same_slot_and_cross_slot_redrive_of_lists_zsets_and_streams(qctl: QctlRunner, cluster_url: str,
                                                                     rc: RedisCluster, name: str) -> None:
    tagged = f"{{{name}}}:orders"
    rc.lpush(f"{tagged}:dlq", *bodies(3000))  # same slot thanks to the hash tag
    run = qctl("redrive", "-u", cluster_url, f"{tagged}:dlq", "-o", "json")
    assert run.rc == 0 and run.json()["moved"] == 3000, run
    assert contents(rc, tagged) == bodies(3000)
    target, dlq = cross_slot_names(name)
    rc.lpush(dlq, *bodies(4500))
    run = qctl("redrive", "-u", cluster_url, dlq, "-o", "json")
    assert run.rc == 0 and run.json()["moved"] == 4500, run
    assert contents(rc, target) == bodies(4500) and rc.exists(dlq) == 0
    rc.zadd(f"{dlq}:z", {b"b": 2, b"a": 1})
    assert qctl("redrive", "-u", cluster_url, f"{dlq}:z", "--to", f"{target}:z2").rc == 0
    assert contents(rc, f"{target}:z2") == [b"a", b"b"]
    stream, stream_dlq = cross_slot_names(f"{name}s")
    for i in range(2500):
        rc.xadd(stream_dlq, {b"body": f"m{i}".encode(), b"h": b"\xff"})
    run = qctl("redrive", "-u", cluster_url, stream_dlq, "-o", "json")
    assert run.rc == 0 and run.json()["moved"] == 2500, run
    entries = [fields for _, fields in rc.xrange(stream)]
    assert entries[0] == {b"body": b"m0", b"h": b"\xff", b"x-qctl-redrive-count": b"1"} and len(entries) == 2500
    assert [e[b"body"] for e in entries] == [f"m{i}".encode() for i in range(2500)]
    assert not [k for k in rc.scan_iter(match="*qctl-redrive-*")], "no journal left behind"


def test_peek_and_purge_on_the_cluster(qctl: QctlRunner, cluster_url: str, rc: RedisCluster, name: str,
                                       tmp_path: Path) -> None:
    rc.lpush(name, *bodies(2500))
    rows = qctl("peek", "-u", cluster_url, name, "-n", "2", "-o", "jsonl").jsonl()
    assert [row["body"] for row in rows] == ["msg-0000000", "msg-0000001"]
    backup = tmp_path / "b.jsonl"
    run = qctl("purge", "-u", cluster_url, name, "--yes", "--backup", str(backup), "-o", "json")
    assert run.rc == 0 and run.json()["purged"] == 2500 and rc.exists(name) == 0, run
    assert qctl("restore", "-u", cluster_url, str(backup), "--to", f"{name}:r").rc == 0
    assert contents(rc, f"{name}:r") == bodies(2500)


@pytest.mark.slow
def test_kill_9_during_cross_slot_redrive_then_rerun_is_exactly_once(cluster_url: str, rc: RedisCluster,
                                                                     name: str, clean_env: dict[str, str]) -> None:
    count = 300_000
    target, dlq = cross_slot_names(name)
    items = bodies(count)
    for start in range(0, count, 10_000):
        rc.lpush(dlq, *items[start:start + 10_000])
    command = [sys.executable, "-m", "qctl", "redrive", "-u", cluster_url, dlq, "-q"]
    proc = subprocess.Popen(command, env=clean_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while rc.llen(target) < count // 5 and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < rc.llen(target) < count, "the kill must land in the middle of the run"
    staged = _journal(rc, dlq)
    # Each message is in the target, the DLQ's journal (unless already delivered) or the DLQ: once.
    assert contents(rc, target) + staged + contents(rc, dlq) == items
    rerun = subprocess.run(command, env=clean_env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert contents(rc, target) == items and rc.exists(dlq) == 0
    assert not [k for k in rc.scan_iter(match=f"*qctl-redrive-*{name}*")]


def _journal(rc: RedisCluster, dlq: str) -> list[bytes]:
    """Staged messages not yet delivered (a delivered batch has its done-marker in the target's slot)."""
    meta = rc.hgetall(f"{{{dlq}}}:qctl-redrive-meta:{dlq}")
    if not meta:
        return []
    target = meta[b"target"].decode()
    if rc.exists(f"{{{target}}}:qctl-redrive-done:{meta[b'batch'].decode()}"):
        return []
    staged: list[bytes] = rc.lrange(f"{{{dlq}}}:qctl-redrive-staging:{dlq}", 0, -1)
    return staged
