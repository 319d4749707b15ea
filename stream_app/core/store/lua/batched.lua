-- The prelude of every batched write script (record_inbound.lua, classify.lua): one
-- call writes many calls of ONE environment, all of whose keys carry the environment's
-- hash tag (one slot on a Redis Cluster). The script builds no key name: every key is
-- in KEYS, and ARGV[1] (JSON, built by stream_app/core/store/codecs.py) says which is
-- which:
--   writes    the writes, in order; each names its call record by index (``call``)
--   counters  "<agent>\t<day>" -> {day = i, month = j}: the indexes of the counter
--             hashes of that day and of its month (agent "" is the environment's own)
--   version   the index of the environment's version key
--   channel   the shard channel its changes are announced on
-- and the script's own fields (record_inbound: ``ttl``). Returns JSON: {results = [...]}
-- in the order of the writes, or {need = [{agent, day}, ...]} (below).
-- Strings for numbers that must keep every digit (cjson keeps 14 significant digits).
--
-- Every counter is kept per day and rolled up per month, for the environment and for
-- the call's callback agent (agent "": counted for the environment only), so a long
-- period reads months instead of days. A field a move brings to zero is deleted (and
-- with its last field the hash): a live run and a replay, which never moves, leave the
-- same keys.
--
-- Every key a script touches is in KEYS (Redis Cluster's rule): a call's counters sit
-- in the hashes of its stored day and agent, which the client cannot know. So first
-- ``need`` looks: if a hash any write may touch is not declared, nothing is written and
-- the script returns the (agent, day) pairs it lacks; the client calls again with them.
--
-- A call that changed a counter bumps the version and publishes it on the channel once,
-- in the same atomic call: readers learn of every change.
local input = cjson.decode(ARGV[1])
local counters = input.counters
local changed = false
local function bump1(key, f, n)
  if redis.call('HINCRBY', key, f, n) == 0 then redis.call('HDEL', key, f) end
end
local function bump(agent, day, f, n)
  local h = counters[agent .. '\t' .. day]
  bump1(KEYS[h.day], f, n)
  bump1(KEYS[h.month], f, n)
end
-- Count ``n`` of field ``f`` on ``day`` for the environment and ``agent``.
local function count(agent, day, f, n)
  bump('', day, f, n)
  if agent ~= '' then bump(agent, day, f, n) end
  changed = true
end
-- Move field ``f`` of one call from (agent, day) to another.
local function move(f, from_agent, from_day, to_agent, to_day)  -- luacheck: ignore
  if from_day ~= to_day then
    bump('', from_day, f, -1)
    bump('', to_day, f, 1)
  end
  if from_agent ~= '' and (from_agent ~= to_agent or from_day ~= to_day) then
    bump(from_agent, from_day, f, -1)
    if to_agent ~= '' then bump(to_agent, to_day, f, 1) end
  end
  changed = true
end
-- The (agent, day) pairs the writes may touch and KEYS lacks: per call, every agent it
-- has or may get crossed with every day it has or may get (its state after several
-- writes of the chunk is one such pair). ``parts(w)`` gives a write's agents and days.
local function need(parts)
  local calls = {}
  for _, w in ipairs(input.writes) do
    local agents, days = parts(w)
    local c = calls[w.call]
    if not c then c = {a = {''}, d = {}}; calls[w.call] = c end
    for _, a in ipairs(agents) do if a ~= '' then table.insert(c.a, a) end end
    for _, d in ipairs(days) do table.insert(c.d, d) end
  end
  local out, seen = {}, {}
  for _, c in pairs(calls) do
    for _, a in ipairs(c.a) do
      for _, d in ipairs(c.d) do
        local id = a .. '\t' .. d
        if not counters[id] and not seen[id] then
          seen[id] = true
          out[#out + 1] = {agent = a, day = d}
        end
      end
    end
  end
  return out
end
-- Run ``f(record key, write)`` over the writes once every hash they may touch is known.
local function each(f, parts)
  local missing = need(parts)
  if #missing > 0 then return cjson.encode({need = missing}) end
  local out = {}
  for i, w in ipairs(input.writes) do out[i] = f(KEYS[w.call], w) end
  if changed then
    redis.call('SPUBLISH', input.channel, redis.call('INCR', KEYS[input.version]))
  end
  return cjson.encode({results = out})
end
-- A stored field of the write's call, or nil.
local function stored(w, ...)
  return redis.call('HMGET', KEYS[w.call], ...)
end
