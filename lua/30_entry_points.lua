-- Entry points: one atomic step each.

-- account_create(now, credit_limit)
redis.register_function('account_create', function(keys, args)
  local k = account_keys(keys)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local credit_limit = integer_arg(args[2], 'credit_limit', 0, MAX_AMOUNT)
  if redis.call('EXISTS', k.acct) == 1 then
    fail('account_exists', 'an account with this id already exists')
  end
  redis.call('HSET', k.acct, 'status', 'active', 'balance', 0, 'held', 0,
    'credit_limit', fmt(credit_limit), 'created', fmt(now), 'lms', 0, 'hseq', 0)
  return reply(load_account(k), 'ok')
end)

-- account_get(now): the account after expiring due holds.
redis.register_function('account_get', function(keys, args)
  local k = account_keys(keys)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local a = load_account(k)
  expire_holds(k, a, now)
  return reply(a, 'ok')
end)

-- account_set_status(now, status): 'active' or 'frozen'.
redis.register_function('account_set_status', function(keys, args)
  local k = account_keys(keys)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local status = args[2]
  if status ~= 'active' and status ~= 'frozen' then
    fail('invalid_argument', 'status must be active or frozen')
  end
  local a = load_account(k)
  if a.status == 'closed' then
    fail('account_closed', 'a closed account cannot change status')
  end
  expire_holds(k, a, now)
  a.status = status
  redis.call('HSET', k.acct, 'status', status)
  return reply(a, 'ok')
end)

-- credit(now, amount, kind, request_id): topup | grant | adjustment. Only an adjustment may
-- be negative, and then it may not take available credit below -credit_limit (I1).
redis.register_function('credit', function(keys, args)
  local k = account_keys(keys)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local kind = args[3]
  local amount
  if kind == 'adjustment' then
    amount = integer_arg(args[2], 'amount', -MAX_AMOUNT, MAX_AMOUNT)
    if amount == 0 then fail('invalid_argument', 'amount must not be zero') end
  elseif kind == 'topup' or kind == 'grant' then
    amount = amount_arg(args[2], 'amount')
  else
    fail('invalid_argument', 'kind must be topup, grant or adjustment')
  end
  local request_id = args[4]
  local a = load_account(k)
  return idempotent(k, 'credit|' .. kind .. '|' .. fmt(amount), function()
    if a.status == 'closed' then return denied(a, 'account_closed') end
    expire_holds(k, a, now)
    if amount > 0 and a.balance + amount > MAX_AMOUNT then
      fail('amount_out_of_range', 'the balance would exceed 2^53 micro-credits')
    end
    if amount < 0 and available(a) + amount < -a.credit_limit then
      return denied(a, 'insufficient_credit')
    end
    a.balance = redis.call('HINCRBY', k.acct, 'balance', fmt(amount))
    local id = append_ledger(k, a, now, kind, amount, 0, request_id, '')
    return reply(a, 'ok', '', id, '', amount)
  end)
end)

-- debit(now, amount, request_id)
redis.register_function('debit', function(keys, args)
  local k = account_keys(keys)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local amount = amount_arg(args[2], 'amount')
  local request_id = args[3]
  local a = load_account(k)
  return idempotent(k, 'debit|' .. fmt(amount), function()
    expire_holds(k, a, now)
    if a.status == 'frozen' then return denied(a, 'account_frozen') end
    if a.status ~= 'active' then return denied(a, 'account_closed') end
    if available(a) - amount < -a.credit_limit then return denied(a, 'insufficient_credit') end
    a.balance = redis.call('HINCRBY', k.acct, 'balance', fmt(-amount))
    local id = append_ledger(k, a, now, 'debit', -amount, 0, request_id, '')
    return reply(a, 'ok', '', id, '', amount)
  end)
end)

-- hold(now, amount, ttl_ms, request_id): reserves amount until settled or now + ttl_ms.
redis.register_function('hold', function(keys, args)
  local k = account_keys(keys)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local amount = amount_arg(args[2], 'amount')
  local ttl = integer_arg(args[3], 'ttl_ms', 1, MAX_TTL_MS)
  local request_id = args[4]
  local a = load_account(k)
  return idempotent(k, 'hold|' .. fmt(amount) .. '|' .. fmt(ttl), function()
    expire_holds(k, a, now)
    if a.status == 'frozen' then return denied(a, 'account_frozen') end
    if a.status ~= 'active' then return denied(a, 'account_closed') end
    if available(a) - amount < -a.credit_limit then return denied(a, 'insufficient_credit') end
    local seq = fmt(redis.call('HINCRBY', k.acct, 'hseq', 1))
    local expires = now + ttl
    write_hold(k, seq, { reserved = amount, captured = 0, expires = expires, request_id = request_id })
    redis.call('ZADD', k.holdexp, fmt(expires), seq)
    a.held = redis.call('HINCRBY', k.acct, 'held', fmt(amount))
    local id = append_ledger(k, a, now, 'hold', 0, amount, request_id, seq)
    return reply(a, 'ok', '', id, seq, amount, expires)
  end)
end)

-- capture(now, hold_seq, amount, request_id): charges amount against the hold. What the hold
-- still reserves is used first; any excess draws on available credit or the capture is
-- refused. The hold stays open for more captures until released or expired.
redis.register_function('capture', function(keys, args)
  local k = account_keys(keys)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local seq = fmt(integer_arg(args[2], 'hold', 1, MAX_AMOUNT))
  local amount = amount_arg(args[3], 'amount')
  local request_id = args[4]
  local a = load_account(k)
  return idempotent(k, 'capture|' .. seq .. '|' .. fmt(amount), function()
    expire_holds(k, a, now)
    local h = read_hold(k, seq)
    if not h then return denied(a, 'hold_not_found') end
    local from_hold = math.min(amount, hold_remaining(h))
    local excess = amount - from_hold
    if excess > 0 then
      if a.status == 'frozen' then return denied(a, 'account_frozen') end
      if a.status ~= 'active' then return denied(a, 'account_closed') end
      if available(a) - excess < -a.credit_limit then return denied(a, 'insufficient_credit') end
    end
    h.captured = h.captured + amount
    write_hold(k, seq, h)
    a.balance = redis.call('HINCRBY', k.acct, 'balance', fmt(-amount))
    a.held = redis.call('HINCRBY', k.acct, 'held', fmt(-from_hold))
    local id = append_ledger(k, a, now, 'capture', -amount, -from_hold, request_id, seq)
    return reply(a, 'ok', '', id, seq, amount, h.captured)
  end)
end)

-- release(now, hold_seq, request_id): closes the hold and frees what it still reserves.
redis.register_function('release', function(keys, args)
  local k = account_keys(keys)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local seq = fmt(integer_arg(args[2], 'hold', 1, MAX_AMOUNT))
  local request_id = args[3]
  local a = load_account(k)
  return idempotent(k, 'release|' .. seq, function()
    expire_holds(k, a, now)
    local h = read_hold(k, seq)
    if not h then return denied(a, 'hold_not_found') end
    local id, rest = close_hold(k, a, now, seq, h, 'release', request_id)
    return reply(a, 'ok', '', id, seq, rest, h.captured)
  end)
end)

-- audit_snapshot(): balance, held, the newest ledger entry id, and the sum and count of what
-- open holds still reserve, read in one atomic step so the engine can check the ledger up
-- to that entry without stopping writers.
redis.register_function{
  function_name = 'audit_snapshot',
  flags = { 'no-writes' },
  callback = function(keys, args)
    local k = account_keys(keys)
    local f = redis.call('HMGET', k.acct, 'balance', 'held', 'status')
    if not f[1] then fail('account_not_found', 'no such account') end
    local last = redis.call('XREVRANGE', k.ledger, '+', '-', 'COUNT', 1)
    local last_id = ''
    if last[1] then last_id = last[1][1] end
    local open_sum, open_count = 0, 0
    local all = redis.call('HVALS', k.holds)
    for _, packed in ipairs(all) do
      local h = cmsgpack.unpack(packed)
      local rest = h[1] - h[2]
      if rest > 0 then open_sum = open_sum + rest end
      open_count = open_count + 1
    end
    return { tonumber(f[1]), tonumber(f[2]), f[3], last_id, open_sum, open_count }
  end,
}
