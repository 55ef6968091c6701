-- checks/filesystems.lua: space and inodes per mounted file system.
--
-- Reads the mount table <proc_root>/self/mounts and asks each file system
-- for its numbers with ms.statvfs. Local ones (a /dev/ device, tmpfs, zfs)
-- answer from memory and are asked directly; any other (NFS, CIFS, FUSE,
-- ...) could hang when its server is gone, so it is asked on a worker
-- thread with `statvfs_timeout`: a hung mount costs its own timeout, not
-- the agent. Per mount, tagged mount=<mount point>, device=<source>,
-- fstype=<type>, gauges:
--   filesystem.total                bytes in the file system
--   filesystem.used                 bytes in use
--   filesystem.free                 bytes free for ordinary users (df's
--                                   "Avail"; root's reserve not counted)
--   filesystem.used_percent         used * 100 / (used + free), as df shows it
--   filesystem.inodes_total         inodes
--   filesystem.inodes_used          inodes in use
--   filesystem.inodes_free          inodes free
--   filesystem.inodes_used_percent  inodes_used * 100 / inodes_total
-- (the inode ones only where the file system has a fixed number of
-- inodes: btrfs, vfat and the like report none).
--
-- Which mounts:
--   - pseudo file systems are skipped: those in `exclude_fstypes`, tmpfs
--     and its kin (tmpfs, devtmpfs, ramfs) unless `tmpfs` is true, and any
--     whose size is 0;
--   - a mount point listed twice (mounted over) is reported once, as the
--     mount on top;
--   - a device (or network export: a source with a "/" in it) mounted at
--     several places, e.g. bind mounts, is reported once, at its shortest
--     mount point;
--   - `mounts` lists exactly the mount points to report instead; mount
--     points matching `exclude_mounts` are skipped.
-- A mount this user may not read (statvfs: Permission denied, e.g. another
-- user's FUSE mount) is skipped quietly (a debug log line), as `df` does.
-- Any other failure (a stale mount, an I/O error, a timeout) fails the run
-- with a message naming each mount, after the others were sent: skip such
-- mounts with `exclude_mounts` or `exclude_fstypes`.
--
-- Config keys (checks.filesystems in config.yaml):
--   proc_root        where proc is mounted                   (default "/proc")
--   mounts           only these mount points (globs with * and ?)  (default: all)
--   exclude_mounts   mount points to skip (globs), e.g. ["/var/lib/docker/*"]
--                                                            (default: none)
--   exclude_fstypes  file system types to skip     (default: the pseudo ones below)
--   tmpfs            report tmpfs, devtmpfs and ramfs mounts too  (default false)
--   statvfs_timeout  seconds a network or FUSE mount may take to answer
--                                                            (default 5)
--   metrics          send only these names, e.g. [filesystem.used_percent]
--                                                            (default: all)
local U = require "moonstat.checkutil"

local PSEUDO = {
  "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
  "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "nfsd", "overlay", "proc",
  "pstore", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tracefs",
}
local TMPFS = { tmpfs = true, devtmpfs = true, ramfs = true }

-- Can statvfs on this mount hang (a network or FUSE file system)?
local function may_hang(m)
  if m.fstype:find("^fuse") then return true end
  return not (m.source:find("^/dev/") or TMPFS[m.fstype] or m.fstype == "zfs")
end

-- The mount table's octal escapes ("\040" for a space) decoded.
local function unescape(s)
  return (s:gsub("\\(%d%d%d)", function(o) return string.char(tonumber(o, 8) % 256) end))
end

-- The mounts to report, in the table's order: { source, mount, fstype }.
local function select_mounts(text, cfg)
  local only, exclude = U.matcher(cfg.mounts), U.matcher(cfg.exclude_mounts)
  local skip_types = U.set_of(cfg.exclude_fstypes) or {}
  local list, by_mount = {}, {}
  for line in text:gmatch("[^\n]+") do
    local source, mount, fstype = line:match("^(%S+)%s+(%S+)%s+(%S+)")
    if source then
      source, mount = unescape(source), unescape(mount)
      local keep = not skip_types[fstype] and (cfg.tmpfs or not TMPFS[fstype])
      if only then keep = keep and only(mount) end
      if exclude then keep = keep and not exclude(mount) end
      local prev = by_mount[mount]
      if prev then prev.hidden = true end -- mounted over: the later one is seen
      local m = { source = source, mount = mount, fstype = fstype, hidden = not keep }
      by_mount[mount] = m
      list[#list + 1] = m
    end
  end
  -- one report per device or export: at its shortest mount point
  local by_source = {}
  for _, m in ipairs(list) do
    if not m.hidden and m.source:find("/", 1, true) then
      local best = by_source[m.source]
      if not best then
        by_source[m.source] = m
      elseif #m.mount < #best.mount then
        best.hidden = true
        by_source[m.source] = m
      else
        m.hidden = true
      end
    end
  end
  local out = {}
  for _, m in ipairs(list) do
    if not m.hidden then out[#out + 1] = m end
  end
  return out
end

local function collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local timeout = tonumber(cfg.statvfs_timeout)
  if not timeout or timeout <= 0 then
    error(("checks.filesystems.statvfs_timeout must be seconds > 0, got %s")
      :format(tostring(cfg.statvfs_timeout)), 0)
  end
  local path = cfg.proc_root .. "/self/mounts"
  local failed = {}
  for _, m in ipairs(select_mounts(U.read(path), cfg)) do
    local st, serr = ms.statvfs(m.mount, may_hang(m) and timeout or nil)
    if not st then
      if serr:find(": Permission denied", 1, true) then
        ms.log.debug(serr .. " (skipped)")
      else
        failed[#failed + 1] = serr
      end
    elseif st.blocks > 0 then
      local tags = { mount = m.mount, device = m.source, fstype = m.fstype }
      local bs = st.frsize > 0 and st.frsize or st.bsize
      local used, free = (st.blocks - st.bfree) * bs, st.bavail * bs
      local function gauge(name, v) if want(name) then ms.gauge(name, v, tags) end end
      gauge("filesystem.total", st.blocks * bs)
      gauge("filesystem.used", used)
      gauge("filesystem.free", free)
      if used + free > 0 then gauge("filesystem.used_percent", used * 100 / (used + free)) end
      if st.files > 0 then
        gauge("filesystem.inodes_total", st.files)
        gauge("filesystem.inodes_used", st.files - st.ffree)
        gauge("filesystem.inodes_free", st.ffree)
        gauge("filesystem.inodes_used_percent", (st.files - st.ffree) * 100 / st.files)
      end
    end
  end
  if #failed > 0 then
    error(table.concat(failed, "; ") .. " (skip a mount with exclude_mounts)", 0)
  end
end

return {
  type = "system",
  defaults = { proc_root = "/proc", mounts = false, exclude_mounts = false,
               exclude_fstypes = PSEUDO, tmpfs = false, statvfs_timeout = 5, metrics = false },
  collect = collect,
}
