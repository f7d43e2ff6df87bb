return function()
  local total = 0
  for value = 0, 99999 do
    total = total + value
  end
  if total < 0 then print("unreachable") end
end
