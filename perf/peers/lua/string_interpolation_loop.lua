return function()
  local i, text, total = 0, "x", 0
  while i < 5000 do
    text = text .. (i % 10)
    if #text > 64 then text = "x" end
    total = total + #text
    i = i + 1
  end
  if total < 0 then print("unreachable") end
end
