"""Counted notices: "N message(s) ..." lines kept current in the adapter's ``notices`` list.

A pass settles and publishes chunk by chunk, and the CLI prints an adapter's
notices once it is done; each kind of event is one line whose count grows,
rather than a line per message.
"""

from __future__ import annotations

from collections import Counter


class Notices:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines  # the adapter's own list (the CLI prints and clears it)
        self._counts: Counter[str] = Counter()
        self._texts: dict[str, str] = {}
        self._shown: dict[str, str] = {}

    def count(self, key: str, text: str, n: int = 1) -> None:
        """``n`` more of ``key``; the line reads "<total> <text>"."""
        self._counts[key] += n
        self._texts[key] = text
        line = f"{self._counts[key]} {text}"
        previous = self._shown.get(key)
        if previous is not None and previous in self.lines:
            self.lines[self.lines.index(previous)] = line
        else:
            self.lines.append(line)
        self._shown[key] = line
