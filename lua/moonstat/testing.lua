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
--   T.samples(batch)            -> the batch's samples as tables
--                                  { name=, tags={}, value=, ts=, kind="gauge", msg=, level= }
--   T.find(samples, name, tags) -> the first sample named `name` whose tags include
--                                  `tags` (a tag given as false must be absent), or nil
--   T.value(samples, name, tags) -> its value, or nil
--   T.count(samples, name, k, v) -> how many samples are named `name` (any name when
--                                  nil) and have tag k = v (any tags when k is nil)
--   T.names(samples)            -> the distinct sample names, sorted, joined by ","
--   T.read(path)                -> a whole file (the test fails when it cannot be read)
--   T.processors(list)          -> a processor chain p, built like config.yaml's
--                                  `processors:` list ("name" or { name = settings },
--                                  settings may hold drop_on_error) from lua/processors/;
--                                  p:run(batch, now) runs it over the batch in place
--                                  and returns T.samples(batch); p.errors[k] and
--                                  p.dropped[k] count per processor (1-based);
--                                  p.fn(batch, now) runs it unprotected
--   T.trace_aborts(fn)          -> runs fn with the JIT on and returns the list of
--                                  trace aborts (empty when every loop compiled), and
--                                  the chunk names of the traces it compiled
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

-- (also returns the batch, and the parts list {offset, endpoint, nsamples,
-- ...} when the encoder started parts, see include/ms_forwarder.h)
function T.encode(file, opts, samples)
  local mod, o = T.encoder(file, opts)
  local out = buffer.new()
  local parts = fw.parts(out)
  local b = T.batch(samples) -- keep the batch referenced while it is encoded
  mod.encode(b, out, o, parts)
  local s = out:tostring()
  return s, b, parts.list
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

function T.samples(batch)
  local E = require "moonstat.encoder"
  local out = {}
  for i = 0, batch.n - 1 do
    local smp = batch.s[i]
    local se = E.series(smp.series)
    out[#out + 1] = { name = se and se.name, tags = se and se.tags or {}, value = smp.value,
                      ts = smp.ts, kind = K.kind_names[smp.kind], msg = E.text(batch, smp.msg),
                      level = E.text(batch, smp.level), series = smp.series }
  end
  return out
end

function T.find(samples, name, tags)
  for _, s in ipairs(samples or {}) do
    if s.name == name then
      local ok = true
      for k, v in pairs(tags or {}) do
        if v == false then
          ok = ok and s.tags[k] == nil
        else
          ok = ok and s.tags[k] == v
        end
      end
      if ok then return s end
    end
  end
end

function T.value(samples, name, tags)
  local s = T.find(samples, name, tags)
  return s and s.value
end

function T.count(samples, name, k, v)
  local n = 0
  for _, s in ipairs(samples or {}) do
    if (name == nil or s.name == name) and (k == nil or s.tags[k] == v) then n = n + 1 end
  end
  return n
end

function T.names(samples)
  local set, list = {}, {}
  for _, s in ipairs(samples or {}) do
    if not set[s.name] then
      set[s.name] = true
      list[#list + 1] = s.name
    end
  end
  table.sort(list)
  return table.concat(list, ",")
end

function T.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function T.processors(list, drop_on_error)
  local P = require "moonstat.processor"
  local fns, names, drop = {}, {}, {}
  for i, item in ipairs(list) do
    local name, settings = item, {}
    if type(item) == "table" then name, settings = next(item) end
    local st, d = {}, drop_on_error or false
    for k, v in pairs(settings) do
      if k == "drop_on_error" then d = v else st[k] = v end
    end
    local file = assert(package.searchpath("processors." .. name, package.path))
    fns[i] = P.instance(dofile(file), st, name)
    names[i], drop[i] = name, d
  end
  local counts = ffi.new("double[?]", 2 * #fns + 1)
  local run = P.chain(fns, names, drop, counts, "test")
  local p = { errors = {}, dropped = {}, counts = counts }
  function p.run(_, batch, now)
    P.run(run, batch, now or C.ms_ffi_now())
    for k = 1, #fns do
      p.errors[k], p.dropped[k] = counts[2 * k - 2], counts[2 * k - 1]
    end
    return T.samples(batch)
  end
  p.fn = run -- unprotected: fn(batch, now) (for JIT tests)
  return p
end

function T.trace_aborts(fn)
  local jit = require "jit"
  local aborts, stops = {}, {}
  local function cb(what, tr, func, pc, otr, oex)
    if what == "abort" then
      local info = require("jit.util").funcinfo(func, pc)
      aborts[#aborts + 1] = ("%s: %s"):format(info.loc or "?", tostring(otr))
    elseif what == "stop" then
      local info = require("jit.util").funcinfo(func)
      stops[#stops + 1] = info.source or "?"
    end
  end
  jit.on()
  jit.flush()
  jit.attach(cb, "trace")
  local ok, err = pcall(fn)
  jit.attach(cb)
  if not ok then error(err, 0) end
  return aborts, stops
end

-- A batch of n samples of every kind over 100 names and 3 tags (values,
-- timestamps, health messages with quotes): the load the encoder tests use.
function T.mixed_batch(n, ts)
  local kinds = { "gauge", "counter", "rate", "health", "event" }
  local samples = {}
  for i = 1, n do
    local kind = kinds[i % 5 + 1]
    samples[i] = {
      name = "app.metric" .. (i % 100),
      tags = { host = "web" .. (i % 3) .. ".example.com", region = "eu west", shard = tostring(i % 7) },
      value = kind == "counter" and i * 10 or i / 8,
      kind = kind,
      ts = ts + (i % 4) * 0.25,
      msg = (kind == "health" or kind == "event") and ('state "' .. (i % 4) .. '"') or nil,
      level = kind == "health" and "WARNING" or nil,
    }
  end
  return T.batch(samples)
end

-- Assert that an encoder's steady state compiles: no trace aborts over 300
-- encodes of `batch`, and that it wrote more than min_bytes. The first
-- encode builds the per-series caches (the cold step, whose byte loops may
-- abort traces harmlessly); it runs with the JIT off so what it leaves
-- (blacklisted loops, hot counters: jit.flush clears neither) cannot make
-- the result depend on the order of the tests.
function T.encoder_compiles(file, opts, batch, what, min_bytes)
  local jit = require "jit"
  local mod, o = T.encoder(file, opts)
  local out = buffer.new()
  local parts = fw.parts(out) -- one for all encodes, reset each time, as in the wrapper
  jit.off()
  mod.encode(batch, out, o, parts)
  jit.on()
  -- finalizers (batches of earlier tests) running while a trace is recorded
  -- abort it: run them now
  collectgarbage()
  local aborts = T.trace_aborts(function()
    for _ = 1, 300 do
      out:reset()
      parts:reset()
      mod.encode(batch, out, o, parts)
    end
  end)
  T.eq(#aborts, 0, what .. ": no trace aborts " .. table.concat(aborts, "; "))
  T.ok(#out > (min_bytes or 20000), what .. ": wrote the batch")
end

T.fw = fw
return T
