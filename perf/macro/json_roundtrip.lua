-- JSON round trip in Lua 5.4: the same records as json_roundtrip.harn. Lua has
-- no JSON library, so this file carries a small encoder (compact, object keys
-- sorted, a table with a [1] entry is an array; the records have no empty
-- lists) and a recursive-descent decoder for the subset it writes (no escapes,
-- integer numbers). The walk is the same as in the Harn program.
local concat, sort, byte, sub, find = table.concat, table.sort, string.byte, string.sub, string.find

local function encode(value, out)
  local kind = type(value)
  if kind == "table" then
    if value[1] ~= nil then
      out[#out + 1] = "["
      for i, item in ipairs(value) do
        if i > 1 then out[#out + 1] = "," end
        encode(item, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for key in pairs(value) do keys[#keys + 1] = key end
      sort(keys)
      out[#out + 1] = "{"
      for i, key in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = '"' .. key .. '":'
        encode(value[key], out)
      end
      out[#out + 1] = "}"
    end
  elseif kind == "string" then
    out[#out + 1] = '"' .. value .. '"'
  else
    out[#out + 1] = tostring(value)
  end
end

local decode_at

local function skip_space(text, pos)
  return (find(text, "[^ \t\r\n]", pos)) or pos
end

decode_at = function(text, pos)
  pos = skip_space(text, pos)
  local c = byte(text, pos)
  if c == 123 then -- {
    local object = {}
    pos = skip_space(text, pos + 1)
    if byte(text, pos) == 125 then return object, pos + 1 end
    while true do
      local key
      key, pos = decode_at(text, pos)
      pos = skip_space(text, pos) + 1 -- the colon
      object[key], pos = decode_at(text, pos)
      pos = skip_space(text, pos)
      local sep = byte(text, pos)
      pos = pos + 1
      if sep == 125 then return object, pos end
    end
  elseif c == 91 then -- [
    local array = {}
    pos = skip_space(text, pos + 1)
    if byte(text, pos) == 93 then return array, pos + 1 end
    while true do
      array[#array + 1], pos = decode_at(text, pos)
      pos = skip_space(text, pos)
      local sep = byte(text, pos)
      pos = pos + 1
      if sep == 93 then return array, pos end
    end
  elseif c == 34 then -- "
    local close = find(text, '"', pos + 1, true)
    return sub(text, pos + 1, close - 1), close + 1
  elseif c == 116 then
    return true, pos + 4
  elseif c == 102 then
    return false, pos + 5
  elseif c == 110 then
    return nil, pos + 4
  else
    local first, last = find(text, "^-?%d+", pos)
    return math.tointeger(tonumber(sub(text, first, last))), last + 1
  end
end

local function walk(value)
  local kind = type(value)
  if kind == "table" then
    if value[1] ~= nil then
      local total = 0
      for _, item in ipairs(value) do total = total + walk(item) end
      return total
    end
    local total = 1
    for key, item in pairs(value) do total = total + #key + walk(item) end
    return total
  elseif kind == "number" then
    return value
  elseif kind == "string" then
    return #value
  elseif kind == "boolean" then
    return value and 1 or 0
  end
  return 0
end

local function customer(i, round)
  local orders = {}
  for j = 0, i % 3 do
    orders[#orders + 1] = {sku = "sku-" .. ((i + j) % 50), qty = j + 1 + round, price = (i * 7 + j * 13) % 500}
  end
  return {
    id = i,
    name = "customer " .. i,
    tags = {"tier" .. (i % 5), "region" .. (i % 3)},
    active = i % 2 == 0,
    score = (i * 37 + round) % 101,
    address = {city = "city" .. (i % 17), zip = 10000 + i},
    orders = orders,
  }
end

return function(n)
  local checksum = 0
  for round = 0, 3 do
    local records = {}
    for i = 0, n - 1 do records[#records + 1] = customer(i, round) end
    local out = {}
    encode({round = round, customers = records}, out)
    local text = concat(out)
    local parsed = decode_at(text, 1)
    checksum = (checksum * 31 + #text * 7 + walk(parsed)) % 1000000007
  end
  return checksum
end
