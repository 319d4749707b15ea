-- An agent's display name: the newest occurred_at wins (ties: the greater name),
-- whatever the arrival order. ARGV[1] (codecs.NameArgs): keys {names, names_at,
-- version} (indexes in KEYS), agent, t, name, channel. Returns 1 if stored, else 0.
local input = cjson.decode(ARGV[1])
local names, names_at = KEYS[input.keys.names], KEYS[input.keys.names_at]
local at = redis.call('HGET', names_at, input.agent)
local t = tonumber(input.t)
if at then
  local old = tonumber(at)
  if old > t then return 0 end
  if old == t and (redis.call('HGET', names, input.agent) or '') >= input.name then
    return 0
  end
end
local before = redis.call('HGET', names, input.agent)
redis.call('HSET', names, input.agent, input.name)
redis.call('HSET', names_at, input.agent, input.t)
if before ~= input.name then
  redis.call('SPUBLISH', input.channel, redis.call('INCR', KEYS[input.keys.version]))
end
return 1
