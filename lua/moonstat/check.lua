-- moonstat.check: the `ms` API that every check sees (docs/checks.md).
--
-- Each check runs in its own Lua state; the host loads this module into it
-- as the global `ms` before loading the check file. Samples a run emits are
-- gathered here and handed to C in one FFI call when the run ends (or every
-- `flush_every` samples), never one call per sample.
--
--   ms.timestamp()                          this run's time (unix seconds, integer)
--   ms.gauge(name, value [, tags [, ts]])   a level; ts: unix seconds of the
--                                           sample (default: the run's time)
--   ms.counter(name, value [, tags [, ts]]) a growing total, forwarded as is
--   ms.rate(name, value [, tags])           per-second rate against the previous
--                                           value of this series; nothing on the
--                                           first call or after a reset
--   ms.send_special(name, health, message [, level])
--                                           health event: 0 OK, 8 WARNING, 16 ERROR
--   ms.event(name, text [, tags])           an event with text
--   ms.config                               this check's config.yaml section
--   ms.name                                 this check's name
--   ms.log.debug/info/warn/error(fmt, ...)  logging with the caller's file:line
--   ms.read_file(path)                      whole file as a string, or nil, err
local ffi = require "ffi"
local buffer = require "string.buffer"
local K = require "moonstat.ffi"
local C = K.C

local host = rawget(_G, "__moonstat") or {}
rawset(_G, "__moonstat", nil)

local ms = {
  name = host.name or "?",
  file = host.file or "?",
  config = host.config or {},
  log = {},
  flush_every = 1000,
}

local GAUGE, COUNTER, RATE, HEALTH, EVENT = K.GAUGE, K.COUNTER, K.RATE, K.HEALTH, K.EVENT
local check_ptr = host.check
local recs = buffer.new()
local n = 0
local run_ts = math.floor(C.ms_ffi_now())
local type, tostring, tonumber, pairs, error = type, tostring, tonumber, pairs, error
local fmt, floor = string.format, math.floor
local KIND_CHAR = { [0] = "0", "1", "2", "3", "4" }

-- Hand what was gathered to C in one call. Returns the number kept. The
-- records are text (see ms_ffi_check_submit): checks run interpreted, where
-- building one string is cheaper than filling C arrays element by element.
local function flush()
  if n == 0 then return 0 end
  local p, len = recs:ref()
  local kept = 0
  if check_ptr then kept = C.ms_ffi_check_submit(check_ptr, p, len, n) end
  recs:reset()
  n = 0
  if kept < 0 then error("moonstat: a sample name, tag or message contains a NUL byte", 0) end
  return kept
end

local function put_tags(tags)
  if tags == nil then return end
  if type(tags) ~= "table" then error("tags must be a table of key = value", 3) end
  for k, v in pairs(tags) do
    recs:put(tostring(k), "\0", tostring(v), "\0")
  end
end

local function emit(name, value, tags, kind, msg, level, ts)
  if type(name) ~= "string" or name == "" then
    error("metric name must be a non-empty string", 3)
  end
  local v = tonumber(value)
  if v == nil then
    error("value of '" .. name .. "' must be a number, got " .. tostring(value), 3)
  end
  local t = 0 -- 0: the run's time
  if ts ~= nil then
    t = tonumber(ts)
    if t == nil or t <= 0 or t ~= t or t == math.huge then
      error("timestamp of '" .. name .. "' must be unix seconds > 0, got " .. tostring(ts), 3)
    end
  end
  recs:put(KIND_CHAR[kind], name, "\0")
  put_tags(tags)
  -- values: integers as such, others with 17 digits (read back exactly)
  local vs = (v == floor(v) and v < 9007199254740992 and v > -9007199254740992)
    and fmt("%d", v) or fmt("%.17g", v)
  recs:put("\0", msg or "", "\0", level or "", "\0", vs, "\0",
    t ~= 0 and fmt("%.17g", t) or "", "\0\30")
  n = n + 1
  if n >= ms.flush_every then flush() end
end

function ms.timestamp() return run_ts end
function ms.gauge(name, value, tags, ts) emit(name, value, tags, GAUGE, nil, nil, ts) end
function ms.counter(name, value, tags, ts) emit(name, value, tags, COUNTER, nil, nil, ts) end
function ms.rate(name, value, tags) emit(name, value, tags, RATE) end

function ms.event(name, text, tags)
  emit(name, 1, tags, EVENT, tostring(text or ""), nil)
end

-- PuyPuy's health levels: 0 OK, 8 WARNING, 16 ERROR. `level` defaults from health.
function ms.send_special(name, health, message, level, tags)
  local h = tonumber(health)
  if h == nil then error("health of '" .. tostring(name) .. "' must be a number", 2) end
  if level == nil then
    level = (h >= 16 and "ERROR") or (h >= 8 and "WARNING") or "OK"
  end
  emit(name, h, tags, HEALTH, tostring(message or ""), tostring(level))
end

function ms.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

-- Logging, prefixed with the calling script's file:line.
local levels = { debug = 0, info = 1, warn = 2, error = 3 }
for lname, lv in pairs(levels) do
  ms.log[lname] = function(fmt, ...)
    local info = debug.getinfo(2, "Sl")
    local where = (info and info.short_src or "?") .. ":" .. (info and info.currentline or 0)
    local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
    C.ms_ffi_log(lv, where, msg)
  end
end

-- Called by the host for each run: sets the run time, calls collect, then
-- flushes. Errors propagate to the host after the samples emitted so far are
-- flushed (a failed run still delivers what it measured).
function ms._run(collect, ts)
  run_ts = math.floor(ts)
  local ok, err = pcall(collect)
  local fok, ferr = pcall(flush)
  if not ok then error(err, 0) end
  if not fok then error(ferr, 0) end
end

function ms._flush() return flush() end

return ms
