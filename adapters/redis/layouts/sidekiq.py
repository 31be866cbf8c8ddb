"""Sidekiq 6 to 8: ``queue:<name>`` lists of job JSON, and the global ``retry`` and ``dead`` sorted sets.

Names: a queue ``emails`` is ``queue:emails`` (LPUSH + BRPOP: the next job is
at the right); ``dead`` and ``retry`` are the whole sets, ``emails:dead`` and
``emails:retry`` the jobs of ``emails`` in them (``--dead emails`` means
``emails:dead``).  A job is one JSON string: the message body, byte for byte;
``properties`` show what peek decodes (``job_id``, ``task``, ``args``,
``retry_count``, a set member's ``score``), ``dead_letter`` its error
(``error_class: error_message``), its queue, failures and time.

Redrive from a set is ``SortedEntry#retry`` (docs/internals/job-frameworks.md
§1.5) in one atomic step per chunk: ``ZREM`` of the exact member, then
``SADD queues`` and ``LPUSH queue:<q>`` of the job with ``retry_count - 1``
(when present), ``enqueued_at = now`` and ``normalize_item``'s defaults, the
JSON written by Python as Ruby's ``JSON.generate`` would.  Timestamps keep
the job's own unit: an integer ``created_at`` is Sidekiq 8's milliseconds, a
float 6/7's seconds.  Client middleware does not run.  qctl's redrive count
is a key of the job's JSON (written by ``qctl.redrive.count_entry``: Sidekiq keeps keys it does
not know through its retries and the dead set) and reads back as the
redrive count (:func:`qctl.redrive.stored_count`); an element that is not a job has no place
for it (a notice says so).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qctl.adapters.redis import purge as plain_purge
from qctl.adapters.redis import scripts
from qctl.adapters.redis.keys import command, key_bytes, key_name, pipelined, score_pairs
from qctl.adapters.redis.layouts import sources
from qctl.adapters.redis.layouts.base import (
    Layout,
    age,
    epoch,
    loads,
    loads_all,
    row,
    ruby_json,
    selected,
)
from qctl.adapters.redis.layouts.sources import ListSource, SetSource, Source, owned
from qctl.errors import Unsupported
from qctl.models import DeadLetter, Message, PeekRequest, PurgeResult, QueueStats, new_dead_letter, new_message
from qctl.primitives import Carries, Reader, ReadMode, SourceTraits, Sync, Taken, sync_confirmed
from qctl.redrive import count_entry, other_headers, stored_count

SETS = ("dead", "retry")
QUEUES = b"queues"
PROPERTIES = frozenset({"job_id", "task", "args", "retry_count", "score"})  # what peek shows, read from the JSON
UNCOUNTED = ("some messages were not Sidekiq jobs (JSON objects): qctl's redrive count has no place in them, so "
             "--max-redrives cannot stop them cycling")
CHUNK = 500  # jobs per step (SADD + LPUSH each, plus the JSON): well under 20 ms

# Per ZSCAN page: members of the set whose job JSON names queue ARGV[2]: {cursor, count, lowest score}.
# With ARGV[3] == 'delete' they are removed too.  Read-only JSON decoding (cjson.decode never re-encodes).
QUEUE_MEMBERS = """
local reply = redis.call('ZSCAN', KEYS[1], ARGV[1], 'COUNT', 200)
local count, low, doomed = 0, false, {}
local items = reply[2]
for i = 1, #items, 2 do
  local ok, job = pcall(cjson.decode, items[i])
  if ok and type(job) == 'table' and job['queue'] == ARGV[2] then
    count = count + 1
    local score = tonumber(items[i + 1])
    if not low or score < low then low = score end
    doomed[#doomed + 1] = items[i]
  end
end
if ARGV[3] == 'delete' and #doomed > 0 then redis.call('ZREM', KEYS[1], unpack(doomed)) end
return {reply[1], count, tostring(low or '')}
"""

# Queue#clear forgets the queue once it is empty (push re-adds it).
FORGET_IF_EMPTY = """
if redis.call('LLEN', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Address:
    name: str  # as the operator wrote it
    set: str | None  # "dead" or "retry"; None for a queue
    only: str | None = None  # emails:dead -> emails

    @property
    def key(self) -> bytes:
        return key_bytes(self.set) if self.set else b"queue:" + key_bytes(self.name)


class Sidekiq(Layout):
    name = "sidekiq"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parsed: dict[bytes, Any] = {}  # the last chunk's jobs, parsed, by their exact JSON

    def address(self, queue: str) -> Address:
        queue = self.dead_name(queue, ":dead")
        if queue in SETS:
            return Address(queue, queue)
        head, _, tail = queue.rpartition(":")
        if head and tail in SETS:
            return Address(queue, tail, head)
        return Address(queue, None)

    # --- stats ------------------------------------------------------------------------------------

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        known = sorted(key_name(name) for name in command(self.client, "SMEMBERS", QUEUES))
        matched, plain = selected(known, patterns)
        addresses = [self.address(name) for name in plain]
        queues = matched + [a.name for a in addresses if a.set is None]
        sets = [a for a in addresses if a.set is not None]
        replies = pipelined(self.client, [
            ("ZCARD", b"dead"), ("ZCARD", b"retry"), ("ZCARD", b"schedule"), ("SMEMBERS", b"processes"),
            *(c for q in queues for c in (("LLEN", b"queue:" + key_bytes(q)),
                                          ("LINDEX", b"queue:" + key_bytes(q), -1))),
        ])
        dead, retry, scheduled, processes = replies[:4]
        busy, consumers = self._busy(processes)
        now = time.time()
        rows = []
        for i, queue in enumerate(queues):
            depth, head = replies[4 + 2 * i], replies[5 + 2 * i]
            job = loads(head)
            rows.append(row(queue, "sidekiq", int(depth), in_flight=None if busy is None else busy.get(queue, 0),
                            consumers=None if consumers is None else consumers.get(queue, 0),
                            dead_letter_queue="dead", dead_letter_depth=int(dead),
                            oldest_age=age(_enqueued(job), now) if isinstance(job, dict) else None,
                            extra={"retry": int(retry), "scheduled": int(scheduled)}))
        rows.extend(self._set_row(a, now) for a in sets)
        return rows

    def _busy(self, processes: Any) -> tuple[dict[str, int] | None, dict[str, int] | None]:
        """In-flight jobs per queue from the live processes' busy hashes, and processes per queue."""
        names = sorted(processes or ())
        if not names:
            return None, None
        replies = pipelined(self.client, [c for p in names for c in (
            ("HGET", p, b"info"), ("HVALS", p + b":workers"), ("HVALS", p + b":work"))])
        busy: dict[str, int] = {}
        consumers: dict[str, int] = {}
        live = 0
        for i in range(len(names)):
            info, workers, work = loads(replies[3 * i]), replies[3 * i + 1], replies[3 * i + 2]
            if not isinstance(info, dict):
                continue  # its heartbeat expired: a dead process
            live += 1
            for queue in set(info.get("queues") or ()):
                consumers[str(queue)] = consumers.get(str(queue), 0) + 1
            for value in [*(workers or ()), *(work or ())]:
                entry = loads(value)
                if isinstance(entry, dict) and entry.get("queue") is not None:
                    busy[str(entry["queue"])] = busy.get(str(entry["queue"]), 0) + 1
        return (busy, consumers) if live else (None, None)

    def _set_row(self, address: Address, now: float) -> QueueStats:
        assert address.set is not None
        if address.only is None:
            depth = int(command(self.client, "ZCARD", address.key))
            first = score_pairs(command(self.client, "ZRANGE", address.key, 0, 0, "WITHSCORES"))
            low = first[0][1] if first else None
        else:
            depth, low = self._count(address)
        oldest = age(epoch(low), now) if address.set == "dead" and low is not None else None
        return row(address.name, f"sidekiq-{address.set}", depth, oldest_age=oldest)

    def _count(self, address: Address, *, delete: bool = False) -> tuple[int, float | None]:
        cursor, count, low = b"0", 0, None
        while True:
            cursor, found, lowest = scripts.run(self.client, QUEUE_MEMBERS, [address.key],
                                                [cursor, address.only or "", "delete" if delete else ""])
            count += int(found)
            if lowest:
                low = float(lowest) if low is None else min(low, float(lowest))
            if cursor in (b"0", "0", 0):
                return count, low

    # --- reading ----------------------------------------------------------------------------------

    def depth(self, queue: str) -> int:
        address = self.address(queue)
        if address.set is None:
            return int(command(self.client, "LLEN", address.key))
        if address.only is None:
            return int(command(self.client, "ZCARD", address.key))
        return self._count(address)[0]

    def _source(self, address: Address, mode: ReadMode, start: int = 0) -> Source:
        if address.set is None:
            return ListSource(self, address.name, address.key, mode, self._decoder(address), lambda taken: [],
                              chunk=CHUNK, end="R", start=start)
        return SetSource(self, address.name, address.key, mode, self._decoder(address), lambda taken: [],
                         chunk=CHUNK, start=start)

    def _decoder(self, address: Address) -> sources.Decode:
        def decode(rows: Sequence[tuple[bytes, str, float | None]]) -> list[Message | None]:
            found: list[Message | None] = []
            # The jobs of the last chunk read, parsed: a retry of one of them builds on it instead of parsing
            # its JSON again (a member is the job's exact JSON, and the step checks it is still there).
            self.parsed = parsed = dict(zip([raw for raw, _, _ in rows], loads_all([raw for raw, _, _ in rows]),
                                            strict=True))
            for raw, position, score in rows:
                message = job_message(address.name, position, raw, score, in_set=address.set is not None,
                                      job=parsed[raw])
                if address.only is not None and (message.dead_letter is None
                                                 or message.dead_letter.source_queue != address.only):
                    found.append(None)
                else:
                    found.append(message)
            return found

        return decode

    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        address = self.address(queue)
        end = "R" if address.set is None else "L"
        start = sources.start_at(request.from_position, end)
        yield from sources.peek(self._source(address, ReadMode.READ, start), request.count)

    def reader(self, queue: str, mode: ReadMode) -> Reader:
        return self._source(self.address(queue), mode)

    def read_traits(self, queue: str) -> SourceTraits:
        return SourceTraits(settle_before_read=True, chunk=CHUNK)

    # --- purge --------------------------------------------------------------------------------------

    def purge(self, queue: str) -> PurgeResult:
        address = self.address(queue)
        if address.set is None:
            done = plain_purge.purge(self.client, key_name(address.key), "list", "right")
            scripts.run(self.client, FORGET_IF_EMPTY, [address.key, QUEUES], [key_bytes(address.name)])
        elif address.only is None:
            done = plain_purge.purge(self.client, address.set, "zset", "right")
        else:
            return PurgeResult(queue=queue, purged=self._count(address, delete=True)[0])
        return PurgeResult(queue=queue, purged=done.purged)

    # --- writing ------------------------------------------------------------------------------------

    def destination(self, queue: str) -> QueueDestination | SetDestination:
        address = self.address(queue)
        kind = key_name(command(self.client, "TYPE", address.key))
        wanted = "list" if address.set is None else "zset"
        if kind not in (wanted, "none"):
            raise Unsupported(f"cannot publish into Sidekiq {queue!r}: {key_name(address.key)!r} is a Redis {kind}")
        if address.set is None:
            return QueueDestination(self, address)
        return SetDestination(self, address)


class QueueDestination:
    """``queue:<name>``: jobs pushed as ``Sidekiq::Client`` would, redrives as ``SortedEntry#retry``."""

    def __init__(self, layout: Sidekiq, address: Address) -> None:
        self.layout = layout
        self.address = address
        self.queue = address.name
        self.foreign = False  # a body that is not a Sidekiq job was sent here
        self.lost_headers = False  # a message had headers besides the redrive count, which a job cannot keep

    @property
    def carries(self) -> Carries:
        """A Sidekiq job's JSON carries all it has (its enqueued_at too; a retry sets it anew, as Sidekiq's does),
        qctl's redrive count among it; what peek shows in properties is read from it.  A body that is not a job
        is pushed as it is: nothing else of its message has a place."""
        return Carries(headers=not (self.foreign or self.lost_headers), properties=not self.foreign,
                       property_names=PROPERTIES, timestamp=not self.foreign)

    def refusal(self, message: Message) -> str | None:
        return None

    def payload(self, message: Message) -> bytes:
        """The body, with its ``queue`` set to this one when it is a job of another queue, and the message's
        redrive count."""
        return stamped(self.layout, message, self.queue)

    def send(self, messages: Sequence[Message]) -> Sync:
        self.foreign = self.foreign or any(not isinstance(loads(m.body), dict) for m in messages)
        self.lost_headers = self.lost_headers or other_headers(messages)
        if messages:
            pipe = self.layout.client.pipeline(transaction=True)
            pipe.execute_command("SADD", QUEUES, key_bytes(self.queue))
            pipe.execute_command("LPUSH", self.address.key, *(self.payload(m) for m in messages))
            pipe.execute()
        return Sync([True] * len(messages))

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool]:
        return sync_confirmed(ticket)

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> list[bool] | None:
        if not owned(reader, self.layout) or not taken:
            return None
        name = key_bytes(self.queue)
        if isinstance(reader, SetSource):
            now = time.time()
            parsed = self.layout.parsed
            jobs = [retried(parsed[t.handle] if t.handle in parsed else loads(t.handle), self.queue, now,
                            count_entry(m)) for t, m in zip(taken, outgoing, strict=True)]
            bad = sum(1 for job in jobs if job is None)
            if bad:
                self.layout.notices.append(f"{bad} job(s) are not Sidekiq jobs Sidekiq::Client.push would take "
                                           f"(a JSON object with class, an args array, a queue, no 'at'): "
                                           f"left in place")
            # A job Sidekiq would refuse stays where it is (None); the others are retried.
            key = self.address.key
            return reader.step(taken, [None if job is None else [("SADD", QUEUES, name), ("LPUSH", key, job)]
                                       for job in jobs])
        return reader.step(taken, [[("SADD", QUEUES, name), ("LPUSH", self.address.key, self.payload(m))]
                                   for m in outgoing])


class SetDestination:
    """``dead`` or ``retry`` as a target (a restore of a set's backup): members keep their score."""

    def __init__(self, layout: Sidekiq, address: Address) -> None:
        self.layout = layout
        self.address = address
        self.queue = address.name
        self.lost_headers = False  # a message had headers besides the redrive count, which a job cannot keep

    @property
    def carries(self) -> Carries:
        return Carries(headers=not self.lost_headers, properties=True, property_names=PROPERTIES, timestamp=True)

    def refusal(self, message: Message) -> str | None:
        if _score(message) is None:
            return f"a member of Sidekiq's {self.address.set} set needs its score (properties.score)"
        return None

    def send(self, messages: Sequence[Message]) -> Sync:
        self.lost_headers = self.lost_headers or other_headers(messages)
        if messages:
            command(self.layout.client, "ZADD", self.address.key,
                    *(part for m in messages for part in (repr(_score(m) or 0.0), stamped(self.layout, m))))
        return Sync([True] * len(messages))

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool]:
        return sync_confirmed(ticket)

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> list[bool] | None:
        if not owned(reader, self.layout):
            return None
        now = time.time()
        return reader.step(taken, [[("ZADD", self.address.key, repr(_score(m) or now), stamped(self.layout, m))]
                                   for m in outgoing])


def stamped(layout: Sidekiq, message: Message, queue: str | None = None) -> bytes:
    """The message's body as Sidekiq gets it: a job with its ``queue`` set to ``queue`` (when it names another)
    and the message's redrive count; byte for byte when neither changes.  Not a job: as it is, and a notice when
    a redrive count had no place in it."""
    job = loads(message.body)
    counted = count_entry(message)
    if not isinstance(job, dict):
        if counted and UNCOUNTED not in layout.notices:
            layout.notices.append(UNCOUNTED)
        return message.body
    changed = queue is not None and "queue" in job and job["queue"] != queue
    if changed:
        job["queue"] = queue
    if any(job.get(name) != value for name, value in counted.items()):
        job.update(counted)
        changed = True
    return ruby_json(job) if changed else message.body


def _score(message: Message) -> float | None:
    score = message.properties.get("score")
    return float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None


# --- jobs ---------------------------------------------------------------------------------------------

_UNPARSED: Any = object()


def job_message(queue: str, position: str, raw: bytes, score: float | None, *, in_set: bool,
                job: Any = _UNPARSED) -> Message:
    """A Sidekiq job as a Message: the JSON as body, what it says decoded (``job``: ``raw`` already parsed)."""
    if job is _UNPARSED:
        job = loads(raw)
    properties: dict[str, Any] = {}
    dead: DeadLetter | None = None
    timestamp = None
    count = None
    if isinstance(job, dict):
        task = job.get("display_class") or job.get("wrapped") or job.get("class")
        properties = {"job_id": job.get("jid"), "task": task if isinstance(task, str) else job.get("class"),
                      "args": job.get("args")}
        retry_count = job.get("retry_count")
        if isinstance(retry_count, int) and not isinstance(retry_count, bool):
            properties["retry_count"] = retry_count
            count = retry_count + 1
        timestamp = _enqueued(job)
        error = job.get("error_class")
        message = job.get("error_message")
        if in_set or error or message:
            reason = ": ".join(str(part) for part in (error, message) if part) or None
            failed = job.get("retried_at") or job.get("failed_at")
            dead = new_dead_letter(reason, str(job["queue"]) if job.get("queue") else None, count,
                                   _time(job, failed))
    if score is not None:
        properties["score"] = int(score) if float(score).is_integer() else score
    return new_message(queue, position, raw, None, None, None, stored_count(job) if isinstance(job, dict) else {},
                       None, properties, timestamp, None, count, dead)


def _time(job: dict[str, Any], value: Any) -> Any:
    """Sidekiq 8 writes integer milliseconds, 6 and 7 float seconds (api.rb calculate_latency)."""
    kind = type(value)
    if kind is float:
        return epoch(value)
    return epoch(value, ms=True) if kind is int else None


def _enqueued(job: dict[str, Any]) -> Any:
    return _time(job, job.get("enqueued_at")) or _time(job, job.get("created_at"))


def retried(job: Any, queue: str, now: float, counted: Mapping[str, Any] | None = None) -> bytes | None:
    """The JSON ``SortedEntry#retry`` pushes for ``job`` (into ``queue``), with qctl's redrive count
    (``counted``: :func:`qctl.redrive.count_entry`), or None if Sidekiq would refuse it."""
    if not (isinstance(job, dict) and isinstance(job.get("class"), str) and isinstance(job.get("args"), list)
            and "at" not in job and (job.get("tags") is None or isinstance(job.get("tags"), list)) and queue):
        return None
    retry_count = job.get("retry_count")
    if retry_count is not None and (isinstance(retry_count, bool) or not isinstance(retry_count, int)):
        return None
    item: dict[str, Any] = {"retry": True, "queue": "default"}  # Sidekiq.default_job_options, merged under
    item.update(job)
    if retry_count is not None:
        item["retry_count"] = retry_count - 1
    item["queue"] = queue
    ms = isinstance(item.get("created_at"), int) and not isinstance(item.get("created_at"), bool)
    stamp: int | float = int(now * 1000) if ms else now
    if not item.get("jid"):  # Ruby's ||=: nil and false count as missing
        item["jid"] = secrets.token_hex(12)
    if not item.get("created_at"):
        item["created_at"] = stamp
    item["enqueued_at"] = stamp
    item.update(counted or {})
    return ruby_json(item)
