-- Text processing in Lua 5.4: the same generated document, cleaning, word
-- counts, ranking, report and checksum as text_processing.harn. Lua has no
-- split or plain replace, so small helpers do them with string.find in
-- plain mode; the ranking sort breaks count ties by word, which is the order
-- Harn's stable sort over the sorted keys gives.
local concat, find, sub, upper, lower = table.concat, string.find, string.sub, string.upper, string.lower

local VOCABULARY = {
  "The", "quick", "brown", "fox,", "jumps", "over", "the", "lazy", "dog.", "Harn",
  "pipelines", "run", "agents;", "tools", "call", "models", "and", "return", "values.", "Every",
  "token", "counts,", "so", "write", "clearly.", "alpha", "Beta", "gamma", "delta", "omega.",
}

local function split(text, sep)
  local parts, start = {}, 1
  while true do
    local first, last = find(text, sep, start, true)
    if not first then
      parts[#parts + 1] = sub(text, start)
      return parts
    end
    parts[#parts + 1] = sub(text, start, first - 1)
    start = last + 1
  end
end

local function replace(text, old, new)
  return concat(split(text, old), new)
end

local function make_document(lines, seed)
  local out = {}
  for _ = 1, lines do
    local words = {}
    for _ = 1, 8 + seed % 7 do
      seed = (seed * 1103515245 + 12345) % 2147483648
      words[#words + 1] = VOCABULARY[seed // 65536 % #VOCABULARY + 1]
    end
    out[#out + 1] = concat(words, " ")
  end
  return concat(out, "\n")
end

return function(n)
  local text = make_document(n, 42)
  local counts, distinct, total_chars, long_lines = {}, 0, 0, 0
  for _, line in ipairs(split(text, "\n")) do
    local clean = replace(replace(replace(lower(line), ",", ""), ".", ""), ";", "")
    if #clean > 60 then long_lines = long_lines + 1 end
    for _, word in ipairs(split(clean, " ")) do
      local seen = counts[word]
      if not seen then distinct = distinct + 1 end
      counts[word] = (seen or 0) + 1
      total_chars = total_chars + #word
    end
  end
  local ranked = {}
  for word in pairs(counts) do ranked[#ranked + 1] = word end
  table.sort(ranked, function(a, b)
    if counts[a] ~= counts[b] then return counts[a] > counts[b] end
    return a < b
  end)
  local top = {}
  for i = 1, math.min(10, #ranked) do top[i] = upper(ranked[i]) .. ": " .. counts[ranked[i]] end
  local report = concat(top, "\n")
  local shouted = split(replace(text, "the", "THE"), "THE")
  local title_chars = 0
  for _, line in ipairs(split(text, "\n")) do
    local words = split(line, " ")
    for i, w in ipairs(words) do words[i] = upper(sub(w, 1, 1)) .. sub(w, 2) end
    local titled = concat(words, " "):match("^%s*(.-)%s*$")
    title_chars = title_chars + #titled
  end
  return (#report * 1000003 + total_chars * 31 + distinct * 7 + long_lines + #shouted * 13 + title_chars) % 1000000007
end
