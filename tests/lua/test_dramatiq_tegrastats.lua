-- checks/dramatiq.lua and checks/tegrastats.lua against fixed inputs:
-- recorded Redis replies (tests/fixtures/net/dramatiq_replies.resp) played
-- through a stand-in for ms.tcp, the RESP module's encoder and parser, and
-- tegrastats lines recorded on Jetson boards (tests/fixtures/tegrastats/
-- samples.txt), parsed directly and end to end through the real check host
-- with a stand-in tegrastats that prints forever (the run must stop it after
-- its first line). Live Redis: tests/integration/test_dramatiq.sh.
local T = require "moonstat.testing"
local resp = require "moonstat.resp"

local read = T.read

-- ---- RESP ----

T.eq(resp.encode({ "HLEN", "dramatiq:default.msgs" }), "*2\r\n$4\r\nHLEN\r\n$21\r\ndramatiq:default.msgs\r\n",
  "a command encodes as an array of bulk strings")
T.eq(resp.encode({ "SCAN", 0, "COUNT", 500 }), "*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nCOUNT\r\n$3\r\n500\r\n",
  "numbers are sent as bulk strings")

-- a socket that answers from recorded bytes, like ms.tcp's receive
local function fake_sock(bytes)
  local s = { data = bytes, pos = 1, sent = {}, closed = false }
  function s:send(d)
    self.sent[#self.sent + 1] = d
    return true
  end
  function s:receive(p)
    if self.pos > #self.data then return nil, "tcp receive from fake: connection closed by the peer" end
    if p == "*l" then
      local e = self.data:find("\r\n", self.pos, true)
      if not e then return nil, "closed" end
      local line = self.data:sub(self.pos, e - 1)
      self.pos = e + 2
      return line
    end
    local chunk = self.data:sub(self.pos, self.pos + p - 1)
    self.pos = self.pos + p
    return chunk
  end
  function s:close() self.closed = true end
  return s
end

local fs = fake_sock("+OK\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n:1\r\n*1\r\n$0\r\n\r\n*-1\r\n-ERR nope\r\n!bad\r\n")
T.eq(resp.read(fs), "OK", "status reply")
T.eq(resp.read(fs), 42, "integer reply")
T.eq(resp.read(fs), "hello", "bulk reply")
T.eq(resp.read(fs), resp.null, "null bulk")
local arr = resp.read(fs)
T.ok(type(arr) == "table" and arr[1] == 1 and type(arr[2]) == "table" and arr[2][1] == "",
  "nested array with an empty bulk string")
T.eq(resp.read(fs), resp.null, "null array")
local e = resp.read(fs)
T.ok(resp.is_error(e) and e.err == "ERR nope", "error reply as an error value")
local v, err = resp.read(fs)
T.eq(v, nil, "an unknown reply type is an error")
T.like(err, "unexpected reply from the server: !bad", "and says what came")
v, err = resp.read(fs)
T.like(err, "connection closed by the peer", "a closed connection is an error")

-- ---- dramatiq ----

local dq = dofile("checks/dramatiq.lua")
T.eq(dq.enabled, false, "dramatiq is off until configured")
T.eq(dq.queue_name("dramatiq:default.msgs", "dramatiq"), "default", "queue name from its key")
T.eq(dq.queue_name("dramatiq:default.DQ.msgs", "dramatiq"), "default.DQ", "delay queue name")
T.eq(dq.queue_name("other:default.msgs", "dramatiq"), nil, "another namespace is not a queue")
T.eq(dq.queue_name("dramatiq:.msgs", "dramatiq"), nil, "an empty queue name is not a queue")

-- collect() with a stand-in `ms` whose tcp answers from the recording
local sock = fake_sock(read("tests/fixtures/net/dramatiq_replies.resp"))
local gauges, warned = {}, nil
_G.ms = {
  config = { host = "127.0.0.1", port = 6379, password = false, db = 0, namespace = "dramatiq",
             request_timeout = 5, max_queues = 1000, metrics = false },
  tcp = function() return sock end,
  gauge = function(name, value, tags) gauges[#gauges + 1] = { name = name, value = value, tags = tags } end,
  log = { warn = function(fmt, ...) warned = fmt:format(...) end },
}
dq.collect()
T.eq(sock.sent[1], resp.encode({ "SCAN", "0", "MATCH", "dramatiq:*.msgs", "COUNT", 500 }),
  "SCAN for dramatiq:*.msgs (not KEYS)")
T.eq(sock.sent[2], resp.encode({ "HLEN", "dramatiq:default.msgs" }) .. resp.encode({ "HLEN", "dramatiq:default.DQ.msgs" })
  .. resp.encode({ "HLEN", "dramatiq:default.XQ.msgs" }) .. resp.encode({ "HLEN", "dramatiq:emails.msgs" }),
  "HLEN of every key in one pipeline")
T.eq(sock.sent[3], resp.encode({ "LLEN", "dramatiq:emails.msgs" }), "LLEN for the key that is a list")
T.ok(sock.closed, "the connection is closed")
local by = {}
for _, g in ipairs(gauges) do
  T.eq(g.name, "dramatiq.queue_size", "one gauge name")
  by[g.tags.queue] = g.value
  T.eq(g.tags.server, "127.0.0.1:6379", "tagged with the server")
end
T.eq(by.default, 3, "queue default")
T.eq(by["default.DQ"], 1, "delay queue default.DQ")
T.eq(by["default.XQ"], 2, "dead-letter queue default.XQ")
T.eq(by.emails, 7, "a list-typed key by LLEN")
T.eq(warned, nil, "no warning under max_queues")

-- max_queues and `metrics`
sock = fake_sock(read("tests/fixtures/net/dramatiq_replies.resp"):gsub(":3\r\n:1\r\n:2\r\n.*$", ":3\r\n:1\r\n"))
gauges = {}
ms.config.max_queues = 2
dq.collect()
T.eq(#gauges, 2, "max_queues keys at most")
T.like(warned, "more than max_queues %(2%) keys match dramatiq:%*%.msgs", "and a warning says so")
sock = fake_sock(read("tests/fixtures/net/dramatiq_replies.resp"))
gauges = {}
ms.config.max_queues = 1000
ms.config.metrics = { "something.else" }
dq.collect()
T.eq(#gauges, 0, "metrics without dramatiq.queue_size sends nothing")
_G.ms = nil

-- error path through the real host (port 1: nothing listens)
local s, rerr = T.run_check("checks/dramatiq.lua", { host = "127.0.0.1", port = 1 })
T.eq(s, nil, "dramatiq on a closed port fails the run")
T.like(rerr, "tcp connect to 127%.0%.0%.1:1: connection refused", "with the reason")

-- ---- tegrastats ----

local tg = dofile("checks/tegrastats.lua")
T.eq(tg.enabled, false, "tegrastats is off until configured")
local lines = {}
for l in io.lines("tests/fixtures/tegrastats/samples.txt") do lines[#lines + 1] = l end
local MB = 1048576
local want = {
  { 613, 3964, "PLL=39 CPU=40.5 GPU=41 AO=46 thermal=41" },                    -- Nano
  { 1179, 3983, "AO=42.5 CPU=37.5 GPU=39 PLL=37 Tdiode=42.75 Tboard=42 thermal=38.5" }, -- TX1
  { 6266, 7860, "PLL=52 MCPU=52 Tboard=50 GPU=51.5 BCPU=52 thermal=51.8 Tdiode=50" }, -- TX2
  { 4083, 31919, "AO=42 GPU=42 Tdiode=44.75 AUX=41.5 CPU=42 thermal=41.6 Tboard=41" }, -- AGX Xavier
  { 2000, 7620, "cpu=45.3 tj=46.1" },                                          -- Orin
}
for i, w in ipairs(want) do
  local r = tg.parse(lines[i])
  T.eq(r and r.ram_used, w[1] * MB, "sample " .. i .. ": RAM used")
  T.eq(r and r.ram_total, w[2] * MB, "sample " .. i .. ": RAM total")
  local z = {}
  for _, t in ipairs(r and r.temps or {}) do z[#z + 1] = t[1] .. "=" .. t[2] end
  T.eq(table.concat(z, " "), w[3], "sample " .. i .. ": temperatures per zone, PMIC skipped")
end
local r = tg.parse("RAM 100/200MB CPU@-256C GPU@30C")
T.eq(#r.temps, 1, "a sensor at -256C (off) is skipped")
local none, perr = tg.parse("Hello world!")
T.eq(none, nil, "a line without RAM or temperatures is refused")
T.like(perr, "no RAM or temperature fields in: Hello world!", "and quoted")

-- end to end: a stand-in tegrastats that prints forever, stopped after one line
os.execute("rm -rf tests/tmp/tegrastats && mkdir -p tests/tmp/tegrastats && cp tests/fixtures/tegrastats/tegrastats tests/fixtures/tegrastats/samples.txt tests/tmp/tegrastats/")
local D = "tests/tmp/tegrastats/"
local samples, err2 = T.run_check("checks/tegrastats.lua", { path = D .. "tegrastats", sample_interval = 100 })
T.ok(samples, "a run against the stand-in succeeds (" .. tostring(err2) .. ")")
local got = {}
for _, x in ipairs(samples or {}) do got[x.name .. (x.tags.zone and ("." .. x.tags.zone) or "")] = x.value end
T.eq(got["tegrastats.ram.used"], 613 * MB, "RAM used in bytes")
T.eq(got["tegrastats.ram.total"], 3964 * MB, "RAM total in bytes")
T.eq(got["tegrastats.ram.free"], (3964 - 613) * MB, "RAM free in bytes")
T.eq(got["tegrastats.temperature.CPU"], 40.5, "CPU temperature")
T.eq(got["tegrastats.temperature.PMIC"], nil, "no PMIC zone")
local pid = read(D .. "tegrastats.pid"):match("%d+")
-- the stand-in was terminated after its line: run something to let the loop reap it
T.run_check("checks/tegrastats.lua", { path = "/bin/true" })
local st = io.open("/proc/" .. pid .. "/stat")
local state = st and st:read("*a"):match("^%d+ %b() (%a)")
if st then st:close() end
T.ok(state == nil or state == "Z", "the stand-in is not running after the run (state " .. tostring(state) .. ")")
local f = assert(io.open(D .. "line", "w"))
f:write("5\n")
f:close()
samples = T.run_check("checks/tegrastats.lua", { path = D .. "tegrastats", sample_interval = 50,
  metrics = { "tegrastats.temperature" } })
got = {}
for _, x in ipairs(samples or {}) do got[#got + 1] = x.name .. "." .. tostring(x.tags.zone) .. "=" .. x.value end
table.sort(got)
T.eq(table.concat(got, " "), "tegrastats.temperature.cpu=45.3 tegrastats.temperature.tj=46.1",
  "metrics selects what is sent (Orin line: lower-case zones)")
local _, terr = T.run_check("checks/tegrastats.lua", { path = "/bin/true" })
T.like(terr, "/bin/true printed no line %(exit code 0%)", "a command that prints nothing fails the run")
_, terr = T.run_check("checks/tegrastats.lua", { path = D .. "missing" })
T.like(terr, "exec tests/tmp/tegrastats/missing: not found", "a missing tegrastats says so")
_, terr = T.run_check("checks/tegrastats.lua", { path = "/bin/echo" })
T.like(terr, "/bin/echo: no RAM or temperature fields in: %-%-interval 500", "output that is not tegrastats' fails")

_, terr = T.run_check("checks/tegrastats.lua", { path = D .. "tegrastats", sample_interval = "fast" })
T.like(terr, "sample_interval must be a number of milliseconds, got fast", "a bad sample_interval says so")
_, terr = T.run_check("checks/dramatiq.lua", { max_queues = "lots" })
T.like(terr, "max_queues must be a positive number, got lots", "a bad max_queues says so")

T.done()
