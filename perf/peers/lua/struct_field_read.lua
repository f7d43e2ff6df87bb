return function()
  local point = {x = 3, y = 4, z = 5}
  local i, total = 0, 0
  while i < 150000 do
    total = total + point.x + point.y + point.z
    i = i + 1
  end
  if total < 0 then print("unreachable") end
end
