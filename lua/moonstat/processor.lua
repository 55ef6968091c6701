-- moonstat.processor: the runtime of processors (docs/processors.md).
--
-- A processor is a file lua/processors/<name>.lua returning either
--   function(s) ... return s end            -- no settings
-- or
--   { settings = { key = default, ... },     -- keys config.yaml may set
--     new = function(settings) return function(s) ... end end }
-- The function gets one sample view `s` and returns it (maybe changed) or nil
-- to drop the sample.
--
-- The view is one FFI struct (ms_pview), reused for every sample, so LuaJIT
-- compiles the processor's function inline into the batch loop:
--   s.value, s.ts          number, read/write
--   s.now                  when this batch is processed (unix seconds), read-only
--   s.kind                 0 gauge, 1 counter, 2 rate, 3 health, 4 event (read-only)
--   s.series               the series id; writing an id (from s.series of an
--                          earlier sample) switches series without a lookup
--   s.name, s.tags         the series' name and tags table (cached per id;
--                          read-only: change them with the methods below)
--   s.message, s.level     texts of health samples and events (or nil)
--   s:rename(name)         switch to the series with this name (same tags)
--   s:tag(k, v)            ... with tag k set to v (added or replaced)
--   s:untag(k)             ... without tag k
--   s.name = "x"           same as s:rename("x")
-- The three methods re-intern the series once per (series, change) and cache
-- the new id, so in the steady state they cost a table lookup. They return s.
--
-- C calls chain(...) once per processor list (config) and then the function
-- it returns once per batch: run(batch_ptr, now) (again with the error as a
-- third argument after a processor raised; see M.run). The loop over the batch is
-- generated Lua with one call site per processor, so each call site sees one
-- function. Dropped samples are compacted away in place; batch.n shrinks.
local ffi = require "ffi"
local K = require "moonstat.ffi"
local E = require "moonstat.encoder"
local C = K.C

if not pcall(ffi.typeof, "ms_pview") then
  ffi.cdef [[
typedef struct ms_pview {
  double value; double ts; double now;
  ms_batch *batch;
  uint32_t series; uint32_t moff; uint32_t loff;
  uint8_t kind;
} ms_pview;
]]
end

local M = {}
local series, text = E.series, E.text
local type, tostring, error, pcall = type, tostring, error, pcall

---------------------------------------------------------------- the view

-- Caches of re-interned ids: rename_c[name][id], tag_c[k][v][id],
-- untag_c[k][id]. Ids never change meaning, so they are never stale. A 0
-- from C (series table full, counted there) is cached too: the sample keeps
-- its series.
local rename_c, tag_c, untag_c = {}, {}, {}

local methods = {}

-- (the FFI call is kept out of line: it runs once per new (series, change))
local function intern_rename(id, name, m)
  local nid = tonumber(C.ms_ffi_series_with(id, name, #name, nil, 0, nil, 0))
  m[id] = nid
  return nid
end

function methods.rename(s, name)
  if type(name) ~= "string" or name == "" then
    error("rename: the name must be a non-empty string", 2)
  end
  local m = rename_c[name]
  if m == nil then
    m = {}
    rename_c[name] = m
  end
  local id = s.series
  local nid = m[id]
  if nid == nil then nid = intern_rename(id, name, m) end
  if nid ~= 0 then s.series = nid end
  return s
end

local function intern_tag(id, k, v, m)
  local nid
  if v == nil then
    nid = tonumber(C.ms_ffi_series_with(id, nil, 0, k, #k, nil, 0))
  else
    nid = tonumber(C.ms_ffi_series_with(id, nil, 0, k, #k, v, #v))
  end
  m[id] = nid
  return nid
end

function methods.tag(s, k, v)
  if type(k) ~= "string" or k == "" then error("tag: the key must be a non-empty string", 2) end
  if type(v) ~= "string" then
    if v == nil then error("tag: no value for " .. k .. " (use s:untag to remove a tag)", 2) end
    v = tostring(v)
  end
  local byk = tag_c[k]
  if byk == nil then
    byk = {}
    tag_c[k] = byk
  end
  local m = byk[v]
  if m == nil then
    m = {}
    byk[v] = m
  end
  local id = s.series
  local nid = m[id]
  if nid == nil then nid = intern_tag(id, k, v, m) end
  if nid ~= 0 then s.series = nid end
  return s
end

function methods.untag(s, k)
  if type(k) ~= "string" then error("untag: the key must be a string", 2) end
  local m = untag_c[k]
  if m == nil then
    m = {}
    untag_c[k] = m
  end
  local id = s.series
  local nid = m[id]
  if nid == nil then nid = intern_tag(id, k, nil, m) end
  if nid ~= 0 then s.series = nid end
  return s
end

local function index(s, k)
  if k == "name" then
    local se = series(s.series)
    return se and se.name
  elseif k == "tags" then
    local se = series(s.series)
    return se and se.tags
  elseif k == "message" then
    local t = text(s.batch, s.moff)
    return t
  elseif k == "level" then
    local t = text(s.batch, s.loff)
    return t
  end
  return methods[k]
end

local function newindex(s, k, v)
  if k == "name" then
    methods.rename(s, v)
    return
  end
  error("sample field '" .. tostring(k) .. "' cannot be set (see docs/processors.md)", 2)
end

local view_t = ffi.metatype("ms_pview", { __index = index, __newindex = newindex })
M.view_t = view_t

-- A view of one sample of a batch (tests and tools; the runtime reuses one).
function M.view(batch, i, now)
  local v = view_t()
  local smp = batch.s[i]
  v.value, v.ts, v.now, v.batch = smp.value, smp.ts, now or C.ms_ffi_now(), batch
  v.series, v.moff, v.loff, v.kind = smp.series, smp.msg, smp.level, smp.kind
  return v
end

---------------------------------------------------------------- loading

-- The sample function of a loaded processor module with its settings
-- (defaults applied here; C has already checked keys and types against the
-- defaults, with config.yaml positions). Errors are the module's own.
function M.instance(mod, settings, name)
  if type(mod) == "function" then
    if settings and next(settings) ~= nil then
      error("processor " .. name .. " takes no settings", 0)
    end
    return mod
  end
  if type(mod) ~= "table" or type(mod.new) ~= "function" then
    error("must return a function of one sample, or a table with new(settings)", 0)
  end
  local st = {}
  for k, d in pairs(mod.settings or {}) do st[k] = d end
  for k, v in pairs(settings or {}) do st[k] = v end
  local fn = mod.new(st)
  if type(fn) ~= "function" then error("new(settings) must return a function", 0) end
  return fn
end

---------------------------------------------------------------- helpers
-- for processor files (the built-ins use them; so may yours)

pcall(ffi.cdef, [[
uint32_t ms_series_intern(const char *name, size_t name_len, const ms_tag *tags, size_t ntags);
]])

-- The id of the series `name` with exactly `tags` (a table k -> v) plus the
-- agent's base tags (host, agent.tags: these cannot be removed, only given
-- another value). 0 when the series table is full. For cold paths: callers
-- cache the result per source series id.
function M.intern(name, tags)
  local list, nt = {}, 0
  for k, v in pairs(tags) do
    nt = nt + 1
    list[nt] = { tostring(k), tostring(v) }
  end
  local ct = ffi.new("ms_tag[?]", nt + 1)
  for i = 1, nt do
    local kv = list[i]
    ct[i - 1].k, ct[i - 1].klen = kv[1], #kv[1]
    ct[i - 1].v, ct[i - 1].vlen = kv[2], #kv[2]
  end
  local id = tonumber(C.ms_series_intern(name, #name, ct, nt))
  return id
end

-- Seconds from a duration setting: a number, or text like "2m", "300s".
function M.duration(v, what)
  if type(v) == "number" then return v end
  local d = ffi.new("double[1]")
  if type(v) ~= "string" or C.ms_ffi_parse_duration(v, d) ~= 0 then
    error(("%s: expected a duration like 2m or 300s, got %s"):format(what, tostring(v)), 0)
  end
  return d[0]
end

-- A glob ("cpu.*", "disk.?.used") as an anchored Lua pattern; each * and ?
-- is a capture (%1, %2, ... in replacements).
function M.glob(g)
  local out = { "^" }
  for i = 1, #g do
    local c = g:sub(i, i)
    if c == "*" then
      out[#out + 1] = "(.*)"
    elseif c == "?" then
      out[#out + 1] = "(.)"
    elseif c:find("[%^%$%(%)%%%.%[%]%+%-]") then
      out[#out + 1] = "%" .. c
    else
      out[#out + 1] = c
    end
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

-- The Lua pattern of a rule's `glob` or `match` key (nil when it has
-- neither; an error when it has both or the pattern is malformed).
function M.pattern(rule, what)
  if rule.glob ~= nil and rule.match ~= nil then
    error(what .. ": give glob or match, not both", 0)
  end
  local pat
  if rule.glob ~= nil then
    pat = M.glob(tostring(rule.glob))
  elseif rule.match ~= nil then
    pat = tostring(rule.match)
  else
    return nil
  end
  local ok, err = pcall(string.find, "", pat)
  if not ok then error(("%s: bad pattern %q: %s"):format(what, pat, tostring(err)), 0) end
  return pat
end

-- A list setting: a table used as is, a single value as a list of one.
function M.list(v)
  if type(v) == "table" then return v end
  if v == nil then return {} end
  return { v }
end

---------------------------------------------------------------- the chain

-- Run a chain function over a batch the way C does: protected, going on
-- after each sample whose processor raised (tests and tools).
function M.run(run, batch, now)
  local ok, err = pcall(run, batch, now)
  while not ok do
    ok, err = pcall(run, batch, now, err)
  end
end

-- Lua source of the batch loop for n processors: one call site each.
local function loop_source(n)
  local src = {}
  local function add(s) src[#src + 1] = s end
  add("local fns, view, pos, counts = ...\n")
  for k = 1, n do add(("local f%d = fns[%d]\n"):format(k, k)) end
  add([[
return function(b, i, j, n)
  local s, v = b.s, view
  while i < n do
    local smp = s[i]
    v.value, v.ts, v.series = smp.value, smp.ts, smp.series
    v.moff, v.loff, v.kind = smp.msg, smp.level, smp.kind
    pos[0], pos[1] = i, j
]])
  -- processor k: if it keeps the sample go on, else count the drop
  for k = 1, n do
    add(("    pos[2] = %d\n    if not f%d(v) then\n"):format(k, k))
    add(("      counts[%d] = counts[%d] + 1\n    else\n"):format(2 * k - 1, 2 * k - 1))
  end
  add([[
      local d = s[j]
      d.value, d.ts, d.series = v.value, v.ts, v.series
      d.msg, d.level, d.kind = v.moff, v.loff, v.kind
      j = j + 1
]])
  for _ = 1, n do add("    end\n") end
  add([[
    i = i + 1
  end
  return j
end
]])
  return table.concat(src)
end

-- Error log lines are rate-limited: at most one per processor every
-- LOG_EVERY seconds, with the number left out since. Kept by place and name
-- ("processors/boom"), so a reload (a new chain) does not reset it.
local LOG_EVERY = 10
local last_log, held = {}, {}

-- Build the per-batch function for a list of processors.
--   fns[k]      the sample functions, in order
--   names[k]    their names (for log lines)
--   drop[k]     true: a sample whose processor raised is dropped; false: it
--               is passed on as it entered the list
--   counts      lightuserdata: C array of 2n doubles, [2k-2] errors and
--               [2k-1] drops of processor k (read by moonstat_processor_*)
--   ctx         where the list is configured ("processors", "forwarders.x")
function M.chain(fns, names, drop, counts, ctx)
  local n = #fns
  local pos = ffi.new("int32_t[3]")
  local cnt = ffi.cast("double *", counts)
  local view = view_t()
  local loop = assert(load(loop_source(n), "=(processor loop " .. ctx .. ")"))(fns, view, pos, cnt)
  local batch_t = ffi.typeof("ms_batch *")
  local function on_error(k, err)
    cnt[2 * k - 2] = cnt[2 * k - 2] + 1
    local now = C.ms_ffi_now()
    local key = ctx .. "/" .. names[k]
    if (last_log[key] or -LOG_EVERY) + LOG_EVERY <= now then
      local more = held[key] or 0
      local msg = tostring(err)
      if more > 0 then msg = msg .. (" (and %d more errors since the last message)"):format(more) end
      msg = msg .. (drop[k] and "; sample dropped" or "; sample passed on unchanged")
      C.ms_ffi_log(3, ctx .. ": processor " .. names[k], msg)
      last_log[key], held[key] = now, 0
    else
      held[key] = (held[key] or 0) + 1
    end
  end
  -- run(batch, now [, err]): err nil starts the batch; after the loop
  -- raised, the caller (C, or T.processors) calls again with the error to
  -- account for the failed sample and go on after it. No pcall in here: a
  -- trace returning into a pcall frame aborts, so protection is the
  -- caller's.
  return function(bp, now, err)
    local b = ffi.cast(batch_t, bp)
    local i, j = 0, 0
    if err == nil then
      view.now, view.batch = now, b
      pos[0], pos[1], pos[2] = 0, 0, 0
    else
      local ei, ej, k = pos[0], pos[1], pos[2]
      if k < 1 then -- not raised by a processor: leave the batch as it is
        C.ms_ffi_log(3, ctx, "processor loop: " .. tostring(err))
        return
      end
      on_error(k, err)
      if drop[k] then
        cnt[2 * k - 1] = cnt[2 * k - 1] + 1
        j = ej
      else
        if ej ~= ei then b.s[ej] = b.s[ei] end
        j = ej + 1
      end
      i = ei + 1
    end
    j = loop(b, i, j, b.n)
    b.n = j
    view.batch = nil
  end
end

return M
