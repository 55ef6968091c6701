-- tegrastats: RAM and temperatures of an NVIDIA Jetson board from NVIDIA's
-- `tegrastats` command, as chouette does. Off until config.yaml has a
-- section for it:
--
--   checks:
--     tegrastats: { path: /usr/bin/tegrastats, sample_interval: 500 }
--
-- tegrastats has no one-shot mode: it prints one line every --interval
-- milliseconds until it is stopped. Each run starts
-- `<path> --interval <sample_interval>` with ms.exec's `lines = 1`: the call
-- returns as soon as the first line is out and ms.exec terminates the
-- command's process group (SIGTERM, then SIGKILL), so nothing keeps running
-- between runs. A line looks like
--
--   RAM 613/3964MB (lfb 634x4MB) ... CPU@40.5C PMIC@100C GPU@41C AO@46C ...
--
-- Gauges: tegrastats.ram.used, tegrastats.ram.total, tegrastats.ram.free
-- (bytes, from the MB tegrastats prints) and tegrastats.temperature (degrees
-- Celsius) tagged zone=<name> for each `<zone>@<t>C` field. The PMIC zone is
-- skipped (it reads a fixed 100C on every board), and so is a zone at
-- -256C (tegrastats' value for a sensor that is off). `metrics`: a list of
-- those names to send only some of them.
local U = require "moonstat.checkutil"

local M = {
  enabled = false,
  interval = 10,
  type = "system",
  defaults = { path = "/usr/bin/tegrastats", sample_interval = 500, request_timeout = 5,
               metrics = false },
}

local MB = 1024 * 1024

-- One tegrastats line -> { ram_used =, ram_total = (bytes, or nil),
-- temps = { {zone, celsius}, ... } } in the order printed, or nil, err.
function M.parse(line)
  local r = { temps = {} }
  local used, total, unit = line:match("%f[%w]RAM (%d+)/(%d+)(%a*)")
  if used then
    local scale = (unit == "kB" or unit == "KB") and 1024 or unit == "GB" and 1024 * MB or MB
    r.ram_used, r.ram_total = tonumber(used) * scale, tonumber(total) * scale
  end
  for zone, t in line:gmatch("%f[%w_]([%a_][%w_]*)@(%-?%d+%.?%d*)C%f[^%w]") do
    local v = tonumber(t)
    if v and zone ~= "PMIC" and v > -256 then r.temps[#r.temps + 1] = { zone, v } end
  end
  if not r.ram_used and #r.temps == 0 then
    return nil, "no RAM or temperature fields in: " .. line:sub(1, 120)
  end
  return r
end

function M.collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local iv = tonumber(cfg.sample_interval)
  if not iv or iv < 1 then
    error("sample_interval must be a number of milliseconds, got "
      .. tostring(cfg.sample_interval), 0)
  end
  local argv = { cfg.path, "--interval", tostring(math.floor(iv)) }
  local code, out, err = ms.exec(argv, { lines = 1, timeout = cfg.request_timeout })
  if not code then error(out, 0) end
  local line = out:match("[^\r\n]+")
  if not line then
    error(("%s printed no line (exit code %d%s)"):format(cfg.path, code,
      err ~= "" and ", stderr: " .. err:sub(1, 200):gsub("%s+$", "") or ""), 0)
  end
  local s, perr = M.parse(line)
  if not s then error(cfg.path .. ": " .. perr, 0) end
  if s.ram_used then
    if want("tegrastats.ram.used") then ms.gauge("tegrastats.ram.used", s.ram_used) end
    if want("tegrastats.ram.total") then ms.gauge("tegrastats.ram.total", s.ram_total) end
    if want("tegrastats.ram.free") then
      ms.gauge("tegrastats.ram.free", s.ram_total - s.ram_used)
    end
  end
  if want("tegrastats.temperature") then
    for _, z in ipairs(s.temps) do ms.gauge("tegrastats.temperature", z[2], { zone = z[1] }) end
  end
end

return M
