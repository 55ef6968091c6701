-- Host checks (checks/diskstats.lua, network.lua, system.lua, nfs.lua,
-- filesystems.lua) against the proc snapshots in tests/fixtures/host, and
-- the `metrics` option of cpu, memory and load, through the real check host.
--
-- t0 is a snapshot of a real machine with crafted devices added; t1 is t0
-- 10 s later with known deltas; t2 is t1 10 s later with 32-bit counter
-- wraps (disk sdb, interface wan0) and resets (disk sdc, interface eth1).
-- Every check keeps state between runs (or the host's rate memory does),
-- so the runs of one sequence share one state: the proc_root they read is a
-- symlink pointed at t0, t1, t2 in turn. The host's rate memory lasts for
-- the whole test, so each sequence starts at a later time than the last.
local T = require "moonstat.testing"

local H = "tests/fixtures/host"
local LINK = "tests/tmp/test_host_checks_proc"

local find, value, count, names = T.find, T.value, T.count, T.names

-- within 1e-9: for values that went through a division by 10 in the check
local function near(got, want, what)
  T.ok(type(got) == "number" and math.abs(got - want) < 1e-9,
    ("%s: got %s, want %s"):format(what, tostring(got), tostring(want)))
end

local clock = 1000
-- Run `file` once per snapshot dir in one state, 10 s apart; returns the
-- samples of each run (or fails the test with the error).
local function sequence(file, config, dirs)
  os.execute("mkdir -p tests/tmp")
  local cfg = { proc_root = LINK }
  for k, v in pairs(config or {}) do cfg[k] = v end
  local c = assert(T.check(file, cfg))
  local runs = {}
  clock = clock + 1000
  for i, dir in ipairs(dirs) do
    assert(os.execute(("ln -sfn %q %q"):format(os.getenv("PWD") .. "/" .. dir, LINK)) == 0)
    local s, err = c:run(clock + 10 * (i - 1))
    T.ok(s, ("%s run %d on %s: %s"):format(file, i, dir, tostring(err)))
    runs[i] = s or {}
  end
  c:close()
  return runs
end

local ALL = { H .. "/t0", H .. "/t1", H .. "/t2" }

---------------------------------------------------------------- diskstats

local r = sequence("checks/diskstats.lua", {}, ALL)
T.eq(#r[1], 0, "diskstats: nothing on the first run (rates only)")
local vda = { device = "vda" }
T.eq(value(r[2], "disk.reads", vda), 100, "vda: 1000 reads in 10 s")
T.eq(value(r[2], "disk.writes", vda), 50, "vda: 500 writes in 10 s")
T.eq(value(r[2], "disk.read_bytes", vda), 1024000, "vda: 20000 sectors read in 10 s")
T.eq(value(r[2], "disk.write_bytes", vda), 2048000, "vda: 40000 sectors written in 10 s")
near(value(r[2], "disk.busy", vda), 25, "vda: 2500 ms of io_ticks in 10 s = 25% busy")
T.eq(find(r[2], "disk.reads", vda).kind, "rate", "disk.reads is a rate")
T.eq(find(r[2], "disk.reads", vda).tags.type, "system", "type=system")
local sda = { device = "sda" }
T.eq(value(r[2], "disk.reads", sda), 10, "sda (old kernel, 11 fields): reads")
T.eq(value(r[2], "disk.read_bytes", sda), 40960, "sda: read bytes")
T.eq(value(r[2], "disk.write_bytes", sda), 20480, "sda: write bytes")
near(value(r[2], "disk.busy", sda), 10, "sda: busy")
T.eq(value(r[2], "disk.reads", { device = "nvme0n1" }), 3, "nvme0n1: reads")
near(value(r[2], "disk.busy", { device = "nvme0n1" }), 5, "nvme0n1: busy")
T.eq(value(r[2], "disk.reads", { device = "zram0" }), 0, "zram0: an idle device reports 0")
T.eq(value(r[2], "disk.reads", { device = "dm-0" }), 0, "dm-0 is not a partition")
for _, d in ipairs({ "loop0", "loop7", "ram0", "sda1", "nvme0n1p1", "mmcblk0p1" }) do
  T.eq(count(r[2], nil, "device", d), 0, d .. " skipped by default")
end
T.eq(count(r[2], "disk.reads"), 7, "disk.reads for the 7 others: vda zram0 sda sdb sdc nvme0n1 dm-0")
T.eq(names(r[2]), "disk.busy,disk.read_bytes,disk.reads,disk.write_bytes,disk.writes",
  "the five disk metrics")
-- t1 -> t2: sdb's counters wrap at 2^32, sdc's are reset, vda is idle
local sdb = { device = "sdb" }
T.eq(value(r[3], "disk.reads", sdb), 19.6, "sdb: reads counted through the 32-bit wrap")
T.eq(value(r[3], "disk.read_bytes", sdb), 20480, "sdb: sectors unwrapped before * 512")
near(value(r[3], "disk.busy", sdb), 50, "sdb: io_ticks unwrapped before / 10")
T.eq(count(r[3], nil, "device", "sdc"), 0, "sdc: counters reset, no rate that run")
T.eq(value(r[3], "disk.reads", vda), 0, "vda idle: 0 reads/s")
T.eq(value(r[3], "disk.busy", vda), 0, "vda idle: 0% busy")

r = sequence("checks/diskstats.lua", { partitions = true, exclude = { "loop*" } }, ALL)
T.eq(value(r[2], "disk.reads", { device = "ram0" }), 0, "exclude [loop*]: ram0 reported")
T.eq(count(r[2], nil, "device", "loop0"), 0, "exclude [loop*]: loop0 skipped")
T.eq(value(r[2], "disk.reads", { device = "sda1" }), 0, "partitions: sda1 reported")
T.eq(count(r[2], "disk.reads", "device", "nvme0n1p1"), 1, "partitions: nvme0n1p1 reported")

r = sequence("checks/diskstats.lua", { devices = { "sd?", "loop0" },
                                       metrics = { "disk.busy" } }, ALL)
T.eq(names(r[2]), "disk.busy", "metrics: only disk.busy")
T.eq(count(r[2], "disk.busy"), 4, "devices [sd?, loop0]: sda, sdb, sdc and loop0")
T.eq(count(r[2], nil, "device", "loop0"), 1, "devices: a listed device wins over exclude")
T.eq(count(r[2], nil, "device", "vda"), 0, "devices: vda not listed")

---------------------------------------------------------------- network

r = sequence("checks/network.lua", {}, ALL)
T.eq(#r[1], 0, "network: nothing on the first run")
local eth0 = { interface = "eth0" }
T.eq(value(r[2], "network.rx_bytes", eth0), 100000, "eth0 rx_bytes")
T.eq(value(r[2], "network.rx_packets", eth0), 100, "eth0 rx_packets")
T.eq(value(r[2], "network.rx_errors", eth0), 1, "eth0 rx_errors")
T.eq(value(r[2], "network.rx_drops", eth0), 2, "eth0 rx_drops")
T.eq(value(r[2], "network.tx_bytes", eth0), 50000, "eth0 tx_bytes")
T.eq(value(r[2], "network.tx_packets", eth0), 40, "eth0 tx_packets")
T.eq(value(r[2], "network.tx_errors", eth0), 0, "eth0 tx_errors")
T.eq(value(r[2], "network.tx_drops", eth0), 0.5, "eth0 tx_drops")
T.eq(find(r[2], "network.rx_bytes", eth0).kind, "rate", "network.rx_bytes is a rate")
T.eq(value(r[2], "network.rx_bytes", { interface = "ppp0" }), 200,
  "ppp0 (no space after the colon) parses")
T.eq(count(r[2], nil, "interface", "lo"), 0, "lo skipped by default")
T.eq(count(r[2], "network.rx_bytes"), 7, "every other interface: ifb0 ifb1 eth0 wan0 eth1 veth ppp0")
T.eq(count(r[2], nil, "interface", "eth0"), 8, "eight metrics per interface")
T.eq(value(r[3], "network.rx_bytes", { interface = "wan0" }), 4729.6,
  "wan0: rx_bytes counted through the 32-bit wrap")
T.eq(count(r[3], "network.rx_bytes", "interface", "eth1"), 0, "eth1: reset, no rx_bytes rate")
T.eq(value(r[3], "network.tx_bytes", { interface = "eth1" }), 0,
  "eth1: the counters that did not go back still give rates")

r = sequence("checks/network.lua", { interfaces = { "eth*", "lo" } }, ALL)
T.eq(count(r[2], "network.rx_bytes"), 3, "interfaces [eth*, lo]: eth0, eth1 and lo")
T.eq(value(r[2], "network.rx_bytes", { interface = "lo" }), 1000, "lo when listed")
r = sequence("checks/network.lua", { exclude = { "lo", "veth*", "ifb?" },
                                     metrics = { "network.rx_bytes", "network.tx_bytes" } }, ALL)
T.eq(count(r[2], "network.rx_bytes"), 4, "exclude [lo, veth*, ifb?]: eth0 wan0 eth1 ppp0")
T.eq(names(r[2]), "network.rx_bytes,network.tx_bytes", "metrics: only rx and tx bytes")

---------------------------------------------------------------- system

r = sequence("checks/system.lua", {}, ALL)
T.eq(count(r[1], "system.context_switches"), 0, "system: no rates on the first run")
T.eq(value(r[1], "system.procs_running"), 2, "procs_running")
T.eq(value(r[1], "system.open_files"), 596, "open_files")
T.eq(value(r[2], "system.context_switches"), 5000, "50000 context switches in 10 s")
T.eq(value(r[2], "system.forks"), 25, "250 forks in 10 s")
T.eq(value(r[2], "system.interrupts"), 12345, "123450 interrupts in 10 s")
T.eq(find(r[2], "system.interrupts").kind, "rate", "interrupts: a rate")
T.eq(value(r[2], "system.procs_running"), 3, "procs_running t1")
T.eq(value(r[2], "system.procs_blocked"), 1, "procs_blocked t1")
T.eq(value(r[2], "system.uptime"), 10615.48, "uptime in seconds")
T.eq(find(r[2], "system.uptime").kind, "gauge", "uptime: a gauge")
T.eq(value(r[2], "system.open_files"), 1024, "open_files t1")
T.eq(value(r[2], "system.open_files_max"), 2466190, "open_files_max")
T.eq(value(r[3], "system.open_files"), 2024, "open_files = allocated - free")
T.eq(value(r[3], "system.open_files_max"), 100000, "open_files_max t2")
T.eq(value(r[3], "system.procs_blocked"), 2, "procs_blocked t2")
T.eq(value(r[3], "system.forks"), 25, "forks t2")
T.eq(value(r[3], "system.interrupts"), 12345, "interrupts t2")
r = sequence("checks/system.lua", { metrics = { "system.uptime", "system.forks" } }, ALL)
T.eq(names(r[2]), "system.forks,system.uptime", "metrics: only the listed names")
local s, err = T.run_check("checks/system.lua", { proc_root = "tests/fixtures/proc1" }, 1000)
T.eq(s, nil, "system: a missing file fails the run")
T.like(err, "tests/fixtures/proc1/uptime", "the error names the file")

---------------------------------------------------------------- nfs

r = sequence("checks/nfs.lua", {}, ALL)
T.eq(#r[1], 0, "nfs: nothing on the first run")
T.eq(value(r[2], "nfs.rpc.calls"), 100, "rpc calls")
T.eq(value(r[2], "nfs.rpc.retransmissions"), 0.5, "rpc retransmissions")
T.eq(value(r[2], "nfs.rpc.auth_refreshes"), 0, "rpc auth refreshes")
T.eq(value(r[2], "nfs.ops", { version = "3", op = "getattr" }), 10, "v3 getattr")
T.eq(value(r[2], "nfs.ops", { version = "3", op = "read" }), 50, "v3 read")
T.eq(value(r[2], "nfs.ops", { version = "3", op = "write" }), 25, "v3 write")
T.eq(value(r[2], "nfs.ops", { version = "3", op = "commit" }), 0, "v3 commit (the last op)")
T.eq(value(r[2], "nfs.ops", { version = "4", op = "read" }), 1, "v4 read")
T.eq(value(r[2], "nfs.ops", { version = "4", op = "sequence" }), 0, "v4 sequence (41st)")
T.eq(value(r[2], "nfs.ops", { version = "4", op = "op71" }), 0.2, "v4 op past the known names")
T.eq(find(r[2], "nfs.ops", { version = "3", op = "read" }).kind, "rate", "nfs.ops is a rate")
T.eq(count(r[2], "nfs.ops", "version", "2"), 0, "v2: every counter 0, nothing sent")
T.eq(count(r[2], "nfs.ops", "op", "null"), 0, "ops never called are not sent")
T.eq(count(r[2], "nfs.ops", "version", "3"), 6, "v3: the six ops called")
T.eq(count(r[2], "nfs.ops", "version", "4"), 4, "v4: the four ops called")
r = sequence("checks/nfs.lua", { versions = { 4 }, metrics = { "nfs.ops" } }, ALL)
T.eq(count(r[2], "nfs.ops", "version", "3"), 0, "versions [4]: no v3")
T.eq(count(r[2], "nfs.ops", "version", "4"), 4, "versions [4]: v4")
T.eq(names(r[2]), "nfs.ops", "metrics [nfs.ops]: no rpc")
s, err = T.run_check("checks/nfs.lua", { proc_root = "tests/fixtures/proc1" }, 1000)
T.ok(s, "nfs without net/rpc/nfs: the run succeeds: " .. tostring(err))
T.eq(s and #s, 0, "and sends nothing")

---------------------------------------------------------------- filesystems

local FAKE = H .. "/filesystems_fake.lua"
local function fs_run(config, dir)
  local cfg = { proc_root = dir or (H .. "/t0") }
  for k, v in pairs(config or {}) do cfg[k] = v end
  return T.run_check(FAKE, cfg, 1000)
end
local function calls(samples)
  local e = find(samples, "statvfs.calls")
  return e and e.msg
end

s, err = fs_run({})
T.ok(s, "filesystems runs: " .. tostring(err))
T.eq(calls(s), "/,/srv,/mnt/c,/mnt/backup disk,/home~5,/data,/media/usb,/mnt/empty~5",
  "statvfs only for real file systems, each device once, a mount point once; "
  .. "on a thread (with statvfs_timeout) unless the device is local")
local root = { mount = "/", device = "/dev/vda", fstype = "ext4" }
T.eq(value(s, "filesystem.total", root), 4300800000, "/: total = blocks * frsize")
T.eq(value(s, "filesystem.used", root), 2457600000, "/: used = (blocks - bfree) * frsize")
T.eq(value(s, "filesystem.free", root), 1638400000, "/: free = bavail * frsize")
T.eq(value(s, "filesystem.used_percent", root), 60, "/: used_percent = used / (used + free)")
T.eq(value(s, "filesystem.inodes_total", root), 65536, "/: inodes_total")
T.eq(value(s, "filesystem.inodes_used", root), 16384, "/: inodes_used")
T.eq(value(s, "filesystem.inodes_free", root), 49152, "/: inodes_free")
T.eq(value(s, "filesystem.inodes_used_percent", root), 25, "/: inodes_used_percent")
T.eq(find(s, "filesystem.total", root).kind, "gauge", "filesystem samples are gauges")
T.eq(find(s, "filesystem.total", root).tags.type, "system", "type=system")
local srv = { mount = "/srv", device = "/dev/vdb1" }
T.eq(value(s, "filesystem.total", srv), 2048000000, "/srv: counts in frsize (1024) units")
T.eq(value(s, "filesystem.inodes_used_percent", srv), 10, "/srv: inodes_used_percent")
T.eq(count(s, nil, "mount", "/var/lib/app/data"), 0, "a bind mount of /dev/vdb1: reported once")
T.eq(value(s, "filesystem.used_percent", { mount = "/mnt/c" }), 0,
  "/dev/vdc1 at /mnt/longer/path and /mnt/c: the shortest mount point")
T.eq(count(s, nil, "mount", "/mnt/longer/path"), 0, "and not the longer one")
local bk = { mount = "/mnt/backup disk" }
T.eq(value(s, "filesystem.total", bk), 4096, "\\040 in the mount table is a space")
T.eq(value(s, "filesystem.used_percent", bk), 75, "/mnt/backup disk used_percent")
T.eq(value(s, "filesystem.inodes_used_percent", bk), 75, "/mnt/backup disk inodes_used_percent")
local home = { mount = "/home", device = "nas:/export/home", fstype = "nfs4" }
T.eq(value(s, "filesystem.total", home), 327680000, "/home over NFS")
T.eq(count(s, "filesystem.total", "mount", "/data"), 1, "/data mounted over: reported once")
T.eq(find(s, "filesystem.total", { mount = "/data" }).tags.device, "/dev/vde1",
  "as the file system on top")
local usb = { mount = "/media/usb" }
T.eq(value(s, "filesystem.used", usb), 3072000, "/media/usb used")
T.eq(count(s, "filesystem.inodes_total", "mount", "/media/usb"), 0,
  "vfat has no inode counts: no inode metrics")
T.eq(count(s, nil, "mount", "/mnt/empty"), 0, "a file system of size 0 sends nothing")
for _, m in ipairs({ "/proc", "/sys", "/dev", "/dev/shm", "/dev/pts", "/run",
                     "/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/snap/core/100",
                     "/var/lib/docker/overlay2/4f1e/merged" }) do
  T.eq(count(s, nil, "mount", m), 0, m .. " skipped by default")
end
T.eq(count(s, "filesystem.total"), 7, "seven file systems")

s = fs_run({ tmpfs = true })
T.eq(calls(s), "/dev,/,/dev/shm,/sys/fs/cgroup,/run,/srv,/mnt/c,/mnt/backup disk,/home~5,"
  .. "/data,/media/usb,/mnt/empty~5", "tmpfs: true adds tmpfs and devtmpfs mounts, once each")
T.eq(value(s, "filesystem.used", { mount = "/run", fstype = "tmpfs" }), 204800, "/run tmpfs")
T.eq(count(s, "filesystem.total", "mount", "/dev/shm"), 1, "/dev/shm listed twice: once")

s = fs_run({ exclude_fstypes = { "nfs4" },
             exclude_mounts = { "/mnt/*", "/media/*", "/proc", "/sys*", "/dev*", "/snap/*",
                                "/var/lib/docker/*" } })
T.eq(calls(s), "/,/srv,/data", "exclude_mounts (globs) and exclude_fstypes [nfs4]")
T.eq(count(s, nil, "fstype", "nfs4"), 0, "exclude_fstypes [nfs4]: /home skipped")
s, err = fs_run({ exclude_fstypes = {}, mounts = { "/proc", "/sys" } })
T.eq(err, "statvfs /proc: Input/output error; statvfs /sys: Input/output error "
  .. "(skip a mount with exclude_mounts)", "exclude_fstypes [] replaces the default list")

s = fs_run({ mounts = { "/srv", "/var/lib/app/data", "/", "/home" }, statvfs_timeout = 2,
             metrics = { "filesystem.used_percent" } })
T.eq(calls(s), "/,/srv,/home~2", "mounts: only those listed, the bind mount still once; "
  .. "statvfs_timeout")
T.eq(names(s), "filesystem.used_percent,statvfs.calls", "metrics: only used_percent")

s, err = fs_run({ statvfs_timeout = "soon" })
T.eq(err, "checks.filesystems.statvfs_timeout must be seconds > 0, got soon",
  "a statvfs_timeout that is not a number: a clear error")
s, err = fs_run({ statvfs_timeout = 0.5 }, H .. "/broken")
T.eq(s, nil, "a mount whose statvfs fails fails the run")
T.eq(err, "statvfs /mnt/broken: Input/output error; statvfs /mnt/stale: Input/output error "
  .. "(skip a mount with exclude_mounts)", "naming every mount that failed")
T.ok(not err:find("locked", 1, true), "a mount we may not read (Permission denied): skipped, not an error")
s, err = fs_run({ exclude_mounts = { "/mnt/*" } }, H .. "/broken")
T.eq(value(s, "filesystem.used_percent", { mount = "/" }), 60, "excluded, the rest is reported")

-- the real ms.statvfs, against stat(1)
local tmp = "tests/tmp/test_host_checks_statvfs.lua"
local f = assert(io.open(tmp, "w"))
f:write([[
local at_load, load_err = ms.statvfs("/", 1)
local direct_at_load = ms.statvfs("/")
return function()
  local st = assert(ms.statvfs("/"))
  local th = assert(ms.statvfs("/", 5))
  ms.gauge("st.direct_at_load", direct_at_load.blocks)
  ms.gauge("st.thread.blocks", th.blocks)
  ms.gauge("st.thread.files", th.files)
  local none2, e2 = ms.statvfs("/nonexistent/moonstat", 5)
  ms.event("st.thread.missing", tostring(none2) .. " " .. tostring(e2))
  ms.gauge("st.blocks", st.blocks)
  ms.gauge("st.frsize", st.frsize)
  ms.gauge("st.files", st.files)
  ms.gauge("st.ok", (st.bfree <= st.blocks and st.bavail <= st.bfree) and 1 or 0)
  ms.gauge("st.readonly", st.readonly and 1 or 0)
  local none, e = ms.statvfs("/nonexistent/moonstat")
  ms.event("st.missing", tostring(none) .. " " .. tostring(e))
  ms.event("st.load", tostring(at_load) .. " " .. tostring(load_err))
  local ok, pe = pcall(ms.statvfs)
  ms.event("st.noarg", tostring(ok) .. " " .. tostring(pe))
end]])
f:close()
s, err = T.run_check(tmp, {}, 1000)
T.ok(s, "a check calling ms.statvfs runs: " .. tostring(err))
local p = io.popen("stat -f -c '%b %S %c' /")
local want = p:read("*l") or ""
p:close()
local b, bs, files = want:match("^(%d+) (%d+) (%d+)$")
T.eq(value(s, "st.blocks"), tonumber(b), "ms.statvfs('/').blocks is stat -f's %b")
T.eq(value(s, "st.frsize"), tonumber(bs), "frsize is stat -f's %S")
T.eq(value(s, "st.files"), tonumber(files), "files is stat -f's %c")
T.eq(value(s, "st.thread.blocks"), tonumber(b), "on a thread (with a timeout): the same blocks")
T.eq(value(s, "st.thread.files"), tonumber(files), "on a thread: the same files")
T.eq(value(s, "st.direct_at_load"), tonumber(b), "without a timeout it works at load time too")
T.eq(find(s, "st.thread.missing").msg,
  "nil statvfs /nonexistent/moonstat: No such file or directory", "on a thread: nil, err")
T.eq(value(s, "st.ok"), 1, "bavail <= bfree <= blocks")
T.eq(value(s, "st.readonly"), 0, "/ is writable here")
T.eq(find(s, "st.missing").msg, "nil statvfs /nonexistent/moonstat: No such file or directory",
  "a missing path: nil, err naming it")
T.like(find(s, "st.load").msg, "^nil statvfs /: .*only be made while the check runs",
  "with a timeout, at load time: nil, err (it cannot wait there)")
T.like(find(s, "st.noarg").msg, "^false .*string expected", "a path is required")
os.remove(tmp)

-- and the real filesystems check on this machine's mounts
s, err = T.run_check("checks/filesystems.lua", {}, 1000)
T.ok(s, "filesystems on the real /proc: " .. tostring(err))
T.ok(count(s, "filesystem.total") >= 1, "reports at least one file system")
local first = find(s, "filesystem.total") or { tags = {} }
p = io.popen(("stat -f -c '%%b %%S' '%s'"):format(tostring(first.tags.mount)))
b, bs = (p:read("*l") or ""):match("^(%d+) (%d+)$")
p:close()
T.eq(first.value, tonumber(b) * tonumber(bs or 0),
  ("total of %s = stat -f's %%b * %%S"):format(tostring(first.tags.mount)))

---------------------------------------------------------------- metrics of cpu, memory, load

local P1, P2 = "tests/fixtures/proc1", "tests/fixtures/proc2"
r = sequence("checks/cpu.lua", { metrics = { "cpu.idle", "cpu.forks" }, per_cpu = true }, { P1, P2 })
T.eq(names(r[2]), "cpu.forks,cpu.idle", "cpu metrics: only the listed names")
T.eq(count(r[2], "cpu.idle"), 5, "cpu metrics: per_cpu still applies")
T.eq(value(r[2], "cpu.idle", { cpu = false }), 55, "cpu.idle value")
s = T.run_check("checks/memory.lua", { proc_root = P1, metrics = { "memory.used_percent" } }, 1000)
T.eq(names(s), "memory.used_percent", "memory metrics: only the listed name")
T.eq(value(s, "memory.used_percent"), 50, "memory.used_percent value")
s = T.run_check("checks/load.lua", { proc_root = P1, metrics = { "load.1", "load.health" } }, 1000)
T.eq(names(s), "load.1,load.health", "load metrics: only the listed names")
T.eq(find(s, "load.health").value, 8, "load.health still computed from load.percent")
s = T.run_check("checks/load.lua", { proc_root = P1, metrics = { "load.percent" } }, 1000)
T.eq(names(s), "load.percent", "load metrics: the health sample can be left out")
s = T.run_check("checks/memory.lua", { proc_root = P1 }, 1000)
T.eq(count(s), 10, "memory without metrics: all ten")

T.done()
