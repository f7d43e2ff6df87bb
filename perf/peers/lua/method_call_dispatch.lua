-- A list "class" with a `contains` method, called with method syntax.
local List = {}
List.__index = List
function List:contains(x)
  for k = 1, #self do
    if self[k] == x then return true end
  end
  return false
end
return function()
  local items = setmetatable({1, 3, 5, 7, 9, 11, 13, 15}, List)
  local i, hits = 0, 0
  while i < 100000 do
    if items:contains(i % 16) then hits = hits + 1 end
    i = i + 1
  end
  if hits < 0 then print("unreachable") end
end
