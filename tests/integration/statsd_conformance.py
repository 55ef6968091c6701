#!/usr/bin/env python3
"""Conformance driver for tests/integration/test_statsd_etsy.sh.

Runs two Graphite plaintext sinks (one for Etsy statsd 0.9, one for
moonstat's graphite forwarder with tag_mode none), sends the same StatsD
datagrams to both daemons, and compares what each flushed, flush by flush,
apart from self metrics and timestamps. Prints TAP lines.

Usage: statsd_conformance.py MODE ETSY_UDP ETSY_SINK MS_UDP MS_SINK READY_FILE
  MODE keep   : default Etsy settings (counters/timers/sets sent as zeros when idle)
  MODE delete : deleteIdleStats (idle keys vanish)

Timing: both daemons flush every INTERVAL s. The driver learns each one's
flush phase from when their lines arrive, then sends every round at the
moment farthest from both phases, so a round lands in exactly one flush of
each, and leaves one empty flush between rounds.
"""
import random
import socket
import sys
import threading
import time

INTERVAL = 2.0
MODE, ETSY_UDP, ETSY_SINK, MS_UDP, MS_SINK, READY = sys.argv[1:7]

lock = threading.Lock()
got = {"etsy": [], "ms": []}  # (arrival time, line)


def sink(name, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(port)))
    srv.listen(16)

    def serve(conn):
        buf = b""
        while True:
            d = conn.recv(65536)
            if not d:
                break
            buf += d
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                with lock:
                    got[name].append((time.time(), line.decode()))

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


for n, p in (("etsy", ETSY_SINK), ("ms", MS_SINK)):
    threading.Thread(target=sink, args=(n, p), daemon=True).start()
open(READY, "w").write("ready\n")

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def send(datagrams):
    for d in datagrams:
        for port in (ETSY_UDP, MS_UDP):
            udp.sendto(d.encode(), ("127.0.0.1", int(port)))


def is_self(name):
    return ("statsd." in name and (name.startswith("stats.statsd.") or name.startswith("statsd.")
            or name.startswith("stats_counts.statsd.") or name.startswith("stats.gauges.statsd.")
            or name.startswith("stats.timers.statsd."))) or name.startswith("moonstat_")


def arrivals(name):
    """Arrival time of the first line of each flush (grouped by timestamp)."""
    with lock:
        lines = list(got[name])
    first = {}
    for t, line in lines:
        parts = line.split(" ")
        if len(parts) == 3 and parts[2] not in first:
            first[parts[2]] = t
    return sorted(first.values())


# ---- phase detection: keep a marker gauge alive until each sink saw 3 flushes
deadline = time.time() + 40
while time.time() < deadline:
    send(["conformance.marker:1|g"])
    if len(arrivals("etsy")) >= 3 and len(arrivals("ms")) >= 3:
        break
    time.sleep(0.25)
else:
    print("not ok - both daemons flush (etsy %d, moonstat %d flushes seen)"
          % (len(arrivals("etsy")), len(arrivals("ms"))))
    sys.exit(1)
print("ok - both daemons flush every %gs" % INTERVAL)


def phase(name):
    ts = arrivals(name)[-3:]
    return sum(t % INTERVAL for t in ts) / len(ts)  # good enough: jitter << INTERVAL


pe, pm = phase("etsy"), phase("ms")
# moonstat's lines leave up to one pipeline tick (200 ms) after its flush
pm = (pm - 0.1) % INTERVAL


def circ(a, b):
    d = abs(a - b) % INTERVAL
    return min(d, INTERVAL - d)


best = max((x / 100.0 * INTERVAL for x in range(100)), key=lambda x: min(circ(x, pe), circ(x, pm)))
margin = min(circ(best, pe), circ(best, pm))
print("# flush phases: etsy %.2f moonstat %.2f; sending at %.2f (margin %.2fs)" % (pe, pm, best, margin))


def wait_slot():
    now = time.time()
    t = now - (now % INTERVAL) + best
    while t < now + 0.05:
        t += INTERVAL
    time.sleep(t - now)
    return t


rnd = random.Random(7)
values = list(range(1, 21))
rnd.shuffle(values)
big = [round(rnd.uniform(0, 500), 3) for _ in range(1000)]
rounds = [
    # 1: every type, sample rates, several values per line, sanitizing, bad lines
    ["conf.c.a:1|c", "conf.c.a:2|c|@0.5", "conf.c.b:3|c\nconf.c.b:4|c",
     "conf.c.multi:1|c:2|c:3|c|@0.1", "conf.c.f:0.1|c", "conf.c.f:0.2|c", "conf.c.f:0.3|c",
     "conf.c.neg:-5|c", "conf.c.unknown:7|x", "conf.c.h:5|h", "conf.c.hex:0x10|c",
     "conf.c.exp:1e2|c", "conf.c.rate:1|c|@0.3",
     "conf.g.a:10|g", "conf.g.a:-3|g", "conf.g.new:+5|g", "conf.g.z:0|g", "conf.g.z:+2|g",
     "conf.g.f:3.25|g",
     "\n".join("conf.t.a:%d|ms" % v for v in values),
     "conf.t.b:5|ms|@0.5", "conf.t.b:15|ms|@0.5", "conf.t.one:42|ms", "conf.t.frac:0.1|ms:0.2|ms:0.7|ms",
     "conf.t.hist:5|ms\nconf.t.hist:50|ms\nconf.t.hist:500|ms\nconf.t.hist:10|ms",
     "conf.s.a:x|s", "conf.s.a:y|s", "conf.s.a:x|s", "conf.s.empty:|s",
     "key with  spaces:1|c", "a/b:2|c", "we!rd$:3|c",
     "bad", "conf.bad:abc|c", "conf.tneg:-1|ms", "conf.badrate:1|c|@x", "conf.novalue:|c",
     "conf.marker2:1|g"],
    # 2: the same keys again, gauge deltas on existing gauges, a 1000-value timer
    ["conf.c.a:5|c", "conf.g.a:+2.5|g", "conf.g.new:-1|g", "conf.s.a:z|s",
     "\n".join("conf.t.big:%s|ms" % v for v in big[:500]),
     "\n".join("conf.t.big:%s|ms" % v for v in big[500:]),
     "conf.t.two:1|ms:3|ms", "conf.t.hist:99.5|ms"],
    # 3: nothing but one counter: the rest is idle (zeros, or deleted)
    ["conf.c.only:1|c"],
    # 4: gauges change again, a set and a timer come back
    ["conf.g.a:7|g", "conf.s.a:q|s", "conf.t.a:3|ms"],
]

start = None
for i, r in enumerate(rounds):
    t = wait_slot()
    if start is None:
        start = t
    send(r)
    time.sleep(INTERVAL)  # one more flush with nothing new: an empty flush
end = start + 2 * len(rounds) * INTERVAL
time.sleep(max(0, end - time.time()) + 1.0)


def flushes(name):
    """Flushes whose lines arrived in [start, end): list of sorted 'name value' lists."""
    with lock:
        lines = list(got[name])
    groups = {}
    for t, line in lines:
        parts = line.split(" ")
        if len(parts) != 3:
            continue
        groups.setdefault(parts[2], []).append((t, parts[0], parts[1]))
    out = []
    for ts in sorted(groups, key=lambda k: float(k)):
        g = groups[ts]
        t0 = min(x[0] for x in g)
        if not (start <= t0 < end):
            continue
        kept = sorted("%s %s" % (n, v) for _, n, v in g if not is_self(n))
        if kept or MODE == "keep":
            out.append(kept)
    return out


fe, fm = flushes("etsy"), flushes("ms")
for name, fl in (("etsy", fe), ("ms", fm)):  # for post-mortems
    with open("%s.%s.%s.txt" % (READY, MODE, name), "w") as f:
        for i, g in enumerate(fl):
            f.write("# flush %d\n%s\n" % (i + 1, "\n".join(g)))
if MODE == "keep":
    ok = len(fe) == len(fm) == 2 * len(rounds)
else:
    ok = len(fe) == len(fm) and len(fe) >= len(rounds)
print("%s - %s: as many flushes with data (etsy %d, moonstat %d)"
      % ("ok" if ok else "not ok", MODE, len(fe), len(fm)))
total = 0
for i in range(max(len(fe), len(fm))):
    a = fe[i] if i < len(fe) else []
    b = fm[i] if i < len(fm) else []
    total += len(a)
    if a == b:
        print("ok - %s: flush %d: %d lines equal" % (MODE, i + 1, len(a)))
    else:
        print("not ok - %s: flush %d differs (etsy %d lines, moonstat %d)" % (MODE, i + 1, len(a), len(b)))
        sa, sb = set(a), set(b)
        for x in sorted(sa - sb)[:40]:
            print("#   only etsy:     %s" % x)
        for x in sorted(sb - sa)[:40]:
            print("#   only moonstat: %s" % x)
print("%s - %s: compared %d lines" % ("ok" if total > 100 else "not ok", MODE, total))
