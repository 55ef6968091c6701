-- forwarders/graphite_pickle.lua: Graphite (carbon) pickle protocol over TCP.
--
-- carbon's pickle receiver (port 2004 by default) reads frames of
--   <4-byte big-endian length> <pickle, protocol 2, of [(path, (ts, value)), ...]>
-- This encoder writes the pickle opcodes itself:
--   \x80\x02  PROTO 2            ]  EMPTY_LIST        (  MARK
--   per sample:  X <u32 LE length> <UTF-8 path>       BINUNICODE (a str)
--                J <i32 LE seconds>                   BININT (G <f64 BE> after 2038)
--                G <f64 BE value>                     BINFLOAT
--                \x86 \x86                            TUPLE2 twice
--   e  APPENDS    .  STOP
-- so [("foo.bar", (1700000000, 1.5))] is, framed (hex):
--   00000022 8002 5d 28 58 07000000 666f6f2e626172 4a 00f15365
--   47 3ff8000000000000 86 86 65 2e
-- A batch larger than carbon's 1 MiB frame limit (MAX_LENGTH) is split into
-- several frames of at most 1,000,000 bytes.
--
--   forwarders:
--     carbon: { type: graphite_pickle, address: "graphite.example.com:2004", prefix: servers }
--
-- Options, paths, sanitizing, values: exactly forwarders/graphite.lua's
-- (address, prefix, tag_mode path | tagged | none); see docs/forwarders/graphite.md.
-- Events are skipped, health samples write their value, NaN and infinite
-- values are skipped; skipped samples are counted in
-- moonstat_forwarder_dropped_samples_total{reason="unencodable"}.
local ffi = require "ffi"
local E = require "moonstat.encoder"
local LP = require "moonstat.lineproto"

local series = E.series
local EVENT = E.EVENT
local floor, huge, error, tostring = math.floor, math.huge, error, tostring

local FRAME_MAX = 1000000
local LE = ffi.abi("le")
local d8 = ffi.new("union { double d; uint8_t b[8]; int32_t i; }")

local MODES = { path = true, tagged = true, none = true }

-- 'X' <u32 LE length> <path>, for a series (false: skip it).
local function series_op(id, mode, prefix)
  local se = series(id)
  if not se then return false end
  local line = LP.graphite_series(mode, prefix, se.name, se.tags, se.keys)
  local path = line:sub(1, -2) -- without the trailing space
  local n = #path
  return "X" .. string.char(n % 256, floor(n / 256) % 256, floor(n / 65536) % 256,
    floor(n / 16777216) % 256) .. path
end

-- 'G' and the 8 bytes of v, big-endian, appended to out.
local function put_double(out, v)
  d8.d = v
  local p = out:reserve(9)
  p[0] = 0x47
  local b = d8.b -- unrolled: short inner loops abort the enclosing trace
  if LE then
    p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8] = b[7], b[6], b[5], b[4], b[3], b[2], b[1], b[0]
  else
    p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8] = b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
  end
  out:commit(9)
end

local function put_ts(out, ts)
  if ts >= -2147483648 and ts <= 2147483647 then
    d8.i = ts
    local p = out:reserve(5)
    p[0] = 0x4a
    local b = d8.b
    if LE then
      p[1], p[2], p[3], p[4] = b[0], b[1], b[2], b[3]
    else
      p[1], p[2], p[3], p[4] = b[3], b[2], b[1], b[0]
    end
    out:commit(5)
  else
    put_double(out, ts)
  end
end

-- Frame bookkeeping: `start` is the offset of the current frame's length
-- field in out, or -1 when no frame is open.
local function open_frame(out)
  local start = #out
  out:put("\0\0\0\0\128\2](")
  return start
end

local function close_frame(out, start)
  out:put("e.")
  local len = #out - start - 4
  local p = out:ref()
  p[start] = floor(len / 16777216) % 256
  p[start + 1] = floor(len / 65536) % 256
  p[start + 2] = floor(len / 256) % 256
  p[start + 3] = len % 256
end

local function run(batch, out, ops, first, n, start, skip)
  local s = batch.s
  for i = first, n - 1 do
    local smp = s[i]
    local v = smp.value
    if smp.kind ~= EVENT and v == v and v ~= huge and v ~= -huge then
      local op = ops[smp.series]
      if op == nil then return i, start, skip end
      if op then
        if start >= 0 and #out - start > FRAME_MAX - 64 - #op then
          close_frame(out, start)
          start = -1
        end
        if start < 0 then start = open_frame(out) end
        out:put(op)
        put_ts(out, floor(smp.ts))
        put_double(out, v)
        out:put("\134\134")
      end
    else
      skip = skip + 1
    end
  end
  return n, start, skip
end

local caches = setmetatable({}, { __mode = "k" })

return {
  transport = "tcp",
  options = {
    address = { type = "address", default = "127.0.0.1:2004",
                help = "host:port of the carbon pickle receiver" },
    prefix = { type = "string", default = "",
               help = "path levels put before every metric, e.g. servers" },
    tag_mode = { type = "string", default = "path", choices = { "path", "tagged", "none" },
                 help = "path: tag values become levels; tagged: name;k=v; none: no tags" },
  },
  encode = function(batch, out, opts)
    local mode, prefix = opts.tag_mode, opts.prefix
    if not MODES[mode] then
      error(("graphite_pickle forwarder: unknown tag_mode '%s' (path | tagged | none)"):format(
        tostring(mode)), 0)
    end
    local c = caches[opts]
    if c == nil or c.mode ~= mode or c.prefix ~= prefix then
      c = { mode = mode, prefix = prefix, gprefix = LP.graphite_name(prefix or ""), ops = {} }
      caches[opts] = c
    end
    local ops, n = c.ops, batch.n
    local i, start, skip = run(batch, out, ops, 0, n, -1, 0)
    while i < n do
      local id = batch.s[i].series
      ops[id] = series_op(id, mode, c.gprefix)
      i, start, skip = run(batch, out, ops, i, n, start, skip)
    end
    if start >= 0 then close_frame(out, start) end
    return skip -- NaN/Inf and events: counted by the core as unencodable
  end,
}
