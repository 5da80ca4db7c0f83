-- Entry points for the event stream and low-balance alerts (05_events.lua announces them).

-- alert_set(threshold): sets the account's low-balance threshold in micro-credits, or clears
-- it with ''. Armed when available credit is at or above the threshold now, so an account
-- already below it alerts only after it has risen above and fallen again.
-- Reply: { threshold (-1 when none), armed (0 | 1) }.
redis.register_function('alert_set', function(keys, args)
  local k = account_keys(keys)
  local a = load_account(k)
  if args[8] == '' then
    redis.call('HDEL', k.acct, 'alert_low', 'alert_armed')
    return { -1, 0 }
  end
  local threshold = integer_arg(args[8], 'threshold', 0, MAX_AMOUNT)
  local armed = 0
  if available(a) >= threshold then armed = 1 end
  redis.call('HSET', k.acct, 'alert_low', fmt(threshold), 'alert_armed', armed)
  return { threshold, armed }
end)

-- events_snapshot(): the account as of its newest ledger entry, read in one step, so a
-- subscriber's snapshot and the entry id it resumes after agree exactly.
-- Reply: { balance, held, status, credit_limit, last entry id ('' if none), alert threshold
-- (-1 when none), armed (0 | 1), promotional part of balance }.
redis.register_function{
  function_name = 'events_snapshot',
  flags = { 'no-writes' },
  callback = function(keys, args)
    local k = account_keys(keys)
    local f = redis.call('HMGET', k.acct, 'balance', 'held', 'status', 'credit_limit', 'alert_low', 'alert_armed', 'promo')
    if not f[1] then fail('account_not_found', 'no such account') end
    local last = redis.call('XREVRANGE', k.ledger, '+', '-', 'COUNT', 1)
    local last_id = ''
    if last[1] then last_id = last[1][1] end
    local armed = 0
    if f[6] == '1' then armed = 1 end
    return { tonumber(f[1]), tonumber(f[2]), f[3], tonumber(f[4]), last_id, tonumber(f[5] or '-1'), armed, tonumber(f[7] or '0') }
  end,
}
