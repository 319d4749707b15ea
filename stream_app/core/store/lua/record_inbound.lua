-- The once-per-call rule, atomically (its oracle: CallRecord in tests/oracles.py): count
-- received once, answered at most once, and move every counter of the call when its day
-- or its callback agent changes. The callback agent is that of the earliest record (by
-- record timestamp, then event id), as the join decides it.
-- A write (codecs.InboundWire): call, kind, t (event time), day, event_id, ts (record
-- timestamp), agent (callback agent, "" for none), agent_prefix (kept in the record
-- for workers of the version before, which build the keys from it). ``input.ttl``: the
-- record's TTL. A result (codecs.InboundReply): day, t, decided, answered_by_this_event,
-- decision_day, decision_agent ("" while undecided), newly_answered.
-- Call record fields (codecs.CallRecord): e earliest event time, r earliest received
-- time, d day, a answered, ab answered by (event id), o outcome, s source agent,
-- sc source call, od / oa the decision's day / agent, g callback agent, gp its key
-- prefix, gt / gi the timestamp / event id of the record that named it, cu cutoff, lt late.
local function earlier(ts, eid, gt, gi)
  local a, b = tonumber(ts), tonumber(gt)
  return a < b or (a == b and eid < gi)
end
local function reply(day, t, outcome, ab, eid, od, oa, newly)
  return {day = day, t = t, decided = outcome ~= '', answered_by_this_event = ab == eid,
          decision_day = od, decision_agent = oa, newly_answered = newly}
end
local function first(key, w)
  redis.call('HSET', key, 'e', w.t, 'd', w.day, 'g', w.agent, 'gp', w.agent_prefix,
             'gt', w.ts, 'gi', w.event_id)
  count(w.agent, w.day, 'received', 1)
  local answered = w.kind == 'answered'
  if w.kind == 'received' then redis.call('HSET', key, 'r', w.t) end
  if answered then
    redis.call('HSET', key, 'a', '1', 'ab', w.event_id)
    count(w.agent, w.day, 'answered', 1)
  end
  redis.call('EXPIRE', key, input.ttl)
  return reply(w.day, w.t, '', answered and w.event_id or '', w.event_id, '', '', answered)
end
local function record(key, w)
  local h = redis.call('HMGET', key, 'e', 'r', 'd', 'a', 'ab', 'o', 's', 'od', 'oa',
                       'g', 'gt', 'gi')
  local es, rs, d, a, ab, o, s = h[1], h[2], h[3], h[4], h[5], h[6], h[7]
  if not es then return first(key, w) end
  local old_agent, gt, gi = h[10] or '', h[11], h[12]
  local t = tonumber(w.t)
  local old_ts = rs or es
  if t < tonumber(es) then es = w.t end
  if w.kind == 'received' and ((not rs) or t < tonumber(rs)) then rs = w.t end
  local new_ts = rs or es
  local new_day = d
  if tonumber(new_ts) ~= tonumber(old_ts) then new_day = w.day end
  local new_agent = old_agent
  if old_agent ~= '' and earlier(w.ts, w.event_id, gt, gi) then
    new_agent = w.agent
    redis.call('HSET', key, 'g', w.agent, 'gp', w.agent_prefix, 'gt', w.ts, 'gi', w.event_id)
  end
  if new_day ~= d or new_agent ~= old_agent then
    local moves = {'received'}
    if a == '1' then table.insert(moves, 'answered') end
    if o == 'unmatched' then table.insert(moves, 'unmatched') end
    if o == 'matched' then table.insert(moves, 'src:' .. s) end
    for _, f in ipairs(moves) do move(f, old_agent, d, new_agent, new_day) end
  end
  local newly = false
  if w.kind == 'answered' and a ~= '1' then
    redis.call('HSET', key, 'a', '1', 'ab', w.event_id)
    count(new_agent, new_day, 'answered', 1)
    ab = w.event_id
    newly = true
  end
  redis.call('HSET', key, 'e', es, 'd', new_day)
  if rs then redis.call('HSET', key, 'r', rs) end
  redis.call('EXPIRE', key, input.ttl)
  return reply(new_day, new_ts, o or '', ab or '', w.event_id, h[8] or '', h[9] or '', newly)
end
return each(record, function(w)
  local h = stored(w, 'd', 'g')
  return {w.agent, h[2] or ''}, {w.day, h[1] or w.day}
end)
