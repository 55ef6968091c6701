-- forwarders/stdout.lua: write samples to standard output, one line each.
--
--   forwarders:
--     console: { type: stdout, format: graphite }
--
-- The file forwarder (forwarders/file.lua) with its path fixed to "-":
--   format  "influx" (InfluxDB line protocol) or "graphite" (Graphite
--           plaintext with 1.1 tags)                       (default "influx")
-- The lines are exactly those of the file forwarder; docs/forwarders/file.md
-- describes both formats.
local LP = require "moonstat.lineproto"
local encode_format = LP.encode_format

return {
  transport = "file", -- the file transport writes to stdout when there is no path
  options = {
    format = { type = "string", default = "influx", choices = { "influx", "graphite" },
               help = "influx: InfluxDB line protocol; graphite: Graphite plaintext with 1.1 tags" },
  },
  encode = function(batch, out, opts)
    return encode_format(batch, out, opts, "stdout")
  end,
}
