-- moonstat.forwarder: glue between the C forwarder core and an encoder file.
--
-- The host loads forwarders/<type>.lua (which returns a table with
-- `transport`, `options` and `encode`), checks the forwarder's options
-- against `options` (in C, so errors carry config.yaml line:col), and then
-- calls `wrap(mod, opts)` to get the function it calls once per batch:
--   fn(batch_ptr, cbuf)  -- encodes into a reusable string.buffer, then hands
--                        -- the bytes to the C buffer `cbuf` in one FFI call.
-- The encoder is called as encode(batch, out, opts, parts): an encoder that
-- sends one batch to several endpoints calls parts:start(endpoint, nsamples)
-- before writing each further part (include/ms_forwarder.h, "Parts"), and
-- parts:add(n) when it knows a part's count only later; fn then
-- returns the list {offset, endpoint, nsamples, ...} for the C core.
-- encode may return the number of samples it skipped because the format
-- cannot carry them (NaN/Inf values, events); fn returns it second (nil:
-- none) and the core counts them in
-- moonstat_forwarder_dropped_samples_total{reason="unencodable"}.
local ffi = require "ffi"
local buffer = require "string.buffer"
local K = require "moonstat.ffi"
local C = K.C

local new_tab = require "table.new"

local M = {}

-- The `parts` argument of encode: remembers where each part starts in `out`.
local Parts = {}
Parts.__index = Parts

-- What is written to out from now on is a new chunk for `endpoint` (a path
-- with {option} placeholders) that holds `nsamples` of the batch's samples.
function Parts:start(endpoint, nsamples)
  local l, n = self.list, self.n
  l[n + 1], l[n + 2], l[n + 3] = #self.out, endpoint, nsamples or 0
  self.n = n + 3
end

-- Add n samples to the count of the part started last.
function Parts:add(n)
  local l = self.list
  l[self.n] = l[self.n] + n
end

-- Forget the parts of the last batch. The new list is presized to the last
-- one's length: batches alike then never grow it part by part (growing it
-- inside an encoder's loop makes the JIT's traces of that loop unstable).
function Parts:reset()
  if self.n > 0 then self.list, self.n = new_tab(self.n, 0), 0 end
end

-- (no tail call of a builtin: it would abort a trace started here)
function M.parts(out)
  local p = setmetatable({ out = out, list = {}, n = 0 }, Parts)
  return p
end

function M.wrap(mod, opts)
  local out = buffer.new()
  local parts = M.parts(out)
  local encode = mod.encode
  local cast = ffi.cast
  local batch_t = ffi.typeof("ms_batch *")
  return function(bp, cbuf)
    out:reset()
    parts:reset()
    local skipped = encode(cast(batch_t, bp), out, opts, parts)
    local p, len = out:ref()
    if len > 0 and C.ms_ffi_buf_put(cbuf, p, len) ~= 0 then
      error("moonstat: out of memory handing encoded bytes to C", 0)
    end
    if parts.n > 0 then return parts.list, skipped end
    return nil, skipped
  end
end

return M
