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

local function wanted(list)
  if type(list) == "string" then list = { list } end
  if type(list) ~= "table" then return function() return true end end
  local set = {}
  for _, n in ipairs(list) do set[n] = true end
  return function(name) return set[name] == true end
end

local function read(path)
  local s, err = ms.read_file(path)
  if not s then error(err, 2) end
  return s
end

local STAT = {
  ctxt = { "system.context_switches", ms.rate },
  processes = { "system.forks", ms.rate },
  intr = { "system.interrupts", ms.rate },
  procs_running = { "system.procs_running", ms.gauge },
  procs_blocked = { "system.procs_blocked", ms.gauge },
}

local function collect()
  local root = ms.config.proc_root
  local want = wanted(ms.config.metrics)
  for line in read(root .. "/stat"):gmatch("[^\n]+") do
    local key, value = line:match("^(%a[%w_]*)%s+(%d+)")
    local m = STAT[key]
    if m and want(m[1]) then m[2](m[1], tonumber(value)) end
  end
  if want("system.uptime") then
    local path = root .. "/uptime"
    local up = tonumber(read(path):match("^%s*([%d.]+)"))
    if not up then error(path .. ": no uptime in it", 0) end
    ms.gauge("system.uptime", up)
  end
  if want("system.open_files") or want("system.open_files_max") then
    local path = root .. "/sys/fs/file-nr"
    local alloc, free, max = read(path):match("^%s*(%d+)%s+(%d+)%s+(%d+)")
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
