-- processors/rename.lua: rename metrics and add, remove or rename tags.
--
--   processors:
--     - rename:
--         rules:
--           - { glob: "cpu.*", to: "system.cpu.%1" }        # %1: what * matched
--           - { match: "^(%w+)_bytes$", to: "%1.bytes" }     # a Lua pattern
--           - { glob: "disk.*", add_tags: { team: storage } }
--           - { remove_tags: [instance] }                     # every metric
--           - { rename_tags: { dc: datacenter } }
--
-- Every rule that matches applies, in order; a rule without glob/match
-- applies to every metric, and a later rule sees the name an earlier one
-- gave. `to` replaces the whole name (with %1.. captures); add_tags sets tags
-- (values may use captures too); remove_tags drops tags; rename_tags moves a
-- tag's value to a new key. The agent's base tags (host, agent.tags) can get
-- another value but not be removed.
--
-- All of this depends only on the series, so the new series is worked out
-- once per series id and cached: the per-sample cost is one table lookup.
local P = require "moonstat.processor"

local KNOWN = { glob = true, match = true, to = true, add_tags = true, remove_tags = true,
                rename_tags = true }

local function compile(rule, what)
  if type(rule) ~= "table" then error(what .. ": expected a map", 0) end
  for k in pairs(rule) do
    if not KNOWN[k] then error(what .. ": unknown key " .. tostring(k), 0) end
  end
  local r = { pat = P.pattern(rule, what) or ".*", to = rule.to, add = rule.add_tags or {},
              remove = P.list(rule.remove_tags), moves = rule.rename_tags or {} }
  if r.to ~= nil and (type(r.to) ~= "string" or r.to == "") then
    error(what .. ": to must be a non-empty string", 0)
  end
  if rule.to == nil and rule.add_tags == nil and rule.remove_tags == nil and
     rule.rename_tags == nil then
    error(what .. ": needs to, add_tags, remove_tags or rename_tags", 0)
  end
  return r
end

-- Apply the rules to a name and a copy of the tags.
local function apply(rules, name, tags)
  for _, r in ipairs(rules) do
    local caps = { name:match(r.pat) }
    if caps[1] ~= nil then
      local function fill(t) return (t:gsub("%%(%d)", function(d) return caps[tonumber(d)] or "" end)) end
      for old, new in pairs(r.moves) do
        if tags[old] ~= nil then
          tags[tostring(new)], tags[old] = tags[old], nil
        end
      end
      for _, k in ipairs(r.remove) do tags[tostring(k)] = nil end
      for k, v in pairs(r.add) do tags[tostring(k)] = fill(tostring(v)) end
      if r.to then name = fill(r.to) end
    end
  end
  return name, tags
end

return {
  settings = { rules = {} },
  new = function(settings)
    local rules = {}
    for i, rule in ipairs(settings.rules) do rules[i] = compile(rule, ("rules[%d]"):format(i)) end
    local ids = {} -- series id -> new series id

    local function remap(s)
      local id, tags = s.series, {}
      for k, v in pairs(s.tags or {}) do tags[k] = v end
      local name = apply(rules, s.name or "", tags)
      local nid = name ~= "" and P.intern(name, tags) or 0
      if nid == 0 then nid = id end -- table full (counted) or empty name: keep
      ids[id] = nid
      return nid
    end

    return function(s)
      local nid = ids[s.series]
      if nid == nil then nid = remap(s) end
      s.series = nid
      return s
    end
  end,
}
