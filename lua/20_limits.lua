-- Limits, on the account and on an API key, kept as fields of the account hash: the account's
-- plainly, a key's under the prefix 'k:<key id>:'.
--   lim:<name>   configured value (absent: no such limit); names in LIMIT_NAMES
--   st:<window>  GCRA state 't,excess' of rps, rpm, rph and tpm
--   sp:<h|d|m>   spend in the current UTC hour/day/month, 'period id,amount'; sp:life: lifetime
--   open         open holds made through this scope
--   deny:<why>   how many calls were denied, by reason
--
-- Rates use GCRA in exact integers: a limit of `rate` per `period` ms with burst `burst` keeps
-- an excess in units of ms*rate; a call costing n adds n*period, admitted while the excess
-- stays within burst*period, and the excess drains by `rate` per ms. So `rpm 5` admits 5 at
-- once, then one every 12 s, exactly at the millisecond.

local LIMIT_NAMES = { 'rps', 'rpm', 'rph', 'burst', 'tpm', 'conc', 'cap_h', 'cap_d', 'cap_m', 'cap_life' }
local REQUEST_WINDOWS = { { name = 'rps', period = 1000 }, { name = 'rpm', period = 60000 }, { name = 'rph', period = 3600000 } }
local TOKEN_PERIOD = 60000
local CAP_PERIODS = { { name = 'cap_h', period = 'h' }, { name = 'cap_d', period = 'd' }, { name = 'cap_m', period = 'm' } }
local MAX_LIMIT = 1000000000  -- 1e9: keeps burst * period (up to an hour) below 2^53, exact in doubles

-- The fields of one scope, without its prefix. (Plain loops: while a library loads, Redis
-- offers no globals such as ipairs.)
local SCOPE_FIELDS = {
  'lim:rps', 'lim:rpm', 'lim:rph', 'lim:burst', 'lim:tpm', 'lim:conc', 'lim:cap_h', 'lim:cap_d', 'lim:cap_m', 'lim:cap_life',
  'st:rps', 'st:rpm', 'st:rph', 'st:tpm', 'sp:h', 'sp:d', 'sp:m', 'sp:life', 'open',
}

-- The current UTC periods, from ARGV[2..7]: hour, day and month as (id, end ms).
-- They must be the periods that contain now, or the step is refused: spend counted under the
-- wrong period would pass a cap or be forgotten. Swift computes them (SpendPeriods); this only
-- checks them, the month through the first day of a month (Hinnant's days_from_civil).
local HOUR_MS, DAY_MS = 3600000, 86400000
local function month_first_day(month_id)  -- months since year 0 -> days since 1970-01-01
  local year, month = math.floor(month_id / 12), month_id % 12 + 1
  if month <= 2 then year = year - 1 end
  local era = math.floor(year / 400)
  local year_of_era = year - era * 400
  local day_of_year = math.floor((153 * (month > 2 and month - 3 or month + 9) + 2) / 5)
  return era * 146097 + year_of_era * 365 + math.floor(year_of_era / 4) - math.floor(year_of_era / 100) + day_of_year - 719468
end

local function periods_arg(args, now)
  local p = {
    h = integer_arg(args[2], 'hour', 0, MAX_AMOUNT), h_end = integer_arg(args[3], 'hour end', 0, MAX_AMOUNT),
    d = integer_arg(args[4], 'day', 0, MAX_AMOUNT), d_end = integer_arg(args[5], 'day end', 0, MAX_AMOUNT),
    m = integer_arg(args[6], 'month', 0, MAX_AMOUNT), m_end = integer_arg(args[7], 'month end', 0, MAX_AMOUNT),
  }
  local next_month = month_first_day(p.m + 1)
  if p.h_end ~= (p.h + 1) * HOUR_MS or now < p.h * HOUR_MS or now >= p.h_end
      or p.d_end ~= (p.d + 1) * DAY_MS or now < p.d * DAY_MS or now >= p.d_end
      or p.d < month_first_day(p.m) or p.d >= next_month or p.m_end ~= next_month * DAY_MS then
    fail('invalid_argument', 'the periods do not contain now')
  end
  return p
end

-- Loads the limits and state of the given scopes ({prefix, label}) with one HMGET.
local function load_scopes(k, wanted)
  local fields = {}
  for _, w in ipairs(wanted) do
    for _, f in ipairs(SCOPE_FIELDS) do fields[#fields + 1] = w.prefix .. f end
  end
  local values = redis.call('HMGET', k.acct, unpack(fields))
  local scopes, i = {}, 0
  for _, w in ipairs(wanted) do
    local s = { prefix = w.prefix, label = w.label, lim = {}, raw = {}, writes = {} }
    for _, f in ipairs(SCOPE_FIELDS) do
      i = i + 1
      s.raw[f] = values[i]
    end
    -- The first fields of SCOPE_FIELDS are the limits, in LIMIT_NAMES order.
    for j = 1, #LIMIT_NAMES do
      local v = s.raw[SCOPE_FIELDS[j]]
      if v then
        s.lim[LIMIT_NAMES[j]] = tonumber(v)
        s.limited = true
      end
    end
    s.open = tonumber(s.raw['open'] or '0')
    scopes[#scopes + 1] = s
  end
  return scopes
end

local function account_scope_spec()
  return { prefix = '', label = 'account' }
end

local function key_scope_spec(key_id)
  return { prefix = 'k:' .. key_id .. ':', label = 'key' }
end

-- The excess of a GCRA window drained to now.
local function gcra_excess(s, window, now, rate)
  local raw = s.raw['st:' .. window]
  if not raw then return 0 end
  local t, e = string.match(raw, '^(%-?%d+),(%d+)$')
  local elapsed = now - tonumber(t)
  if elapsed < 0 then elapsed = 0 end
  local d = tonumber(e) - elapsed * rate
  if d < 0 then return 0 end
  return d
end

local function set_gcra(s, window, now, excess)
  s.writes['st:' .. window] = fmt(now) .. ',' .. fmt(excess)
  s.raw['st:' .. window] = s.writes['st:' .. window]
end

local function spent(s, which, periods)
  local raw = s.raw['sp:' .. which]
  if not raw then return 0 end
  if which == 'life' then return tonumber(raw) end
  local p, amount = string.match(raw, '^(%-?%d+),(%-?%d+)$')
  if tonumber(p) ~= periods[which] then return 0 end
  return tonumber(amount)
end

local function add_spend(s, periods, amount)
  for _, which in ipairs({ 'h', 'd', 'm' }) do
    local v = spent(s, which, periods) + amount
    if v < 0 then v = 0 end
    s.writes['sp:' .. which] = fmt(periods[which]) .. ',' .. fmt(v)
    s.raw['sp:' .. which] = s.writes['sp:' .. which]
  end
  local life = spent(s, 'life', periods) + amount
  if life < 0 then life = 0 end
  s.writes['sp:life'] = fmt(life)
  s.raw['sp:life'] = s.writes['sp:life']
end

-- Takes spend back off the scope: back.h, back.d and back.m off the current periods, back.life
-- off the lifetime (see hold_give_back_spend in 40_holds.lua for how much).
local function take_spend(s, periods, back)
  for _, which in ipairs({ 'h', 'd', 'm' }) do
    local v = spent(s, which, periods) - back[which]
    if v < 0 then v = 0 end
    s.writes['sp:' .. which] = fmt(periods[which]) .. ',' .. fmt(v)
    s.raw['sp:' .. which] = s.writes['sp:' .. which]
  end
  local life = spent(s, 'life', periods) - back.life
  if life < 0 then life = 0 end
  s.writes['sp:life'] = fmt(life)
  s.raw['sp:life'] = s.writes['sp:life']
end

local function ceil_div(a, b)
  local q, r = floor_div(a, b)
  if r > 0 then q = q + 1 end
  return q
end

-- Checks a call against every limit of every scope without changing anything.
--   need: { slot = 0|1 (an open hold), requests = 0|1, tokens = n, spend = micro-credits }
-- Returns the denial reason (or nil), retry_after_ms (-1 when waiting does not help), the
-- limits report as a flat array (after the call when allowed, else as things stand), and the
-- report as things stand (for a call refused later, by the balance). What to write when
-- allowed is kept in each scope for consume_limits.
local function evaluate_limits(scopes, now, periods, need)
  local failures = { concurrency = nil, rate = nil, tokens = nil, caps = nil }
  local function fail_with(category, retry)
    local current = failures[category]
    if current == nil then
      failures[category] = retry
    elseif current ~= -1 and (retry == -1 or retry > current) then
      failures[category] = retry
    end
  end
  -- Each limit is reported as it stands after the call if the call is allowed, else as it
  -- stands now: (name, limit, remaining and reset when allowed, remaining and reset when not).
  local rows = {}
  local function add_report(s, name, limit, remaining, reset, remaining_now, reset_now)
    rows[#rows + 1] = { s.label .. '.' .. name, limit, remaining, reset, remaining_now, reset_now }
  end

  for _, s in ipairs(scopes) do
    -- A scope with no limit set has nothing to check or report (its spend is still counted).
    if s.limited then
    local conc = s.lim.conc
    if conc then
      local after = s.open + need.slot
      if need.slot > 0 and after > conc then fail_with('concurrency', -1) end
      add_report(s, 'concurrency', conc, conc - after, 0, conc - s.open, 0)
    end
    -- One GCRA window: `cost` units against `rate` per `period` with burst `burst`.
    local function check_window(window, rate, period, burst, cost, category)
      local capacity = burst * period
      local excess = gcra_excess(s, window, now, rate)
      local needed = excess + cost * period
      local after = needed
      if cost > 0 then
        if needed > capacity then
          -- A call larger than the whole burst never fits: waiting does not help.
          if cost > burst then fail_with(category, -1) else fail_with(category, ceil_div(needed - capacity, rate)) end
          after = excess
        else
          s.pending_gcra = s.pending_gcra or {}
          s.pending_gcra[window] = needed
        end
      end
      add_report(s, window, rate, math.floor((capacity - after) / period), ceil_div(after, rate),
        math.floor((capacity - excess) / period), ceil_div(excess, rate))
    end
    for _, w in ipairs(REQUEST_WINDOWS) do
      local rate = s.lim[w.name]
      if rate then check_window(w.name, rate, w.period, s.lim.burst or rate, need.requests, 'rate') end
    end
    local tpm = s.lim.tpm
    if tpm then check_window('tpm', tpm, TOKEN_PERIOD, tpm, need.tokens, 'tokens') end
    for _, c in ipairs(CAP_PERIODS) do
      local cap = s.lim[c.name]
      if cap then
        local used = spent(s, c.period, periods)
        local after = used + need.spend
        local reset = periods[c.period .. '_end'] - now
        if need.spend > 0 and after > cap then
          -- A new period starts from zero: waiting helps only if the call alone fits the cap.
          if need.spend > cap then fail_with('caps', -1) else fail_with('caps', reset) end
          after = used
        end
        add_report(s, c.name, cap, cap - after, reset, cap - used, reset)
      end
    end
    local life = s.lim.cap_life
    if life then
      local used = spent(s, 'life', periods)
      local after = used + need.spend
      if need.spend > 0 and after > life then
        fail_with('caps', -1)
        after = used
      end
      add_report(s, 'cap_life', life, life - after, 0, life - used, 0)
    end
    end
  end

  local denied_by = nil
  for _, category in ipairs({ 'concurrency', 'rate', 'tokens', 'caps' }) do
    if failures[category] ~= nil then denied_by = category; break end
  end
  local function flatten(remaining_at, reset_at)
    local flat = {}
    for _, row in ipairs(rows) do
      local remaining = row[remaining_at]
      if remaining < 0 then remaining = 0 end
      flat[#flat + 1] = row[1]
      flat[#flat + 1] = row[2]
      flat[#flat + 1] = remaining
      flat[#flat + 1] = row[reset_at]
    end
    return flat
  end
  local report_now, report = {}, {}
  if #rows > 0 then
    report_now = flatten(5, 6)
    report = report_now
    if not denied_by then report = flatten(3, 4) end
  end

  local reasons = { concurrency = 'concurrency_limited', rate = 'rate_limited',
                    tokens = 'token_rate_limited', caps = 'spend_cap_reached' }
  if denied_by then return reasons[denied_by], failures[denied_by], report, report_now end
  return nil, -1, report, report_now
end

-- Applies what evaluate_limits allowed: rate states, spend, open holds.
local function consume_limits(scopes, now, periods, need)
  for _, s in ipairs(scopes) do
    for window, excess in pairs(s.pending_gcra or {}) do set_gcra(s, window, now, excess) end
    if need.spend ~= 0 then add_spend(s, periods, need.spend) end
    if need.slot ~= 0 then
      s.open = s.open + need.slot
      s.writes['open'] = fmt(s.open)
    end
  end
end

-- Adds tokens to (or with a negative count, gives back to) the token-rate allowance, without
-- a check: for usage already delivered and reservations not used.
local function adjust_tokens(s, now, tokens)
  local tpm = s.lim.tpm
  if not tpm or tokens == 0 then return end
  local excess = gcra_excess(s, 'tpm', now, tpm) + tokens * TOKEN_PERIOD
  if excess < 0 then excess = 0 end
  -- Unchecked usage can be huge (2^53 tokens at price 0). Beyond 2^63 fmt writes garbage that
  -- breaks every later call, and beyond 2^53 doubles are inexact: keep the excess low enough
  -- that a call's tokens on top stay below 2^53 (at least one full window, for huge tpm). That
  -- still blocks the window for centuries at any ordinary tpm.
  local capacity = tpm * TOKEN_PERIOD
  local most = MAX_AMOUNT - capacity
  if most < capacity then most = capacity end
  if excess > most then excess = most end
  set_gcra(s, 'tpm', now, excess)
end

local function save_scopes(k, scopes)
  local flat = {}
  for _, s in ipairs(scopes) do
    for f, v in pairs(s.writes) do
      flat[#flat + 1] = s.prefix .. f
      flat[#flat + 1] = v
    end
    s.writes = {}
  end
  if #flat > 0 then redis.call('HSET', k.acct, unpack(flat)) end
end

local function count_denial(k, scopes, reason)
  for _, s in ipairs(scopes) do
    redis.call('HINCRBY', k.acct, s.prefix .. 'deny:' .. reason, 1)
  end
end
