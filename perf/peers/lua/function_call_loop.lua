return function()
  local function step(value)
    return value + 1
  end
  local i, total = 0, 0
  while i < 100000 do
    total = step(total)
    i = i + 1
  end
  if total < 0 then print("unreachable") end
end
