-- Dijkstra in Lua 5.4: the same grid, weights, hand-written binary heap and
-- checksum as dijkstra.harn (the heap is a 1-based table of {distance, cell}).
local function edge_weight(cell, direction)
  return (cell * 7919 + direction * 104729) % 97 + 1
end

local function heap_push(h, item)
  h[#h + 1] = item
  local i = #h
  while i > 1 do
    local parent = i // 2
    if h[parent][1] <= h[i][1] then break end
    h[parent], h[i] = h[i], h[parent]
    i = parent
  end
end

local function heap_pop(h)
  local last = h[#h]
  h[#h] = nil
  local size = #h
  if size == 0 then return end
  h[1] = last
  local i = 1
  while true do
    local left = 2 * i
    local right = left + 1
    local smallest = i
    if left <= size and h[left][1] < h[smallest][1] then smallest = left end
    if right <= size and h[right][1] < h[smallest][1] then smallest = right end
    if smallest == i then break end
    h[smallest], h[i] = h[i], h[smallest]
    i = smallest
  end
end

return function(n)
  local cells = n * n
  local dist = {}
  for c = 0, cells - 1 do dist[c] = -1 end
  local heap = {{0, 0}}
  local settled = 0
  while #heap > 0 do
    local top = heap[1]
    heap_pop(heap)
    local d, cell = top[1], top[2]
    if dist[cell] < 0 then
      dist[cell] = d
      settled = settled + 1
      local row, col = cell // n, cell % n
      local neighbours = {
        row > 0 and cell - n or -1,
        row < n - 1 and cell + n or -1,
        col > 0 and cell - 1 or -1,
        col < n - 1 and cell + 1 or -1,
      }
      for direction = 0, 3 do
        local nxt = neighbours[direction + 1]
        if nxt >= 0 and dist[nxt] < 0 then heap_push(heap, {d + edge_weight(cell, direction), nxt}) end
      end
    end
  end
  local checksum = settled
  for cell = 0, cells - 1 do checksum = (checksum * 31 + dist[cell]) % 1000000007 end
  return checksum
end
