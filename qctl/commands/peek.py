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
        scanned = 0
        messages = adapter.peek(queue, reading)
        try:
            for message in messages:
                scanned += 1
                if selection(message):
                    shown.append(message)
                    if len(shown) >= wanted:
                        break
        finally:
            close = getattr(messages, "close", None)
            if close is not None:
                close()  # a generator's finally returns what it took (RabbitMQ)
        print_notices(adapter, quiet)
    if not selection.everything and len(shown) < wanted and scanned >= scan_limit and not quiet:
        output.note(f"stopped after scanning {scanned} message(s) (--scan-limit {scan_limit}): {len(shown)} matched "
                    f"--where; raise --scan-limit to look further")
    records = [message_to_json(message) for message in shown]
    if fmt == "table":
        rows, columns = present.peek_rows(records)
        output.rows(rows, fmt, columns)
    else:
        output.rows(records, fmt, list(records[0]) if records else list(present.PEEK_COLUMNS))
