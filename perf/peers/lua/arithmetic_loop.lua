return function()
  local i, total = 0, 0
  while i < 200000 do
    total = total + (i + 3) * 2 - 1
    i = i + 1
  end
  if total < 0 then print("unreachable") end
end
