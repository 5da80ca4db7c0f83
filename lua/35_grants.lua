-- Promotional credit (grants, coupons) and its expiry. balance = paid + promo; each grant is
-- a row in the grants hash (what is left of it) and the grantexp sorted set (its expiry, or
-- NEVER). Spending uses the soonest-expiring credit first, then paid credit; 'gnext' on the
-- account caches the soonest expiry so a step with nothing due costs no extra call.

local function refresh_grant_expiry(k, a)
  local first = redis.call('ZRANGE', k.grantexp, 0, 0, 'WITHSCORES')
  if first[1] then
    a.gnext = tonumber(first[2])
    redis.call('HSET', k.acct, 'gnext', first[2])
  else
    a.gnext = nil
    redis.call('HDEL', k.acct, 'gnext')
  end
end

-- Adds amount of promotional credit expiring at expires (ms, or NEVER); returns its seq.
local function add_grant(k, a, amount, expires)
  local seq = fmt(redis.call('HINCRBY', k.acct, 'gseq', 1))
  redis.call('HSET', k.grants, seq, fmt(amount))
  redis.call('ZADD', k.grantexp, fmt(expires), seq)
  a.promo = redis.call('HINCRBY', k.acct, 'promo', fmt(amount))
  a.balance = redis.call('HINCRBY', k.acct, 'balance', fmt(amount))
  if not a.gnext or expires < a.gnext then
    a.gnext = expires
    redis.call('HSET', k.acct, 'gnext', fmt(expires))
  end
  return seq
end

-- Takes amount off the balance: promotional credit first, soonest expiry first. Returns how
-- much promotional credit it used and the latest expiry among the grants it drew on.
local function take_credit(k, a, amount)
  a.balance = redis.call('HINCRBY', k.acct, 'balance', fmt(-amount))
  if amount <= 0 or a.promo <= 0 then return 0, 0 end
  local left = math.min(amount, a.promo)
  local used, latest = 0, 0
  while left > 0 do
    local first = redis.call('ZRANGE', k.grantexp, 0, 0, 'WITHSCORES')
    local seq = first[1]
    if not seq then break end
    local rest = tonumber(redis.call('HGET', k.grants, seq) or '0')
    local take = math.min(rest, left)
    rest = rest - take
    left = left - take
    used = used + take
    latest = math.max(latest, tonumber(first[2]))
    if rest <= 0 then
      redis.call('HDEL', k.grants, seq)
      redis.call('ZREM', k.grantexp, seq)
    else
      redis.call('HSET', k.grants, seq, fmt(rest))
    end
  end
  a.promo = redis.call('HINCRBY', k.acct, 'promo', fmt(-used))
  refresh_grant_expiry(k, a)
  return used, latest
end

-- Gives back amount to the balance (a refund of what a hold charged). The part that was
-- promotional credit returns as promotional credit, expiring when the latest grant it came
-- from did (so a refund never turns promotional credit into paid credit); the rest is paid.
local function give_back_credit(k, a, h, amount)
  local promo_part = math.min(amount, h.pu or 0)
  if promo_part > 0 then
    add_grant(k, a, promo_part, h.pe)
    h.pu = h.pu - promo_part
  end
  if amount > promo_part then
    a.balance = redis.call('HINCRBY', k.acct, 'balance', fmt(amount - promo_part))
  end
end

-- How much promotional credit may expire now: all of it but the part open holds still
-- reserve and paid credit does not cover. held = what open holds reserve; paid = balance -
-- promo (negative on a credit line in debt: it backs no hold then). Only that reservation
-- holds expiry back, never the balance being at or below zero: in debt, with no open hold,
-- every due grant expires. With paid >= 0 this is min(promo, max(0, available)).
local function expirable_promo(a)
  local paid = a.balance - a.promo
  local reserved = math.max(0, a.held - math.max(0, paid))
  return math.max(0, a.promo - reserved)
end

-- Expires the grants whose time has come, each with an 'expire' ledger entry dated at its
-- expiry. Credit an open hold still reserves is not taken (it would leave the hold backed by
-- nothing, or by the credit line); that part stays due and expires at a later step once the
-- hold lets go. Nothing else holds expiry back (see expirable_promo).
local function expire_grants(k, a, now)
  if not a.gnext or a.gnext > now then return end
  local due = redis.call('ZRANGEBYSCORE', k.grantexp, '-inf', now, 'WITHSCORES')
  for i = 1, #due, 2 do
    local seq, expires = due[i], tonumber(due[i + 1])
    local rest = tonumber(redis.call('HGET', k.grants, seq) or '0')
    local gone = math.min(rest, expirable_promo(a))
    if gone > 0 then
      a.balance = redis.call('HINCRBY', k.acct, 'balance', fmt(-gone))
      a.promo = redis.call('HINCRBY', k.acct, 'promo', fmt(-gone))
      append_ledger(k, a, expires, 'expire', -gone, 0, 'grant:' .. seq, '', nil, { 'ref', 'grant:' .. seq })
    end
    if gone >= rest then
      redis.call('HDEL', k.grants, seq)
      redis.call('ZREM', k.grantexp, seq)
    else
      redis.call('HSET', k.grants, seq, fmt(rest - gone))
    end
  end
  refresh_grant_expiry(k, a)
end
