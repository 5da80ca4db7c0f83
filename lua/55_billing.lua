-- Billing: coupons, crypto deposits confirmed by a provider, and archiving the ledger.

-- coupon_create(amount, max_redemptions, expires_ms, account, credit_expires_ms, batch, operation)
-- KEYS: 1 the coupon's record 'tg:{cp:HASH}:coupon', HASH its keyed hash (CouponKey).
-- account '' lets any account redeem it; credit_expires_ms 0: the credit never expires.
-- batch and operation are keyed fingerprints of the batch (its request id) and of the batch
-- with its figures: a code that exists already from the same batch is a retry ('EXISTS'), from
-- the same batch with other figures idempotency_conflict, from another batch coupon_exists.
redis.register_function('coupon_create', function(keys, args)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local amount = amount_arg(args[8], 'amount')
  local max = integer_arg(args[9], 'max_redemptions', 1, MAX_LIMIT)
  local expires = integer_arg(args[10], 'expires', 1, MAX_AMOUNT)
  local account = args[11] or ''
  local credit_expires = integer_arg(args[12], 'credit_expires', 0, MAX_AMOUNT)
  local batch, operation = args[13], args[14]
  -- Each checked by name: ipairs would stop at a missing one and let nil reach HSET.
  for _, fingerprint in ipairs({ 13, 14 }) do
    if type(args[fingerprint]) ~= 'string' or not string.match(args[fingerprint], '^%x+$') then
      fail('invalid_argument', 'bad batch fingerprint')
    end
  end
  if expires <= now then fail('invalid_argument', 'expires must be in the future') end
  local existing = redis.call('HMGET', keys[1], 'amount', 'batch', 'operation')
  if existing[1] then
    if existing[2] ~= batch then fail('coupon_exists', 'this code exists already') end
    if existing[3] ~= operation then
      fail('idempotency_conflict', 'this request id was already used for coupons with other figures')
    end
    return 'EXISTS'
  end
  redis.call('HSET', keys[1], 'amount', fmt(amount), 'max', fmt(max), 'count', 0, 'expires', fmt(expires),
    'account', account, 'credit_expires', fmt(credit_expires), 'created', fmt(now), 'batch', batch, 'operation', operation)
  return 'OK'
end)

-- Redeeming a coupon spans two slots: the coupon's ({cp:HASH}) and the account's ({a:ID}), so
-- it runs as steps, each atomic in its slot, in this order (the engine drives them):
--   1 coupon_precheck  (account slot) refuses an account or address that guessed too often;
--   2 coupon_claim     (coupon slot)   counts the redemption against the code's limit and adds
--                                      the account to the code's redeemers, once per account;
--   3 coupon_credit    (account slot)  credits it, once per account and code: the permanent
--                                      field 'cpn:HASH' on the account marks it credited.
-- A claim is never undone by a crash: a retry finds the account among the redeemers
-- ('reclaimed') and step 3 completes the credit if it was missing. So a code is never redeemed
-- beyond its limit (step 2 is atomic) and never credited twice to an account (step 3 is).
-- coupon_fail and coupon_address_failed count refusals; coupon_unclaim gives a claim back when
-- the account turned out to be closed (it was never credited, and the marker rules out a later one).

-- The account's field that marks a coupon credited: 'cpn:' and the coupon's keyed hash.
local COUPON_MARKER = 'cpn:'

-- Counts a failed redemption against the account (a fixed window on the account's hash).
local function count_coupon_failure(k, now, window)
  local f = redis.call('HMGET', k.acct, 'cfail', 'cfail_until')
  local until_ms = tonumber(f[2] or '0')
  if until_ms <= now then
    redis.call('HSET', k.acct, 'cfail', 1, 'cfail_until', fmt(now + window))
  else
    redis.call('HINCRBY', k.acct, 'cfail', 1)
  end
end

-- The operation a redemption's request id is kept for: the code, by its keyed hash.
local function coupon_fingerprint(hash)
  if type(hash) ~= 'string' or not string.match(hash, '^%x+$') then fail('invalid_argument', 'bad coupon hash') end
  return 'coupon|' .. hash
end

-- coupon_precheck(max_failures, address_failures, address_ttl_ms, coupon_hash)
-- KEYS: 1-4 the account's, 5 (optional) the request id's. The address's failures were read
-- from its own key just before. A request id that redeemed this code already replays that
-- answer (replayed 1) before anything else. Past max_failures within the window every attempt
-- is refused with too_many_attempts. Reply detail (10): 1 when the account is closed.
redis.register_function('coupon_precheck', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local max_failures = integer_arg(args[8], 'max_failures', 1, MAX_LIMIT)
  local address_failures = integer_arg(args[9], 'address_failures', 0, MAX_AMOUNT)
  local address_ttl = integer_arg(args[10], 'address_ttl', 0, MAX_AMOUNT)
  local fingerprint = coupon_fingerprint(args[11])
  if k.idem then
    local first = replay_of(k, fingerprint)
    if first then return first end
  end
  local a = load_account(k)
  expire_due(k, a, now, periods)
  local f = redis.call('HMGET', k.acct, 'cfail', 'cfail_until')
  local until_ms = tonumber(f[2] or '0')
  if until_ms > now and tonumber(f[1] or '0') >= max_failures then
    return reply(a, 'denied', 'too_many_attempts', '', '', 0, 0, until_ms - now)
  end
  if address_failures >= max_failures then
    return reply(a, 'denied', 'too_many_attempts', '', '', 0, 0, math.max(1, address_ttl))
  end
  local closed = 0
  if a.status == 'closed' then closed = 1 end
  return reply(a, 'ok', '', '', '', 0, closed)
end)

-- coupon_claim(now, account_id, closed)
-- KEYS: 1 the coupon's record 'tg:{cp:HASH}:coupon', 2 the set of accounts that claimed it.
-- Reply: { status, amount, credit_expires }; status 'claimed' (counted now), 'reclaimed' (this
-- account claimed it before; its credit may still be due) or a refusal: invalid, expired,
-- exhausted, account_closed (closed = '1'; nothing is claimed then).
redis.register_function('coupon_claim', function(keys, args)
  local now = integer_arg(args[1], 'now', 0, MAX_AMOUNT)
  local account_id, closed = args[2], args[3] == '1'
  if type(account_id) ~= 'string' or account_id == '' then fail('invalid_argument', 'the account id is missing') end
  local c = redis.call('HMGET', keys[1], 'amount', 'max', 'count', 'expires', 'account', 'credit_expires')
  if not c[1] or (c[5] ~= '' and c[5] ~= account_id) then return { 'invalid', '0', '0' } end
  if redis.call('SISMEMBER', keys[2], account_id) == 1 then return { 'reclaimed', c[1], c[6] } end
  if tonumber(c[4]) <= now or (tonumber(c[6]) ~= 0 and tonumber(c[6]) <= now) then return { 'expired', '0', '0' } end
  if tonumber(c[3]) >= tonumber(c[2]) then return { 'exhausted', '0', '0' } end
  if closed then return { 'account_closed', '0', '0' } end
  redis.call('HINCRBY', keys[1], 'count', 1)
  redis.call('SADD', keys[2], account_id)
  return { 'claimed', c[1], c[6] }
end)

-- coupon_unclaim(account_id): KEYS as coupon_claim. Gives back a claim that was never credited.
redis.register_function('coupon_unclaim', function(keys, args)
  if type(args[1]) ~= 'string' or args[1] == '' then fail('invalid_argument', 'the account id is missing') end
  if redis.call('SREM', keys[2], args[1]) == 1 then redis.call('HINCRBY', keys[1], 'count', -1) end
  return 'OK'
end)

-- coupon_rekey(unkeyed_hash, keyed_hash): KEYS 1 an account's hash. Moves the account's
-- marker of a redeemed coupon from the plain hash earlier versions kept to the keyed one
-- (Engine.prepareCoupons), so the account still cannot redeem that code twice. Reply: 1 moved.
redis.register_function('coupon_rekey', function(keys, args)
  local old, new = args[1], args[2]
  if type(old) ~= 'string' or not string.match(old, '^%x+$') or type(new) ~= 'string' or not string.match(new, '^%x+$') then
    fail('invalid_argument', 'bad coupon hash')
  end
  local at = redis.call('HGET', keys[1], COUPON_MARKER .. old)
  if not at then return 0 end
  redis.call('HSET', keys[1], COUPON_MARKER .. new, at)
  redis.call('HDEL', keys[1], COUPON_MARKER .. old)
  return 1
end)

-- The body of coupon_credit, once its arguments are checked.
local function credit_claimed_coupon(k, now, periods, hash, ref, amount, credit_expires, window)
  local a = load_account(k)
  ensure_room_for_credit(a, amount, true)
  expire_due(k, a, now, periods)
  local marker = COUPON_MARKER .. hash
  if redis.call('HEXISTS', k.acct, marker) == 1 then
    count_coupon_failure(k, now, window)
    return denied(a, 'already_redeemed')
  end
  if a.status == 'closed' then return denied(a, 'account_closed') end
  if credit_expires ~= 0 and credit_expires <= now then return denied(a, 'expired') end
  if credit_expires == 0 then credit_expires = NEVER end
  redis.call('HSET', k.acct, marker, fmt(now))
  add_grant(k, a, amount, credit_expires)
  local extra = { 'ref', 'coupon:' .. ref }
  if credit_expires ~= NEVER then extra[3] = 'expires'; extra[4] = fmt(credit_expires) end
  local id = append_ledger(k, a, now, 'coupon', amount, 0, 'coupon:' .. ref, '', nil, extra)
  return reply(a, 'ok', '', id, '', amount, credit_expires)
end

-- coupon_credit(coupon_hash, coupon_ref, amount, credit_expires, window_ms)
-- KEYS: 1-4 the account's, 5 (optional) the request id's: the answer is kept for it, so a
-- retry replays it (coupon_precheck). Credits a claimed coupon as promotional credit, at most
-- once per account and code; refused with already_redeemed (a failure) once credited,
-- account_closed when closed. Reply detail (10): when the credit expires.
redis.register_function('coupon_credit', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local hash, ref = args[8], args[9] or ''
  local amount = amount_arg(args[10], 'amount')
  local credit_expires = integer_arg(args[11], 'credit_expires', 0, MAX_AMOUNT)
  local window = integer_arg(args[12], 'window_ms', 1, MAX_TTL_MS)
  local fingerprint = coupon_fingerprint(hash)
  local function credit() return credit_claimed_coupon(k, now, periods, hash, ref, amount, credit_expires, window) end
  if k.idem then return idempotent(k, fingerprint, credit) end
  return credit()
end)

-- coupon_fail(reason, window_ms): KEYS 1-4 the account's. Counts a refused redemption against
-- the account and answers the refusal.
redis.register_function('coupon_fail', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local reason = args[8]
  local window = integer_arg(args[9], 'window_ms', 1, MAX_TTL_MS)
  local a = load_account(k)
  count_coupon_failure(k, now, window)
  return denied(a, reason)
end)

-- coupon_address_failed(window_ms): KEYS 1 the client address's failure counter
-- 'tg:couponfail:<addr>' (a slot of its own). Counts a refusal; the counter expires with the window.
redis.register_function('coupon_address_failed', function(keys, args)
  local window = integer_arg(args[1], 'window_ms', 1, MAX_TTL_MS)
  local n = redis.call('INCR', keys[1])
  if n == 1 then redis.call('PEXPIRE', keys[1], window) end
  return n
end)

-- Notes a deposit's change of status in the payment history (not the ledger: the balance does
-- not change). Ids stay above every ledger id so far, and the next ledger entry goes to the
-- next millisecond, so a ledger id copied into the history can never meet a note's id.
local function note_deposit(k, a, now, id, status)
  redis.call('XADD', k.payments, next_entry_id(k, a, now), 'kind', 'deposit', 'amount', '0', 'balance', fmt(a.balance),
    'held', fmt(a.held), 'held_delta', '0', 'time', fmt(now), 'request_id', 'deposit:' .. id, 'hold', '',
    'ref', id, 'status', status)
end

-- An account may start at most this many deposits in a rolling 24 hours: each leaves a
-- record for good and waits on its provider, so an account token cannot flood Redis.
local DEPOSITS_PER_DAY = 100

-- deposit_create(deposit_id, credits, token, token_amount, provider, network, address)
-- A pending deposit, kept in the account's slot: hash 'dep:<id>' and the 'deposits' index.
-- network and address are where the crypto must go; a payment elsewhere is rejected.
redis.register_function('deposit_create', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local id = args[8]
  local credits = amount_arg(args[9], 'credits')
  local token, token_amount, provider, network, address = args[10], args[11], args[12], args[13] or '', args[14] or ''
  if type(id) ~= 'string' or not string.match(id, '^[%w_%.%-]+$') then fail('invalid_argument', 'bad deposit id') end
  for _, text in ipairs({ token or false, token_amount or false, provider or false }) do
    if type(text) ~= 'string' or text == '' then fail('invalid_argument', 'the token, its amount and the provider are required') end
  end
  local a = load_account(k)
  if a.status == 'closed' then return denied(a, 'account_closed') end
  local key = k.base .. 'dep:' .. id
  if redis.call('EXISTS', key) == 1 then fail('deposit_exists', 'this deposit id is taken') end
  if redis.call('ZCOUNT', k.deposits, fmt(now - 86400000), '+inf') >= DEPOSITS_PER_DAY then
    fail('too_many_deposits', 'at most ' .. DEPOSITS_PER_DAY .. ' deposits may be started in 24 hours')
  end
  redis.call('HSET', key, 'status', 'pending', 'credits', fmt(credits), 'token', token,
    'token_amount', token_amount, 'provider', provider, 'network', network, 'address', address, 'created', fmt(now))
  redis.call('ZADD', k.deposits, fmt(now), id)
  note_deposit(k, a, now, id, 'pending')
  return reply(a, 'ok', '', '', '', credits)
end)

-- deposit_complete(deposit_id, provider, provider_tx, status, credits, received, reason)
-- The provider's word on a deposit:
--   'completed' credits what was received, once per provider transaction (across replays and
--     concurrent deliveries). A received amount that differs from the request is credited as
--     received and flagged amount_mismatch; a second real payment against a completed deposit
--     (another transaction) is credited too, flagged duplicate_payment, so no payment is lost.
--   'failed' marks a pending deposit failed (the same transaction may still complete later).
--   'rejected' (reason, e.g. wrong_destination: the crypto went elsewhere) credits nothing and
--     flags the deposit for an operator.
-- Reply detail (10): 0, or 1 amount_mismatch, 2 duplicate_payment, 3 rejected.
redis.register_function('deposit_complete', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local id, provider, tx, status = args[8], args[9], args[10], args[11]
  if status ~= 'completed' and status ~= 'failed' and status ~= 'rejected' then
    fail('invalid_argument', 'status must be completed, failed or rejected')
  end
  if type(tx) ~= 'string' or tx == '' then fail('invalid_argument', 'the provider transaction id is missing') end
  local a = load_account(k)
  local key = k.base .. 'dep:' .. tostring(id)
  local d = redis.call('HMGET', key, 'status', 'provider', 'credits', 'credited')
  if not d[1] then fail('deposit_not_found', 'no such deposit') end
  if d[2] ~= provider then fail('invalid_argument', 'the deposit was made with another provider') end
  local seen = provider .. ':' .. tx
  if redis.call('SISMEMBER', k.ptx, seen) == 1 then
    local r = reply(a, 'ok', '', '', '', 0)
    r[11] = 1
    return r
  end
  if status == 'failed' then
    if d[1] == 'pending' then
      redis.call('HSET', key, 'status', 'failed', 'provider_tx', tx, 'updated', fmt(now))
      note_deposit(k, a, now, id, 'failed')
    end
    return reply(a, 'ok', '', '', '', 0)
  end
  if status == 'rejected' then
    local reason = args[14] or 'rejected'
    redis.call('HSET', key, 'flagged', '1', 'rejection', reason, 'rejected_tx', tx, 'updated', fmt(now))
    note_deposit(k, a, now, id, 'rejected')
    redis.call('SADD', k.ptx, seen)
    return reply(a, 'ok', '', '', '', 0, 3)
  end
  local credits = amount_arg(args[12], 'credits')
  local received = args[13] or ''
  ensure_room_for_credit(a, credits, false)
  local detail, flag = 0, nil
  if d[1] == 'completed' then
    detail, flag = 2, 'duplicate_payment'
  elseif credits ~= tonumber(d[3]) then
    detail, flag = 1, 'amount_mismatch'
  end
  expire_due(k, a, now, periods)
  a.balance = redis.call('HINCRBY', k.acct, 'balance', fmt(credits))
  local extra = { 'ref', id, 'status', 'completed' }
  if flag then extra[5] = 'flag'; extra[6] = flag end
  local entry = append_ledger(k, a, now, 'deposit', credits, 0, 'deposit:' .. id .. ':' .. tx, '', nil, extra)
  local fields = { 'status', 'completed', 'credited', fmt(tonumber(d[4] or '0') + credits), 'entry', entry, 'updated', fmt(now) }
  if d[1] == 'completed' then
    fields[#fields + 1] = 'flagged'; fields[#fields + 1] = '1'
    fields[#fields + 1] = 'duplicate_tx'; fields[#fields + 1] = tx
  else
    fields[#fields + 1] = 'provider_tx'; fields[#fields + 1] = tx
    fields[#fields + 1] = 'received'; fields[#fields + 1] = received
    fields[#fields + 1] = 'flagged'; fields[#fields + 1] = flag and '1' or '0'
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('SADD', k.ptx, seen)
  return reply(a, 'ok', '', entry, '', credits, detail)
end)

-- ledger_trim(cut_id, last_exported_id): removes the ledger entries before cut_id once the
-- engine has archived them, leaving a checkpoint (balance and held after the last removed
-- entry) so the audit still balances. Refused unless the newest entry before the cut is the
-- one the archive ends with.
redis.register_function('ledger_trim', function(keys, args)
  local k = account_keys(keys)
  local cut, exported = args[8], args[9]
  if type(cut) ~= 'string' or not string.match(cut, '^%d+%-%d+$') then fail('invalid_argument', 'bad cut id') end
  local a = load_account(k)
  local last = redis.call('XREVRANGE', k.ledger, '(' .. cut, '-', 'COUNT', 1)
  if not last[1] then return reply(a, 'ok', '', '', '', 0) end
  if last[1][1] ~= exported then
    fail('archive_mismatch', 'the ledger changed before the cut since it was exported')
  end
  local fields = {}
  local raw = last[1][2]
  for i = 1, #raw, 2 do fields[raw[i]] = raw[i + 1] end
  -- The payment history is kept: it is small, and its deposit notes are in no archive.
  local removed = redis.call('XTRIM', k.ledger, 'MINID', cut)
  redis.call('HSET', k.acct, 'ckpt_id', exported, 'ckpt_balance', fields['balance'], 'ckpt_held', fields['held'])
  redis.call('HINCRBY', k.acct, 'ckpt_count', removed)
  return reply(a, 'ok', '', exported, '', removed)
end)
