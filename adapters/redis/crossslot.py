"""Moves between keys in different Redis Cluster slots, still exactly once.

No script can touch two slots, so a chunk moves in journalled steps:

1. *stage* (one :data:`~qctl.adapters.redis.scripts.TAKE` step in the source's
   slot): remove the chosen messages from the source into a staging key next
   to it, ``{source-slot-tag}:qctl-redrive-staging:SOURCE`` (of the target's
   type), and record a batch ID, the target and how to push in
   ``...:qctl-redrive-meta:SOURCE``;
2. *deliver* (one script in the target's slot): unless the marker key
   ``{target-tag}:qctl-redrive-done:BATCH`` exists, push the staged messages
   to the target and set that marker (kept a week);
3. *clear* the staging and meta keys, then the marker.

Killed at any instant, each message is in the source, in the staging key (the
source's own journal, hidden from ``stats``) or in the target, never in two
places once the run completes: every pass over a cluster key first finishes a
batch left staged (step 2 is idempotent thanks to the marker).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.crc import key_slot

from qctl.adapters.redis import scripts
from qctl.adapters.redis.connection import Client, is_cluster
from qctl.adapters.redis.keys import command, key_bytes, key_name, score_pairs
from qctl.errors import Unsupported
from qctl.primitives import Taken

if TYPE_CHECKING:
    from qctl.adapters.redis.destination import RedisDestination
    from qctl.adapters.redis.reader import RedisReader

MARKER_TTL = 7 * 24 * 3600

# KEYS: target, marker.  ARGV: kind, push end, ttl, then values: list items; zset score, member pairs;
# per stream entry: field count, fields...
DELIVER = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local count = 0
if ARGV[1] == 'stream' then
  local i = 4
  while i <= #ARGV do
    local n = tonumber(ARGV[i])
    redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + n))
    i = i + n + 1
    count = count + 1
  end
elseif ARGV[1] == 'zset' then
  count = (#ARGV - 3) / 2
  if count > 0 then redis.call('ZADD', KEYS[1], unpack(ARGV, 4)) end
else
  count = #ARGV - 3
  if count > 0 then redis.call(ARGV[2] == 'L' and 'LPUSH' or 'RPUSH', KEYS[1], unpack(ARGV, 4)) end
end
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
return count
"""


def same_slot(client: Client, *names: str) -> bool:
    return not is_cluster(client) or len({key_slot(key_bytes(name)) for name in names}) == 1


def take(reader: RedisReader, dest: RedisDestination, kind: str, taken: Sequence[Taken],
         payloads: Sequence[Sequence[bytes]]) -> list[bool]:
    """Stage the chunk next to the source, deliver it to the target, clear the journal."""
    finish_pending(reader.client, reader.queue)
    staging, meta = journal(reader.queue)
    batch = uuid.uuid4().hex
    moved = reader.step(taken, staging, kind, payloads, "R",
                        meta=["batch", batch, "target", dest.queue, "kind", kind, "push", dest.push],
                        meta_key=meta)
    if any(moved):
        _deliver_and_clear(reader.client, reader.queue, dest.queue, kind, dest.push, batch)
    return moved


def finish_pending(client: Client, source: str) -> int:
    """Complete a batch a killed run left staged; return how many messages it delivered."""
    _, meta = journal(source)
    values = {key_name(k): key_name(v) for k, v in (command(client, "HGETALL", meta) or {}).items()}
    if not values:
        return 0
    return _deliver_and_clear(client, source, values["target"], values["kind"], values["push"], values["batch"])


def _deliver_and_clear(client: Client, source: str, target: str, kind: str, push: str, batch: str) -> int:
    staging, meta = journal(source)
    marker = _tagged(target, f"qctl-redrive-done:{batch}")
    payload: list[Any] = []
    if kind == "stream":
        entries = command(client, "XRANGE", staging, "-", "+")
        for _, fields in entries:
            flat = [part for pair in fields.items() for part in pair]
            payload += [len(flat), *flat]
        size = len(entries)
    elif kind == "zset":
        pairs = score_pairs(command(client, "ZRANGE", staging, 0, -1, "WITHSCORES"))
        payload = [part for member, score in pairs for part in (repr(score), member)]
        size = len(pairs)
    else:
        payload = command(client, "LRANGE", staging, 0, -1)
        size = len(payload)
    # Returns 0 when an earlier, killed run already delivered this batch (the marker says so).
    scripts.run(client, DELIVER, [key_bytes(target), marker], [kind, push, MARKER_TTL, *payload])
    command(client, "DEL", staging, meta)  # same slot: one atomic command
    command(client, "DEL", marker)
    return size


def journal(source: str) -> tuple[bytes, bytes]:
    return _tagged(source, f"qctl-redrive-staging:{source}"), _tagged(source, f"qctl-redrive-meta:{source}")


def _tagged(name: str, suffix: str) -> bytes:
    """A key in ``name``'s slot: ``{tag}:suffix`` where tag is what Redis hashes of ``name``."""
    raw = key_bytes(name)
    start = raw.find(b"{")
    end = raw.find(b"}", start + 1) if start >= 0 else -1
    tag = raw[start + 1:end] if start >= 0 and end > start + 1 else raw
    key = b"{" + tag + b"}:" + key_bytes(suffix)
    if key_slot(key) != key_slot(raw):
        raise Unsupported(f"cannot place a journal next to {name!r} in its cluster slot",
                          hint="move to a queue in the same slot (a {hash tag})")
    return key
