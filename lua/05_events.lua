-- Change events. Every ledger entry is also announced on the channel 'tg:events' from the
-- same step, so subscribers see each change as it is written; the ledger itself is the
-- durable, ordered record a subscriber resumes from (the entry id is the event id).
--
-- Message: '<entry id>|<kind>|<amount>|<balance>|<held>|<time ms>|<account key>' (integers
-- of micro-credits; the account key is last because only it may contain '|').
local EVENTS_CHANNEL = 'tg:events'

local function publish_change(acct_key, entry_id, kind, amount, balance, held, now)
  redis.call('PUBLISH', EVENTS_CHANNEL, entry_id .. '|' .. kind .. '|' .. string.format('%d', amount) .. '|' ..
    string.format('%d', balance) .. '|' .. string.format('%d', held) .. '|' .. string.format('%d', now) .. '|' .. acct_key)
end
