"""The one engine behind redrive, move, purge --backup/--where and backup.

A *pass* reads a source queue chunk by chunk (:class:`qctl.primitives.Reader`),
asks ``decide`` what to do with each message (send it to a target, or keep
it), publishes what is sent through :class:`qctl.primitives.Destination`\\ s
and settles the source only for what the target confirmed.  The rules that
hold for every backend live here:

* Nothing lost: a message is settled (acked, deleted, committed past) only
  after its destination durably has it; an atomic shortcut
  (:meth:`Destination.move_from`) does both in one step.
* It terminates: it reads at most what the source held when the pass opened
  (:meth:`Reader.total`), so messages dead-lettered again meanwhile wait for
  the next run.
* ``--limit`` counts messages moved (confirmed), ``--rate`` paces sends.
* Dry runs decide and count, and send, settle and keep nothing.
* Reading never counts against a limit: on a source where returning a
  message counts as a delivery (``traits.counts_reads``), a kept message is
  copied to the source's tail and the original settled, never returned.
* Interruption: a first SIGINT/SIGTERM stops reading; the chunks in flight are
  confirmed and settled, progress is committed, and the tally says how far it
  got.  Order is kept per destination: a chunk is settled only after every
  chunk read before it.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from qctl.errors import QueueNotFound, Unsupported
from qctl.mapping import Dropped, keeps_everything
from qctl.models import Message
from qctl.pacing import RateLimiter
from qctl.primitives import Carries, Destination, Reader, Taken
from qctl.progress import Progress
from qctl.signals import NEVER, StopFlag

HELD_BACK = "held back behind an earlier message of its group that stays (the group keeps its order)"
MAX_INFLIGHT_MESSAGES = 20_000  # sent but not yet settled: bounds memory and what a crash repeats


@dataclass(frozen=True, slots=True)
class Send:
    """Publish ``outgoing`` (the message as the target gets it) to ``target``."""

    target: str
    outgoing: Message


@dataclass(frozen=True, slots=True)
class Keep:
    """Leave the message in the source; ``reason`` is counted for the operator's notice."""

    reason: str


Decision = Send | Keep
Decide = Callable[[Message], Decision]


class Destinations(Protocol):
    def get(self, target: str) -> Destination:
        """The destination ``target``; QueueNotFound when it does not exist, Unsupported when it cannot take these."""


class Fixed:
    """Every target is one destination (move, purge, backup)."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    def get(self, target: str) -> Destination:
        return self.destination


class Lookup:
    """Targets by name, from a broker's ``destination(queue)`` (redrive)."""

    def __init__(self, open_destination: Callable[[str], Destination]) -> None:
        self.open_destination = open_destination

    def get(self, target: str) -> Destination:
        return self.open_destination(target)


@dataclass(slots=True)
class Tally:
    moved: int = 0  # sent and confirmed (purge: written and deleted; backup: written)
    skipped: int = 0  # kept by a decision (purge: "kept")
    failed: int = 0  # sent and refused, or not sendable: left in the source
    read: int = 0
    requeued: int = 0  # kept messages of a counts_reads source, copied to its tail
    gone: int = 0  # delivered, then found already gone from the source (a consumer took it meanwhile)
    targets: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # why messages were kept or failed
    dropped: Dropped = field(default_factory=Dropped)  # message parts a destination could not carry
    interrupted: int | None = None  # the signal that stopped the pass


@dataclass(kw_only=True)
class PassSpec:
    reader: Reader
    decide: Decide
    destinations: Destinations
    progress: Progress
    description: str
    settle_sent: bool = True  # False: copy (backup, move --copy): sent messages stay in the source too
    dry_run: bool = False
    limit: int | None = None
    rate: float | None = None
    requeue: Destination | None = None  # the source's own tail, required when reader.traits.counts_reads
    stop: StopFlag = NEVER
    # Every message goes here unchanged, whatever it holds: the destination may move them without
    # reading them (Destination.move_blind), e.g. a Redis list redrive in one Lua step per chunk.
    blind_target: str | None = None
    # ...and may even have the broker move them all by itself (Destination.start_move: SQS move tasks).
    server_move: bool = False


@dataclass(slots=True)
class _Chunk:
    taken: list[Taken]
    decisions: list[Decision]
    results: dict[int, bool] = field(default_factory=dict)  # index -> confirmed
    atomic: set[int] = field(default_factory=set)  # moved and settled in one step already
    tickets: list[tuple[Destination, Any, list[int]]] = field(default_factory=list)
    sent: int = 0


class Pass:
    def __init__(self, spec: PassSpec) -> None:
        self.spec = spec
        self.tally = Tally()
        self.limiter = RateLimiter(spec.rate)
        self._inflight: deque[_Chunk] = deque()
        self._pending_sends = 0
        self._destinations: dict[str, Destination | Exception] = {}
        self._held_groups: set[str] = set()  # groups (traits.group_property) with a message left in place

    def run(self) -> Tally:
        spec, reader = self.spec, self.spec.reader
        if reader.traits.counts_reads and spec.requeue is None and not spec.dry_run:
            raise AssertionError("a counts_reads source needs a requeue destination (see qctl.guard)")
        total = reader.total()
        planned = total if spec.limit is None else min(total if total is not None else spec.limit, spec.limit)
        spec.progress.start(planned, spec.description)
        try:
            blind = spec.blind_target and spec.settle_sent and not spec.dry_run
            if not (blind and ((spec.server_move and self._server(total)) or self._blind(total))):
                self._loop(total)
            self._drain()
        finally:
            reader.close()
        if spec.stop.requested:
            self.tally.interrupted = spec.stop.signal
        return self.tally

    def _loop(self, total: int | None) -> None:
        spec, reader, tally = self.spec, self.spec.reader, self.tally
        chunk_size = self.limiter.batch_size(reader.traits.chunk)
        while not spec.stop.requested:
            room = self._room(total, chunk_size)
            if room <= 0:
                if (total is not None and tally.read >= total) or not self._inflight:
                    return
                self._settle_oldest(wait=True)  # sends may fail: then there is room again
                continue
            taken = reader.read(room)
            if not taken:
                return
            tally.read += len(taken)
            chunk = self._submit(taken)
            self._inflight.append(chunk)
            self._settle_ready(wait=reader.traits.settle_before_read or spec.dry_run)
            while self._pending_sends > MAX_INFLIGHT_MESSAGES:
                self._settle_oldest(wait=True)

    def _room(self, total: int | None, chunk_size: int) -> int:
        room = chunk_size
        if self.spec.limit is not None:
            room = min(room, self.spec.limit - self.tally.moved - self._pending_sends)
        if total is not None:
            room = min(room, total - self.tally.read)
        return room

    def _blind(self, total: int | None) -> bool:
        """Move without reading; False when the destination cannot (then the normal loop runs)."""
        spec, tally = self.spec, self.tally
        assert spec.blind_target is not None
        destination = self._destination(spec.blind_target)
        move_blind = getattr(destination, "move_blind", None)
        if move_blind is None:
            return False
        chunk_size = self.limiter.batch_size(spec.reader.traits.chunk)
        while not spec.stop.requested:
            room = self._room(total, chunk_size)
            if room <= 0:
                return True
            self.limiter.wait(room)
            moved = move_blind(spec.reader, room)
            if moved is None:
                return tally.read > 0
            if moved == 0:
                return True
            tally.read += moved
            tally.moved += moved
            tally.targets[spec.blind_target] += moved
            spec.progress.advance(moved)
        return True

    def _server(self, total: int | None) -> bool:
        """Have the broker move everything itself; False when it cannot (then the other paths run)."""
        spec, tally = self.spec, self.tally
        assert spec.blind_target is not None
        destination = self._destination(spec.blind_target)
        start = getattr(destination, "start_move", None)
        task = start(spec.reader, spec.rate) if start is not None else None
        if task is None:
            return False
        moved, finished, cancelled = 0, False, False
        try:
            while not finished:  # after a cancel, until the broker says the task stopped
                if spec.stop.requested and not cancelled:
                    task.cancel()
                    cancelled = True
                moved_now, finished = task.poll()
                spec.progress.advance(max(0, moved_now - moved))
                moved = max(moved, moved_now)
        except BaseException:
            # Stopped at once (a second signal) or an error: the broker must not go on moving on its own.
            if not finished and not cancelled:
                try:
                    task.cancel()
                except Exception:  # the error that ends the pass is the one to report
                    pass
            raise
        finally:
            tally.read += moved
            tally.moved += moved
            tally.targets[spec.blind_target] += moved
        return True

    # --- deciding and sending ------------------------------------------------

    def _submit(self, taken: list[Taken]) -> _Chunk:
        spec = self.spec
        chunk = _Chunk(taken, [spec.decide(item.message) for item in taken])
        self._hold_groups(chunk)
        by_target: dict[str, list[int]] = {}
        for index, decision in enumerate(chunk.decisions):
            if isinstance(decision, Send):
                by_target.setdefault(decision.target, []).append(index)
        for target, indexes in by_target.items():
            destination = self._destination(target)
            if isinstance(destination, Exception):
                reason = str(destination)
                for index in indexes:
                    chunk.decisions[index] = Keep(reason)
                continue
            indexes = self._sendable(chunk, destination, indexes)
            if not indexes:
                continue
            if spec.dry_run:
                for index in indexes:
                    chunk.results[index] = True
                continue
            outgoing = [self._outgoing(chunk, index) for index in indexes]
            self.limiter.wait(len(indexes))
            if spec.settle_sent:
                moved = destination.move_from(spec.reader, [chunk.taken[i] for i in indexes], outgoing)
                if moved is not None:
                    for index, ok in zip(indexes, moved, strict=True):
                        chunk.results[index] = ok
                        if ok:
                            chunk.atomic.add(index)
                    continue
            chunk.tickets.append((destination, destination.send(outgoing), indexes))
            chunk.sent += len(indexes)
        self._pending_sends += chunk.sent
        return chunk

    def _group(self, message: Message) -> str | None:
        name = self.spec.reader.traits.group_property
        value = message.properties.get(name) if name else None
        return None if value is None else str(value)

    def _hold_groups(self, chunk: _Chunk) -> None:
        """Where groups keep their order, a message after one of its group that stays (kept, or refused by
        its target) stays too, so that no message overtakes an earlier one of its group."""
        if self.spec.reader.traits.group_property is None:
            return
        for index, item in enumerate(chunk.taken):
            group = self._group(item.message)
            if group is None:
                continue
            decision = chunk.decisions[index]
            if group in self._held_groups:
                if isinstance(decision, Send):
                    chunk.decisions[index] = Keep(HELD_BACK)
            elif isinstance(decision, Keep) or self._refused(decision):
                self._held_groups.add(group)

    def _refused(self, decision: Decision) -> bool:
        if not isinstance(decision, Send):
            return False
        destination = self._destination(decision.target)
        return isinstance(destination, Exception) or destination.refusal(decision.outgoing) is not None

    @staticmethod
    def _outgoing(chunk: _Chunk, index: int) -> Message:
        decision = chunk.decisions[index]
        assert isinstance(decision, Send)
        return decision.outgoing

    def _sendable(self, chunk: _Chunk, destination: Destination, indexes: list[int]) -> list[int]:
        """Indexes whose message the destination accepts; the others fail with its reason, before any send."""
        kept = []
        for index in indexes:
            refusal = destination.refusal(self._outgoing(chunk, index))
            if refusal is None:
                kept.append(index)
            else:
                chunk.results[index] = False
                self.tally.reasons[refusal] += 1
        return kept

    def _destination(self, target: str) -> Destination | Exception:
        if target not in self._destinations:
            try:
                self._destinations[target] = self.spec.destinations.get(target)
            except QueueNotFound:
                self._destinations[target] = QueueNotFound(f"target {target!r} does not exist")
            except Unsupported as exc:
                self._destinations[target] = exc
        return self._destinations[target]

    def _count_dropped(self, target: str, message: Message, carried: dict[str, Carries | None]) -> None:
        """Count what of ``message`` (as the source had it) ``target`` could not keep.  Asked once the
        message was delivered: a destination may take its shape from its first message (a new Redis key)."""
        if target not in carried:
            destination = self._destinations.get(target)
            carries = None if isinstance(destination, Exception) or destination is None else destination.carries
            carried[target] = None if carries is None or keeps_everything(carries) else carries
        kept = carried[target]
        if kept is not None:
            self.tally.dropped.count(kept, message)

    # --- settling --------------------------------------------------------------

    def _settle_ready(self, *, wait: bool) -> None:
        while self._inflight and self._settle_oldest(wait=wait):
            pass

    def _drain(self) -> None:
        while self._inflight:
            self._settle_oldest(wait=True)

    def _settle_oldest(self, *, wait: bool) -> bool:
        """Settle the oldest chunk if its confirms are in (or ``wait``); False if it is still pending."""
        chunk = self._inflight[0]
        for destination, ticket, indexes in chunk.tickets:
            if all(index in chunk.results for index in indexes):
                continue
            results = destination.confirmed(ticket, wait=wait)
            if results is None:
                return False
            for index, ok in zip(indexes, results, strict=True):
                chunk.results[index] = ok
        self._inflight.popleft()
        self._pending_sends -= chunk.sent
        self._finish(chunk)
        return True

    def _finish(self, chunk: _Chunk) -> None:
        spec, tally, reader = self.spec, self.tally, self.spec.reader
        delivered: list[Taken] = []
        kept: list[Taken] = []
        carried: dict[str, Carries | None] = {}
        for index, item in enumerate(chunk.taken):
            decision = chunk.decisions[index]
            if isinstance(decision, Keep):
                tally.skipped += 1
                tally.reasons[decision.reason] += 1
                kept.append(item)
            elif chunk.results.get(index):
                tally.moved += 1
                tally.targets[decision.target] += 1
                if not spec.dry_run:
                    self._count_dropped(decision.target, item.message, carried)
                if index not in chunk.atomic:
                    delivered.append(item)
            else:
                tally.failed += 1
                if index not in chunk.results:
                    tally.reasons[f"not confirmed by {decision.target!r}"] += 1
                group = self._group(item.message)
                if group is not None:
                    self._held_groups.add(group)  # what comes later of its group waits (see _hold_groups)
                kept.append(item)
        if not spec.dry_run:
            if not spec.settle_sent:
                kept = list(chunk.taken)  # a copy: everything stays where it was
            elif delivered:
                tally.gone += sum(1 for ok in reader.settle(delivered) if not ok)
            if kept:
                self._keep(kept)
        spec.progress.advance(len(chunk.taken))

    def _keep(self, kept: list[Taken]) -> None:
        reader = self.spec.reader
        if not reader.traits.counts_reads or self.spec.requeue is None:
            reader.keep(kept)
            return
        # Returning a message would count a delivery: copy it to the tail, then settle the original.
        requeue = self.spec.requeue
        results = requeue.confirmed(requeue.send([item.message for item in kept]), wait=True) or []
        copied = [item for item, ok in zip(kept, results, strict=True) if ok]
        if copied:
            reader.settle(copied)
            self.tally.requeued += len(copied)
        if len(copied) < len(kept):
            reader.keep([item for item, ok in zip(kept, results, strict=True) if not ok])


def run(spec: PassSpec) -> Tally:
    return Pass(spec).run()
