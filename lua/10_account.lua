-- Accounts. KEYS of every account step, in this order:
--   1 acct     hash: status, balance, held, credit_limit, created, lms, lseq and lseqms (the last
--              entry id of the ledger and payment history, next_entry_id), hseq,
--              promo (the promotional part of balance), gseq, gnext (soonest grant expiry),
--              limits and their state (20_limits.lua), carries (30_pricing.lua), and each
--              API key's fields under 'k:<key id>:'
--   2 ledger   stream of ledger entries
--   3 holds    hash: hold seq -> msgpack hold (40_holds.lua)
--   4 holdexp  sorted set: hold seq by expiry time
--   5 idem     (mutations only) the request id's stored result
-- and keys derived from the account key's prefix 'tg:{a:ID}:' (same hash tag, same slot, I7):
--   grants     hash: grant seq -> what is left of it      grantexp  sorted set: grant seq by expiry
--   payments   stream: the credit entries of the ledger (topup, deposit, coupon, grant,
--              adjustment, and expiries of grants), same ids, for the payment history; and
--              deposits' pending, failed and rejected notes (amount 0, no ledger entry)
--   u:h:<hour> u:d:<day> u:m:<month>   hashes of usage aggregates: 'c|meter|model|key' cost and
--              'q|meter|model|key' quantity of the debits, captures, refunds and voids in that period
--   deposits   sorted set: deposit id by creation time   dep:<id>  hash: one deposit's record
--   ptx        set of provider transaction ids seen      tokens    hash of the account's tokens
-- (the whole layout: docs/ARCHITECTURE.md, Data in Redis)

-- KEYS are checked against that shape before anything is read: every key given must be this
-- account's (a step must never write one account's hash and another's ledger), in this order,
-- and the request id's record is the account's too. Keys 2-4 may be left out by steps that do
-- not use them (the audit snapshot); the ones used are derived from the account key.
local function account_keys(keys)
  local acct = keys[1]
  if type(acct) ~= 'string' or not string.match(acct, '^tg:{a:[^{}]+}:acct$') then
    fail('invalid_keys', 'KEYS[1] must be an account key')
  end
  local base = string.sub(acct, 1, #acct - 4)  -- 'tg:{a:ID}:' without 'acct'
  local k = { acct = acct, ledger = base .. 'ledger', holds = base .. 'holds', holdexp = base .. 'holdexp',
              idem = keys[5], base = base, grants = base .. 'grants', grantexp = base .. 'grantexp',
              payments = base .. 'payments', deposits = base .. 'deposits', ptx = base .. 'ptx' }
  if (keys[2] and keys[2] ~= k.ledger) or (keys[3] and keys[3] ~= k.holds) or (keys[4] and keys[4] ~= k.holdexp)
      or (k.idem and string.sub(k.idem, 1, #base + 5) ~= base .. 'idem:') or keys[6] then
    fail('invalid_keys', 'KEYS must be the account key, its ledger, holds, hold expiries and request id record')
  end
  return k
end

-- The request id's record, for steps that take a request id.
local function idempotency_key(k)
  if not k.idem then fail('invalid_keys', 'this step takes its request id record as KEYS[5]') end
  return k.idem
end

local function load_account(k)
  local f = redis.call('HMGET', k.acct, 'status', 'balance', 'held', 'credit_limit', 'lms', 'hseq', 'promo', 'gnext', 'lseq', 'lseqms')
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
    promo = tonumber(f[7] or '0'),
    gnext = tonumber(f[8] or ''),
    lseq = tonumber(f[9] or ''),
    lseqms = tonumber(f[10] or ''),
  }
end

-- The id of the next entry in the account's streams: the ledger and the payment history
-- share one sequence (a credit entry is copied to both under its ledger id; a deposit's note
-- is written to the payment history only). At the engine's time, or, when the clock is not
-- past the last id, at the last id's ms with the next sequence number: ids always increase
-- and never run ahead of the clock by more than the clock fell behind. 'lseq' is the last
-- sequence used at the ms 'lseqms'; when that is not 'lms' (an account written before they
-- were kept, or by an older library during a rolling upgrade, which sets 'lms' alone), the
-- sequence is unknown and the id moves on to the next ms.
local function next_entry_id(k, a, now)
  local ms, seq = now, 0
  if a.lms >= now then
    ms = a.lms
    if a.lseq and a.lseqms == a.lms then seq = a.lseq + 1 else ms = a.lms + 1 end
  end
  a.lms, a.lseq, a.lseqms = ms, seq, ms
  redis.call('HSET', k.acct, 'lms', fmt(ms), 'lseq', fmt(seq), 'lseqms', fmt(ms))
  return fmt(ms) .. '-' .. fmt(seq)
end

local function available(a)
  return a.balance - a.held
end

-- Refuses a credit of amount that would take the balance, or for promotional credit also the
-- promotional part, past 2^53 micro-credits (beyond it doubles are inexact and a reply no
-- longer reads). The promotional part is checked on its own: on a credit line in debt it is
-- larger than the balance. Called before anything is written (expiry only lowers both):
-- Redis does not roll back a function that fails after writing.
local function ensure_room_for_credit(a, amount, promotional)
  if a.balance + amount > MAX_AMOUNT or (promotional and a.promo + amount > MAX_AMOUNT) then
    fail('amount_out_of_range', 'the balance would exceed 2^53 micro-credits')
  end
end

-- The one reply shape of every account step:
--   1 outcome 'ok' | 'denied'   2 reason ('' when ok)   3 balance   4 held   5 credit_limit
--   6 status   7 ledger entry id ('' if none)   8 hold seq ('' if none)
--   9 amount applied (debited, credited, reserved, captured, released; for authorize the cost)
--   10 detail (hold: expiry ms; capture/report/settle/release: total captured on the hold)
--   11 replayed (0 | 1)   12 retry_after_ms (-1 when waiting does not help)
--   13 limits: flat array of (name, limit, remaining, reset_ms) for each limit that applied
--   14 promotional: the part of balance that is promotional credit
local function reply(a, outcome, reason, entry_id, hold_seq, amount, detail, retry_after, limits)
  return { outcome, reason or '', a.balance, a.held, a.credit_limit, a.status,
           entry_id or '', hold_seq or '', amount or 0, detail or 0, 0, retry_after or -1, limits or {},
           a.promo }
end

local function denied(a, reason)
  return reply(a, 'denied', reason)
end

local USAGE_KINDS = { debit = true, capture = true, refund = true, void = true }
local PAYMENT_KINDS = { topup = true, deposit = true, coupon = true, grant = true, adjustment = true }

-- Adds a usage charge (cost in micro-credits, quantity) to the account's aggregates of the
-- current hour, day and month, so a breakdown reads O(groups), never the ledger.
-- Adds to one aggregate field. The aggregates are reports, not money: a field that would
-- leave Redis's 64-bit integers (quantities near 2^53 of a free meter, piling up) stays at
-- the bound instead of failing the step, which has written its ledger entry and debit
-- already (Redis does not roll a function back). No extra call unless it overflows.
local AGGREGATE_BOUND = '9223372036854775807'
local function add_to_aggregate(key, field, delta)
  local done = redis.pcall('HINCRBY', key, field, fmt(delta))
  if type(done) == 'table' and done.err then
    redis.call('HSET', key, field, (delta < 0 and '-' or '') .. AGGREGATE_BOUND)
  end
end

local function aggregate_usage(k, cost, usage)
  local group = '||'
  local quantity = 0
  if usage then
    group = usage.meter .. '|' .. usage.model .. '|' .. (usage.key or '')
    quantity = usage.quantity
  end
  local p = current_periods
  for _, bucket in ipairs({ 'u:h:' .. fmt(p.h), 'u:d:' .. fmt(p.d), 'u:m:' .. fmt(p.m) }) do
    add_to_aggregate(k.base .. bucket, 'c|' .. group, cost)
    if quantity ~= 0 then add_to_aggregate(k.base .. bucket, 'q|' .. group, quantity) end
  end
end

-- Appends one ledger entry. Entry ids are '<ms>-<n>', ms never going backwards, so the
-- ledger is ordered even if the engine's clock steps back. usage, when given, names the
-- meter, model, quantity and key the entry charges for; extra is a flat list of further
-- fields (ref, expires, flag). From the same step it keeps the usage aggregates and the
-- payment history, and announces the change (05_events.lua).
local function append_ledger(k, a, now, kind, amount, held_delta, request_id, hold_seq, usage, extra)
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
  if extra then
    for _, v in ipairs(extra) do fields[#fields + 1] = v end
  end
  local id = redis.call('XADD', k.ledger, next_entry_id(k, a, now), unpack(fields))
  if USAGE_KINDS[kind] then
    aggregate_usage(k, -amount, usage)
  elseif PAYMENT_KINDS[kind] or (kind == 'expire' and amount ~= 0) then
    redis.call('XADD', k.payments, id, unpack(fields))
  end
  publish_change(k.acct, id, kind, amount, a.balance, a.held, now)
  return id
end

-- What a step wants kept beside its stored reply for a later void (65_void.lua): the
-- promotional credit a debit used ('pu') and the latest expiry it came from ('pe'), and how
-- many ledger lines it wrote ('n'). Set by the body of idempotent(); nil otherwise.
local idem_note = nil

-- replay_of(k, fingerprint): the first reply to this request id, marked replayed, or nil when
-- there is none; the same id for a different operation is refused.
-- idempotent(k, fingerprint, body): runs body() once per request id. A retry with the same id and the same operation gets the
-- first reply back, marked replayed, and changes nothing; the same id for a different
-- operation is refused. Denials are not stored: a retry is decided afresh.
local function replay_of(k, fingerprint)
  local stored = redis.call('GET', idempotency_key(k))
  if not stored then return nil end
  local record = cmsgpack.unpack(stored)
  if record[1] ~= fingerprint then
    fail('idempotency_conflict', 'this request id was already used for a different operation')
  end
  local first = record[2]
  first[11] = 1
  return first
end

local function idempotent(k, fingerprint, body)
  local first = replay_of(k, fingerprint)
  if first then return first end
  idem_note = nil
  local result = body()
  if result[1] == 'ok' then
    redis.call('SET', k.idem, cmsgpack.pack({ fingerprint, result, idem_note or {} }), 'PX', IDEMPOTENCY_TTL_MS)
  end
  return result
end
