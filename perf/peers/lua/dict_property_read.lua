return function()
  local record = {hot = 7, cold = 2, nested = {value = 3}}
  local i, total = 0, 0
  while i < 150000 do
    total = total + record.hot + record.nested.value
    i = i + 1
  end
  if total < 0 then print("unreachable") end
end
