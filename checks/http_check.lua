-- http_check: probe a URL; its status code, latency and a health event
-- (0 OK, 16 ERROR). Off until config.yaml has a section for it:
--
--   checks:
--     http_check: { url: "https://example.org/health", expect: 200, request_timeout: 5 }
--
-- Sends http.status, http.latency (seconds) and, for https, http.cert_days_left
-- (days until the server certificate expires) tagged url=<url>, and the
-- health event http_check.<name> (name: the `name` key, default "url").
-- `metrics`: a list of those names to send only some of them (the health
-- event is always sent). Other keys go to ms.http.request: method, headers,
-- user, password, bearer, ca_file, cert, key, insecure, unix_socket.
local U = require "moonstat.checkutil"

local M = {
  enabled = false,
  interval = 30,
  type = "http",
  defaults = { url = false, name = "url", expect = 200, request_timeout = 5, method = "GET",
               headers = false, user = false, password = false, bearer = false, ca_file = false,
               cert = false, key = false, insecure = false, unix_socket = false, metrics = false },
}

function M.collect()
  local cfg = ms.config
  local want = U.wanted(cfg.metrics)
  if not cfg.url then error("set checks.http_check.url in config.yaml (the URL to probe)", 0) end
  local req = { url = cfg.url, method = cfg.method, timeout = cfg.request_timeout,
                certinfo = cfg.url:match("^[Hh][Tt][Tt][Pp][Ss]:") ~= nil }
  for _, k in ipairs({ "headers", "user", "password", "bearer", "ca_file", "cert", "key",
                       "insecure", "unix_socket" }) do
    if cfg[k] then req[k] = cfg[k] end
  end
  local tags = { url = cfg.url }
  local event = "http_check." .. cfg.name
  local t0 = ms.monotime()
  local status, err, _, info = ms.http.request(req)
  local latency = ms.monotime() - t0
  if want("http.latency") then ms.gauge("http.latency", latency, tags) end
  if not status then
    ms.send_special(event, 16, err)
    return
  end
  if want("http.status") then ms.gauge("http.status", status, tags) end
  if info and info.cert_expires and want("http.cert_days_left") then
    ms.gauge("http.cert_days_left", (info.cert_expires - os.time()) / 86400, tags)
  end
  if status == tonumber(cfg.expect) then
    ms.send_special(event, 0, ("%s answered %d in %.3fs"):format(cfg.url, status, latency))
  else
    ms.send_special(event, 16, ("%s answered %d, expected %s"):format(cfg.url, status, cfg.expect))
  end
end

return M
