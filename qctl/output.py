"""Render results: table, json, jsonl, csv and Prometheus text.

Data goes to stdout, messages to stderr.  rich is imported inside functions so
that ``qctl --help`` stays fast.  A table is drawn with rich only
when stdout is a terminal (and the table is not long, see RICH_ROWS); otherwise it
is plain aligned text without colour or box drawing, so scripts can cut it.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from qctl.errors import UsageError

FORMATS = ("table", "json", "jsonl", "csv", "prom")
# On a terminal, rich draws tables of up to this many rows; longer ones get the plain aligned form. rich
# measures and wraps every cell (~90 us a cell, measured: 0.8 s of CPU for 1,000 stats rows, 8.8 s for
# 10,000), and a table taller than a few screens has scrolled out of sight before its box would help.
RICH_ROWS = 200
WRITE_ROWS = 4096  # JSON rows joined into one write: few system calls, bounded memory


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour_allowed() -> bool:
    return "NO_COLOR" not in os.environ


def styles_shown(count: int, stream: TextIO | None = None) -> bool:
    """Whether a table of ``count`` rows on ``stream`` is drawn by rich in colour: callers work out cell
    styles only then (off a terminal, under NO_COLOR or in a long table they would go unused)."""
    return is_terminal(stream or sys.stdout) and count <= RICH_ROWS and colour_allowed()


def rows(records: Sequence[Mapping[str, Any]], fmt: str, columns: Sequence[str], *,
         stream: TextIO | None = None, title: str | None = None,
         styles: Sequence[Mapping[str, str]] | None = None) -> None:
    """Print a list of rows; ``columns`` orders the table and csv (json keeps every field).

    ``styles`` (one ``{column: rich style}`` per record) draws attention in the rich table only.
    """
    out = stream or sys.stdout
    if fmt == "json":
        # One row per line: readable, and json's C encoder (indent= falls back to pure Python,
        # ten times slower over 10k rows).
        if not records:
            out.write("[]\n")
        else:
            _write_rows(out, records, "[\n  ", ",\n  ", "\n]\n")
    elif fmt == "jsonl":
        _write_rows(out, records, "", "\n", "\n" if records else "")
    elif fmt == "csv":
        _csv(records, columns, out)
    elif fmt == "table":
        table(records, columns, out, title=title, styles=styles)
    else:
        raise UsageError(f"output format {fmt!r} is not available for this command",
                         hint="use table, json, jsonl or csv")
    out.flush()


def _write_rows(out: TextIO, records: Sequence[Mapping[str, Any]], start: str, between: str, end: str) -> None:
    """``start``, the rows as JSON separated by ``between``, then ``end``: written a few thousand rows at a time."""
    encode = row_encoder()
    out.write(start)
    for first in range(0, len(records), WRITE_ROWS):
        if first:
            out.write(between)
        out.write(between.join([encode(record) for record in records[first:first + WRITE_ROWS]]))
    out.write(end)


class JsonLines:
    """JSON lines written as the rows come, WRITE_ROWS lines a write (``peek -o jsonl`` keeps no list of them)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.out = stream or sys.stdout
        self.encode = row_encoder()
        self.pending: list[str] = []

    def write(self, record: Mapping[str, Any]) -> None:
        self.pending.append(self.encode(record))
        if len(self.pending) >= WRITE_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.out.write("\n".join(self.pending) + "\n")
            self.pending.clear()
        self.out.flush()


def row_encoder() -> Callable[[Any], str]:
    """``json.dumps(row, ensure_ascii=False)`` for many rows of JSON-safe values (never cyclic), one C encoder
    for all of them.

    ``json.dumps`` with any option builds a JSONEncoder and then, in ``iterencode``, a new C encoder for every
    call: two thirds of its time on a peek row (measured: 7 us of 20 us left with one encoder built once), so
    a million-record ``peek -o jsonl`` spent seconds making encoders.  ``json.encoder.c_make_encoder`` is
    what ``iterencode`` itself calls, with the same arguments; it is checked against ``json.dumps`` once and
    left for ``json.dumps`` where it is missing (Pythons without the C accelerator) or differs.
    """
    import json
    from json import encoder

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    make = getattr(encoder, "c_make_encoder", None)
    if make is None:
        return dumps
    try:
        iterate = make(None, encoder.JSONEncoder().default, encoder.encode_basestring, None, ": ", ", ", False,
                       False, True)
        sample = {"a": [1, 2.5, None, True], "é\n": {"x": "\u2028\x00"}, "n": -0.0}

        def encode(value: Any) -> str:
            return "".join(iterate(value, 0))

        if encode(sample) != dumps(sample):
            return dumps
    except (TypeError, ValueError):
        return dumps
    return encode


def result(record: Mapping[str, Any], fmt: str, *, stream: TextIO | None = None) -> None:
    """Print one result object (purge, redrive, restore)."""
    import json  # here and where JSON is written: not imported by every qctl --version

    out = stream or sys.stdout
    if fmt == "json":
        out.write(json.dumps(record, ensure_ascii=False, indent=2) + "\n")
    elif fmt == "jsonl":
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        _csv([record], list(record), out)
    elif fmt == "table":
        keys = {key: visible(str(key)) for key in record}  # a session's client id can be anything
        width = max((len(shown_key) for shown_key in keys.values()), default=0)
        for key, value in record.items():
            out.write(f"{keys[key].ljust(width)}  {visible(cell(value))}\n")
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
        import json

        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _csv(records: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    import csv  # here: only csv output needs it

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


def shown(value: Any) -> str:
    """``visible(cell(value))``, with the common cases (missing, already text) first: called once a cell."""
    if value is None:
        return "-"
    text = value if type(value) is str else cell(value)
    return text if text.isprintable() else text.translate(_ESCAPES)


def table(records: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO, *,
          title: str | None = None, styles: Sequence[Mapping[str, str]] | None = None) -> None:
    """Rich on a terminal (up to RICH_ROWS rows), else :func:`plain`.

    ``styles``, one ``{column: rich style}`` per record, colours cells of the rich table only, and only
    when colour is allowed: rich's ``no_color`` drops colours but keeps bold, so under ``NO_COLOR`` the
    styles are not given to rich at all, and the plain form never sees them (scripts cut it).
    """
    data = [[shown(record.get(col)) for col in columns] for record in records]
    terminal = is_terminal(out)
    if terminal and len(data) <= RICH_ROWS:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        coloured = colour_allowed()
        grid = Table(title=title, header_style="bold" if coloured else None)
        numeric = {col for col in columns if records and all(
            isinstance(r.get(col), int) or r.get(col) is None for r in records)}
        for col in columns:
            grid.add_column(col.upper(), justify="right" if col in numeric else "left",
                            overflow="fold")
        marks: Sequence[Mapping[str, str]] = styles if styles and coloured else ()
        for index, line in enumerate(data):
            mark = marks[index] if index < len(marks) else {}
            # Text: a body's "[red]" is not markup
            grid.add_row(*(Text(value, style=mark.get(col, "")) for col, value in zip(columns, line, strict=True)))
        Console(file=out, no_color=not coloured, highlight=False).print(grid)
        return
    if not data:
        out.write("  ".join(col.upper() for col in columns) + "\n")
        return
    text = plain(data, [col.upper() for col in columns])
    if terminal and colour_allowed():  # a long table on a terminal: the plain form, its header line bold
        head, _, body = text.partition("\n")
        text = f"\x1b[1m{head}\x1b[0m\n{body}"
    out.write(text)


def plain(data: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Left-aligned columns, two spaces apart, each at least its header plus two wide; no trailing blanks.

    Byte for byte what ``tabulate(data, headers, tablefmt="plain", disable_numparse=True)``
    printed before (tests/perf/test_render.py compares the two on generated tables), without its
    cost: tabulate sniffs the type of every cell (int? float? bool? ANSI codes? several lines?),
    ~3 us a cell, ~0.3 s for a 10,000-row ``stats``, and takes ~65 ms to import; here every cell
    is already a string (``cell`` + ``visible``: no ANSI codes, no line breaks), so a column's
    width is the longest stripped cell, measured once (bench/results/core.md has both timed).
    Widths count characters, as tabulate does without the optional wcwidth package.
    """
    stripped = [[value.strip() for value in line] for line in data]
    widths = [len(header) + 2 for header in headers]
    for index, column in enumerate(zip(*stripped, strict=True)):
        widths[index] = max(widths[index], max(map(len, column)))
    row = "  ".join(f"%-{width}s" for width in widths)  # one format per line, not a ljust per cell
    return "\n".join([(row % tuple(line)).rstrip() for line in (headers, *stripped)]) + "\n"


def prometheus(records: Sequence[Mapping[str, Any]], *, stream: TextIO | None = None) -> None:
    """Prometheus text exposition of ``stats`` rows (node_exporter textfile collector)."""
    out = stream or sys.stdout
    metrics = (
        ("qctl_queue_depth", "depth", "Messages waiting in the queue."),
        ("qctl_queue_in_flight", "in_flight", "Messages delivered but not yet acknowledged."),
        ("qctl_queue_consumers", "consumers", "Consumers attached to the queue."),
        ("qctl_queue_lag", "lag", "Largest consumer-group lag of the queue."),
        ("qctl_dead_letter_depth", "dead_letter_depth", "Messages in the queue's dead-letter queue."),
        ("qctl_queue_oldest_age_seconds", "oldest_age", "Seconds since the oldest waiting message was enqueued."),
        # With --watch: rates since the previous frame.
        ("qctl_queue_in_rate", "in_rate", "Messages per second into the queue since the previous frame."),
        ("qctl_queue_out_rate", "out_rate", "Messages per second out of the queue since the previous frame."),
        ("qctl_queue_drain_eta_seconds", "drain_eta", "Seconds until the queue is empty at the current net rate."),
    )
    rated = any("in_rate" in r for r in records)
    for name, field, help_text in metrics:
        if field in ("in_rate", "out_rate", "drain_eta") and not rated:
            continue  # not a --watch run: no rate gauges at all
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


def _redacted(message: str) -> str:
    # qctl.urls (regexes, urllib.parse, hashlib) is imported when a message is printed, not by every
    # ``qctl --version``: ~20 ms of a start-up that must stay within 1.2x of importing typer.
    from qctl.urls import redact

    return visible(redact(message))


def error(message: str) -> None:
    sys.stderr.write(f"qctl: error: {_redacted(message)}\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    sys.stderr.write(f"qctl: warning: {_redacted(message)}\n")
    sys.stderr.flush()


def note(message: str) -> None:
    sys.stderr.write(f"qctl: {_redacted(message)}\n")
    sys.stderr.flush()
