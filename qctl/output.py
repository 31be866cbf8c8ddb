"""Render results: table, json, jsonl, csv and Prometheus text.

Data goes to stdout, messages to stderr.  rich and tabulate are imported inside
functions so that ``qctl --help`` stays fast.  A table is drawn with rich only
when stdout is a terminal; otherwise it is plain aligned text without colour or
box drawing, so scripts can cut it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from qctl.errors import UsageError
from qctl.urls import redact

FORMATS = ("table", "json", "jsonl", "csv", "prom")


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour_allowed() -> bool:
    return "NO_COLOR" not in os.environ


def rows(records: Sequence[Mapping[str, Any]], fmt: str, columns: Sequence[str], *,
         stream: TextIO | None = None, title: str | None = None) -> None:
    """Print a list of rows; ``columns`` orders the table and csv (json keeps every field)."""
    out = stream or sys.stdout
    if fmt == "json":
        # One row per line: readable, and json's C encoder (indent= falls back to pure Python,
        # ten times slower over 10k rows).
        lines = ",\n  ".join(json.dumps(record, ensure_ascii=False) for record in records)
        out.write(f"[\n  {lines}\n]\n" if records else "[]\n")
    elif fmt == "jsonl":
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        _csv(records, columns, out)
    elif fmt == "table":
        table(records, columns, out, title=title)
    else:
        raise UsageError(f"output format {fmt!r} is not available for this command",
                         hint="use table, json, jsonl or csv")
    out.flush()


def result(record: Mapping[str, Any], fmt: str, *, stream: TextIO | None = None) -> None:
    """Print one result object (purge, redrive, restore)."""
    out = stream or sys.stdout
    if fmt == "json":
        out.write(json.dumps(record, ensure_ascii=False, indent=2) + "\n")
    elif fmt == "jsonl":
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        _csv([record], list(record), out)
    elif fmt == "table":
        width = max(len(key) for key in record)
        for key, value in record.items():
            out.write(f"{key.ljust(width)}  {visible(cell(value))}\n")
    else:
        raise UsageError(f"output format {fmt!r} is not available for this command",
                         hint="use table, json, jsonl or csv")
    out.flush()


def cell(value: Any) -> str:
    """How one value looks in a table or csv cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _csv(records: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow(["" if record.get(col) is None else cell(record.get(col)) for col in columns])
    out.write(buffer.getvalue())


# Control characters (C0, DEL, C1) from a broker never reach a terminal raw: shown escaped.
_ESCAPES = {**{code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7f, 0xa0))},
            ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"}


def visible(text: str) -> str:
    """``text`` with every control character escaped (``\\x1b``), for tables."""
    return text.translate(_ESCAPES) if not text.isprintable() else text


def table(records: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO, *,
          title: str | None = None) -> None:
    data = [[visible(cell(record.get(col))) for col in columns] for record in records]
    if is_terminal(out):
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        grid = Table(title=title, header_style="bold" if colour_allowed() else None)
        numeric = {col for col in columns if records and all(
            isinstance(r.get(col), int) or r.get(col) is None for r in records)}
        for col in columns:
            grid.add_column(col.upper(), justify="right" if col in numeric else "left",
                            overflow="fold")
        for line in data:
            grid.add_row(*(Text(value) for value in line))  # Text: a body's "[red]" is not markup
        Console(file=out, no_color=not colour_allowed(), highlight=False).print(grid)
        return
    from tabulate import tabulate

    if not data:
        out.write("  ".join(col.upper() for col in columns) + "\n")
        return
    out.write(tabulate(data, headers=[col.upper() for col in columns], tablefmt="plain",
                       disable_numparse=True) + "\n")


def prometheus(records: Sequence[Mapping[str, Any]], *, stream: TextIO | None = None) -> None:
    """Prometheus text exposition of ``stats`` rows (node_exporter textfile collector)."""
    out = stream or sys.stdout
    metrics = (
        ("qctl_queue_depth", "depth", "Messages waiting in the queue."),
        ("qctl_queue_in_flight", "in_flight", "Messages delivered but not yet acknowledged."),
        ("qctl_queue_consumers", "consumers", "Consumers attached to the queue."),
        ("qctl_queue_lag", "lag", "Largest consumer-group lag of the queue."),
        ("qctl_dead_letter_depth", "dead_letter_depth", "Messages in the queue's dead-letter queue."),
    )
    for name, field, help_text in metrics:
        present = [r for r in records if r.get(field) is not None]
        out.write(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
        for record in present:
            out.write(f"{name}{{{_labels(record, field)}}} {record[field]}\n")
    out.flush()


def _labels(record: Mapping[str, Any], field: str) -> str:
    labels = {"backend": record.get("backend"), "queue": record.get("queue")}
    if record.get("group") is not None:
        labels["group"] = record["group"]
    if field == "dead_letter_depth" and record.get("dead_letter_queue"):
        labels["dead_letter_queue"] = record["dead_letter_queue"]
    if record.get("broker"):
        labels["broker"] = record["broker"]
    return ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items() if value is not None)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def error(message: str) -> None:
    sys.stderr.write(f"qctl: error: {visible(redact(message))}\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    sys.stderr.write(f"qctl: warning: {visible(redact(message))}\n")
    sys.stderr.flush()


def note(message: str) -> None:
    sys.stderr.write(f"qctl: {visible(redact(message))}\n")
    sys.stderr.flush()
