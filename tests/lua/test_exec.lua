-- ms.exec through the real check host (T.run_check with the test check
-- tests/fixtures/lua/checks/exec_probe.lua): exit codes, stdout and stderr,
-- stdin, env, cwd, PATH lookup, output caps (drained, never blocking the
-- child), `lines`, timeouts that kill the whole process group (a child
-- ignoring SIGTERM included), a missing or non-executable program, bad
-- arguments, calls at load time, and no leaks: no descriptor of moonstat
-- reaches the child, none stays open in moonstat, and no child is left
-- running or unreaped. The daemon side (reload and stop mid-call):
-- tests/integration/test_check_exec.sh.
local T = require "moonstat.testing"
local PROBE = "tests/fixtures/lua/checks/exec_probe.lua"

-- One run of the probe; the values it reported by name, or nil, err.
local function run(argv, opts, extra)
  local cfg = { argv = argv, opts = opts }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  local s, err = T.run_check(PROBE, cfg)
  if not s then return nil, err end
  local r = {}
  for _, x in ipairs(s) do
    local k = x.name:match("^exec%.(.*)$")
    if k then r[k] = x.kind == "event" and (x.msg or "") or x.value end
  end
  return r
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local MYPID = tonumber(slurp("/proc/self/stat"):match("^(%d+)"))

-- state letter of a pid (nil: gone)
local function pstate(pid)
  local st = slurp("/proc/" .. pid .. "/stat")
  return st and st:match("^%d+ %b() (%a)")
end

-- moonstat's children (running or zombies): children of its main thread,
-- which spawns them, read without starting a process
local function my_children()
  local kids = {}
  local list = slurp("/proc/" .. MYPID .. "/task/" .. MYPID .. "/children") or ""
  for pid in list:gmatch("%d+") do kids[#kids + 1] = pid .. ":" .. tostring(pstate(pid)) end
  return kids
end

-- moonstat's open descriptors: their count and a listing (by fcntl and
-- readlink through the FFI: starting a process to look would add its own)
local ffi = require "ffi"
pcall(ffi.cdef, [[
int fcntl(int fd, int cmd, ...);
long readlink(const char *path, char *buf, size_t len);
]])
local function nfds()
  local n, list, buf = 0, {}, ffi.new("char[512]")
  for fd = 0, 4095 do
    if ffi.C.fcntl(fd, 1 --[[F_GETFD]]) >= 0 then
      n = n + 1
      local len = ffi.C.readlink("/proc/self/fd/" .. fd, buf, 511)
      list[#list + 1] = fd .. "=" .. (len > 0 and ffi.string(buf, len) or "?")
    end
  end
  return n, table.concat(list, " ")
end

-- let the loop run `s` seconds (background kills and reaping happen there)
local function drive(s)
  run({ "/bin/sleep", tostring(s) })
end

drive(0) -- the first spawn sets up libuv's SIGCHLD pipe: count from here
local fds0, fdlist0 = nfds()

-- exit code, stdout, stderr
local r = run({ "/bin/echo", "hello", "world" })
T.eq(r.code, "0", "exit code 0")
T.eq(r.stdout, "hello world\n", "stdout")
T.eq(r.stderr, "", "empty stderr")
T.eq(r.signal, "nil", "no signal")
r = run({ "/bin/sh", "-c", "echo out; echo oops >&2; exit 3" })
T.eq(r.code, "3", "exit code 3")
T.eq(r.stdout, "out\n", "stdout with a failing exit")
T.eq(r.stderr, "oops\n", "stderr")
r = run({ "echo", "from", "PATH" })
T.eq(r.stdout, "from PATH\n", "a program without '/' is looked up in PATH")
r = run("/bin/true")
T.eq(r.code, "0", "argv may be one string (a program without arguments)")
r = run({ "/bin/sh", "-c", "kill -9 $$" })
T.eq(r.code, "137", "a child killed by a signal gives 128 + signal")
T.eq(r.signal, "9", "and info.signal")
r = run({ "/bin/sh", "-c", "printf '%s|' \"$@\"", "sh", "a b", "", "c*" })
T.eq(r.stdout, "a b||c*|", "arguments pass as they are: no shell, no splitting, no globbing")

r = run({ "/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status" })
-- Signals 1-31 (SIGPIPE, which moonstat ignores, among them) start with
-- their default action; real-time signals ignored by whoever started
-- moonstat are inherited as they are (libuv leaves those alone), so only the
-- low 31 bits of the masks are compared.
local function low31(hex) return tonumber(hex:sub(-8), 16) % 2 ^ 31 end
local blk, ign = r.stdout:match("SigBlk:%s*(%x+)\nSigIgn:%s*(%x+)")
T.eq(blk and low31(blk), 0, "the command starts with no signal blocked")
T.eq(ign and low31(ign), 0, "the command starts with no signal 1-31 ignored (moonstat ignores SIGPIPE, it does not) " .. tostring(ign))

-- stdin, env, cwd
r = run({ "/bin/cat" }, { stdin = "line one\nline two" })
T.eq(r.stdout, "line one\nline two", "stdin reaches the child")
local big = string.rep("0123456789abcdef", 65536) -- 1 MiB
r = run({ "/usr/bin/wc", "-c" }, { stdin = big })
T.eq(r.stdout and tonumber(r.stdout:match("%d+")), #big, "1 MiB of stdin arrives whole")
r = run({ "/bin/sh", "-c", "exit 0" }, { stdin = big })
T.eq(r.code, "0", "a child that does not read its stdin does not hurt moonstat (no SIGPIPE)")
r = run({ "/bin/cat" })
T.eq(r.stdout, "", "without stdin the child reads /dev/null")
r = run({ "/bin/sh", "-c", "echo \"$MS_T1|${HOME-unset}|$PATH\"" },
  { env = { MS_T1 = "v1", HOME = false } })
T.like(r.stdout, "^v1|unset|/", "env adds, removes (false) and keeps the rest of the environment")
r = run({ "/bin/pwd" }, { cwd = "/tmp" })
T.eq(r.stdout, "/tmp\n", "cwd")

-- output caps: the cap is kept, the rest is read and dropped
r = run({ "/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo done >&2" }, { max_output = 1000 })
T.eq(r.code, "0", "a child writing past max_output still finishes (its pipe is drained)")
T.eq(r.stdout and #r.stdout, 1000, "stdout is cut at max_output")
T.eq(r.truncated, "true", "info.truncated says so")
T.eq(r.stderr, "done\n", "stderr has its own cap")
r = run({ "/bin/sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' y" })
T.eq(r.stdout and #r.stdout, 1048576, "the default cap is 1 MiB")
r = run({ "/bin/echo", "x" }, { max_output = 1e12 })
T.like(r.code, "nil", "a max_output past 64 MiB is refused")
T.like(r.stdout, "max_output must be 1%.%.67108864 bytes", "with the range")

-- lines: return after the first N lines of a command that prints forever
r = run({ "/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo \"sample $i\"; sleep 0.05; done" },
  { lines = 1, timeout = 5 })
T.eq(r.stdout, "sample 1\n", "lines = 1 returns the first line")
T.eq(r.stopped, "true", "info.stopped: the call terminated it")
T.eq(r.code, "143", "the child ended by SIGTERM")
T.ok(tonumber(r.duration) < 1, "soon after the line (" .. tostring(r.duration) .. " s)")
r = run({ "/bin/sh", "-c", "printf 'a\\nb\\nc\\nd\\n'" }, { lines = 2 })
T.eq(r.stdout, "a\nb\n", "lines = 2 keeps two lines even when more came in the same read")
r = run({ "/bin/sh", "-c", "echo only" }, { lines = 3 })
T.eq(r.stdout, "only\n", "fewer lines than asked: the output it gave")
T.eq(r.stopped, "nil", "and it was not stopped")

-- timeouts kill the whole group, SIGTERM-proof members included
r = run({ "/bin/sh", "-c",
  "trap '' TERM; (trap '' TERM; while :; do sleep 0.1; done) & echo \"$$ $!\"; while :; do sleep 0.1; done" },
  { timeout = 0.3, grace = 0.2 })
T.eq(r.code, "nil", "a command past its timeout gives nil")
T.like(r.stdout, "^exec /bin/sh: timed out after 0%.3s %(its process group was sent SIGTERM, then SIGKILL after 0%.2s%)$",
  "and says what happened")
-- (on a timeout the probe's exec.stdout holds err and exec.stderr the partial stdout)
local leader, sub = (r.stderr or ""):match("^(%d+) (%d+)\n$")
T.ok(leader and sub, "the partial stdout comes third (pids " .. tostring(leader) .. " " .. tostring(sub) .. ")")
T.ok(tonumber(r.duration or 0) == 0, "no info table on a timeout")
drive(0.6)
local ls, ss = leader and pstate(leader), sub and pstate(sub)
T.ok(ls == nil or ls == "Z", "the group leader is gone after the grace (state " .. tostring(ls) .. ")")
T.ok(ss == nil or ss == "Z", "its child that ignores SIGTERM too, by SIGKILL (state " .. tostring(ss) .. ")")

-- a run whose own timeout comes first: the call is cut to it, the run fails
os.execute("mkdir -p tests/tmp && rm -f tests/tmp/exec_killed.pid")
local s, err = T.run_check(PROBE, { argv = { "/bin/sh", "-c", "echo $$ > tests/tmp/exec_killed.pid; exec sleep 30" },
  opts = { timeout = 30 }, run_timeout = 0.3 })
T.eq(s, nil, "a run that times out in ms.exec fails")
T.like(err, "timed out after 0%.3s %(waiting for I/O%)", "as a timeout while waiting for I/O")
drive(0.2)
local kpid = (slurp("tests/tmp/exec_killed.pid") or ""):match("%d+")
local kst = kpid and pstate(kpid)
T.ok(kpid and (kst == nil or kst == "Z"), "the killed run's command is gone (pid " .. tostring(kpid) .. ", state " .. tostring(kst) .. ")")

-- errors: nil, err that say what to do
r = run({ "no-such-program-moonstat" })
T.eq(r.code, "nil", "a missing program gives nil")
T.like(r.stdout, "^exec no%-such%-program%-moonstat: not found: give its full path, or check PATH .*%(ENOENT%)$",
  "with an actionable message")
os.execute("mkdir -p tests/tmp")
local nx = assert(io.open("tests/tmp/exec_notexec.sh", "w"))
nx:write("#!/bin/sh\necho never\n")
nx:close()
os.execute("chmod 644 tests/tmp/exec_notexec.sh")
r = run({ "tests/tmp/exec_notexec.sh" })
T.like(r.stdout, "^exec tests/tmp/exec_notexec%.sh: permission denied: .*%(EACCES%)$",
  "a file that is not executable")
r = run({ "/bin/echo" }, { timout = 1 })
T.like(r.stdout, "ms%.exec: unknown option 'timout'", "a misspelt option is an error")
r = run({})
T.like(r.stdout, "ms%.exec: argv is empty", "an empty argv is an error")
r = run({ "/bin/echo", {} })
T.like(r.stdout, "ms%.exec: argv%[2%] must be a string, got table", "a non-string argument is an error")
r = run({ "/bin/echo" }, { env = { ["A=B"] = "x" } })
T.like(r.stdout, "ms%.exec: env entry 'A=B' must be NAME = string", "a bad env entry is an error")
r = run({ "/bin/echo" }, { timeout = -1 })
T.like(r.stdout, "ms%.exec: timeout must be a positive number", "a bad timeout is an error")
os.execute("mkdir -p tests/tmp")
local f = assert(io.open("tests/tmp/exec_atload.lua", "w"))
f:write([[local c, e = ms.exec({ "/bin/true" })
return { collect = function() ms.event("exec.atload", tostring(c) .. " " .. tostring(e)) end }]])
f:close()
s = T.run_check("tests/tmp/exec_atload.lua", {})
T.like(s and s[1] and s[1].msg, "^nil ms%.exec: .*only be made while the check runs",
  "ms.exec at load time is refused with a reason")

-- descriptors: the child gets only 0, 1 and 2 (a file the check holds open,
-- moonstat's own sockets and pipes stay out) and moonstat keeps none
r = run({ "/bin/sh", "-c", "ls /proc/$$/fd" }, nil, { fd_file = "/etc/hostname" })
T.eq(r.stdout, "0\n1\n2\n", "the child inherits no descriptor but stdin, stdout and stderr")
for _ = 1, 20 do run({ "/bin/sh", "-c", "echo x; echo y >&2" }, { stdin = "z" }) end
drive(1.2) -- past the default grace: commands finishing in the background are done
local fds1, fdlist1 = nfds()
T.eq(fds1, fds0, "moonstat has as many descriptors open as before the runs")
if fds1 ~= fds0 then print("# before: " .. fdlist0 .. "\n# after: " .. fdlist1) end

-- nothing left behind: every child reaped, none running
drive(0.3)
local kids = my_children()
T.eq(#kids, 0, "no child of moonstat left, running or zombie (" .. table.concat(kids, " ") .. ")")

T.done()
