return function()
  local i, hits = 0, 0
  while i < 200000 do
    if i >= 0 and i <= 100000 then hits = hits + 1 end
    if i == 150000 then hits = hits + 1 end
    i = i + 1
  end
  if hits < 0 then print("unreachable") end
end
