"""`purge --backup` onto a real full disk and a real read-only file system (a small tmpfs mounted for the
test): exit 2 naming the file, the counts said, and only what the file durably holds deleted."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import QctlRunner

BODIES = [b"x" * 200 + b"%05d" % i for i in range(20_000)]  # ~5.5 MB of backup lines


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs: writing more fails with ENOSPC, as a full disk does."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_purge_with_exit_2_and_deletes_only_what_was_written(
        qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str, small_disk: Path) -> None:
    r.rpush(name, *BODIES)
    file = small_disk / "orders.jsonl"
    run = qctl("purge", "-u", redis_url, name, "--yes", "--backup", str(file), "-o", "json")
    assert run.rc == 2 and run.err.count("\n") == 1, run
    assert str(file) in run.err and "No space left" in run.err, run
    written = [json.loads(text)["body"].encode() for text in file.read_text().splitlines()[1:]]
    assert 0 < len(written) < len(BODIES)
    assert f"{len(written):,}" in run.err or str(len(written)) in run.err, run  # how much is safe, said
    left = r.lrange(name, 0, -1)
    assert written + left[::-1] == BODIES or sorted(written + left) == sorted(BODIES)  # none lost
    assert len(written) + len(left) == len(BODIES)  # and none twice


def test_a_read_only_file_system_is_exit_2_before_anything_is_deleted(
        qctl: QctlRunner, redis_url: str, r: redis.Redis, name: str, small_disk: Path) -> None:
    r.rpush(name, *BODIES[:100])
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    file = small_disk / "orders.jsonl"
    run = qctl("purge", "-u", redis_url, name, "--yes", "--backup", str(file))
    assert run.rc == 2 and run.err.count("\n") == 1, run
    assert str(file) in run.err and "Read-only file system" in run.err, run
    assert r.llen(name) == 100 and not file.exists()
