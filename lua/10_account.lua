-- Accounts. KEYS of every account step, in this order:
--   1 acct     hash: status, balance, held, credit_limit, created, lms (last ledger ms), hseq,
--              limits and their state (30_limits.lua), carries (40_pricing.lua), and each
--              API key's fields under 'k:<key id>:'
--   2 ledger   stream of ledger entries
--   3 holds    hash: hold seq -> msgpack hold (20_holds.lua)
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
--   6 status   7 ledger entry id ('' if none)   8 hold seq ('' if none)
--   9 amount applied (debited, credited, reserved, captured, released; for authorize the cost)
--   10 detail (hold: expiry ms; capture/report/settle/release: total captured on the hold)
--   11 replayed (0 | 1)   12 retry_after_ms (-1 when waiting does not help)
--   13 limits: flat array of (name, limit, remaining, reset_ms) for each limit that applied
local function reply(a, outcome, reason, entry_id, hold_seq, amount, detail, retry_after, limits)
  return { outcome, reason or '', a.balance, a.held, a.credit_limit, a.status,
           entry_id or '', hold_seq or '', amount or 0, detail or 0, 0, retry_after or -1, limits or {} }
end

local function denied(a, reason)
  return reply(a, 'denied', reason)
end

-- Appends one ledger entry. Entry ids are '<ms>-<n>', ms never going backwards, so the
-- ledger is ordered even if the engine's clock steps back. usage, when given, names the
-- meter, model, quantity and key the entry charges for.
local function append_ledger(k, a, now, kind, amount, held_delta, request_id, hold_seq, usage)
  local ms = now
  if a.lms > ms then ms = a.lms end
  local fields = {
    'kind', kind, 'amount', fmt(amount), 'balance', fmt(a.balance), 'held', fmt(a.held),
    'held_delta', fmt(held_delta), 'time', fmt(now), 'request_id', request_id or '',
    'hold', hold_seq or '' }
  if usage then
    fields[#fields + 1] = 'meter'; fields[#fields + 1] = usage.meter
    fields[#fields + 1] = 'model'; fields[#fields + 1] = usage.model
    fields[#fields + 1] = 'quantity'; fields[#fields + 1] = fmt(usage.quantity)
    fields[#fields + 1] = 'key'; fields[#fields + 1] = usage.key or ''
  end
  local id = redis.call('XADD', k.ledger, fmt(ms) .. '-*', unpack(fields))
  a.lms = ms
  redis.call('HSET', k.acct, 'lms', fmt(ms))
  publish_change(k.acct, id, kind, amount, a.balance, a.held, now)
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
