-- forwarders/graphite.lua: Graphite (carbon) plaintext protocol over TCP or UDP.
--
-- One line per sample, "<path> <value> <unix seconds>\n", sent to carbon's
-- line receiver (port 2003 by default), reconnecting when it goes away; or,
-- with `protocol: udp`, to carbon's UDP line receiver (ENABLE_UDP_LISTENER)
-- as datagrams of whole lines, at most max_datagram bytes each.
--
--   forwarders:
--     carbon: { type: graphite, address: "graphite.example.com:2003",
--               prefix: servers, tag_mode: path }
--
-- Options:
--   address   host:port of the carbon line receiver    (default 127.0.0.1:2003)
--   protocol  tcp or udp                               (default tcp)
--   max_datagram  bytes per UDP datagram               (default 1432)
--   prefix    first level(s) of every path, e.g. "servers" (default "": none)
--   tag_mode  how tags are written                     (default "path")
--     path    tags become levels, as Telegraf's "host.tags.measurement.field":
--             [prefix.]<host>.<other tag values, by tag key>.<name>
--             cpu.user{host=web1,cpu=0} -> servers.web1.0.cpu.user
--     tagged  Graphite 1.1 tags (graphite-web >= 1.1 with tag support):
--             [prefix.]<name>;<key>=<value>;...   (keys sorted)
--             cpu.user{host=web1,cpu=0} -> servers.cpu.user;cpu=0;host=web1
--     none    tags are dropped: [prefix.]<name>
--
-- Values: integers as integers, others with the fewest digits that read back
-- exactly (15 to 17). Timestamps are whole seconds (the sample's time
-- rounded down). Health samples (ms.send_special) write their value
-- (0 OK, 8 WARNING, 16 ERROR); their message cannot be stored and is left
-- out. Events are skipped. NaN and infinite values are skipped. Skipped
-- samples are counted (moonstat_forwarder_dropped_samples_total{reason="unencodable"}).
--
-- Sanitizing, so a name never breaks a line or adds a level by accident:
--   - names and the prefix keep letters, digits, "_", "-", ":", "." and
--     UTF-8 characters; any other byte (space, "/", ";", "=", ...) becomes
--     "_"; empty levels ("a..b", a leading or trailing ".") are dropped;
--   - in path mode a tag value is one level: the same bytes are kept but
--     "." also becomes "_" (host=web1.example.com -> web1_example_com);
--     empty values are left out;
--   - in tagged mode tag keys lose ";!^=", tag values lose ";" and a leading
--     "~", and both lose spaces and control bytes (each becomes "_").
-- docs/forwarders/graphite.md has the full story with examples.
local LP = require "moonstat.lineproto"
local encode_graphite = LP.encode_graphite

return {
  transport = function(opts) return opts.protocol end, -- src/transport_tcp.c or _udp.c
  options = {
    address = { type = "address", default = "127.0.0.1:2003",
                help = "host:port of the carbon plaintext (line) receiver" },
    protocol = { type = "string", default = "tcp", choices = { "tcp", "udp" },
                 help = "tcp (a reconnecting stream) or udp (datagrams, no delivery guarantee)" },
    max_datagram = { type = "size", default = 1432,
                     help = "udp: largest datagram; lines are never split across two" },
    prefix = { type = "string", default = "",
               help = "path levels put before every metric, e.g. servers or dc1.servers" },
    tag_mode = { type = "string", default = "path", choices = { "path", "tagged", "none" },
                 help = "path: tag values become levels (host first, then the others by key); "
                     .. "tagged: Graphite 1.1 name;k=v tags; none: tags are dropped" },
  },
  encode = function(batch, out, opts)
    return encode_graphite(batch, out, opts, opts.tag_mode, opts.prefix, "graphite")
  end,
}
