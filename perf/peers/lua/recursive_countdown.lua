return function()
  local function countdown(n, acc)
    if n <= 0 then return acc end
    return countdown(n - 1, acc + 1)
  end
  local i, total = 0, 0
  while i < 500 do
    total = total + countdown(60, 0)
    i = i + 1
  end
  if total < 0 then print("unreachable") end
end
