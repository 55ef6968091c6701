#!/bin/sh
# The graphite_pickle encoder over the tcp transport into the real
# carbon-cache's pickle receiver (Debian graphite-carbon): moonstat starts
# before carbon (data queues, the transport reconnects), then carbon stores
# what was queued and what follows; path and tagged modes; the values are
# read back from the whisper files. Also: Python's own unpickler reads the
# issue's wire vector and a big frame exactly as moonstat wrote them.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/checks"
cat > "$MS_TMP/checks/web.lua" << 'LUA'
local n = 0
return { interval = 0.5, collect = function()
  n = n + 1
  ms.gauge("test.gauge", 42.25, { role = "db" })
  ms.gauge("test.runs", n)
  ms.gauge("test.neg", -1e-3)
  ms.send_special("test.health", 16, "down")
end }
LUA

# Wire format, checked by python3's pickle (what carbon itself runs).
cat > "$MS_TMP/wire.lua" << 'LUA'
local T = require "moonstat.testing"
local ffi = require "ffi"
pcall(ffi.cdef, "int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);")
ffi.C.ms_series_set_base_tags(nil, 0)
local s = T.encode("forwarders/graphite_pickle.lua", {},
  { { name = "foo.bar", tags = {}, value = 1.5, ts = 1700000000 } })
io.stdout:write(s)
local many = {}
for i = 1, 30000 do
  many[i] = { name = "m" .. string.rep("x", 50) .. i, tags = { host = "h" }, value = i / 4, ts = 1700000000 + i }
end
io.stdout:write((T.encode("forwarders/graphite_pickle.lua", { tag_mode = "tagged" }, many)))
LUA
(cd "$MS_TOP" && "$MS_BIN" --script "$MS_TMP/wire.lua") > "$MS_TMP/wire.bin"
t_eq "python3 unpickles every frame as written (the vector, then 2.5 MB in 3 frames)" "$("$MS_PY" -c '
import pickle, struct, sys
d = open(sys.argv[1], "rb").read()
frames = []
while d:
    n, = struct.unpack(">I", d[:4])
    assert n <= 1048576, n
    frames.append(pickle.loads(d[4:4 + n]))
    d = d[4 + n:]
assert frames[0] == [("foo.bar", (1700000000, 1.5))], frames[0]
rest = [x for f in frames[1:] for x in f]
want = [("m" + "x" * 50 + str(i) + ";host=h", (1700000000 + i, i / 4)) for i in range(1, 30001)]
assert rest == want, (rest[:2], want[:2])
print("frames=%d" % len(frames))' "$MS_TMP/wire.bin" 2>&1)" "frames=4"

CARBON_PORT=$(free_port tcp)
CARBON_PICKLE_PORT=$(free_port tcp)
export CARBON_PORT CARBON_PICKLE_PORT
cat > "$MS_TMP/config.yaml" << YAML
agent: { hostname: "web1.example.com" }
paths: { checks: [checks], lua: [$MS_TOP/lua], forwarders: [$MS_TOP/forwarders] }
forwarders:
  pickle: { type: graphite_pickle, address: "127.0.0.1:$CARBON_PICKLE_PORT", prefix: pk }
  ptagged: { type: graphite_pickle, address: "127.0.0.1:$CARBON_PICKLE_PORT", tag_mode: tagged, prefix: pt }
YAML
ms_start "$MS_TMP/config.yaml"
t_ok "daemon starts" ms_wait_log 'started' 10
t_ok "connect failure logged, retrying" ms_wait_log "forwarder pickle: connect to 127\.0\.0\.1:$CARBON_PICKLE_PORT: .*retry" 10
sleep 2
before=$(date +%s)
t_ok "carbon-cache starts" carbon_start
t_ok "reconnects" ms_wait_log 'forwarder pickle: connected' 15
t_ok "path mode value stored" carbon_wait pk.web1_example_com.db.test.gauge '^42\.25$' 30
t_ok "negative fraction stored" carbon_wait pk.web1_example_com.test.neg '^-0\.001$' 30
t_ok "health value stored" carbon_wait pk.web1_example_com.test.health '^16$' 30
first=$(carbon_points pk.web1_example_com.test.runs | head -1 | cut -d' ' -f1)
t_ok "samples queued while carbon was down arrived ($first < $before)" test "${first:-9999999999}" -lt "$before"
tagged_ok() {
    carbon_fetch_tagged 'pt.test.gauge;host=web1.example.com;role=db' 2> /dev/null | grep -q '^42\.25$'
}
t_ok "tagged mode stored as a tagged series" _ms_poll 30 tagged_ok
t_not "carbon logged no pickle errors" grep -rqi 'invalid\|unpickl' "$MS_TMP/carbon/log"
ms_stop
t_eq "clean exit" "$?" 0
t_done
