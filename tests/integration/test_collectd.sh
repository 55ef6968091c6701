#!/bin/sh
# The collectd network listener end to end with the real collectd 5.12
# (Debian collectd-core): four collectd daemons send load, memory and cpu
# (Interval 1) with the network plugin at SecurityLevel None, Sign, Encrypt
# and Encrypt with a wrong password to one moonstat listener at
# security_level sign; samples are checked in a file forwarder's Influx
# lines (names, values, rates), then a SIGHUP lowers the level to none and
# the unsigned data arrives too. A malformed packet (python3) is counted and
# logged with the peer's address, and the next good packet still works.
. "$(dirname "$0")/lib.sh"
ms_tmpdir
mkdir -p "$MS_TMP/nochecks"
CP=$(free_port udp)
OUT=$MS_TMP/out.lp
printf 'user: secret\n# a comment\nother: pw2\n' > "$MS_TMP/auth"
write_config() { # security_level
    { echo "agent: { hostname: h1, stats_interval: 1s }"
      ms_paths "$MS_TMP/nochecks"
      cat <<YAML
listeners:
  collectd:
    udp: "127.0.0.1:$CP"
    security_level: $1
    auth_file: "$MS_TMP/auth"
    bad_packet_log: 1000
forwarders:
  out: { type: file, path: "$OUT", format: influx }
YAML
    } > "$MS_TMP/config.yaml"
}
write_config sign
t_ok "--config-test accepts the listener" "$MS_BIN" -c "$MS_TMP/config.yaml" --config-test
ms_start "$MS_TMP/config.yaml"
t_ok "listening" ms_wait_log "listeners\.collectd: listening \(udp 127\.0\.0\.1:$CP, security sign, 2 users\)"

# collectd NAME LEVEL PASSWORD: a collectd daemon sending as host NAME.
collectd_start() {
    d=$MS_TMP/cd-$1
    mkdir -p "$d"
    sec=""
    [ "$2" != None ] && sec="SecurityLevel $2
      Username \"user\"
      Password \"$3\""
    cat > "$d/collectd.conf" <<CONF
Hostname "$1"
FQDNLookup false
BaseDir "$d"
PIDFile "$d/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "$d/collectd.log"
</Plugin>
LoadPlugin load
LoadPlugin memory
LoadPlugin cpu
LoadPlugin network
<Plugin network>
  <Server "127.0.0.1" "$CP">
      $sec
  </Server>
</Plugin>
CONF
    ms_bg "$d/stdout.log" /usr/sbin/collectd -f -C "$d/collectd.conf"
}
collectd_start cdnone None ""
collectd_start cdsign Sign secret
collectd_start cdenc Encrypt secret
collectd_start cdbad Encrypt wrong

has_line() { grep -Eq "$1" "$OUT"; }
num='-?[0-9.]+(e[-+]?[0-9]+)?'
t_ok "signed: load arrives (gauge, types.db names)" _ms_poll 15 has_line "^cdsign\.load\.load\.shortterm,host=cdsign value=$num "
t_ok "signed: memory used arrives" _ms_poll 10 has_line "^cdsign\.memory\.memory-used,host=cdsign value=[1-9][0-9.e+]* "
t_ok "signed: cpu idle arrives as a rate (DERIVE)" _ms_poll 10 has_line "^cdsign\.cpu-0\.cpu-idle,host=cdsign value=$num "
t_ok "encrypted: load arrives" _ms_poll 10 has_line "^cdenc\.load\.load\.midterm,host=cdenc value=$num "
t_ok "encrypted: cpu user rate arrives" _ms_poll 10 has_line "^cdenc\.cpu-0\.cpu-user,host=cdenc value=$num "
# the rate of idle jiffies of one CPU: between 0 and about USER_HZ (100) per second
idle=$(grep -E '^cdsign\.cpu-0\.cpu-idle,' "$OUT" | tail -n 1 | sed -E 's/.* value=([^ ]+) .*/\1/')
t_ok "cpu idle rate is in [0, 110] per second (got $idle)" awk -v v="$idle" 'BEGIN { exit !(v >= 0 && v <= 110) }'
# the load gauge matches what the kernel says (1-minute load, loose bound)
load=$(grep -E '^cdsign\.load\.load\.shortterm,' "$OUT" | tail -n 1 | sed -E 's/.* value=([^ ]+) .*/\1/')
kl=$(cut -d' ' -f1 /proc/loadavg)
t_ok "load shortterm $load is near /proc/loadavg $kl" awk -v a="$load" -v b="$kl" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 2 + b) }'
sleep 2
t_not "unsigned data is ignored at level sign" has_line '^cdnone\.'
t_not "a wrong password gets nothing through" has_line '^cdbad\.'
t_ok "wrong password: logged as a bad checksum with the peer" ms_wait_log "listeners\.collectd: dropped packet from 127\.0\.0\.1:[0-9]+: bad checksum"
t_ok "auth failures counted" _ms_poll 5 has_line '^moonstat_collectd_auth_failures_total,.*listener=collectd value=[1-9]'
t_ok "unsigned value lists counted as ignored" _ms_poll 5 has_line '^moonstat_collectd_insecure_ignored_total,.*value=[1-9]'

# a malformed packet from a known port, then a good one from the same socket
"$MS_PY" - "$CP" > "$MS_TMP/py.out" 2>&1 <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
def s(t, v): b = v.encode() + b"\0"; return struct.pack(">HH", t, 4 + len(b)) + b
def n(t, v): return struct.pack(">HHQ", t, 12, v)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1])
good = s(0, "pyhost") + n(1, int(time.time())) + s(2, "test") + s(4, "gauge") + \
       struct.pack(">HHHB", 6, 15, 1, 1) + struct.pack("<d", 42.5)
bad = s(0, "pyhost") + struct.pack(">HH", 2, 200) + b"short"
# sign it so the sign-level listener looks at it; the user is `user`
import hmac, hashlib
def signed(p):
    mac = hmac.new(b"secret", b"user" + p, hashlib.sha256).digest()
    return struct.pack(">HH", 0x200, 36 + 4) + mac + b"user" + p
sock.sendto(signed(bad), ("127.0.0.1", port))
time.sleep(0.3)
sock.sendto(signed(good), ("127.0.0.1", port))
PY
pyport=$(head -n 1 "$MS_TMP/py.out")
t_ok "malformed packet logged with the peer address" ms_wait_log "listeners\.collectd: bad packet from 127\.0\.0\.1:$pyport: part runs past the end of the packet"
t_ok "malformed packet counted" _ms_poll 5 has_line '^moonstat_collectd_bad_packets_total,.*value=[1-9]'
t_ok "the next good packet still works" _ms_poll 5 has_line '^pyhost\.test\.gauge,host=pyhost value=42\.5 '

# SIGHUP: level none, same socket; unsigned data now arrives
write_config none
kill -HUP "$MS_PID"
t_ok "reloaded" ms_wait_log "listeners\.collectd: listening \(udp 127\.0\.0\.1:$CP, security none"
t_ok "after SIGHUP to level none: unsigned data arrives" _ms_poll 10 has_line "^cdnone\.load\.load\.shortterm,host=cdnone value=$num "
t_not "the wrong password still gets nothing through" has_line '^cdbad\.'

# SIGHUP: Lua converters: the shipped bucky.lua from a listed directory,
# plus a test one with a higher priority for load and a _default found
# without being listed, in the default directory <paths.lua>/converters of
# a second paths.lua entry; naming options
mkdir -p "$MS_TMP/lua2/converters"
cat > "$MS_TMP/lua2/converters/mine.lua" <<'LUA'
return {
    priority = 10,
    load = function(v)
        if v.ds == "midterm" then return nil end
        return { "L", v.host, v.ds, v.interval > 0 and "iv" or "noiv" }
    end,
    _default = function(v) return { "D", v.host, v.plugin, v.type } end,
    memory = function(v)
        error("no memory today")
    end,
}
LUA
write_config none
sed -i "s|    bad_packet_log: 1000|    bad_packet_log: 1000\n    converters: [\"$MS_TOP/lua/bucky\"]\n    prefix: cd|; s|lua: \[\"$MS_TOP/lua\"\]|lua: [\"$MS_TOP/lua\", \"$MS_TMP/lua2\"]|" "$MS_TMP/config.yaml"
t_ok "the config names no converter directory but lua/bucky" sh -c "grep -q 'converters: \[\"$MS_TOP/lua/bucky\"\]' '$MS_TMP/config.yaml' && grep -q 'lua2\"\]' '$MS_TMP/config.yaml'"
kill -HUP "$MS_PID"
t_ok "reloaded with converters" ms_wait_log "listeners\.collectd: listening \(udp 127\.0\.0\.1:$CP, security none, 2 users\)" 10
t_ok "bucky.lua: cpu as prefix.host.cpu.N.state" _ms_poll 10 has_line "^cd\.cdsign\.cpu\.0\.idle,host=cdsign value=$num "
t_ok "bucky.lua: cpu of the encrypted sender too" _ms_poll 10 has_line "^cd\.cdenc\.cpu\.0\.user,host=cdenc value=$num "
t_ok "a failing converter keeps the default name" _ms_poll 10 has_line "^cd\.cdenc\.memory\.memory-used,host=cdenc value=$num "
t_ok "a failing converter is logged with file:line" ms_wait_log "listeners\.collectd: converter failed on a packet from 127\.0\.0\.1:[0-9]+: .*mine\.lua:[0-9]+: no memory today"
t_ok "converter errors counted" _ms_poll 5 has_line '^moonstat_collectd_converter_errors_total,.*value=[1-9]'
t_ok "default dir: priority 10 wins for load, with the value list's interval" _ms_poll 10 has_line "^cd\.L\.cdsign\.shortterm\.iv,host=cdsign value=$num "
t_ok "a converter returning nil drops the value (counted)" _ms_poll 5 has_line '^moonstat_collectd_converter_dropped_total,.*value=[1-9]'
t_not "the dropped value does not arrive" has_line '^cd\.L\.[a-z]+\.midterm'
t_ok "default dir: _default catches the python sender's plugin" sh -c "
    \"$MS_PY\" -c 'import socket,struct
def s(t,v): b=v.encode()+b\"\\0\"; return struct.pack(\">HH\",t,4+len(b))+b
p=s(0,\"pyhost\")+s(2,\"test\")+s(4,\"gauge\")+struct.pack(\">HHHB\",6,15,1,1)+struct.pack(\"<d\",7.0)
socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(p,(\"127.0.0.1\",$CP))'
    sleep 1.5; grep -Eq '^cd\.D\.pyhost\.test\.gauge,host=pyhost value=7 ' '$OUT'"
printf 'return { cpu = function(v) return {v.host,, } end }\n' > "$MS_TMP/lua2/converters/zbroken.lua"
msg=$("$MS_BIN" -c "$MS_TMP/config.yaml" --config-test 2>&1)
t_match "--config-test: a broken converter with file:line" "$msg" "zbroken\.lua:1:"
kill -HUP "$MS_PID"
t_ok "reload: the broken converter is logged with file:line, the others stay" ms_wait_log "listeners\.collectd: converter: .*zbroken\.lua:1:" 10

# --config-test rejects bad keys with file:line:col
cat > "$MS_TMP/bad.yaml" <<YAML
listeners:
  collectd:
    udp: "127.0.0.1:$CP"
    security_level: paranoid
YAML
msg=$("$MS_BIN" -c "$MS_TMP/bad.yaml" --config-test 2>&1)
t_match "--config-test: bad security_level with file:line:col" "$msg" "bad\.yaml:4:[0-9]+: listeners\.collectd\.security_level: expected none, sign or encrypt"
printf 'listeners:\n  collectd: { security_level: sign }\n' > "$MS_TMP/bad2.yaml"
msg=$("$MS_BIN" -c "$MS_TMP/bad2.yaml" --config-test 2>&1)
t_match "--config-test: sign without auth_file" "$msg" "bad2\.yaml:2:[0-9]+: listeners\.collectd\.auth_file: sign and encrypt need an auth_file"
printf 'listeners:\n  collectd: { colour: red }\n' > "$MS_TMP/bad3.yaml"
t_not "--config-test: unknown key" "$MS_BIN" -c "$MS_TMP/bad3.yaml" --config-test

ms_stop
t_eq "clean exit on SIGTERM" "$?" 0

# naming options on hand-built packets: path naming with host_trim,
# host_reverse and strip_duplicates; then tagged naming; IPv6; every value type
P2=$(free_port udp)
OUT2=$MS_TMP/out2.lp
{ echo "agent: { hostname: h1 }"
  ms_paths "$MS_TMP/nochecks"
  cat <<YAML
listeners:
  collectd: { udp: "[::1]:$P2", host_trim: [example.com], host_reverse: true, strip_duplicates: true, postfix: end }
forwarders:
  out: { type: file, path: "$OUT2", format: influx }
YAML
} > "$MS_TMP/config2.yaml"
ms_start "$MS_TMP/config2.yaml"
t_ok "listening on IPv6" ms_wait_log "listeners\.collectd: listening \(udp \[::1\]:$P2"
send6() { # host counter derive absolute (two packets 1 s apart, in time order)
    "$MS_PY" - "$P2" "$@" <<'PY'
import socket, struct, sys
port, host = int(sys.argv[1]), sys.argv[2]
def s(t, v): b = v.encode() + b"\0"; return struct.pack(">HH", t, 4 + len(b)) + b
def n(t, v): return struct.pack(">HHQ", t, 12, v)
def vals(kinds, raw):
    body = struct.pack(">H", len(kinds)) + bytes(kinds)
    for k, v in zip(kinds, raw):
        body += struct.pack("<d", v) if k == 1 else struct.pack(">q" if k == 2 else ">Q", v)
    return struct.pack(">HH", 6, 4 + len(body)) + body
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for t, c, d, a in ((1700000000, 1000, 500, 30), (1700000010, 1500, 400, 30)):
    p = s(0, host) + n(1, t) + n(7, 10) + s(2, "load") + s(4, "load") + vals([1, 1, 1], [0.5, 1, 2])
    p += s(2, "interface") + s(3, "eth0") + s(4, "if_packets") + vals([0, 0], [c, 2 * c])
    p += s(2, "disk") + s(3, "sda") + s(4, "disk_ops") + vals([2, 2], [d, d])
    p += s(2, "swap") + s(3, "") + s(4, "swap_io") + s(5, "in") + vals([3], [a])
    p += n(0x101, 1) + s(2, "ntpd") + s(4, "") + s(5, "") + s(0x100, "clock unsynchronised")
    sock.sendto(p, ("::1", port))
PY
}
send6 web1.dc.example.com
has2() { grep -Eq "$1" "$OUT2"; }
t_ok "host_trim + host_reverse + strip_duplicates: load.load -> load" _ms_poll 10 has2 '^dc\.web1\.load\.shortterm\.end,host=web1\.dc\.example\.com value=0\.5 1700000000'
t_ok "COUNTER as a rate: 500 over 10 s" has2 '^dc\.web1\.interface-eth0\.if_packets\.rx\.end,host=[^ ]+ value=50 1700000010'
t_ok "COUNTER second data source: 100/s" has2 '^dc\.web1\.interface-eth0\.if_packets\.tx\.end,host=[^ ]+ value=100 1700000010'
t_ok "DERIVE going down: no rate (reset)" sh -c "! grep -Eq '^dc\.web1\.disk-sda\.disk_ops' '$OUT2'"
t_ok "ABSOLUTE divided by the interval: 30/10" has2 '^dc\.web1\.swap\.swap_io-in\.end,host=[^ ]+ value=3 1700000000'
t_ok "notification as a health sample (FAILURE: 16)" has2 '^dc\.web1\.ntpd\.notification\.end,host=[^ ]+ value=16,message="clock unsynchronised",level="ERROR" 1700000000'
ms_stop
t_eq "clean exit on SIGTERM (IPv6 listener)" "$?" 0

sed -i 's/host_trim: \[example.com\], host_reverse: true, strip_duplicates: true, postfix: end/naming: tagged, recv_buffer: 4KiB/; s/hostname: h1 }/hostname: h1, stats_interval: 1s }/' "$MS_TMP/config2.yaml"
: > "$OUT2"
ms_start "$MS_TMP/config2.yaml"
t_ok "listening (tagged)" ms_wait_log "listeners\.collectd: listening \(udp \[::1\]:$P2"
send6 web2
t_ok "tagged naming: collectd.plugin.type.ds with tags" _ms_poll 10 has2 '^collectd\.interface\.if_packets\.rx,ds=rx,host=web2,plugin=interface,plugin_instance=eth0,type=if_packets value=50 '
t_ok "tagged naming: ds value is not in the name" has2 '^collectd\.swap\.swap_io,ds=value,host=web2,plugin=swap,type=swap_io,type_instance=in value=3 '
# kernel drops: stop moonstat, overflow its small socket buffer, go on
kill -STOP "$MS_PID"
i=0
while [ $i -lt 40 ]; do send6 flood$i; i=$((i + 1)); done
kill -CONT "$MS_PID"
sleep 0.5
send6 after
t_ok "kernel drops counted (SO_RXQ_OVFL)" _ms_poll 5 has2 '^moonstat_collectd_kernel_drops_total,.*value=[1-9]'
t_ok "and the packet after them arrives" has2 '^collectd\.load\.load\.shortterm,ds=shortterm,host=after,'
ms_stop
t_eq "clean exit on SIGTERM (tagged)" "$?" 0

# multicast: moonstat bound to the group address itself joins
# 239.192.74.66 on lo, so only traffic to the group reaches it, and a
# sender on lo (IP_MULTICAST_IF 127.0.0.1) gets through; an IPv6 group is
# joined on lo too (the kernel has no route to send to ff00::/8 through lo,
# so only the join is checked there); bad groups and interfaces are
# rejected with file:line:col and a failing join names the group and the
# kernel's reason.
P3=$(free_port udp)
OUT3=$MS_TMP/out3.lp
{ echo "agent: { hostname: h1 }"
  ms_paths "$MS_TMP/nochecks"
  cat <<YAML
listeners:
  collectd: { udp: "239.192.74.66:$P3", multicast: 239.192.74.66, multicast_interface: lo }
forwarders:
  out: { type: file, path: "$OUT3", format: influx }
YAML
} > "$MS_TMP/config3.yaml"
ms_start "$MS_TMP/config3.yaml"
t_ok "multicast: joined 239.192.74.66 on lo" ms_wait_log "listeners\.collectd: listening \(udp 239\.192\.74\.66:$P3, multicast 239\.192\.74\.66 on lo,"
t_ok "multicast: the socket is a member of the group (/proc/net/igmp)" grep -q 424AC0EF /proc/net/igmp
t_ok "multicast: the group's value list arrives" sh -c "
    \"$MS_PY\" -c 'import socket,struct
def s(t,v): b=v.encode()+b\"\\0\"; return struct.pack(\">HH\",t,4+len(b))+b
p=s(0,\"mchost\")+s(2,\"test\")+s(4,\"gauge\")+struct.pack(\">HHHB\",6,15,1,1)+struct.pack(\"<d\",3.25)
k=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
k.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton(\"127.0.0.1\"))
k.sendto(p,(\"239.192.74.66\",$P3))'
    for i in 1 2 3 4 5 6 7 8 9 10; do grep -Eq '^mchost\.test\.gauge,host=mchost value=3\.25 ' '$OUT3' && exit 0; sleep 0.5; done; exit 1"
ms_stop
t_eq "clean exit on SIGTERM (multicast)" "$?" 0
sed -i "s|udp: \"239.192.74.66:$P3\", multicast: 239.192.74.66|udp: \"[::]:$P3\", multicast: \"ff12::4a42\"|" "$MS_TMP/config3.yaml"
ms_start "$MS_TMP/config3.yaml"
t_ok "multicast: joined the IPv6 group ff12::4a42 on lo" ms_wait_log "listeners\.collectd: listening \(udp \[::\]:$P3, multicast ff12::4a42 on lo,"
t_ok "multicast: IPv6 membership in /proc/net/igmp6" grep -Eq "^[0-9]+[[:space:]]+lo[[:space:]]+ff120+4a42" /proc/net/igmp6
ms_stop
t_eq "clean exit on SIGTERM (IPv6 multicast)" "$?" 0
mc_conf() { printf 'listeners:\n  collectd: { udp: "%s", multicast: "%s", multicast_interface: "%s" }\n' "$1" "$2" "$3" > "$MS_TMP/mc.yaml"; }
mc_conf "0.0.0.0:$P3" 10.1.2.3 ""
msg=$("$MS_BIN" -c "$MS_TMP/mc.yaml" --config-test 2>&1)
t_match "--config-test: a unicast group" "$msg" "mc\.yaml:2:[0-9]+: listeners\.collectd\.multicast: not an IPv4 multicast address"
mc_conf "0.0.0.0:$P3" ff12::4a42 ""
msg=$("$MS_BIN" -c "$MS_TMP/mc.yaml" --config-test 2>&1)
t_match "--config-test: an IPv6 group on an IPv4 socket" "$msg" "mc\.yaml:2:[0-9]+: listeners\.collectd\.multicast: an IPv6 group needs an IPv6 udp address"
mc_conf "0.0.0.0:$P3" 239.1.1.1 nosuchif0
msg=$("$MS_BIN" -c "$MS_TMP/mc.yaml" --config-test 2>&1)
t_match "--config-test: an unknown interface" "$msg" "mc\.yaml:2:[0-9]+: listeners\.collectd\.multicast_interface: no such interface"
mc_conf "0.0.0.0:$P3" 239.1.1.1 203.0.113.7
t_ok "--config-test: an IPv4 interface address passes" "$MS_BIN" -c "$MS_TMP/mc.yaml" --config-test
msg=$(timeout 10 "$MS_BIN" -c "$MS_TMP/mc.yaml" 2>&1)
rc=$?
t_ok "a join the kernel refuses stops the start (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
t_match "and names the group, interface and reason" "$msg" "listeners\.collectd: cannot join multicast group 239\.1\.1\.1 on 203\.0\.113\.7: "
t_done
