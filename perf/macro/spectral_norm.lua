-- spectral-norm in Lua 5.4: the same matrix, ten power-method rounds and
-- checksum as spectral_norm.harn (vectors indexed from 1, A from 0).
local function a(i, j)
  return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)
end

local function times(v)
  local n = #v
  local out = {}
  for i = 0, n - 1 do
    local sum = 0.0
    for j = 0, n - 1 do sum = sum + a(i, j) * v[j + 1] end
    out[#out + 1] = sum
  end
  return out
end

local function times_transposed(v)
  local n = #v
  local out = {}
  for i = 0, n - 1 do
    local sum = 0.0
    for j = 0, n - 1 do sum = sum + a(j, i) * v[j + 1] end
    out[#out + 1] = sum
  end
  return out
end

local function at_times_a(v)
  return times_transposed(times(v))
end

return function(n)
  local u = {}
  for i = 1, n do u[i] = 1.0 end
  local v = u
  for _ = 1, 10 do
    v = at_times_a(u)
    u = at_times_a(v)
  end
  local vbv, vv = 0.0, 0.0
  for i = 1, n do
    vbv = vbv + u[i] * v[i]
    vv = vv + v[i] * v[i]
  end
  return math.floor(math.sqrt(vbv / vv) * 1000000000.0)
end
