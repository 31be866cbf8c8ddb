"""Rates for ``stats --watch``: messages per second in and out since the previous frame, and time to drain.

From the broker's own cumulative counters where a row carries them
(``QueueStats.total_in``/``total_out``: RabbitMQ message stats, Kafka end and
committed offsets, Redis stream ``entries-added``), else from the change in
depth, which only tells the net flow: a growing queue shows it as ``in_rate``,
a shrinking one as ``out_rate``.  ``drain_eta`` is depth divided by the net
outflow, null while the queue is not draining.  The first frame has no rates.

Counters that move in steps
---------------------------
Some counters are not live: RabbitMQ's message stats advance once per
``collect_statistics_interval`` (5 s by default), a Kafka group that
auto-commits moves its committed offsets every 5 s, mosquitto publishes
``$SYS`` every ``sys_interval``.  Differenced frame by frame under a shorter
``--watch`` they would read 0, 0, 0, 0, then five times the rate.  So a counter's
rate is its last move divided by the time since the value before it was first
seen, and while a counter that last took several frames to move stands still,
that rate is held for as many frames as the move took (plus one); after that,
or at once for a counter that moved frame by frame (a live one), standing
still reads as 0.  A live counter is exact either way.  The first move seen
from the value of the first frame cannot know how long that value had stood:
for a stepped counter, that one frame can read high.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from qctl.models import QueueStats

HISTORY = 24  # frames of depth kept for the sparkline
BARS = "▁▂▃▄▅▆▇█"


class Counter:
    """One cumulative counter of one row, frame after frame (see "Counters that move in steps")."""

    __slots__ = ("last", "rate", "since", "step", "still", "value")

    def __init__(self, value: int, now: float) -> None:
        self._start(value, now)

    def _start(self, value: int, now: float) -> None:
        self.value, self.since = value, now  # the value and the frame it was first seen at
        self.last = now  # the previous frame
        self.still = 0  # frames seen since then without a move
        self.step = 0  # frames the last move took (0: none seen yet)
        self.rate: float | None = None  # per second, at the last move

    def update(self, value: int, now: float) -> float | None:
        """The rate at this frame; None when the counter went back (a reset: it starts over)."""
        last, self.last = self.last, now
        if value < self.value:
            self._start(value, now)
            return None
        if value > self.value:
            # A live counter (its last move took one frame) moved within this frame, even after a pause;
            # a stepped one (or one not seen moving yet) gathered this move since its value was first seen.
            span = now - (last if self.step == 1 else self.since)
            self.rate = (value - self.value) / max(span, 1e-9)
            self.step, self.still = self.still + 1, 0
            self.value, self.since = value, now
            return self.rate
        self.still += 1
        if self.rate is not None and self.step > 1 and self.still <= self.step:
            return self.rate  # a stepped counter between two steps
        return 0.0


class RateTracker:
    def __init__(self) -> None:
        self._last: dict[tuple[Any, ...], tuple[float, QueueStats]] = {}
        self._depths: dict[tuple[Any, ...], deque[int]] = {}
        self._counters: dict[tuple[Any, ...], Counter] = {}

    def update(self, rows: Sequence[tuple[QueueStats, dict[str, Any]]], now: float) -> list[dict[str, Any]]:
        records = []
        for row, built in rows:
            key = (built.get("broker"), row.backend, row.queue, row.group)
            previous = self._last.get(key)
            built = {**built, "in_rate": None, "out_rate": None, "drain_eta": None}
            counted = (self._counted((*key, "in"), row.total_in, now),
                       self._counted((*key, "out"), row.total_out, now))
            if previous is not None and now > previous[0]:
                built.update(_rates(previous[1], row, now - previous[0], counted))
            self._last[key] = (now, row)
            history = self._depths.setdefault(key, deque(maxlen=HISTORY))
            if row.depth is not None:
                history.append(row.depth)
            records.append(built)
        return records

    def _counted(self, key: tuple[Any, ...], value: int | None, now: float) -> float | None:
        """The counter's rate at this frame, None on its first frame (or without one, or after a reset)."""
        if value is None:
            self._counters.pop(key, None)
            return None
        counter = self._counters.get(key)
        if counter is None:
            self._counters[key] = Counter(value, now)
            return None
        return counter.update(value, now)

    def sparkline(self, built: dict[str, Any]) -> str:
        for key, history in self._depths.items():
            if key[0] == built.get("broker") and key[2] == built.get("queue") and key[3] == built.get("group"):
                return spark(list(history))
        return ""


def _rates(before: QueueStats, after: QueueStats, seconds: float,
           counted: tuple[float | None, float | None]) -> dict[str, Any]:
    in_rate, out_rate = counted
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
