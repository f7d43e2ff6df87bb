-- Record sorting in Lua 5.4: the same generated employees, keys, filter,
-- grouping and checksum as record_sort.harn. table.sort is not stable, so it
-- sorts by the same keys, which are unique (each includes the id or the
-- name, which ends in the id).
local DEPARTMENTS = {"eng", "ops", "sales", "legal", "design", "support"}
local SYLLABLES = {"ka", "lo", "mi", "ra", "ten", "vo", "shi", "dan", "el", "u"}
local DEPT_INDEX = {}
for i, d in ipairs(DEPARTMENTS) do DEPT_INDEX[d] = i - 1 end

local function make_employees(n)
  local seed, staff = 7, {}
  for id = 0, n - 1 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local name = SYLLABLES[seed // 65536 % 10 + 1] .. SYLLABLES[seed // 1024 % 10 + 1] .. SYLLABLES[seed // 16 % 10 + 1]
    staff[#staff + 1] = {id = id, name = name .. "-" .. id, dept = DEPARTMENTS[seed % #DEPARTMENTS + 1],
                         age = 20 + seed // 8 % 45, salary = 30000 + seed // 4096 % 90000}
  end
  return staff
end

-- Computes each key once, as Harn's sort_by and Python's sorted(key=) do.
local function sorted_by(records, key)
  local copy, keys = table.move(records, 1, #records, 1, {}), {}
  for _, r in ipairs(records) do keys[r] = key(r) end
  table.sort(copy, function(a, b) return keys[a] < keys[b] end)
  return copy
end

local function positional(records)
  local total = 0
  for position, r in ipairs(records) do total = (total + position * r.id) % 1000000007 end
  return total
end

return function(n)
  local staff = make_employees(n)
  local by_salary = sorted_by(staff, function(e) return e.salary * 100000 + e.id end)
  local by_name = sorted_by(staff, function(e) return e.name end)
  local by_dept_age = sorted_by(staff, function(e) return DEPT_INDEX[e.dept] * 10000000 + e.age * 100000 + e.id end)
  local older = {}
  for _, e in ipairs(staff) do if e.age >= 50 then older[#older + 1] = e end end
  local seniors = sorted_by(older, function(e) return -e.salary * 100000 - e.id end)
  local groups = {}
  for _, e in ipairs(by_name) do
    local members = groups[e.dept] or {}
    members[#members + 1] = e
    groups[e.dept] = members
  end
  local best = 0
  for _, members in pairs(groups) do
    local top, top_key = nil, nil
    for _, e in ipairs(members) do
      local k = e.salary * 100000 + e.id
      if top_key == nil or k > top_key then top, top_key = e, k end
    end
    best = best + top.id * #members
  end
  return (positional(by_salary) * 3 + positional(by_name) * 5 + positional(by_dept_age) * 7
          + positional(seniors) * 11 + best) % 1000000007
end
