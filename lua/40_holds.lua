-- Holds: credit reserved for a call in flight (I4). A hold record (msgpack map):
--   r reserved   c charged so far   x expires (ms)   q request id   k key id ('' if none)
--   n net charged (charges less refunds)   tr tokens reserved   tu tokens used
--   u what reports charged, by item name: {q quantity, p price of the first report, per, meter,
--     model, a micro-credits actually charged for it (bounds its refunds at settle)}
--   lim 1 when made by authorize (it counts on limits), 0 for a plain hold
--   sp  (lim 1) the spend it counted per period: {h, ha, d, da, m, ma, life} (hold_count_spend)
--   pu  promotional credit its charges used (refunds give it back as promotional credit)
--   pe  the latest expiry among the grants that credit came from

local function read_hold(k, seq)
  local packed = redis.call('HGET', k.holds, seq)
  if not packed then return nil end
  local h = cmsgpack.unpack(packed)
  h.u = h.u or {}
  return h
end

local function write_hold(k, seq, h)
  redis.call('HSET', k.holds, seq, cmsgpack.pack(h))
end

-- What is still reserved: charges first use up the reservation.
local function hold_remaining(h)
  local rest = h.r - h.c
  if rest < 0 then return 0 end
  return rest
end

local function hold_scopes(k, h)
  if h.lim ~= 1 then return {} end
  local wanted = { account_scope_spec() }
  if h.k ~= '' then wanted[2] = key_scope_spec(h.k) end
  return load_scopes(k, wanted)
end

-- A hold made by authorize counts its reservation, and whatever it charges beyond it, as spend
-- of the periods current at the time. What it gives back later (release, expiry, refunds at
-- settle) comes off only what it counted in periods that are still current: spend of an hour
-- that has ended is never taken off the next hour's, or a cap could be passed within an hour.
local function hold_count_spend(h, periods, amount)
  if amount <= 0 then return end
  local sp = h.sp or { life = 0 }
  for _, which in ipairs({ 'h', 'd', 'm' }) do
    if sp[which] == periods[which] then
      sp[which .. 'a'] = sp[which .. 'a'] + amount
    else
      sp[which] = periods[which]
      sp[which .. 'a'] = amount
    end
  end
  sp.life = sp.life + amount
  h.sp = sp
end

-- Takes up to amount of the hold's counted spend back off the scopes' spend.
local function hold_give_back_spend(scopes, h, periods, amount)
  if amount <= 0 or #scopes == 0 then return end
  local sp = h.sp or { life = 0 }
  local back = {}
  for _, which in ipairs({ 'h', 'd', 'm' }) do
    back[which] = 0
    if sp[which] == periods[which] then
      back[which] = math.min(amount, sp[which .. 'a'])
      sp[which .. 'a'] = sp[which .. 'a'] - back[which]
    end
  end
  back.life = math.min(amount, sp.life)
  sp.life = sp.life - back.life
  h.sp = sp
  for _, s in ipairs(scopes) do take_spend(s, periods, back) end
end

-- Closes a hold, giving back what it still reserves, the spend it counted for that, the
-- token-rate allowance it did not use and its concurrency slot. kind: 'release' or 'expire'.
local function close_hold(k, a, now, periods, seq, h, kind, request_id)
  local rest = hold_remaining(h)
  local scopes = hold_scopes(k, h)
  for _, s in ipairs(scopes) do
    s.open = s.open - 1
    if s.open < 0 then s.open = 0 end
    s.writes['open'] = fmt(s.open)
    adjust_tokens(s, now, -math.max(0, h.tr - h.tu))
  end
  hold_give_back_spend(scopes, h, periods, rest)
  save_scopes(k, scopes)
  a.held = a.held - rest
  redis.call('HINCRBY', k.acct, 'held', fmt(-rest))
  redis.call('HDEL', k.holds, seq)
  redis.call('ZREM', k.holdexp, seq)
  local id = append_ledger(k, a, now, kind, 0, -rest, request_id, seq)
  return id, rest
end

-- Every step on an account first expires the holds whose TTL has passed, so an unsettled
-- hold releases by itself at the engine's clock.
local function expire_holds(k, a, now, periods)
  local due = redis.call('ZRANGEBYSCORE', k.holdexp, '-inf', now)
  for _, seq in ipairs(due) do
    local h = read_hold(k, seq)
    if h then
      close_hold(k, a, now, periods, seq, h, 'expire', h.q)
    else
      redis.call('ZREM', k.holdexp, seq)
    end
  end
end

-- What every step owes the clock before it does anything: due holds release, then due
-- grants expire (after the holds, so credit the holds gave back can expire too).
local function expire_due(k, a, now, periods)
  expire_holds(k, a, now, periods)
  expire_grants(k, a, now)
end

-- Charges lines ({cost, usage}) against a hold: refunds (negative costs) first, then charges
-- from what the hold still reserves, then from available credit. tokens is the change in
-- tokens used. With enforce, anything beyond the hold must pass the account's status, every
-- limit and the balance, or nothing changes and the denial reason is returned; without
-- (settling usage already delivered) only the balance is enforced.
local function charge_hold(k, a, now, periods, seq, h, lines, tokens, request_id, enforce)
  local refunds, charges = 0, 0
  for _, line in ipairs(lines) do
    if line.cost < 0 then refunds = refunds - line.cost else charges = charges + line.cost end
  end
  local remaining = hold_remaining(h)
  local from_hold = math.min(charges, remaining)
  local excess = charges - from_hold
  local extra_tokens = math.max(0, h.tu + tokens - h.tr) - math.max(0, h.tu - h.tr)
  local scopes = hold_scopes(k, h)
  local need = { slot = 0, requests = 0, tokens = math.max(0, extra_tokens), spend = math.max(0, excess - refunds) }
  if excess > refunds then
    if a.status == 'frozen' then return 'account_frozen' end
    if a.status ~= 'active' then return 'account_closed' end
  end
  if enforce then
    local reason = evaluate_limits(scopes, now, periods, need)
    if reason then
      count_denial(k, scopes, reason)
      return reason
    end
  end
  if available(a) + refunds - excess < -a.credit_limit then
    count_denial(k, scopes, 'insufficient_credit')
    return 'insufficient_credit'
  end

  if enforce then
    need.spend = 0  -- counted below, with the hold
    consume_limits(scopes, now, periods, need)
  else
    for _, s in ipairs(scopes) do adjust_tokens(s, now, extra_tokens) end
  end
  if #scopes > 0 then
    if excess > 0 then
      hold_count_spend(h, periods, excess)
      for _, s in ipairs(scopes) do add_spend(s, periods, excess) end
    end
    hold_give_back_spend(scopes, h, periods, refunds)
  end
  save_scopes(k, scopes)

  -- Refunds first, so no intermediate balance is lower than the final one.
  table.sort(lines, function(x, y) return x.cost < y.cost end)
  local entry_id = ''
  local left = remaining
  for _, line in ipairs(lines) do
    local held_part = 0
    if line.cost > 0 then
      held_part = math.min(line.cost, left)
      left = left - held_part
    end
    if line.cost ~= 0 or line.usage then
      if line.cost >= 0 then
        local used, latest = take_credit(k, a, line.cost)
        if used > 0 then
          h.pu = (h.pu or 0) + used
          h.pe = math.max(h.pe or 0, latest)
        end
      else
        give_back_credit(k, a, h, -line.cost)
      end
      if held_part > 0 then a.held = redis.call('HINCRBY', k.acct, 'held', fmt(-held_part)) end
      local kind = 'capture'
      if line.cost < 0 then kind = 'refund' end
      entry_id = append_ledger(k, a, now, kind, -line.cost, -held_part, request_id, seq, line.usage)
    end
  end
  h.c = h.c + charges
  h.n = (h.n or 0) + charges - refunds
  h.tu = h.tu + tokens
  return nil, entry_id, charges - refunds
end
