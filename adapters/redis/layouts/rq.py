"""RQ 2 and 3: ``rq:queue:<name>`` lists of job ids, ``rq:job:<id>`` hashes, ``rq:failed:<name>`` registries.

Names: a queue ``emails`` is ``rq:queue:emails`` (RPUSH + LPOP: the next job
is at the left); ``emails:failed`` is its FailedJobRegistry (``--dead
emails``).  ``?prefix=`` is RQ_KEY_PREFIX (default ``rq``).

A job is its hash: the message body is ``data`` decompressed (the
serializer's bytes: pickle, or JSON with RQ's JSON serializer), ``properties``
hold ``job_id``, ``task`` and ``args`` (from ``description``, or read off the
pickle with :mod:`pickletools`, which never imports or runs anything: RQ's
data is never unpickled), the other hash fields as stored (``rq``) and the
latest entry of its results stream (``last_result``), so a backup restores
the whole job.  ``dead_letter.reason`` is the last line of that entry's
``exc_string`` (``TimeoutError: took too long``), its queue ``origin``.

Redrive is ``FailedJobRegistry.requeue`` (docs/internals/job-frameworks.md
§2.6) in one step per chunk: only if the job hash exists and ``ZREM`` of its
id removed it, ``HSET status queued started_at '' ended_at ''
enqueued_at <now> exc_info <zlib('')> origin <queue>``, ``HSETNX timeout
180``, the job's own ``ttl`` as RQ's cleanup sets it, and ``RPUSH`` of the
id.  No ``SADD rq:queues`` (requeue does not either).  Registry entries past
their expiry are left for RQ's own cleanup; jobs whose hash is gone, and
rate-limited jobs (RQ re-acquires their capacity itself), are left in place
and reported.  qctl's redrive count lives in the job hash (written by ``qctl.redrive.count_pair``,
which RQ's ``Job.save``, an ``HSET``, leaves alone) and reads back as the
redrive count (:func:`qctl.redrive.stored_count`), so ``--max-redrives`` works across RQ's own
failures.
"""

from __future__ import annotations

import io
import pickletools
import time
import uuid
import zlib
from base64 import b64decode
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qctl.adapters.redis import scripts
from qctl.adapters.redis.keys import command, key_bytes, key_name, pipelined
from qctl.adapters.redis.layouts import fetch, sources, steps
from qctl.adapters.redis.layouts.base import (
    Layout,
    age,
    json_safe,
    loads,
    number,
    row,
    selected,
    text,
)
from qctl.adapters.redis.layouts.sources import ListSource, SetSource, Source, owned
from qctl.adapters.redis.layouts.steps import Command, Item
from qctl.codec import header_bytes
from qctl.errors import Unsupported
from qctl.models import DeadLetter, Message, PeekRequest, PurgeResult, QueueStats
from qctl.primitives import Carries, Reader, ReadMode, SourceTraits, Sync, Taken, sync_confirmed
from qctl.redrive import COUNT_FIELD_NAMES, count_pair, other_headers, stored_count

CHUNK = 500
FOREIGN_KEPT = frozenset({"job_id"})
RECORD = "rq"  # the property that holds the job hash's other fields, as stored: only an RQ job has it
PROPERTIES = frozenset({"job_id", "task", "args", RECORD, "last_result", "score", "missing"})  # what peek shows
EMPTY_EXC_INFO = zlib.compress(b"")  # what requeue writes: '' is not None (rq/job.py to_dict)
DEFAULT_TIMEOUT = b"180"  # Queue.DEFAULT_TIMEOUT, set by _prepare_for_queue when the job has none
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
NOT_RECORDED = (b"data", *COUNT_FIELD_NAMES)  # hash fields that are not in properties.rq: the body, the count
FIELD_ORDER = (b"created_at", b"success_callback_name", b"failure_callback_name", b"stopped_callback_name",
               b"started_at", b"ended_at", b"last_heartbeat", b"worker_name", b"group_id")

# Queue.empty(), bounded: pop up to ARGV[2] ids (list: from the left) or the lowest-scored members (zset)
# and delete each job's keys.  KEYS[1]: the list or zset.  ARGV: kind, n, job prefix, results prefix.
PURGE = """
local started = redis.call('TIME')
local n = tonumber(ARGV[2])
local ids
if ARGV[1] == 'list' then
  ids = redis.call('LRANGE', KEYS[1], 0, n - 1)
  if #ids > 0 then redis.call('LTRIM', KEYS[1], #ids, -1) end
else
  ids = redis.call('ZRANGE', KEYS[1], 0, n - 1)
  if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
end
for i, id in ipairs(ids) do
  local job = ARGV[3] .. id
  redis.call('DEL', job, ARGV[4] .. id, job .. ':dependents', job .. ':dependencies')
end
local ended = redis.call('TIME')
return {#ids, (ended[1] - started[1]) * 1000000 + ended[2] - started[2]}
"""


# FailedJobRegistry.requeue of one job, inside the guarded step (layouts/steps.py).  ARGV[a..b]: the job's
# key, the queue's key, the job id, now, the origin, the job's ttl ('' when it has none: job.cleanup(ttl=job.ttl)
# only when set), then the redrive count's field and value when there is one.  The same HSET as before
# (status queued, started_at/ended_at '', enqueued_at, exc_info zlib(''), origin), HSETNX timeout, and RPUSH.
MACROS = """
local RQ_EMPTY_EXC_INFO = '<empty exc_info>'
macros['@rqrequeue'] = function(a, b)
  local job = ARGV[a]
  local fields = {'HSET', job, 'status', 'queued', 'started_at', '', 'ended_at', '', 'enqueued_at', ARGV[a + 3],
                  'exc_info', RQ_EMPTY_EXC_INFO, 'origin', ARGV[a + 4]}
  for j = a + 6, b do fields[#fields + 1] = ARGV[j] end
  redis.call(unpack(fields))
  redis.call('HSETNX', job, 'timeout', '<default timeout>')
  local ttl = ARGV[a + 5]
  if ttl ~= '' then
    redis.call('EXPIRE', job, ttl)
    redis.call('EXPIRE', job .. ':dependents', ttl)
    redis.call('EXPIRE', job .. ':dependencies', ttl)
  end
  redis.call('RPUSH', ARGV[a + 1], ARGV[a + 2])
end
""".replace("<empty exc_info>", "".join(f"\\{byte}" for byte in EMPTY_EXC_INFO)).replace(
    "<default timeout>", DEFAULT_TIMEOUT.decode())


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: bytes

    def queue(self, name: str) -> bytes:
        return self.prefix + b":queue:" + key_bytes(name)

    def failed(self, name: str) -> bytes:
        return self.prefix + b":failed:" + key_bytes(name)

    def job(self, job_id: bytes) -> bytes:
        return self.prefix + b":job:" + job_id

    def results(self, job_id: bytes) -> bytes:
        return self.prefix + b":results:" + job_id

    def registry(self, kind: str, name: str) -> bytes:
        return self.prefix + f":{kind}:".encode() + key_bytes(name)

    def job_keys(self, job_id: bytes) -> tuple[bytes, ...]:
        job = self.job(job_id)
        return job, self.results(job_id), job + b":dependents", job + b":dependencies"


@dataclass(frozen=True, slots=True)
class Address:
    name: str  # as the operator wrote it
    queue: str  # the RQ queue
    failed: bool


class RQ(Layout):
    name = "rq"
    macros = MACROS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keys = Keys(str(self.setting("prefix") or "rq").encode())

    def address(self, queue: str) -> Address:
        queue = self.dead_name(queue, ":failed")
        if queue.endswith(":failed") and len(queue) > len(":failed"):
            return Address(queue, queue[: -len(":failed")], True)
        return Address(queue, queue, False)

    def key(self, address: Address) -> bytes:
        return self.keys.failed(address.queue) if address.failed else self.keys.queue(address.queue)

    # --- stats ------------------------------------------------------------------------------------

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        marker = self.keys.prefix + b":queue:"
        known = [key_name(k[len(marker):]) for k in command(self.client, "SMEMBERS", self.keys.prefix + b":queues")
                 if k.startswith(marker)]
        matched, plain = selected(known, patterns)
        addresses = [Address(name, name, False) for name in matched] + [self.address(name) for name in plain]
        now = time.time()
        per = 8
        replies = pipelined(self.client, [c for a in addresses for c in (
            ("LLEN", self.keys.queue(a.queue)), ("LINDEX", self.keys.queue(a.queue), 0),
            ("ZCOUNT", self.keys.registry("wip", a.queue), now, "+inf"),
            ("ZCOUNT", self.keys.failed(a.queue), now, "+inf"),
            ("ZCARD", self.keys.registry("scheduled", a.queue)), ("ZCARD", self.keys.registry("deferred", a.queue)),
            ("SMEMBERS", self.keys.prefix + b":workers:" + key_bytes(a.queue)),
            ("ZRANGE", self.keys.failed(a.queue), now, "+inf", "BYSCORE", "LIMIT", 0, 1))])
        heads, workers = [], []
        for i, a in enumerate(addresses):
            head = replies[i * per + 1] if not a.failed else (replies[i * per + 7] or [None])[0]
            heads.append(("HGET", self.keys.job(head), b"ended_at" if a.failed else b"enqueued_at")
                         if head else ("ECHO", b""))
            workers.append(sorted(replies[i * per + 6] or ()))
        times = pipelined(self.client, heads)
        alive = set(_alive(self.client, sorted({w for ws in workers for w in ws})))
        rows = []
        for i, a in enumerate(addresses):
            depth, _, running, failed, scheduled, deferred = replies[i * per: i * per + 6]
            oldest = age(rq_time(times[i]), now)
            if a.failed:
                rows.append(row(a.name, "rq-failed", int(failed), oldest_age=oldest))
                continue
            rows.append(row(a.name, "rq", int(depth), in_flight=int(running),
                            consumers=sum(1 for w in workers[i] if w in alive),
                            dead_letter_queue=f"{a.queue}:failed", dead_letter_depth=int(failed),
                            oldest_age=oldest, extra={"scheduled": int(scheduled), "deferred": int(deferred)}))
        return rows

    # --- reading ----------------------------------------------------------------------------------

    def depth(self, queue: str) -> int:
        address = self.address(queue)
        if address.failed:
            return int(command(self.client, "ZCOUNT", self.key(address), time.time(), "+inf"))
        return int(command(self.client, "LLEN", self.key(address)))

    def _source(self, address: Address, mode: ReadMode, start: int = 0) -> Source:
        jobs = fetch.Prefetch(self.client, self.keys.job, self.keys.results)
        if address.failed:
            return SetSource(self, address.name, self.key(address), mode, self._decoder(address, jobs),
                             self._delete_ops, chunk=CHUNK, start=start, prefetch=jobs)
        return ListSource(self, address.name, self.key(address), mode, self._decoder(address, jobs),
                          self._delete_ops, chunk=CHUNK, end="L", start=start)

    def _delete_ops(self, taken: Taken) -> list[Command]:
        return [("DEL", *self.keys.job_keys(taken.handle))]

    def _decoder(self, address: Address, prefetched: fetch.Prefetch) -> sources.Decode:
        def decode(rows: Sequence[tuple[bytes, str, float | None]]) -> list[Message | None]:
            jobs = prefetched.hashes([job_id for job_id, _, _ in rows])
            now = time.time()
            found: list[Message | None] = []
            for (job_id, position, score), (fields, result) in zip(rows, jobs, strict=True):
                if address.failed and score is not None and score < now:
                    found.append(None)  # expired: RQ's registry cleanup removes it, RQ no longer counts it
                    continue
                found.append(job_message(address.name, position, job_id, fields, result, score,
                                         failed=address.failed, registry=address.queue))
            return found

        return decode

    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        address = self.address(queue)
        start = sources.start_at(request.from_position, "L")
        yield from sources.peek(self._source(address, ReadMode.READ, start), request.count)

    def reader(self, queue: str, mode: ReadMode) -> Reader:
        return self._source(self.address(queue), mode)

    def read_traits(self, queue: str) -> SourceTraits:
        return SourceTraits(settle_before_read=True, chunk=CHUNK)

    # --- purge --------------------------------------------------------------------------------------

    def purge(self, queue: str) -> PurgeResult:
        address = self.address(queue)
        key = self.key(address)
        total = self.depth(queue) if address.failed else int(command(self.client, "LLEN", key))
        purged = 0
        pace = steps.Pace()
        while purged < total:
            removed, micros = scripts.run(self.client, PURGE, [key], [
                "zset" if address.failed else "list", min(pace.size, total - purged), self.keys.prefix + b":job:",
                self.keys.prefix + b":results:"])
            pace.record(int(removed), int(micros) / 1e6)
            if int(removed) <= 0:
                break
            purged += int(removed)
        return PurgeResult(queue=queue, purged=purged)

    # --- writing ------------------------------------------------------------------------------------

    def destination(self, queue: str) -> RQDestination:
        address = self.address(queue)
        key = self.key(address)
        kind = key_name(command(self.client, "TYPE", key))
        if kind not in ("zset" if address.failed else "list", "none"):
            raise Unsupported(f"cannot publish into RQ {queue!r}: {key_name(key)!r} is a Redis {kind}")
        return RQDestination(self, address)


class RQDestination:
    """An RQ queue (jobs requeued as FailedJobRegistry.requeue does, or stored and enqueued) or its failed
    registry (a restore of its backup)."""

    def __init__(self, layout: RQ, address: Address) -> None:
        self.layout = layout
        self.keys = layout.keys
        self.address = address
        self.queue = address.name
        self.foreign = False  # a message that was not an RQ job was sent here
        self.renamed = False  # a job whose id was in use here got a new one
        self.lost_headers = False  # a message had headers besides the redrive count, which a job cannot keep

    @property
    def carries(self) -> Carries:
        """An RQ job's hash and results entry travel in its properties, its data as the body.  A message that
        was not an RQ job keeps its body, its id (as the job's) and its time (created_at and enqueued_at);
        its other properties have no place (the failed registry keeps a score)."""
        names = set(FOREIGN_KEPT | ({"score"} if self.address.failed else set()) if self.foreign else PROPERTIES)
        if self.renamed:
            names.discard("job_id")
        return Carries(headers=not self.lost_headers, properties=True, property_names=frozenset(names),
                       timestamp=True)

    def refusal(self, message: Message) -> str | None:
        if message.properties.get("missing"):
            return "its RQ job hash is gone (expired or deleted): nothing left to retry"
        stored = message.properties.get(RECORD)
        if isinstance(stored, dict) and stored.get("rate_limit_key") and stored.get("rate_limit_concurrency"):
            return "a rate-limited RQ job: RQ re-acquires its capacity on requeue; requeue it with RQ"
        return None

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool]:
        return sync_confirmed(ticket)

    def send(self, messages: Sequence[Message]) -> Sync:
        """Store each job and enqueue it, as ``enqueue_job`` would.  A job keeps its id unless that id is in
        use (a backup restored twice, into two queues): then the copy gets a new one."""
        self.foreign = self.foreign or any(not isinstance(m.properties.get(RECORD), dict) for m in messages)
        self.lost_headers = self.lost_headers or other_headers(messages)
        wanted = [str(m.properties.get("job_id") or "").encode() or uuid.uuid4().hex.encode() for m in messages]
        taken = pipelined(self.layout.client, [("EXISTS", self.keys.job(job_id)) for job_id in wanted])
        ids = [uuid.uuid4().hex.encode() if used else job_id for job_id, used in zip(wanted, taken, strict=True)]
        self.renamed = self.renamed or any(taken)
        items = [self._stored(message, job_id) for message, job_id in zip(messages, ids, strict=True)]
        done = steps.run(self.layout.client, items) if items else []
        return Sync(list(done or [False] * len(items)))

    def _stored(self, message: Message, job_id_bytes: bytes) -> Item:
        job = self.keys.job(job_id_bytes)
        stored = message.properties.get(RECORD)
        fields = {key_bytes(str(k)): header_bytes(v) for k, v in stored.items()} if isinstance(stored, dict) else {}
        now = rq_now()
        if not fields and message.timestamp is not None:  # not an RQ job: its own time becomes the job's
            now = message.timestamp.astimezone(UTC).strftime(TIME_FORMAT).encode()
        for name in FIELD_ORDER:
            fields.setdefault(name, now if name == b"created_at" else b"")
        fields[b"data"] = zlib.compress(message.body)
        fields[b"origin"] = key_bytes(self.address.queue)
        if counted := count_pair(message):
            fields[counted[0]] = counted[1]
        ops: list[Command] = []
        if self.address.failed:
            fields[b"status"] = b"failed"
            score = message.properties.get("score")
            known = isinstance(score, (int, float)) and not isinstance(score, bool)
            expiry = float(score) if known else time.time() + 31536000  # type: ignore[arg-type]  # RQ's default
            ops.append(("ZADD", self.keys.failed(self.address.queue), repr(float(expiry)), job_id_bytes))
            left = max(1, int(expiry - time.time()))  # the failure TTL RQ gave the job and its results
            ops += [("EXPIRE", job, left), ("EXPIRE", self.keys.results(job_id_bytes), left)]
        else:
            fields[b"status"] = b"queued"
            fields.setdefault(b"enqueued_at", now)
            fields.setdefault(b"timeout", DEFAULT_TIMEOUT)
            ops += [("SADD", self.keys.prefix + b":queues", self.keys.queue(self.address.queue)),
                    ("RPUSH", self.keys.queue(self.address.queue), job_id_bytes)]
        ops.insert(0, ("HSET", job, *(part for pair in fields.items() for part in pair)))
        result = message.properties.get("last_result")
        if isinstance(result, dict) and result:
            ops.insert(1, ("XADD", self.keys.results(job_id_bytes), "MAXLEN", 10, "*",
                           *(part for k, v in result.items() for part in (str(k), header_bytes(v)))))
        return Item(checks=[("N", job)], ops=ops)

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> list[bool] | None:
        if self.address.failed or not owned(reader, self.layout) or not taken:
            return None
        target = key_bytes(self.address.queue)
        queue_key = self.keys.queue(self.address.queue)
        if isinstance(reader, SetSource):
            now = rq_now()
            ops = [self._requeue_ops(t, m, target, queue_key, now) for t, m in zip(taken, outgoing, strict=True)]
        else:
            ops = [[("HSET", self.keys.job(t.handle), b"origin", target, *count_pair(m)),
                    ("RPUSH", queue_key, t.handle)]
                   for t, m in zip(taken, outgoing, strict=True)]
        return reader.step(taken, ops, [[("E", self.keys.job(t.handle))] for t in taken])

    def _requeue_ops(self, taken: Taken, outgoing: Message, target: bytes, queue_key: bytes,
                     now: bytes) -> list[Command]:
        """FailedJobRegistry.requeue of one job, as the one macro :data:`MACROS` runs (a few arguments per job
        instead of forty: packing them was a fifth of a redrive's client time)."""
        stored = taken.message.properties.get(RECORD)
        ttl = number(stored.get("ttl")) if isinstance(stored, dict) else None
        return [("@rqrequeue", self.keys.job(taken.handle), queue_key, taken.handle, now, target,
                 ttl if ttl is not None and ttl > 0 else b"", *count_pair(outgoing))]



def _alive(client: Any, workers: list[bytes]) -> list[bytes]:
    return [w for w, exists in zip(workers, pipelined(client, [("EXISTS", w) for w in workers]), strict=True)
            if exists]


# --- jobs ---------------------------------------------------------------------------------------------

def rq_now() -> bytes:
    return datetime.now(UTC).strftime(TIME_FORMAT).encode()


def rq_time(raw: Any) -> datetime | None:
    value = text(raw)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)  # RQ's %Y-%m-%dT%H:%M:%S.%fZ, parsed in C
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def job_message(queue: str, position: str, job_id: bytes, fields: dict[bytes, bytes], result: Any,
                score: float | None, *, failed: bool, registry: str) -> Message:
    properties: dict[str, Any] = {"job_id": key_name(job_id)}
    if score is not None:
        properties["score"] = int(score) if float(score).is_integer() else score
    if not fields:
        properties["missing"] = True
        return Message(queue=queue, position=position, body=b"", properties=properties,
                       dead_letter=DeadLetter(reason="job hash gone", source_queue=registry, count=None, time=None)
                       if failed else None)
    raw = fields.get(b"data", b"")
    try:
        body = zlib.decompress(raw)
    except zlib.error:
        body = raw  # RQ falls back to the raw bytes too
    description = text(fields.get(b"description"))
    task, args = call_of(body, description)
    properties.update(task=task, args=args)
    properties[RECORD] = json_safe(fields, skip=NOT_RECORDED)
    result_fields = result or {}
    if result_fields:
        properties["last_result"] = json_safe(result_fields)
    status = text(fields.get(b"status"))
    dead = None
    if failed or status == "failed":
        dead = DeadLetter(reason=error_line(result_fields.get(b"exc_string")),
                          source_queue=text(fields.get(b"origin")) or registry, count=None,
                          time=rq_time(fields.get(b"ended_at")))
    return Message(queue=queue, position=position, body=body, headers=stored_count(fields),
                   properties=properties,
                   timestamp=rq_time(fields.get(b"enqueued_at")) or rq_time(fields.get(b"created_at")),
                   dead_letter=dead)


# The last traceback decoded: a pile of failed jobs mostly failed the same way, and decoding one (base64, zlib,
# lines) costs more than the rest of a job's reading.  Replaced whole, (exc_string, line).
_last_error: tuple[bytes | None, str | None] = (None, None)


def error_line(exc_string: bytes | None) -> str | None:
    """The last line of a results entry's traceback (``ValueError: bad``), decoded from base64(zlib(text))."""
    global _last_error
    if not exc_string:
        return None
    last = _last_error
    if last[0] == exc_string:
        return last[1]
    line = _decoded_line(exc_string)
    _last_error = (exc_string, line)
    return line


def _decoded_line(exc_string: bytes) -> str | None:
    try:
        traceback = zlib.decompress(b64decode(exc_string)).decode("utf-8", "replace")
    except (ValueError, zlib.error):
        return None
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def call_of(data: bytes, description: str | None) -> tuple[str | None, Any]:
    """(function name, a short repr of the arguments), without unpickling anything."""
    if description and "(" in description and description.endswith(")"):
        return description[: description.index("(")], description[description.index("("):]
    if data[:1] == b"[":  # RQ's JSON serializer: [func_name, instance, args, kwargs]
        value = loads(data)
        if isinstance(value, list) and len(value) == 4 and isinstance(value[0], str):
            return value[0], value[2]
    if data[:1] == b"\x80":
        primitives = _pickled_primitives(data)
        if primitives and isinstance(primitives[0], str):
            return primitives[0], "(" + ", ".join(repr(v) for v in primitives[1:9]) + (", ...)" if len(
                primitives) > 9 else ")")
    return None, None


def _pickled_primitives(data: bytes, limit: int = 64) -> list[Any]:
    """Strings and numbers a pickle holds, in order, read with pickletools (nothing imported or run)."""
    found: list[Any] = []
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data[:65536])):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
                               "BINSTRING", "BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "INT", "FLOAT"):
                found.append(arg)
            elif opcode.name in ("NEWTRUE", "NEWFALSE"):
                found.append(opcode.name == "NEWTRUE")
            if len(found) >= limit:
                break
    except Exception:  # a truncated or foreign pickle: what was read so far
        pass
    return found
