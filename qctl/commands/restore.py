"""``qctl restore FILE --to QUEUE``: a backup (or peek output) published back, as a stream.

Every line is read and checked first (JSON, a body, a known encoding, valid
base64, within the destination's size and attribute limits): a bad line is
exit 2 naming it, before anything is published.  Then the lines are published
in order, a chunk at a time with confirms pipelined, so memory stays flat
whatever the file's size.  ``--skip N`` resumes after the first N messages; a
restore that stops early (a refused publish: exit 6; a signal: 130/143) says
how many it published in order, which is the ``--skip`` for the rest.  A file
from another backend restores by the mapping of docs/mapping.md: what the
destination cannot keep (a Kafka key in RabbitMQ, AMQP properties in Kafka...)
is dropped and counted in a notice (:mod:`qctl.mapping`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from qctl import output
from qctl.backup import BackupFile
from qctl.commands.common import notes, open_adapter, print_notices
from qctl.config import Target
from qctl.errors import PartialRedrive, UsageError
from qctl.mapping import Dropped
from qctl.models import Message
from qctl.pacing import RateLimiter
from qctl.primitives import Destination
from qctl.progress import Progress, for_terminal
from qctl.signals import StopFlag, graceful, interrupted

CHUNK = 1000
MAX_CHUNKS_IN_FLIGHT = 8


def run_restore(chosen: Target, file: Path, to: str, fmt: str, *, dry_run: bool, skip: int, quiet: bool,
                given: dict[str, Any], rate: float | None = None) -> None:
    backup = BackupFile(file)
    with open_adapter(chosen, given=given) as adapter:
        adapter.check_name(to)
        destination = adapter.destination(to)
        total = backup.validate(destination.refusal)
        if skip > total:
            raise UsageError(f"--skip {skip} is more than the {total} message(s) in {str(file)!r}")
        if dry_run:
            output.result({"queue": to, "restored": 0, "source_file": str(file), "would_restore": total - skip,
                           "dry_run": True}, fmt)
            return
        progress = for_terminal(quiet)
        progress.start(total - skip, f"restore {to}")
        try:
            with graceful() as stop:
                dropped = Dropped()
                published, failed = publish(destination, backup.messages(skip), progress, stop, RateLimiter(rate),
                                            dropped)
        finally:
            progress.finish()
        print_notices(adapter, quiet)
        notes(dropped.notices(repr(to)), quiet)
    output.result({"queue": to, "restored": published, "source_file": str(file), "resume_skip": skip + published},
                  fmt)
    hint = f"rerun with --skip {skip + published} to restore the rest"
    if stop.requested:
        raise interrupted(stop.signal, "restore", hint=hint)
    if failed:
        raise PartialRedrive(f"{to!r} refused a message after {published} of {total - skip} were published "
                             f"in order; nothing lost", hint=hint)


def publish(destination: Destination, lines: Iterator[tuple[int, Message]], progress: Progress,
            stop: StopFlag, limiter: RateLimiter, dropped: Dropped | None = None) -> tuple[int, bool]:
    """(messages confirmed in file order, whether one was refused); stops sending at the first refusal.

    What the destination could not keep of the confirmed messages is counted in ``dropped``."""
    inflight: deque[tuple[Any, list[Message]]] = deque()
    published = 0
    failed = False

    def settle(wait: bool) -> bool:
        nonlocal published, failed
        ticket, chunk = inflight[0]
        results = destination.confirmed(ticket, wait=wait)
        if results is None:
            return False
        inflight.popleft()
        if not failed:
            in_order = next((i for i, ok in enumerate(results) if not ok), len(chunk))
            published += in_order
            failed = in_order < len(chunk)
            progress.advance(in_order)
            if dropped is not None:
                carries = destination.carries  # after a send: a new Redis key takes its first message's shape
                for message in chunk[:in_order]:
                    dropped.count(carries, message)
        return True

    chunk_size = limiter.batch_size(CHUNK)
    while not stop.requested and not failed:
        chunk = [message for _, message in islice(lines, chunk_size)]
        if not chunk:
            break
        limiter.wait(len(chunk))
        inflight.append((destination.send(chunk), chunk))
        while len(inflight) > MAX_CHUNKS_IN_FLIGHT:
            settle(wait=True)
        while inflight and settle(wait=False):
            pass
    while inflight:
        settle(wait=True)
    return published, failed
