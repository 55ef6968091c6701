-- Encoders (forwarders/graphite.lua, file.lua, stdout.lua and the shared
-- lua/moonstat/lineproto.lua): exact bytes for each format and option, and
-- no JIT trace aborts while encoding a large batch again and again.
local T = require "moonstat.testing"
local ffi = require "ffi"
local buffer = require "string.buffer"
local LP = require "moonstat.lineproto"

-- Series interned here would get the agent's base tags (the host name);
-- clear them so the expected lines do not depend on the machine.
pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
ffi.C.ms_series_set_base_tags(nil, 0)

local TS = 1700000000
local G, F, S = "forwarders/graphite.lua", "forwarders/file.lua", "forwarders/stdout.lua"

---------------------------------------------------------------- helpers

T.eq(LP.number(12), "12", "number: integer")
T.eq(LP.number(-5), "-5", "number: negative integer")
T.eq(LP.number(0.1), "0.1", "number: shortest form")
T.eq(LP.number(12.34), "12.34", "number: no float noise")
T.eq(LP.number(1 / 3), "0.3333333333333333", "number: 16 digits when 15 do not read back")
T.eq(LP.number(0.1 + 0.2), "0.30000000000000004", "number: 17 digits when needed")
T.eq(LP.number(1e20), "1e+20", "number: large")
T.eq(LP.number(-0.05), "-0.05", "number: negative fraction (fast path)")
T.eq(LP.number(99.125), "99.125", "number: three decimals (fast path)")
T.eq(LP.number(0.0001), "0.0001", "number: four decimals, smallest")
T.eq(LP.number(0.00001), "1e-05", "number: below the fast path")
T.eq(LP.number(12.3), "12.3", "number: no trailing zero")
-- The fast paths (number's and put_number's) against the plain algorithm
-- over values of every shape: they must write the same text.
do
  local E = require "moonstat.encoder"
  local function slow(v)
    if v == math.floor(v) and v > -2^53 and v < 2^53 then return ("%d"):format(v) end
    for p = 15, 17 do
      local s = ("%." .. p .. "g"):format(v)
      if tonumber(s) == v then return s end
    end
  end
  local out, bad, n = buffer.new(), 0, 0
  math.randomseed(7)
  for i = 1, 200000 do
    local d = i % 7
    local v
    if d == 0 then v = math.random() * 1e6
    elseif d == 6 then v = (math.random(-1e9, 1e9)) / 10 ^ math.random(0, 6) * 10 ^ math.random(-8, 12)
    else v = math.random(-1e8, 1e8) / 10 ^ d end
    local want = slow(v)
    out:reset()
    E.put_number(out, v)
    n = n + 1
    if E.number(v) ~= want or out:tostring() ~= want then
      bad = bad + 1
      if bad < 4 then print(("# %.17g: %s / %s, want %s"):format(v, E.number(v), out:tostring(), want)) end
    end
  end
  T.eq(bad, 0, ("number and put_number equal printf's shortest form over %d values"):format(n))
end
T.eq(LP.ns(TS), "1700000000000000000", "ns: whole seconds")
T.eq(LP.ns(TS + 0.25), "1700000000250000000", "ns: fraction")
T.eq(LP.ns(TS + 0.000001), "1700000000000001000", "ns: rounded to the microsecond")

---------------------------------------------------------------- graphite

local web = { host = "web1", cpu = "0" }
local basic = {
  { name = "cpu.user", tags = web, value = 12.5, ts = TS + 0.9 },
  { name = "net.bytes", tags = { host = "web1", dev = "eth0" }, value = 1234, kind = "counter", ts = TS },
  { name = "net.rate", tags = { host = "web1" }, value = 0.1, kind = "rate", ts = TS },
  { name = "load.health", tags = { host = "web1" }, value = 8, kind = "health",
    msg = "WARNING: high", level = "WARNING", ts = TS },
  { name = "deploy", tags = { host = "web1" }, value = 1, kind = "event", msg = "v2", ts = TS },
  { name = "bad.nan", tags = { host = "web1" }, value = 0 / 0, ts = TS },
  { name = "bad.inf", tags = { host = "web1" }, value = math.huge, ts = TS },
}

T.eq(T.encode(G, {}, basic),
  "web1.0.cpu.user 12.5 1700000000\n" ..
  "web1.eth0.net.bytes 1234 1700000000\n" ..
  "web1.net.rate 0.1 1700000000\n" ..
  "web1.load.health 8 1700000000\n",
  "graphite path (default): host, tag values, name; health value; no events, NaN, inf")

T.eq(T.encode(G, { tag_mode = "tagged" }, basic),
  "cpu.user;cpu=0;host=web1 12.5 1700000000\n" ..
  "net.bytes;dev=eth0;host=web1 1234 1700000000\n" ..
  "net.rate;host=web1 0.1 1700000000\n" ..
  "load.health;host=web1 8 1700000000\n",
  "graphite tagged: name;k=v in key order")

T.eq(T.encode(G, { tag_mode = "none", prefix = "servers" }, basic),
  "servers.cpu.user 12.5 1700000000\n" ..
  "servers.net.bytes 1234 1700000000\n" ..
  "servers.net.rate 0.1 1700000000\n" ..
  "servers.load.health 8 1700000000\n",
  "graphite none with prefix")

local multi = {
  { name = "app.req", tags = { host = "web1.example.com", region = "eu west", az = "b.1" }, value = 42 },
  { name = "app.up", tags = { region = "eu" }, value = 1 },
}
T.eq(T.encode(G, { prefix = "dc1.servers" }, multi),
  "dc1.servers.web1_example_com.b_1.eu_west.app.req 42 1700000000\n" ..
  "dc1.servers.eu.app.up 1 1700000000\n",
  "graphite path: host first, others by key, dots and spaces in values -> _")
T.eq(T.encode(G, { prefix = "dc1.servers", tag_mode = "tagged" }, multi),
  "dc1.servers.app.req;az=b.1;host=web1.example.com;region=eu_west 42 1700000000\n" ..
  "dc1.servers.app.up;region=eu 1 1700000000\n",
  "graphite tagged: prefix before the name, dots kept in tag values")

local dirty = {
  { name = "..disk used/%..root..", tags = { host = "h", mount = "/var/log" }, value = 7 },
  { name = "x", tags = { host = "h", ["k;=!"] = "~v;w x" }, value = 1 },
}
T.eq(T.encode(G, { prefix = " my prefix. " }, dirty),
  "_my_prefix._.h._var_log.disk_used__.root 7 1700000000\n" ..
  "_my_prefix._.h._v_w_x.x 1 1700000000\n",
  "graphite path: unsafe bytes -> _, empty levels dropped")
T.eq(T.encode(G, { tag_mode = "tagged" }, dirty),
  "disk_used__.root;host=h;mount=/var/log 7 1700000000\n" ..
  "x;host=h;k___=_v_w_x 1 1700000000\n",
  "graphite tagged: ;!^= out of keys, ; and leading ~ and spaces out of values")

local ok, err = pcall(T.encode, G, { tag_mode = "labels" }, basic)
T.ok(not ok, "graphite: unknown tag_mode fails")
T.eq(err, "graphite forwarder: unknown tag_mode 'labels' (path | tagged | none)", "its message")

local g = dofile(G)
T.eq(g.transport({ protocol = g.options.protocol.default }), "tcp", "graphite: tcp transport by default")
T.eq(g.transport({ protocol = "udp" }), "udp", "graphite: protocol udp picks the udp transport")
T.eq(g.options.address.default, "127.0.0.1:2003", "graphite: default address")

---------------------------------------------------------------- file: influx

T.eq(T.encode(F, {}, basic),
  "cpu.user,cpu=0,host=web1 value=12.5 1700000000900000000\n" ..
  "net.bytes,dev=eth0,host=web1 value=1234i 1700000000000000000\n" ..
  "net.rate,host=web1 value=0.1 1700000000000000000\n" ..
  'load.health,host=web1 value=8,message="WARNING: high",level="WARNING" 1700000000000000000\n' ..
  'deploy,host=web1 text="v2" 1700000000000000000\n',
  "influx (default): fields per kind, integer counter, ns timestamps, no NaN/inf")

T.eq(T.encode(F, {}, {
  { name = "my metric,x=1", tags = { ["a b=c,d"] = "x,y z=w" }, value = 1 },
  { name = "ctl\nname", tags = { t = "a\tb" }, value = 2 },
}),
  "my\\ metric\\,x=1,a\\ b\\=c\\,d=x\\,y\\ z\\=w value=1 1700000000000000000\n" ..
  "ctl_name,t=a_b value=2 1700000000000000000\n",
  "influx: escaping of measurement, tag keys and values; control bytes -> _")

T.eq(T.encode(F, {}, {
  { name = "c", value = 5, kind = "counter" },
  { name = "c", value = 5.5, kind = "counter" },
  { name = "c", value = -3, kind = "counter" },
  { name = "g", value = 5, kind = "gauge" },
  { name = "g", value = 1e20, kind = "gauge" },
}),
  "c value=5i 1700000000000000000\n" ..
  "c value=5.5 1700000000000000000\n" ..
  "c value=-3i 1700000000000000000\n" ..
  "g value=5 1700000000000000000\n" ..
  "g value=1e+20 1700000000000000000\n",
  "influx: integral counters as integers, everything else as floats")

T.eq(T.encode(F, {}, {
  { name = "h", value = 16, kind = "health", msg = 'say "hi" \\ bye\nline 2', level = "ERROR" },
  { name = "e", value = 1, kind = "event", msg = 'a "b"\r\n' },
  { name = "e", value = 1, kind = "event" },
}),
  'h value=16,message="say \\"hi\\" \\\\ bye\\nline 2",level="ERROR" 1700000000000000000\n' ..
  'e text="a \\"b\\"\\r\\n" 1700000000000000000\n' ..
  'e text="" 1700000000000000000\n',
  "influx: string fields escape quotes and backslashes, newlines as \\n")

T.eq(T.encode(F, {}, { { name = "t", value = 1, ts = 1700000000.123456 } }),
  "t value=1 1700000000123456000\n", "influx: microseconds kept in the ns timestamp")

ok, err = pcall(T.encode, F, { format = "xml" }, basic)
T.ok(not ok, "file: unknown format fails")
T.eq(err, "file forwarder: unknown format 'xml' (influx | graphite)", "its message")

local f = dofile(F)
T.eq(f.transport, "file", "file: file transport")
T.eq(f.options.path.default, "-", "file: stdout by default")

---------------------------------------------------------------- file: graphite, stdout

T.eq(T.encode(F, { format = "graphite" }, basic), T.encode(G, { tag_mode = "tagged" }, basic),
  "file graphite = graphite tagged")
T.eq(T.encode(S, {}, basic), T.encode(F, {}, basic), "stdout = file (influx)")
T.eq(T.encode(S, { format = "graphite" }, multi), T.encode(F, { format = "graphite" }, multi),
  "stdout graphite = file graphite")
local so = dofile(S)
T.eq(so.transport, "file", "stdout: file transport")
T.eq(so.options.path, nil, "stdout: no path option")
ok, err = pcall(T.encode, S, { format = "json" }, basic)
T.eq(err, "stdout forwarder: unknown format 'json' (influx | graphite)", "stdout: its own name in errors")

---------------------------------------------------------------- JIT

-- 1000 samples over 100 series, every kind, some texts needing escapes.
local batch = T.mixed_batch(1000, TS)

-- The steady state of every encoder must compile (T.encoder_compiles).
local function no_aborts(file, opts, what)
  T.encoder_compiles(file, opts, batch, what)
end

no_aborts(G, {}, "graphite path")
no_aborts(G, { tag_mode = "tagged", prefix = "servers" }, "graphite tagged")
no_aborts(G, { tag_mode = "none" }, "graphite none")
no_aborts(F, {}, "file influx")
no_aborts(F, { format = "graphite" }, "file graphite")
no_aborts(S, {}, "stdout influx")

T.done()
