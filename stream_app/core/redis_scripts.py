"""The Lua scripts that write the counters, each atomic in Redis.

Exactness: every increment happens inside a script together with the marker that says
it happened (the call record), so a redelivered event, a replay after a crash or a
second worker racing on the same call changes nothing.
"""

from __future__ import annotations

BATCHED = """
-- One call of a batched script writes many calls of ONE environment: KEYS are the
-- calls' records, then the counter hashes the client expects the writes to touch and
-- the environment's version key (all with the environment's hash tag: one slot on a
-- Redis Cluster). ARGV[1]: a JSON array of writes, each the argument list of one call
-- of ``f``, its first the index in KEYS of the call's record; ARGV[2]: the
-- environment's key tag ``cbs:{e}:``. Returns the JSON array of the results, in order.
-- Strings throughout (cjson keeps 14 significant digits of a number).
--
-- Every counter is kept per day and rolled up per month (``YYYY-MM``), for the
-- environment (prefix SP) and for the call's callback agent (the prefix ``gp`` its
-- record keeps; empty for a record written before agents were counted), so a long
-- period reads months instead of days. A field a move brings to zero is deleted (and
-- with its last field the hash): a live run and a replay, which never moves, leave the
-- same keys.
--
-- Every key a script touches is in KEYS (Redis Cluster's rule): a call's counters sit
-- in the hashes of its stored day and agent, which the client cannot know. So first
-- ``need`` looks: if a hash any write may touch is not declared, nothing is written and
-- the script returns {"need": [keys]}; the client calls again with them.
--
-- A call that changed a counter bumps ``version`` and publishes it on the shard
-- channel ``changed`` once, in the same atomic call: readers learn of every change.
local declared = {}
for _, k in ipairs(KEYS) do declared[k] = true end
local TAG = ARGV[2]
local SP = TAG .. 'stats:'
local changed = false
local function bump1(key, f, n)
  if redis.call('HINCRBY', key, f, n) == 0 then redis.call('HDEL', key, f) end
end
local function bump(prefix, day, f, n)
  bump1(prefix .. day, f, n)
  bump1(prefix .. string.sub(day, 1, 7), f, n)
end
-- Count ``n`` of field ``f`` on ``day`` for the environment and agent prefix ``gp``.
local function count(gp, day, f, n)
  bump(SP, day, f, n)
  if gp and gp ~= '' then bump(gp, day, f, n) end
  changed = true
end
-- Move field ``f`` of one call from (agent prefix, day) to another.
local function move(f, from_gp, from_day, to_gp, to_day)
  if from_day ~= to_day then
    bump(SP, from_day, f, -1)
    bump(SP, to_day, f, 1)
  end
  if from_gp and from_gp ~= '' and (from_gp ~= to_gp or from_day ~= to_day) then
    bump(from_gp, from_day, f, -1)
    bump(to_gp, to_day, f, 1)
  end
  changed = true
end
-- The hashes the writes may touch: per call, every prefix it has or may get crossed
-- with every day it has or may get (its state after several writes of the chunk is
-- one such pair). ``parts(w)`` gives a write's call index, prefixes and days.
local function need(parts)
  local calls = {}
  for _, w in ipairs(cjson.decode(ARGV[1])) do
    local index, prefixes, days = parts(w)
    local c = calls[index]
    if not c then c = {p = {SP}, d = {}}; calls[index] = c end
    for _, p in ipairs(prefixes) do if p and p ~= '' then table.insert(c.p, p) end end
    for _, d in ipairs(days) do if d then table.insert(c.d, d) end end
  end
  local out, seen = {}, {}
  for _, c in pairs(calls) do
    for _, p in ipairs(c.p) do
      for _, d in ipairs(c.d) do
        for _, k in ipairs({p .. d, p .. string.sub(d, 1, 7)}) do
          if not declared[k] and not seen[k] then seen[k] = true; out[#out + 1] = k end
        end
      end
    end
  end
  return out
end
local function each(f, parts)
  local missing = need(parts)
  if #missing > 0 then return cjson.encode({need = missing}) end
  local out = {}
  for i, w in ipairs(cjson.decode(ARGV[1])) do
    out[i] = f(KEYS[tonumber(w[1])], unpack(w, 2))
  end
  if changed then
    redis.call('SPUBLISH', TAG .. 'changed', redis.call('INCR', TAG .. 'version'))
  end
  return cjson.encode(out)
end
local function stored(w, ...)
  return redis.call('HMGET', KEYS[tonumber(w[1])], ...)
end
"""

# The once-per-call rule, atomically (its oracle: CallRecord in tests/oracles.py): count
# received once, answered at most once, and move every counter of the call when its day
# or its callback agent changes. The callback agent is that of the earliest record (by
# record timestamp, then event id), as the join decides it. A write: [call index, kind,
# event time, day, event id, record timestamp, callback agent, its counter prefix];
# ARGV[3]: the record's TTL.
RECORD_INBOUND = BATCHED + """
local ttl = ARGV[3]
local function earlier(ts, eid, gt, gi)
  local a, b = tonumber(ts), tonumber(gt)
  return a < b or (a == b and eid < gi)
end
local function record(key, kind, ev_t, day, eid, ts, agent, gp)
  local t = tonumber(ev_t)
  local h = redis.call('HMGET', key, 'e', 'r', 'd', 'a', 'ab', 'o', 's', 'od', 'oa',
                       'gp', 'gt', 'gi')
  local es, rs, d, a, ab, o, s = h[1], h[2], h[3], h[4], h[5], h[6], h[7]
  local old_gp, gt, gi = h[10] or '', h[11], h[12]
  if not es then
    redis.call('HSET', key, 'e', ev_t, 'd', day, 'g', agent, 'gp', gp, 'gt', ts, 'gi', eid)
    count(gp, day, 'received', 1)
    if kind == 'received' then redis.call('HSET', key, 'r', ev_t) end
    if kind == 'answered' then
      redis.call('HSET', key, 'a', '1', 'ab', eid)
      count(gp, day, 'answered', 1)
      ab = eid
    end
    redis.call('EXPIRE', key, ttl)
    return {day, ev_t, '', ab == eid and 1 or 0, '', '', ab == eid and 1 or 0}
  end
  local old_ts = rs or es
  if t < tonumber(es) then es = ev_t end
  if kind == 'received' and ((not rs) or t < tonumber(rs)) then rs = ev_t end
  local new_ts = rs or es
  local new_day = d
  if tonumber(new_ts) ~= tonumber(old_ts) then new_day = day end
  local new_gp = old_gp
  if old_gp ~= '' and earlier(ts, eid, gt, gi) then
    new_gp = gp
    redis.call('HSET', key, 'g', agent, 'gp', gp, 'gt', ts, 'gi', eid)
  end
  if new_day ~= d or new_gp ~= old_gp then
    local moves = {'received'}
    if a == '1' then table.insert(moves, 'answered') end
    if o == 'unmatched' then table.insert(moves, 'unmatched') end
    if o == 'matched' then table.insert(moves, 'src:' .. s) end
    for _, f in ipairs(moves) do move(f, old_gp, d, new_gp, new_day) end
  end
  local newly = 0
  if kind == 'answered' and a ~= '1' then
    redis.call('HSET', key, 'a', '1', 'ab', eid)
    count(new_gp, new_day, 'answered', 1)
    ab = eid
    newly = 1
  end
  redis.call('HSET', key, 'e', es, 'd', new_day)
  if rs then redis.call('HSET', key, 'r', rs) end
  redis.call('EXPIRE', key, ttl)
  return {new_day, new_ts, o or '', ab == eid and 1 or 0, h[8] or '', h[9] or '', newly}
end
return each(record, function(w)
  local h = stored(w, 'd', 'gp')
  return w[1], {w[8], h[2]}, {w[4], h[1]}
end)
"""

# The first decision wins; a repeat returns the stored one so republished outcome
# records are identical. Stores the decision's day and callback agent for the records,
# and its cutoff and lateness for the explain endpoint. A write: [call index, outcome,
# source, source call, day, agent, cutoff, late ('1' or '0')].
CLASSIFY = BATCHED + """
local function classify(key, outcome, source, source_call, day, agent, cutoff, late)
  local h = redis.call('HMGET', key, 'd', 'o', 's', 'sc', 'od', 'oa', 'a', 'gp')
  if not h[1] then return false end
  local answered = h[7] == '1' and 1 or 0
  if h[2] and h[2] ~= '' then
    return {h[5] or h[1], h[2], h[3] or '', h[4] or '', 0, answered, h[6] or ''}
  end
  redis.call('HSET', key, 'o', outcome, 's', source, 'sc', source_call, 'od', day,
             'oa', agent, 'cu', cutoff, 'lt', late)
  if outcome == 'unmatched' then
    count(h[8], h[1], 'unmatched', 1)
  else
    count(h[8], h[1], 'src:' .. source, 1)
  end
  return {day, outcome, source, source_call, 1, answered, agent}
end
return each(classify, function(w)
  local h = stored(w, 'd', 'gp')
  return w[1], {h[2]}, {h[1]}
end)
"""

# Newest occurred_at wins (ties: the greater name), whatever the arrival order.
# KEYS: names, names_at, version; ARGV: agent, time, name, the environment's key tag.
SET_NAME = """
local at = redis.call('HGET', KEYS[2], ARGV[1])
local t = tonumber(ARGV[2])
if at then
  local old = tonumber(at)
  if old > t then return 0 end
  if old == t and (redis.call('HGET', KEYS[1], ARGV[1]) or '') >= ARGV[3] then return 0 end
end
local before = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if before ~= ARGV[3] then
  redis.call('SPUBLISH', ARGV[4] .. 'changed', redis.call('INCR', KEYS[3]))
end
return 1
"""

SUM_DAYS = """
-- KEYS: the day hashes of a period, then the names hash and the version key. Sums on
-- the server, so a 366-day read is one round trip with a reply of a few fields, not
-- 366 hashes. Returns {{field, total, ...}, {agent, name, ...}, version}; totals as
-- decimal strings; version the environment's change count as of this read.
local sums, order = {}, {}
for i = 1, #KEYS - 2 do
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
return {out, redis.call('HGETALL', KEYS[#KEYS - 1]), redis.call('GET', KEYS[#KEYS]) or '0'}
"""

# A config version: a member per distinct version, scored by its record timestamp; at
# most MAX_CONFIG_VERSIONS kept per agent (the oldest by record time go first).
ADD_CONFIG_VERSION = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[3]))
return 1
"""
