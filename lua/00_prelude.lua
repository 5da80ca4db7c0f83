#!lua name=tollgate
-- Tollgate's atomic state transitions, one Redis Functions library assembled from lua/*.lua
-- in file-name order. This folder is the only place they are written.
--
-- Contract with the engine (TollgateCore); I1..I7 are the invariants of docs/ARCHITECTURE.md:
--   * KEYS are built by the engine; every key of one account shares the hash tag {a:ID} (I7).
--     API keys live as fields of their account's hash, so no step touches another slot.
--   * ARGV[1] is always the engine's clock in milliseconds; scripts never call TIME (I6).
--     Steps that enforce spend caps also get the current UTC hour, day and month as
--     (id, end) pairs, computed once in Swift (SpendPeriods).
--   * Amounts are integers of micro-credits, checked to stay below 2^53 (Lua numbers are doubles).
--   * Every check runs before the first write, so a refused call changes nothing but the
--     account's deny counters (I5). Expiring due holds is the one write that may come first:
--     it is owed to the clock, not to the call.
--   * Replies have one fixed shape (see reply() in 10_account.lua); errors are
--     'TOLLGATE <code> <message>'.

local MAX_AMOUNT = 9007199254740991      -- 2^53 - 1 micro-credits
local MAX_TTL_MS = 7 * 24 * 3600 * 1000  -- holds live at most a week
local IDEMPOTENCY_TTL_MS = 25 * 3600 * 1000 -- request ids are kept at least 24 h (I3)
local NEVER = MAX_AMOUNT                 -- the expiry of credit that does not expire

-- The UTC periods of the step being run (set by step_start from ARGV[2..7]). Steps run one at
-- a time, so a library-level variable is safe; it saves passing them to every ledger write.
local current_periods = nil

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

-- Floor division and its non-negative remainder, exact for integers below 2^53.
local function floor_div(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  -- a / b is rounded; correct the quotient by one step either way.
  if r < 0 then q = q - 1; r = r + b elseif r >= b then q = q + 1; r = r - b end
  return q, r
end
