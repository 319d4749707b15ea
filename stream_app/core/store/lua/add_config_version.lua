-- A callback agent's config version: a member per distinct version, scored by its record
-- timestamp; at most ``keep`` kept per agent (the oldest by record time go first).
-- ARGV[1] (codecs.ConfigArgs): keys {versions} (an index in KEYS), ts, member, keep.
local input = cjson.decode(ARGV[1])
local versions = KEYS[input.keys.versions]
redis.call('ZADD', versions, input.ts, input.member)
redis.call('ZREMRANGEBYRANK', versions, 0, -1 - tonumber(input.keep))
return 1
