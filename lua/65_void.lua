-- Voids and the fail-open journal (docs/RELIABILITY.md).
--
-- void(request_id): the engine did not get the reply of a decision in time and told the
-- caller 503, so the decision must not count. Whichever comes first in Redis:
--   * the void: it stores a tombstone under the request id, so the original, arriving late,
--     is refused (idempotency_conflict) and changes nothing;
--   * the original: the void undoes it. A debit (plain, or authorize in debit mode) is given
--     back with one 'void' ledger entry per debit line (same meter, model, key, negated
--     quantity), which also reverses its usage aggregates; the promotional credit it used
--     comes back as promotional credit. A hold (plain, or authorize in hold mode) is released.
--     Request-rate, token-rate and spend-cap counters and sub-micro carries are not given
--     back: the call counts against limits as if it had happened (the conservative side).
-- A second void of the same id replays the first. Only debit, hold and authorize can be
-- voided; anything else is refused and left as it is.

local function voided(a, entry_id, hold_seq, amount)
  return reply(a, 'ok', '', entry_id, hold_seq, amount, 0)
end

local function undo_debit(k, a, now, record, request_id)
  local first, note = record[2], record[3] or {}
  local last_id = first[7]
  if last_id == '' then return voided(a, '', '', 0) end
  local lines = tonumber(note.n) or 64
  local entries = redis.call('XREVRANGE', k.ledger, last_id, '-', 'COUNT', lines + 64)
  local promo = { pu = tonumber(note.pu) or 0, pe = tonumber(note.pe) or 0 }
  local refunded, entry_id, found = 0, '', 0
  for _, e in ipairs(entries) do
    if found >= lines then break end
    local f = {}
    for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
    if f.request_id == request_id and f.kind == 'debit' then
      found = found + 1
      local back = -tonumber(f.amount)
      local usage = nil
      if f.meter then
        usage = { meter = f.meter, model = f.model or '', quantity = -tonumber(f.quantity or '0'), key = f.key }
      end
      if back > 0 then give_back_credit(k, a, promo, back) end
      entry_id = append_ledger(k, a, now, 'void', back, 0, request_id, '', usage, { 'ref', e[1] })
      refunded = refunded + back
    end
  end
  return voided(a, entry_id, '', refunded)
end

local function undo_hold(k, a, now, periods, record, request_id)
  local seq = record[2][8]
  local h = seq ~= '' and read_hold(k, seq)
  if not h then return voided(a, '', seq, 0) end
  local id, rest = close_hold(k, a, now, periods, seq, h, 'release', request_id)
  return voided(a, id, seq, rest)
end

redis.register_function('void', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local request_id = args[8]
  if not request_id or request_id == '' or #request_id > 256 then
    fail('invalid_argument', 'a void names the request id it voids')
  end
  local stored_key = idempotency_key(k)
  local a = load_account(k)
  local stored = redis.call('GET', stored_key)
  local result
  if stored then
    local record = cmsgpack.unpack(stored)
    local fingerprint = record[1]
    if fingerprint == 'void' then
      local first = record[2]
      first[11] = 1
      return first
    end
    local is_debit = string.sub(fingerprint, 1, 16) == 'authorize|debit|' or string.sub(fingerprint, 1, 6) == 'debit|'
    local is_hold = string.sub(fingerprint, 1, 15) == 'authorize|hold|' or string.sub(fingerprint, 1, 5) == 'hold|'
    -- Refused before anything is written.
    if not is_debit and not is_hold then fail('invalid_argument', 'only a debit, a hold or an authorize can be voided') end
    expire_due(k, a, now, periods)
    if is_debit then
      result = undo_debit(k, a, now, record, request_id)
    else
      result = undo_hold(k, a, now, periods, record, request_id)
    end
  else
    result = voided(a, '', '', 0)
  end
  redis.call('SET', k.idem, cmsgpack.pack({ 'void', result, {} }), 'PX', IDEMPOTENCY_TTL_MS)
  return result
end)

-- journal_debit(request_id, key_id, usage): replays a call that was allowed while Redis was
-- unreachable (--fail-open) as the debit authorize would have made. It carries the same
-- fingerprint as that authorize, so whichever of the two reaches Redis second is a replay:
-- the call is charged once and only once. No limit and no balance can refuse it (the call was
-- served already); the account may go below its credit line, which is the price of fail-open.
redis.register_function('journal_debit', function(keys, args)
  local k, now, periods = step_start(keys, args)
  local request_id, key_id = args[8], args[9] or ''
  if not request_id or request_id == '' then fail('invalid_argument', 'a journal entry has a request id') end
  local items = usage_arg(args, 10)
  if #items == 0 then fail('invalid_argument', 'usage must name at least one item') end
  local a = load_account(k)
  local fingerprint = 'authorize|debit|0|' .. key_id .. '|' .. usage_fingerprint(items)
  return idempotent(k, fingerprint, function()
    expire_due(k, a, now, periods)
    if has_unpriced(items) then return denied(a, 'unknown_meter') end
    local carries = load_carries(k, items)
    local cost, entry_id = 0, ''
    idem_note = { pu = 0, pe = 0, n = #items }
    for _, item in ipairs(items) do
      local c = charge_units(carries, item, item.quantity)
      cost = cost + c
      local pu, pe = take_credit(k, a, c)
      idem_note.pu = idem_note.pu + pu
      idem_note.pe = math.max(idem_note.pe, pe)
      entry_id = append_ledger(k, a, now, 'debit', -c, 0, request_id, '',
        { meter = item.meter, model = item.model, quantity = item.quantity, key = key_id })
    end
    save_carries(k, carries)
    return reply(a, 'ok', '', entry_id, '', cost)
  end)
end)
