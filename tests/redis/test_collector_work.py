"""qctl sets the cyclic garbage collector for long passes (``qctl.collector``): counted, not timed."""

from __future__ import annotations

import contextlib
import gc
import io
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import redis

from qctl import collector
from qctl.boundary import run_app
from qctl.cli import app

MESSAGES = 20_000


def test_the_qctl_command_sets_the_collector() -> None:
    script = ("import gc, sys\nsys.argv = ['qctl', '--version']\nfrom qctl.cli import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\nprint(gc.get_threshold()[0], gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == [str(collector.GENERATION0), "True"], out


def test_a_pass_over_20000_messages_collects_a_few_times_not_hundreds(redis_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    url = redis_env["QCTL_TEST_REDIS_URL"]
    client = redis.Redis.from_url(url)
    key = f"collector-{uuid.uuid4().hex[:8]}"
    client.rpush(key, *[b"message-%06d" % i for i in range(MESSAGES)])
    collections = 0

    def counted(phase: str, info: dict[str, Any]) -> None:
        nonlocal collections
        collections += phase == "start"

    previous = gc.get_threshold()
    collector.for_passes()
    gc.callbacks.append(counted)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            code = run_app(app, ["purge", "-u", url, key, "--yes", "--backup", str(tmp_path / "b.jsonl"), "-q",
                                 "-o", "json"])
    finally:
        gc.callbacks.remove(counted)
        gc.set_threshold(*previous)
        gc.unfreeze()
    assert code == 0 and client.llen(key) == 0
    assert (tmp_path / "b.jsonl").read_bytes().count(b"\n") == MESSAGES + 1
    # With the default threshold (700) this pass runs the collector hundreds of times.
    assert collections <= 10, collections
