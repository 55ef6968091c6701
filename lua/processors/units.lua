-- processors/units.lua: scale values, e.g. bytes to MiB or milliseconds to seconds.
--
--   processors:
--     - units:
--         rules:
--           - { glob: "*.bytes", from: bytes, to: MiB }
--           - { match: "^http%.latency", from: ms, to: s }
--           - { glob: "temp.*", factor: 0.1 }
--
-- Each rule picks metrics by `glob` or `match` (a Lua pattern) on the name
-- and gives either `from` and `to` units or a plain `factor`. The first rule
-- that matches a metric applies. Units: B/bytes, KiB, MiB, GiB, TiB, kB, MB,
-- GB, TB, bits; ns, us, ms, s, min, h, d. Health samples and events are left
-- alone. The factor is chosen once per series id and cached.
local P = require "moonstat.processor"

local UNITS = {
  B = 1, bytes = 1, KiB = 1024, MiB = 1024 ^ 2, GiB = 1024 ^ 3, TiB = 1024 ^ 4,
  kB = 1e3, MB = 1e6, GB = 1e9, TB = 1e12, bits = 1 / 8,
  ns = 1e-9, us = 1e-6, ms = 1e-3, s = 1, min = 60, h = 3600, d = 86400,
}
local TIME = { ns = true, us = true, ms = true, s = true, min = true, h = true, d = true }

local function factor_of(rule, what)
  if rule.factor ~= nil then
    if type(rule.factor) ~= "number" then error(what .. ": factor must be a number", 0) end
    return rule.factor
  end
  local from, to = UNITS[rule.from], UNITS[rule.to]
  if not from or not to then
    error(("%s: needs factor, or from and to among known units (got %s -> %s)"):format(
      what, tostring(rule.from), tostring(rule.to)), 0)
  end
  if TIME[rule.from] ~= TIME[rule.to] then
    error(("%s: cannot convert %s to %s"):format(what, rule.from, rule.to), 0)
  end
  return from / to
end

return {
  settings = { rules = {} },
  new = function(settings)
    local rules = {}
    for i, r in ipairs(settings.rules) do
      local what = ("rules[%d]"):format(i)
      if type(r) ~= "table" then error(what .. ": expected a map", 0) end
      local pat = P.pattern(r, what) or error(what .. ": needs glob or match", 0)
      rules[i] = { pat = pat, factor = factor_of(r, what) }
    end
    local factors = {} -- series id -> factor (1: leave as is)

    local function choose(s)
      local f, name = 1, s.name or ""
      for _, r in ipairs(rules) do
        if name:find(r.pat) then
          f = r.factor
          break
        end
      end
      factors[s.series] = f
      return f
    end

    return function(s)
      local f = factors[s.series]
      if f == nil then f = choose(s) end
      if s.kind < 3 then s.value = s.value * f end -- gauge, counter, rate
      return s
    end
  end,
}
