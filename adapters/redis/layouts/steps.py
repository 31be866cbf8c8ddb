"""The one Lua step every job-framework layout uses: check each job is still where it was read, then act.

A framework's own retry, delete or restore is, per job, "if it is still
there, take it out and put it back elsewhere".  The client works out the new
payloads (with a faithful JSON library: Lua's cjson turns ``[]`` into ``{}``
and rounds numbers, see docs/internals/job-frameworks.md) and sends, per job,
the *checks* that prove the job is still where it was read and the *commands*
to run if so.  The step runs them in one script, so killed at any instant a
job is in one place, never two, and a job someone else took meanwhile (a
worker, the framework's own retry) is left alone and reported.

Checks (all are read first; only when every one holds is the job taken out of
where it was, and its commands run):

* ``L`` -- the job is item ``r`` of the list chunk read from ``KEYS[1]``
  (the whole chunk must still be at the offset it was read at; the chosen
  items are removed in one ``LREM`` over tombstones, as the plain Redis
  reader does);
* ``E key`` -- the key exists; ``N key`` -- it does not;
* ``Z key member`` -- that exact member is in the sorted set (then ``ZREM``);
* ``H key field value`` -- the hash field still holds exactly that value
  (then ``HDEL``).

Commands are plain Redis commands, or macros (``@name``, Lua functions a
layout adds with ``macros=``) for what must read the data inside the step:
BullMQ's paused check before its push, its event stream's length, a new job
id.  No command may fail half-way (Redis does not roll back what a script
already did): a layout checks key types before it writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qctl.adapters.redis import scripts
from qctl.adapters.redis.connection import Client

Command = tuple[Any, ...]

GUARDED = """
local started = redis.call('TIME')
local lend, offset, n, tomb = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local items, i = {}, 5
for r = 1, n do
  local item = {token = ARGV[i], checks = {}, ops = {}, listed = false}
  local nchecks = tonumber(ARGV[i + 1])
  i = i + 2
  for c = 1, nchecks do
    local argc = tonumber(ARGV[i + 1])
    item.checks[c] = {ARGV[i], i + 2, i + 1 + argc}
    if ARGV[i] == 'L' then item.listed = true end
    i = i + 2 + argc
  end
  local nops = tonumber(ARGV[i])
  i = i + 1
  for o = 1, nops do
    local argc = tonumber(ARGV[i])
    item.ops[o] = {i + 1, i + argc}
    i = i + 1 + argc
  end
  items[r] = item
end

local macros = {}
-- MACROS

local ok = {}
local listed, chosen = 0, {}
for r = 1, n do
  if items[r].listed then listed = listed + 1 end
end
if lend ~= '' then
  local got
  if lend == 'R' then got = redis.call('LRANGE', KEYS[1], -offset - n, -offset - 1)
  else got = redis.call('LRANGE', KEYS[1], offset, offset + n - 1) end
  if #got ~= n then return {-1, 0} end
  for r = 1, n do
    local item = lend == 'R' and got[n - r + 1] or got[r]
    if item ~= items[r].token then return {-1, 0} end
  end
end
for r = 1, n do
  local pass, checks = true, items[r].checks
  -- A job whose one removing check comes last (the usual case) is removed by that check itself: ZREM of the
  -- exact member says whether it was there.  Otherwise every check reads first, and the removals follow.
  local removing = 0
  for c, check in ipairs(checks) do
    if check[1] == 'Z' or check[1] == 'H' then removing = removing + 1 end
  end
  local last = checks[#checks]
  local direct = removing == 1 and last and last[1] == 'Z'
  for c, check in ipairs(checks) do
    local kind, a = check[1], check[2]
    if kind == 'E' then pass = redis.call('EXISTS', ARGV[a]) == 1
    elseif kind == 'N' then pass = redis.call('EXISTS', ARGV[a]) == 0
    elseif kind == 'Z' and direct then pass = redis.call('ZREM', ARGV[a], ARGV[a + 1]) == 1
    elseif kind == 'Z' then pass = redis.call('ZSCORE', ARGV[a], ARGV[a + 1]) ~= false
    elseif kind == 'H' then pass = redis.call('HGET', ARGV[a], ARGV[a + 1]) == ARGV[a + 2] end
    if not pass then break end
  end
  ok[r] = pass
  if pass and not direct then
    for c, check in ipairs(checks) do
      local kind, a = check[1], check[2]
      if kind == 'Z' then redis.call('ZREM', ARGV[a], ARGV[a + 1])
      elseif kind == 'H' then redis.call('HDEL', ARGV[a], ARGV[a + 1]) end
    end
  end
end
if lend ~= '' and listed > 0 then
  local count, all = 0, offset == 0
  for r = 1, n do
    if items[r].listed and ok[r] then count = count + 1 else all = false end
  end
  if all then
    if lend == 'R' then redis.call('LTRIM', KEYS[1], 0, -n - 1) else redis.call('LTRIM', KEYS[1], n, -1) end
  elseif count > 0 then
    for r = 1, n do
      if items[r].listed and ok[r] then
        if lend == 'R' then redis.call('LSET', KEYS[1], -offset - r, tomb)
        else redis.call('LSET', KEYS[1], offset + r - 1, tomb) end
      end
    end
    redis.call('LREM', KEYS[1], lend == 'R' and -count or count, tomb)
  end
end
local flags = {}
for r = 1, n do
  if ok[r] and (#items[r].checks > 0 or #items[r].ops > 0) then
    for o, op in ipairs(items[r].ops) do
      local name = ARGV[op[1]]
      if macros[name] then macros[name](op[1] + 1, op[2])
      else redis.call(unpack(ARGV, op[1], op[2])) end
    end
    flags[r] = '1'
  else
    flags[r] = '0'
  end
end
local ended = redis.call('TIME')
return {table.concat(flags), (ended[1] - started[1]) * 1000000 + ended[2] - started[2]}
"""

# A list chunk is no longer where it was read (a consumer popped meanwhile): nothing changed.
MOVED_UNDER_US = -1


@dataclass(slots=True)
class Item:
    """One job of a step: the checks that it is still where it was read, and what to do then."""

    token: bytes = b""  # the list element as read (list chunks); unused otherwise
    checks: list[Command] = field(default_factory=list)
    ops: list[Command] = field(default_factory=list)

    def args(self) -> list[Any]:
        flat: list[Any] = [self.token, len(self.checks)]
        for kind, *check in self.checks:
            flat += [kind, len(check), *check]
        flat.append(len(self.ops))
        for op in self.ops:
            flat += [len(op), *op]
        return flat


def script(macros: str = "") -> str:
    """The step's Lua with a layout's macros (``macros['@name'] = function(first, last) ... end``, where
    ``ARGV[first..last]`` are the macro's arguments)."""
    return GUARDED.replace("-- MACROS\n", macros)


def run(client: Client, items: Sequence[Item], *, list_key: bytes | None = None, end: str = "",
        offset: int = 0, tomb: bytes = b"", macros: str = "", pace: Pace | None = None) -> list[bool] | None:
    """Run one step; per item whether its checks passed (and its commands ran), or None when a list chunk moved.
    The step reports how long it ran on the server (``TIME`` at both ends): ``pace`` learns from that.

    An item without checks runs its commands unconditionally; one without checks or commands only holds
    its place in a list chunk (read, not chosen)."""
    if not items:
        return []
    args: list[Any] = [end if list_key is not None else "", offset, len(items), tomb]
    for item in items:
        args += item.args()
    reply, micros = scripts.run(client, script(macros), [list_key] if list_key is not None else [], args)
    if pace is not None:
        pace.record(len(items), int(micros) / 1e6)
    if reply == MOVED_UNDER_US:
        return None
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return [flag == "1" for flag in text]


class Pace:
    """How many jobs one step takes, adapted to how long steps take on the server: a framework's job costs a
    few commands to a few dozen (BullMQ's retry, a job with many fields), and a busy server is slower, so a
    fixed size either crawls or blocks Redis.  Scripts report their own run time (``TIME`` at both ends, what
    SLOWLOG measures too), so the round trip does not shrink the steps; they stay near :data:`TARGET` and
    well under SLOWLOG's 20 ms."""

    TARGET = 0.005  # seconds a step should take on the server
    SLOWEST = 0.012  # over this, cut the size at once

    def __init__(self, size: int = 100, *, most: int = 2000, least: int = 5) -> None:
        self.size = size
        self.most = most
        self.least = least

    def record(self, count: int, seconds: float) -> None:
        if count < self.size // 2 and seconds < self.SLOWEST:
            return  # a short step says little
        per = seconds / max(count, 1)
        if seconds > self.SLOWEST:
            self.size = max(self.least, min(self.size // 2, int(self.TARGET / per) or self.least))
        else:
            self.size = max(self.least, min(self.most, int(0.7 * self.size + 0.3 * self.TARGET / per)))
