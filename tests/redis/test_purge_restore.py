"""`qctl purge` and `qctl restore` on real Redis: what is left on the server, and what the backup holds."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from tests.conftest import QctlRunner
from tests.redis.driver import contents

BINARY = b"\x80\x81 not utf-8"


def test_purge_list_with_backup_then_restore_keeps_order_and_bytes(qctl: QctlRunner, redis_url: str,
                                                                   r: redis.Redis, name: str,
                                                                   tmp_path: Path) -> None:
    bodies = [f"m{i}".encode() for i in range(2500)] + [BINARY]
    r.lpush(name, *bodies)
    backup = tmp_path / "backup.jsonl"
    run = qctl("purge", "-u", redis_url, name, "--yes", "--backup", str(backup), "-o", "json")
    assert run.rc == 0, run
    assert run.json() == {"queue": name, "purged": 2501, "backup": str(backup)}
    assert r.exists(name) == 0
    header, *lines = [json.loads(line) for line in backup.read_text().splitlines()]
    assert header["qctl_backup"] == 2
    assert len(lines) == 2501 and lines[0]["body"] == "m0" and lines[-1]["body_encoding"] == "base64"
    run = qctl("restore", "-u", redis_url, str(backup), "--to", f"{name}:restored", "-o", "json")
    assert run.rc == 0 and run.json()["restored"] == 2501, run
    assert contents(r, f"{name}:restored") == bodies


def test_purge_stream_keeps_groups_and_restore_keeps_fields(qctl: QctlRunner, redis_url: str, r: redis.Redis,
                                                           name: str, tmp_path: Path) -> None:
    for i in range(3):
        r.xadd(name, {b"payload": f"p{i}".encode(), b"trace": b"t"})
    r.xgroup_create(name, "workers", id="0")
    backup = tmp_path / "s.jsonl"
    run = qctl("purge", "-u", redis_url, name, "--yes", "--backup", str(backup), "-o", "json")
    assert (run.rc, run.json()["purged"]) == (0, 3), run
    assert r.xlen(name) == 0 and [g["name"] for g in r.xinfo_groups(name)] == [b"workers"]
    assert qctl("restore", "-u", redis_url, str(backup), "--to", f"{name}:copy").rc == 0
    assert [fields for _, fields in r.xrange(f"{name}:copy")] == [
        {b"payload": f"p{i}".encode(), b"trace": b"t"} for i in range(3)]


def test_purge_zset_and_restore_keeps_scores(qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str,
                                            tmp_path: Path) -> None:
    r.zadd(name, {b"a": 1, b"b": 2.5, BINARY: 3})
    backup = tmp_path / "z.jsonl"
    assert qctl("purge", "-u", redis_url, name, "--yes", "--backup", str(backup)).rc == 0
    assert r.exists(name) == 0
    assert qctl("restore", "-u", redis_url, str(backup), "--to", f"{name}:copy").rc == 0
    assert r.zrange(f"{name}:copy", 0, -1, withscores=True) == [(b"a", 1.0), (b"b", 2.5), (BINARY, 3.0)]


def test_purge_without_backup_in_chunks_and_dry_run_and_refusal(qctl: QctlRunner, redis_url: str,
                                                                r: redis.Redis, name: str) -> None:
    r.lpush(name, *[b"x"] * 7000)
    r.xadd(f"{name}:s", {b"body": b"x"})
    r.zadd(f"{name}:z", {b"x": 1})
    run = qctl("purge", "-u", redis_url, name, "--dry-run", "-o", "json")
    assert (run.rc, run.json()["purged"], r.llen(name)) == (0, 7000, 7000), run
    assert qctl("purge", "-u", redis_url, name).rc == 2  # no terminal, no --yes
    assert r.llen(name) == 7000
    for key, depth in ((name, 7000), (f"{name}:s", 1), (f"{name}:z", 1)):
        run = qctl("purge", "-u", redis_url, key, "--yes", "-o", "json")
        assert (run.rc, run.json()["purged"]) == (0, depth), run
    assert r.exists(name, f"{name}:z") == 0 and r.xlen(f"{name}:s") == 0


def test_restore_to_left_end_list(qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str,
                                  tmp_path: Path) -> None:
    r.rpush(name, b"1", b"2", b"3")
    backup = tmp_path / "l.jsonl"
    url = redis_url + "?list_end=left"
    assert qctl("purge", "-u", url, name, "--yes", "--backup", str(backup)).rc == 0
    r.rpush(name, b"0")  # already waiting: restored messages go behind it
    assert qctl("restore", "-u", url, str(backup), "--to", name).rc == 0
    assert r.lrange(name, 0, -1) == [b"0", b"1", b"2", b"3"]
