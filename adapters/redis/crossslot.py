"""Redrive between keys in different Redis Cluster slots, still exactly once.

No script can touch two slots, so a chunk moves in journalled steps:

1. *stage* (one script in the DLQ's slot): take the chunk off the DLQ into a
   staging key next to it, ``{DLQ-slot-tag}:qctl-redrive-staging:DLQ``, and record
   a batch ID, the target and how to push in ``...:qctl-redrive-meta:DLQ``;
2. *deliver* (one script in the target's slot): unless the marker key
   ``{target-tag}:qctl-redrive-done:BATCH`` exists, push the chunk to the target
   and set that marker (kept a week);
3. *clear* the staging and meta keys, then the marker.

Killed at any instant, each message is in the DLQ, in the staging key (the
DLQ's own journal, hidden from ``stats``) or in the target, never in two
places once the run completes: every redrive on a cluster first finishes a
batch left staged (step 2 is idempotent thanks to the marker).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from redis.crc import key_slot

from qctl.adapters.redis import scripts
from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.keys import command, key_bytes, key_name
from qctl.adapters.redis.messages import REDRIVE_COUNT_FIELD
from qctl.errors import Unsupported

MARKER_TTL = 7 * 24 * 3600

# KEYS: dlq, staging, meta.  ARGV: kind, take end, n, batch, target, push end, count field, ids...
STAGE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local kind, n = ARGV[1], tonumber(ARGV[3])
local count = 0
if kind == 'stream' then
  for i = 8, #ARGV do
    local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])[1]
    if entry then
      local fields, seen = entry[2], false
      for j = 1, #fields, 2 do
        if fields[j] == ARGV[7] then fields[j + 1] = tostring((tonumber(fields[j + 1]) or 0) + 1); seen = true end
      end
      if not seen then fields[#fields + 1] = ARGV[7]; fields[#fields + 1] = '1' end
      redis.call('XADD', KEYS[2], ARGV[i], unpack(fields))
      redis.call('XDEL', KEYS[1], ARGV[i])
      count = count + 1
    end
  end
else
  local items
  if kind == 'zset' then items = redis.call('ZRANGE', KEYS[1], 0, n - 1)
  elseif ARGV[2] == 'R' then items = redis.call('LRANGE', KEYS[1], -n, -1)
  else items = redis.call('LRANGE', KEYS[1], 0, n - 1) end
  count = #items
  if count == 0 then return 0 end
  if kind == 'list' and ARGV[2] == 'R' then
    for i = 1, math.floor(count / 2) do items[i], items[count - i + 1] = items[count - i + 1], items[i] end
  end
  redis.call('RPUSH', KEYS[2], unpack(items))
  if kind == 'zset' then redis.call('ZREM', KEYS[1], unpack(items))
  elseif ARGV[2] == 'R' then redis.call('LTRIM', KEYS[1], 0, -count - 1)
  else redis.call('LTRIM', KEYS[1], count, -1) end
end
if count > 0 then
  redis.call('HSET', KEYS[3], 'batch', ARGV[4], 'target', ARGV[5], 'kind', kind, 'push', ARGV[6])
end
return count
"""

# KEYS: target, marker.  ARGV: kind, push end, ttl, then values (lists) or
# per entry: field count, fields... (streams).
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
else
  count = #ARGV - 3
  redis.call(ARGV[2] == 'L' and 'LPUSH' or 'RPUSH', KEYS[1], unpack(ARGV, 4))
end
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
return count
"""


def move_list(client: Client, kind: str, dlq: str, target: str, n: int, take: str, push: str) -> int:
    return _move(client, dlq, target, kind, [take, n], push, [])


def move_stream(client: Client, dlq: str, target: str, ids: Sequence[bytes]) -> int:
    return _move(client, dlq, target, "stream", ["R", len(ids)], "L", list(ids))


def finish_pending(client: Client, dlq: str) -> int:
    """Complete a batch a killed run left staged; return how many messages it delivered."""
    _, meta = _journal(dlq)
    values = {key_name(k): key_name(v) for k, v in (command(client, "HGETALL", meta) or {}).items()}
    if not values:
        return 0
    return _deliver_and_clear(client, dlq, values["target"], values["kind"], values["push"], values["batch"])


def _move(client: Client, dlq: str, target: str, kind: str, how: list[Any], push: str, ids: list[bytes]) -> int:
    finish_pending(client, dlq)
    staging, meta = _journal(dlq)
    batch = uuid.uuid4().hex
    staged = int(scripts.run(client, STAGE, [key_bytes(dlq), staging, meta],
                             [kind, *how, batch, target, push, REDRIVE_COUNT_FIELD, *ids]))
    if staged <= 0:
        return 0
    return _deliver_and_clear(client, dlq, target, kind, push, batch)


def _deliver_and_clear(client: Client, dlq: str, target: str, kind: str, push: str, batch: str) -> int:
    staging, meta = _journal(dlq)
    marker = _tagged(target, f"qctl-redrive-done:{batch}")
    payload: list[Any] = []
    if kind == "stream":
        entries = command(client, "XRANGE", staging, "-", "+")
        for _, fields in entries:
            flat = [part for pair in fields.items() for part in pair]
            payload += [len(flat), *flat]
        size = len(entries)
    else:
        payload = command(client, "LRANGE", staging, 0, -1)
        size = len(payload)
    # Returns 0 when an earlier, killed run already delivered this batch (the marker says so).
    scripts.run(client, DELIVER, [key_bytes(target), marker], [kind, push, MARKER_TTL, *payload])
    command(client, "DEL", staging, meta)  # same slot: one atomic command
    command(client, "DEL", marker)
    return size


def _journal(dlq: str) -> tuple[bytes, bytes]:
    return _tagged(dlq, f"qctl-redrive-staging:{dlq}"), _tagged(dlq, f"qctl-redrive-meta:{dlq}")


def _tagged(name: str, suffix: str) -> bytes:
    """A key in ``name``'s slot: ``{tag}:suffix`` where tag is what Redis hashes of ``name``."""
    raw = key_bytes(name)
    start = raw.find(b"{")
    end = raw.find(b"}", start + 1) if start >= 0 else -1
    tag = raw[start + 1:end] if start >= 0 and end > start + 1 else raw
    key = b"{" + tag + b"}:" + key_bytes(suffix)
    if key_slot(key) != key_slot(raw):
        raise Unsupported(f"cannot place a redrive journal next to {name!r} in its cluster slot",
                          hint="redrive with --to a queue in the same slot (a {hash tag})")
    return key
