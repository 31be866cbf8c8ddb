"""``qctl purge`` and ``qctl backup``: delete (or only copy) what a queue holds, after writing it down.

A plain purge is the broker's own fast purge.  With ``--backup`` or ``--where``
it is an engine pass (:mod:`qctl.engine`) whose destination is the backup
file (or nothing): each chunk is written and synced before the source settles
it, so only what was written is deleted.  ``qctl backup`` is the same pass
with nothing settled: a copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qctl import engine, guard, output, present
from qctl.adapter import Adapter
from qctl.backup import BackupDestination, BackupWriter
from qctl.commands.common import notes, open_adapter, print_notices
from qctl.config import Target
from qctl.confirm import confirm_purge, refuse_protected
from qctl.engine import Decision, Fixed, PassSpec, Send, Tally
from qctl.errors import LocalFileError, Unsupported
from qctl.models import Message
from qctl.primitives import Carries, Destination, Reader, ReadMode, Sync, Taken, sync_confirmed
from qctl.progress import for_terminal
from qctl.redrive import NOT_SELECTED, UNSELECTED
from qctl.redrive import notices as pass_notices
from qctl.selection import Selection
from qctl.signals import graceful, interrupted

SINK = "backup"


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeRun:
    yes: bool
    force: bool
    dry_run: bool
    backup: Path | None
    where: str | None = None


class Discard:
    """The destination of a purge --where without --backup: confirmed at once, kept nowhere."""

    queue = "(deleted)"
    carries = Carries(key=True, headers=True, header_repeats=True, properties=True, timestamp=True)

    def refusal(self, message: Message) -> str | None:
        return None

    def send(self, messages: Sequence[Message]) -> Sync:
        return Sync([True] * len(messages))

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool]:
        return sync_confirmed(ticket)

    def move_from(self, reader: Any, taken: Sequence[Taken], outgoing: Sequence[Message]) -> None:
        return None


def selected(selection: Selection) -> engine.Decide:
    def decide(message: Message) -> Decision:
        return Send(SINK, message) if selection(message) else UNSELECTED

    return decide


def run_purge(chosen: Target, queue: str, run: PurgeRun, fmt: str, *, quiet: bool, given: dict[str, Any],
              flags: dict[str, Any] | None = None) -> None:
    refuse_protected(chosen, queue, force=run.force)
    selection = Selection(run.where)
    with open_adapter(chosen, given=given, flags=flags) as adapter:
        adapter.check_name(queue)
        depth = adapter.depth(queue)
        if run.dry_run:
            _dry_run(adapter, queue, depth, selection, fmt, quiet)
            return
        if not run.yes:
            confirm_purge(chosen, queue, depth)
        if run.backup is None and selection.everything:
            result = adapter.purge(queue)
            print_notices(adapter, quiet)
            _print({"queue": result.queue, "purged": result.purged, "backup": None}, fmt)
            _unacked_note(result.remaining_unacked, queue, quiet)
            return
        reader = adapter.reader(queue, ReadMode.DELETE)
        if not selection.everything and not reader.traits.deletes_singly:
            reader.close()
            raise Unsupported(f"{adapter.backend} cannot delete single messages from {queue!r}, so purge --where "
                              f"cannot leave the others in place", hint="purge without --where, or qctl move them")
        writer = BackupWriter(run.backup, backend=adapter.backend, queue=queue) if run.backup else None
        try:
            tally = _pass(adapter, queue, reader, selection, writer, quiet, settle=True)
        finally:
            if writer is not None:
                writer.close()
        print_notices(adapter, quiet)
    record: dict[str, Any] = {"queue": queue, "purged": tally.moved, "backup": writer.path if writer else None}
    if not selection.everything:
        record["kept"] = tally.skipped
    _print(record, fmt)
    notes((line for line in pass_notices(tally, selection) if NOT_SELECTED not in line), quiet)
    if tally.interrupted:
        raise interrupted(tally.interrupted, "purge", hint="run it again to purge the rest")


def _pass(adapter: Adapter, queue: str, reader: Reader, selection: Selection, writer: BackupWriter | None,
          quiet: bool, *, settle: bool, limit: int | None = None) -> Tally:
    sink: Destination = BackupDestination(writer) if writer is not None else Discard()
    progress = for_terminal(quiet)
    verb = "back up and purge" if settle and writer else ("purge" if settle else "back up")
    with graceful() as stop:
        requeue = adapter.destination(queue) if reader.traits.counts_reads and settle else None
        spec = PassSpec(reader=reader, decide=selected(selection), destinations=Fixed(sink), progress=progress,
                        description=f"{verb} {queue}", settle_sent=settle, limit=limit, requeue=requeue, stop=stop)
        job = engine.Pass(spec)
        try:
            return job.run()
        except LocalFileError as exc:
            done = job.tally.moved
            what = f"{done} message(s) were backed up" + (" and deleted" if settle else "")
            raise LocalFileError(f"{exc.args[0]}; {what}; the rest are still in {queue!r}") from None
        finally:
            progress.finish()


def _dry_run(adapter: Adapter, queue: str, depth: int, selection: Selection, fmt: str, quiet: bool) -> None:
    record: dict[str, Any] = {"queue": queue, "purged": depth, "backup": None, "dry_run": True}
    if not selection.everything:
        traits = adapter.read_traits(queue)
        guard.dry_run_from_figures(queue, traits, needs_messages=True)
        reader = adapter.reader(queue, ReadMode.READ)
        tally = engine.run(PassSpec(reader=reader, decide=selected(selection), destinations=Fixed(Discard()),
                                    progress=for_terminal(True), description=f"count {queue}", dry_run=True))
        record["purged"], record["kept"] = tally.moved, tally.skipped
    _print(record, fmt)
    print_notices(adapter, quiet)
    if not quiet and fmt != "table":
        output.note(f"dry run: would purge {record['purged']} message(s) from {queue}; nothing changed")


def _print(record: dict[str, Any], fmt: str) -> None:
    if fmt == "table":
        present.purged_summary(record)
    else:
        output.result(record, fmt)


def run_purge_session(chosen: Target, client_id: str, fmt: str, *, yes: bool, force: bool, dry_run: bool,
                      quiet: bool, given: dict[str, Any]) -> None:
    """``purge --session CLIENT_ID``: typed confirmation of the client id, as for a queue."""
    with open_adapter(chosen, given=given) as adapter:
        if not dry_run and not yes:
            preview = adapter.drop_session(client_id, force=force, dry_run=True)
            confirm_purge(chosen, client_id, int(preview.get("queued") or 0), what="session")
        record = adapter.drop_session(client_id, force=force, dry_run=dry_run)
        print_notices(adapter, quiet)
    output.result(dict(record), fmt)


def _unacked_note(unacked: int | None, queue: str, quiet: bool) -> None:
    if unacked and not quiet:
        output.note(f"{unacked} unacknowledged message(s) stay in {queue} "
                    f"(held by consumers; they return to the queue if not acknowledged)")


def run_backup(chosen: Target, queue: str, file: Path, fmt: str, *, where: str | None, limit: int | None,
               quiet: bool, given: dict[str, Any]) -> None:
    selection = Selection(where)
    with open_adapter(chosen, given=given) as adapter:
        adapter.check_name(queue)
        guard.check_copy(queue, adapter.read_traits(queue), "back up")
        reader = adapter.reader(queue, ReadMode.READ)
        writer = BackupWriter(file, backend=adapter.backend, queue=queue)
        try:
            tally = _pass(adapter, queue, reader, selection, writer, quiet, settle=False, limit=limit)
        finally:
            writer.close()
        print_notices(adapter, quiet)
    record: dict[str, Any] = {"queue": queue, "backed_up": tally.moved, "backup": writer.path}
    if not selection.everything:
        record["skipped"] = tally.skipped
    output.result(record, fmt)
    notes((line for line in pass_notices(tally, selection) if NOT_SELECTED not in line), quiet)
    if tally.interrupted:
        raise interrupted(tally.interrupted, "backup", hint="the file holds what was read before the signal")
