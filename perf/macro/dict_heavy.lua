-- Dict-heavy inventory in Lua 5.4: the same event stream, table updates and
-- checksum as dict_heavy.harn; the final fold sorts the keys first, since
-- Harn dicts iterate in key order and Lua tables in no set order.
local WAREHOUSES = {"north", "south", "east", "west"}

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

return function(n)
  local stock, by_warehouse, details = {}, {}, {}
  local removed, seed = 0, 99
  for step = 0, n - 1 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local item = "item-" .. (seed // 65536 % 400)
    local warehouse = WAREHOUSES[seed // 16 % 4 + 1]
    local qty = seed // 256 % 20 + 1
    if seed % 5 == 0 and stock[item] ~= nil then
      removed = removed + stock[item]
      stock[item] = nil
      details[item] = nil
    else
      stock[item] = (stock[item] or 0) + qty
      by_warehouse[warehouse] = (by_warehouse[warehouse] or 0) + qty
      local previous = details[item] or {first_step = step, moves = 0}
      local merged = {}
      for k, v in pairs(previous) do merged[k] = v end
      merged.last_step = step
      merged.moves = previous.moves + 1
      merged.warehouse = warehouse
      details[item] = merged
    end
  end
  local checksum = removed
  for position, key in ipairs(sorted_keys(stock)) do
    local detail = details[key]
    checksum = (checksum + position * (stock[key] * 7 + detail.moves * 3 + detail.last_step - detail.first_step + #detail.warehouse)) % 1000000007
  end
  for _, name in ipairs(sorted_keys(by_warehouse)) do
    checksum = (checksum * 31 + by_warehouse[name]) % 1000000007
  end
  return checksum
end
