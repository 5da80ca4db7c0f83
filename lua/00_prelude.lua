#!lua name=tollgate
-- Tollgate's atomic state transitions, one Redis Functions library assembled from lua/*.lua
-- in file-name order. This folder is the only place they are written.
--
-- Contract with the engine (TollgateCore):
--   * KEYS are built by the engine; every key of one account shares the hash tag {a:ID} (I7).
--   * ARGV[1] is always the engine's clock in milliseconds; scripts never call TIME (I6).
--   * Amounts are integers of micro-credits, checked to stay below 2^53 (Lua numbers are doubles).
--   * Every check runs before the first write, so a refused call changes nothing (I5).
--   * Replies have one fixed shape (see reply() below); errors are 'TOLLGATE <code> <message>'.

local MAX_AMOUNT = 9007199254740991      -- 2^53 - 1 micro-credits
local MAX_TTL_MS = 7 * 24 * 3600 * 1000  -- holds live at most a week
local IDEMPOTENCY_TTL_MS = 25 * 3600 * 1000 -- request ids are kept at least 24 h (I3)

local function fmt(n)
  return string.format('%d', n)
end

-- Raises a Tollgate error reply. Only called before the first write of a step.
local function fail(code, message)
  error({ err = 'TOLLGATE ' .. code .. ' ' .. message })
end

local function integer_arg(value, name, min, max)
  if type(value) ~= 'string' or not string.match(value, '^%-?%d+$') then
    fail('invalid_argument', name .. ' must be an integer')
  end
  local n = tonumber(value)
  if n == nil or n < min or n > max then
    fail('invalid_argument', name .. ' must be between ' .. fmt(min) .. ' and ' .. fmt(max))
  end
  return n
end

local function amount_arg(value, name)
  return integer_arg(value, name, 1, MAX_AMOUNT)
end
