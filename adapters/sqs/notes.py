"""Counted notices: one line per kind of event, its count kept current in the adapter's notices.

A destination sees a pass chunk by chunk; the operator wants one line ("12
message(s) ... dropped"), not one per chunk.  Each kind's line is rewritten
in place as its count grows (or appended again once the CLI printed and
cleared the list).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable


class Notes:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.counts: Counter[str] = Counter()
        self._shown: dict[str, str] = {}
        self._lock = threading.Lock()  # destinations add from their worker threads

    def add(self, kind: str, count: int, render: Callable[[int], str]) -> None:
        if count <= 0:
            return
        with self._lock:
            self.counts[kind] += count
            text = render(self.counts[kind])
            old = self._shown.get(kind)
            if old is not None and old in self.lines:
                self.lines[self.lines.index(old)] = text
            else:
                self.lines.append(text)
            self._shown[kind] = text
