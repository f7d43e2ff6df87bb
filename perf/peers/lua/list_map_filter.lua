-- Lua has no built-in map/filter; these are the usual closure-taking helpers.
local function filter(items, pred)
  local out, n = {}, 0
  for k = 1, #items do
    local v = items[k]
    if pred(v) then n = n + 1; out[n] = v end
  end
  return out
end
local function map(items, fn)
  local out = {}
  for k = 1, #items do out[k] = fn(items[k]) end
  return out
end
return function()
  local input = {}
  for k = 0, 999 do input[k + 1] = k end
  local iteration, total = 0, 0
  while iteration < 200 do
    local evens = filter(input, function(value) return value % 2 == 0 end)
    local doubled = map(evens, function(value) return value * 2 end)
    total = total + #doubled
    iteration = iteration + 1
  end
  if total < 0 then print("unreachable") end
end
