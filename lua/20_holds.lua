-- Holds: an amount reserved for a call in flight (I4).

local function read_hold(k, seq)
  local packed = redis.call('HGET', k.holds, seq)
  if not packed then return nil end
  local h = cmsgpack.unpack(packed)
  return { reserved = h[1], captured = h[2], expires = h[3], request_id = h[4] }
end

local function write_hold(k, seq, h)
  redis.call('HSET', k.holds, seq, cmsgpack.pack({ h.reserved, h.captured, h.expires, h.request_id }))
end

-- What is still reserved: captures first use up the reservation.
local function hold_remaining(h)
  local rest = h.reserved - h.captured
  if rest < 0 then return 0 end
  return rest
end

-- Closes a hold, giving back what is still reserved. kind is 'release' or 'expire'.
local function close_hold(k, a, now, seq, h, kind, request_id)
  local rest = hold_remaining(h)
  a.held = a.held - rest
  redis.call('HINCRBY', k.acct, 'held', fmt(-rest))
  redis.call('HDEL', k.holds, seq)
  redis.call('ZREM', k.holdexp, seq)
  local id = append_ledger(k, a, now, kind, 0, -rest, request_id, seq)
  return id, rest
end

-- Every step on an account first expires the holds whose TTL has passed, so an unsettled
-- hold releases by itself at the engine's clock.
local function expire_holds(k, a, now)
  local due = redis.call('ZRANGEBYSCORE', k.holdexp, '-inf', now)
  for _, seq in ipairs(due) do
    local h = read_hold(k, seq)
    if h then
      close_hold(k, a, now, seq, h, 'expire', h.request_id)
    else
      redis.call('ZREM', k.holdexp, seq)
    end
  end
end
