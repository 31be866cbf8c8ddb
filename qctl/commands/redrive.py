"""``qctl redrive`` and ``qctl move``: one engine pass each (rules in :mod:`qctl.redrive`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qctl import engine, guard, output, present, redrive
from qctl.adapter import Adapter
from qctl.commands.common import notes, open_adapter, print_notices
from qctl.config import Target
from qctl.engine import Fixed, Lookup, PassSpec, Tally
from qctl.errors import PartialRedrive, UsageError
from qctl.models import RedriveResult
from qctl.primitives import ReadMode
from qctl.progress import for_terminal
from qctl.redrive import MoveRules, RedriveRequest, RedriveRules
from qctl.signals import graceful, interrupted


def run_redrive(chosen: Target, dlq: str, request: RedriveRequest, fmt: str, *, quiet: bool,
                given: dict[str, Any], flags: dict[str, Any]) -> None:
    redrive.check_request(dlq, request)
    # Tells an adapter this MOVE pass is a redrive, not a move: one with no dead letters refuses only this.
    with open_adapter(chosen, given=given, flags={**flags, "redrive": True}) as adapter:
        adapter.check_name(dlq)
        if request.to is not None:
            adapter.check_name(request.to)
            adapter.destination(request.to)  # exit 4 (or 2) before anything moves
        reader = adapter.reader(dlq, ReadMode.MOVE)
        try:
            redrive.check_source(dlq, request, reader.traits)
        except UsageError:
            reader.close()
            raise
        if request.dry_run and guard.dry_run_from_figures(dlq, reader.traits, needs_messages=request.needs_messages):
            tally = _counted_from_figures(reader, request.to, request.limit)
        else:
            rules = RedriveRules(dlq, request, adapter.options.dead_letter, origin=reader.traits.origin)
            tally = _run_pass(PassSpec(
                reader=reader, decide=rules, destinations=Lookup(adapter.destination), progress=for_terminal(quiet),
                description=f"redrive {dlq}", dry_run=request.dry_run, limit=request.limit, rate=request.rate,
                requeue=adapter.destination(dlq) if reader.traits.counts_reads and not request.dry_run else None,
                blind_target=rules.blind_target(reader.traits), server_move=rules.server_move(reader.traits)))
        print_notices(adapter, quiet)
    _report(redrive.result(dlq, tally, dry_run=request.dry_run), tally, request, fmt, quiet, what="redrive")


def _counted_from_figures(reader: Any, to: str | None, limit: int | None) -> Tally:
    """A dry run that may not read (see qctl.guard): the snapshot's size, all to --to."""
    try:
        total = reader.total() or 0
    finally:
        reader.close()
    tally = Tally()
    count = total if limit is None else min(total, limit)
    if to is not None and count:
        tally.moved = count
        tally.targets[to] = count
    return tally


def _run_pass(spec: PassSpec) -> Tally:
    with graceful() as stop:
        spec.stop = stop
        try:
            return engine.run(spec)
        finally:
            spec.progress.finish()


def _report(result: RedriveResult, tally: Tally, request: RedriveRequest, fmt: str, quiet: bool, *,
            what: str) -> None:
    record: dict[str, Any] = {"source": result.source, "moved": result.moved, "skipped": result.skipped,
                              "failed": result.failed, "targets": dict(result.targets)}
    if result.dry_run:
        record["dry_run"] = True
    if fmt == "table":
        present.moved_summary(record)
    else:
        output.result(record, fmt)
        if result.dry_run and not quiet:
            output.note("dry run: counts per target shown as 'targets'; nothing moved")
    notes(redrive.notices(tally, request.where), quiet)
    if tally.interrupted:
        raise interrupted(tally.interrupted, what, hint="run it again to move the rest")
    if not result.dry_run and redrive.partial(tally):
        raise PartialRedrive(f"{result.skipped} skipped and {result.failed} failed message(s) left in "
                             f"{result.source!r}; nothing lost")


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveRun:
    copy: bool = False
    request: RedriveRequest


def run_move(source: Target, source_queue: str, dest: Target, dest_queue: str, run: MoveRun, fmt: str, *,
             quiet: bool, source_flags: dict[str, Any], given: dict[str, Any]) -> None:
    request = run.request
    same_broker = source.options.url.render(masked=False) == dest.options.url.render(masked=False)
    if same_broker and source_queue == dest_queue:
        raise UsageError(f"move from {source_queue!r} to itself", hint="name another destination queue")
    with open_adapter(source, given=given, flags=source_flags) as src:
        dst_cm = _Borrowed(src) if same_broker else open_adapter(dest)
        with dst_cm as dst:
            src.check_name(source_queue)
            dst.check_name(dest_queue)
            target = dst.destination(dest_queue)  # exit 4 before anything moves
            reader = src.reader(source_queue, ReadMode.READ if run.copy else ReadMode.MOVE)
            if run.copy:
                guard.check_copy(source_queue, reader.traits, "copy")
            if request.dry_run and guard.dry_run_from_figures(source_queue, reader.traits,
                                                              needs_messages=not request.where.everything):
                tally = _counted_from_figures(reader, dest_queue, request.limit)
            else:
                rules = MoveRules(dest_queue, request.where)
                tally = _run_pass(PassSpec(
                    reader=reader, decide=rules, blind_target=rules.blind_target(reader.traits),
                    destinations=Fixed(target), progress=for_terminal(quiet),
                    description=f"{'copy' if run.copy else 'move'} {source_queue} -> {dest_queue}",
                    settle_sent=not run.copy, dry_run=request.dry_run, limit=request.limit, rate=request.rate,
                    requeue=(src.destination(source_queue)
                             if reader.traits.counts_reads and not request.dry_run and not run.copy else None)))
            print_notices(src, quiet)
            if dst is not src:
                print_notices(dst, quiet)
    _report(redrive.result(source_queue, tally, dry_run=request.dry_run), tally, request, fmt, quiet,
            what="copy" if run.copy else "move")


class _Borrowed:
    """The source's adapter used as the destination's too (one broker: atomic moves, one connection)."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter

    def __enter__(self) -> Adapter:
        return self.adapter

    def __exit__(self, *exc: object) -> None:
        pass
