-- checks/system.lua: kernel activity, processes, uptime and open files.
--
-- Reads <proc_root>/stat, <proc_root>/uptime and <proc_root>/sys/fs/file-nr:
--   system.context_switches  rate   context switches per second ("ctxt")
--   system.forks             rate   processes created per second ("processes")
--   system.interrupts        rate   interrupts per second (all of them: the
--                                   first number of "intr")
--   system.procs_running     gauge  runnable tasks now
--   system.procs_blocked     gauge  tasks blocked on I/O now
--   system.uptime            gauge  seconds since boot
--   system.open_files        gauge  file handles in use (file-nr: allocated
--                                   minus allocated-but-free)
--   system.open_files_max    gauge  the limit on them (fs.file-max)
-- The rates are computed by the host (ms.rate): none on the first run.
-- cpu.context_switches, cpu.forks and cpu.procs_* of the cpu check carry the
-- same numbers; `metrics` on either check drops the copy you do not want.
--
-- Config keys (checks.system in config.yaml):
--   proc_root  where proc is mounted                             (default "/proc")
--   metrics    send only these names, e.g. [system.uptime]       (default: all)
local U = require "moonstat.checkutil"

local STAT = {
  ctxt = { "system.context_switches", ms.rate },
  processes = { "system.forks", ms.rate },
  intr = { "system.interrupts", ms.rate },
  procs_running = { "system.procs_running", ms.gauge },
  procs_blocked = { "system.procs_blocked", ms.gauge },
}

local function collect()
  local root = ms.config.proc_root
  local want = U.wanted(ms.config.metrics)
  for line in U.read(root .. "/stat"):gmatch("[^\n]+") do
    local key, value = line:match("^(%a[%w_]*)%s+(%d+)")
    local m = STAT[key]
    if m and want(m[1]) then m[2](m[1], tonumber(value)) end
  end
  if want("system.uptime") then
    local path = root .. "/uptime"
    local up = tonumber(U.read(path):match("^%s*([%d.]+)"))
    if not up then error(path .. ": no uptime in it", 0) end
    ms.gauge("system.uptime", up)
  end
  if want("system.open_files") or want("system.open_files_max") then
    local path = root .. "/sys/fs/file-nr"
    local alloc, free, max = U.read(path):match("^%s*(%d+)%s+(%d+)%s+(%d+)")
    if not max then error(path .. ": expected three numbers", 0) end
    if want("system.open_files") then ms.gauge("system.open_files", alloc - free) end
    if want("system.open_files_max") then ms.gauge("system.open_files_max", tonumber(max)) end
  end
end

return {
  type = "system",
  defaults = { proc_root = "/proc", metrics = false },
  collect = collect,
}
