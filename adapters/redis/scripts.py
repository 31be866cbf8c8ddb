"""The Lua scripts that make each purge/redrive step atomic and bounded.

Each script handles one chunk (at most ``CHUNK`` items), so killed at any
instant every message is in exactly one place, and no single step keeps the
server busy for long (SLOWLOG stays under 20 ms).  Lists are described by the
end consumers pop first: ``R`` (LPUSH + BRPOP) or ``L`` (RPUSH + BLPOP).
Scripts declare every key they touch, so on a cluster they need one slot.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import Script

from qctl.adapters.redis.connection import Client

CHUNK = 2000

# KEYS: dlq, target.  ARGV: n, dlq consumption end, target producer end.
# Takes the n messages the DLQ's consumers would get first and pushes them,
# oldest first, on the target's producer end: the target's consumers then get
# them after what is already waiting, in their original order.
LIST_MOVE = """
local n = tonumber(ARGV[1])
local right = ARGV[2] == 'R'
local items
if right then items = redis.call('LRANGE', KEYS[1], -n, -1) else items = redis.call('LRANGE', KEYS[1], 0, n - 1) end
local count = #items
if count == 0 then return 0 end
if right then
  for i = 1, math.floor(count / 2) do items[i], items[count - i + 1] = items[count - i + 1], items[i] end
end
redis.call(ARGV[3] == 'L' and 'LPUSH' or 'RPUSH', KEYS[2], unpack(items))
if right then redis.call('LTRIM', KEYS[1], 0, -count - 1) else redis.call('LTRIM', KEYS[1], count, -1) end
return count
"""

# KEYS: zset, target list.  ARGV: n, target producer end.  Lowest scores (due first) move first.
ZSET_MOVE = """
local items = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return 0 end
redis.call(ARGV[2] == 'L' and 'LPUSH' or 'RPUSH', KEYS[2], unpack(items))
redis.call('ZREM', KEYS[1], unpack(items))
return #items
"""

# KEYS: dlq stream, target stream.  ARGV: count field, entry IDs.  Fields are read
# here, not sent by the client, so they move byte for byte; the redrive counter
# is incremented (or added as 1).  An ID that is gone (deleted meanwhile) is skipped.
STREAM_MOVE = """
local moved = 0
for i = 2, #ARGV do
  local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])[1]
  if entry then
    local fields, seen = entry[2], false
    for j = 1, #fields, 2 do
      if fields[j] == ARGV[1] then fields[j + 1] = tostring((tonumber(fields[j + 1]) or 0) + 1); seen = true end
    end
    if not seen then fields[#fields + 1] = ARGV[1]; fields[#fields + 1] = '1' end
    redis.call('XADD', KEYS[2], '*', unpack(fields))
    redis.call('XDEL', KEYS[1], ARGV[i])
    moved = moved + 1
  end
end
return moved
"""

# KEYS: list.  ARGV: consumption end, n, then optionally the n items as LRANGE
# returned them.  With items, delete only if the end still holds exactly those
# (purge --backup wrote them); returns -1 when it does not.  Returns the count removed.
LIST_REMOVE = """
local n = tonumber(ARGV[2])
local right = ARGV[1] == 'R'
if #ARGV > 2 then
  local got
  if right then got = redis.call('LRANGE', KEYS[1], -n, -1) else got = redis.call('LRANGE', KEYS[1], 0, n - 1) end
  if #got ~= n then return -1 end
  for i = 1, n do if got[i] ~= ARGV[i + 2] then return -1 end end
end
local len = redis.call('LLEN', KEYS[1])
if n > len then n = len end
if n == 0 then return 0 end
if right then redis.call('LTRIM', KEYS[1], 0, -n - 1) else redis.call('LTRIM', KEYS[1], n, -1) end
return n
"""

# KEYS: stream.  ARGV: last ID to purge, n.  Deletes the n oldest entries up to that ID;
# the stream and its consumer groups stay.
STREAM_REMOVE = """
local entries = redis.call('XRANGE', KEYS[1], '-', ARGV[1], 'COUNT', tonumber(ARGV[2]))
if #entries == 0 then return 0 end
local ids = {}
for i, entry in ipairs(entries) do ids[i] = entry[1] end
return redis.call('XDEL', KEYS[1], unpack(ids))
"""

# KEYS: any keys.  Returns type, depth, type, depth... (depth 0 unless list/stream/zset):
# one round trip and one parsed reply for a thousand keys, instead of two pipelined commands each.
TYPES_AND_DEPTHS = """
local out = {}
for i, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  local depth = 0
  if kind == 'list' then depth = redis.call('LLEN', key)
  elseif kind == 'stream' then depth = redis.call('XLEN', key)
  elseif kind == 'zset' then depth = redis.call('ZCARD', key) end
  out[#out + 1] = kind
  out[#out + 1] = depth
end
return out
"""

_cache: dict[tuple[int, str], Script] = {}


def run(client: Client, source: str, keys: list[Any], args: list[Any]) -> Any:
    """EVALSHA ``source`` (loaded on first use, reloaded if the server forgot it)."""
    script = _cache.get((id(client), source))
    if script is None:
        script = _cache[(id(client), source)] = client.register_script(source)
    return script(keys=keys, args=args)
