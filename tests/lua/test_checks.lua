-- Built-in checks (checks/*.lua) against the fixture files in
-- tests/fixtures/proc1 and proc2, with the real check host (T.run_check).
--
-- The fixtures are made so every expected value is exact: 4 CPUs; loadavg
-- 3.50 1.75 1.25 (87.5% of the CPUs); meminfo round kB numbers; proc2/stat
-- is proc1/stat 10 s later with 1000 jiffies more per CPU (4000 in total),
-- 50000 more context switches and 250 more forks.
local T = require "moonstat.testing"

local P1, P2 = "tests/fixtures/proc1", "tests/fixtures/proc2"

-- Samples carry host tags too (host, type): T.find matches the tags given.
local find, value, count = T.find, T.value, T.count

---------------------------------------------------------------- load

local s, err = T.run_check("checks/load.lua", { proc_root = P1 }, 1000)
T.ok(s, "load runs: " .. tostring(err))
T.eq(value(s, "load.1"), 3.5, "load.1")
T.eq(value(s, "load.5"), 1.75, "load.5")
T.eq(value(s, "load.15"), 1.25, "load.15")
T.eq(value(s, "load.cpus"), 4, "load.cpus counts the cpuN lines")
T.eq(value(s, "load.percent"), 87.5, "load.percent = load.1 * 100 / cpus")
T.eq(find(s, "load.1").kind, "gauge", "load.1 is a gauge")
T.eq(find(s, "load.1").ts, 1000, "samples carry the run time")
T.eq(find(s, "load.1").tags.type, "system", "the check's type is a tag")
local h = find(s, "load.health")
T.eq(h and h.kind, "health", "load.health is a health sample")
T.eq(h and h.value, 8, "87.5% >= load_high 80: WARNING (8)")
T.eq(h and h.level, "WARNING", "level WARNING")
T.eq(h and h.msg, "WARNING: load average is at 87.5% of available CPUs", "warning message")

s = T.run_check("checks/load.lua", { proc_root = P1, load_high = 90 }, 1000)
h = find(s, "load.health")
T.eq(h and h.value, 0, "below load_high 90: OK (0)")
T.eq(h and h.level, "OK", "level OK")
T.eq(h and h.msg, "OK: load average is at 87.5% of available CPUs", "ok message")

s = T.run_check("checks/load.lua", { proc_root = P1, load_high = 50, load_severe = 87.5 }, 1000)
h = find(s, "load.health")
T.eq(h and h.value, 16, "at load_severe 87.5: ERROR (16)")
T.eq(h and h.level, "ERROR", "level ERROR")
T.eq(h and h.msg, "ERROR: load average is at 87.5% of available CPUs", "error message")

s, err = T.run_check("checks/load.lua", { proc_root = P1, load_high = "lots" }, 1000)
T.eq(s, nil, "load: a threshold that is not a number fails the run")
T.like(err, "^checks/load%.lua:%d+: checks%.load%.load_high must be a number, got lots",
  "the error names the key and the value")

s, err = T.run_check("checks/load.lua", { proc_root = "tests/fixtures/missing" }, 1000)
T.eq(s, nil, "load: a missing file fails the run")
T.like(err, "^checks/load%.lua:%d+: ", "the error names the check file and line")
T.like(err, "tests/fixtures/missing/loadavg", "the error names the missing file")

---------------------------------------------------------------- memory

local G = 1024 -- meminfo is in kB
s, err = T.run_check("checks/memory.lua", { proc_root = P1 }, 1000)
T.ok(s, "memory runs: " .. tostring(err))
T.eq(value(s, "memory.total"), 16384000 * G, "memory.total in bytes")
T.eq(value(s, "memory.available"), 8192000 * G, "memory.available")
T.eq(value(s, "memory.used"), 8192000 * G, "memory.used = total - available")
T.eq(value(s, "memory.free"), 4096000 * G, "memory.free")
T.eq(value(s, "memory.cached"), 2048000 * G, "memory.cached")
T.eq(value(s, "memory.buffers"), 512000 * G, "memory.buffers")
T.eq(value(s, "memory.swap_total"), 2097152 * G, "memory.swap_total")
T.eq(value(s, "memory.swap_free"), 1048576 * G, "memory.swap_free")
T.eq(value(s, "memory.swap_used"), 1048576 * G, "memory.swap_used")
T.eq(value(s, "memory.used_percent"), 50, "memory.used_percent")
T.eq(find(s, "memory.total").kind, "gauge", "memory samples are gauges")

s, err = T.run_check("checks/memory.lua", { proc_root = "tests/fixtures/missing" }, 1000)
T.eq(s, nil, "memory: a missing file fails the run")
T.like(err, "^checks/memory%.lua:%d+: .*meminfo", "the error names the check's line and the file")

---------------------------------------------------------------- cpu

local STATES = { "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
                 "guest", "guest_nice" }
-- Expected percents from the fixture deltas (total = 4000 jiffies).
local WANT_TOTAL = { user = 25, nice = 1, system = 10, idle = 55, iowait = 5, irq = 0.5,
                     softirq = 1.5, steal = 2, guest = 3, guest_nice = 0 }
local WANT_IDLE = { ["0"] = 40, ["1"] = 50, ["2"] = 60, ["3"] = 70 }
local WANT_USER = { ["0"] = 40, ["1"] = 30, ["2"] = 20, ["3"] = 10 }

s, err = T.run_check("checks/cpu.lua", { proc_root = P1 }, 1000)
T.ok(s, "cpu runs: " .. tostring(err))
T.eq(count(s, "cpu.user"), 0, "first run: no percents yet")
T.eq(count(s, "cpu.context_switches"), 0, "first run: no rate yet")
T.eq(value(s, "cpu.procs_running"), 3, "cpu.procs_running")
T.eq(value(s, "cpu.procs_blocked"), 1, "cpu.procs_blocked")

s, err = T.run_check("checks/cpu.lua", { proc_root = P2 }, 1010)
T.ok(s, "cpu second run: " .. tostring(err))
T.eq(value(s, "cpu.context_switches"), 5000, "50000 context switches in 10 s")
T.eq(find(s, "cpu.context_switches").kind, "rate", "context switches: a rate")
T.eq(value(s, "cpu.forks"), 25, "250 forks in 10 s")
T.eq(value(s, "cpu.procs_running"), 2, "cpu.procs_running, second run")
T.eq(value(s, "cpu.procs_blocked"), 0, "cpu.procs_blocked, second run")

-- cpu keeps its previous reading between runs, so both runs must happen in
-- one state: T.check loads the check once through the real host, and the
-- proc_root it reads is a symlink the test points at proc1, then proc2.
local LINK = "tests/tmp/test_checks_proc"
local function run_twice(file, config, roots)
  os.execute("mkdir -p tests/tmp")
  local cfg = { proc_root = LINK }
  for k, v in pairs(config) do cfg[k] = v end
  local c = assert(T.check(file, cfg))
  local runs = {}
  for i, root in ipairs(roots) do
    assert(os.execute(("ln -sfn %q %q"):format(os.getenv("PWD") .. "/" .. root, LINK)) == 0)
    runs[i] = assert(c:run(1000 + 10 * (i - 1)))
  end
  c:close()
  return runs
end

local runs = run_twice("checks/cpu.lua", { per_cpu = true }, { P1, P2 })
T.eq(count(runs[1], "cpu.user"), 0, "in one state: nothing on the first run")
for _, st in ipairs(STATES) do
  T.eq(value(runs[2], "cpu." .. st, { cpu = false }), WANT_TOTAL[st], "cpu." .. st .. " (all CPUs)")
end
for cpu = 0, 3 do
  local c = tostring(cpu)
  T.eq(value(runs[2], "cpu.user", { cpu = c }), WANT_USER[c], "cpu.user cpu=" .. c)
  T.eq(value(runs[2], "cpu.idle", { cpu = c }), WANT_IDLE[c], "cpu.idle cpu=" .. c)
  T.eq(value(runs[2], "cpu.irq", { cpu = c }), 0.5, "cpu.irq cpu=" .. c)
  T.eq(value(runs[2], "cpu.guest", { cpu = c }), 3, "cpu.guest cpu=" .. c)
end
T.eq(count(runs[2], "cpu.user"), 5, "per_cpu: the total plus one per CPU")
T.eq(find(runs[2], "cpu.user", { cpu = false }).kind, "gauge", "percents are gauges")

runs = run_twice("checks/cpu.lua", {}, { P1, P2 })
T.eq(count(runs[2], "cpu.user"), 1, "per_cpu off: only the total")
T.eq(count(runs[2], "cpu.steal"), 1, "per_cpu off: cpu.steal once")

-- the same file twice: no time passed, no percents (and no division by 0)
runs = run_twice("checks/cpu.lua", {}, { P2, P2 })
T.eq(count(runs[2], "cpu.user"), 0, "no jiffies passed: no percents")
-- counters going backwards (proc2 then proc1): a reset, no percents
runs = run_twice("checks/cpu.lua", {}, { P2, P1 })
T.eq(count(runs[2], "cpu.user"), 0, "counters went backwards: no percents")

s, err = T.run_check("checks/cpu.lua", { proc_root = "tests/fixtures/missing" }, 1000)
T.eq(s, nil, "cpu: a missing file fails the run")
T.like(err, "^checks/cpu%.lua:%d+: .*stat", "the error names the check's line and the file")

T.done()
