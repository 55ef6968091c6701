-- forwarders/prometheus.lua: a Prometheus scrape endpoint.
--
-- moonstat keeps the latest sample of every series and serves them on
-- http://<listen>/metrics in the Prometheus text format (version 0.0.4) each
-- time Prometheus scrapes; /health on the same port answers the checks' state
-- as JSON. Nothing is pushed: Prometheus pulls.
--
--   forwarders:
--     prom: { type: prometheus, listen: "127.0.0.1:9558", expire: 5m }
--
-- Options:
--   listen      host:port of the HTTP endpoint          (default 127.0.0.1:9558)
--   expire      a series not updated for this long disappears from /metrics
--               (default 5m; 0 keeps series forever)
--   max_series  how many series the endpoint holds; samples of new series
--               past it are dropped and counted as failed (default 100000)
--   prefix      prepended to every metric name, e.g. "moonstat_" (default "")
--
-- How a sample is written, e.g. ms.gauge("disk.used %", 42, {mount="/", ["1x"]="a"}):
--
--   # HELP disk_used__ disk.used %
--   # TYPE disk_used__ gauge
--   disk_used__{_1x="a",mount="/"} 42
--
--   name    prefix .. name, every byte outside [a-zA-Z0-9_:] turned into "_"
--           (so "." becomes "_"), and a "_" put first when it starts with a
--           digit: "cpu.user" -> cpu_user, "5xx" -> _5xx.
--   labels  the series' tags, in key order. Keys keep [a-zA-Z0-9_] (other
--           bytes become "_"), get a "_" first when they start with a digit,
--           and a leading "__" (reserved by Prometheus) becomes "_". When two
--           keys end up the same, the first in key order is kept. Values are
--           written as they are, with \ " and newline escaped as \\ \" \n,
--           and bytes that are not valid UTF-8 replaced by U+FFFD.
--   TYPE    counter for ms.counter samples; gauge for gauges, rates
--           (ms.rate) and health values. One "# HELP" and one "# TYPE" line
--           per metric name; HELP holds the original moonstat name. When
--           several moonstat names turn into the same Prometheus name they
--           share one block, whose TYPE comes from the first sample.
--   health  ms.send_special(name, 8, "disk almost full", "WARNING") is a
--           gauge with the value (0 OK, 8 WARNING, 16 ERROR) and the level as
--           one more label: test_health{level="WARNING"} 8. The message is
--           not written (it changes too often to be a label; see /health).
--           A series that already has a "level" tag keeps its own.
--   events  are not written.
--   values  integers without a fraction (42), others with the fewest digits
--           that read back exactly (0.1), NaN, +Inf and -Inf as such.
--   time    no timestamps: Prometheus stamps each value with the scrape
--           time. A series silent for `expire` is no longer served, and
--           Prometheus marks it stale.
--   dups    two series that come out with the same name and labels are
--           written once (the first).
--
-- docs/forwarders/prometheus.md has the details and a prometheus.yml example.
local ffi = require "ffi"
local E = require "moonstat.encoder"
local PN = require "moonstat.promnames"
local metric_name, label_name, utf8_fix = PN.metric_name, PN.label_name, PN.utf8_fix

local series, ffi_string = E.series, ffi.string
local HEALTH, EVENT = E.HEALTH, E.EVENT
local gsub, fmt = string.gsub, string.format
local floor, huge, tonumber, concat = math.floor, math.huge, tonumber, table.concat

---------------------------------------------------------------- text rules


local VALUE_ESC = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }
local HELP_ESC = { ["\\"] = "\\\\", ["\n"] = "\\n" }

local function label_value(s) return (gsub(utf8_fix(s), '[\\"\n]', VALUE_ESC)) end
local function help_text(s) return (gsub(utf8_fix(s), "[\\\n]", HELP_ESC)) end



-- A value as Prometheus reads it: moonstat.encoder's number (integers
-- without a fraction, NaN, +Inf, -Inf, otherwise the shortest %.15g / %.16g /
-- %.17g that reads back). encode has a copy inlined in its loop, because a
-- function called from there could turn hot first and trace on its own;
-- keep the two the same.
local number = E.number

---------------------------------------------------------------- per-series cache

-- Everything a series contributes to its line is built once per series id
-- (ids never change meaning) and kept per prefix. Families (sanitized names)
-- and identities (name + labels) get small integer ids so the per-batch
-- grouping works on arrays.
local states = {}

local function new_state(prefix)
  local st = {
    prefix = prefix, info = {},
    fam_ids = {}, fam_name = {}, fam_help = {}, nfam = 0,
    ident_ids = {}, nident = 0, levels = {},
    -- per-encode scratch, reused: generation numbers avoid clearing
    gen = 0, fgen = {}, head = {}, tail = {}, ftype = {}, order = {}, nxt = {}, seen = {},
  }
  states[prefix] = st
  return st
end

-- Build (and cache) the line parts of series `id`; nil for an unknown id.
local function build(st, id)
  local sr = series(id)
  if sr == nil then return nil end
  local fam = metric_name(st.prefix .. sr.name)
  local fid = st.fam_ids[fam]
  if not fid then
    fid = st.nfam + 1
    st.nfam, st.fam_ids[fam], st.fam_name[fid] = fid, fid, fam
    st.fam_help[fid] = help_text(sr.name)
  end
  local parts, used = {}, {}
  local keys, tags = sr.keys, sr.tags
  for j = 1, #keys do
    local k = keys[j]
    local ln = label_name(k)
    if not used[ln] then
      used[ln] = true
      parts[#parts + 1] = ln .. '="' .. label_value(tags[k]) .. '"'
    end
  end
  local inner = concat(parts, ",")
  local ident = #parts > 0 and (fam .. "{" .. inner .. "}") or fam
  local uid = st.ident_ids[ident]
  if not uid then
    uid = st.nident + 1
    st.nident, st.ident_ids[ident] = uid, uid
  end
  local info = {
    fid = fid, uid = uid,
    line = ident .. " ",                                         -- name{labels}<sp>
    hopen = fam .. "{" .. inner .. (#parts > 0 and "," or ""),  -- health: + level="..."}
    level_ok = not used.level,
  }
  st.info[id] = info
  return info
end

-- Escape a health level and remember it (few distinct words).
local function level_escape(levels, raw)
  local esc = label_value(raw)
  levels[raw] = esc
  return esc
end

local TYPE_NAME = { [0] = "gauge", "counter", "gauge", "gauge" }

---------------------------------------------------------------- encode

local function encode(batch, out, opts)
  local prefix = opts and opts.prefix or ""
  local st = states[prefix] or new_state(prefix)
  local info_t, fgen, head, tail, nxt = st.info, st.fgen, st.head, st.tail, st.nxt
  local ftype, order, seen = st.ftype, st.order, st.seen
  local gen = st.gen + 1
  st.gen = gen
  local s, n, norder = batch.s, batch.n, 0

  -- Pass 1: group samples by family (linked lists through nxt, 1-based
  -- positions, 0 ends a list), skipping events and repeated identities.
  for i = 0, n - 1 do
    local smp = s[i]
    local kind = smp.kind
    if kind ~= EVENT then
      local id = smp.series
      local info = info_t[id]
      if info == nil then info = build(st, id) end
      if info ~= nil and seen[info.uid] ~= gen then
        seen[info.uid] = gen
        local fid, p = info.fid, i + 1
        if fgen[fid] ~= gen then
          fgen[fid] = gen
          norder = norder + 1
          order[norder] = fid
          head[fid] = p
          ftype[fid] = kind
        else
          nxt[tail[fid]] = p
        end
        tail[fid] = p
        nxt[p] = 0
      end
    end
  end

  -- Pass 2: one HELP/TYPE block per family, then its samples. One flat
  -- loop (a nested loop would abort the outer trace): when a family's list
  -- ends, the next family's header is written and its list begins.
  local fam_name, fam_help, levels, btext = st.fam_name, st.fam_help, st.levels, batch.text
  local o, p = 0, 0
  while true do
    if p == 0 then
      o = o + 1
      if o > norder then break end
      local fid = order[o]
      local name = fam_name[fid]
      out:put("# HELP ", name, " ", fam_help[fid], "\n# TYPE ", name, " ",
        TYPE_NAME[ftype[fid]] or "untyped", "\n")
      p = head[fid]
    end
    local smp = s[p - 1]
    local info = info_t[smp.series]
    -- the value, as number() writes it (inlined: see number above)
    local v = smp.value
    local vs
    if v == floor(v) and v < 9007199254740992 and v > -9007199254740992 then
      vs = fmt("%d", v)
    elseif v ~= v then
      vs = "NaN"
    elseif v == huge then
      vs = "+Inf"
    elseif v == -huge then
      vs = "-Inf"
    else
      vs = fmt("%.15g", v)
      if tonumber(vs) ~= v then
        vs = fmt("%.16g", v)
        if tonumber(vs) ~= v then vs = fmt("%.17g", v) end
      end
    end
    local lv = smp.level
    if lv ~= 0 and smp.kind == HEALTH and info.level_ok then
      local raw = ffi_string(btext + lv - 1)
      local esc = levels[raw]
      if esc == nil then esc = level_escape(levels, raw) end
      out:put(info.hopen, 'level="', esc, '"} ', vs, "\n")
    else
      out:put(info.line, vs, "\n")
    end
    p = nxt[p]
  end
end

return {
  transport = "scrape",
  options = {
    listen = { type = "address", default = "127.0.0.1:9558",
               help = "host:port the /metrics and /health endpoint listens on" },
    expire = { type = "duration", default = "5m",
               help = "a series not updated for this long is no longer served (0: never)" },
    max_series = { type = "integer", default = 100000,
                   help = "series the endpoint holds; samples of new series past it are "
                       .. "dropped and counted" },
    prefix = { type = "string", default = "", help = "prepended to every metric name" },
  },
  encode = encode,
  -- for tests
  number = number, metric_name = metric_name, label_name = label_name,
  label_value = label_value,
}
