-- The gateway's decision, one atomic step (I5): authorize a call, report usage against its
-- hold, settle it. ARGV after now and periods:
--   authorize: mode ('debit'|'hold'), ttl_ms, request_id, key_id ('' when by account),
--              key_hash, then usage (usage_arg)
--   report:    hold_seq, request_id, usage
--   settle:    hold_seq, request_id, has_usage (0|1), usage

local function usage_fingerprint(items)
  local parts = {}
  for i, item in ipairs(items) do parts[i] = item.name .. '=' .. fmt(item.quantity) end
  return table.concat(parts, ',')
end

local function denied_by_limits(a, reason, retry, report)
  local r = reply(a, 'denied', reason)
  r[12] = retry or -1
  r[13] = report or {}
  return r
end

redis.register_function('authorize', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local mode = args[8]
  if mode ~= 'debit' and mode ~= 'hold' then fail('invalid_argument', 'mode must be debit or hold') end
  local ttl = 0
  if mode == 'hold' then ttl = integer_arg(args[9], 'ttl_ms', 1, MAX_TTL_MS) end
  local request_id, key_id, key_hash = args[10], args[11] or '', args[12] or ''
  local items = usage_arg(args, 13)
  if #items == 0 then fail('invalid_argument', 'usage must name at least one item') end
  local a = load_account(k)
  local fingerprint = 'authorize|' .. mode .. '|' .. fmt(ttl) .. '|' .. key_id .. '|' .. usage_fingerprint(items)
  return idempotent(k, fingerprint, function()
    expire_due(k, a, now, periods)
    local wanted = { account_scope_spec() }
    if key_id ~= '' then wanted[2] = key_scope_spec(key_id) end
    local scopes = load_scopes(k, wanted)
    local function deny(reason, retry, report)
      count_denial(k, scopes, reason)
      return denied_by_limits(a, reason, retry, report)
    end
    if key_id ~= '' then
      local key = redis.call('HMGET', k.acct, 'k:' .. key_id .. ':status', 'k:' .. key_id .. ':hash')
      if not key[1] or key[2] ~= key_hash then
        scopes = { scopes[1] }
        return deny('unknown_key')
      end
      if key[1] ~= 'active' then return deny('key_revoked') end
    end
    if a.status == 'frozen' then return deny('account_frozen') end
    if a.status ~= 'active' then return deny('account_closed') end
    if has_unpriced(items) then return deny('unknown_meter') end

    local tokens = token_count(items)
    local carries, lines, cost = nil, {}, 0
    if mode == 'debit' then
      carries = load_carries(k, items)
      for i, item in ipairs(items) do
        local c = charge_units(carries, item, item.quantity)
        lines[i] = c
        cost = cost + c
      end
    else
      cost = estimate_cost(items)
    end
    local need = { slot = 0, requests = 1, tokens = tokens, spend = cost }
    if mode == 'hold' then need.slot = 1 end
    local reason, retry, report, report_now = evaluate_limits(scopes, now, periods, need)
    if reason then return deny(reason, retry, report) end
    if available(a) - cost < -a.credit_limit then return deny('insufficient_credit', -1, report_now) end

    consume_limits(scopes, now, periods, need)
    save_scopes(k, scopes)
    if mode == 'debit' then
      save_carries(k, carries)
      local entry_id = ''
      idem_note = { pu = 0, pe = 0, n = #items }
      for i, item in ipairs(items) do
        local pu, pe = take_credit(k, a, lines[i])
        idem_note.pu = idem_note.pu + pu
        idem_note.pe = math.max(idem_note.pe, pe)
        entry_id = append_ledger(k, a, now, 'debit', -lines[i], 0, request_id, '',
          { meter = item.meter, model = item.model, quantity = item.quantity, key = key_id })
      end
      return reply(a, 'ok', '', entry_id, '', cost, 0, -1, report)
    end
    local seq = fmt(redis.call('HINCRBY', k.acct, 'hseq', 1))
    local expires = now + ttl
    local hold = { r = cost, c = 0, n = 0, x = expires, q = request_id, k = key_id, tr = tokens, tu = 0, u = {}, lim = 1 }
    hold_count_spend(hold, periods, cost)
    write_hold(k, seq, hold)
    redis.call('ZADD', k.holdexp, fmt(expires), seq)
    a.held = redis.call('HINCRBY', k.acct, 'held', fmt(cost))
    local id = append_ledger(k, a, now, 'hold', 0, cost, request_id, seq)
    return reply(a, 'ok', '', id, seq, cost, expires, -1, report)
  end)
end)

-- Charges quantity of item against the carries as a ledger line of the hold's usage.
local function usage_line(carries, item, quantity, key_id)
  return {
    cost = charge_units(carries, item, quantity),
    usage = { meter = item.meter, model = item.model, quantity = quantity, key = key_id },
  }
end

-- Notes a reported batch on the hold: its quantity, and 'a', the micro-credits it actually
-- charged (at whatever price was current), so a refund at settle is bounded by it. A record
-- written before 'a' was kept has none; its refunds are bounded by the hold's net charge.
local function remember_usage(h, item, quantity, cost)
  local seen = h.u[item.name]
  if seen then
    seen.q = seen.q + quantity
    if seen.a then seen.a = seen.a + cost end
  else
    h.u[item.name] = { q = quantity, p = item.price, per = item.per, meter = item.meter, model = item.model, a = cost }
  end
end

-- Bounds a settle's refund line for one item by what the hold actually charged for it
-- (seen.a) and by what the hold still has charged, net, after the refunds before it
-- (left[1]). Prices change: the reports may have charged less than the first report's
-- price times the quantity, and a refund must never give back more than was paid.
local function bound_refund(line, seen, left)
  local bound = left[1]
  if seen.a and seen.a < bound then bound = seen.a end
  if bound < 0 then bound = 0 end
  if -line.cost > bound then line.cost = -bound end
  left[1] = left[1] + line.cost
  return line
end

-- report(hold_seq, request_id, usage): charges a usage batch against the hold as it comes.
redis.register_function('report', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local seq = fmt(integer_arg(args[8], 'hold', 1, MAX_AMOUNT))
  local request_id = args[9]
  local items = usage_arg(args, 10)
  if #items == 0 then fail('invalid_argument', 'usage must name at least one item') end
  local a = load_account(k)
  return idempotent(k, 'report|' .. seq .. '|' .. usage_fingerprint(items), function()
    expire_due(k, a, now, periods)
    local h = read_hold(k, seq)
    if not h then return denied(a, 'hold_not_found') end
    if has_unpriced(items) then return denied(a, 'unknown_meter') end
    local carries = load_carries(k, items)
    local lines = {}
    for i, item in ipairs(items) do
      lines[i] = usage_line(carries, item, item.quantity, h.k)
      remember_usage(h, item, item.quantity, lines[i].cost)
    end
    local reason, entry_id, total = charge_hold(k, a, now, periods, seq, h, lines, token_count(items), request_id, true)
    if reason then return denied(a, reason) end
    save_carries(k, carries)
    write_hold(k, seq, h)
    return reply(a, 'ok', '', entry_id, seq, total, h.n)
  end)
end)

-- settle(hold_seq, request_id, has_usage, usage): with usage, the call's total final usage:
-- charges what the reports did not, refunds what they overcharged (at the price of the first
-- report, but never more than the reports of that item actually charged); without, settles on what was reported. Then releases the rest of the hold and
-- the token-rate allowance it did not use. Only the balance can refuse a settle.
redis.register_function('settle', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local seq = fmt(integer_arg(args[8], 'hold', 1, MAX_AMOUNT))
  local request_id = args[9]
  local has_usage = args[10] == '1'
  local items = usage_arg(args, 11)
  local a = load_account(k)
  local fingerprint = 'settle|' .. seq .. '|' .. tostring(has_usage) .. '|' .. usage_fingerprint(items)
  return idempotent(k, fingerprint, function()
    expire_due(k, a, now, periods)
    local h = read_hold(k, seq)
    if not h then return denied(a, 'hold_not_found') end
    local lines, tokens = {}, 0
    if has_usage then
      if has_unpriced(items) then return denied(a, 'unknown_meter') end
      local involved, final = {}, {}
      for _, item in ipairs(items) do
        involved[#involved + 1] = item
        final[item.name] = (final[item.name] or 0) + item.quantity
      end
      for name, seen in pairs(h.u) do
        if not final[name] then involved[#involved + 1] = { name = name } end
      end
      local carries = load_carries(k, involved)
      local settled = {}
      local left = { h.n or 0 }
      for _, item in ipairs(items) do
        if not settled[item.name] then
          settled[item.name] = true
          local seen = h.u[item.name]
          local delta = final[item.name] - ((seen and seen.q) or 0)
          if delta > 0 then
            lines[#lines + 1] = usage_line(carries, item, delta, h.k)
          elseif delta < 0 then
            local priced = { name = item.name, meter = item.meter, model = item.model, price = seen.p, per = seen.per }
            lines[#lines + 1] = bound_refund(usage_line(carries, priced, delta, h.k), seen, left)
          end
        end
      end
      for name, seen in pairs(h.u) do
        if not final[name] then
          local priced = { name = name, meter = seen.meter, model = seen.model, price = seen.p, per = seen.per }
          lines[#lines + 1] = bound_refund(usage_line(carries, priced, -seen.q, h.k), seen, left)
        end
      end
      tokens = token_count(items) - h.tu
      local reason = charge_hold(k, a, now, periods, seq, h, lines, tokens, request_id, false)
      if reason then return denied(a, reason) end
      save_carries(k, carries)
    end
    local net = h.n
    local id = close_hold(k, a, now, periods, seq, h, 'release', request_id)
    return reply(a, 'ok', '', id, seq, net, h.n)
  end)
end)
