return function()
  local a, b, c, d, e, f, g, h = 1, 2, 3, 4, 5, 6, 7, 8
  local i, total = 0, 0
  while i < 200000 do
    total = total + a + b + c + d + e + f + g + h
    i = i + 1
  end
  if total < 0 then print("unreachable") end
end
