-- moonstat.http: what every encoder over the `http` transport shares.
--
-- The C transport (src/transport_http.c, docs/forwarders/http.md) reads these
-- options from the forwarder; an encoder declares its own (url, endpoint and
-- what its endpoint's {placeholders} name) and passes them through
-- `options`, which adds the common ones with their defaults:
--   user, password   basic auth                 (default none)
--   timeout          whole request              (default 10s)
--   ca_file          CA bundle for https        (default the system's)
--   insecure         skip TLS verification      (default false)
--   cert, key        TLS client certificate and key, PEM files (default none)
--   key_password     passphrase of an encrypted key (default none)
--   headers          extra HTTP headers, a map
--   compress         "gzip" or "snappy": compress each body and say so in
--                    Content-Encoding (default "": none)
-- An encoder's own entry for one of these keys wins.
local M = {}

local common = {
  user = { type = "string", default = "", help = "basic auth user" },
  password = { type = "string", default = "", help = "basic auth password" },
  timeout = { type = "duration", default = "10s", help = "request timeout" },
  ca_file = { type = "string", default = "", help = "CA bundle for https" },
  insecure = { type = "bool", default = false, help = "skip TLS verification" },
  cert = { type = "string", default = "", help = "TLS client certificate (PEM file)" },
  key = { type = "string", default = "", help = "private key of cert (PEM file)" },
  key_password = { type = "string", default = "", help = "passphrase of an encrypted key" },
  headers = { type = "map", help = "extra HTTP headers" },
  compress = { type = "string", default = "", choices = { "", "gzip", "snappy" },
               help = "compress bodies: gzip or snappy (empty: none)" },
}

-- The encoder's option specs plus the common HTTP ones (a new table).
function M.options(own)
  local t = {}
  for k, v in pairs(common) do t[k] = v end
  for k, v in pairs(own) do t[k] = v end
  return t
end

return M
