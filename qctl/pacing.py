"""``--rate``: spread work evenly over time without busy-waiting."""

from __future__ import annotations

import time


class RateLimiter:
    """Allow ``rate`` events per second on average; ``None`` means unlimited."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    def wait(self, count: int = 1) -> None:
        """Block until ``count`` more events are allowed."""
        if not self.interval:
            return
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(self.next_at, now) + self.interval * count

    def batch_size(self, default: int) -> int:
        """A batch small enough that one batch is at most ~0.1 s of the allowed rate."""
        if not self.interval:
            return default
        return max(1, min(default, int(0.1 / self.interval) or 1))
