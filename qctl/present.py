"""How results look in the human table (``-o table``): what an operator at a terminal wants first.

csv, json and jsonl keep every field exactly; only the table chooses columns and words:

* peek shows why a message died (REASON, SOURCE, DIED) whenever any message has dead-letter
  metadata, leaves out columns that are empty for every row, and shows a binary body as
  ``<1.2 KB binary> 00 1f 8b …`` (not base64, which reads like a URL);
* redrive, move and purge print a summary line, then a table per target;
* on a terminal, stats draws attention to what needs it (:func:`stats_attention`): dead letters waiting,
  and lag or other figures over a threshold the operator gave.  Only the rich table is styled; ``NO_COLOR``
  and output that is not a terminal stay plain.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qctl import output

BODY_CHARS = 60
REASON_CHARS = 40
HEX_BYTES = 8
PEEK_COLUMNS = ("position", "timestamp", "key", "redelivered", "delivery_count", "reason", "source", "died", "body")
ALWAYS = frozenset({"position", "body", "queue", "depth"})
ALARM = "bold red"  # something is wrong: dead letters waiting, a threshold the operator set is crossed
NOTICE = "yellow"  # worth a look, not necessarily wrong: consumers behind, no threshold given


def size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    for unit in ("KB", "MB", "GB"):
        count_f = count / 1024
        if count_f < 1024 or unit == "GB":
            return f"{count_f:.1f} {unit}"
        count = int(count_f)
    return f"{count} B"


def body_text(record: Mapping[str, Any]) -> str:
    """A body as one table cell: text cut to fit, or ``<1.2 KB binary> 00 1f 8b …``."""
    if record["body_encoding"] != "utf-8":
        raw = base64.b64decode(record["body"])
        head = " ".join(f"{byte:02x}" for byte in raw[:HEX_BYTES])
        return f"<{size(len(raw))} binary> {head}" + (" …" if len(raw) > HEX_BYTES else "")
    return cut(record["body"].replace("\n", "\\n"), BODY_CHARS)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def peek_rows(records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Table rows and columns for peek: dead-letter columns when any message has them, no empty columns."""
    rows = []
    for record in records:
        dead = record.get("dead_letter") or {}
        rows.append({**record, "body": body_text(record), "reason": cut(dead.get("reason") or "", REASON_CHARS) or None,
                     "source": dead.get("source_queue"), "died": dead.get("time")})
    return rows, non_empty(rows, PEEK_COLUMNS)


def non_empty(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    """``columns`` without those that are empty (null or "") for every row; key columns always stay."""
    if not rows:
        return [column for column in columns if column in ALWAYS] or list(columns)
    return [column for column in columns
            if column in ALWAYS or any(row.get(column) not in (None, "") for row in rows)]


def moved_summary(record: Mapping[str, Any]) -> None:
    """``qctl redrive``/``move`` results: one summary line, then MOVED (or WOULD_MOVE) per target."""
    out = sys.stdout
    source, moved, skipped, failed = record["source"], record["moved"], record["skipped"], record["failed"]
    targets: Mapping[str, int] = record.get("targets") or {}
    if record.get("dry_run"):
        out.write(output.visible(f"dry run: would move {sum(targets.values())} message(s) from {source}, "
                                 f"{skipped} would stay; nothing moved") + "\n")
        column = "would_move"
    else:
        out.write(output.visible(f"moved {moved} message(s) from {source}; {skipped} skipped, {failed} failed")
                  + "\n")
        column = "moved"
    if targets:
        out.write("\n")
        output.rows([{"target": target, column: count} for target, count in targets.items()], "table",
                    ["target", column])
    out.flush()


def purged_summary(record: Mapping[str, Any]) -> None:
    parts = [f"purged {record['purged']} message(s) from {record['queue']}"]
    if record.get("kept") is not None:
        parts.append(f"{record['kept']} kept (not selected by --where)")
    if record.get("backup"):
        parts.append(f"backup: {record['backup']}")
    if record.get("dry_run"):
        parts = [f"dry run: would purge {record['purged']} message(s) from {record['queue']}"
                 + (f", keeping {record['kept']}" if record.get("kept") is not None else "") + "; nothing changed"]
    sys.stdout.write(output.visible("; ".join(parts)) + "\n")
    sys.stdout.flush()


def stats_attention(records: Sequence[Mapping[str, Any]], *, is_dead_letter_name: Callable[[Mapping[str, Any]], bool],
                    fail_above: int | None = None, fail_lag_above: int | None = None,
                    fail_age_above: float | None = None) -> list[dict[str, str]]:
    """One ``{column: style}`` per stats row, for the rich table on a terminal.

    * A dead-letter queue holding messages is ALARM: the row's DEAD_LETTER_QUEUE and DEAD_LETTER_DEPTH when
      ``dead_letter_depth`` > 0, and QUEUE and DEPTH of a row that is itself a DLQ (another row names it
      as its dead-letter queue, or its name follows the dead-letter naming) with depth > 0.
    * Lag: with ``--fail-lag-above N``, a lag over N is ALARM and any lag up to N is plain.  Without it, any
      lag > 0 is NOTICE (yellow, not red).  Why: at 3 a.m. the operator who gave N has said what is too
      much, and a red cell must mean exactly the rows that make the run exit 5, with nothing else lit to
      hide them; the operator who gave none is looking for where consumers are behind, and a busy Kafka
      group always is by a little, so it is pointed at without being called an error.
    * Likewise DEPTH over ``--fail-above`` and OLDEST_AGE over ``--fail-age-above`` are ALARM (the cells
      behind an exit 5); without those thresholds depth and age are not styled: a deep queue is not wrong.
    """
    own = {(row.get("broker"), row.get("dead_letter_queue")) for row in records if row.get("dead_letter_queue")}
    styles = []
    for row in records:
        style: dict[str, str] = {}
        dead_depth = row.get("dead_letter_depth")
        if isinstance(dead_depth, int) and dead_depth > 0:
            style["dead_letter_queue"] = style["dead_letter_depth"] = ALARM
        depth = row.get("depth")
        if isinstance(depth, int) and depth > 0 and (
                (row.get("broker"), row.get("queue")) in own or is_dead_letter_name(row)):
            style["queue"] = style["depth"] = ALARM
        if fail_above is not None and isinstance(depth, int) and depth > fail_above:
            style["depth"] = ALARM
        lag = row.get("lag")
        if isinstance(lag, int) and lag > 0:
            if fail_lag_above is None:
                style["lag"] = NOTICE
            elif lag > fail_lag_above:
                style["lag"] = ALARM
        age = row.get("oldest_age")
        if fail_age_above is not None and isinstance(age, (int, float)) and age > fail_age_above:
            style["oldest_age"] = ALARM
        styles.append(style)
    return styles
