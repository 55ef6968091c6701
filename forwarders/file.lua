-- forwarders/file.lua: append samples to a file (or stdout), one line each.
--
--   forwarders:
--     archive: { type: file, path: /var/lib/moonstat/metrics.lp, format: influx }
--
-- Options:
--   path    file to append to; "-" is standard output        (default "-")
--   format  "influx" or "graphite"                             (default "influx")
--
-- format: influx - InfluxDB line protocol, ready for `influx write` or
-- Telegraf's file input:
--   <name>[,<key>=<value>...] <fields> <unix ns>
--   gauge, rate    value=<float>                 cpu.user,host=a value=12.5 1700000000000000000
--   counter        value=<n>i when integral      requests,host=a value=42i 1700000000000000000
--   health         value=<n>,message="..",level=".."
--   event          text=".."
-- Tags come in key order. Measurement: "," and " " are escaped with "\";
-- tag keys and values: ",", "=" and " ". String fields: '"' and "\" are
-- escaped, newline and carriage return are written as \n and \r. Control
-- bytes in names and tags become "_"; empty tag values are left out. The
-- timestamp is in nanoseconds, rounded to the microsecond. NaN and infinite
-- values are skipped.
--
-- format: graphite - Graphite plaintext with Graphite 1.1 tags, exactly the
-- lines of forwarders/graphite.lua with tag_mode "tagged" and no prefix:
--   <name>;<key>=<value>... <value> <unix seconds>
--
-- docs/forwarders/file.md has the full story with examples.
local LP = require "moonstat.lineproto"
local encode_format = LP.encode_format

return {
  transport = "file",
  options = {
    path = { type = "string", default = "-",
             help = "file to append to (created if missing); - for standard output" },
    format = { type = "string", default = "influx", choices = { "influx", "graphite" },
               help = "influx: InfluxDB line protocol; graphite: Graphite plaintext with 1.1 tags" },
  },
  encode = function(batch, out, opts)
    return encode_format(batch, out, opts, "file")
  end,
}
