-- fannkuch-redux in Lua 5.4: the same permutation order, flip counting and
-- checksum as fannkuch.harn (tables indexed from 1).
local function flips_of(perm, n)
  local p = table.move(perm, 1, n, 1, {})
  local flips = 0
  local k = p[1]
  while k ~= 0 do
    local i, j = 1, k + 1
    while i < j do
      p[i], p[j] = p[j], p[i]
      i = i + 1
      j = j - 1
    end
    flips = flips + 1
    k = p[1]
  end
  return flips
end

return function(n)
  local perm, count = {}, {}
  for i = 1, n do perm[i] = i - 1; count[i] = 0 end
  local max_flips, checksum, perm_index, r = 0, 0, 0, n
  while true do
    while r ~= 1 do
      count[r] = r
      r = r - 1
    end
    local flips = flips_of(perm, n)
    if flips > max_flips then max_flips = flips end
    if perm_index % 2 == 0 then checksum = checksum + flips else checksum = checksum - flips end
    while true do
      if r == n then return checksum * 1000 + max_flips end
      local first = perm[1]
      for i = 1, r do perm[i] = perm[i + 1] end
      perm[r + 1] = first
      count[r + 1] = count[r + 1] - 1
      if count[r + 1] > 0 then break end
      r = r + 1
    end
    perm_index = perm_index + 1
  end
end
