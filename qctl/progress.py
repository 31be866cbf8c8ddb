"""Progress of long work: the interface the engine and adapters report to, and a rich bar on stderr.

The bar is drawn only when stderr is a terminal (and not ``--quiet``); rich is
imported only then.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from qctl.output import colour_allowed, is_terminal


class Progress(Protocol):
    """Where long operations report progress; the CLI draws it on a terminal."""

    def start(self, total: int | None, description: str) -> None: ...

    def advance(self, count: int = 1) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, total: int | None, description: str) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


class BarProgress:
    """:class:`qctl.adapter.Progress` drawn with rich; cheap to advance often."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        console = Console(file=sys.stderr, no_color=not colour_allowed())
        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=console, transient=False)
        self._task: Any = None

    def start(self, total: int | None, description: str) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(description, total=total)
        else:
            self._bar.update(self._task, total=total, description=description)

    def advance(self, count: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, count)

    def finish(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None


def for_terminal(quiet: bool = False) -> Progress:
    """A bar when stderr is a terminal (and not ``--quiet``), else nothing."""
    if quiet or not is_terminal(sys.stderr):
        return NoProgress()
    return BarProgress()
