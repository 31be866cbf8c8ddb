"""The Lua scripts that make each Redis step atomic and bounded.

Each script handles one chunk (at most ``CHUNK`` items), so killed at any
instant every message is in exactly one place, and no single step keeps the
server busy for long (SLOWLOG stays under 20 ms).  Lists are described by the
end consumers pop first: ``R`` (LPUSH + BRPOP) or ``L`` (RPUSH + BLPOP).
Scripts declare every key they touch, so on a cluster they need one slot.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from qctl.adapters.redis import wire
from qctl.adapters.redis.connection import Client

CHUNK = 2000

# The engine's step: remove exactly the chosen messages of a chunk the client read, after checking
# they are still there, and (with a target) push what it removed there -- in one atomic step.
#
# KEYS: source, [target, [journal meta]]
# ARGV: source kind (list|zset|stream), target kind (list|zset|stream|''), list consumption end (R|L),
#       list offset (messages from the consumption end before the chunk), target list push end (L|R),
#       n, tombstone, meta field count, meta fields..., then per message:
#       source token (list: the item as read; zset: the member; stream: the entry ID), chosen (1|0),
#       payload length m, payload... (list: body; zset: score, member; stream: field, value...)
# Returns a string of n flags, '1' for each message moved (or removed), or -1 when a list chunk is no
# longer where it was read (a consumer popped meanwhile): nothing is changed then.
TAKE = """
local skind, tkind, lend = ARGV[1], ARGV[2], ARGV[3]
local offset, push, n, tomb = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7]
local nmeta = tonumber(ARGV[8])
local i = 9 + nmeta
local records = {}
for r = 1, n do
  local m = tonumber(ARGV[i + 2])
  records[r] = {token = ARGV[i], chosen = ARGV[i + 1] == '1', first = i + 3, last = i + 2 + m}
  i = i + 3 + m
end
local flags = {}
if skind == 'list' then
  local items
  if lend == 'R' then items = redis.call('LRANGE', KEYS[1], -offset - n, -offset - 1)
  else items = redis.call('LRANGE', KEYS[1], offset, offset + n - 1) end
  if #items ~= n then return -1 end
  for r = 1, n do
    local item = lend == 'R' and items[n - r + 1] or items[r]
    if item ~= records[r].token then return -1 end
  end
  local all, count = offset == 0, 0
  for r = 1, n do
    if records[r].chosen then count = count + 1 else all = false end
  end
  if all then
    if lend == 'R' then redis.call('LTRIM', KEYS[1], 0, -n - 1) else redis.call('LTRIM', KEYS[1], n, -1) end
  elseif count > 0 then
    for r = 1, n do
      if records[r].chosen then
        if lend == 'R' then redis.call('LSET', KEYS[1], -offset - r, tomb)
        else redis.call('LSET', KEYS[1], offset + r - 1, tomb) end
      end
    end
    redis.call('LREM', KEYS[1], lend == 'R' and -count or count, tomb)
  end
  for r = 1, n do flags[r] = records[r].chosen and '1' or '0' end
elseif skind == 'zset' then
  for r = 1, n do
    local gone = records[r].chosen and redis.call('ZREM', KEYS[1], records[r].token) == 1
    flags[r] = gone and '1' or '0'
  end
else
  for r = 1, n do
    local gone = false
    if records[r].chosen and redis.call('XRANGE', KEYS[1], records[r].token, records[r].token)[1] then
      redis.call('XDEL', KEYS[1], records[r].token)
      gone = true
    end
    flags[r] = gone and '1' or '0'
  end
end
if tkind ~= '' then
  local bodies = {}
  for r = 1, n do
    if flags[r] == '1' then
      local rec = records[r]
      if tkind == 'list' then bodies[#bodies + 1] = ARGV[rec.first]
      elseif tkind == 'zset' then redis.call('ZADD', KEYS[2], ARGV[rec.first], ARGV[rec.first + 1])
      else redis.call('XADD', KEYS[2], '*', unpack(ARGV, rec.first, rec.last)) end
    end
  end
  if #bodies > 0 then redis.call(push == 'L' and 'LPUSH' or 'RPUSH', KEYS[2], unpack(bodies)) end
  if KEYS[3] and string.find(table.concat(flags), '1') then
    redis.call('HSET', KEYS[3], unpack(ARGV, 9, 8 + nmeta))
  end
end
return table.concat(flags)
"""

# Blind moves, when nothing about a message decides where it goes (a redrive of a list or sorted set
# with no --where): the next n messages move without crossing the network.
# KEYS: dlq, target.  ARGV: n, dlq consumption end, target producer end.
# Takes the n messages the DLQ's consumers would get first and pushes them, oldest first, on the
# target's producer end: the target's consumers then get them after what is already waiting, in
# their original order.
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

# Plain purge (no backup, no --where).  KEYS: list.  ARGV: consumption end, n.
LIST_REMOVE = """
local n = tonumber(ARGV[2])
local len = redis.call('LLEN', KEYS[1])
if n > len then n = len end
if n == 0 then return 0 end
if ARGV[1] == 'R' then redis.call('LTRIM', KEYS[1], 0, -n - 1) else redis.call('LTRIM', KEYS[1], n, -1) end
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

# KEYS: any keys.  Returns one string "type depth type depth ..." (depth 0 unless list/stream/zset):
# one round trip for a thousand keys instead of two pipelined commands each, and one bulk string that
# Python splits in C instead of 2,000 array items for redis-py's parser (~2.5 us each, measured).  LLEN
# comes first: Redis deletes an emptied list, so 0 means no key, a number means a list, and only other
# types (WRONGTYPE) need TYPE: one command per list instead of two.
TYPES_AND_DEPTHS = """
local out = {}
for i, key in ipairs(KEYS) do
  local depth = redis.pcall('LLEN', key)
  local kind = 'list'
  if type(depth) ~= 'number' then
    kind = redis.call('TYPE', key)['ok']
    depth = 0
    if kind == 'stream' then depth = redis.call('XLEN', key)
    elseif kind == 'zset' then depth = redis.call('ZCARD', key) end
  elseif depth == 0 then
    kind = 'none'
  end
  out[i] = kind .. ' ' .. depth
end
return table.concat(out, ' ')
"""

_cache: dict[tuple[int, str], Script] = {}


def run(client: Client, source: str, keys: list[Any], args: list[Any]) -> Any:
    """EVALSHA ``source`` (loaded on first use, reloaded if the server forgot it).  On a single server the
    call is encoded by :func:`.wire.evalsha` (a step's arguments are thousands)."""
    script = _cache.get((id(client), source))
    if script is None:
        script = _cache[(id(client), source)] = client.register_script(source)
    if not isinstance(client, redis.Redis):
        return script(keys=keys, args=args)
    try:
        return wire.evalsha(client, script.sha.encode(), keys, args)
    except NoScriptError:  # a server restarted or flushed meanwhile forgot it
        script.sha = client.script_load(script.script)
        return wire.evalsha(client, script.sha.encode(), keys, args)
