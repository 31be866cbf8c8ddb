"""``qctl stats``: rows from every broker named, thresholds, and ``--watch`` with rates."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qctl import output
from qctl.adapter import Adapter
from qctl.commands.common import notes, open_adapter, print_notices
from qctl.config import Target
from qctl.errors import ThresholdCrossed
from qctl.models import QueueStats
from qctl.rates import RateTracker

COLUMNS = ("queue", "type", "depth", "in_flight", "consumers", "lag", "dead_letter_queue", "dead_letter_depth",
           "oldest_age")
RATE_COLUMNS = ("in_rate", "out_rate", "drain_eta")
CONTRACT_FIELDS = ("backend", "queue", "type", "depth", "in_flight", "consumers", "lag", "dead_letter_queue",
                   "dead_letter_depth", "oldest_age")


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsRun:
    patterns: Sequence[str]
    groups: bool = False
    fail_above: int | None = None
    fail_lag_above: int | None = None
    fail_age_above: float | None = None


def record(row: QueueStats, groups: bool) -> dict[str, Any]:
    """The JSON row: the contract's fields (``group`` with --groups), then the backend's extras."""
    built: dict[str, Any] = {name: getattr(row, name) for name in CONTRACT_FIELDS}
    if groups:
        built["group"] = row.group
    if row.oldest_age is not None:
        built["oldest_age"] = round(row.oldest_age, 3)
    for name, value in row.extra.items():
        built.setdefault(name, value)
    return built


def collect(opened: Sequence[tuple[Target, Adapter]], run: StatsRun) -> list[tuple[QueueStats, dict[str, Any]]]:
    rows = []
    several = len(opened) > 1
    for chosen, adapter in opened:
        for row in adapter.stats(run.patterns, groups=run.groups):
            built = record(row, run.groups)
            if several:
                built = {"broker": str(chosen.options.url), **built}
            rows.append((row, built))
    return rows


def columns(run: StatsRun, several: bool, *, rates: bool = False) -> list[str]:
    chosen = list(COLUMNS)
    if run.groups:
        chosen.insert(1, "group")
    if several:
        chosen.insert(0, "broker")
    if rates:
        chosen += RATE_COLUMNS
    return chosen


def open_all(chosen: Sequence[Target], include_internal: bool, given: dict[str, Any]) -> list[tuple[Target, Adapter]]:
    import dataclasses

    opened = []
    try:
        for item in chosen:
            if include_internal:
                item = dataclasses.replace(item, options=dataclasses.replace(item.options, include_internal=True))
            opened.append((item, open_adapter(item, given=given)))
    except BaseException:
        for _, adapter in opened:
            adapter.close()
        raise
    return opened


def render(records: list[dict[str, Any]], run: StatsRun, fmt: str, several: bool, *, rates: bool = False,
           opened: Sequence[tuple[Target, Adapter]] = ()) -> None:
    if fmt == "prom":
        output.prometheus(records)
        return
    styles = None
    if fmt == "table" and output.styles_shown(len(records)):
        styles = attention(records, run, opened, several)
    output.rows(records, fmt, columns(run, several, rates=rates), styles=styles)


def attention(records: Sequence[dict[str, Any]], run: StatsRun, opened: Sequence[tuple[Target, Adapter]],
              several: bool) -> list[dict[str, str]]:
    """Cell styles for a terminal: dead letters waiting, thresholds crossed (see ``present.stats_attention``)."""
    from qctl import present

    # Each broker's own dead-letter naming (its profile may add suffixes); rows carry "broker" only when several.
    namings = {(str(chosen.options.url) if several else None): chosen.options.dead_letter for chosen, _ in opened}

    def is_dead_letter_name(row: Mapping[str, Any]) -> bool:
        naming = namings.get(row.get("broker"))
        return naming is not None and naming.is_dead_letter_name(str(row.get("queue")))

    return present.stats_attention(records, is_dead_letter_name=is_dead_letter_name, fail_above=run.fail_above,
                                   fail_lag_above=run.fail_lag_above, fail_age_above=run.fail_age_above)


def run_stats(chosen: Sequence[Target], run: StatsRun, fmt: str, *, quiet: bool, given: dict[str, Any],
              include_internal: bool) -> None:
    opened = open_all(chosen, include_internal, given)
    try:
        rows = collect(opened, run)
        for _, adapter in opened:
            print_notices(adapter, quiet)
    finally:
        for _, adapter in opened:
            adapter.close()
    records = [built for _, built in rows]
    render(records, run, fmt, len(opened) > 1, opened=opened)
    check_thresholds(records, run)


def check_thresholds(records: Sequence[dict[str, Any]], run: StatsRun) -> None:
    crossed = []
    for row in records:
        for field, limit, what in (("depth", run.fail_above, "depth"), ("lag", run.fail_lag_above, "lag"),
                                   ("oldest_age", run.fail_age_above, "oldest message age")):
            value = row.get(field)
            if limit is not None and value is not None and value > limit:
                crossed.append(f"{row['queue']} {what} {value:g} > {limit:g}" if isinstance(value, float)
                               else f"{row['queue']} {what} {value} > {limit:g}")
    if crossed:
        more = f" (and {len(crossed) - 3} more)" if len(crossed) > 3 else ""
        raise ThresholdCrossed("threshold crossed: " + "; ".join(crossed[:3]) + more)


def watch_stats(chosen: Sequence[Target], run: StatsRun, fmt: str, interval: float, *, quiet: bool,
                given: dict[str, Any], include_internal: bool) -> None:
    """Redraw until Ctrl-C (exit 0): a live table on a terminal, repeated output otherwise, with rates."""
    opened = open_all(chosen, include_internal, given)
    several = len(opened) > 1
    tracker = RateTracker()

    def frame() -> list[dict[str, Any]]:
        rows = collect(opened, run)
        for _, adapter in opened:
            notes(adapter.notices, quiet)
            adapter.notices.clear()
        return tracker.update(rows, time.monotonic())

    try:
        if fmt == "table" and output.is_terminal(sys.stdout):
            _watch_live(frame, run, interval, several, tracker)
        else:
            while True:
                records = frame()
                if fmt == "table":
                    for built in records:
                        built["trend"] = tracker.sparkline(built)
                    output.rows(records, fmt, [*columns(run, several, rates=True), "trend"])
                else:
                    render(records, run, fmt, several, rates=True)
                if fmt == "table":
                    sys.stdout.write("\n")
                sys.stdout.flush()
                time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        for _, adapter in opened:
            adapter.close()


def _watch_live(frame: Any, run: StatsRun, interval: float, several: bool, tracker: RateTracker) -> None:
    import io

    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(no_color=not output.colour_allowed())

    def draw() -> Text:
        buffer = io.StringIO()
        records = frame()
        for built in records:
            built["trend"] = tracker.sparkline(built)
        output.table(records, [*columns(run, several, rates=True), "trend"], buffer)
        stamp = time.strftime("%H:%M:%S")
        return Text(f"every {interval:g}s, {stamp}, Ctrl-C to stop\n" + buffer.getvalue())

    with Live(draw(), console=console, auto_refresh=False, screen=False) as live:
        while True:
            time.sleep(interval)
            live.update(draw(), refresh=True)
