-- forwarders/influxdb.lua: InfluxDB 1.x over HTTP, line protocol.
--
-- Each batch is POSTed to <url>/write?db=<db>&rp=<retention_policy>&precision=ns
-- as line protocol (one line per sample, exactly the lines of
-- forwarders/file.lua's format "influx", built by lua/moonstat/lineproto.lua):
--   <measurement>[,<key>=<value>...] value=<float> <unix ns>
--   counters with an integral value: value=<n>i
--   health: value=<n>,message="..",level=".."   events: text=".."
-- Escaping: measurement "," and " "; tag keys and values ",", "=" and " ";
-- string fields '"' and "\". NaN and infinite values are skipped.
--
--   forwarders:
--     influx: { type: influxdb, url: "http://influx.example.com:8086", db: metrics,
--               user: moonstat, password: secret }
--
-- Options (the http transport's, see docs/forwarders/influxdb.md):
--   url               base URL of the server           (default http://127.0.0.1:8086)
--   db                database to write to              (default moonstat)
--   retention_policy  "" for the database's default     (default "")
--   user, password    basic auth                        (default none)
--   timeout           whole request                     (default 10s)
--   ca_file, insecure TLS verification                  (default system CAs, verify)
--   headers           extra HTTP headers (a map)
--   compress          "gzip": gzip each body (Content-Encoding: gzip) (default "": none)
-- 204 is success; 5xx, 429 and network errors are retried with backoff (the
-- batch stays queued); other 4xx (bad database, bad line) drop the batch and
-- log InfluxDB's error text. InfluxDB 2.x: type influxdb2.
local LP = require "moonstat.lineproto"
local H = require "moonstat.http"
local encode_influx = LP.encode_influx

return {
  transport = "http",
  options = H.options { -- plus user, password, timeout, ca_file, insecure, headers
    url = { type = "string", default = "http://127.0.0.1:8086", help = "InfluxDB base URL" },
    endpoint = { type = "string", default = "/write?db={db}&rp={retention_policy}&precision=ns",
                 help = "path and query after url; {option} is replaced by its value" },
    db = { type = "string", default = "moonstat", help = "database" },
    retention_policy = { type = "string", default = "", help = "retention policy (empty: default)" },
    content_type = { type = "string", default = "text/plain; charset=utf-8",
                     help = "Content-Type of the body" },
  },
  encode = function(batch, out, opts)
    return encode_influx(batch, out, opts)
  end,
}
