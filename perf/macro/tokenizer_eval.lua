-- Tokenizer and evaluator in Lua 5.4: the same generated expressions,
-- char-by-char tokenizer, recursive-descent parser (returning tree, pos),
-- tree evaluation and checksum as tokenizer_eval.harn. Tokens and trees are
-- tables tagged by a kind field.
local sub, concat = string.sub, table.concat
local MODULUS = 1000003
local NAMES = {"x", "y", "z", "rate", "total", "n2"}
local OPS = {"+", "-", "*", "/"}

local function is_digit(c) return c >= "0" and c <= "9" end
local function is_alnum(c) return (c >= "a" and c <= "z") or is_digit(c) end

local function tokenize(text)
  local n, tokens, i = #text, {}, 1
  while i <= n do
    local c = sub(text, i, i)
    if c == " " then
      i = i + 1
    elseif is_digit(c) then
      local j = i
      while j <= n and is_digit(sub(text, j, j)) do j = j + 1 end
      tokens[#tokens + 1] = {kind = "num", value = math.tointeger(tonumber(sub(text, i, j - 1)))}
      i = j
    elseif is_alnum(c) then
      local j = i
      while j <= n and is_alnum(sub(text, j, j)) do j = j + 1 end
      tokens[#tokens + 1] = {kind = "ident", value = sub(text, i, j - 1)}
      i = j
    elseif c == "(" then
      tokens[#tokens + 1] = {kind = "lparen"}
      i = i + 1
    elseif c == ")" then
      tokens[#tokens + 1] = {kind = "rparen"}
      i = i + 1
    else
      tokens[#tokens + 1] = {kind = "op", value = c}
      i = i + 1
    end
  end
  return tokens
end

local parse_sum

local function parse_primary(tokens, pos)
  local token = tokens[pos]
  if token.kind == "num" then return {kind = "num", value = token.value}, pos + 1 end
  if token.kind == "ident" then return {kind = "var", name = token.value}, pos + 1 end
  local expr, stop = parse_sum(tokens, pos + 1)
  return expr, stop + 1
end

local function op_at(tokens, pos)
  local token = tokens[pos]
  if token == nil or token.kind ~= "op" then return nil end
  return token.value
end

local function parse_product(tokens, pos)
  local left
  left, pos = parse_primary(tokens, pos)
  local op = op_at(tokens, pos)
  while op == "*" or op == "/" do
    local right
    right, pos = parse_primary(tokens, pos + 1)
    left = {kind = "bin", op = op, left = left, right = right}
    op = op_at(tokens, pos)
  end
  return left, pos
end

parse_sum = function(tokens, pos)
  local left
  left, pos = parse_product(tokens, pos)
  local op = op_at(tokens, pos)
  while op == "+" or op == "-" do
    local right
    right, pos = parse_product(tokens, pos + 1)
    left = {kind = "bin", op = op, left = left, right = right}
    op = op_at(tokens, pos)
  end
  return left, pos
end

local function evaluate(expr, env)
  local kind = expr.kind
  if kind == "num" then return expr.value end
  if kind == "var" then return env[expr.name] end
  local a, b, op = evaluate(expr.left, env), evaluate(expr.right, env), expr.op
  if op == "+" then return (a + b) % MODULUS end
  if op == "-" then return (a - b) % MODULUS end
  if op == "*" then return (a * b) % MODULUS end
  if b == 0 then return 0 end
  return a // b
end

local function make_expressions(count)
  local seed, out = 2024, {}
  for _ = 1, count do
    local parts = {}
    for t = 0, 5 do
      seed = (seed * 1103515245 + 12345) % 2147483648
      local pick = seed // 65536
      if t > 0 then parts[#parts + 1] = OPS[pick % 4 + 1] end
      local kind = pick // 4 % 4
      local num = tostring(pick // 16 % 100)
      local name = NAMES[pick // 1600 % #NAMES + 1]
      local term
      if kind == 0 then term = num
      elseif kind == 1 then term = name
      elseif kind == 2 then term = "(" .. num .. " + " .. name .. ")"
      else term = "(" .. name .. " * " .. num .. " - " .. (pick % 7) .. ")" end
      parts[#parts + 1] = term
    end
    out[#out + 1] = concat(parts, " ")
  end
  return out
end

return function(n)
  local env = {x = 17, y = 4, z = 999, rate = 12, total = 5000, n2 = 3}
  local checksum, token_count = 0, 0
  for _, text in ipairs(make_expressions(n)) do
    local tokens = tokenize(text)
    token_count = token_count + #tokens
    local tree = parse_sum(tokens, 1)
    checksum = (checksum * 31 + evaluate(tree, env)) % MODULUS
  end
  return checksum * 100000 + token_count
end
