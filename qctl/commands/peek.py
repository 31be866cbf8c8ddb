"""``qctl peek``: messages without consuming them, optionally the first N that ``--where`` selects."""

from __future__ import annotations

import dataclasses
from typing import Any

from qctl import guard, output, present
from qctl.codec import message_to_json
from qctl.commands.common import open_adapter, print_notices
from qctl.config import Target
from qctl.models import Message, PeekRequest
from qctl.selection import Selection


def run_peek(chosen: Target, queue: str, request: PeekRequest, fmt: str, *, where: str | None, scan_limit: int,
             quiet: bool, given: dict[str, Any], flags: dict[str, Any] | None = None) -> None:
    selection = Selection(where)
    with open_adapter(chosen, given=given, flags=flags) as adapter:
        adapter.check_name(queue)
        guard.check_peek(queue, adapter.read_traits(queue))
        wanted = request.count
        reading = dataclasses.replace(request, count=wanted if selection.everything else scan_limit)
        shown: list[Message] = []
        # JSON lines go out as messages come, a few thousand a write: a peek of a million records held them all
        # (2.4 GB, and Python's garbage collector walked them again and again) before printing the first.
        lines = output.JsonLines() if fmt == "jsonl" else None
        kept = scanned = 0
        messages = adapter.peek(queue, reading)
        try:
            for message in messages:
                scanned += 1
                if selection(message):
                    kept += 1
                    if lines is not None:
                        lines.write(message_to_json(message))
                    else:
                        shown.append(message)
                    if kept >= wanted:
                        break
        finally:
            close = getattr(messages, "close", None)
            if close is not None:
                close()  # a generator's finally returns what it took (RabbitMQ)
            if lines is not None:
                lines.flush()
        print_notices(adapter, quiet)
    if not selection.everything and kept < wanted and scanned >= scan_limit and not quiet:
        output.note(f"stopped after scanning {scanned} message(s) (--scan-limit {scan_limit}): {kept} matched "
                    f"--where; raise --scan-limit to look further")
    if lines is not None:
        return
    records = [message_to_json(message) for message in shown]
    if fmt == "table":
        rows, columns = present.peek_rows(records)
        output.rows(rows, fmt, columns)
    else:
        output.rows(records, fmt, list(records[0]) if records else list(present.PEEK_COLUMNS))
