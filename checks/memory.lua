-- checks/memory.lua: memory and swap use.
--
-- Reads <proc_root>/meminfo (values in kB) and emits gauges in bytes:
--   memory.total         MemTotal
--   memory.available     MemAvailable: what can be given to programs without
--                        swapping (kernels before 3.14 lack it: then
--                        MemFree + Buffers + Cached)
--   memory.used          total - available
--   memory.free          MemFree (never used at all; usually small)
--   memory.cached        Cached (page cache)
--   memory.buffers       Buffers
--   memory.swap_total    SwapTotal
--   memory.swap_free     SwapFree
--   memory.swap_used     swap_total - swap_free
-- and
--   memory.used_percent  gauge  used in % of total
--
-- Config keys (checks.memory in config.yaml):
--   proc_root  where proc is mounted  (default "/proc")
--   metrics    send only these names, e.g. [memory.used_percent]  (default: all)
local U = require "moonstat.checkutil"

local function collect()
  local want = U.wanted(ms.config.metrics)
  local function gauge(name, v) if want(name) then ms.gauge(name, v) end end
  local path = ms.config.proc_root .. "/meminfo"
  local kb = {}
  for key, value in U.read(path):gmatch("([%w_()]+):%s*(%d+)") do
    kb[key] = tonumber(value)
  end
  local total = kb.MemTotal
  if not total or total == 0 then error(path .. ": no MemTotal line") end
  local free, buffers, cached = kb.MemFree or 0, kb.Buffers or 0, kb.Cached or 0
  local available = kb.MemAvailable or (free + buffers + cached)
  local swap_total, swap_free = kb.SwapTotal or 0, kb.SwapFree or 0

  gauge("memory.total", total * 1024)
  gauge("memory.available", available * 1024)
  gauge("memory.used", (total - available) * 1024)
  gauge("memory.free", free * 1024)
  gauge("memory.cached", cached * 1024)
  gauge("memory.buffers", buffers * 1024)
  gauge("memory.swap_total", swap_total * 1024)
  gauge("memory.swap_free", swap_free * 1024)
  gauge("memory.swap_used", (swap_total - swap_free) * 1024)
  gauge("memory.used_percent", (total - available) * 100 / total)
end

return {
  type = "system",
  defaults = { proc_root = "/proc", metrics = false },
  collect = collect,
}
