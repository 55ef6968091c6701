-- forwarders/influxdb2.lua: InfluxDB 2.x (v2 write API) over HTTP, line protocol.
--
-- Each batch is POSTed to <url>/api/v2/write?org=<org>&bucket=<bucket>&precision=ns
-- with "Authorization: Token <token>"; the body is the same line protocol as
-- forwarders/influxdb.lua (see there and docs/forwarders/influxdb.md).
--
--   forwarders:
--     influx2: { type: influxdb2, url: "https://influx.example.com:8086",
--                org: ops, bucket: metrics, token: "..." }
--
-- Options: url, org, bucket, token, timeout, ca_file, insecure, headers,
-- compress ("gzip": gzip each body, Content-Encoding: gzip; default none).
local LP = require "moonstat.lineproto"
local H = require "moonstat.http"
local encode_influx = LP.encode_influx

return {
  transport = "http",
  options = H.options { -- plus user, password, timeout, ca_file, insecure, headers
    url = { type = "string", default = "http://127.0.0.1:8086", help = "InfluxDB base URL" },
    endpoint = { type = "string", default = "/api/v2/write?org={org}&bucket={bucket}&precision=ns",
                 help = "path and query after url; {option} is replaced by its value" },
    org = { type = "string", default = "", help = "organization name" },
    bucket = { type = "string", default = "moonstat", help = "bucket" },
    token = { type = "string", default = "", help = "API token (Authorization: Token ...)" },
    token_scheme = { type = "string", default = "Token", help = "Authorization scheme" },
    content_type = { type = "string", default = "text/plain; charset=utf-8",
                     help = "Content-Type of the body" },
  },
  encode = function(batch, out, opts)
    return encode_influx(batch, out, opts)
  end,
}
