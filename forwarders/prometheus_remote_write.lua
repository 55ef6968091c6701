-- forwarders/prometheus_remote_write.lua: Prometheus remote write (protocol
-- 0.1.0, the 1.0 spec) over HTTP: Prometheus itself with
-- --web.enable-remote-write-receiver, Mimir, Cortex, Thanos receive,
-- VictoriaMetrics, Grafana Cloud, ...
--
--   forwarders:
--     prom_rw: { type: prometheus_remote_write, url: "http://127.0.0.1:9090" }
--
-- Each batch is POSTed to <url>/api/v1/write as one protobuf WriteRequest,
-- which this file writes byte by byte:
--   WriteRequest { repeated TimeSeries timeseries = 1; }
--   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
--   Label        { string name = 1; string value = 2; }
--   Sample       { double value = 1; int64 timestamp = 2; }  (ms since 1970)
-- The C transport compresses the body with snappy (block format; `compress`
-- is fixed to "snappy") and sends Content-Encoding: snappy, Content-Type:
-- application/x-protobuf and X-Prometheus-Remote-Write-Version: 0.1.0.
-- 2xx is success; 5xx and 429 (and network errors) are retried with backoff;
-- any other answer (400 for an out-of-order sample, say) cannot succeed by
-- repeating it: the batch is dropped, counted as failed, and the receiver's
-- message is logged.
--
-- How a sample is written, e.g. ms.gauge("disk.used %", 42, {mount="/", ["1x"]="a"})
-- with the agent's host tag:
--   {__name__="disk_used__", _1x="a", host="web1", mount="/"} 42 @ <ms>
--
--   name    every byte outside [a-zA-Z0-9_:] becomes "_", and a "_" goes first
--           when it starts with a digit: "cpu.user" -> cpu_user (the same
--           names as the `prometheus` scrape forwarder).
--   labels  the series' tags. Names keep [a-zA-Z0-9_] (other bytes become
--           "_"), get a "_" first when they start with a digit, and a leading
--           "__" (reserved by Prometheus) becomes "_"; when two names end up
--           the same the first in tag-key order is kept; a tag named like
--           __name__ after that is dropped. Empty values are left out (the
--           spec forbids them); bytes of a value that are not UTF-8 become
--           U+FFFD. Labels are sorted by name, byte by byte, as the spec
--           requires: __name__ comes first before lower-case names (a name
--           starting with an upper-case letter sorts before it).
--   samples one TimeSeries per series per batch, holding all of that
--           series' samples of the batch in the order they came.
--   kinds   gauges, counters and rates are written as their value; health
--           samples and events are skipped (remote write has no place for
--           text), and so are samples with a timestamp before 1970. Skipped
--           samples count as sent with their batch. NaN and +-Inf are sent
--           as they are (Prometheus stores them).
--
-- Options (the http transport's, see docs/forwarders/prometheus_remote_write.md):
--   url               base URL of the receiver             (default http://127.0.0.1:9090)
--   endpoint          path after url                       (default /api/v1/write)
--   user, password    basic auth; token (+ token_scheme, default Bearer)
--   timeout, ca_file, insecure, headers (e.g. X-Scope-OrgID for Mimir/Cortex)
local ffi = require "ffi"
local K = require "moonstat.ffi"
local E = require "moonstat.encoder"
local PN = require "moonstat.promnames"
local metric_name, label_name, utf8_fix = PN.metric_name, PN.label_name, PN.utf8_fix
local H = require "moonstat.http"

assert(ffi.abi("le"), "prometheus_remote_write: doubles are written little-endian")

local series = E.series
local HEALTH = E.HEALTH
local char = string.char
local floor, concat, sort = math.floor, table.concat, table.sort
local copy, cast = ffi.copy, ffi.cast
local C = K.C
pcall(ffi.cdef, "uint32_t ms_series_count(void);")

---------------------------------------------------------------- cold: labels

-- A non-negative integer as a protobuf varint (a string).
local function varint(n)
  local t = {}
  while n >= 128 do
    t[#t + 1] = char(n % 128 + 128)
    n = floor(n / 128)
  end
  t[#t + 1] = char(n)
  return concat(t)
end

-- A length-delimited field: tag byte, length, bytes.
local function field(tag, s)
  return char(tag) .. varint(#s) .. s
end




local function by_name(a, b) return a[1] < b[1] end

-- The label fields of a series' TimeSeries (field 1, each a Label), sorted,
-- as one string; false for an unknown series id.
local function series_labels(id)
  local se = series(id)
  if not se then return false end
  local list, seen = { { "__name__", metric_name(se.name) } }, { __name__ = true }
  for i = 1, #se.keys do
    local k = se.keys[i]
    local v = se.tags[k]
    local n = label_name(k)
    if v ~= "" and not seen[n] then
      seen[n] = true
      list[#list + 1] = { n, utf8_fix(v) }
    end
  end
  sort(list, by_name)
  local parts = {}
  for i = 1, #list do
    parts[i] = field(0x0a, field(0x0a, list[i][1]) .. field(0x12, list[i][2]))
  end
  return concat(parts)
end

---------------------------------------------------------------- hot: samples

local int_arr, dbl_arr, u8_arr = ffi.typeof("int32_t[?]"), ffi.typeof("double[?]"), ffi.typeof("uint8_t[?]")
local dbl_ptr, u32_ptr = ffi.typeof("double *"), ffi.typeof("uint32_t *")
local band, bor, bnot, arshift = bit.band, bit.bor, bit.bnot, bit.arshift
local tsb = ffi.new("uint8_t[8]")

-- Bytes of the varint of a non-negative integer below 2^53 (no loops:
-- an inner loop in the encoder's loop would abort its trace).
local function varint_len(v)
  if v < 128 then return 1 end
  if v < 16384 then return 2 end
  if v < 2097152 then return 3 end
  if v < 268435456 then return 4 end
  if v < 34359738368 then return 5 end
  if v < 4398046511104 then return 6 end
  if v < 562949953421312 then return 7 end
  return 8
end

-- Write the varint of v (as varint_len) at p[o]; returns the next offset.
-- Unrolled for the same reason.
local function put_varint(p, o, v)
  if v < 128 then p[o] = v; return o + 1 end
  local r = v % 128; p[o] = r + 128; v = (v - r) / 128
  if v < 128 then p[o + 1] = v; return o + 2 end
  r = v % 128; p[o + 1] = r + 128; v = (v - r) / 128
  if v < 128 then p[o + 2] = v; return o + 3 end
  r = v % 128; p[o + 2] = r + 128; v = (v - r) / 128
  if v < 128 then p[o + 3] = v; return o + 4 end
  r = v % 128; p[o + 3] = r + 128; v = (v - r) / 128
  if v < 128 then p[o + 4] = v; return o + 5 end
  r = v % 128; p[o + 4] = r + 128; v = (v - r) / 128
  if v < 128 then p[o + 5] = v; return o + 6 end
  r = v % 128; p[o + 5] = r + 128; v = (v - r) / 128
  if v < 128 then p[o + 6] = v; return o + 7 end
  r = v % 128; p[o + 6] = r + 128; v = (v - r) / 128
  p[o + 7] = v
  return o + 8
end

-- Per encoder instance: the label bytes of each series, built once and
-- kept back to back in one array (lbuf; lboff/lblen by series id, lblen 0:
-- not built yet, -1: unknown series; lboff is a double as lbuf may pass
-- 2 GiB with millions of series), and grouping scratch.
local lbuf, lbcap, lbused = nil, 0, 0
local lboff, lblen
local cap = 0         -- samples the arrays below hold
local sg              -- by sample: its group number, 0 when skipped
-- By group: its series id; the bytes of its samples, then of its whole
-- TimeSeries (-1: unknown series); the write cursor of pass 2. (int32: a
-- body stays below 2 GiB, string.buffer's limit.)
local gid, gsize, pos
-- By series id (ids are dense, 1 .. ms_series_count()): the batch number
-- that last grouped the series, and its group number in that batch.
local idcap, epoch = 0, 0
local gstamp, gnum

local function grow(n)
  cap = n < 1024 and 1024 or n
  sg = int_arr(cap)
  gid, gsize, pos = int_arr(cap + 1), int_arr(cap + 1), int_arr(cap + 1)
end

-- Room for series ids up to id in the arrays indexed by id.
local function grow_ids(id)
  local c = idcap > 0 and idcap or 1024
  while c <= id do c = c * 2 end
  local st, gn, lo, ll = int_arr(c), int_arr(c), dbl_arr(c), int_arr(c)
  if idcap > 0 then
    copy(st, gstamp, idcap * 4)
    copy(gn, gnum, idcap * 4)
    copy(lo, lboff, idcap * 8)
    copy(ll, lblen, idcap * 4)
  end
  gstamp, gnum, lboff, lblen, idcap = st, gn, lo, ll, c
end

-- Build and keep the label bytes of series id (its first batch); returns
-- their length, or -1 for an unknown series.
local function build_labels(id)
  local lb = series_labels(id)
  if not lb then
    lblen[id] = -1
    return -1
  end
  local nl = #lb
  if lbused + nl > lbcap then
    local c = lbcap > 0 and lbcap * 2 or 65536
    while c < lbused + nl do c = c * 2 end
    local nb = u8_arr(c)
    if lbused > 0 then copy(nb, lbuf, lbused) end
    lbuf, lbcap = nb, c
  end
  copy(lbuf + lbused, lb, nl)
  lboff[id], lblen[id] = lbused, nl
  lbused = lbused + nl
  return nl
end

local function encode(batch, out)
  local n = batch.n
  if n > cap then grow(n) end
  local s = batch.s
  local nid = C.ms_series_count()
  if nid >= idcap then grow_ids(nid) end
  epoch = epoch + 1
  if epoch > 2 ^ 30 then -- gstamp is int32: start over long before it wraps
    ffi.fill(gstamp, idcap * 4)
    epoch = 1
  end
  local sg, gid, gsize, pos = sg, gid, gsize, pos
  local ng = 0
  -- pass 1: the group (TimeSeries) of each sample, numbered in order of
  -- first appearance, and the bytes of each group's samples. gstamp/gnum
  -- find a series' group without clearing a table per batch. A series'
  -- first sample opens a new group without a branch: mask is -1 when the
  -- series' stamp is not this batch's (d ~= 0: the sign bit of d | -d),
  -- else 0, and selects between the new group number and the series' one.
  -- (A branch here became a side exit taken once per series per batch,
  -- which tripled the time of this loop; 0 - d, not -d: -0 is not an
  -- integer to the JIT, so -d would add a guard.)
  local last_ts, ms, ml = -1, -1, 0
  for i = 0, n - 1 do
    local smp = s[i]
    local g = 0
    if smp.kind < HEALTH then -- gauges, counters, rates (health, events, and any later kind: skipped)
      local ts = smp.ts
      if ts ~= last_ts then
        last_ts, ms = ts, floor(ts * 1000 + 0.5)
        if ms >= 0 then ml = varint_len(ms) end
      end
      if ms >= 0 then
        local id = smp.series
        if id >= idcap then grow_ids(id) end
        local d = gstamp[id] - epoch
        local mask = arshift(bor(d, 0 - d), 31)
        ng = ng - mask
        g = bor(band(mask, ng), band(bnot(mask), gnum[id]))
        gstamp[id] = epoch
        gnum[id] = g
        gid[g] = id
        -- Sample field: tag, length (< 128), 0x09 + 8 bytes, 0x10 + varint
        gsize[g] = band(bnot(mask), gsize[g]) + 12 + ml
      end
    end
    sg[i] = g
  end
  -- each TimeSeries' size (its labels are built on the series' first
  -- batch) and where its samples start (after its tag, length and labels)
  local total, unknown = 0, false
  for g = 1, ng do
    local id = gid[g]
    local nl = lblen[id]
    if nl == 0 then nl = build_labels(id) end
    if nl > 0 then
      local size = gsize[g] + nl
      gsize[g] = size
      pos[g] = total + 1 + varint_len(size) + nl
      total = total + 1 + varint_len(size) + size
    else
      gsize[g] = -1
      unknown = true
    end
  end
  if unknown then -- samples of unknown series: skipped
    for i = 0, n - 1 do
      if sg[i] > 0 and gsize[sg[i]] < 0 then sg[i] = 0 end
    end
  end
  if total == 0 then return end
  local p = out:reserve(total + 8)
  -- pass 2: the samples, in batch order (no lists to chase, and the
  -- timestamp changes seldom), each at its TimeSeries' cursor. A sample's
  -- bytes are 0x12 <len> 0x09 <8 bytes of the double> 0x10 <varint of the
  -- ms>: the first three with one 4-byte store (its 4th byte is then
  -- overwritten by the double), the varint (made once per distinct
  -- timestamp in tsb, padded to 8 bytes) with one 8-byte move. That move
  -- may write up to 7 bytes past the sample: into the TimeSeries' next
  -- sample (written after it), into the next TimeSeries' tag, length and
  -- labels (at least 17 bytes: __name__ is always there; written in pass
  -- 3), or into the 8 bytes of slack reserved at the end.
  local cur_ts, tl, hdr = -1, 0, 0
  for i = 0, n - 1 do
    local g = sg[i]
    if g > 0 then
      local smp = s[i]
      local ts = smp.ts
      if ts ~= cur_ts then
        cur_ts = ts
        tl = put_varint(tsb, 0, floor(ts * 1000 + 0.5))
        hdr = 0x090012 + (10 + tl) * 256
      end
      local o = pos[g]
      local q = p + o
      cast(u32_ptr, q)[0] = hdr
      cast(dbl_ptr, q + 3)[0] = smp.value
      q[11] = 0x10
      copy(q + 12, tsb, 8)
      pos[g] = o + 12 + tl
    end
  end
  -- pass 3: each TimeSeries' tag, length and labels, before its samples
  local o = 0
  for g = 1, ng do
    local size = gsize[g]
    if size > 0 then
      local id = gid[g]
      p[o] = 0x0a
      o = put_varint(p, o + 1, size)
      copy(p + o, lbuf + lboff[id], lblen[id])
      o = o + size
    end
  end
  out:commit(total)
end

return {
  transport = "http",
  options = H.options { -- plus user, password, timeout, ca_file, insecure, headers
    url = { type = "string", default = "http://127.0.0.1:9090", help = "receiver base URL" },
    endpoint = { type = "string", default = "/api/v1/write", help = "path after url" },
    content_type = { type = "string", default = "application/x-protobuf",
                     choices = { "application/x-protobuf" }, help = "Content-Type (fixed)" },
    compress = { type = "string", default = "snappy", choices = { "snappy" },
                 help = "body compression (fixed: snappy)" },
    token = { type = "string", default = "", help = "Authorization token" },
    token_scheme = { type = "string", default = "Bearer", help = "Authorization scheme" },
    fixed_headers = { type = "string", default = "X-Prometheus-Remote-Write-Version: 0.1.0",
                      choices = { "X-Prometheus-Remote-Write-Version: 0.1.0" },
                      help = "the protocol's version header (fixed)" },
  },
  encode = function(batch, out)
    encode(batch, out)
  end,
}
