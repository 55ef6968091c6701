-- moonstat.lineproto: the text line formats that forwarders/graphite.lua,
-- forwarders/file.lua and forwarders/stdout.lua write (docs/forwarders/).
--
-- Two formats, one line per sample:
--   Graphite plaintext      <path> <value> <unix seconds>\n
--   InfluxDB line protocol  <measurement>[,<k>=<v>...] <fields> <unix ns>\n
--
-- The helpers (number, ns, the graphite_* sanitizers, the influx_*
-- escapers, graphite_series, influx_series) need only string functions: they
-- work in plain `luajit` with lua/ on package.path. The batch encoders
-- (encode_graphite, encode_influx, encode_format) also need the C core, via
-- moonstat.encoder (series ids -> names and tags, sample texts).
--
-- Speed: everything a series contributes to a line (the Graphite path, the
-- Influx measurement and tag set) is built once per series id and kept in a
-- cache per forwarder (per `opts` table); ids never change meaning, so the
-- steady state formats only the value and the timestamp. Nothing here uses
-- string patterns, gsub, pairs or closures on the per-sample path, so the
-- encode loops compile with the JIT (tests/lua/test_encoders.lua checks it).
local ffi = require "ffi"
local buffer = require "string.buffer"
local E = require "moonstat.encoder"

local byte, sub, find, fmt = string.byte, string.sub, string.find, string.format
local floor, huge, tonumber, error, tostring = math.floor, math.huge, tonumber, error, tostring
local series, ffi_string = E.series, ffi.string
local COUNTER, HEALTH, EVENT = E.COUNTER, E.HEALTH, E.EVENT

local M = {}

---------------------------------------------------------------- numbers
--
-- The functions the hot loops call never end in a tail call of a builtin
-- (`return fmt(...)`): when such a function gets hot on its own, LuaJIT
-- starts a trace at it, and the builtin returning straight into the loop
-- aborts that trace ("leaving loop in root trace"); aborts repeated enough
-- blacklist the function and with it every loop that calls it.

-- A number as text databases read back exactly (moonstat.encoder's; the
-- callers here skip NaN and infinities).
local number, put_number = E.number, E.put_number
M.number = number

-- Unix seconds (fractional) -> integer nanoseconds as text, rounded to the
-- microsecond: a double near today's epoch holds nothing finer.
local function ns(ts)
  local sec = floor(ts)
  local us = floor((ts - sec) * 1e6 + 0.5)
  if us >= 1000000 then sec, us = sec + 1, us - 1000000 end
  local s
  if sec == 0 then
    s = fmt("%d000", us)
  else
    s = fmt("%d%06d000", sec, us)
  end
  return s
end
M.ns = ns

---------------------------------------------------------------- byte maps

-- A map is a 256-entry table: byte -> replacement string, or false to keep
-- the byte. map_bytes(s, map) applies it; strings that need no change are
-- returned as they are, without building anything.
local scratch = buffer.new()

local function map_bytes(s, map)
  local n = #s
  local i = 1
  while i <= n and not map[byte(s, i)] do i = i + 1 end
  if i > n then return s end
  scratch:reset()
  local start = 1
  while i <= n do
    local r = map[byte(s, i)]
    if r then
      scratch:put(sub(s, start, i - 1), r)
      start = i + 1
    end
    i = i + 1
  end
  scratch:put(sub(s, start, n))
  return scratch:tostring()
end
M.map_bytes = map_bytes

-- Build a map: `keep(b)` true keeps byte b, else it becomes `with`;
-- `special` overrides single bytes.
local function make_map(keep, with, special)
  local m = {}
  for b = 0, 255 do
    m[b] = (not keep(b)) and with
  end
  for ch, r in pairs(special or {}) do m[byte(ch)] = r end
  return m
end

local function is_alnum(b)
  return (b >= 48 and b <= 57) or (b >= 65 and b <= 90) or (b >= 97 and b <= 122)
end

---------------------------------------------------------------- graphite

-- Names and path levels keep letters, digits, "_", "-", ":" and the bytes of
-- UTF-8 characters; everything else becomes "_". Names keep their dots (they
-- are the levels); a tag value written as one level turns its dots into "_".
local function graphite_safe(b)
  return is_alnum(b) or b == 95 or b == 45 or b == 58 or b >= 128
end
local NAME = make_map(function(b) return graphite_safe(b) or b == 46 end, "_")
local LEVEL = make_map(graphite_safe, "_")
-- Graphite 1.1 tags: keys must not hold ";!^=", values not ";" nor start
-- with "~"; neither may hold spaces or control bytes (they end the path).
local TAG_KEY = make_map(function(b) return b > 32 and b ~= 127 end, "_",
  { [";"] = "_", ["!"] = "_", ["^"] = "_", ["="] = "_" })
local TAG_VALUE = make_map(function(b) return b > 32 and b ~= 127 end, "_", { [";"] = "_" })

-- Drop empty levels: leading, trailing and repeated dots.
local function trim_dots(s)
  local n = #s
  if n == 0 or (byte(s, 1) ~= 46 and byte(s, n) ~= 46 and not find(s, "..", 1, true)) then
    return s
  end
  scratch:reset()
  local want_dot = false
  for i = 1, n do
    local b = byte(s, i)
    if b == 46 then
      want_dot = #scratch > 0
    else
      if want_dot then
        scratch:put(".")
        want_dot = false
      end
      scratch:put(sub(s, i, i))
    end
  end
  return scratch:tostring()
end

-- A metric name (or prefix) as a Graphite path: unsafe bytes -> "_", no
-- empty levels.
function M.graphite_name(s) return trim_dots(map_bytes(s, NAME)) end
-- A tag value as one path level ("" when nothing is left).
function M.graphite_level(s) return map_bytes(s, LEVEL) end
function M.graphite_tag_key(s) return map_bytes(s, TAG_KEY) end
function M.graphite_tag_value(s)
  s = map_bytes(s, TAG_VALUE)
  if byte(s, 1) == 126 then s = "_" .. sub(s, 2) end
  return s
end

local line = buffer.new()

-- The path of a series followed by a space, for one of the tag modes:
--   "path"    [prefix.]<host>.<other tag values, by key>.<name>
--   "tagged"  [prefix.]<name>;k=v;k2=v2   (Graphite 1.1 tags, keys sorted)
--   "none"    [prefix.]<name>
-- `prefix` is already sanitized ("" for none); keys are sorted.
function M.graphite_series(mode, prefix, name, tags, keys)
  local gname = M.graphite_name(name)
  if gname == "" then gname = "_" end
  line:reset()
  if prefix ~= "" then line:put(prefix, ".") end
  if mode == "path" then
    local h = tags.host
    if h then
      h = M.graphite_level(h)
      if h ~= "" then line:put(h, ".") end
    end
    for i = 1, #keys do
      local k = keys[i]
      if k ~= "host" then
        local v = M.graphite_level(tags[k])
        if v ~= "" then line:put(v, ".") end
      end
    end
    line:put(gname)
  else
    line:put(gname)
    if mode == "tagged" then
      for i = 1, #keys do
        local k = keys[i]
        local gk, gv = M.graphite_tag_key(k), M.graphite_tag_value(tags[k])
        if gk ~= "" and gv ~= "" then line:put(";", gk, "=", gv) end
      end
    end
  end
  line:put(" ")
  return line:tostring()
end

---------------------------------------------------------------- influx

-- Line protocol escapes with a backslash: "," and " " in measurements;
-- ",", "=" and " " in tag keys and values. Control bytes become "_" (a line
-- cannot hold a newline there).
local function no_ctl(b) return b >= 32 and b ~= 127 end
local MEASUREMENT = make_map(no_ctl, "_", { [","] = "\\,", [" "] = "\\ " })
local TAG = make_map(no_ctl, "_", { [","] = "\\,", ["="] = "\\=", [" "] = "\\ " })
-- String field values: '"' and '\' are escaped; newline and carriage return
-- are written as the two characters \n and \r, so one sample stays one line.
local STRING = make_map(function() return true end, nil,
  { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r" })

function M.influx_measurement(s) return map_bytes(s, MEASUREMENT) end
function M.influx_tag(s) return map_bytes(s, TAG) end
function M.influx_string(s) return map_bytes(s, STRING) end

-- "<measurement>[,k=v...] " for a series; keys are sorted, empty keys or
-- values are left out (line protocol has no empty tag).
function M.influx_series(name, tags, keys)
  local m = M.influx_measurement(name)
  line:reset()
  line:put(m)
  for i = 1, #keys do
    local k = keys[i]
    local ek, ev = M.influx_tag(k), M.influx_tag(tags[k])
    if ek ~= "" and ev ~= "" then line:put(",", ek, "=", ev) end
  end
  line:put(" ")
  return line:tostring()
end

---------------------------------------------------------------- caches

-- One cache per forwarder (its opts table): the lines built per series id,
-- plus the options that shaped them; rebuilt when those change. Holds the
-- sanitized prefix too, so a batch does no string work before its loop.
local caches = setmetatable({}, { __mode = "k" })

local function cache_for(opts, what, mode, prefix)
  local c = caches[opts]
  if c == nil or c.what ~= what or c.mode ~= mode or c.prefix ~= prefix then
    c = { what = what, mode = mode, prefix = prefix, lines = {},
          gprefix = M.graphite_name(prefix or "") }
    caches[opts] = c
  end
  return c
end

---------------------------------------------------------------- encoders
--
-- Each encoder is split in two: a hot loop (`*_run`) that only formats
-- values from caches and returns the index of the first sample that needs
-- something built (a new series, a new text), and a cold step (`*_cold`)
-- that builds it. The loops that sanitize and escape byte by byte thus never
-- run inside the hot loop, so the JIT compiles it without aborts and never
-- blacklists it, however many new series a batch brings.

-- Escaped string-field texts keyed by the raw text (health messages and
-- levels repeat). Bounded: cleared when it holds TEXTS_MAX entries.
local TEXTS_MAX = 4096
local texts, ntexts = { [""] = "" }, 1

local function cache_text(t)
  if texts[t] ~= nil then return end
  if ntexts >= TEXTS_MAX then texts, ntexts = { [""] = "" }, 1 end
  texts[t] = map_bytes(t, STRING)
  ntexts = ntexts + 1
end

-- A sample's text (msg or level offset) from the batch's text arena, ""
-- for none: moonstat.encoder's text(), without its tail call.
local function sample_text(arena, off)
  if off == 0 then return "" end
  local s = ffi_string(arena + off - 1)
  return s
end

local MODES = { path = true, tagged = true, none = true }

local function graphite_run(batch, out, lines, first, n, skip)
  local s = batch.s
  local last_ts, ts_text = -huge, "" -- numbers from the start: stable types for the JIT
  for i = first, n - 1 do
    local smp = s[i]
    local v = smp.value
    if smp.kind ~= EVENT and v == v and v ~= huge and v ~= -huge then
      local path = lines[smp.series]
      if path == nil then return i, skip end
      if path then
        local ts = floor(smp.ts)
        if ts ~= last_ts then last_ts, ts_text = ts, fmt("%d", ts) end
        out:put(path)
        put_number(out, v)
        out:put(" ", ts_text, "\n")
      end
    else
      skip = skip + 1
    end
  end
  return n, skip
end

local function graphite_cold(batch, lines, i, mode, prefix)
  local id = batch.s[i].series
  local se = series(id)
  lines[id] = se and M.graphite_series(mode, prefix, se.name, se.tags, se.keys) or false
end

-- Graphite plaintext for a batch. Events are skipped, health samples write
-- their value, NaN and infinities are skipped (carbon drops them anyway).
-- Returns how many samples it skipped.
function M.encode_graphite(batch, out, opts, mode, prefix, who)
  if not MODES[mode] then
    error(("%s forwarder: unknown tag_mode '%s' (path | tagged | none)"):format(
      who or "graphite", tostring(mode)), 0)
  end
  local c = cache_for(opts, "graphite", mode, prefix)
  local lines, gprefix = c.lines, c.gprefix
  local n = batch.n
  local i, skip = graphite_run(batch, out, lines, 0, n, 0)
  while i < n do
    graphite_cold(batch, lines, i, mode, gprefix)
    i, skip = graphite_run(batch, out, lines, i, n, skip)
  end
  return skip
end

local function influx_run(batch, out, lines, first, n, skip)
  local s, arena = batch.s, batch.text
  local last_ts, ts_text = -huge, "" -- numbers from the start: stable types for the JIT
  for i = first, n - 1 do
    local smp = s[i]
    local pre = lines[smp.series]
    if pre == nil then return i, skip end
    local kind, v = smp.kind, smp.value
    if pre and (kind == EVENT or (v == v and v ~= huge and v ~= -huge)) then
      local ts = smp.ts
      if ts ~= last_ts then last_ts, ts_text = ts, ns(ts) end
      if kind == EVENT then
        local t = texts[sample_text(arena, smp.msg)]
        if t == nil then return i, skip end
        out:put(pre, 'text="', t, '" ', ts_text, "\n")
      elseif kind == HEALTH then
        local m = texts[sample_text(arena, smp.msg)]
        local l = texts[sample_text(arena, smp.level)]
        if m == nil or l == nil then return i, skip end
        out:put(pre, "value=", number(v), ',message="', m, '",level="', l, '" ', ts_text, "\n")
      elseif kind == COUNTER and v == floor(v) and v > -9.2e18 and v < 9.2e18 then
        out:put(pre, "value=")
        out:putf("%d", v)
        out:put("i ", ts_text, "\n")
      else
        out:put(pre, "value=")
        put_number(out, v)
        out:put(" ", ts_text, "\n")
      end
    else
      skip = skip + 1
    end
  end
  return n, skip
end

local function influx_cold(batch, lines, i)
  local smp = batch.s[i]
  local id = smp.series
  if lines[id] == nil then
    local se = series(id)
    lines[id] = se and M.influx_series(se.name, se.tags, se.keys) or false
  end
  cache_text(sample_text(batch.text, smp.msg))
  cache_text(sample_text(batch.text, smp.level))
end

-- InfluxDB line protocol for a batch: field value=<float> (counters with an
-- integral value as value=<n>i), health samples add message="" and level="",
-- events write text="" only. NaN and infinities are skipped (line protocol
-- has no such float). Returns how many samples it skipped.
function M.encode_influx(batch, out, opts)
  local lines = cache_for(opts, "influx").lines
  local n = batch.n
  local i, skip = influx_run(batch, out, lines, 0, n, 0)
  while i < n do
    influx_cold(batch, lines, i)
    i, skip = influx_run(batch, out, lines, i, n, skip)
  end
  return skip
end

-- The `format` option of the file and stdout forwarders.
function M.encode_format(batch, out, opts, who)
  local f = opts.format
  if f == "influx" then
    return M.encode_influx(batch, out, opts)
  elseif f == "graphite" then
    return M.encode_graphite(batch, out, opts, "tagged", "", who)
  else
    error(("%s forwarder: unknown format '%s' (influx | graphite)"):format(
      who or "file", tostring(f)), 0)
  end
end

return M
