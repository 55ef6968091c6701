-- Processors (lua/processors/*.lua and lua/moonstat/processor.lua): each
-- built-in against fixed batches, the sample view API, a processor that
-- raises in both drop_on_error modes, and no JIT trace aborts in the batch
-- loop with the built-ins once their caches are warm.
local T = require "moonstat.testing"
local ffi = require "ffi"
local P = require "moonstat.processor"

package.path = "tests/fixtures/lua/?.lua;" .. package.path

-- no base tags (the host name) so expected tags do not depend on the machine
pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
ffi.C.ms_series_set_base_tags(nil, 0)

local NOW = 1700000000

local function run(list, samples, now)
  local p = T.processors(list)
  local b = T.batch(samples)
  return p:run(b, now or NOW), p, b
end

local function names(out)
  local t = {}
  for i, s in ipairs(out) do t[i] = s.name end
  return table.concat(t, ",")
end

local function tagstr(tags)
  local keys = {}
  for k in pairs(tags) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. tags[k] end
  return table.concat(keys, ",")
end

---------------------------------------------------------------- drop_stale

local stale = {
  { name = "now", value = 1, ts = NOW },
  { name = "ahead.1m", value = 2, ts = NOW + 60 },
  { name = "ahead.3m", value = 3, ts = NOW + 180 },
  { name = "behind.4m", value = 4, ts = NOW - 240 },
  { name = "behind.6m", value = 5, ts = NOW - 360 },
}
local out, p = run({ "drop_stale" }, stale)
T.eq(names(out), "now,ahead.1m,behind.4m", "drop_stale: default 2m ahead, 5m behind")
T.eq(p.dropped[1], 2, "drop_stale: drops counted")
T.eq(out[3].value, 4, "drop_stale: kept samples keep their values")
out = run({ { drop_stale = { ahead = "10s", behind = 3600 } } }, stale)
T.eq(names(out), "now,behind.4m,behind.6m", "drop_stale: ahead 10s, behind 3600 (seconds)")
local ok, err = pcall(T.processors, { { drop_stale = { ahead = "soon" } } })
T.ok(not ok, "drop_stale: a bad duration fails at load")
T.like(err, "ahead: expected a duration", "drop_stale: its message")

---------------------------------------------------------------- rename

out = run({ { rename = { rules = {
  { glob = "cpu.*", to = "system.cpu.%1" },
  { match = "^(%w+)_bytes$", to = "%1.bytes", add_tags = { unit = "%1" } },
  { glob = "system.*", add_tags = { team = "ops" } },
  { remove_tags = { "instance" } },
  { rename_tags = { dc = "datacenter" } },
} } } }, {
  { name = "cpu.user", tags = { host = "a", instance = "i1" }, value = 1 },
  { name = "net_bytes", tags = { dc = "eu" }, value = 2 },
  { name = "load", tags = { host = "b" }, value = 3 },
})
T.eq(names(out), "system.cpu.user,net.bytes,load", "rename: glob and pattern renames with captures")
T.eq(tagstr(out[1].tags), "host=a,team=ops", "rename: later rules see the new name; tag removed")
T.eq(tagstr(out[2].tags), "datacenter=eu,unit=net", "rename: tag renamed, tag value from a capture")
T.eq(tagstr(out[3].tags), "host=b", "rename: untouched series keeps its tags")
T.eq(out[2].value, 2, "rename: value unchanged")
ok, err = pcall(T.processors, { { rename = { rules = { { glob = "x", match = "y", to = "z" } } } } })
T.like(err, "rules%[1%]: give glob or match, not both", "rename: glob and match together is an error")
ok, err = pcall(T.processors, { { rename = { rules = { { match = "(", to = "z" } } } } })
T.like(err, "rules%[1%]: bad pattern", "rename: a malformed pattern fails at load")
ok, err = pcall(T.processors, { { rename = { rules = { { glob = "x", into = "z" } } } } })
T.like(err, "rules%[1%]: unknown key into", "rename: unknown rule keys fail at load")

---------------------------------------------------------------- filter

local fsamples = {
  { name = "cpu.user", value = 1 },
  { name = "cpu.idle", value = 2 },
  { name = "disk.used", tags = { mount = "/run/user" }, value = 3 },
  { name = "disk.used", tags = { mount = "/" }, value = 4 },
  { name = "mem.free", value = 5 },
}
out, p = run({ { filter = { include = { "cpu.*", "disk.*" },
  exclude = { "*.idle", { name = "disk.*", tags = { mount = "/run*" } } } } } }, fsamples)
T.eq(names(out), "cpu.user,disk.used", "filter: include by glob, exclude by glob and by tag")
T.eq(out[2].tags.mount, "/", "filter: the tag rule kept the other mount")
T.eq(p.dropped[1], 3, "filter: drops counted")
out = run({ { filter = { exclude = { { tags = { mount = "*" } } } } } }, fsamples)
T.eq(names(out), "cpu.user,cpu.idle,mem.free", "filter: empty include keeps all; a tag must exist")

---------------------------------------------------------------- units

out = run({ { units = { rules = {
  { glob = "*.bytes", from = "bytes", to = "MiB" },
  { match = "^lat%.", from = "ms", to = "s" },
  { glob = "temp.*", factor = 0.1 },
} } } }, {
  { name = "mem.bytes", value = 3 * 1048576 },
  { name = "lat.p99", value = 250, kind = "counter" },
  { name = "temp.cpu", value = 455 },
  { name = "temp.health", value = 8, kind = "health", msg = "hot", level = "WARNING" },
  { name = "other", value = 7 },
})
T.eq(out[1].value, 3, "units: bytes to MiB")
T.eq(out[2].value, 0.25, "units: ms to s (counter)")
T.ok(math.abs(out[3].value - 45.5) < 1e-9, "units: plain factor")
T.eq(out[4].value, 8, "units: health samples are left alone")
T.eq(out[4].msg .. "/" .. out[4].level, "hot/WARNING", "units: texts kept")
T.eq(out[5].value, 7, "units: no rule, no change")
ok, err = pcall(T.processors, { { units = { rules = { { glob = "x", from = "ms", to = "MiB" } } } } })
T.like(err, "cannot convert ms to MiB", "units: time to bytes is an error")

---------------------------------------------------------------- hostname

out = run({ { hostname = { strip = { ".example.com" }, reverse = true, lower = true } } }, {
  { name = "a", tags = { host = "Web1.DC1.example.com", x = "1" }, value = 1 },
  { name = "b", tags = { host = "db2.dc2" }, value = 2 },
  { name = "c", value = 3 },
})
T.eq(out[1].tags.host, "dc1.web1", "hostname: lowered, suffix trimmed, reversed")
T.eq(out[1].tags.x, "1", "hostname: other tags kept")
T.eq(out[2].tags.host, "dc2.db2", "hostname: reversed without a suffix")
T.eq(tagstr(out[3].tags), "", "hostname: no host tag, no change")
out = run({ { hostname = { strip = ".lan", tag = "node" } } },
  { { name = "a", tags = { node = "n1.lan", host = "h.lan" }, value = 1 } })
T.eq(tagstr(out[1].tags), "host=h.lan,node=n1", "hostname: another tag, a single suffix")

---------------------------------------------------------------- the view API

out, p = run({ { tagger = { key = "stage", value = "one" } } }, {
  { name = "keep", tags = { gone = "x", k = "v" }, value = 1, ts = NOW },
  { name = "drop.me", value = 2, ts = NOW },
  { name = "h", value = 16, kind = "health", msg = "bad", level = "ERROR", ts = NOW },
})
T.eq(names(out), "keep,h", "view: nil drops, batch compacted")
T.eq(tagstr(out[1].tags), "k=v,stage=one", "view: s:tag adds, s:untag removes")
T.eq(out[1].ts, NOW + 1, "view: ts is writable")
T.eq(out[2].msg .. "/" .. out[2].level .. "/" .. out[2].kind, "bad/ERROR/health",
  "view: a moved sample keeps its texts and kind")
T.eq(p.dropped[1], 1, "view: the drop is counted for the processor")
local first = out[1].series
out = run({ { tagger = { key = "stage", value = "one" } } },
  { { name = "keep", tags = { gone = "x", k = "v" }, value = 5 } })
T.eq(out[1].series, first, "view: the same change gives the same (cached) series id")
out = run({ { tagger = { rename_to = "renamed" } } }, { { name = "x", tags = { a = "1" }, value = 1 } })
T.eq(out[1].name .. "{" .. tagstr(out[1].tags) .. "}", "renamed{a=1,stage=seen}", "view: s:rename keeps tags")

local b = T.batch { { name = "v.name", tags = { t = "1" }, value = 1, kind = "event", msg = "hello" } }
local v = P.view(b, 0, NOW)
T.eq(v.name, "v.name", "view: s.name")
T.eq(v.tags.t, "1", "view: s.tags")
T.eq(v.message, "hello", "view: s.message")
T.eq(v.kind, 4, "view: s.kind")
T.eq(v.now, NOW, "view: s.now")
v.name = "w.name"
T.eq(v.name, "w.name", "view: s.name = x renames")
ok, err = pcall(function() v.kind_name = 1 end)
T.ok(not ok, "view: unknown fields cannot be set")
ok, err = pcall(function() v:tag("k") end)
T.like(err, "use s:untag", "view: s:tag without a value is an error")

---------------------------------------------------------------- errors

local mixed = {
  { name = "a", value = 1 },
  { name = "b", value = -1 },
  { name = "c", value = 3 },
  { name = "d", value = -4 },
}
out, p = run({ { boom = { drop_on_error = false } } }, mixed)
T.eq(names(out), "a,b,c,d", "raising, pass: every sample kept")
T.eq(out[1].value .. "," .. out[2].value .. "," .. out[3].value .. "," .. out[4].value, "2,-1,6,-4",
  "raising, pass: the failed samples passed on unchanged")
T.eq(p.errors[1], 2, "raising, pass: errors counted")
T.eq(p.dropped[1], 0, "raising, pass: nothing dropped")
out, p = run({ { boom = { drop_on_error = true } } }, mixed)
T.eq(names(out), "a,c", "raising, drop: the failed samples dropped")
T.eq(p.errors[1] .. "/" .. p.dropped[1], "2/2", "raising, drop: errors and drops counted")
out, p = run({ { rename = { rules = { { glob = "*", to = "r.%1" } } } }, { boom = { drop_on_error = false } },
  "drop_stale" }, mixed)
T.eq(names(out), "r.a,b,r.c,d", "raising in a chain, pass: the sample goes on as it entered the chain")
out = run({ { boom = { drop_on_error = true } }, "boom" }, mixed)
T.eq(names(out), "a,c", "drop_on_error per processor in one chain: drop first")
T.eq(out[1].value .. "," .. out[2].value, "4,12", "... the kept samples went through both")
out = run({ "boom", { boom = { drop_on_error = true } } }, mixed)
T.eq(names(out), "a,b,c,d", "drop_on_error per processor in one chain: pass first ends the chain")
local pt = T.processors({ "boom" }, true)
out = pt:run(T.batch(mixed), NOW)
T.eq(names(out), "a,c", "the global default (drop) applies when a processor sets none")

---------------------------------------------------------------- JIT

-- A big batch with 200 series, run again and again through each built-in
-- and through all of them: after a warm-up (caches filled), no trace aborts.
local N = 20000
local tmpl_samples = {}
for i = 1, N do
  local k = i % 200
  tmpl_samples[i] = { name = (k % 2 == 0 and "cpu." or "disk.") .. k .. (k % 7 == 0 and ".idle" or ""),
                      tags = { host = "web" .. (k % 5) .. ".example.com" }, value = i,
                      ts = NOW + (k % 11 == 0 and 1000 or 0) }
end
local tmpl = T.batch(tmpl_samples)
local work = T.batch(tmpl_samples)
local size = ffi.sizeof("ms_sample") * N
local chains = {
  drop_stale = { "drop_stale" },
  rename = { { rename = { rules = { { glob = "cpu.*", to = "system.cpu.%1" }, { add_tags = { a = "b" } } } } } },
  filter = { { filter = { exclude = { "*.idle" } } } },
  units = { { units = { rules = { { glob = "disk.*", from = "bytes", to = "KiB" } } } } },
  hostname = { { hostname = { strip = ".example.com", reverse = true } } },
}
local all = {}
for _, name in ipairs { "drop_stale", "rename", "filter", "units", "hostname" } do
  all[#all + 1] = chains[name][1]
end
chains.all = all
for _, name in ipairs { "drop_stale", "rename", "filter", "units", "hostname", "all" } do
  local pc = T.processors(chains[name])
  local function once()
    ffi.copy(work.s, tmpl.s, size)
    work.n = N
    pc.fn(work, NOW)
  end
  -- warm the caches (the cold paths: patterns, interning) with the JIT off,
  -- as the encoder tests do, so what they leave cannot depend on test order
  jit.off()
  once()
  jit.on()
  collectgarbage() -- finalizers running during a recording abort it
  local aborts, stops = T.trace_aborts(function()
    -- Setting hotloop resets every hot counter (jit.flush does not). A
    -- trace started at the entry of a function that holds a loop always
    -- aborts at that loop ("inner loop in root trace": LuaJIT leaves it to
    -- the loop's own trace) and is then blacklisted; counters are shared by
    -- a hash of bytecode addresses, so whether that one-off happens within
    -- these rounds would depend on addresses. From fresh counters 30 calls
    -- stay below the function-entry threshold: what is measured is the loop.
    jit.opt.start("hotloop=56")
    for _ = 1, 30 do once() end
  end)
  T.eq(#aborts, 0, "no trace aborts in the loop: " .. name .. " " .. table.concat(aborts, "; "))
  -- and the loop really compiled (a loop the JIT gave up on shows no aborts either)
  local loops = 0
  for _, src in ipairs(stops) do
    if src == "=(processor loop test)" then loops = loops + 1 end
  end
  T.ok(loops > 0, "the loop compiled: " .. name)
end

---------------------------------------------------------------- checks' timestamps

local dir = os.getenv("MS_TMP") or "tests/tmp"
os.execute("mkdir -p " .. dir)
local cf = dir .. "/ts_check.lua"
local f = assert(io.open(cf, "w"))
f:write [[
return { collect = function()
  ms.gauge("at.run", 1)
  ms.gauge("at.past", 2, { k = "v" }, ms.timestamp() - 600)
  ms.counter("at.future", 3, nil, ms.timestamp() + 0.5)
end }
]]
f:close()
local samples = T.run_check(cf, {}, NOW)
T.eq(samples and #samples, 3, "check timestamps: three samples")
T.eq(samples and samples[1].ts, NOW, "check timestamps: default is the run's time")
T.eq(samples and samples[2].ts, NOW - 600, "check timestamps: ms.gauge with a timestamp")
T.eq(samples and samples[3].ts, NOW + 0.5, "check timestamps: ms.counter with a timestamp")
f = assert(io.open(cf, "w"))
f:write [[ return { collect = function() ms.gauge("x", 1, nil, "yesterday") end } ]]
f:close()
local _, cerr = T.run_check(cf, {}, NOW)
T.like(cerr, "timestamp of 'x' must be unix seconds", "check timestamps: a bad timestamp is an error")

T.done()
