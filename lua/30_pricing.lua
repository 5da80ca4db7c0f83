-- Prices are exact rationals: `price` micro-credits per `per` units. Charging q units adds
-- q * price to the account's carry for that meter and model, charges the whole micro-credits
-- and carries the rest, so any split of a usage into batches (or back out, with negative q at
-- settle) charges floor((carry + price * total) / per): never off by more than 1 micro-credit.

-- Reads usage items from args starting at `first`: count, then per item meter, model,
-- quantity, price (-1: no price for this meter) and per.
local function usage_arg(args, first)
  local n = integer_arg(args[first], 'usage count', 0, 64)
  local items = {}
  local index = first + 1
  for i = 1, n do
    local meter, model = args[index], args[index + 1]
    if type(meter) ~= 'string' or meter == '' then fail('invalid_argument', 'a usage item needs a meter') end
    local item = {
      meter = meter, model = model or '',
      quantity = integer_arg(args[index + 2], 'quantity', 0, MAX_AMOUNT),
      price = integer_arg(args[index + 3], 'price', -1, MAX_AMOUNT),
      per = integer_arg(args[index + 4], 'per', 1, MAX_AMOUNT),
    }
    item.name = meter
    if item.model ~= '' then item.name = meter .. '@' .. item.model end
    item.is_tokens = string.sub(meter, 1, 7) == 'tokens.'
    if item.price >= 0 and item.quantity * item.price > MAX_AMOUNT - item.per then
      fail('invalid_argument', 'quantity * price of ' .. item.name .. ' exceeds 2^53 micro-credits')
    end
    items[i] = item
    index = index + 5
  end
  return items, index
end

local function has_unpriced(items)
  for _, item in ipairs(items) do
    if item.price < 0 then return true end
  end
  return false
end

local function token_count(items)
  local n = 0
  for _, item in ipairs(items) do
    if item.is_tokens then n = n + item.quantity end
  end
  return n
end

-- The carries of the items' meters, by item name.
local function load_carries(k, items)
  local carries = {}
  if #items == 0 then return carries end
  local fields = {}
  for i, item in ipairs(items) do fields[i] = 'c:' .. item.name end
  local values = redis.call('HMGET', k.acct, unpack(fields))
  for i, item in ipairs(items) do carries[item.name] = tonumber(values[i] or '0') end
  return carries
end

-- Charges quantity (negative: gives back) of an item against the carries; returns the cost.
local function charge_units(carries, item, quantity)
  local cost, rest = floor_div((carries[item.name] or 0) + quantity * item.price, item.per)
  carries[item.name] = rest
  return cost
end

local function save_carries(k, carries)
  local flat = {}
  for name, rest in pairs(carries) do
    flat[#flat + 1] = 'c:' .. name
    flat[#flat + 1] = fmt(rest)
  end
  if #flat > 0 then redis.call('HSET', k.acct, unpack(flat)) end
end

-- What a hold reserves for an estimate: every item rounded up, no carry involved.
local function estimate_cost(items)
  local total = 0
  for _, item in ipairs(items) do
    total = total + ceil_div(item.quantity * item.price, item.per)
  end
  return total
end
