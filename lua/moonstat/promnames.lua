-- moonstat.promnames: Prometheus's naming rules, shared by
-- forwarders/prometheus.lua (the scrape endpoint) and
-- forwarders/prometheus_remote_write.lua, so a series gets the same name and
-- labels whichever way it reaches Prometheus.
--
--   metric_name(s)  every byte outside [a-zA-Z0-9_:] becomes "_", and "_" is
--                   put first when it starts with a digit: "cpu.user" ->
--                   cpu_user, "5xx" -> _5xx ("" -> "_")
--   label_name(s)   the same with [a-zA-Z0-9_], and a leading "__" (reserved
--                   by Prometheus) becomes "_"
--   utf8_fix(s)     bytes that are not valid UTF-8 (overlong forms and
--                   surrogates included) become U+FFFD: Prometheus rejects a
--                   whole scrape or write over one bad label value
-- Each returns its argument itself when nothing changes.
local byte, sub, find, gsub = string.byte, string.sub, string.find, string.gsub
local concat = table.concat

local M = {}

function M.metric_name(s)
  s = gsub(s, "[^a-zA-Z0-9_:]", "_")
  if s == "" then return "_" end
  if find(s, "^[0-9]") then s = "_" .. s end
  return s
end

function M.label_name(s)
  s = gsub(s, "[^a-zA-Z0-9_]", "_")
  if s == "" then return "_" end
  if find(s, "^[0-9]") then s = "_" .. s end
  return (gsub(s, "^__+", "_"))
end

function M.utf8_fix(s)
  if not find(s, "[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = byte(s, i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2
      or (c >= 0xE0 and c <= 0xEF) and 3 or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local ok = len > 0 and i + len - 1 <= n
    if ok and len > 1 then
      for k = 1, len - 1 do
        local cc = byte(s, i + k)
        if cc < 0x80 or cc > 0xBF then ok = false; break end
      end
      local c2 = byte(s, i + 1)
      if ok and ((c == 0xE0 and c2 < 0xA0) or (c == 0xED and c2 > 0x9F)
          or (c == 0xF0 and c2 < 0x90) or (c == 0xF4 and c2 > 0x8F)) then
        ok = false -- overlong forms and surrogates
      end
    end
    if ok then
      out[#out + 1] = sub(s, i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = "\239\191\189"
      i = i + 1
    end
  end
  return concat(out)
end

return M
