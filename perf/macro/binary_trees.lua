-- binary-trees in Lua 5.4: the same tree shapes, iteration counts and
-- checksum as binary_trees.harn; a node is {left, right} and a leaf is false.
local function bottom_up(depth)
  if depth == 0 then return {false, false} end
  return {bottom_up(depth - 1), bottom_up(depth - 1)}
end

local function check(tree)
  if not tree then return 0 end
  return 1 + check(tree[1]) + check(tree[2])
end

return function(n)
  local min_depth = 4
  local max_depth = math.max(min_depth + 2, n)
  local total = check(bottom_up(max_depth + 1))
  local long_lived = bottom_up(max_depth)
  for depth = min_depth, max_depth, 2 do
    local iterations = 1 << (max_depth - depth + min_depth)
    local sum = 0
    for _ = 1, iterations do sum = sum + check(bottom_up(depth)) end
    total = total + sum * depth
  end
  return total + check(long_lived)
end
