-- Change events. Every ledger entry is also announced on the channel 'tg:events' from the
-- same step, so subscribers see each change as it is written; the ledger itself is the
-- durable, ordered record a subscriber resumes from (the entry id is the event id).
--
-- Message: '<entry id>|<kind>|<amount>|<balance>|<held>|<time ms>|<account key>' (integers
-- of micro-credits; the account key is last because only it may contain '|').
--
-- Low-balance alerts: an account may have a threshold (acct hash field 'alert_low', micro-
-- credits) and an arming flag ('alert_armed'). When a change takes available credit
-- (balance - held) below the threshold while armed, the same step disarms it and announces
-- '<entry id>|alert|<threshold>|<balance>|<held>|<time ms>|<account key>' right after the
-- change; a later change that brings available back to the threshold or above re-arms it.
-- So an alert fires once per crossing, atomically with the change that crossed.
local EVENTS_CHANNEL = 'tg:events'

local function event_message(entry_id, kind, amount, balance, held, now, acct_key)
  return entry_id .. '|' .. kind .. '|' .. string.format('%d', amount) .. '|' ..
    string.format('%d', balance) .. '|' .. string.format('%d', held) .. '|' .. string.format('%d', now) .. '|' .. acct_key
end

local function check_low_balance(acct_key, entry_id, balance, held, now)
  local f = redis.call('HMGET', acct_key, 'alert_low', 'alert_armed')
  if not f[1] then return end
  local threshold = tonumber(f[1])
  local avail = balance - held
  if f[2] == '1' then
    if avail < threshold then
      redis.call('HSET', acct_key, 'alert_armed', '0')
      redis.call('PUBLISH', EVENTS_CHANNEL, event_message(entry_id, 'alert', threshold, balance, held, now, acct_key))
    end
  elseif avail >= threshold then
    redis.call('HSET', acct_key, 'alert_armed', '1')
  end
end

local function publish_change(acct_key, entry_id, kind, amount, balance, held, now)
  redis.call('PUBLISH', EVENTS_CHANNEL, event_message(entry_id, kind, amount, balance, held, now, acct_key))
  check_low_balance(acct_key, entry_id, balance, held, now)
end
