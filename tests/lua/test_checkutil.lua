-- lua/moonstat/checkutil.lua, what the built-in checks share: the meaning
-- of `metrics` (exact names and prefixes), globs, sets, reading files and
-- the numbers of a /proc line; and `metrics` through the real check host in
-- a host check and a service check.
local T = require "moonstat.testing"
local U = require "moonstat.checkutil"

-- ---- wanted: `metrics` ----
local all = U.wanted(false)
T.ok(all("cpu.user") and all("anything"), "metrics unset (false): everything")
T.ok(U.wanted(nil)("x"), "metrics unset (nil): everything")
local sel = U.wanted({ "docker.net", "docker.cpu.percent", "load.1" })
T.ok(sel("docker.net.rx_bytes") and sel("docker.net"), "a prefix selects itself and the names below it")
T.ok(sel("docker.cpu.percent"), "an exact name")
T.ok(not sel("docker.network"), "a prefix selects only below its dot: not docker.network")
T.ok(not sel("docker.memory.usage") and not sel("docker"), "nothing else, not the parent")
T.ok(not sel("load.15"), "load.1 does not select load.15")
T.ok(U.wanted({ "disk" })("disk.read_bytes"), "a one-word prefix: disk selects disk.read_bytes")
T.ok(U.wanted("memory.used")("memory.used") and not U.wanted("memory.used")("memory.free"),
  "a lone string is a list of one")
T.ok(not U.wanted({})("cpu.user"), "an empty list sends nothing")
local ok, err = pcall(U.wanted, true)
T.ok(not ok, "metrics: true is an error")
T.like(err, "metrics must be a list, got true", "... saying what it must be")

-- ---- matcher: globs ----
T.eq(U.matcher(false), nil, "globs unset: no matcher")
local m = U.matcher({ "loop*", "sd?", "nvme0n1", "a.b" })
T.ok(m("loop0") and m("loop") and m("sda") and m("nvme0n1") and m("a.b"), "*, ? and literal names")
T.ok(not m("sda1") and not m("xloop0") and not m("nvme0n1p1"), "a glob matches the whole name")
T.ok(not m("axb"), ". is a literal dot")
T.ok(U.matcher("eth?")("eth0"), "a lone string is a list of one")
T.ok(U.matcher({ "/var/lib/docker/*" })("/var/lib/docker/overlay2/x"), "* spans slashes")
T.ok(U.matcher({ "a%b(c)" })("a%b(c)"), "Lua pattern characters are literal")

-- ---- set_of, numbers, read ----
T.eq(U.set_of(false), nil, "set unset: nil")
local set = U.set_of({ 3, "4" })
T.ok(set["3"] and set["4"] and not set[3], "set items as strings")
T.ok(U.set_of(4)["4"], "a lone number is a list of one")
local f = U.numbers("  12 0 345\t6 ")
T.eq(#f, 4, "numbers: four")
T.eq(f[1] + f[2] + f[3] + f[4], 363, "numbers: their values")
T.eq(#U.numbers(""), 0, "numbers of an empty line: none")

-- U.read needs ms.read_file: through the host, the error names the check's line
os.execute("mkdir -p tests/tmp")
local tmp = "tests/tmp/test_checkutil_read.lua"
local w = assert(io.open(tmp, "w"))
w:write([[
local U = require "moonstat.checkutil"
return { collect = function()
  ms.gauge("read.len", #U.read("tests/fixtures/proc1/loadavg"))
  U.read("tests/fixtures/missing/file")
end }
]])
w:close()
local s, rerr = T.run_check(tmp, {}, 1000)
T.eq(s, nil, "U.read of a missing file fails the run")
T.like(rerr, "^tests/tmp/test_checkutil_read%.lua:4: .*tests/fixtures/missing/file",
  "the error names the check's line and the file")

-- ---- `metrics` through the host: a prefix in a host check and a service check ----
s = T.run_check("checks/memory.lua", { proc_root = "tests/fixtures/proc1",
                                       metrics = { "memory.swap_used", "memory.used" } }, 1000)
T.eq(T.names(s), "memory.swap_used,memory.used",
  "memory: memory.used selects memory.used, not memory.used_percent")
s = T.run_check("checks/cpu.lua", { proc_root = "tests/fixtures/proc1", metrics = { "cpu" } }, 1000)
T.eq(T.names(s), "cpu.procs_blocked,cpu.procs_running", "cpu: the prefix cpu selects every cpu.* (first run: gauges)")
local _, herr = T.run_check("checks/load.lua", { proc_root = "tests/fixtures/proc1", metrics = true }, 1000)
T.like(herr, "^checks/load%.lua:%d+: metrics must be a list, got true", "metrics: true is an error naming the check's line")

T.done()
