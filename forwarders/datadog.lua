-- forwarders/datadog.lua: Datadog's HTTP intake (metrics, service checks, events).
--
-- Each batch becomes up to three kinds of request, all over the http
-- transport with the header DD-API-KEY (never logged) and gzip by default:
--
--   metrics         POST /api/v1/series (api_version v1):
--                   {"series":[{"metric":"cpu.user","host":"web1","tags":["cpu:0"],
--                    "type":"gauge","points":[[1700000000,12.5]]}, ...]}
--                   or /api/v2/series (api_version v2):
--                   {"series":[{"metric":"cpu.user","resources":[{"name":"web1","type":"host"}],
--                    "tags":["cpu:0"],"type":3,"points":[{"timestamp":1700000000,"value":12.5}]}]}
--   health samples  POST /api/v1/check_run, as service checks:
--                   [{"check":"app.health","host_name":"web1","tags":[],"status":1,
--                     "timestamp":1700000000,"message":"almost full"}]
--                   status from the value: 0 -> 0 OK, 8 -> 1 WARNING, 16 -> 2 CRITICAL,
--                   anything else (or the level word UNKNOWN) -> 3 UNKNOWN
--   events          POST /api/v1/events, one request per event (events: true):
--                   {"title":..,"text":..,"date_happened":..,"host":..,"tags":[..]}
--                   a text "title\ntext" (DogStatsD events) splits at its first line
--                   break; without one the title is the sample's name
--
--   forwarders:
--     dd: { type: datadog, api_key: "<key>", site: datadoghq.eu }
--
-- Kinds: gauges are "gauge" (v2 type 3). Counters (monotonic totals) are sent
-- as Datadog counts of the increase since the series' previous sample, with
-- "interval" the seconds between the two (v1 "count", v2 type 1); a series'
-- first sample only sets the base, and a decrease (a restart) sends nothing
-- and becomes the new base, as the Datadog agent's monotonic_count does.
-- Rates are "rate" (v2 type 2) with the seconds since the series' previous
-- sample as interval (`interval` for its first). NaN and infinities (JSON
-- has none), and events with events: false, are skipped and counted
-- (moonstat_forwarder_dropped_samples_total{reason="unencodable"}).
--
-- Service checks and events go to other endpoints than the series of the
-- same batch: they are written after the series body as parts
-- (parts:start(endpoint, nsamples), include/ms_forwarder.h), which the core
-- queues and the http transport POSTs each on its own.
--
-- Names follow Datadog's rules: metric and check names keep ASCII letters,
-- digits, "_" and "."; other bytes become "_"; leading non-letters are cut;
-- at most 200 characters. Tags are "key:value" (the host tag becomes the
-- host field instead); letters, digits, "_", "-", ":", ".", "/" and UTF-8
-- are kept, others become "_"; a key must start with a letter (leading
-- non-letters are cut, an empty key drops the tag); at most 200 bytes.
-- Texts are JSON-escaped; bytes that are not valid UTF-8 become "?".
--
-- Options (plus the http transport's: timeout, ca_file, insecure, headers;
-- see docs/forwarders/datadog.md):
--   api_key      the API key, sent as DD-API-KEY                  (required)
--   site         Datadog site: datadoghq.com, datadoghq.eu, us3.datadoghq.com, ...
--                                                                 (default datadoghq.com)
--   url          base URL; default https://api.{site}
--   api_version  v1 or v2 series endpoint                         (default v1)
--   interval     seconds a rate covers when nothing else says     (default 10)
--   events       send events to /api/v1/events                    (default true)
--   compress     request body compression, "gzip" or ""           (default gzip)
--   max_body     series JSON per request before it is split       (default 3000000)
local E = require "moonstat.encoder"
local H = require "moonstat.http"
local LP = require "moonstat.lineproto"

local ffi = require "ffi"
local buffer = require "string.buffer"
local series, put_number = E.series, E.put_number
local ffi_string = ffi.string
local GAUGE, COUNTER, RATE, HEALTH, EVENT = E.GAUGE, E.COUNTER, E.RATE, E.HEALTH, E.EVENT
local floor, huge, fmt = math.floor, math.huge, string.format
local byte, sub, find, concat = string.byte, string.sub, string.find, table.concat
local map_bytes = LP.map_bytes

local CHECK_ENDPOINT, EVENT_ENDPOINT = "/api/v1/check_run", "/api/v1/events"

---------------------------------------------------------------- text rules

local function is_alnum(b)
  return (b >= 48 and b <= 57) or (b >= 65 and b <= 90) or (b >= 97 and b <= 122)
end
local function is_letter(b) return (b >= 65 and b <= 90) or (b >= 97 and b <= 122) or b >= 128 end

local NAME, TAG, JSON = {}, {}, {}
for b = 0, 255 do
  NAME[b] = not (is_alnum(b) or b == 95 or b == 46) and "_"
  TAG[b] = not (is_alnum(b) or b == 95 or b == 45 or b == 58 or b == 46 or b == 47 or b >= 128)
    and "_"
  JSON[b] = b < 32 and fmt("\\u%04x", b)
end
JSON[34], JSON[92] = '\\"', "\\\\"

-- s with every byte that does not belong to a valid UTF-8 character
-- replaced by "?" (JSON bodies must be UTF-8).
local function utf8_clean(s)
  if not find(s, "[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local b = byte(s, i)
    local len = b < 0x80 and 1 or (b >= 0xC2 and b <= 0xDF) and 2 or (b >= 0xE0 and b <= 0xEF) and 3
      or (b >= 0xF0 and b <= 0xF4) and 4 or 0
    local ok = len > 0
    for k = 1, len - 1 do
      local c = byte(s, i + k)
      local lo, hi = 0x80, 0xBF
      if k == 1 then -- no overlong forms, surrogates or code points past U+10FFFF
        if b == 0xE0 then lo = 0xA0 elseif b == 0xED then hi = 0x9F
        elseif b == 0xF0 then lo = 0x90 elseif b == 0xF4 then hi = 0x8F end
      end
      if not c or c < lo or c > hi then ok = false break end
    end
    if ok then
      out[#out + 1] = sub(s, i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = "?"
      i = i + 1
    end
  end
  return concat(out)
end

-- At most max bytes of s, not cutting a UTF-8 character.
local function cut(s, max)
  if #s <= max then return s end
  local i = max + 1
  while i > 1 and byte(s, i) >= 0x80 and byte(s, i) < 0xC0 do i = i - 1 end
  local r = sub(s, 1, i - 1)
  return r
end

-- (results go through a local: a function called from a hot loop must not
-- end in a tail call, or the JIT aborts the traces that start in it)
local function json(s)
  local j = '"' .. map_bytes(utf8_clean(s), JSON) .. '"'
  return j
end

local function strip_nonletters(s)
  local i = 1
  while i <= #s and not is_letter(byte(s, i)) do i = i + 1 end
  return sub(s, i)
end

-- A metric or check name as Datadog accepts it.
local function dd_name(s)
  s = strip_nonletters(map_bytes(s, NAME))
  if s == "" then s = "unnamed" end
  return sub(s, 1, 200)
end

-- "key:value" (or "key" for an empty value), or nil when nothing is left of the key.
local function dd_tag(k, v)
  k = strip_nonletters(map_bytes(utf8_clean(k), TAG))
  if k == "" then return nil end
  v = map_bytes(utf8_clean(v), TAG)
  return cut(v == "" and k or k .. ":" .. v, 200)
end

---------------------------------------------------------------- per series

-- What a series contributes, built once per id: name, host (JSON or nil)
-- and the tags as a JSON array.
local function series_info(id)
  local se = series(id)
  if not se then return false end
  local tags = {}
  for i = 1, #se.keys do
    local k = se.keys[i]
    if k ~= "host" then
      local t = dd_tag(k, se.tags[k])
      if t then tags[#tags + 1] = '"' .. t .. '"' end
    end
  end
  return { name = se.name, host = se.tags.host and json(se.tags.host) or nil,
           tags = "[" .. concat(tags, ",") .. "]" }
end

-- The start of a series object, up to the "type" field.
local function series_prefix(info, v2)
  if not info then return false end
  local host = ""
  if info.host then
    host = v2 and ',"resources":[{"name":' .. info.host .. ',"type":"host"}]'
      or ',"host":' .. info.host
  end
  return '{"metric":"' .. dd_name(info.name) .. '"' .. host .. ',"tags":' .. info.tags .. ","
end

---------------------------------------------------------------- caches

-- One cache per forwarder (its opts table), rebuilt when the options that
-- shape the body change: per series id the series prefix (pre), the service
-- check prefix (checks), the event title and host/tags parts (ev_name,
-- ev_tail); per text the JSON of a message (texts) and of an event's title
-- and text (ev_title, ev_text); counter and rate state (last value and time
-- per series id); the buffers service checks and events are written to
-- while the series are.
local caches = setmetatable({}, { __mode = "k" })

local WIRE = {
  v1 = { gauge = '"type":"gauge",', count = '"type":"count",', rate = '"type":"rate",',
         open = '"points":[[', mid = ",", tail = "]]}" },
  v2 = { gauge = '"type":3,', count = '"type":1,', rate = '"type":2,',
         open = '"points":[{"timestamp":', mid = ',"value":', tail = "}]}" },
}

local function cache_for(opts)
  local c = caches[opts]
  local ver = opts.api_version
  if c == nil or c.ver ~= ver then
    local w = WIRE[ver]
    if not w then error(("datadog forwarder: unknown api_version '%s' (v1 | v2)"):format(
      tostring(ver)), 0) end
    c = { ver = ver, v2 = ver == "v2", w = w, info = {}, pre = {}, checks = {},
          ev_name = {}, ev_tail = {}, last_v = {}, last_t = {},
          chk = buffer.new(), evt = buffer.new(), eoff = {} }
    caches[opts] = c
  end
  return c
end

-- Texts (health messages, event titles and texts) as JSON, keyed by the raw
-- text: they repeat. Bounded: cleared when TEXTS_MAX entries are held.
local TEXTS_MAX = 4096
local texts, ev_title, ev_text, ntexts = {}, {}, {}, 0

local function cache_texts(t)
  if texts[t] ~= nil then return end
  if ntexts >= TEXTS_MAX then texts, ev_title, ev_text, ntexts = {}, {}, {}, 0 end
  texts[t] = json(cut(t, 4000))
  local nl = find(t, "\n", 1, true)
  -- an event text "title\ntext" splits at its first line break; without one
  -- the title is the sample's name (ev_title false)
  ev_title[t] = nl and json(cut(sub(t, 1, nl - 1), 100)) or false
  ev_text[t] = json(cut(nl and sub(t, nl + 1) or t, 4000))
  ntexts = ntexts + 1
end

local function interval_text(d)
  local s = fmt("%d", d < 1.5 and 1 or floor(d + 0.5))
  return s
end

-- A sample's text (msg or level offset) from the batch's text arena, "" for
-- none (moonstat.encoder's text() without its tail call).
local function sample_text(arena, off)
  if off == 0 then return "" end
  local s = ffi_string(arena + off - 1)
  return s
end

---------------------------------------------------------------- the loop

-- The one hot loop: every sample of the batch from `first` on. Metric
-- samples go to `out` (the series body), health samples to c.chk (service
-- checks), events to c.evt (c.eoff[k]: where event k ends). Everything a
-- series or a text contributes comes from the caches; on the first sample
-- that needs one built the loop returns its index, and the cold step builds
-- it. st carries the state between calls: sep (the separator to write next
-- in the body), limit (where the body is split), wrote (samples in the
-- current split part), split (in a split part), hsep, nh, ne. Returns the
-- index to go on from and true when the body passed the limit and must be
-- split there. (One loop for every kind: a second loop-bearing function in
-- the steady state can be entered by a trace before its loop compiled.)
local function run(batch, out, c, first, n, st)
  local s, arena = batch.s, batch.text
  local pre, checks, lv, lt, w = c.pre, c.checks, c.last_v, c.last_t, c.w
  local ev_name, ev_tail, chk, evt, eoff = c.ev_name, c.ev_tail, c.chk, c.evt, c.eoff
  local t_gauge, t_count, t_rate, open, mid, tail = w.gauge, w.count, w.rate, w.open, w.mid, w.tail
  local sep, limit, wrote, dflt = st.sep, st.limit, st.wrote, st.dflt
  local hsep, nh, ne, events, skip = st.hsep, st.nh, st.ne, st.events, st.skip
  local last_ts, ts_text = -huge, ""
  for i = first, n - 1 do
    local smp = s[i]
    local kind, v = smp.kind, smp.value
    if kind <= RATE then
      if v ~= v or v == huge or v == -huge then
        skip = skip + 1
      else
        local id = smp.series
        local p = pre[id]
        if p == nil then
          st.sep, st.wrote, st.hsep, st.nh, st.ne, st.skip = sep, wrote, hsep, nh, ne, skip
          return i, false
        end
        if p then
          local ts = smp.ts
          local sec = floor(ts)
          if sec ~= last_ts then last_ts, ts_text = sec, fmt("%d", sec) end
          if kind == GAUGE then
            out:put(sep, p, t_gauge, open, ts_text, mid)
            put_number(out, v)
            out:put(tail)
            sep, wrote = ",", wrote + 1
          else
            local pv, pt = lv[id], lt[id]
            lv[id], lt[id] = v, ts
            if kind == COUNTER then
              if pv and v >= pv and ts > pt then
                out:put(sep, p, t_count, '"interval":', interval_text(ts - pt), ",", open, ts_text,
                  mid)
                put_number(out, v - pv)
                out:put(tail)
                sep, wrote = ",", wrote + 1
              end
            else
              local iv = dflt
              if pt and ts > pt then iv = ts - pt end
              out:put(sep, p, t_rate, '"interval":', interval_text(iv), ",", open, ts_text, mid)
              put_number(out, v)
              out:put(tail)
              sep, wrote = ",", wrote + 1
            end
          end
          if #out > limit and i < n - 1 then
            st.sep, st.wrote, st.hsep, st.nh, st.ne, st.skip = sep, wrote, hsep, nh, ne, skip
            return i + 1, true
          end
        end
      end
    elseif kind == EVENT and not events then
      skip = skip + 1
    elseif kind == HEALTH or kind == EVENT then
      local id = smp.series
      local msg = sample_text(arena, smp.msg)
      local m = texts[msg]
      local p
      if kind == HEALTH then p = checks[id] else p = ev_name[id] end
      if p == nil or m == nil then
        st.sep, st.wrote, st.hsep, st.nh, st.ne, st.skip = sep, wrote, hsep, nh, ne, skip
        return i, false
      end
      if p then
        local ts = smp.ts
        local sec = floor(ts)
        if sec ~= last_ts then last_ts, ts_text = sec, fmt("%d", sec) end
        if kind == HEALTH then
          local status = 3
          if sample_text(arena, smp.level) ~= "UNKNOWN" then
            if v == 0 then status = 0 elseif v == 8 then status = 1 elseif v == 16 then status = 2 end
          end
          chk:put(hsep, p, status, ',"timestamp":', ts_text, ',"message":', m, "}")
          hsep, nh = ",", nh + 1
        else
          local title = ev_title[msg]
          if title then evt:put('{"title":', title) else evt:put(p) end
          evt:put(',"text":', ev_text[msg], ',"date_happened":', ts_text, ev_tail[id])
          ne = ne + 1
          eoff[ne] = #evt
        end
      end
    end
  end
  st.sep, st.wrote, st.hsep, st.nh, st.ne, st.skip = sep, wrote, hsep, nh, ne, skip
  return n, false
end

-- The cold step for sample i: build what run() found missing.
local function cold(batch, c, i)
  local smp = batch.s[i]
  local id, kind = smp.series, smp.kind
  local inf = c.info[id]
  if inf == nil then inf = series_info(id); c.info[id] = inf end
  if kind <= RATE then
    c.pre[id] = series_prefix(inf, c.v2)
    return
  end
  cache_texts(sample_text(batch.text, smp.msg))
  if kind == HEALTH and c.checks[id] == nil then
    c.checks[id] = inf and ('{"check":"' .. dd_name(inf.name) .. '","host_name":' ..
      (inf.host or '""') .. ',"tags":' .. inf.tags .. ',"status":') or false
  elseif kind == EVENT and c.ev_name[id] == nil then
    c.ev_name[id] = inf and '{"title":' .. json(cut(inf.name, 100)) or false
    c.ev_tail[id] = inf and ((inf.host and ',"host":' .. inf.host or "") .. ',"tags":' .. inf.tags
      .. ',"alert_type":"info"}') or false
  end
end

-- Series into out (split at max_body into parts for the same endpoint),
-- service checks and events aside; then the check_run part, then one part
-- per event.
local function encode_all(batch, out, opts, parts, c)
  local n = batch.n
  local chk, evt, eoff = c.chk, c.evt, c.eoff
  chk:reset()
  evt:reset()
  local st = { sep = '{"series":[', limit = #out + opts.max_body, max = opts.max_body, wrote = 0,
               split = false, dflt = opts.interval, endpoint = opts.endpoint,
               hsep = "[", nh = 0, ne = 0, events = opts.events, skip = 0 }
  local i, split = run(batch, out, c, 0, n, st)
  while i < n or split do
    if split then -- close this body, go on in a new part for the same endpoint
      out:put("]}")
      if st.split then parts:add(st.wrote) end
      parts:start(st.endpoint, 0)
      st.split, st.sep, st.wrote, st.limit = true, '{"series":[', 0, #out + st.max
    else
      cold(batch, c, i)
    end
    i, split = run(batch, out, c, i, n, st)
  end
  -- (with splits in every batch the loop above gets hot too: the JIT then
  -- tries a trace here, aborts on run's loop inside it and soon leaves it
  -- alone; run's loop is compiled either way. Batches under max_body only
  -- come here for new series and texts.)
  if st.split then parts:add(st.wrote) end
  if st.sep == "," then out:put("]}") end
  if st.nh > 0 then
    parts:start(CHECK_ENDPOINT, st.nh)
    out:putcdata(chk:ref())
    out:put("]")
  end
  local ev, from = evt:ref(), 0
  for k = 1, st.ne do
    local to = eoff[k]
    parts:start(EVENT_ENDPOINT, 1)
    out:putcdata(ev + from, to - from)
    from = to
  end
  return st.skip
end

return {
  transport = "http",
  options = H.options { -- plus user, password, timeout, ca_file, insecure, headers
    api_key = { type = "string", default = "", help = "Datadog API key (sent as DD-API-KEY)" },
    site = { type = "string", default = "datadoghq.com",
             help = "Datadog site: datadoghq.com, datadoghq.eu, us3.datadoghq.com, ..." },
    url = { type = "string", default = "https://api.{site}",
            help = "base URL ({site} is replaced by the site option)" },
    api_version = { type = "string", default = "v1", choices = { "v1", "v2" },
                    help = "series endpoint: v1 (/api/v1/series) or v2 (/api/v2/series)" },
    endpoint = { type = "string", default = "/api/{api_version}/series",
                 help = "path of the series endpoint after url" },
    interval = { type = "number", default = 10,
                 help = "seconds a rate covers when the series has no earlier sample" },
    events = { type = "bool", default = true, help = "send events to /api/v1/events" },
    compress = { type = "string", default = "gzip", choices = { "gzip", "" },
                 help = "request body compression: gzip or \"\" (none)" },
    max_body = { type = "size", default = "3000000",
                 help = "series JSON per request; a larger batch is split" },
    auth_header = { type = "string", default = "DD-API-KEY: {api_key}",
                    help = "header carrying the key (never logged)" },
    content_type = { type = "string", default = "application/json", help = "Content-Type" },
  },
  encode = function(batch, out, opts, parts)
    -- returns the samples JSON cannot carry (NaN, infinities) and the events
    -- left out: counted as moonstat_forwarder_dropped_samples_total{reason="unencodable"}
    local skipped = encode_all(batch, out, opts, parts, cache_for(opts))
    return skipped
  end,
}
