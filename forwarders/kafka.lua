-- forwarders/kafka.lua: Apache Kafka, one message per sample (librdkafka).
--
-- Every sample becomes one Kafka message on `topic`:
--   key    the series, "name{k=v,...}" (tags sorted): the producer's
--          partitioner hashes it, so one series always lands on one partition
--          and its samples stay in order;
--   value  format "json": pystatsd's Logstash-style object, one per sample
--            {"name":"cpu.user","cpu":"0","host":"web1","@version":"1",
--             "@timestamp":"2023-11-14T22:13:20.000Z","value":12.5}
--          (name, the tags by key, apikey/tenant_id when set, @version,
--          @timestamp in UTC with milliseconds, then value; health samples
--          add "message" and "level", events have "text" and no value; a tag
--          whose key is one of those fields is written as "tag_<key>");
--          format "influx": the sample's InfluxDB line, as
--          forwarders/file.lua writes it, without the newline;
--   timestamp  the sample's time in milliseconds.
-- NaN and infinite values are skipped (JSON has no such number).
--
--   forwarders:
--     kafka: { type: kafka, brokers: "k1:9092,k2:9092", topic: metrics, format: json }
--
-- Options: see docs/forwarders/kafka.md (brokers, topic, format, client_id,
-- acks, idempotence, compression, linger, producer_batch_size, batch_messages,
-- message_timeout, max_retries, apikey, tenant_id, apikey_as, properties).
--
-- Wire between this encoder and the C transport (src/transport_kafka.c): a
-- chunk is a sequence of records, each the key and the value bytes followed
-- by a 16-byte trailer in host byte order
--   uint32 key length, uint32 value length, int64 timestamp in ms
-- (a trailer, not a header: the value is written straight into the buffer,
-- numbers included, and measured afterwards; the transport walks a chunk
-- from its end).
local ffi = require "ffi"
local E = require "moonstat.encoder"
local LP = require "moonstat.lineproto"

local series, put_number, ns = E.series, E.put_number, LP.ns
local COUNTER, HEALTH, EVENT = E.COUNTER, E.HEALTH, E.EVENT
local floor, huge, fmt, error, tostring = math.floor, math.huge, string.format, error, tostring
local ffi_string, copy = ffi.string, ffi.copy

local hdr = ffi.new("union { struct { uint32_t k, v; int64_t ts; } h; uint8_t b[16]; }")

-- JSON string contents: '"' and '\' escaped, control bytes as \u00XX.
local JSON = {}
for b = 0, 255 do
  JSON[b] = (b < 32 and fmt("\\u%04x", b)) or (b == 34 and '\\"') or (b == 92 and "\\\\") or false
end
local function jstr(s) return LP.map_bytes(s, JSON) end

-- Field names of the JSON object that tags may not take.
local RESERVED = { name = true, value = true, ["@version"] = true, ["@timestamp"] = true,
                   apikey = true, tenant_id = true, message = true, level = true, text = true }

-- Per forwarder (opts table): the key and the value prefix of each series id
-- (false: unknown series, skipped), and the escaped texts of health samples
-- and events.
local caches = setmetatable({}, { __mode = "k" })
local TEXTS_MAX = 4096

local function cache_for(opts)
  local c = caches[opts]
  local f, k, t, as = opts.format, opts.apikey or "", opts.tenant_id or "", opts.apikey_as
  if c == nil or c.format ~= f or c.apikey ~= k or c.tenant ~= t or c.as ~= as then
    local extra = ""
    if as ~= "sasl" then
      if k ~= "" then extra = extra .. ',"apikey":"' .. jstr(k) .. '"' end
      if t ~= "" then extra = extra .. ',"tenant_id":"' .. jstr(t) .. '"' end
    end
    c = { format = f, apikey = k, tenant = t, as = as, extra = extra, keys = {}, pre = {},
          texts = { [""] = "" }, ntexts = 1 }
    caches[opts] = c
  end
  return c
end

-- The JSON object's start for a series, up to the timestamp's opening quote.
local function json_prefix(se, extra)
  local parts = { '{"name":"', jstr(se.name), '"' }
  for i = 1, #se.keys do
    local k = se.keys[i]
    local jk = RESERVED[k] and "tag_" .. k or k
    parts[#parts + 1] = ',"' .. jstr(jk) .. '":"' .. jstr(se.tags[k]) .. '"'
  end
  parts[#parts + 1] = extra
  parts[#parts + 1] = ',"@version":"1","@timestamp":"'
  return table.concat(parts)
end

-- "YYYY-MM-DDTHH:MM:SS.mmmZ" of a time in ms (proleptic Gregorian, UTC),
-- by arithmetic only (os.date would stop the JIT).
local function iso(ms)
  local sec = floor(ms / 1000)
  local milli = ms - sec * 1000
  local days = floor(sec / 86400)
  local tod = sec - days * 86400
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  local h = floor(tod / 3600)
  local mi = floor((tod - h * 3600) / 60)
  local s = fmt("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, h, mi, tod - h * 3600 - mi * 60,
    milli)
  return s
end

-- The record trailer: the record (key then value) started at offset
-- `start` of out, its key is klen bytes.
local function put_trailer(out, start, klen, ms)
  hdr.h.k = klen
  hdr.h.v = #out - start - klen
  hdr.h.ts = ms
  local p = out:reserve(16)
  copy(p, hdr, 16)
  out:commit(16)
end

-- A sample's text (msg or level) from the batch's arena, "" for none.
local function sample_text(arena, off)
  if off == 0 then return "" end
  local s = ffi_string(arena + off - 1)
  return s
end

-- Hot loops: write the samples whose series and texts are cached; return
-- the index of the first that needs the cold step (or n).
local function json_run(batch, out, c, first, n)
  local s, arena = batch.s, batch.text
  local keys, pre, texts = c.keys, c.pre, c.texts
  local last_ms, ts_text = -1, ""
  for i = first, n - 1 do
    local smp = s[i]
    local p = pre[smp.series]
    if p == nil then return i end
    local kind, v = smp.kind, smp.value
    if p and (kind == EVENT or (v == v and v ~= huge and v ~= -huge)) then
      local ms = floor(smp.ts * 1000 + 0.5)
      if ms ~= last_ms then last_ms, ts_text = ms, iso(ms) end
      local key = keys[smp.series]
      local start = #out
      if kind == EVENT then
        local t = texts[sample_text(arena, smp.msg)]
        if t == nil then return i end
        out:put(key, p, ts_text, '","text":"', t, '"}')
      elseif kind == HEALTH then
        local m = texts[sample_text(arena, smp.msg)]
        local l = texts[sample_text(arena, smp.level)]
        if m == nil or l == nil then return i end
        out:put(key, p, ts_text, '","value":')
        put_number(out, v)
        out:put(',"message":"', m, '","level":"', l, '"}')
      else
        out:put(key, p, ts_text, '","value":')
        put_number(out, v)
        out:put("}")
      end
      put_trailer(out, start, #key, ms)
    end
  end
  return n
end

local function influx_run(batch, out, c, first, n)
  local s, arena = batch.s, batch.text
  local keys, pre, texts = c.keys, c.pre, c.texts
  local last_ts, ts_text = -huge, ""
  for i = first, n - 1 do
    local smp = s[i]
    local p = pre[smp.series]
    if p == nil then return i end
    local kind, v = smp.kind, smp.value
    if p and (kind == EVENT or (v == v and v ~= huge and v ~= -huge)) then
      local ts = smp.ts
      if ts ~= last_ts then last_ts, ts_text = ts, ns(ts) end
      local key, ms = keys[smp.series], floor(ts * 1000 + 0.5)
      local start = #out
      if kind == EVENT then
        local t = texts[sample_text(arena, smp.msg)]
        if t == nil then return i end
        out:put(key, p, 'text="', t, '" ', ts_text)
      elseif kind == HEALTH then
        local m = texts[sample_text(arena, smp.msg)]
        local l = texts[sample_text(arena, smp.level)]
        if m == nil or l == nil then return i end
        out:put(key, p, "value=")
        put_number(out, v)
        out:put(',message="', m, '",level="', l, '" ', ts_text)
      elseif kind == COUNTER and v == floor(v) and v > -9.2e18 and v < 9.2e18 then
        out:put(key, p, "value=")
        out:putf("%di ", v)
        out:put(ts_text)
      else
        out:put(key, p, "value=")
        put_number(out, v)
        out:put(" ", ts_text)
      end
      put_trailer(out, start, #key, ms)
    end
  end
  return n
end

-- Cold step: build what sample i needs (its series' key and prefix, its
-- escaped texts).
local function cold(batch, c, i, json)
  local smp = batch.s[i]
  local id = smp.series
  if c.pre[id] == nil then
    local se = series(id)
    if se then
      c.keys[id] = se.key
      c.pre[id] = json and json_prefix(se, c.extra) or LP.influx_series(se.name, se.tags, se.keys)
    else
      c.pre[id] = false
    end
  end
  local esc = json and jstr or LP.influx_string
  for _, off in ipairs { smp.msg, smp.level } do
    local t = sample_text(batch.text, off)
    if c.texts[t] == nil then
      if c.ntexts >= TEXTS_MAX then c.texts, c.ntexts = { [""] = "" }, 1 end
      c.texts[t] = esc(t)
      c.ntexts = c.ntexts + 1
    end
  end
end

return {
  transport = "kafka",
  options = {
    brokers = { type = "string", default = "127.0.0.1:9092",
                help = "bootstrap brokers, host:port[,host:port...]" },
    topic = { type = "string", default = "moonstat", help = "topic to produce to" },
    format = { type = "string", default = "json", choices = { "json", "influx" },
               help = "message value: pystatsd's JSON object or an InfluxDB line" },
    client_id = { type = "string", default = "moonstat", help = "client.id sent to the brokers" },
    acks = { type = "string", default = "all", choices = { "all", "1", "0" },
             help = "acknowledgements a produce request waits for" },
    idempotence = { type = "bool", default = true,
                    help = "idempotent producer: no duplicates or reordering on retries (needs acks all)" },
    compression = { type = "string", default = "none",
                    choices = { "none", "gzip", "snappy", "lz4", "zstd" },
                    help = "compression of message batches" },
    linger = { type = "duration", default = "5ms", help = "how long the producer waits to fill a batch" },
    producer_batch_size = { type = "size", default = "1000000",
                            help = "largest producer batch in bytes (librdkafka batch.size)" },
    batch_messages = { type = "integer", default = 10000, help = "most messages in a batch" },
    message_timeout = { type = "duration", default = "60s",
                        help = "time a message may take to be delivered, retries included" },
    max_retries = { type = "integer", default = -1,
                    help = "rounds a chunk's undelivered messages are produced again; -1: forever" },
    apikey = { type = "string", default = "", help = "pystatsd's kafka_apikey (a secret)" },
    tenant_id = { type = "string", default = "", help = "pystatsd's kafka_tenant_id" },
    apikey_as = { type = "string", default = "message", choices = { "message", "sasl", "both" },
                  help = "message: fields of each JSON message (pystatsd); sasl: SASL PLAIN "
                    .. "user tenant_id, password apikey" },
    properties = { type = "map", help = "librdkafka configuration keys, applied last" },
  },
  encode = function(batch, out, opts)
    local json = opts.format == "json"
    if not json and opts.format ~= "influx" then
      error(("kafka forwarder: unknown format '%s' (json | influx)"):format(tostring(opts.format)), 0)
    end
    local c = cache_for(opts)
    local n = batch.n
    if json then -- one call site per loop: each stays monomorphic for the JIT
      local i = json_run(batch, out, c, 0, n)
      while i < n do
        cold(batch, c, i, true)
        i = json_run(batch, out, c, i, n)
      end
    else
      local i = influx_run(batch, out, c, 0, n)
      while i < n do
        cold(batch, c, i, false)
        i = influx_run(batch, out, c, i, n)
      end
    end
  end,
}
