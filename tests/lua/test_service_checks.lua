-- Service checks (checks/nginx.lua, redis.lua, http_check.lua) against
-- recorded responses in tests/fixtures/net, and their error paths through
-- the real check host (T.run_check): a refused connection is an error of
-- the run or a health event, never a crash. Live peers: test_net.sh.
local T = require "moonstat.testing"

local read, find = T.read, T.find

-- nginx stub_status
local nginx = dofile("checks/nginx.lua")
T.eq(nginx.enabled, false, "nginx is off until configured")
local s = nginx.parse(read("tests/fixtures/net/nginx_status.txt"))
T.ok(s, "nginx stub_status parses")
T.eq(s.active, 291, "active connections")
T.eq(s.accepts, 16630948, "accepts")
T.eq(s.handled, 16630946, "handled")
T.eq(s.requests, 31070465, "requests")
T.eq(s.reading, 6, "reading")
T.eq(s.writing, 179, "writing")
T.eq(s.waiting, 106, "waiting")
local none, err = nginx.parse("<html>404</html>")
T.eq(none, nil, "a page that is not stub_status is refused")
T.like(err, "not an nginx stub_status page", "and says so")

-- redis INFO
local redis = dofile("checks/redis.lua")
T.eq(redis.enabled, false, "redis is off until configured")
local info, dbs = redis.parse(read("tests/fixtures/net/redis_info.txt"))
T.eq(info.used_memory, "1048576", "used_memory")
T.eq(info.connected_clients, "7", "connected_clients")
T.eq(info.role, "master", "role")
T.eq(info.master_link_status, "up", "master_link_status")
T.eq(dbs.db0 and dbs.db0.keys, 12, "db0 keys")
T.eq(dbs.db0 and dbs.db0.expires, 3, "db0 expires")
T.eq(dbs.db3 and dbs.db3.keys, 5, "db3 keys")
T.eq(info.db0, nil, "keyspace lines are not plain keys")

-- error paths through the host (port 1: nothing listens there)
local r, rerr = T.run_check("checks/redis.lua", { host = "127.0.0.1", port = 1 })
T.eq(r, nil, "redis on a closed port fails the run")
T.like(rerr, "tcp connect to 127%.0%.0%.1:1: connection refused %(ECONNREFUSED%)", "with the reason")
local n, nerr = T.run_check("checks/nginx.lua", { url = "http://127.0.0.1:1/status" })
T.eq(n, nil, "nginx on a closed port fails the run")
T.like(nerr, "GET http://127%.0%.0%.1:1/status: .*[Cc]onnect", "with the URL and the reason")
local h = T.run_check("checks/http_check.lua", { url = "http://127.0.0.1:1/", name = "down" })
local ev = find(h, "http_check.down")
T.ok(ev, "http_check sends a health event when the URL is down")
T.eq(ev and ev.value, 16, "health 16 (ERROR)")
T.like(ev and ev.msg or "", "GET http://127%.0%.0%.1:1/", "its message names the URL")
T.ok(find(h, "http.latency"), "and the latency")
T.eq(find(h, "http.status"), nil, "but no status")
local h2 = T.run_check("checks/http_check.lua", { url = "http://127.0.0.1:1/", name = "down",
                                                 metrics = { "http.status" } })
T.eq(find(h2, "http.latency"), nil, "metrics: only the listed names are sent")
T.ok(find(h2, "http_check.down"), "metrics: the health event is always sent")
local _, uerr = T.run_check("checks/http_check.lua", {})
T.like(uerr or "", "set checks%.http_check%.url", "http_check without a url says which key to set")

-- ms.json in a check (lua-cjson)
local tmp = os.tmpname()
local f = assert(io.open(tmp, "w"))
f:write([[return function()
  local t = ms.json.decode('{"n": 3, "l": [1, 2, 3]}')
  ms.gauge("j.n", t.n + #t.l)
  ms.event("j.enc", ms.json.encode({ 1, 2 }))
  local v, e = ms.json.decode("[1,")
  ms.event("j.err", tostring(v) .. " " .. tostring(e))
end]])
f:close()
local j, jerr = T.run_check(tmp, {})
os.remove(tmp)
T.ok(j, "a check using ms.json runs: " .. tostring(jerr))
T.eq(find(j, "j.n") and find(j, "j.n").value, 6, "ms.json.decode")
T.eq(find(j, "j.enc") and find(j, "j.enc").msg, "[1,2]", "ms.json.encode")
T.like(find(j, "j.err") and find(j, "j.err").msg or "", "^nil Expected", "bad JSON gives nil, err")

-- where a run cannot yield, network calls refuse with the reason; inside
-- pcall they work (LuaJIT yields across pcall)
tmp = os.tmpname()
f = assert(io.open(tmp, "w"))
f:write([[return function()
  local got
  table.sort({ 3, 1, 2 }, function(a, b)
    if not got then got = { ms.tcp("127.0.0.1", 1) } end
    return a < b
  end)
  ms.event("n.sort", tostring(got[1]) .. " " .. tostring(got[2]))
  local ok, s, e = pcall(ms.tcp, "127.0.0.1", 1)
  ms.event("n.pcall", tostring(ok) .. " " .. tostring(s) .. " " .. tostring(e))
  local co = coroutine.wrap(function() return select(2, ms.tcp("127.0.0.1", 1)) end)
  ms.event("n.co", tostring(co()))
end]])
f:close()
local n2, n2err = T.run_check(tmp, {})
os.remove(tmp)
T.ok(n2, "the check runs: " .. tostring(n2err))
T.like(find(n2, "n.sort") and find(n2, "n.sort").msg or "", "^nil network calls cannot be made inside a function called from C",
  "no network call from a table.sort comparator")
T.like(find(n2, "n.pcall") and find(n2, "n.pcall").msg or "", "^true nil tcp connect to 127%.0%.0%.1:1: connection refused",
  "a network call inside pcall yields and returns")
T.like(find(n2, "n.co") and find(n2, "n.co").msg or "", "from a coroutine the check created",
  "no network call from the check's own coroutine")
T.done()
