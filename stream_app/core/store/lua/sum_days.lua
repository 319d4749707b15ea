-- The counters of a period, summed on the server, so a 366-day read is one round trip
-- with a reply of a few fields, not 366 hashes. KEYS[1..input.hashes]: the day and
-- month hashes of the period; ARGV[1] (codecs.SumArgs): keys {names, version} (indexes
-- in KEYS), hashes. Returns JSON (codecs.SumReply): sums (field -> total as a decimal
-- string), names (agent -> name), version (the environment's change count as of this
-- read, a decimal string).
local input = cjson.decode(ARGV[1])
local sums = {}
for i = 1, input.hashes do
  local h = redis.call('HGETALL', KEYS[i])
  for j = 1, #h, 2 do
    sums[h[j]] = (sums[h[j]] or 0) + tonumber(h[j + 1])
  end
end
local out = {}
for f, n in pairs(sums) do out[f] = string.format('%d', n) end
local names = {}
local h = redis.call('HGETALL', KEYS[input.keys.names])
for j = 1, #h, 2 do names[h[j]] = h[j + 1] end
return cjson.encode({sums = out, names = names,
                     version = redis.call('GET', KEYS[input.keys.version]) or '0'})
