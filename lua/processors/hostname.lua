-- processors/hostname.lua: bucky's host handling for the `host` tag.
--
--   processors:
--     - hostname: { strip: [".example.com", ".internal"], reverse: true }
--
-- `strip`: suffixes trimmed from the host name (the first that matches).
-- `reverse`: reverse the dot-separated components, so "web1.dc1" becomes
-- "dc1.web1" and hosts sort by site in Graphite trees.
-- `lower`: lowercase the name. `tag`: the tag to work on (default "host").
-- Samples without the tag pass unchanged. The new series is worked out once
-- per series id and cached.
local P = require "moonstat.processor"

local function reverse(host)
  local parts = {}
  for p in host:gmatch("[^.]+") do table.insert(parts, 1, p) end
  return table.concat(parts, ".")
end

return {
  settings = { strip = {}, reverse = false, lower = false, tag = "host" },
  new = function(settings)
    local strip, key = P.list(settings.strip), settings.tag
    for i, sfx in ipairs(strip) do strip[i] = tostring(sfx) end
    local ids = {} -- series id -> new series id

    local function rewrite(h)
      if settings.lower then h = h:lower() end
      for _, sfx in ipairs(strip) do
        if #h > #sfx and h:sub(-#sfx) == sfx then
          h = h:sub(1, #h - #sfx)
          break
        end
      end
      if settings.reverse then h = reverse(h) end
      return h
    end

    local function remap(s)
      local id = s.series
      local tags = s.tags
      local h = tags and tags[key]
      if h ~= nil then s:tag(key, rewrite(h)) end
      ids[id] = s.series
      return s.series
    end

    return function(s)
      local nid = ids[s.series]
      if nid == nil then nid = remap(s) end
      s.series = nid
      return s
    end
  end,
}
