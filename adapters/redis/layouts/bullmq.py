"""BullMQ 5 and 6: ``bull:<queue>:wait``/``paused`` lists and ``prioritized`` of job ids, ``bull:<queue>:<id>``
hashes, the ``failed`` sorted set (score: finishedOn, ms).

Names: a queue ``emails`` is its waiting jobs (``wait``, the legacy ``paused``
list, then ``prioritized``: the order workers take them); ``emails:failed``
its failed set (``--dead emails``).  BullMQ queue names cannot contain ``:``.
``?prefix=`` is BullMQ's prefix (default ``bull``).

A job is its hash: the body is ``data`` (JSON, as BullMQ stores it),
``properties`` hold ``job_id``, ``task`` (the job's name), the other hash
fields as stored (``bullmq``) and a failed job's ``score``;
``dead_letter.reason`` is the error's first line (``TimeoutError: took too
long``, from the last ``stacktrace`` entry; else ``failedReason``),
``delivery_count`` its ``attemptsMade``, ``timestamp`` the job's own.

Redrive is ``Job.retry`` (the ``reprocessJob`` script, docs/internals/job-frameworks.md
§3.3), per job in one step per chunk: only if the job exists and ``ZREM
failed`` removed it, ``HDEL finishedOn processedOn failedReason`` (attempts
and stacktrace stay), push to ``wait`` (``paused`` on a paused BullMQ 5
queue; ``prioritized`` where 6.7+ honours priorities) with ``LPUSH`` (``RPUSH``
for ``lifo``), the marker unless paused or maxed, a flow child back among
its parent's dependencies, and the ``waiting`` event bull-board and
QueueEvents listen for.  ``--to`` another queue moves the job there (a free
id there, the same keys, a ``removed`` event here).  The version comes from
``meta``'s ``version`` field.  qctl's redrive count lives in the job hash
(written by ``qctl.redrive.count_pair``: BullMQ's scripts set and delete only the fields they
name) and reads back as the redrive count
(:func:`qctl.redrive.stored_count`).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from qctl.adapters.redis.keys import command, is_glob, key_bytes, key_name, pipelined, score_pairs
from qctl.adapters.redis.layouts import bullmq_lua, fetch, sources, steps
from qctl.adapters.redis.layouts.base import (
    Layout,
    age,
    epoch,
    json_safe,
    loads,
    number,
    row,
    selected,
    text,
)
from qctl.adapters.redis.layouts.sources import Chain, ListSource, SetSource, Source, owned, part
from qctl.adapters.redis.layouts.steps import Command, Item
from qctl.codec import header_bytes
from qctl.errors import Unsupported, UsageError
from qctl.models import DeadLetter, Message, PeekRequest, PurgeResult, QueueStats
from qctl.primitives import Carries, Reader, ReadMode, SourceTraits, Sync, Taken, sync_confirmed
from qctl.redrive import COUNT_FIELD_NAMES, count_pair, other_headers, stored_count

CHUNK = 300  # jobs per step: reprocessJob is about ten commands a job
SUFFIXES = (b"meta", b"id")  # keys every BullMQ queue has (Queue writes meta, adding a job the id counter)
STORED = (b"name", b"opts", b"timestamp", b"delay", b"priority")  # storeJob's fields, besides data
RECORD = "bullmq"  # the property that holds the job hash's other fields, as stored: only a BullMQ job has it
PROPERTIES = frozenset({"job_id", "queue", "task", RECORD, "score", "missing"})  # what peek shows
FOREIGN_KEPT = frozenset({"job_id", "task"})  # another message's id and task name become the job's id and name
NOT_RECORDED = (b"data", *COUNT_FIELD_NAMES)  # hash fields not in properties.bullmq: the body, the count


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    queue: str
    failed: bool


class BullMQ(Layout):
    name = "bullmq"
    macros = bullmq_lua.MACROS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefix = str(self.setting("prefix") or "bull").encode()
        self._modes: dict[str, str] = {}

    def base(self, queue: str) -> bytes:
        return self.prefix + b":" + key_bytes(queue) + b":"

    def address(self, queue: str) -> Address:
        queue = self.dead_name(queue, ":failed")
        if queue.endswith(":failed") and len(queue) > len(":failed"):
            return Address(queue, queue[: -len(":failed")], True)
        return Address(queue, queue, False)

    def check_name(self, queue: str) -> None:
        super().check_name(queue)
        if ":" in self.address(queue).queue:
            raise UsageError(f"{queue!r}: BullMQ queue names cannot contain ':'",
                             hint="a queue's failed jobs are QUEUE:failed (or --dead QUEUE)")

    def mode(self, queue: str) -> str:
        """``5``, ``6`` or ``6p`` for the version that last wrote the queue's meta (5 when it says none)."""
        if queue not in self._modes:
            version = text(command(self.client, "HGET", self.base(queue) + b"meta", b"version")) or ""
            numbers = [number(part) or 0 for part in version.removeprefix("bullmq:").split(".")[:2]]
            major, minor = [*numbers, 0, 0][:2]
            self._modes[queue] = "5" if major < 6 else ("6p" if (major, minor) >= (6, 7) else "6")
        return self._modes[queue]

    # --- stats ------------------------------------------------------------------------------------

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        known = self._known() if not patterns or any(is_glob(p) for p in patterns) else []
        matched, plain = selected(known, patterns)
        addresses = [Address(n, n, False) for n in matched] + [self.address(n) for n in plain]
        per = 12
        replies = pipelined(self.client, [c for a in addresses for c in self._counts(self.base(a.queue))])
        heads: list[tuple[Any, ...]] = []
        for i, a in enumerate(addresses):
            r = replies[i * per: (i + 1) * per]
            base = self.base(a.queue)
            if a.failed:
                first = score_pairs(r[11])
                heads.append(("ECHO", str(first[0][1]).encode() if first else b""))
                continue
            candidates = [r[8], r[9], *(m for m, _ in score_pairs(r[10]))]
            heads += [("HGET", base + c, b"timestamp") if c else ("ECHO", b"") for c in candidates[:3]]
            heads += [("ECHO", b"")] * (3 - len(candidates[:3]))
        times = pipelined(self.client, heads)
        consumers = self._workers()
        now = time.time()
        rows = []
        at = 0
        for i, a in enumerate(addresses):
            wait, paused, prioritized, active, failed, delayed, completed, is_paused = replies[i * per: i * per + 8]
            if a.failed:
                low = number((text(times[at]) or "").split(".")[0] or None)
                at += 1
                rows.append(row(a.name, "bullmq-failed", int(failed), oldest_age=age(epoch(low, ms=True), now)))
                continue
            stamps = [n for n in (number(t) for t in times[at: at + 3]) if n is not None]
            at += 3
            rows.append(row(
                a.name, "bullmq", int(wait) + int(paused) + int(prioritized), in_flight=int(active),
                consumers=None if consumers is None else consumers.get(a.queue, 0),
                dead_letter_queue=f"{a.queue}:failed", dead_letter_depth=int(failed),
                oldest_age=age(epoch(min(stamps), ms=True), now) if stamps else None,
                extra={"delayed": int(delayed), "completed": int(completed), "paused": bool(is_paused)}))
        return rows

    @staticmethod
    def _counts(base: bytes) -> list[tuple[Any, ...]]:
        return [("LLEN", base + b"wait"), ("LLEN", base + b"paused"), ("ZCARD", base + b"prioritized"),
                ("LLEN", base + b"active"), ("ZCARD", base + b"failed"), ("ZCARD", base + b"delayed"),
                ("ZCARD", base + b"completed"), ("HEXISTS", base + b"meta", b"paused"),
                ("LINDEX", base + b"wait", -1), ("LINDEX", base + b"paused", -1),
                ("ZRANGE", base + b"prioritized", 0, 0, "WITHSCORES"),
                ("ZRANGE", base + b"failed", 0, 0, "WITHSCORES")]

    def _known(self) -> list[str]:
        """Queues with a ``meta`` or ``id`` key: one SCAN (BullMQ keeps no list of its queues)."""
        found = set()
        head = self.prefix + b":"
        for raw in self.client.scan_iter(match=head + b"*:[mi][ed]*", count=2000):
            name, _, suffix = raw[len(head):].rpartition(b":")
            if suffix in SUFFIXES and name:
                found.add(key_name(name))
        return sorted(found)

    def _workers(self) -> dict[str, int] | None:
        """Workers per queue from CLIENT LIST (BullMQ names its blocking connections ``<prefix>:<base64 queue>``)."""
        try:
            listing = self.client.client_list()
        except Exception:  # an ACL without CLIENT: unknown
            return None
        db = self.client.connection_pool.connection_kwargs.get("db", 0)  # type: ignore[union-attr]
        counts: dict[str, int] = {}
        head = self.prefix.decode() + ":"
        for client in listing:
            name = str(client.get("name") or "")
            if not name.startswith(head) or int(client.get("db", -1)) != db:
                continue
            encoded = name[len(head):].split(":", 1)[0]
            if name[len(head) + len(encoded):] not in ("",) and not name[len(head) + len(encoded):].startswith(":w:"):
                continue
            try:
                queue = base64.b64decode(encoded, validate=True).decode()
            except ValueError:
                continue
            counts[queue] = counts.get(queue, 0) + 1
        return counts

    # --- reading ----------------------------------------------------------------------------------

    def depth(self, queue: str) -> int:
        address = self.address(queue)
        base = self.base(address.queue)
        if address.failed:
            return int(command(self.client, "ZCARD", base + b"failed"))
        counts = pipelined(self.client, [("LLEN", base + b"wait"), ("LLEN", base + b"paused"),
                                         ("ZCARD", base + b"prioritized")])
        return sum(int(c) for c in counts)

    def _source(self, address: Address, mode: ReadMode, start: int = 0) -> Source | Chain:
        base = self.base(address.queue)
        if address.failed:
            jobs = fetch.Prefetch(self.client, base.__add__)
            return SetSource(self, address.name, base + b"failed", mode, self._decoder(address, jobs),
                             self._delete_ops(address.queue), chunk=CHUNK, start=start, prefetch=jobs)
        decode = self._decoder(address, fetch.Prefetch(self.client, base.__add__))
        return Chain([
            ListSource(self, address.name, base + b"wait", mode, decode, self._delete_ops(address.queue),
                       chunk=CHUNK, end="R", start=start),
            ListSource(self, address.name, base + b"paused", mode, decode, self._delete_ops(address.queue),
                       chunk=CHUNK, end="R"),
            SetSource(self, address.name, base + b"prioritized", mode, decode, self._delete_ops(address.queue),
                      chunk=CHUNK)])

    def _delete_ops(self, queue: str) -> sources.DeleteOps:
        base = self.base(queue)

        def ops(taken: Taken) -> list[Command]:
            return [("@bdel", base, taken.handle, self.mode(queue))]

        return ops

    def _decoder(self, address: Address, prefetched: fetch.Prefetch) -> sources.Decode:
        def decode(rows: Sequence[tuple[bytes, str, float | None]]) -> list[Message | None]:
            jobs = prefetched.hashes([job_id for job_id, _, _ in rows])
            return [job_message(address.name, address.queue, position, job_id, fields,
                                score if address.failed else None)
                    for (job_id, position, score), (fields, _) in zip(rows, jobs, strict=True)]

        return decode

    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        address = self.address(queue)
        start = sources.start_at(request.from_position, "L" if address.failed else "R")
        yield from sources.peek(self._source(address, ReadMode.READ, start), request.count)

    def reader(self, queue: str, mode: ReadMode) -> Reader:
        return self._source(self.address(queue), mode)

    def read_traits(self, queue: str) -> SourceTraits:
        return SourceTraits(settle_before_read=True, chunk=CHUNK)

    # --- purge --------------------------------------------------------------------------------------

    def purge(self, queue: str) -> PurgeResult:
        """``drain`` (waiting jobs) or ``clean(0, 0, 'failed')``, a bounded step per chunk."""
        address = self.address(queue)
        source = self._source(address, ReadMode.DELETE)
        if isinstance(source, Chain):
            for one in source.parts:
                one.decode = _ids
        else:
            source.decode = _ids
        purged = 0
        while taken := source.read(CHUNK):
            purged += sum(source.settle(taken))
        if address.failed and purged:
            command(self.client, "XADD", self.base(address.queue) + b"events", "*", "event", "cleaned", "count",
                    purged)
        return PurgeResult(queue=queue, purged=purged)

    # --- writing ------------------------------------------------------------------------------------

    def destination(self, queue: str) -> BullDestination:
        address = self.address(queue)
        self.check_name(address.queue)
        base = self.base(address.queue)
        wanted = (b"failed", "zset") if address.failed else (b"wait", "list")
        kind = key_name(command(self.client, "TYPE", base + wanted[0]))
        if kind not in (wanted[1], "none"):
            raise Unsupported(f"cannot publish into BullMQ {queue!r}: {key_name(base + wanted[0])!r} is a Redis {kind}")
        return BullDestination(self, address)


def _ids(rows: Sequence[tuple[bytes, str, float | None]]) -> list[Message | None]:
    """A purge needs only the ids."""
    return [Message(queue="", position=position, body=b"") for _, position, _ in rows]


class BullDestination:
    """A BullMQ queue (retries as Job.retry, other jobs added as addStandardJob) or its failed set."""

    def __init__(self, layout: BullMQ, address: Address) -> None:
        self.layout = layout
        self.address = address
        self.queue = address.name
        self.base = layout.base(address.queue)
        self.foreign = False  # a message that was not a BullMQ job was sent here
        self.renamed = False  # a job whose id this queue could hand out again (or in use) got a new one
        self.lost_headers = False  # a message had headers besides the redrive count, which a job cannot keep

    @property
    def carries(self) -> Carries:
        """A BullMQ job's hash travels in its properties, its data as the body.  A message that was not a
        BullMQ job keeps its body, its time (the job's timestamp), its id and task name where free (the job's
        id and name); its other properties have no place (the failed set keeps a score)."""
        names = set(FOREIGN_KEPT | ({"score"} if self.address.failed else set()) if self.foreign else PROPERTIES)
        if self.renamed:
            names.discard("job_id")
        return Carries(headers=not self.lost_headers, properties=True, property_names=frozenset(names),
                       timestamp=True)

    def refusal(self, message: Message) -> str | None:
        stored = message.properties.get(RECORD)
        if isinstance(stored, dict) and stored.get("parentKey") and message.properties.get("queue") != \
                self.address.queue:
            return "a BullMQ flow child (it has a parent): it can only be retried in its own queue"
        return None

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool]:
        return sync_confirmed(ticket)

    def send(self, messages: Sequence[Message]) -> Sync:
        self.foreign = self.foreign or any(not isinstance(m.properties.get(RECORD), dict) for m in messages)
        self.lost_headers = self.lost_headers or other_headers(messages)
        wanted = [str(m.properties.get("job_id") or "") for m in messages]
        replies = pipelined(self.layout.client, [("GET", self.base + b"id"),
                                                 *(("EXISTS", self.base + w.encode()) for w in wanted)])
        counter = number(replies[0]) or 0
        kept = [not w or (not used and (number(w) is None or (number(w) or 0) <= counter))
                for w, used in zip(wanted, replies[1:], strict=True)]
        self.renamed = self.renamed or not all(kept)  # what @badd will decide too, in the step
        items = [Item(ops=[self._add(m)]) for m in messages]  # no check: @badd finds the job a free id
        done = steps.run(self.layout.client, items, macros=self.layout.macros) if items else []
        return Sync(list(done or [False] * len(items)))

    def _add(self, message: Message) -> Command:
        stored = message.properties.get(RECORD)
        fields = {key_bytes(str(k)): header_bytes(v) for k, v in stored.items()} if isinstance(stored, dict) else {}
        task = message.properties.get("task")
        fields.setdefault(b"name", str(task).encode() if isinstance(task, str) and task else b"qctl")
        fields.setdefault(b"opts", b"{}")
        stamp = message.timestamp.timestamp() if message.timestamp is not None else time.time()
        fields.setdefault(b"timestamp", str(int(stamp * 1000)).encode())
        fields.setdefault(b"delay", b"0")
        fields.setdefault(b"priority", b"0")
        fields[b"data"] = message.body
        if counted := count_pair(message):
            fields[counted[0]] = counted[1]
        job_id = message.properties.get("job_id")
        score = message.properties.get("score") if self.address.failed else None
        if self.address.failed and not isinstance(score, (int, float)):
            score = number(fields.get(b"finishedOn")) or int(time.time() * 1000)
        lifo = bool((loads(fields[b"opts"]) or {}).get("lifo")) if isinstance(loads(fields[b"opts"]), dict) else False
        return ("@badd", self.base, str(job_id or "").encode(), b"RPUSH" if lifo else b"LPUSH",
                self.layout.mode(self.address.queue), number(fields[b"priority"]) or 0, fields[b"name"],
                "" if score is None else repr(score), *(p for pair in fields.items() for p in pair))

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> list[bool] | None:
        if self.address.failed or not owned(reader, self.layout) or not taken:
            return None
        source = part(reader)
        prev = next((state for suffix, state in ((b":failed", "failed"), (b":prioritized", "prioritized"))
                     if source.key.endswith(suffix)), "waiting")
        mode = self.layout.mode(self.address.queue)
        ops: list[list[Command]] = []
        extra: list[list[Command]] = []
        for item, message in zip(taken, outgoing, strict=True):
            counted = count_pair(message)
            from_queue = str(item.message.properties.get("queue") or "")
            from_base = self.layout.base(from_queue)
            stored = item.message.properties.get(RECORD) or {}
            opts = loads(str(stored.get("opts") or "{}")) if isinstance(stored, dict) else None
            lifo = bool(opts.get("lifo")) if isinstance(opts, dict) else False
            cmd = b"RPUSH" if lifo else b"LPUSH"
            priority = number(stored.get("priority")) if isinstance(stored, dict) else 0
            extra.append([("E", from_base + item.handle)])
            if from_queue == self.address.queue and prev == "failed":
                ops.append([("@bretry", self.base, item.handle, cmd, mode, priority or 0, prev),
                            *([("HSET", self.base + item.handle, *counted)] if counted else [])])
            else:
                ops.append([("@bmove", from_base, item.handle, self.base, cmd, mode, priority or 0, prev,
                             *(counted or (b"", b"")))])
        return reader.step(taken, ops, extra)


def job_message(name: str, queue: str, position: str, job_id: bytes, fields: dict[bytes, bytes],
                score: float | None) -> Message:
    properties: dict[str, Any] = {"job_id": key_name(job_id), "queue": queue}
    if score is not None:
        properties["score"] = int(score) if float(score).is_integer() else score
    if not fields:
        properties["missing"] = True
        return Message(queue=name, position=position, body=b"", properties=properties)
    properties["task"] = text(fields.get(b"name"))
    properties[RECORD] = json_safe(fields, skip=NOT_RECORDED)
    attempts = number(fields.get(b"atm"))
    dead = None
    reason = text(fields.get(b"failedReason"))
    if score is not None or reason:
        dead = DeadLetter(reason=error_line(fields.get(b"stacktrace"), reason), source_queue=queue, count=attempts,
                          time=epoch(number(fields.get(b"finishedOn")), ms=True))
    return Message(queue=name, position=position, body=fields.get(b"data", b""),
                   headers=stored_count(fields), properties=properties,
                   timestamp=epoch(number(fields.get(b"timestamp")), ms=True), delivery_count=attempts,
                   dead_letter=dead)


def error_line(stacktrace: bytes | None, reason: str | None) -> str | None:
    """``Name: message`` from the last stack trace BullMQ saved, when it is this failure's; else failedReason."""
    traces = loads(stacktrace) if stacktrace else None
    if isinstance(traces, list) and traces and isinstance(traces[-1], str):
        first = traces[-1].split("\n", 1)[0].strip()
        if reason is None or first.endswith(reason) or not reason:
            return first or reason
    return reason

