"""What each command does between parsing and rendering.

Resolve the broker (config precedence), open its adapter through the registry,
call it, render the dataclasses it returns, and turn outcomes into exit codes.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qctl import config, output, registry
from qctl.adapter import Adapter, NoProgress, Progress
from qctl.codec import message_to_json
from qctl.config import Target
from qctl.errors import PartialRedrive, ThresholdCrossed, UsageError
from qctl.models import PeekRequest, PurgeRequest, QueueStats, RedriveRequest

STATS_COLUMNS = ("queue", "type", "depth", "in_flight", "consumers", "lag", "dead_letter_queue",
                 "dead_letter_depth")
PEEK_COLUMNS = ("position", "timestamp", "key", "redelivered", "delivery_count", "body")
TABLE_BODY_CHARS = 60


def check_format(fmt: str, *, allow_prom: bool = False) -> None:
    allowed = output.FORMATS if allow_prom else tuple(f for f in output.FORMATS if f != "prom")
    if fmt not in allowed:
        raise UsageError(f"unknown output format {fmt!r}", hint="choose one of " + ", ".join(allowed))


def _loaded_config() -> config.Config:
    loaded = config.load()
    for warning in loaded.warnings:
        output.warn(warning)
    return loaded


def target(url: str | None, profile: str | None, management_url: str | None, timeout: float) -> Target:
    return config.resolve(_loaded_config(), url=url, profile=profile, management_url=management_url,
                          timeout=timeout)


def targets(urls: Sequence[str], profiles: Sequence[str], management_url: str | None,
            timeout: float) -> list[Target]:
    """Every broker named by repeated ``-u``/``-p`` (one when none is named); the config is read once."""
    loaded = _loaded_config()
    if not urls and not profiles:
        return [config.resolve(loaded, management_url=management_url, timeout=timeout)]
    chosen = [config.resolve(loaded, url=url, management_url=management_url, timeout=timeout) for url in urls]
    chosen += [config.resolve(loaded, profile=name, management_url=management_url, timeout=timeout)
               for name in profiles]
    return chosen


def open_adapter(chosen: Target) -> Adapter:
    cls = registry.adapter_class(chosen.options.url.scheme)
    return cls(chosen.options)


def print_notices(adapter: Adapter, quiet: bool) -> None:
    if not quiet:
        for notice in dict.fromkeys(adapter.notices):
            output.note(notice)
    adapter.notices.clear()


# --- stats -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsRun:
    patterns: Sequence[str]
    groups: bool = False
    include_internal: bool = False
    fail_above: int | None = None
    fail_lag_above: int | None = None


def collect_stats(adapters: Sequence[tuple[Target, Adapter]], run: StatsRun) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    several = len(adapters) > 1
    for chosen, adapter in adapters:
        for row in adapter.stats(run.patterns, groups=run.groups):
            record = _stats_record(row, run.groups)
            if several:
                record = {"broker": str(chosen.options.url), **record}
            records.append(record)
    return records


def _stats_record(row: QueueStats, groups: bool) -> dict[str, Any]:
    # Rows hold flat values: a shallow dict is enough (asdict deep-copies, slow over 10k rows).
    record = {field.name: getattr(row, field.name) for field in dataclasses.fields(row)}
    if not groups:
        record.pop("group")
    return record


def _stats_columns(run: StatsRun, several: bool) -> list[str]:
    columns = list(STATS_COLUMNS)
    if run.groups:
        columns.insert(1, "group")
    if several:
        columns.insert(0, "broker")
    return columns


def _open_all(chosen: Sequence[Target], include_internal: bool) -> list[tuple[Target, Adapter]]:
    opened = []
    for item in chosen:
        if include_internal:
            item = dataclasses.replace(item, options=dataclasses.replace(item.options, include_internal=True))
        opened.append((item, open_adapter(item)))
    return opened


def render_stats(records: list[dict[str, Any]], run: StatsRun, fmt: str, several: bool) -> None:
    if fmt == "prom":
        output.prometheus(records)
    else:
        output.rows(records, fmt, _stats_columns(run, several))


def run_stats(chosen: Sequence[Target], run: StatsRun, fmt: str, *, quiet: bool = False) -> None:
    opened = _open_all(chosen, run.include_internal)
    try:
        records = collect_stats(opened, run)
        for _, adapter in opened:
            print_notices(adapter, quiet)
    finally:
        for _, adapter in opened:
            adapter.close()
    render_stats(records, run, fmt, len(opened) > 1)
    check_thresholds(records, run)


def check_thresholds(records: Sequence[dict[str, Any]], run: StatsRun) -> None:
    crossed = []
    for record in records:
        depth, lag = record.get("depth"), record.get("lag")
        if run.fail_above is not None and depth is not None and depth > run.fail_above:
            crossed.append(f"{record['queue']} depth {depth} > {run.fail_above}")
        if run.fail_lag_above is not None and lag is not None and lag > run.fail_lag_above:
            crossed.append(f"{record['queue']} lag {lag} > {run.fail_lag_above}")
    if crossed:
        more = f" (and {len(crossed) - 3} more)" if len(crossed) > 3 else ""
        raise ThresholdCrossed("threshold crossed: " + "; ".join(crossed[:3]) + more)


def watch_stats(chosen: Sequence[Target], run: StatsRun, fmt: str, interval: float) -> None:
    """Redraw until Ctrl-C (exit 0): a live table on a terminal, repeated output otherwise."""
    opened = _open_all(chosen, run.include_internal)
    several = len(opened) > 1
    try:
        if fmt == "table" and output.is_terminal(sys.stdout):
            _watch_live(opened, run, interval, several)
        else:
            while True:
                render_stats(collect_stats(opened, run), run, fmt, several)
                if fmt == "table":
                    sys.stdout.write("\n")
                sys.stdout.flush()
                time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        for _, adapter in opened:
            adapter.close()


def _watch_live(opened: Sequence[tuple[Target, Adapter]], run: StatsRun, interval: float,
                several: bool) -> None:
    import io

    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(no_color=not output.colour_allowed())

    def frame() -> Text:
        buffer = io.StringIO()
        output.table(collect_stats(opened, run), _stats_columns(run, several), buffer)
        stamp = time.strftime("%H:%M:%S")
        return Text(f"every {interval:g}s, {stamp}, Ctrl-C to stop\n" + buffer.getvalue())

    with Live(frame(), console=console, auto_refresh=False, screen=False) as live:
        while True:
            time.sleep(interval)
            live.update(frame(), refresh=True)


# --- peek ------------------------------------------------------------------


def run_peek(chosen: Target, queue: str, request: PeekRequest, fmt: str, *, quiet: bool) -> None:
    with open_adapter(chosen) as adapter:
        messages = adapter.peek(queue, request)
        print_notices(adapter, quiet)
    records = [message_to_json(message) for message in messages]
    if fmt == "table":
        output.rows([_peek_table_row(record) for record in records], fmt, PEEK_COLUMNS)
    else:
        output.rows(records, fmt, list(records[0]) if records else list(PEEK_COLUMNS))


def _peek_table_row(record: dict[str, Any]) -> dict[str, Any]:
    body = record["body"] if record["body_encoding"] == "utf-8" else "base64:" + record["body"]
    body = body.replace("\n", "\\n")
    if len(body) > TABLE_BODY_CHARS:
        body = body[: TABLE_BODY_CHARS - 1] + "…"
    return {**record, "body": body}


# --- purge -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeRun:
    yes: bool
    force: bool
    dry_run: bool
    backup: Path | None


def run_purge(chosen: Target, queue: str, run: PurgeRun, fmt: str, *, quiet: bool) -> None:
    from qctl.confirm import confirm_purge, refuse_protected

    refuse_protected(chosen, queue, force=run.force)
    with open_adapter(chosen) as adapter:
        depth = adapter.depth(queue)
        if run.dry_run:
            output.result({"queue": queue, "purged": depth, "backup": None, "dry_run": True}, fmt)
            if not quiet:
                output.note(f"dry run: would purge {depth} message(s) from {queue}; nothing changed")
            return
        if not run.yes:
            confirm_purge(chosen, queue, depth)
        writer = None
        progress: Progress = NoProgress()
        if run.backup is not None:
            from qctl.backup import BackupWriter
            from qctl.progress import for_terminal

            progress = for_terminal(quiet)
            writer = BackupWriter(run.backup, progress)
            progress.start(depth, f"backup and purge {queue}")
        try:
            result = adapter.purge(queue, PurgeRequest(backup=writer))
        finally:
            progress.finish()
            if writer is not None:
                writer.close()
        print_notices(adapter, quiet)
    output.result({"queue": result.queue, "purged": result.purged, "backup": result.backup}, fmt)
    if result.remaining_unacked and not quiet:
        output.note(f"{result.remaining_unacked} unacknowledged message(s) stay in {queue} "
                    f"(held by consumers; they return to the queue if not acknowledged)")


# --- redrive ---------------------------------------------------------------


def run_redrive(chosen: Target, dlq: str, request: RedriveRequest, fmt: str, *, quiet: bool) -> None:
    from qctl.progress import for_terminal

    progress = for_terminal(quiet)
    with open_adapter(chosen) as adapter:
        try:
            result = adapter.redrive(dlq, request, progress)
        finally:
            progress.finish()
        print_notices(adapter, quiet)
    record = {"source": result.source, "moved": result.moved, "skipped": result.skipped,
              "failed": result.failed, "targets": dict(result.targets)}
    if result.dry_run:
        record["dry_run"] = True
    output.result(record, fmt)
    if result.dry_run and not quiet:
        output.note("dry run: counts per target shown as 'targets'; nothing moved")
    if (result.skipped or result.failed) and not result.dry_run:
        raise PartialRedrive(f"{result.skipped} skipped and {result.failed} failed message(s) "
                             f"left in {dlq}; nothing lost")


# --- restore ---------------------------------------------------------------


def run_restore(chosen: Target, file: Path, to: str, dry_run: bool, fmt: str, *, quiet: bool) -> None:
    from qctl.backup import read_messages
    from qctl.progress import for_terminal

    messages = list(read_messages(file))
    if dry_run:
        output.result({"queue": to, "restored": 0, "source_file": str(file), "would_restore": len(messages),
                       "dry_run": True}, fmt)
        return
    progress = for_terminal(quiet)
    with open_adapter(chosen) as adapter:
        try:
            progress.start(len(messages), f"restore {to}")
            restored = adapter.publish(to, messages, progress)
        finally:
            progress.finish()
    output.result({"queue": to, "restored": restored, "source_file": str(file)}, fmt)
