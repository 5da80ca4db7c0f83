-- Accounts. KEYS of every account step, in this order:
--   1 acct     hash: status, balance, held, credit_limit, created, lms (last ledger ms), hseq
--   2 ledger   stream of ledger entries
--   3 holds    hash: hold seq -> msgpack {reserved, captured, expires, request_id}
--   4 holdexp  sorted set: hold seq by expiry time
--   5 idem     (mutations only) the request id's stored result

local function account_keys(keys)
  return { acct = keys[1], ledger = keys[2], holds = keys[3], holdexp = keys[4], idem = keys[5] }
end

local function load_account(k)
  local f = redis.call('HMGET', k.acct, 'status', 'balance', 'held', 'credit_limit', 'lms', 'hseq')
  if not f[1] then
    fail('account_not_found', 'no such account')
  end
  return {
    status = f[1],
    balance = tonumber(f[2]),
    held = tonumber(f[3]),
    credit_limit = tonumber(f[4]),
    lms = tonumber(f[5] or '0'),
    hseq = tonumber(f[6] or '0'),
  }
end

local function available(a)
  return a.balance - a.held
end

-- The one reply shape of every account step:
--   1 outcome 'ok' | 'denied'   2 reason ('' when ok)   3 balance   4 held   5 credit_limit
--   6 status   7 ledger entry id ('' if none)   8 hold seq ('' if none)   9 amount applied
--   10 detail (capture/release: total captured on the hold)   11 replayed (0 | 1)
local function reply(a, outcome, reason, entry_id, hold_seq, amount, detail)
  return { outcome, reason or '', a.balance, a.held, a.credit_limit, a.status,
           entry_id or '', hold_seq or '', amount or 0, detail or 0, 0 }
end

local function denied(a, reason)
  return reply(a, 'denied', reason)
end

-- Appends one ledger entry. Entry ids are '<ms>-<n>', ms never going backwards, so the
-- ledger is ordered even if the engine's clock steps back.
local function append_ledger(k, a, now, kind, amount, held_delta, request_id, hold_seq)
  local ms = now
  if a.lms > ms then ms = a.lms end
  local id = redis.call('XADD', k.ledger, fmt(ms) .. '-*',
    'kind', kind, 'amount', fmt(amount), 'balance', fmt(a.balance), 'held', fmt(a.held),
    'held_delta', fmt(held_delta), 'time', fmt(now), 'request_id', request_id or '',
    'hold', hold_seq or '')
  a.lms = ms
  redis.call('HSET', k.acct, 'lms', fmt(ms))
  return id
end

-- Runs body() once per request id. A retry with the same id and the same operation gets the
-- first reply back, marked replayed, and changes nothing; the same id for a different
-- operation is refused. Denials are not stored: a retry is decided afresh.
local function idempotent(k, fingerprint, body)
  local stored = redis.call('GET', k.idem)
  if stored then
    local record = cmsgpack.unpack(stored)
    if record[1] ~= fingerprint then
      fail('idempotency_conflict', 'this request id was already used for a different operation')
    end
    local first = record[2]
    first[11] = 1
    return first
  end
  local result = body()
  if result[1] == 'ok' then
    redis.call('SET', k.idem, cmsgpack.pack({ fingerprint, result }), 'PX', IDEMPOTENCY_TTL_MS)
  end
  return result
end
