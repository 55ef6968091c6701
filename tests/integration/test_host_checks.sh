#!/bin/sh
# The host checks (diskstats, filesystems, network, system, nfs) against
# this machine's real /proc: under the scheduler every second they produce
# rates and gauges and no errors; filesystem sizes match stat -f; ms.statvfs
# on a worker thread agrees with the direct call; the default config.yaml
# runs them. The exact values are asserted on fixtures by
# tests/lua/test_host_checks.lua.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
for c in diskstats filesystems network system nfs; do
    cp "$MS_TOP/checks/$c.lua" "$MS_TMP/checks/"
done
cat > "$MS_TMP/checks/statvfs_thread.lua" << 'LUA'
-- ms.statvfs with a timeout (on a worker thread) and without, same answer
return { interval = 1, collect = function()
  local a = assert(ms.statvfs("/", 5))
  local b = assert(ms.statvfs("/"))
  ms.gauge("statvfs.same", (a.blocks == b.blocks and a.files == b.files) and 1 or 0)
  local none, err = ms.statvfs("/nonexistent/moonstat", 5)
  ms.event("statvfs.missing", tostring(none) .. " " .. tostring(err))
end }
LUA
{
    ms_paths "$MS_TMP/checks"
    cat << EOF
agent: { stats_interval: 1s }
checks:
  diskstats: { interval: 1s }
  filesystems: { interval: 1s }
  network: { interval: 1s }
  system: { interval: 1s }
  nfs: { interval: 1s }
forwarders:
  out: { type: file, path: "$MS_TMP/out.lp", format: influx }
EOF
} > "$MS_TMP/config.yaml"

ms_run_for 3.5 "$MS_TMP/config.yaml"
out=$(cat "$MS_TMP/out.lp" 2> /dev/null)

t_not "no host check failed" grep -E 'check (diskstats|filesystems|network|system|nfs|statvfs_thread):' "$MS_LOG"
t_match "disk.reads rates per device" "$out" '^disk\.reads,device=[^,]+,host=[^,]+,type=system value=[0-9.e+-]+ '
t_match "disk.busy rates" "$out" '^disk\.busy,device=[^,]+,.* value=[0-9.e+-]+ '
t_not "no loop or RAM disks" grep -Eq '^disk\.[a-z_]+,device=(loop|ram)[0-9]' "$MS_TMP/out.lp"
t_match "network.rx_bytes rates per interface" "$out" '^network\.rx_bytes,host=[^,]+,interface=[^,]+,type=system value='
t_not "no lo" grep -q '^network\.[a-z_]*,.*interface=lo,' "$MS_TMP/out.lp"
t_match "system.context_switches rate" "$out" '^system\.context_switches,host=[^,]+,type=system value=[1-9]'
t_match "system.interrupts rate" "$out" '^system\.interrupts,.* value=[0-9]'
t_match "system.forks rate" "$out" '^system\.forks,.* value=[0-9]'
t_match "system.open_files" "$out" '^system\.open_files,.* value=[1-9][0-9]*i? '
up=$(grep '^system\.uptime,' "$MS_TMP/out.lp" | tail -n 1 | sed 's/.* value=\([0-9.]*\).*/\1/')
now=$(cut -d' ' -f1 /proc/uptime)
t_ok "system.uptime ($up) is this machine's uptime ($now) within 10 s" \
    awk -v a="$up" -v b="$now" 'BEGIN { d = b - a; exit !(a > 0 && d >= 0 && d < 10) }'
t_match "filesystem.total per mount" "$out" '^filesystem\.total,device=[^,]+,fstype=[^,]+,host=[^,]+,mount=[^,]+,type=system value='
t_match "ms.statvfs on a thread agrees with the direct call" "$out" '^statvfs\.same,.* value=1i? '
t_match "ms.statvfs on a thread: nil, err for a missing path" "$out" 'statvfs\.missing,.*nil statvfs /nonexistent/moonstat: No such file or directory'
if [ -e /proc/net/rpc/nfs ]; then
    t_match "nfs: this host has an NFS client: rpc calls" "$out" '^nfs\.rpc\.calls,'
else
    t_not "nfs: no NFS client on this host: nothing sent" grep -q '^nfs\.' "$MS_TMP/out.lp"
fi
t_match "the host checks' runs are counted" "$out" '^moonstat_check_runs_total,check=nfs,.* value=[1-9]'

# filesystem.total of every reported mount = stat -f's blocks * fragment size
"$MS_BIN" -c "$MS_TMP/config.yaml" --check filesystems > "$MS_TMP/fs.txt" 2> "$MS_TMP/fs.err"
t_eq "--check filesystems exits 0" "$?" 0
n=0
bad=""
while IFS= read -r line; do
    mount=$(printf '%s\n' "$line" | sed 's/.*[{,]mount=\([^,}]*\)[,}].*/\1/')
    val=$(printf '%s\n' "$line" | sed 's/.*} \([0-9]*\) gauge$/\1/')
    want=$(stat -f -c '%b %S' "$mount" | awk '{ printf "%.0f", $1 * $2 }')
    [ "$val" = "$want" ] || bad="$bad $mount($val!=$want)"
    n=$((n + 1))
done << EOF
$(grep '^filesystem\.total{' "$MS_TMP/fs.txt")
EOF
t_ok "filesystems reports at least one mount ($n)" test "$n" -ge 1
t_eq "filesystem.total = stat -f blocks * size for each mount" "$bad" ""
t_not "no pseudo file systems" grep -Eq 'fstype=(proc|sysfs|cgroup2?|devpts|tmpfs|overlay)[,}]' "$MS_TMP/fs.txt"

# A hung network file system, made with an LD_PRELOAD shim around statvfs
# that sleeps 2 s for paths under /slowfs/: the calls with a timeout give up
# in time, the loop never waits (a 0.2 s check keeps its pace), a second call
# on the path still stuck is refused at once, a run stopped while waiting
# leaves nothing behind (ASan), and the filesystems check reports the other
# mounts and names the hung one.
cat > "$MS_TMP/slowfs.c" << 'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
int statvfs(const char *path, struct statvfs *buf)
{
    static int (*real)(const char *, struct statvfs *);
    if (!real) real = (int (*)(const char *, struct statvfs *))dlsym(RTLD_NEXT, "statvfs");
    if (strncmp(path, "/slowfs/", 8) == 0) {
        sleep(2);
        errno = EIO;
        return -1;
    }
    return real(path, buf);
}
C
t_ok "the statvfs shim builds" cc -shared -fPIC -o "$MS_TMP/slowfs.so" "$MS_TMP/slowfs.c" -ldl
mkdir -p "$MS_TMP/slow/checks" "$MS_TMP/slow/proc/self"
cat > "$MS_TMP/slow/checks/hung.lua" << 'LUA'
return { interval = 1, timeout = 5, collect = function()
  local t0 = ms.monotime()
  local st, err = ms.statvfs("/slowfs/a", 0.3)
  ms.gauge("hung.waited", ms.monotime() - t0)
  ms.event("hung.first", tostring(st) .. " " .. tostring(err))
  local _, err2 = ms.statvfs("/slowfs/a", 0.3)
  ms.event("hung.second", tostring(err2))
  ms.gauge("hung.root", ms.statvfs("/", 1) and 1 or 0)
end }
LUA
cat > "$MS_TMP/slow/checks/cut.lua" << 'LUA'
-- a 5 s statvfs timeout in a run that may take 0.5 s: the wait is cut to
-- the run's deadline, and the run is stopped there
return { interval = 1, timeout = 0.5, collect = function()
  local _, err = ms.statvfs("/slowfs/k" .. ms.timestamp(), 5)
  ms.event("cut.err", tostring(err))
  local t = ms.monotime()
  while ms.monotime() - t < 1 do end
end }
LUA
cat > "$MS_TMP/slow/checks/pace.lua" << 'LUA'
return { interval = 0.2, collect = function() ms.gauge("pace.tick", 1) end }
LUA
cp "$MS_TOP/checks/filesystems.lua" "$MS_TMP/slow/checks/"
printf '/dev/root / ext4 rw 0 0\nnas:/export /slowfs/nas nfs4 rw 0 0\n' > "$MS_TMP/slow/proc/self/mounts"
{
    ms_paths "$MS_TMP/slow/checks"
    cat << EOF
agent: { stats_interval: 1s }
checks:
  filesystems: { interval: 1s, timeout: 5s, proc_root: "$MS_TMP/slow/proc", statvfs_timeout: 0.5 }
forwarders:
  out: { type: file, path: "$MS_TMP/slow/out.lp", format: influx }
EOF
} > "$MS_TMP/slow/config.yaml"
LD_PRELOAD=$MS_TMP/slowfs.so ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
    ms_start "$MS_TMP/slow/config.yaml"
t_ok "daemon starts with the shim" ms_wait_log 'started' 10
sleep 4
ms_stop
t_eq "clean exit with hung statvfs calls pending" "$?" 0
slow=$(cat "$MS_TMP/slow/out.lp" 2> /dev/null)
t_match "a hung statvfs times out with a message" "$slow" 'hung\.first,.*nil statvfs /slowfs/a: timed out after 0\.3 s \(a hung network file system\?\)'
t_match "after its timeout, not the 2 s the call takes" "$slow" '^hung\.waited,.* value=0\.[3-6][0-9]* '
t_match "a second call on the stuck path is refused at once" "$slow" 'hung\.second,.*statvfs /slowfs/a: the previous call on this path has not returned yet'
t_match "other paths still answer" "$slow" '^hung\.root,.* value=1i? '
ticks=$(grep -c '^pace\.tick,' "$MS_TMP/slow/out.lp")
t_ok "the loop never waited: the 0.2 s check ran $ticks times in ~4 s" test "$ticks" -ge 14
t_match "a wait longer than the run may take is cut to its deadline, and the run stopped" \
    "$(cat "$MS_LOG")" 'check cut: .*cut\.lua:[0-9]+: .*timed out( after 0\.5s)?'
t_not "no wait went on past the run's deadline" grep -q 'cut\.err,.*timed out after 5 s' "$MS_TMP/slow/out.lp"
t_match "filesystems: the hung NFS mount fails the run, named" "$(cat "$MS_LOG")" 'check filesystems: statvfs /slowfs/nas: timed out after 0\.5 s'
t_match "filesystems: the other mounts are still sent" "$slow" '^filesystem\.total,device=/dev/root,fstype=ext4,host=[^,]+,mount=/,type=system value=[1-9]'
t_match "statvfs timeouts counted" "$slow" '^moonstat_check_io_timeouts_total,.* value=[1-9]'

# the default config runs them
t_ok "config.yaml passes --config-test" "$MS_BIN" -c "$MS_TOP/config.yaml" --config-test
all=$("$MS_BIN" -c "$MS_TOP/config.yaml" --test 2> "$MS_TMP/test.err")
t_eq "--test with config.yaml exits 0" "$?" 0
t_match "config.yaml: system.uptime" "$all" '^system\.uptime\{host=[^,]+,type=system\} [0-9.]+ gauge$'
t_match "config.yaml: filesystem.used_percent" "$all" '^filesystem\.used_percent\{'
t_match "config.yaml: system.procs_running" "$all" '^system\.procs_running\{'
t_done
