"""SIGINT and SIGTERM during long work: the first asks to stop, the second stops at once.

Inside :func:`graceful` a first signal only sets :attr:`StopFlag.signal`; the
loops of redrive, move, purge, backup and restore check it between chunks,
settle the chunk in flight, commit their progress and report a partial result
(exit 130 or 143).  A second signal raises :class:`qctl.errors.Interrupted` at
once: work in flight is abandoned, which loses nothing because a source is
only ever settled after its target (or backup file) has the message.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from qctl.errors import Interrupted

NAMES: dict[int, str] = {int(signal.SIGINT): "SIGINT", int(signal.SIGTERM): "SIGTERM"}


class StopFlag:
    """Set by the first signal; read by the loops between chunks."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def request(self, signal_number: int) -> None:
        self.signal = signal_number


NEVER = StopFlag()  # for callers without signal handling (tests, library use)


@contextmanager
def graceful() -> Iterator[StopFlag]:
    """Install the two-step handlers for the block (main thread only; elsewhere nothing is installed)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handle(number: int, _frame: FrameType | None) -> None:
        if flag.requested:
            raise Interrupted(f"stopped at once by a second {NAMES.get(number, number)}; nothing was lost",
                              signal_number=number)
        flag.request(number)

    previous: dict[int, Any] = {number: signal.signal(number, handle) for number in NAMES}
    try:
        yield flag
    finally:
        for number, handler in previous.items():
            # Stopping already: what is left is printing the partial result, which a further signal
            # must not cut short (it would leave no result and a signal death instead of 130/143).
            signal.signal(number, signal.SIG_IGN if flag.requested else handler)


def interrupted(signal_number: int | None, what: str, *, hint: str | None = None) -> Interrupted:
    """The error a stopped command ends with, once its partial result is printed."""
    number = signal_number or signal.SIGINT
    return Interrupted(f"{what} stopped by {NAMES.get(number, number)}; nothing was lost", signal_number=number,
                       hint=hint)
