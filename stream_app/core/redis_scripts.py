"""The Lua scripts that write the counters, each atomic in Redis.

Exactness: every increment happens inside a script together with the marker that says
it happened (the call record), so a redelivered event, a replay after a crash or a
second worker racing on the same call changes nothing.
"""

from __future__ import annotations

BUMP = """
-- Every counter is kept per day and rolled up per month (``YYYY-MM``), in the same
-- script, so a long period reads months instead of days (``period_keys``). A field a
-- day move brings to zero is deleted (and with its last field the hash): a live run and
-- a replay, which never moves, leave the same keys.
local function bump1(key, f, n)
  if redis.call('HINCRBY', key, f, n) == 0 then redis.call('HDEL', key, f) end
end
local function bump(sp, day, f, n)
  bump1(sp .. day, f, n)
  bump1(sp .. string.sub(day, 1, 7), f, n)
end
"""

BATCHED = """
-- One call of a batched script writes many calls of ONE environment: KEYS are the
-- calls' records, then the counter hashes the client expects the writes to touch (all
-- with the environment's hash tag: one slot on a Redis Cluster). ARGV[1]: a JSON array
-- of writes, each the argument list of one call of ``f``, its first the index in KEYS
-- of the call's record; ARGV[2]: the environment's counter prefix. Returns the JSON
-- array of the results, in order. Strings throughout (cjson keeps 14 significant digits
-- of a number).
--
-- Every key a script touches is in KEYS (Redis Cluster's rule): a call's counters sit in
-- the hashes of its stored day ``d``, which the client cannot know. So first ``need``
-- looks: if the day of any write or any call's stored day is not declared, nothing is
-- written and the script returns {"need": [days]}; the client calls again with them.
local declared = {}
for _, k in ipairs(KEYS) do declared[k] = true end
local SP = ARGV[2]
local function need(days_of)
  local out, seen = {}, {}
  for _, w in ipairs(cjson.decode(ARGV[1])) do
    for _, day in ipairs(days_of(w)) do
      if day and not seen[day] then
        seen[day] = true
        if not (declared[SP .. day] and declared[SP .. string.sub(day, 1, 7)]) then
          out[#out + 1] = day
        end
      end
    end
  end
  return out
end
local function each(f, days_of)
  local missing = need(days_of)
  if #missing > 0 then return cjson.encode({need = missing}) end
  local out = {}
  for i, w in ipairs(cjson.decode(ARGV[1])) do
    out[i] = f(KEYS[tonumber(w[1])], unpack(w, 2))
  end
  return cjson.encode(out)
end
local function stored_day(w)
  return redis.call('HGET', KEYS[tonumber(w[1])], 'd') or nil
end
"""

# The once-per-call rule, atomically (its oracle: CallRecord in tests/oracles.py): count
# received once, answered at most once, and move every counter of the call when its day
# changes. A write: [call index, kind, ts, day, event id]; ARGV[3]: the record's TTL.
RECORD_INBOUND = BUMP + BATCHED + """
local ttl, sp = ARGV[3], SP
local function record(key, kind, ts, day, eid)
  local t = tonumber(ts)
  local h = redis.call('HMGET', key, 'e', 'r', 'd', 'a', 'ab', 'o', 's', 'od', 'oa')
  local es, rs, d, a, ab, o, s = h[1], h[2], h[3], h[4], h[5], h[6], h[7]
  if not es then
    redis.call('HSET', key, 'e', ts, 'd', day)
    bump(sp, day, 'received', 1)
    if kind == 'received' then redis.call('HSET', key, 'r', ts) end
    if kind == 'answered' then
      redis.call('HSET', key, 'a', '1', 'ab', eid)
      bump(sp, day, 'answered', 1)
      ab = eid
    end
    redis.call('EXPIRE', key, ttl)
    return {day, ts, '', ab == eid and 1 or 0, '', '', ab == eid and 1 or 0}
  end
  local old_ts = rs or es
  if t < tonumber(es) then es = ts end
  if kind == 'received' and ((not rs) or t < tonumber(rs)) then rs = ts end
  local new_ts = rs or es
  local new_day = d
  if tonumber(new_ts) ~= tonumber(old_ts) then new_day = day end
  if new_day ~= d then
    local moves = {'received'}
    if a == '1' then table.insert(moves, 'answered') end
    if o == 'unmatched' then table.insert(moves, 'unmatched') end
    if o == 'matched' then table.insert(moves, 'src:' .. s) end
    for _, f in ipairs(moves) do
      bump(sp, d, f, -1)
      bump(sp, new_day, f, 1)
    end
  end
  local newly = 0
  if kind == 'answered' and a ~= '1' then
    redis.call('HSET', key, 'a', '1', 'ab', eid)
    bump(sp, new_day, 'answered', 1)
    ab = eid
    newly = 1
  end
  redis.call('HSET', key, 'e', es, 'd', new_day)
  if rs then redis.call('HSET', key, 'r', rs) end
  redis.call('EXPIRE', key, ttl)
  return {new_day, new_ts, o or '', ab == eid and 1 or 0, h[8] or '', h[9] or '', newly}
end
return each(record, function(w) return {w[4], stored_day(w)} end)
"""

# The first decision wins; a repeat returns the stored one so republished outcome
# records are identical. Stores the decision's day and callback agent for the records.
# A write: [call index, outcome, source, source call, day, agent].
CLASSIFY = BUMP + BATCHED + """
local sp = SP
local function classify(key, outcome, source, source_call, day, agent)
  local h = redis.call('HMGET', key, 'd', 'o', 's', 'sc', 'od', 'oa', 'a')
  if not h[1] then return false end
  local answered = h[7] == '1' and 1 or 0
  if h[2] and h[2] ~= '' then
    return {h[5] or h[1], h[2], h[3] or '', h[4] or '', 0, answered, h[6] or ''}
  end
  redis.call('HSET', key, 'o', outcome, 's', source, 'sc', source_call, 'od', day,
             'oa', agent)
  if outcome == 'unmatched' then
    bump(sp, h[1], 'unmatched', 1)
  else
    bump(sp, h[1], 'src:' .. source, 1)
  end
  return {day, outcome, source, source_call, 1, answered, agent}
end
return each(classify, function(w) return {stored_day(w)} end)
"""

# Newest occurred_at wins (ties: the greater name), whatever the arrival order.
SET_NAME = """
local at = redis.call('HGET', KEYS[2], ARGV[1])
local t = tonumber(ARGV[2])
if at then
  local old = tonumber(at)
  if old > t then return 0 end
  if old == t and (redis.call('HGET', KEYS[1], ARGV[1]) or '') >= ARGV[3] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

SUM_DAYS = """
-- KEYS: the day hashes of a period, then the names hash. Sums on the server, so a
-- 366-day read is one round trip with a reply of a few fields, not 366 hashes.
-- Returns {{field, total, ...}, {agent, name, ...}}; totals as decimal strings.
local sums, order = {}, {}
for i = 1, #KEYS - 1 do
  local h = redis.call('HGETALL', KEYS[i])
  for j = 1, #h, 2 do
    local f = h[j]
    if sums[f] == nil then sums[f] = 0; order[#order + 1] = f end
    sums[f] = sums[f] + tonumber(h[j + 1])
  end
end
local out = {}
for _, f in ipairs(order) do
  out[#out + 1] = f
  out[#out + 1] = string.format('%d', sums[f])
end
return {out, redis.call('HGETALL', KEYS[#KEYS])}
"""

# A config version: a member per distinct version, scored by its record timestamp; at
# most MAX_CONFIG_VERSIONS kept per agent (the oldest by record time go first).
ADD_CONFIG_VERSION = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[3]))
return 1
"""
