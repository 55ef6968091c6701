-- processors/filter.lua: keep or drop samples by metric name and tags.
--
--   processors:
--     - filter:
--         include: ["cpu.*", "load.*"]        # keep only these (empty: keep all)
--         exclude: ["*.idle", { name: "disk.*", tags: { mount: "/run*" } }]
--
-- Each entry of `include` and `exclude` is a glob on the metric name, or a
-- map with `name` (glob, default "*") and/or `tags` (tag key -> glob; a tag
-- that is absent does not match). A sample is kept when some include entry
-- matches it (or include is empty) and no exclude entry does.
--
-- The decision depends only on the series, so it is made once per series id
-- and cached: the per-sample cost is one table lookup.
local P = require "moonstat.processor"

-- Entries as { pat = name pattern, tags = { {key, pattern}, ... } }.
local function compile(list, what)
  local out = {}
  for i, e in ipairs(P.list(list)) do
    local where = ("%s[%d]"):format(what, i)
    if type(e) == "table" then
      local tags = {}
      for k, g in pairs(e.tags or {}) do tags[#tags + 1] = { k, P.glob(tostring(g)) } end
      for k in pairs(e) do
        if k ~= "name" and k ~= "tags" then error(where .. ": unknown key " .. tostring(k), 0) end
      end
      out[i] = { pat = P.glob(tostring(e.name or "*")), tags = tags }
    else
      out[i] = { pat = P.glob(tostring(e)), tags = {} }
    end
  end
  return out
end

local function matches(entry, name, tags)
  if not name:find(entry.pat) then return false end
  for _, t in ipairs(entry.tags) do
    local v = tags[t[1]]
    if v == nil or not v:find(t[2]) then return false end
  end
  return true
end

local function any(list, name, tags)
  for _, e in ipairs(list) do
    if matches(e, name, tags) then return true end
  end
  return false
end

return {
  settings = { include = {}, exclude = {} },
  new = function(settings)
    local include = compile(settings.include, "include")
    local exclude = compile(settings.exclude, "exclude")
    local keep = {} -- series id -> true / false

    local function decide(s)
      local name, tags = s.name or "", s.tags or {}
      local k = (#include == 0 or any(include, name, tags)) and not any(exclude, name, tags)
      keep[s.series] = k
      return k
    end

    return function(s)
      local k = keep[s.series]
      if k == nil then k = decide(s) end
      if not k then return nil end
      return s
    end
  end,
}
