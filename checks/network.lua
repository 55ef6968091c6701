-- checks/network.lua: traffic per network interface.
--
-- Reads <proc_root>/net/dev and emits, per interface (tag interface=<name>),
-- per-second rates computed by the host (ms.rate: none on the first run;
-- a 32- or 64-bit counter wrap counts through, a reset gives none that run):
--   network.rx_bytes    network.tx_bytes     bytes received / sent
--   network.rx_packets  network.tx_packets   packets
--   network.rx_errors   network.tx_errors    errors
--   network.rx_drops    network.tx_drops     packets dropped
-- all of kind rate, per second.
--
-- Which interfaces: all but the loopback `lo` by default; `interfaces`
-- lists exactly the ones to report instead.
--
-- Config keys (checks.network in config.yaml):
--   proc_root   where proc is mounted                         (default "/proc")
--   interfaces  only these (names or globs with * and ?), e.g. [eth0, "en*"];
--               exclude then does not apply                   (default: all)
--   exclude     interfaces to skip (globs), e.g. [lo, "veth*"]  (default [lo])
--   metrics     send only these names, e.g. [network.rx_bytes] (default: all)
local U = require "moonstat.checkutil"

-- The /proc/net/dev columns, in order, and the name each is sent as
-- (false: not sent).
local COLUMNS = {
  "network.rx_bytes", "network.rx_packets", "network.rx_errors", "network.rx_drops",
  false, false, false, false, -- fifo frame compressed multicast
  "network.tx_bytes", "network.tx_packets", "network.tx_errors", "network.tx_drops",
}

local function collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local only, exclude = U.matcher(cfg.interfaces), U.matcher(cfg.exclude)
  local path = cfg.proc_root .. "/net/dev"
  for line in U.read(path):gmatch("[^\n]+") do
    -- "  eth0: 123 4 ..." (old kernels: "eth0:123 4 ..."); the two header lines have "|"
    local name, rest = line:match("^%s*([^%s:|]+):%s*(.*)$")
    local keep = name ~= nil
    if keep and only then
      keep = only(name)
    elseif keep and exclude then
      keep = not exclude(name)
    end
    if keep then
      local tags = { interface = name }
      local f = U.numbers(rest)
      if #f < #COLUMNS then
        error(("%s: too few fields for %s: %s"):format(path, name, line), 0)
      end
      for i, metric in ipairs(COLUMNS) do
        if metric and want(metric) then ms.rate(metric, f[i], tags) end
      end
    end
  end
end

return {
  type = "system",
  defaults = { proc_root = "/proc", interfaces = false, exclude = { "lo" }, metrics = false },
  collect = collect,
}
