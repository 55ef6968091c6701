-- moonstat.encoder: what every forwarder encoder (forwarders/*.lua) shares.
--
-- An encoder is called once per batch with
--   encode(batch, out, opts)
-- where `batch` is a `ms_batch *` (batch.n samples in batch.s[0 .. n-1]),
-- `out` is a reusable string.buffer to append the wire format to, and `opts`
-- holds the forwarder's options with defaults applied.
--
-- A sample `s = batch.s[i]` has s.value, s.ts (unix seconds), s.kind (see
-- moonstat.ffi), s.series (an id: use `series(s.series)`), and for health
-- samples and events the texts `text(batch, s.msg)` and `text(batch, s.level)`.
--
-- series(id) returns a cached table { name = "cpu.user", key = "cpu.user{host=a}",
-- tags = { host = "a" }, keys = { "host" } } where `keys` are the tag keys in
-- sorted order. The cache is keyed by id; ids never change meaning, so it is
-- never stale.
local ffi = require "ffi"
local K = require "moonstat.ffi"
local C = K.C

local M = {}
local cache = {}
local ffi_string = ffi.string

local function load_series(id)
  local p = C.ms_ffi_series(id)
  if p == nil then return nil end
  local tags, keys = {}, {}
  for i = 0, p.ntags - 1 do
    local t = p.tags[i]
    local k = ffi_string(t.k, t.klen)
    tags[k] = ffi_string(t.v, t.vlen)
    keys[#keys + 1] = k
  end
  local s = { id = id, name = ffi_string(p.name, p.name_len),
              key = ffi_string(p.key, p.key_len), tags = tags, keys = keys }
  cache[id] = s
  return s
end

-- The series table for an id (cached), or nil for an unknown id.
function M.series(id)
  return cache[id] or load_series(id)
end

-- Text stored with a sample (msg or level offset), or nil.
-- (results go through a local: a tail call of a C function aborts traces)
function M.text(batch, off)
  if off == 0 then return nil end
  local s = ffi_string(batch.text + off - 1)
  return s
end

M.kind_names = K.kind_names
M.GAUGE, M.COUNTER, M.RATE, M.HEALTH, M.EVENT = K.GAUGE, K.COUNTER, K.RATE, K.HEALTH, K.EVENT

-- Format a number the way time-series databases read it back: integers
-- (|v| < 2^53, where every integer is exact) without a fraction, others with the fewest digits (15 to 17)
-- that read back to the same double; NaN and the infinities spelled as
-- Prometheus and InfluxDB read them. Results go through a local: a builtin
-- returning straight into a caller's loop aborts its trace.
--
-- Fast path: a value with at most 4 decimals (12.5, 0.37, 99.125: most
-- gauges) is written from integers, without printf and the read-back. If
-- m = v * 10^k is an integer below 10^15 and m / 10^k == v (division rounds
-- correctly, so v is the double nearest to the decimal m / 10^k), that
-- decimal is exactly what "%.15g" prints; a last digit 0 means a shorter k
-- exists, so it falls through to printf rather than print "12.30".
local floor, fmt, huge, tonumber = math.floor, string.format, math.huge, tonumber
local buffer = require "string.buffer"

-- The fast path: v with `scale` = 10^k written as "<int>.<k digits>" into
-- out, or false when it does not apply.
local function put_fixed(out, v, scale, f)
  local m = v * scale
  if m == floor(m) and m > -1e15 and m < 1e15 and m / scale == v then
    local a = m < 0 and -m or m
    local ip = floor(a / scale)
    local fr = a - ip * scale
    if fr % 10 ~= 0 then
      out:putf(f, m < 0 and "-" or "", ip, fr)
      return true
    end
  end
  return false
end

-- The rest: NaN, infinities, and the shortest printf form that reads back.
local function slow(v)
  local s
  if v ~= v then
    s = "NaN"
  elseif v == huge then
    s = "+Inf"
  elseif v == -huge then
    s = "-Inf"
  else
    s = fmt("%.15g", v)
    if tonumber(s) ~= v then
      s = fmt("%.16g", v)
      if tonumber(s) ~= v then s = fmt("%.17g", v) end
    end
  end
  return s
end

-- number(v) appended to a string.buffer, formatted straight into it (putf
-- makes no intermediate string) for integers and the fast path. The hot
-- loops of the encoders use it.
local function put_number(out, v)
  if v == floor(v) and v > -9007199254740992 and v < 9007199254740992 then
    out:putf("%d", v)
  elseif not (put_fixed(out, v, 10, "%s%d.%01d") or put_fixed(out, v, 100, "%s%d.%02d")
      or put_fixed(out, v, 1000, "%s%d.%03d") or put_fixed(out, v, 10000, "%s%d.%04d")) then
    out:put(slow(v))
  end
end
M.put_number = put_number

-- The number as a string.
local scratch = buffer.new()
function M.number(v)
  scratch:reset()
  put_number(scratch, v)
  local s = scratch:tostring()
  return s
end

return M
