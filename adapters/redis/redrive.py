"""``qctl redrive`` for Redis: lists and sorted sets to lists, streams to streams.

Lists and sorted sets carry no metadata, so every message goes to ``--to``,
else to the DLQ's name without its dead-letter suffix (``orders:dlq`` ->
``orders``); they carry no ``x-qctl-redrive-count`` and ``--max-redrives``
does not apply.  Stream entries go to ``--to``, else the queue named in their
fields (``x-original-queue``, ``source_queue``...), else the DLQ's name
without its suffix; each moved entry gets ``x-qctl-redrive-count`` + 1.

Order: a moved message joins the target at its *producer* end, behind what is
already waiting (like a fresh publish, and like RabbitMQ and Kafka redrives),
and the DLQ's oldest message is moved first, so the target's consumers see
the dead letters in their original order.  The run moves at most the
messages present when it starts (``LLEN``/``ZCARD``, or the stream's last ID),
so messages dead-lettered again meanwhile are left for the next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from qctl.adapter import Progress
from qctl.adapters.redis import crossslot, moves, scripts
from qctl.adapters.redis.connection import Client, is_cluster
from qctl.adapters.redis.keys import DEPTH_COMMAND, command, key_bytes, queue_type
from qctl.adapters.redis.messages import redrive_count, source_queue
from qctl.deadletter import DeadLetterNaming
from qctl.errors import Unsupported, UsageError
from qctl.models import RedriveRequest, RedriveResult
from qctl.pacing import RateLimiter


@dataclass(slots=True)
class Tally:
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    targets: Counter[str] = field(default_factory=Counter)

    def result(self, dlq: str, dry_run: bool) -> RedriveResult:
        return RedriveResult(source=dlq, moved=self.moved, skipped=self.skipped, failed=self.failed,
                             targets=dict(self.targets), dry_run=dry_run)


@dataclass(frozen=True, slots=True)
class Run:
    client: Client
    dlq: str
    kind: str
    request: RedriveRequest
    naming: DeadLetterNaming
    list_end: str
    progress: Progress


def redrive(run: Run) -> RedriveResult:
    if run.request.to == run.dlq:
        raise UsageError(f"--to {run.dlq!r} is the dead-letter queue itself")
    if is_cluster(run.client) and not run.request.dry_run:
        crossslot.finish_pending(run.client, run.dlq)
    tally = Tally()
    if run.kind == "stream":
        _streams(run, tally)
    else:
        _lists(run, tally)
    return tally.result(run.dlq, run.request.dry_run)


def _lists(run: Run, tally: Tally) -> None:
    depth = int(command(run.client, DEPTH_COMMAND[run.kind], key_bytes(run.dlq)))
    total = min(depth, run.request.limit or depth)
    target = run.request.to or run.naming.origin(run.dlq)
    if target is None:
        tally.skipped = total  # no metadata and no naming convention: nowhere to send them
        return
    _check_target(run.client, target, "list", run.kind)
    if run.request.dry_run:
        tally.targets[target] = total
        return
    run.progress.start(total, f"redrive {run.dlq} -> {target}")
    limiter = RateLimiter(run.request.rate)
    chunk = limiter.batch_size(scripts.CHUNK)
    while tally.moved < total:
        n = min(chunk, total - tally.moved)
        limiter.wait(n)
        moved = moves.move_list(run.client, run.kind, run.dlq, target, n, run.list_end)
        if moved == 0:
            break  # consumers of the DLQ took the rest
        tally.moved += moved
        tally.targets[target] += moved
        run.progress.advance(moved)


def _streams(run: Run, tally: Tally) -> None:
    key = key_bytes(run.dlq)
    last = command(run.client, "XREVRANGE", key, "+", "-", "COUNT", 1)
    if not last:
        return
    end_id = last[0][0]
    limit = run.request.limit
    run.progress.start(min(int(command(run.client, "XLEN", key)), limit or 1 << 62), f"redrive {run.dlq}")
    limiter = RateLimiter(run.request.rate)
    chunk = limiter.batch_size(scripts.CHUNK)
    kinds: dict[str, bool] = {}
    cursor: bytes = b"-"
    while limit is None or _counted(tally, run.request.dry_run) < limit:
        entries = command(run.client, "XRANGE", key, cursor, end_id, "COUNT", chunk)
        if not entries:
            break
        cursor = b"(" + entries[-1][0]
        room = None if limit is None else limit - _counted(tally, run.request.dry_run)
        batches = _plan(run, entries, tally, room, lambda t: _stream_target_ok(run.client, t, kinds))
        _send(run, batches, tally, limiter)


def _counted(tally: Tally, dry_run: bool) -> int:
    return sum(tally.targets.values()) if dry_run else tally.moved


def _plan(run: Run, entries: list[tuple[bytes, Mapping[bytes, bytes]]], tally: Tally, room: int | None,
          target_ok: Callable[[str], bool]) -> dict[str, list[bytes]]:
    """Entry IDs per target for one chunk, in stream order; counts skipped and failed ones."""
    batches: dict[str, list[bytes]] = {}
    planned = 0
    for entry_id, fields in entries:
        if room is not None and planned >= room:
            break
        target = run.request.to or source_queue(fields) or run.naming.origin(run.dlq)
        max_redrives = run.request.max_redrives
        if target is None or target == run.dlq or (max_redrives is not None
                                                    and redrive_count(fields) >= max_redrives):
            tally.skipped += 1
        elif not target_ok(target):
            tally.failed += 1
        else:
            batches.setdefault(target, []).append(entry_id)
            planned += 1
    return batches


def _send(run: Run, batches: dict[str, list[bytes]], tally: Tally, limiter: RateLimiter) -> None:
    for target, ids in batches.items():
        if run.request.dry_run:
            tally.targets[target] += len(ids)
            continue
        limiter.wait(len(ids))
        moved = moves.move_stream(run.client, run.dlq, target, ids)
        tally.moved += moved
        tally.targets[target] += moved
        run.progress.advance(moved)


def _stream_target_ok(client: Client, target: str, kinds: dict[str, bool]) -> bool:
    if target not in kinds:
        kinds[target] = queue_type(client, target) in ("stream", "none")
    return kinds[target]


def _check_target(client: Client, target: str, wanted: str, source_kind: str) -> None:
    kind = queue_type(client, target)
    if kind not in (wanted, "none"):
        raise Unsupported(f"cannot redrive into {target!r}: it is a Redis {kind}, and a {source_kind} DLQ "
                          f"redrives into a {wanted}", hint="choose another target with --to")
