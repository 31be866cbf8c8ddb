"""Helpers for ``stats --watch`` tests."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any


def watch_frames(args: Sequence[str], env: dict[str, str], seconds: float) -> list[dict[str, Any]]:
    """The JSON rows ``qctl ARGS`` (a ``--watch ... -o jsonl`` run) printed in ``seconds``, then SIGTERM."""
    proc = subprocess.Popen([sys.executable, "-m", "qctl", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, stdin=subprocess.DEVNULL)
    time.sleep(seconds)
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def later(frames: Sequence[dict[str, Any]], queue: str) -> list[dict[str, Any]]:
    """``queue``'s rows after its first frame (which has no rates)."""
    rows = [row for row in frames if row["queue"] == queue]
    assert rows and rows[0]["in_rate"] is None and rows[0]["out_rate"] is None, rows
    return rows[1:]


def median(rows: Sequence[dict[str, Any]], field: str) -> float:
    """The median of ``field`` over rows; frames sample counters that move in steps, so single frames jitter."""
    values = [float(row[field]) for row in rows if row[field] is not None]
    assert values, (field, rows)
    return statistics.median(values)
