-- The first decision wins; a repeat returns the stored one, so republished outcome
-- records are identical. Stores the decision's day and callback agent for the records,
-- and its cutoff and lateness for the explain endpoint.
-- A write (codecs.ClassifyWire): call, outcome, source, source_call, day, agent,
-- cutoff, late ('1' or '0'). A result (codecs.ClassifyReply): day, outcome, source,
-- source_call, first_time, answered, agent; false for a call without a record.
local function classify(key, w)
  local h = redis.call('HMGET', key, 'd', 'o', 's', 'sc', 'od', 'oa', 'a', 'g')
  if not h[1] then return false end
  local answered = h[7] == '1'
  if h[2] and h[2] ~= '' then
    return {day = h[5] or h[1], outcome = h[2], source = h[3] or '',
            source_call = h[4] or '', first_time = false, answered = answered,
            agent = h[6] or ''}
  end
  redis.call('HSET', key, 'o', w.outcome, 's', w.source, 'sc', w.source_call, 'od', w.day,
             'oa', w.agent, 'cu', w.cutoff, 'lt', w.late)
  if w.outcome == 'unmatched' then
    count(h[8] or '', h[1], 'unmatched', 1)
  else
    count(h[8] or '', h[1], 'src:' .. w.source, 1)
  end
  return {day = w.day, outcome = w.outcome, source = w.source,
          source_call = w.source_call, first_time = true, answered = answered,
          agent = w.agent}
end
return each(classify, function(w)
  local h = stored(w, 'd', 'g')
  if not h[1] then return {}, {} end
  return {h[2] or ''}, {h[1]}
end)
