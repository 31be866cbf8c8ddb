"""BullMQ's state changes as macros of the guarded step (layouts/steps.py), in Lua because they read the
queue's state inside the step: whether it is paused or maxed (``getTargetQueueList``), its events stream's
length (``getOrSetMaxEvents``), a free job id.  Each follows the BullMQ script named beside it
(bullmq 5.81.5 ``dist/cjs/commands``; docs/internals/job-frameworks.md §3).

``base`` is a queue's key prefix with the trailing colon (``bull:emails:``); ``mode`` is ``5`` (a paused
queue's jobs go to the legacy ``paused`` list), ``6`` (they stay in ``wait``) or ``6p`` (6.7 and later:
a job with a priority goes to ``prioritized``, as ``reprocessJob-9`` does).
"""


MACROS = """
local function bull_target(base, mode)
  -- getTargetQueueList (v5) / isQueuePausedOrMaxed (v6): the list to push to, and whether to hold the marker
  local attrs = redis.call('HMGET', base .. 'meta', 'paused', 'concurrency')
  if attrs[1] then
    if mode == '5' then return base .. 'paused', true end
    return base .. 'wait', true
  end
  if attrs[2] and redis.call('LLEN', base .. 'active') >= tonumber(attrs[2]) then return base .. 'wait', true end
  return base .. 'wait', false
end

local function bull_event(base, ...)
  -- getOrSetMaxEvents, then XADD events MAXLEN ~ max
  local max = redis.call('HGET', base .. 'meta', 'opts.maxLenEvents')
  if not max then
    max = 10000
    redis.call('HSET', base .. 'meta', 'opts.maxLenEvents', max)
  end
  redis.call('XADD', base .. 'events', 'MAXLEN', '~', max, '*', ...)
end

local function bull_enqueue(base, id, cmd, mode, priority)
  -- addJobInTargetList, or addJobWithPriority (getPriorityScore) where the version honours priorities
  local target, held = bull_target(base, mode)
  if mode == '6p' and priority > 0 then
    local score = priority * 0x100000000 + redis.call('INCR', base .. 'pc') % 0x100000000
    redis.call('ZADD', base .. 'prioritized', score, id)
  else
    redis.call(cmd, target, id)
  end
  if not held then redis.call('ZADD', base .. 'marker', 0, '0') end
end

local function bull_id(base, id)
  -- keep a job's id where the queue's counter cannot hand it out again; else the next one (INCR id)
  if id ~= '' and redis.call('EXISTS', base .. id) == 0 then
    local n = tonumber(id)
    if not n or n <= tonumber(redis.call('GET', base .. 'id') or '0') then return id end
  end
  return tostring(redis.call('INCR', base .. 'id'))
end

local function bull_child_back(job, state)
  -- reprocessJob: a retried child counts as a pending dependency of its parent again
  local parent = redis.call('HGET', job, 'parentKey')
  if parent and redis.call('EXISTS', parent) == 1 then
    if state == 'failed' then
      if redis.call('ZREM', parent .. ':unsuccessful', job) == 1 or redis.call('HDEL', parent .. ':failed', job) == 1
      then redis.call('SADD', parent .. ':dependencies', job) end
    elseif redis.call('HDEL', parent .. ':processed', job) == 1 then
      redis.call('SADD', parent .. ':dependencies', job)
    end
  end
end

-- @bretry base id cmd mode priority prev: reprocessJob (Job.retry), after its EXISTS and ZREM checks
macros['@bretry'] = function(a, b)
  local base, id, prev = ARGV[a], ARGV[a + 1], ARGV[a + 5]
  redis.call('HDEL', base .. id, 'finishedOn', 'processedOn', prev == 'completed' and 'returnvalue' or 'failedReason')
  bull_enqueue(base, id, ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4]))
  bull_child_back(base .. id, prev)
  bull_event(base, 'event', 'waiting', 'jobId', id, 'prev', prev)
end

-- @bmove from id to cmd mode priority prev field count: the job (not in a flow) into another queue, retried
-- there; field and count ('' for none) are qctl's redrive count (qctl.redrive.count_pair), set once the job
-- has its id there
macros['@bmove'] = function(a, b)
  local from, id, to, prev, field, count = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local new = bull_id(to, id)
  redis.call('RENAME', from .. id, to .. new)
  if field ~= '' then redis.call('HSET', to .. new, field, count) end
  if redis.call('EXISTS', from .. id .. ':logs') == 1 then
    redis.call('RENAME', from .. id .. ':logs', to .. new .. ':logs')
  end
  if prev == 'failed' then redis.call('HDEL', to .. new, 'finishedOn', 'processedOn', 'failedReason') end
  bull_enqueue(to, new, ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 5]))
  bull_event(from, 'event', 'removed', 'jobId', id, 'prev', prev)
  bull_event(to, 'event', 'waiting', 'jobId', new, 'prev', prev)
end

-- @badd base id cmd mode priority name score field value...: storeJob + addJobInTargetList (addStandardJob),
-- or, with a score, straight into the failed set (a restore of its backup)
macros['@badd'] = function(a, b)
  local base, cmd, mode, name, score = ARGV[a], ARGV[a + 2], ARGV[a + 3], ARGV[a + 5], ARGV[a + 6]
  local id = bull_id(base, ARGV[a + 1])
  redis.call('HSET', base .. id, unpack(ARGV, a + 7, b))
  redis.call('XADD', base .. 'events', '*', 'event', 'added', 'jobId', id, 'name', name)
  if score ~= '' then
    redis.call('ZADD', base .. 'failed', score, id)
  else
    bull_enqueue(base, id, cmd, mode, tonumber(ARGV[a + 4]))
    bull_event(base, 'event', 'waiting', 'jobId', id)
  end
end

-- @bdel base id mode: removeJob -- its parent loses a dependency (and runs when it was the last,
-- as _moveParentToWait), its deduplication key goes, then removeJobKeys
macros['@bdel'] = function(a, b)
  local base, id, mode = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local job = base .. id
  local attrs = redis.call('HMGET', job, 'parentKey', 'deid')
  local parent = attrs[1]
  if parent and parent ~= '' and redis.call('EXISTS', parent) == 1 then
    local deps = parent .. ':dependencies'
    if redis.call('SREM', deps, job) > 0 and redis.call('SCARD', deps) == 0 then
      local pid = string.match(parent, '.*:(.*)')
      local pbase = string.sub(parent, 1, #parent - #pid)
      if redis.call('ZREM', pbase .. 'waiting-children', pid) == 1 then
        local target, held = bull_target(pbase, mode)
        redis.call('RPUSH', target, pid)
        if not held then redis.call('ZADD', pbase .. 'marker', 0, '0') end
        redis.call('XADD', pbase .. 'events', '*', 'event', 'waiting', 'jobId', pid, 'prev', 'waiting-children')
      end
    end
  end
  if attrs[2] then
    local dedup = base .. 'de:' .. attrs[2]
    if redis.call('GET', dedup) == id then redis.call('DEL', dedup, base .. 'dn:' .. attrs[2]) end
  end
  redis.call('DEL', job, job .. ':logs', job .. ':dependencies', job .. ':processed', job .. ':failed',
    job .. ':unsuccessful')
end
"""
