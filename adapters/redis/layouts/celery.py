"""Celery on Redis (kombu 5): a queue is its priority lists; delivered, unacknowledged tasks wait in ``unacked``.

Names: a queue ``emails`` is the lists ``emails`` and ``emails\\x06\\x16<p>``
(kombu's priority steps, p = 1..9; BRPOP takes the lowest step first, each
list from the right); ``emails:unacked`` its tasks delivered to a worker and
not acknowledged (kombu's ``unacked`` hash and ``unacked_index``; ``unacked``
alone is all of them; ``--dead emails`` means ``emails:unacked``).
``?prefix=`` is kombu's ``global_keyprefix``; ``?priority_steps=0,3,6,9``
(kombu's default) says which list a task of a given priority goes to;
``?visibility_timeout=3600`` (kombu's default) which unacked tasks are stale.

A message is kombu's envelope, the AMQP way: the body is ``body`` decoded
(base64), ``headers`` Celery's task headers (``task``, ``id``, ``retries``,
``argsrepr``...), ``properties`` the envelope's properties (``priority``,
``delivery_tag``, ``delivery_info``...) plus ``content_type`` and
``content_encoding``; so moving Celery tasks to RabbitMQ keeps them Celery
tasks.  Celery keeps no enqueue time and no failed tasks on the broker
(failures live in the result backend, ``celery-task-meta-<id>``, if there is
one): ``oldest_age`` is null, and there is no dead-letter queue.

Redrive of ``emails:unacked`` is kombu's visibility-timeout restore
(``QoS.restore_visible`` / ``restore_by_tag``, docs/internals/job-frameworks.md
§4.4), per task in one step: only tasks delivered more than
``visibility_timeout`` ago, only if ``unacked`` still holds exactly the value
read (a worker's ack or kombu's own sweep wins otherwise), ``HDEL unacked``,
``ZREM unacked_index``, then ``RPUSH`` of the message with ``redelivered`` set
in its headers and ``delivery_info`` onto its priority list (so it runs next),
while holding kombu's ``unacked_mutex`` (so no sweep runs at the same time).
Restoring the entry of a task that still runs duplicates it, as kombu's own
restore would.  Celery tasks carry qctl's redrive count as a task header.
Every redrive of unacked tasks says, on stderr, that these are not failed
tasks: failures live in the result backend.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from qctl.adapters.redis import purge as plain_purge
from qctl.adapters.redis import scripts
from qctl.adapters.redis.keys import command, key_bytes, key_name, pipelined, scan
from qctl.adapters.redis.layouts import sources
from qctl.adapters.redis.layouts.base import Layout, epoch, loads, row, selected
from qctl.adapters.redis.layouts.sources import Chain, ListSource, SetSource, Source, owned, part
from qctl.adapters.redis.layouts.steps import Command
from qctl.codec import header_value
from qctl.errors import Refused, Unsupported, UsageError
from qctl.models import DeadLetter, Message, PeekRequest, PurgeResult, QueueStats
from qctl.primitives import Carries, Reader, ReadMode, SourceTraits, Sync, Taken, sync_confirmed

SEP = b"\x06\x16"
STEPS = range(10)  # every list a queue may have: kombu's default steps are 0,3,6,9, Celery's full range 0..9
CHUNK = 500
MUTEX_MS = 300_000  # kombu's unacked_mutex_expire
MUTEX_WAIT = 5.0  # seconds to wait for a sweep in progress to let go of the mutex
ENVELOPE = ("body", "content-encoding", "content-type", "headers", "properties")

# Per HSCAN page of `unacked`: how many entries each (exchange, routing key) has.  Read-only decoding.
UNACKED_COUNTS = """
local reply = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', 300)
local counts, out = {}, {reply[1]}
local items = reply[2]
for i = 2, #items, 2 do
  local ok, entry = pcall(cjson.decode, items[i])
  if ok and type(entry) == 'table' and type(entry[2]) == 'string' and type(entry[3]) == 'string' then
    local key = entry[2] .. '\\0' .. entry[3]
    counts[key] = (counts[key] or 0) + 1
  end
end
for key, count in pairs(counts) do
  out[#out + 1] = key
  out[#out + 1] = count
end
return out
"""
EXTEND = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    queue: str | None  # None: every queue's unacked tasks
    unacked: bool


class Celery(Layout):
    name = "celery"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefix = str(self.setting("prefix") or "").encode()
        steps = str(self.setting("priority_steps") or "0,3,6,9")
        try:
            self.steps = sorted({int(step) for step in steps.split(",")})
        except ValueError:
            raise UsageError(f"priority_steps {steps!r} is not a list of numbers", hint="e.g. 0,3,6,9") from None
        try:
            self.visibility = float(self.setting("visibility_timeout") or 3600)
        except ValueError:
            raise UsageError("visibility_timeout must be a number of seconds") from None
        self.unacked_key = self.prefix + b"unacked"
        self.index_key = self.prefix + b"unacked_index"
        self.mutex_key = self.prefix + b"unacked_mutex"
        self._bindings: dict[bytes, list[tuple[bytes, bytes]]] = {}

    def address(self, queue: str) -> Address:
        queue = self.dead_name(queue, ":unacked")
        if queue == "unacked":
            return Address(queue, None, True)
        if queue.endswith(":unacked") and len(queue) > len(":unacked"):
            return Address(queue, queue[: -len(":unacked")], True)
        return Address(queue, queue, False)

    def lists(self, queue: str) -> list[tuple[int, bytes]]:
        """(priority step, key) of every list of ``queue``, in the order BRPOP takes them."""
        base = self.prefix + key_bytes(queue)
        return [(step, base if step == 0 else base + SEP + str(step).encode()) for step in STEPS]

    def list_for(self, queue: str, priority: Any) -> bytes:
        """kombu's ``_q_for_pri``: the list of the largest configured step at or below the priority."""
        value = priority if isinstance(priority, int) and not isinstance(priority, bool) else 0
        value = min(max(value, 0), 9)
        step = max((s for s in self.steps if s <= value), default=0)
        base = self.prefix + key_bytes(queue)
        return base if step == 0 else base + SEP + str(step).encode()

    # --- bindings: where an unacked task goes back to ------------------------------------------------

    def lookup(self, exchange: str, routing_key: str) -> list[str]:
        """kombu's ``_lookup`` for a direct exchange: the queues bound with exactly this routing key."""
        if not exchange:
            return [routing_key]
        members = self._binding(exchange.encode())
        return sorted({key_name(queue) for key, queue in members if key == routing_key.encode()})

    def _binding(self, exchange: bytes) -> list[tuple[bytes, bytes]]:
        if exchange not in self._bindings:
            members = command(self.client, "SMEMBERS", self.prefix + b"_kombu.binding." + exchange)
            self._bindings[exchange] = [(parts[0], parts[-1]) for parts in (m.split(SEP) for m in members)
                                        if len(parts) == 3]
        return self._bindings[exchange]

    def known(self) -> list[str]:
        """Queues bound to any exchange (``_kombu.binding.*``), found with SCAN."""
        head = key_name(self.prefix) + "_kombu.binding."
        exchanges = [name[len(head):] for name in scan(self.client, head + "*")]
        found = {key_name(queue) for exchange in exchanges for _, queue in self._binding(exchange.encode())}
        return sorted(found)

    # --- stats ------------------------------------------------------------------------------------

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        matched, plain = selected(self.known(), patterns)
        addresses = [Address(n, n, False) for n in matched] + [self.address(n) for n in plain]
        queues = [a for a in addresses if not a.unacked]
        depths = pipelined(self.client, [("LLEN", key) for a in queues for _, key in self.lists(str(a.queue))])
        unacked = self._unacked_counts()
        rows = []
        at = 0
        for a in addresses:
            if a.unacked:
                total = sum(unacked.values()) if a.queue is None else unacked.get(a.queue, 0)
                rows.append(row(a.name, "celery-unacked", total))
                continue
            counts = [int(d) for d in depths[at: at + len(STEPS)]]
            at += len(STEPS)
            rows.append(row(a.name, "celery", sum(counts), in_flight=unacked.get(str(a.queue), 0),
                            extra={"by_priority": {str(step): n for step, n in zip(STEPS, counts, strict=True)
                                                   if n}}))
        return rows

    def _unacked_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        cursor: Any = b"0"
        while True:
            reply = scripts.run(self.client, UNACKED_COUNTS, [self.unacked_key], [cursor])
            cursor, flat = reply[0], reply[1:]
            for key, count in zip(flat[::2], flat[1::2], strict=True):
                exchange, _, routing_key = key_name(key).partition("\0")
                for queue in self.lookup(exchange, routing_key):
                    counts[queue] = counts.get(queue, 0) + int(count)
            if cursor in (b"0", "0", 0):
                return counts

    # --- reading ----------------------------------------------------------------------------------

    def depth(self, queue: str) -> int:
        address = self.address(queue)
        if address.unacked:
            counts = self._unacked_counts()
            return sum(counts.values()) if address.queue is None else counts.get(address.queue, 0)
        return sum(int(n) for n in pipelined(self.client, [("LLEN", key) for _, key in self.lists(queue)]))

    def _source(self, address: Address, mode: ReadMode, start: int = 0) -> Source | Chain:
        if address.unacked:
            return Unacked(self, address, mode, start)
        assert address.queue is not None
        return Chain([ListSource(self, address.name, key, mode, self._decoder(address, step), lambda t: [],
                                 chunk=CHUNK, end="R", start=start if step == 0 else 0)
                      for step, key in self.lists(address.queue)])

    def _decoder(self, address: Address, step: int) -> sources.Decode:
        def decode(rows: Sequence[tuple[bytes, str, float | None]]) -> list[Message | None]:
            return [envelope_message(address.name, position if step == 0 else f"{step}/{position}", raw)
                    for raw, position, _ in rows]

        return decode

    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        address = self.address(queue)
        start = sources.start_at(request.from_position, "L" if address.unacked else "R")
        yield from sources.peek(self._source(address, ReadMode.READ, start), request.count)

    def reader(self, queue: str, mode: ReadMode) -> Reader:
        address = self.address(queue)
        if address.unacked and self.options.flags.get("redrive"):  # an operator looking for failed tasks
            self.notices.append(
                f"Celery keeps no failed tasks on the broker: failures live in its result backend "
                f"(celery-task-meta-<task id>), not in Redis; what redrive returns from {address.name!r} are stale "
                f"unacked entries, tasks a worker took and never acknowledged (kombu's visibility-timeout restore)")
        return self._source(address, mode)

    def read_traits(self, queue: str) -> SourceTraits:
        return SourceTraits(settle_before_read=True, chunk=CHUNK)

    # --- purge --------------------------------------------------------------------------------------

    def purge(self, queue: str) -> PurgeResult:
        address = self.address(queue)
        if not address.unacked:
            purged = sum(plain_purge.purge(self.client, key_name(key), "list", "right").purged
                         for _, key in self.lists(queue))
            return PurgeResult(queue=queue, purged=purged)
        source = Unacked(self, address, ReadMode.DELETE)
        purged = 0
        try:
            while taken := source.read(CHUNK):
                purged += sum(source.settle(taken))
        finally:
            source.close()
        return PurgeResult(queue=queue, purged=purged)

    # --- writing ------------------------------------------------------------------------------------

    def destination(self, queue: str) -> CeleryDestination:
        address = self.address(queue)
        if address.unacked or address.queue is None:
            raise Unsupported(f"{queue!r} holds tasks delivered to workers; qctl puts tasks into queues only",
                              hint="redrive QUEUE:unacked to put them back on their queue")
        for _, key in self.lists(address.queue):
            kind = key_name(command(self.client, "TYPE", key))
            if kind not in ("list", "none"):
                raise Unsupported(f"cannot publish into Celery {queue!r}: {key_name(key)!r} is a Redis {kind}")
        return CeleryDestination(self, address.queue)


class Unacked(SetSource):
    """kombu's unacknowledged tasks (``unacked_index``), most recent delivery first as ``restore_visible``
    walks them (each RPUSHed, so the oldest runs first); in MOVE and DELETE passes only those delivered over
    ``visibility_timeout`` ago, and under kombu's ``unacked_mutex``."""

    def __init__(self, layout: Celery, address: Address, mode: ReadMode, start: int = 0) -> None:
        self.celery = layout
        self.only = address.queue
        self.stale_before = time.time() - layout.visibility if mode is not ReadMode.READ else None
        self.young = 0  # unacked tasks of this view left alone because they were delivered too recently
        self.token: bytes | None = None
        self.values: dict[bytes, bytes] = {}  # tag -> the `unacked` value read: what the step compares
        super().__init__(layout, address.name, layout.index_key, mode, self._decode, self._delete_ops, chunk=CHUNK,
                         start=start, reverse=True)
        if mode is not ReadMode.READ:
            self._lock()

    def _lock(self) -> None:
        token = uuid.uuid1().hex.encode()
        deadline = time.monotonic() + MUTEX_WAIT
        while not command(self.client, "SET", self.celery.mutex_key, token, "NX", "PX", MUTEX_MS):
            if time.monotonic() > deadline:
                raise Refused("kombu's unacked_mutex is held: a Celery worker is restoring unacked tasks right now",
                              hint="run it again in a minute (the lock expires after 300 s)")
            time.sleep(0.2)
        self.token = token

    def read(self, limit: int) -> list[Taken]:
        if self.token is not None:
            scripts.run(self.client, EXTEND, [self.celery.mutex_key], [self.token, MUTEX_MS])
        return super().read(limit)

    def _decode(self, rows: Sequence[tuple[bytes, str, float | None]]) -> list[Message | None]:
        values = pipelined(self.client, [("HGET", self.celery.unacked_key, tag) for tag, _, _ in rows])
        found: list[Message | None] = []
        self.values = {}
        for (tag, position, score), value in zip(rows, values, strict=True):
            entry = loads(value)
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], dict)):
                found.append(None)  # an index entry whose task was acknowledged: kombu's next sweep drops it
                continue
            queues = self.celery.lookup(str(entry[1]), str(entry[2]))
            if self.only is not None and self.only not in queues:
                found.append(None)
                continue
            if self.stale_before is not None and score is not None and score > self.stale_before:
                self.young += 1
                found.append(None)
                continue
            self.values[tag] = value
            message = envelope_message(self.queue, position, json.dumps(entry[0]).encode())
            reason = "unacknowledged since delivery (a worker died, or still runs it)"
            if len(queues) != 1:
                reason += f"; exchange {entry[1]!r} routes {entry[2]!r} to {len(queues)} queues: give --to"
            found.append(Message(
                queue=message.queue, position=message.position, body=message.body, headers=message.headers,
                properties=message.properties, redelivered=True,
                dead_letter=DeadLetter(reason=reason, source_queue=queues[0] if len(queues) == 1 else None,
                                       count=None, time=epoch(score))))
        return found

    def _delete_ops(self, taken: Taken) -> list[Command]:
        return []

    def step(self, taken: Sequence[Taken], ops: Sequence[list[Command] | None],
             extra: Sequence[Sequence[Command]] = ()) -> list[bool]:
        checks = [[*(extra[i] if extra else ()), ("H", self.celery.unacked_key, item.handle,
                                                   self.values.get(item.handle, b""))]
                  for i, item in enumerate(taken)]
        return super().step(taken, ops, checks)

    def close(self) -> None:
        if self.token is not None:
            token, self.token = self.token, None
            scripts.run(self.client, RELEASE, [self.celery.mutex_key], [token])
        if self.young:
            young, self.young = self.young, 0
            self.celery.notices.append(
                f"{young} unacked task(s) were delivered less than visibility_timeout "
                f"({self.celery.visibility:g} s) ago and stay: their workers may still run them "
                f"(?visibility_timeout=SECONDS to change it)")


class CeleryDestination:
    """A Celery queue: tasks LPUSHed onto their priority's list as kombu publishes, or restored from
    ``unacked`` (RPUSH: they run next) as its visibility-timeout restore does."""

    carries = Carries(headers=True, properties=True)

    def __init__(self, layout: Celery, queue: str) -> None:
        self.layout = layout
        self.queue = queue

    def refusal(self, message: Message) -> str | None:
        return None

    def envelope(self, message: Message, *, restored: bool = False) -> tuple[bytes, bytes]:
        """(list key, JSON) for ``message``: kombu's envelope, rebuilt from the parts peek shows."""
        properties = {k: v for k, v in message.properties.items()
                      if k not in ("content_type", "content_encoding")}
        properties.setdefault("delivery_tag", str(uuid.uuid4()))
        info = properties.get("delivery_info")
        if not isinstance(info, dict) or (info.get("routing_key") != self.queue and info.get("exchange") == ""):
            info = {"exchange": "", "routing_key": self.queue}
        headers = {str(name): header_value(value) for name, value in message.pairs()}
        if restored:  # Channel._do_restore_message
            headers["redelivered"] = True
            info = {**info, "redelivered": True}
        properties["delivery_info"] = info
        body = base64.b64encode(message.body).decode()  # kombu's virtual channel: body_encoding = 'base64'
        properties["body_encoding"] = "base64"
        envelope = {"body": body,
                    "content-encoding": message.properties.get("content_encoding") or "utf-8",
                    "content-type": message.properties.get("content_type") or "application/json",
                    "headers": headers, "properties": properties}
        return self.layout.list_for(self.queue, properties.get("priority")), json.dumps(envelope).encode()

    def send(self, messages: Sequence[Message]) -> Sync:
        if messages:
            pipe = self.layout.client.pipeline(transaction=True)
            for message in messages:
                key, payload = self.envelope(message)
                pipe.execute_command("LPUSH", key, payload)
            pipe.execute()
        return Sync([True] * len(messages))

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool]:
        return sync_confirmed(ticket)

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> list[bool] | None:
        if not owned(reader, self.layout) or not taken:
            return None
        restore = isinstance(part(reader), Unacked)
        ops = []
        for message in outgoing:
            key, payload = self.envelope(message, restored=restore)
            ops.append([("RPUSH" if restore else "LPUSH", key, payload)])
        return reader.step(taken, ops)


def envelope_message(queue: str, position: str, raw: bytes) -> Message:
    """A kombu envelope as a Message: body decoded, Celery's headers, the envelope's properties."""
    envelope = loads(raw)
    if not (isinstance(envelope, dict) and "body" in envelope and isinstance(envelope.get("properties"), dict)):
        return Message(queue=queue, position=position, body=raw)
    properties = dict(envelope["properties"])
    body = envelope.get("body")
    data = str(body).encode() if not isinstance(body, str) else body.encode()
    if properties.get("body_encoding") == "base64":
        try:
            data = base64.b64decode(data)
        except ValueError:
            pass
    found = envelope.get("headers")
    headers: dict[str, Any] = found if isinstance(found, dict) else {}
    properties["content_type"] = envelope.get("content-type")
    properties["content_encoding"] = envelope.get("content-encoding")
    return Message(queue=queue, position=position, body=data, headers=dict(headers),
                   properties={k: v for k, v in properties.items() if v is not None},
                   redelivered=bool(headers.get("redelivered")) if "redelivered" in headers else None)
