-- moonstat.jsonpoints: what forwarders/opentsdb.lua and forwarders/kairosdb.lua
-- share. Both write a batch as one JSON array with one object per sample:
--   [<prefix of the series><timestamp><mid><value><tail>, ...]
-- where the prefix ('{"metric":"cpu","tags":{...},"timestamp":' for
-- OpenTSDB, '{"name":"cpu","tags":{...},"datapoints":[[' for KairosDB) is
-- built once per series id and cached, and the timestamp is
-- floor(ts * scale + half) (scale 1000, half 0.5 for milliseconds).
--
--   tags(se, clean, fallback)   the inside of a "tags" object for series
--                               table `se`, keys and values passed through
--                               `clean`; empty ones are left out; a series
--                               without tags gets `fallback` ("key=value";
--                               both stores need at least one tag)
--   encode(batch, out, cache, prefix, ctx, mid, tail, scale, half)
--                               the array, appended to out; `cache` maps
--                               series ids to prefixes (false: skip),
--                               prefix(id, ctx) builds a missing one.
--                               Returns how many samples were skipped (events,
--                               NaN and infinities), for the core to count.
-- The hot loop only formats the timestamp with `mid` (when it changes) and
-- the value;
-- building a prefix happens outside it, so the loop compiles without aborts.
local E = require "moonstat.encoder"

local put_number, EVENT = E.put_number, E.EVENT
local floor, huge, fmt, concat = math.floor, math.huge, string.format, table.concat

local M = {}

function M.tags(se, clean, fallback)
  local parts, n = {}, 0
  for i = 1, #se.keys do
    local k = se.keys[i]
    local ck, cv = clean(k), clean(se.tags[k])
    if ck ~= "" and cv ~= "" then
      n = n + 1
      parts[n] = '"' .. ck .. '":"' .. cv .. '"'
    end
  end
  if n == 0 then
    local eq = fallback:find("=", 1, true)
    local k = clean(eq and fallback:sub(1, eq - 1) or "source")
    local v = clean(eq and fallback:sub(eq + 1) or fallback)
    parts[1] = '"' .. (k ~= "" and k or "source") .. '":"' .. (v ~= "" and v or "moonstat") .. '"'
  end
  return concat(parts, ",")
end

-- Hot loop: writes samples whose prefix is cached; returns the index of the
-- first one that is not (or n), the separator to use next and the skips.
local function run(batch, out, pre, first, n, sep, skip, mid, tail, scale, half)
  local s = batch.s
  local last_ts, ts_text = -huge, ""
  for i = first, n - 1 do
    local smp = s[i]
    local v = smp.value
    if smp.kind ~= EVENT and v == v and v ~= huge and v ~= -huge then
      local p = pre[smp.series]
      if p == nil then return i, sep, skip end
      if p then
        local ts = smp.ts
        if ts ~= last_ts then last_ts, ts_text = ts, fmt("%d%s", floor(ts * scale + half), mid) end
        out:put(sep, p, ts_text)
        put_number(out, v)
        out:put(tail)
        sep = ","
      end
    else
      skip = skip + 1
    end
  end
  return n, sep, skip
end

function M.encode(batch, out, pre, prefix, ctx, mid, tail, scale, half)
  local n = batch.n
  local i, sep, skip = run(batch, out, pre, 0, n, "[", 0, mid, tail, scale, half)
  while i < n do
    local id = batch.s[i].series
    pre[id] = prefix(id, ctx)
    i, sep, skip = run(batch, out, pre, i, n, sep, skip, mid, tail, scale, half)
  end
  if sep == "," then out:put("]") end
  return skip
end

return M
