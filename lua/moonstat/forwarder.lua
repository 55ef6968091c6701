-- moonstat.forwarder: glue between the C forwarder core and an encoder file.
--
-- The host loads forwarders/<type>.lua (which returns a table with
-- `transport`, `options` and `encode`), checks the forwarder's options
-- against `options` (in C, so errors carry config.yaml line:col), and then
-- calls `wrap(mod, opts)` to get the function it calls once per batch:
--   fn(batch_ptr, cbuf)  -- encodes into a reusable string.buffer, then hands
--                        -- the bytes to the C buffer `cbuf` in one FFI call.
local ffi = require "ffi"
local buffer = require "string.buffer"
local K = require "moonstat.ffi"
local C = K.C

local M = {}

function M.wrap(mod, opts)
  local out = buffer.new()
  local encode = mod.encode
  local cast = ffi.cast
  local batch_t = ffi.typeof("ms_batch *")
  return function(bp, cbuf)
    out:reset()
    encode(cast(batch_t, bp), out, opts)
    local p, len = out:ref()
    if len > 0 and C.ms_ffi_buf_put(cbuf, p, len) ~= 0 then
      error("moonstat: out of memory handing encoded bytes to C", 0)
    end
  end
end

return M
