-- nginx: stub_status over HTTP, as PuyPuy's webservers module. Off until
-- config.yaml has a section for it:
--
--   checks:
--     nginx: { url: "http://127.0.0.1/nginx_status", user: stats, password: secret }
--
-- Sends nginx.connections.{active,reading,writing,waiting} (gauges) and
-- nginx.{accepts,handled,requests} (per-second rates), tagged server=<host:port>.
-- `metrics`: a list of those names to send only some of them.
local U = require "moonstat.checkutil"

local M = {
  enabled = false,
  interval = 10,
  type = "webserver",
  defaults = { url = "http://127.0.0.1/nginx_status", user = false, password = false,
               request_timeout = 5, metrics = false, insecure = false, ca_file = false },
}

-- stub_status text -> table of numbers, or nil, err
function M.parse(text)
  local active = text:match("Active connections:%s*(%d+)")
  local acc, han, req = text:match("server accepts handled requests%s+(%d+)%s+(%d+)%s+(%d+)")
  local rd, wr, wt = text:match("Reading:%s*(%d+)%s+Writing:%s*(%d+)%s+Waiting:%s*(%d+)")
  if not (active and acc and rd) then
    return nil, "not an nginx stub_status page"
  end
  return {
    active = tonumber(active), accepts = tonumber(acc), handled = tonumber(han),
    requests = tonumber(req), reading = tonumber(rd), writing = tonumber(wr),
    waiting = tonumber(wt),
  }
end

function M.collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  local status, _, body = ms.http.get(cfg.url, {
    user = cfg.user or nil, password = cfg.password or nil, timeout = cfg.request_timeout,
    insecure = cfg.insecure or nil, ca_file = cfg.ca_file or nil,
  })
  if not status then error(tostring(_), 0) end
  if status ~= 200 then
    error(("GET %s answered %d (is stub_status on at that location%s?)"):format(
      cfg.url, status, status == 401 and ", and are user/password right" or ""), 0)
  end
  local s, err = M.parse(body)
  if not s then error(("GET %s: %s"):format(cfg.url, err), 0) end
  local tags = { server = cfg.url:match("^%a+://([^/]+)") or cfg.url }
  for _, k in ipairs({ "active", "reading", "writing", "waiting" }) do
    local name = "nginx.connections." .. k
    if want(name) then ms.gauge(name, s[k], tags) end
  end
  for _, k in ipairs({ "accepts", "handled", "requests" }) do
    local name = "nginx." .. k
    if want(name) then ms.rate(name, s[k], tags) end
  end
end

return M
