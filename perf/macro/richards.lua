-- Richards in Lua 5.4: the same six tasks, packet routing and idle-task seed
-- step as richards.harn; tasks and packets are mutable tables.
local KIND_DEVICE, KIND_WORK = 0, 1

local function packet(dest, kind)
  return {dest = dest, kind = kind, a1 = 0, a2 = {0, 0, 0, 0}}
end

local function idle_step(task, pkt)
  task.v2 = task.v2 - 1
  if task.v2 == 0 then return "hold" end
  if task.v1 % 2 == 0 then
    task.v1 = task.v1 // 2
    return "release", 4
  end
  task.v1 = task.v1 // 2 + 53256
  return "release", 5
end

local function worker_step(task, pkt)
  if pkt == nil then return "suspend" end
  task.v1 = (task.v1 == 2) and 3 or 2
  pkt.dest = task.v1
  pkt.a1 = 0
  for i = 1, 4 do
    task.v2 = task.v2 + 1
    if task.v2 > 26 then task.v2 = 1 end
    pkt.a2[i] = task.v2
  end
  return "send", pkt
end

local function handler_step(task, pkt)
  if pkt ~= nil then
    local q = (pkt.kind == KIND_WORK) and task.v1 or task.v2
    q[#q + 1] = pkt
  end
  if #task.v1 > 0 then
    local work = task.v1[1]
    local count = work.a1
    if count > 3 then
      table.remove(task.v1, 1)
      return "send", work
    end
    if #task.v2 > 0 then
      local dev = table.remove(task.v2, 1)
      dev.a1 = work.a2[count + 1]
      work.a1 = count + 1
      return "send", dev
    end
  end
  return "suspend"
end

local function device_step(task, pkt)
  if pkt == nil then
    if task.v1 == nil then return "suspend" end
    local p = task.v1
    task.v1 = nil
    return "send", p
  end
  task.v1 = pkt
  return "hold"
end

local STEPS = {idle = idle_step, worker = worker_step, handler = handler_step, device = device_step}

local function new_task(id, pri, kind, queue, v1, v2)
  local has_queue = #queue > 0
  return {id = id, pri = pri, kind = kind, queue = queue, v1 = v1, v2 = v2,
          pending = has_queue, waiting = has_queue or kind == "device", held = false}
end

return function(n)
  local tasks = {
    [0] = new_task(0, 0, "idle", {}, 1, n),
    new_task(1, 1000, "worker", {packet(1, KIND_WORK), packet(1, KIND_WORK)}, 2, 0),
    new_task(2, 2000, "handler", {packet(4, KIND_DEVICE), packet(4, KIND_DEVICE), packet(4, KIND_DEVICE)}, {}, {}),
    new_task(3, 3000, "handler", {packet(5, KIND_DEVICE), packet(5, KIND_DEVICE), packet(5, KIND_DEVICE)}, {}, {}),
    new_task(4, 4000, "device", {}, nil, nil),
    new_task(5, 5000, "device", {}, nil, nil),
  }
  local holds, sends, current = 0, 0, 5
  while current >= 0 do
    local task = tasks[current]
    if task.held or (not task.pending and task.waiting) then
      current = current - 1
    else
      local pkt = nil
      if task.pending and task.waiting then
        pkt = table.remove(task.queue, 1)
        task.pending = #task.queue > 0
        task.waiting = false
      end
      local what, arg = STEPS[task.kind](task, pkt)
      if what == "hold" then
        holds = holds + 1
        task.held = true
        current = current - 1
      elseif what == "suspend" then
        task.waiting = true
      elseif what == "release" then
        local other = tasks[arg]
        other.held = false
        if other.pri > task.pri then current = other.id end
      else
        sends = sends + 1
        local target = tasks[arg.dest]
        arg.dest = current
        local q = target.queue
        q[#q + 1] = arg
        if #q == 1 then
          target.pending = true
          if target.pri > task.pri then current = target.id end
        end
      end
    end
  end
  return sends * 100000 + holds
end
