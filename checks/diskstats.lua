-- checks/diskstats.lua: disk I/O per block device.
--
-- Reads <proc_root>/diskstats and emits, per device (tag device=<name>),
-- per-second rates computed by the host (ms.rate: none on the first run, nor
-- after a device's counters were reset):
--   disk.reads        rate   reads completed per second
--   disk.writes       rate   writes completed per second
--   disk.read_bytes   rate   bytes read per second (sectors * 512)
--   disk.write_bytes  rate   bytes written per second
--   disk.busy         rate   % of the time the device had I/O in flight
--                            (io_ticks: 100 = busy all the time)
-- Counters that wrap at 32 bits (io_ticks always; all of them on 32-bit
-- kernels) are unwrapped before scaling, so a wrap gives a right rate, not
-- a gap.
--
-- Which devices: by default all but loop and RAM disks and partitions
-- (sda1, vda2, nvme0n1p1, mmcblk0p1: their I/O is counted in their disk
-- too). `devices` lists exactly the devices to report instead.
--
-- Config keys (checks.diskstats in config.yaml):
--   proc_root   where proc is mounted                      (default "/proc")
--   devices     only these devices (names or globs with * and ?), e.g.
--               [sda, "nvme*"]; exclude and partitions then do not apply
--                                                          (default: all)
--   exclude     devices to skip (globs)                    (default [loop*, ram*])
--   partitions  also report partitions                     (default false)
--   metrics     send only these names, e.g. [disk.busy]    (default: all)
local U = require "moonstat.checkutil"

local TWO32 = 4294967296

local function is_partition(name)
  return (name:find("^[hsv]d[a-z]+%d+$") or name:find("^xvd[a-z]+%d+$")
    or name:find("^nvme%d+n%d+p%d+$") or name:find("^mmcblk%d+p%d+$")) ~= nil
end

-- Last raw reading and the wraps added so far, by "device field", kept in
-- this check's state from one run to the next.
local last = {}

-- The counter as if it never wrapped at 32 bits: a drop from the top eighth
-- of the range to its bottom eighth adds 2^32; any other drop is a reset
-- (the offset goes back to 0 and ms.rate sees the drop and starts over).
local function unwrap(key, raw, seen)
  seen[key] = true
  local l = last[key]
  if not l then
    last[key] = { raw, 0 }
    return raw
  end
  if raw < l[1] then
    if l[1] >= TWO32 * 7 / 8 and l[1] < TWO32 and raw < TWO32 / 8 then
      l[2] = l[2] + TWO32
    else
      l[2] = 0
    end
  end
  l[1] = raw
  return raw + l[2]
end

local function collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local only, exclude = U.matcher(cfg.devices), U.matcher(cfg.exclude)
  local path = cfg.proc_root .. "/diskstats"
  local seen = {}
  for line in U.read(path):gmatch("[^\n]+") do
    local name, rest = line:match("^%s*%d+%s+%d+%s+(%S+)%s+(.*)$")
    local keep = name ~= nil
    if keep and only then
      keep = only(name)
    elseif keep then
      keep = not (exclude and exclude(name)) and (cfg.partitions or not is_partition(name))
    end
    if keep then
      local f = U.numbers(rest)
      if #f < 10 then error(("%s: too few fields for %s: %s"):format(path, name, line), 0) end
      local tags = { device = name }
      if want("disk.reads") then ms.rate("disk.reads", f[1], tags) end
      if want("disk.writes") then ms.rate("disk.writes", f[5], tags) end
      if want("disk.read_bytes") then
        ms.rate("disk.read_bytes", unwrap(name .. " rs", f[3], seen) * 512, tags)
      end
      if want("disk.write_bytes") then
        ms.rate("disk.write_bytes", unwrap(name .. " ws", f[7], seen) * 512, tags)
      end
      -- io_ticks is in ms: ms per second / 10 = % of the time
      if want("disk.busy") then
        ms.rate("disk.busy", unwrap(name .. " io", f[10], seen) / 10, tags)
      end
    end
  end
  for key in pairs(last) do
    if not seen[key] then last[key] = nil end -- the device went away
  end
end

return {
  type = "system",
  defaults = { proc_root = "/proc", devices = false, exclude = { "loop*", "ram*" },
               partitions = false, metrics = false },
  collect = collect,
}
