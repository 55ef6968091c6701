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

local function read(path)
  local s, err = ms.read_file(path)
  if not s then error(err, 2) end
  return s
end

-- `metrics` -> a function telling whether a metric name is to be sent.
local function wanted(list)
  if type(list) == "string" then list = { list } end
  if type(list) ~= "table" then return function() return true end end
  local set = {}
  for _, n in ipairs(list) do set[n] = true end
  return function(name) return set[name] == true end
end

local function collect()
  local want = wanted(ms.config.metrics)
  local function gauge(name, v) if want(name) then ms.gauge(name, v) end end
  local path = ms.config.proc_root .. "/meminfo"
  local kb = {}
  for key, value in read(path):gmatch("([%w_()]+):%s*(%d+)") do
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
