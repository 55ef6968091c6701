-- checks/cpu.lua: CPU time by state, context switches, forks, run queue.
--
-- Reads <proc_root>/stat. CPU percents come from the change of the jiffy
-- counters between two runs, so the first run emits none of them:
--   cpu.user cpu.nice cpu.system cpu.idle cpu.iowait cpu.irq cpu.softirq
--   cpu.steal cpu.guest cpu.guest_nice
--                      gauge  % of the CPU time of all CPUs since the last run
--                             (the "cpu" line; old kernels lack the last
--                             states, which are then not emitted)
--   the same with tag cpu=N  per CPU, when per_cpu is true
--   cpu.context_switches  rate   context switches per second ("ctxt")
--   cpu.forks             rate   processes created per second ("processes")
--   cpu.procs_running     gauge  runnable tasks now
--   cpu.procs_blocked     gauge  tasks blocked on I/O now
-- The rates are computed by the host (ms.rate): none on the first run.
--
-- The percents add up to 100 without guest and guest_nice: the kernel counts
-- guest time in user (and guest_nice in nice) too, so those two are shares
-- of the same total shown apart, not extra time. A CPU whose counters went
-- backwards (hotplug, a reset) emits nothing that run.
--
-- Config keys (checks.cpu in config.yaml):
--   proc_root  where proc is mounted                         (default "/proc")
--   per_cpu    also emit every state per CPU, tag cpu=N      (default false)
--   metrics    send only these names, e.g. [cpu.user, cpu.idle]  (default: all)
local U = require "moonstat.checkutil"

local STATES = { "user", "nice", "system", "idle", "iowait", "irq", "softirq",
                 "steal", "guest", "guest_nice" }
local NAMES = {}
for i, s in ipairs(STATES) do NAMES[i] = "cpu." .. s end
local TOTAL_STATES = 8 -- user .. steal; guest and guest_nice are inside user and nice

-- Counters of the previous run, by line label ("cpu", "cpu0", ...). Kept in
-- this check's Lua state from one run to the next.
local prev = {}
local want -- the metrics filter of the current run

-- Emit the percents for one line from the previous and current counters.
local function percents(last, cur, tags)
  local n = math.min(#last, #cur)
  local total = 0
  for i = 1, n do
    local d = cur[i] - last[i]
    if d < 0 then return end
    if i <= TOTAL_STATES then total = total + d end
  end
  if total <= 0 then return end
  for i = 1, n do
    if want(NAMES[i]) then ms.gauge(NAMES[i], (cur[i] - last[i]) * 100 / total, tags) end
  end
end

local function collect()
  local per_cpu = ms.config.per_cpu
  want = U.wanted(ms.config.metrics)
  local stat = U.read(ms.config.proc_root .. "/stat")
  local seen = {}
  for line in stat:gmatch("[^\n]+") do
    local label, rest = line:match("^(cpu%d*)%s+(.*)$")
    if label then
      local cur = U.numbers(rest)
      local last = prev[label]
      prev[label] = cur
      seen[label] = true
      if last then
        if label == "cpu" then
          percents(last, cur, nil)
        elseif per_cpu then
          percents(last, cur, { cpu = label:sub(4) })
        end
      end
    else
      local key, value = line:match("^(%S+)%s+(%d+)%s*$")
      value = tonumber(value)
      if key == "ctxt" and want("cpu.context_switches") then
        ms.rate("cpu.context_switches", value)
      elseif key == "processes" and want("cpu.forks") then
        ms.rate("cpu.forks", value)
      elseif key == "procs_running" and want("cpu.procs_running") then
        ms.gauge("cpu.procs_running", value)
      elseif key == "procs_blocked" and want("cpu.procs_blocked") then
        ms.gauge("cpu.procs_blocked", value)
      end
    end
  end
  -- forget CPUs that went offline
  for label in pairs(prev) do
    if not seen[label] then prev[label] = nil end
  end
end

return {
  type = "system",
  defaults = { proc_root = "/proc", per_cpu = false, metrics = false },
  collect = collect,
}
