-- moonstat.checkutil: what the built-in checks (checks/*.lua) share.
--
--   local U = require "moonstat.checkutil"
--   local want = U.wanted(ms.config.metrics) -- want("cpu.user") -> true/false
--   local only = U.matcher(ms.config.devices) -- only("sda") -> true/false; nil when unset
--   local set = U.set_of(ms.config.versions)  -- { ["4"] = true, ... }
--   local text = U.read(root .. "/stat")      -- the whole file, or an error
--   local f = U.numbers(" 12 0 345")          -- { 12, 0, 345 }
--
-- `metrics`, the option every check takes, selects what the check sends:
-- unset (false or nil) sends everything; otherwise a list (a lone string
-- counts as a list of one) where each entry selects the metric of that
-- exact name and every metric below it, so "docker.memory" selects
-- docker.memory.usage and docker.memory.limit but not docker.memory_x, and
-- "load.1" selects load.1 but not load.15. An empty list sends nothing.
--
-- Globs (devices, interfaces, mounts, exclude ...): `*` is any run of
-- characters, `?` one character, everything else itself; a glob matches
-- the whole name.
local M = {}

local function all() return true end

-- The list form of an option: nil/false -> nil, a string or number -> { it }.
local function list_of(v, what)
  if v == nil or v == false then return nil end
  if type(v) == "string" or type(v) == "number" then return { v } end
  if type(v) ~= "table" then error(("%s must be a list, got %s"):format(what, tostring(v)), 3) end
  return v
end

-- `metrics` -> want(name): is this metric to be sent? (see the top)
function M.wanted(metrics)
  local list = list_of(metrics, "metrics")
  if not list then return all end
  local set = {}
  for _, n in ipairs(list) do set[tostring(n)] = true end
  return function(name)
    if set[name] then return true end
    -- a listed prefix: "a.b" for "a.b.c" (and "a" for it too)
    local dot = name:find(".", 1, true)
    while dot do
      if set[name:sub(1, dot - 1)] then return true end
      dot = name:find(".", dot + 1, true)
    end
    return false
  end
end

-- A list of globs ("loop*", "sd?") -> match(name): does any glob match the
-- whole name? nil when the option is unset (false or nil).
function M.matcher(globs)
  local list = list_of(globs, "a list of globs")
  if not list then return nil end
  local pats = {}
  for i, g in ipairs(list) do
    pats[i] = "^" .. tostring(g):gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0")
      :gsub("%*", ".*"):gsub("%?", ".") .. "$"
  end
  return function(name)
    for _, p in ipairs(pats) do
      if name:find(p) then return true end
    end
    return false
  end
end

-- A list (or one value) -> a set of its items as strings; nil when unset.
function M.set_of(list)
  list = list_of(list, "a list")
  if not list then return nil end
  local set = {}
  for _, n in ipairs(list) do set[tostring(n)] = true end
  return set
end

-- The whole file; on failure an error naming the check's line that asked
-- for it (and, from ms.read_file, the path and the reason).
function M.read(path)
  local s, err = ms.read_file(path)
  if not s then error(err, 2) end
  return s
end

-- The unsigned integers in a string, in order, as a list of numbers (the
-- counters of one line of a /proc file).
function M.numbers(s)
  local out, n = {}, 0
  for num in s:gmatch("%d+") do
    n = n + 1
    out[n] = tonumber(num)
  end
  return out
end

return M
