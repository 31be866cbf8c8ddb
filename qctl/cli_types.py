"""Option types that refuse what no operator means: ``nan``, ``inf``, ``1e308`` seconds, 20-digit counts.

Each failure is click's usage error (exit 2, one line), never an internal error further in.
"""

from __future__ import annotations

import math
from typing import Any

from typer._click import types

MAX_SECONDS = 366 * 24 * 3600.0  # a year: anything longer is a typo
MAX_COUNT = 1_000_000_000


class FiniteFloat(types.ParamType):
    """A finite number within [low, high]."""

    name = "number"

    def __init__(self, low: float, high: float, what: str = "a number") -> None:
        self.low, self.high, self.what = low, high, what

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not {self.what}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if not self.low <= number <= self.high:
            self.fail(f"{value!r} is not in the range {self.low:g} to {self.high:g}", param, ctx)
        return number


class Count(types.ParamType):
    """A whole number within [low, MAX_COUNT]."""

    name = "integer"

    def __init__(self, low: int = 1, high: int = MAX_COUNT) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            if not text.lstrip("-").isdigit() or len(text) > 12:
                self.fail(f"{value!r} is not a whole number from {self.low} to {self.high}", param, ctx)
            number = int(text)
        if not self.low <= number <= self.high:
            self.fail(f"{value!r} is not in the range {self.low} to {self.high}", param, ctx)
        return number


SECONDS = FiniteFloat(0.1, MAX_SECONDS, "a number of seconds")
AGE_SECONDS = FiniteFloat(0, MAX_SECONDS * 100, "a number of seconds")
RATE = FiniteFloat(0.001, 1_000_000, "a number of messages per second")
