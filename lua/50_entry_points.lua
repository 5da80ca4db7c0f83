-- Entry points for accounts, credits, plain debits and holds, limits and API keys.
-- Every one takes ARGV[1] = now and ARGV[2..7] = the current UTC periods (periods_arg).

local function step_start(keys, args)
  local k = account_keys(keys)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  current_periods = periods_arg(args, now)
  return k, now, current_periods
end

-- account_create(credit_limit)
redis.register_function('account_create', function(keys, args)
  local k, now = step_start(keys, args)
  local credit_limit = integer_arg(args[8], 'credit_limit', 0, MAX_AMOUNT)
  if redis.call('EXISTS', k.acct) == 1 then
    fail('account_exists', 'an account with this id already exists')
  end
  redis.call('HSET', k.acct, 'status', 'active', 'balance', 0, 'held', 0,
    'credit_limit', fmt(credit_limit), 'created', fmt(now), 'lms', 0, 'lseq', 0, 'lseqms', 0, 'hseq', 0)
  return reply(load_account(k), 'ok')
end)

-- account_get(): the account after expiring due holds.
redis.register_function('account_get', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local a = load_account(k)
  expire_due(k, a, now, periods)
  return reply(a, 'ok')
end)

-- account_set_status(status): 'active' or 'frozen'.
redis.register_function('account_set_status', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local status = args[8]
  if status ~= 'active' and status ~= 'frozen' then
    fail('invalid_argument', 'status must be active or frozen')
  end
  local a = load_account(k)
  if a.status == 'closed' then
    fail('account_closed', 'a closed account cannot change status')
  end
  expire_due(k, a, now, periods)
  a.status = status
  redis.call('HSET', k.acct, 'status', status)
  return reply(a, 'ok')
end)

-- credit(amount, kind, request_id, expires_ms): topup | grant | adjustment. A grant is
-- promotional credit, expiring at expires_ms ('' or 0: never). Only an adjustment may be
-- negative, and then it takes paid credit: it may take neither available credit nor the paid
-- part of the balance below -credit_limit (I1). Promotional credit expires in full once no
-- hold reserves it (35_grants.lua), so a paid part below the credit line would be an overdraft
-- waiting for the next expiry.
redis.register_function('credit', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local kind = args[9]
  local amount
  if kind == 'adjustment' then
    amount = integer_arg(args[8], 'amount', -MAX_AMOUNT, MAX_AMOUNT)
    if amount == 0 then fail('invalid_argument', 'amount must not be zero') end
  elseif kind == 'topup' or kind == 'grant' then
    amount = amount_arg(args[8], 'amount')
  else
    fail('invalid_argument', 'kind must be topup, grant or adjustment')
  end
  local request_id = args[10]
  local expires = NEVER
  if args[11] and args[11] ~= '' and args[11] ~= '0' then
    if kind ~= 'grant' then fail('invalid_argument', 'only a grant can expire') end
    expires = integer_arg(args[11], 'expires', 1, MAX_AMOUNT)
  end
  local a = load_account(k)
  return idempotent(k, 'credit|' .. kind .. '|' .. fmt(amount) .. '|' .. fmt(expires), function()
    if a.status == 'closed' then return denied(a, 'account_closed') end
    if amount > 0 then ensure_room_for_credit(a, amount, kind == 'grant') end
    expire_due(k, a, now, periods)
    if expires <= now then return denied(a, 'expired') end
    if amount < 0 and (available(a) + amount < -a.credit_limit
        or a.balance - a.promo + amount < -a.credit_limit) then
      return denied(a, 'insufficient_credit')
    end
    local extra = nil
    if kind == 'grant' then
      local seq = add_grant(k, a, amount, expires)
      extra = { 'ref', 'grant:' .. seq }
      if expires ~= NEVER then extra[3] = 'expires'; extra[4] = fmt(expires) end
    else
      a.balance = redis.call('HINCRBY', k.acct, 'balance', fmt(amount))
    end
    local id = append_ledger(k, a, now, kind, amount, 0, request_id, '', nil, extra)
    return reply(a, 'ok', '', id, '', amount)
  end)
end)

-- debit(amount, request_id): an operator's plain debit; no price or limit applies.
redis.register_function('debit', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local amount = amount_arg(args[8], 'amount')
  local request_id = args[9]
  local a = load_account(k)
  return idempotent(k, 'debit|' .. fmt(amount), function()
    expire_due(k, a, now, periods)
    if a.status == 'frozen' then return denied(a, 'account_frozen') end
    if a.status ~= 'active' then return denied(a, 'account_closed') end
    if available(a) - amount < -a.credit_limit then return denied(a, 'insufficient_credit') end
    local pu, pe = take_credit(k, a, amount)
    idem_note = { pu = pu, pe = pe, n = 1 }
    local id = append_ledger(k, a, now, 'debit', -amount, 0, request_id, '')
    return reply(a, 'ok', '', id, '', amount)
  end)
end)

-- hold(amount, ttl_ms, request_id): reserves a plain amount until released or now + ttl_ms.
redis.register_function('hold', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local amount = amount_arg(args[8], 'amount')
  local ttl = integer_arg(args[9], 'ttl_ms', 1, MAX_TTL_MS)
  local request_id = args[10]
  local a = load_account(k)
  return idempotent(k, 'hold|' .. fmt(amount) .. '|' .. fmt(ttl), function()
    expire_due(k, a, now, periods)
    if a.status == 'frozen' then return denied(a, 'account_frozen') end
    if a.status ~= 'active' then return denied(a, 'account_closed') end
    if available(a) - amount < -a.credit_limit then return denied(a, 'insufficient_credit') end
    local seq = fmt(redis.call('HINCRBY', k.acct, 'hseq', 1))
    local expires = now + ttl
    write_hold(k, seq, { r = amount, c = 0, n = 0, x = expires, q = request_id, k = '', tr = 0, tu = 0, u = {}, lim = 0 })
    redis.call('ZADD', k.holdexp, fmt(expires), seq)
    a.held = redis.call('HINCRBY', k.acct, 'held', fmt(amount))
    local id = append_ledger(k, a, now, 'hold', 0, amount, request_id, seq)
    return reply(a, 'ok', '', id, seq, amount, expires)
  end)
end)

-- capture(hold_seq, amount, request_id): charges a plain amount against a hold. What the hold
-- still reserves is used first; any excess must pass the account's status, limits and
-- balance, or nothing changes. The hold stays open until released or expired.
redis.register_function('capture', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local seq = fmt(integer_arg(args[8], 'hold', 1, MAX_AMOUNT))
  local amount = amount_arg(args[9], 'amount')
  local request_id = args[10]
  local a = load_account(k)
  return idempotent(k, 'capture|' .. seq .. '|' .. fmt(amount), function()
    expire_due(k, a, now, periods)
    local h = read_hold(k, seq)
    if not h then return denied(a, 'hold_not_found') end
    local reason, entry_id = charge_hold(k, a, now, periods, seq, h, { { cost = amount } }, 0, request_id, true)
    if reason then return denied(a, reason) end
    write_hold(k, seq, h)
    return reply(a, 'ok', '', entry_id, seq, amount, h.n)
  end)
end)

-- release(hold_seq, request_id): closes the hold and frees what it still reserves.
redis.register_function('release', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local seq = fmt(integer_arg(args[8], 'hold', 1, MAX_AMOUNT))
  local request_id = args[9]
  local a = load_account(k)
  return idempotent(k, 'release|' .. seq, function()
    expire_due(k, a, now, periods)
    local h = read_hold(k, seq)
    if not h then return denied(a, 'hold_not_found') end
    local id, rest = close_hold(k, a, now, periods, seq, h, 'release', request_id)
    return reply(a, 'ok', '', id, seq, rest, h.n)
  end)
end)

-- limits_set(scope, name, value, ...): scope is 'account' or a key id; a value of '' removes
-- that limit. Caps are micro-credits; rates and counts are whole numbers.
redis.register_function('limits_set', function(keys, args)
  local k, now = step_start(keys, args)
  local scope = args[8]
  if not scope or scope == '' then fail('invalid_argument', 'limits_set needs a scope') end
  local prefix = ''
  local a = load_account(k)
  if scope ~= 'account' then
    if not redis.call('HGET', k.acct, 'k:' .. scope .. ':status') then fail('key_not_found', 'no such API key') end
    prefix = 'k:' .. scope .. ':'
  end
  local set, remove = {}, {}
  local known = {}
  for _, n in ipairs(LIMIT_NAMES) do known[n] = true end
  local i = 9
  while args[i] do
    local name, value = args[i], args[i + 1]
    if not known[name] then fail('invalid_argument', 'unknown limit ' .. tostring(name)) end
    if value == '' then
      remove[#remove + 1] = prefix .. 'lim:' .. name
    else
      local min, max = 1, MAX_LIMIT
      if string.sub(name, 1, 4) == 'cap_' then min, max = 0, MAX_AMOUNT end
      set[#set + 1] = prefix .. 'lim:' .. name
      set[#set + 1] = fmt(integer_arg(value, name, min, max))
    end
    i = i + 2
  end
  if #set > 0 then redis.call('HSET', k.acct, unpack(set)) end
  if #remove > 0 then redis.call('HDEL', k.acct, unpack(remove)) end
  return reply(a, 'ok')
end)

-- key_create(key_id, secret_hash): a new active API key on the account.
redis.register_function('key_create', function(keys, args)
  local k, now = step_start(keys, args)
  local key_id, hash = args[8], args[9]
  if type(key_id) ~= 'string' or not string.match(key_id, '^[%w_]+$') then fail('invalid_argument', 'bad key id') end
  if type(hash) ~= 'string' or not string.match(hash, '^%x+$') then fail('invalid_argument', 'bad key hash') end
  local a = load_account(k)
  local prefix = 'k:' .. key_id .. ':'
  if redis.call('HEXISTS', k.acct, prefix .. 'status') == 1 then fail('key_exists', 'this key id is taken') end
  redis.call('HSET', k.acct, prefix .. 'status', 'active', prefix .. 'hash', hash, prefix .. 'created', fmt(now))
  return reply(a, 'ok')
end)

-- key_revoke(key_id): the key is refused from the next call on.
redis.register_function('key_revoke', function(keys, args)
  local k, now = step_start(keys, args)
  local key_id = args[8]
  local a = load_account(k)
  local field = 'k:' .. tostring(key_id) .. ':status'
  if not redis.call('HGET', k.acct, field) then fail('key_not_found', 'no such API key') end
  redis.call('HSET', k.acct, field, 'revoked')
  return reply(a, 'ok')
end)

-- audit_snapshot(): balance, held, the newest ledger entry id, and the sum and count of what
-- open holds still reserve, read in one atomic step so the engine can check the ledger up
-- to that entry without stopping writers. Then the checkpoint left by archiving (balance and
-- held after the last archived entry, its id), the promotional balance and what its grants
-- still hold.
redis.register_function{
  function_name = 'audit_snapshot',
  flags = { 'no-writes' },
  callback = function(keys, args)
    local k = account_keys(keys)
    local f = redis.call('HMGET', k.acct, 'balance', 'held', 'status', 'ckpt_balance', 'ckpt_held', 'ckpt_id', 'promo')
    if not f[1] then fail('account_not_found', 'no such account') end
    local last = redis.call('XREVRANGE', k.ledger, '+', '-', 'COUNT', 1)
    local last_id = ''
    if last[1] then last_id = last[1][1] end
    local open_sum, open_count = 0, 0
    for _, packed in ipairs(redis.call('HVALS', k.holds)) do
      open_sum = open_sum + hold_remaining(cmsgpack.unpack(packed))
      open_count = open_count + 1
    end
    local grant_sum = 0
    for _, rest in ipairs(redis.call('HVALS', k.grants)) do grant_sum = grant_sum + tonumber(rest) end
    return { tonumber(f[1]), tonumber(f[2]), f[3], last_id, open_sum, open_count,
             tonumber(f[4] or '0'), tonumber(f[5] or '0'), f[6] or '', tonumber(f[7] or '0'), grant_sum }
  end,
}
