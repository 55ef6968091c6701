-- checks/load.lua: load average and a health verdict on it.
--
-- Reads <proc_root>/loadavg and counts the CPUs in <proc_root>/stat (the
-- "cpuN" lines). Emits, every run:
--   load.1, load.5, load.15   gauge  load average over 1, 5 and 15 minutes
--   load.cpus                 gauge  number of CPUs counted
--   load.percent              gauge  load.1 in % of the CPUs (100 = one
--                                    runnable task per CPU)
--   load.health               health 0 OK, 8 WARNING (load.percent >=
--                                    load_high), 16 ERROR (>= load_severe),
--                                    message e.g. "WARNING: load average is
--                                    at 87.5% of available CPUs"
--
-- Config keys (checks.load in config.yaml):
--   proc_root    where proc is mounted                 (default "/proc")
--   load_high    WARNING from this % of the CPUs       (default 80)
--   load_severe  ERROR from this % of the CPUs         (default 100)
--   metrics      send only these names, e.g. [load.1, load.health]
--                                                      (default: all)
local U = require "moonstat.checkutil"

-- A config key that must be a number (80 or "80" in config.yaml).
local function number_key(key)
  local v = tonumber(ms.config[key])
  if not v then
    error(("checks.load.%s must be a number, got %s"):format(key, tostring(ms.config[key])), 2)
  end
  return v
end

local function collect()
  local want = U.wanted(ms.config.metrics)
  local high, severe = number_key("load_high"), number_key("load_severe")
  local root = ms.config.proc_root
  local loadavg = U.read(root .. "/loadavg")
  local l1, l5, l15 = loadavg:match("^(%S+)%s+(%S+)%s+(%S+)")
  l1, l5, l15 = tonumber(l1), tonumber(l5), tonumber(l15)
  if not l15 then error(root .. "/loadavg: unexpected contents: " .. loadavg:sub(1, 60)) end

  local cpus = 0
  for _ in ("\n" .. U.read(root .. "/stat")):gmatch("\ncpu%d") do cpus = cpus + 1 end
  if cpus == 0 then error(root .. "/stat: no cpuN lines") end

  local function gauge(name, v) if want(name) then ms.gauge(name, v) end end
  gauge("load.1", l1)
  gauge("load.5", l5)
  gauge("load.15", l15)
  gauge("load.cpus", cpus)

  local percent = l1 * 100 / cpus
  gauge("load.percent", percent)
  if not want("load.health") then return end

  local health, level = 0, "OK"
  if percent >= severe then
    health, level = 16, "ERROR"
  elseif percent >= high then
    health, level = 8, "WARNING"
  end
  ms.send_special("load.health", health,
    ("%s: load average is at %.1f%% of available CPUs"):format(level, percent), level)
end

return {
  type = "system",
  defaults = { proc_root = "/proc", load_high = 80, load_severe = 100, metrics = false },
  collect = collect,
}
