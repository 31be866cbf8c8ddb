"""Rates for ``stats --watch``: messages per second in and out since the previous frame, and time to drain.

From the broker's own cumulative counters where a row carries them
(``QueueStats.total_in``/``total_out``: RabbitMQ message stats, Kafka end and
committed offsets, Redis stream ``entries-added``), else from the change in
depth, which only tells the net flow: a growing queue shows it as ``in_rate``,
a shrinking one as ``out_rate``.  ``drain_eta`` is depth divided by the net
outflow, null while the queue is not draining.  The first frame has no rates.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from qctl.models import QueueStats

HISTORY = 24  # frames of depth kept for the sparkline
BARS = "▁▂▃▄▅▆▇█"


class RateTracker:
    def __init__(self) -> None:
        self._last: dict[tuple[Any, ...], tuple[float, QueueStats]] = {}
        self._depths: dict[tuple[Any, ...], deque[int]] = {}

    def update(self, rows: Sequence[tuple[QueueStats, dict[str, Any]]], now: float) -> list[dict[str, Any]]:
        records = []
        for row, built in rows:
            key = (built.get("broker"), row.backend, row.queue, row.group)
            previous = self._last.get(key)
            built = {**built, "in_rate": None, "out_rate": None, "drain_eta": None}
            if previous is not None and now > previous[0]:
                built.update(_rates(previous[1], row, now - previous[0]))
            self._last[key] = (now, row)
            history = self._depths.setdefault(key, deque(maxlen=HISTORY))
            if row.depth is not None:
                history.append(row.depth)
            records.append(built)
        return records

    def sparkline(self, built: dict[str, Any]) -> str:
        for key, history in self._depths.items():
            if key[0] == built.get("broker") and key[2] == built.get("queue") and key[3] == built.get("group"):
                return spark(list(history))
        return ""


def _rates(before: QueueStats, after: QueueStats, seconds: float) -> dict[str, Any]:
    in_rate = out_rate = None
    if before.total_in is not None and after.total_in is not None:
        in_rate = max(0, after.total_in - before.total_in) / seconds
    if before.total_out is not None and after.total_out is not None:
        out_rate = max(0, after.total_out - before.total_out) / seconds
    if (in_rate is None or out_rate is None) and before.depth is not None and after.depth is not None:
        net = (after.depth - before.depth) / seconds
        if in_rate is None and out_rate is None:
            in_rate, out_rate = max(net, 0.0), max(-net, 0.0)
        elif in_rate is None:
            in_rate = max(0.0, net + (out_rate or 0.0))
        else:
            out_rate = max(0.0, in_rate - net)
    eta = None
    if in_rate is not None and out_rate is not None and after.depth and out_rate > in_rate:
        eta = round(after.depth / (out_rate - in_rate), 1)
    return {"in_rate": _round(in_rate), "out_rate": _round(out_rate), "drain_eta": eta}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def spark(values: Sequence[int]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return BARS[0] * len(values)
    return "".join(BARS[(value - low) * (len(BARS) - 1) // (high - low)] for value in values)
