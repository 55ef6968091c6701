-- moonstat.testing: helpers for Lua tests, run with `moonstat --script FILE`.
--
--   local T = require "moonstat.testing"
--   T.ok(cond, "what")  T.eq(got, want, "what")  T.like(str, pattern, "what")
--   T.batch(samples)            -> ms_batch* built from
--                                  { {name=, tags={}, value=, kind="gauge", ts=, msg=, level=}, ... }
--   T.encode(file, opts, samples) -> the bytes forwarders/<file> writes for them
--   T.run_check(file, config, ts) -> samples a check emits in one run (rates
--                                  included), or nil, err. Uses the real check
--                                  host: own state, JIT off, limits.
--   T.check(file, config)       -> a loaded check c; c:run(ts) as above, many
--                                  times on the same state; c:close()
--   T.trace_aborts(fn)          -> runs fn with the JIT on and returns the list of
--                                  trace aborts (empty when every loop compiled)
--   T.done()                    -> prints the plan; exits non-zero on failure
local ffi = require "ffi"
local buffer = require "string.buffer"
local K = require "moonstat.ffi"
local fw = require "moonstat.forwarder"
local C = K.C

pcall(ffi.cdef, [[
uint32_t ms_series_intern(const char *name, size_t name_len, const ms_tag *tags, size_t ntags);
ms_batch *ms_batch_new(uint32_t cap);
int ms_batch_add(ms_batch *b, uint32_t series, int kind, double value, double ts,
                 const char *msg, size_t msg_len, const char *level, size_t level_len);
void ms_batch_unref(ms_batch *b);
]])

local T = { n = 0, failed = 0 }

local function report(cond, what)
  T.n = T.n + 1
  if cond then
    print(("ok %d - %s"):format(T.n, what))
  else
    T.failed = T.failed + 1
    local info = debug.getinfo(3, "Sl") or { short_src = "?", currentline = 0 }
    print(("not ok %d - %s (%s:%d)"):format(T.n, what, info.short_src, info.currentline))
  end
  return cond
end

-- (report is never tail-called, so level 3 in it is the test's own line)
function T.ok(cond, what)
  local r = report(not not cond, what)
  return r
end

function T.eq(got, want, what)
  local cond = got == want
  if not cond then
    what = ("%s: got %s, want %s"):format(what, tostring(got), tostring(want))
  end
  local r = report(cond, what)
  return r
end

function T.like(s, pat, what)
  local cond = type(s) == "string" and s:find(pat) ~= nil
  if not cond then what = ("%s: %q does not match %q"):format(what, tostring(s), pat) end
  local r = report(cond, what)
  return r
end

function T.done()
  print("1.." .. T.n)
  if T.failed > 0 then os.exit(1) end
  os.exit(0)
end

-- Build a batch from sample tables. The batch is freed by the GC.
function T.batch(samples)
  local b = C.ms_batch_new(#samples)
  for _, s in ipairs(samples) do
    local tags = s.tags or {}
    local list, nt = {}, 0
    for k, v in pairs(tags) do nt = nt + 1; list[nt] = { tostring(k), tostring(v) } end
    local ct = ffi.new("ms_tag[?]", math.max(nt, 1))
    for i, kv in ipairs(list) do
      ct[i - 1].k, ct[i - 1].klen = kv[1], #kv[1]
      ct[i - 1].v, ct[i - 1].vlen = kv[2], #kv[2]
    end
    local id = C.ms_series_intern(s.name, #s.name, ct, nt)
    assert(id ~= 0, "series table full")
    local kind = K.kinds[s.kind or "gauge"] or error("bad kind " .. tostring(s.kind))
    local msg, level = s.msg, s.level
    assert(C.ms_batch_add(b, id, kind, s.value, s.ts or 1700000000, msg, msg and #msg or 0,
      level, level and #level or 0) == 0)
  end
  return ffi.gc(b, C.ms_batch_unref)
end

-- Load an encoder file and apply option defaults (plain values or {default=}).
function T.encoder(file, opts)
  local mod = dofile(file)
  local o = {}
  for k, spec in pairs(mod.options or {}) do
    if type(spec) == "table" and spec.type then o[k] = spec.default else o[k] = spec end
  end
  for k, v in pairs(opts or {}) do o[k] = v end
  return mod, o
end

function T.encode(file, opts, samples)
  local mod, o = T.encoder(file, opts)
  local out = buffer.new()
  local b = T.batch(samples) -- keep the batch referenced while it is encoded
  mod.encode(b, out, o)
  local s = out:tostring()
  return s, b
end

local function host()
  local h = rawget(_G, "__moonstat_test")
  assert(h, "moonstat.testing needs `moonstat --script`")
  return h
end

-- A check loaded once, run as often as the test likes (state it keeps
-- between runs, like cpu's previous reading, survives):
--   local c = assert(T.check("checks/cpu.lua", { proc_root = ... }))
--   local samples = c:run(1000)   -- or nil, err
function T.check(file, config)
  local h = host()
  local handle, err = h.load_check(file, config or {})
  if not handle then return nil, err end
  return {
    run = function(_, ts) return h.run(handle, ts or os.time()) end,
    close = function() h.close(handle) end,
  }
end

function T.run_check(file, config, ts)
  local c, err = T.check(file, config)
  if not c then return nil, err end
  local samples, rerr = c:run(ts)
  c:close()
  return samples, rerr
end

function T.trace_aborts(fn)
  local jit = require "jit"
  local aborts = {}
  local function cb(what, tr, func, pc, otr, oex)
    if what == "abort" then
      local info = require("jit.util").funcinfo(func, pc)
      aborts[#aborts + 1] = ("%s: %s"):format(info.loc or "?", tostring(otr))
    end
  end
  jit.on()
  jit.flush()
  jit.attach(cb, "trace")
  local ok, err = pcall(fn)
  jit.attach(cb)
  if not ok then error(err, 0) end
  return aborts
end

T.fw = fw
return T
