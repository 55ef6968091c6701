-- tests/lua/test_prometheus.lua: forwarders/prometheus.lua, the Prometheus
-- text exposition encoder. Run: ./moonstat --script tests/lua/test_prometheus.lua
local T = require "moonstat.testing"
local ffi = require "ffi"
local buffer = require "string.buffer"

local FILE = "forwarders/prometheus.lua"
-- moonstat adds the base tags (host=<this machine>) to every series; the
-- expectations below are written without it.
local function nohost(s)
  return (s:gsub('host="[^"]*",?', ""):gsub(",}", "}"):gsub("{}", ""))
end
local function enc(samples, opts) return nohost(T.encode(FILE, opts, samples)) end

-- Lines of s as a list.
local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

-- The checks run inside a function: moonstat.testing looks up the caller
-- of a failed check two levels up, which does not exist at the top level.
local function main()
local mod = T.encoder(FILE)
T.eq(mod.transport, "scrape", "transport is scrape")
T.eq(mod.options.listen.default, "127.0.0.1:9558", "listen default")
T.eq(mod.options.listen.type, "address", "listen is an address")
T.eq(mod.options.expire.default, "5m", "expire default")
T.eq(mod.options.max_series.default, 100000, "max_series default")
T.eq(mod.options.prefix.default, "", "prefix default")

-- a simple gauge: HELP, TYPE, sample, no timestamp
local out = enc({ { name = "test.gauge", value = 42, tags = { role = "db" } } })
T.eq(out, '# HELP test_gauge test.gauge\n# TYPE test_gauge gauge\ntest_gauge{role="db"} 42\n',
  "gauge with one tag")

-- names
T.eq(mod.metric_name("cpu.user"), "cpu_user", "dots become _")
T.eq(mod.metric_name("5xx.count"), "_5xx_count", "leading digit gets _")
T.eq(mod.metric_name("a-b c/d:e"), "a_b_c_d:e", "other bytes become _, colon kept")
T.eq(mod.metric_name("caf\195\169"), "caf__", "non-ASCII bytes become _")
T.eq(mod.metric_name(""), "_", "empty name")
T.eq(mod.label_name("host.name"), "host_name", "label name dots")
T.eq(mod.label_name("9lives"), "_9lives", "label leading digit")
T.eq(mod.label_name("__name__"), "_name__", "label never starts with __")
T.eq(mod.label_name("a:b"), "a_b", "colon not allowed in label names")

out = enc({ { name = "disk.used %", value = 1, tags = { mount = "/", ["1x"] = "a" } } })
T.like(out, '\ndisk_used__{_1x="a",mount="/"} 1\n', "name and label names sanitized, keys sorted")

out = enc({ { name = "x", value = 1, tags = { ["a.b"] = "1", a_b = "2" } } })
T.like(out, '\nx{a_b="1"} 1\n', "colliding label names: first key kept")

out = enc({ { name = "m", value = 1 } }, { prefix = "ms." })
T.like(out, "# TYPE ms_m gauge\nms_m 1\n", "prefix prepended and sanitized")

-- label values
out = enc({ { name = "esc", value = 1, tags = { v = 'a\\b"c\nd' } } })
T.like(out, 'esc{v="a\\\\b\\"c\\nd"} 1', "backslash, quote, newline escaped")
T.eq(mod.label_value("ok\255x"), "ok\239\191\189x", "invalid UTF-8 replaced")
T.eq(mod.label_value("caf\195\169"), "caf\195\169", "valid UTF-8 kept")

-- HELP/TYPE once per family, even interleaved and via different raw names
out = enc({
  { name = "a.b", value = 1, tags = { i = "1" } },
  { name = "zz", value = 2 },
  { name = "a.b", value = 3, tags = { i = "2" } },
  { name = "a_b", value = 4, tags = { i = "3" } },
  { name = "zz", value = 5, tags = { j = "x" } },
})
T.eq(count(out, "# HELP a_b "), 1, "one HELP for a_b")
T.eq(count(out, "# TYPE a_b "), 1, "one TYPE for a_b")
T.eq(count(out, "# TYPE zz "), 1, "one TYPE for zz")
T.like(out, '^# HELP a_b a%.b\n# TYPE a_b gauge\na_b{i="1"} 1\na_b{i="2"} 3\na_b{i="3"} 4\n' ..
  '# HELP zz zz\n# TYPE zz gauge\nzz 2\nzz{j="x"} 5\n$', "families contiguous, in first-seen order")

-- duplicate identities are written once
out = enc({ { name = "d.x", value = 1 }, { name = "d_x", value = 2 }, { name = "d.x", value = 3 } })
T.eq(count(out, "\nd_x "), 1, "same name and labels written once")

-- types
out = enc({
  { name = "req", value = 7, kind = "counter" },
  { name = "g", value = 1, kind = "gauge" },
  { name = "r", value = 0.5, kind = "rate" },
})
T.like(out, "# TYPE req counter\nreq 7\n", "counter TYPE")
T.like(out, "# TYPE g gauge\n", "gauge TYPE")
T.like(out, "# TYPE r gauge\nr 0.5\n", "rate is a gauge")

-- health and events
out = enc({
  { name = "test.health", value = 8, kind = "health", msg = "disk almost full", level = "WARNING" },
  { name = "h2", value = 0, kind = "health", tags = { svc = "db" }, level = "OK" },
  { name = "h3", value = 16, kind = "health", tags = { level = "mine" }, level = "ERROR" },
  { name = "h4", value = 0, kind = "health" },
  { name = "ev", value = 1, kind = "event", msg = "deployed" },
})
T.like(out, '# TYPE test_health gauge\ntest_health{level="WARNING"} 8\n', "health: level label")
T.like(out, 'h2{svc="db",level="OK"} 0\n', "health: level after the tags")
T.like(out, 'h3{level="mine"} 16\n', "health: an own level tag wins")
T.like(out, '\nh4 0\n', "health without a level: no label")
T.ok(not out:find("disk almost full", 1, true), "health message not written")
T.ok(not out:find("\nev", 1, true) and not out:find("deployed", 1, true), "events skipped")
T.eq(enc({ { name = "only", value = 1, kind = "event" } }), "", "a batch of events writes nothing")

-- numbers
T.eq(mod.number(42), "42", "integer")
T.eq(mod.number(-3), "-3", "negative integer")
T.eq(mod.number(1e15), "1000000000000000", "big integer without exponent")
T.eq(mod.number(0.1), "0.1", "shortest repr 0.1")
T.eq(mod.number(1 / 3), "0.3333333333333333", "shortest repr 1/3")
T.eq(mod.number(1e300), "1e+300", "huge finite")
T.eq(mod.number(2 ^ 60), "1.152921504606847e+18", "beyond 2^53: shortest repr")
T.eq(tonumber(mod.number(2 ^ 60)), 2 ^ 60, "beyond 2^53 reads back")
T.eq(mod.number(0 / 0), "NaN", "NaN")
T.eq(mod.number(math.huge), "+Inf", "+Inf")
T.eq(mod.number(-math.huge), "-Inf", "-Inf")
out = enc({ { name = "n", value = 0 / 0 }, { name = "n", value = 1, tags = { a = "1" } },
  { name = "p", value = math.huge }, { name = "q", value = -0.25 } })
T.like(out, "\nn NaN\n", "NaN sample")
T.like(out, "\np %+Inf\n", "+Inf sample")
T.like(out, "\nq %-0.25\n", "negative fraction")

-- every line is valid exposition syntax
local ok = true
for _, l in ipairs(lines(out)) do
  if not (l:match("^# HELP [%a_:][%w_:]* ") or l:match("^# TYPE [%a_:][%w_:]* %a+$")
      or l:match('^[%a_:][%w_:]*{?.-}? [-+%w.]+$')) then
    ok = false
    print("# bad line: " .. l)
  end
end
T.ok(ok, "every line parses")

-- the encode loop compiles: 200 runs over a 1000-sample batch
local samples = {}
for i = 1, 1000 do
  local k = i % 5
  samples[i] = {
    name = "bench.metric." .. (i % 37), value = (k == 0) and i or i / 7,
    kind = ({ "gauge", "counter", "rate", "health", "gauge" })[k + 1],
    tags = { host = "h" .. (i % 11), idx = tostring(i) },
    level = (k == 3) and "WARNING" or nil, msg = (k == 3) and "m" or nil,
  }
end
samples[1000].kind = "event"
local b = T.batch(samples) -- kept referenced: the GC frees a batch nobody holds
local bmod, bopts = T.encoder(FILE)
local buf = buffer.new()
-- warm the per-series cache (built once per series) with the JIT off, so what
-- this cold step leaves (blacklisted loops, hot counters) cannot decide the
-- result, and run pending finalizers now rather than during a recording
jit.off()
bmod.encode(b, buf, bopts)
jit.on()
collectgarbage()
local first = buf:tostring()
T.eq(count(first, "\n# TYPE "), 37, "37 families")
T.eq(count(first, "\nbench_metric_"), 999, "999 samples (one event skipped)")
local aborts = T.trace_aborts(function()
  for _ = 1, 200 do
    buf:reset()
    bmod.encode(b, buf, bopts)
  end
end)
local mine = {}
for _, a in ipairs(aborts) do
  if a:find("prometheus.lua", 1, true) then mine[#mine + 1] = a end
end
T.eq(#mine, 0, "no trace aborts in forwarders/prometheus.lua" ..
  (#mine > 0 and (": " .. table.concat(mine, "; ")) or ""))
T.eq(buf:tostring(), first, "repeated encodes give the same bytes")
end

main()
T.done()
