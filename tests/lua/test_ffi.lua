-- test_ffi.lua: lua/moonstat/ffi.lua declares the same struct layouts as the
-- C headers (sizes and every field offset), and the FFI functions resolve.
local ffi = require "ffi"
local T = require "moonstat.testing"
local K = require "moonstat.ffi"
local C = K.C

ffi.cdef [[ size_t ms_ffi_layout(const char *what); ]]

local layout = {
  ms_tag = { "k", "v", "klen", "vlen" },
  ms_series = { "id", "ntags", "name", "name_len", "key_len", "key", "tags" },
  ms_sample = { "value", "ts", "series", "msg", "level", "kind" },
  ms_batch = { "refs", "n", "cap", "s", "text", "text_len", "text_cap" },
}
for struct, fields in pairs(layout) do
  T.eq(tonumber(ffi.sizeof(struct)), tonumber(C.ms_ffi_layout(struct)), "sizeof " .. struct)
  for _, f in ipairs(fields) do
    local name = struct .. "." .. f
    T.eq(tonumber(ffi.offsetof(struct, f)), tonumber(C.ms_ffi_layout(name)), "offsetof " .. name)
  end
end
T.ok(C.ms_ffi_layout("nonsense") == 0xffffffffffffffffULL, "unknown name gives (size_t)-1")

-- the kinds agree with ms_kind_name
for name, k in pairs(K.kinds) do T.ok(K.kind_names[k] == name, "kind " .. name) end

-- every declared function resolves in the binary
for _, fn in ipairs { "ms_ffi_check_submit", "ms_ffi_series", "ms_ffi_series_with",
                      "ms_ffi_buf_put", "ms_ffi_now",
                      "ms_ffi_log", "ms_ffi_parse_duration", "ms_ffi_parse_size" } do
  T.ok(pcall(function() return C[fn] end), fn .. " is exported")
end
local d = ffi.new("double[1]")
T.eq(C.ms_ffi_parse_duration("90s", d), 0, "duration parses")
T.eq(d[0], 90, "90s")
T.eq(C.ms_ffi_parse_size("64MiB", d), 0, "size parses")
T.eq(d[0], 64 * 1048576, "64MiB")
T.ok(math.abs(C.ms_ffi_now() - os.time()) < 2, "now is unix time")

-- a batch built from Lua reads back through the encoder helpers
local enc = require "moonstat.encoder"
local b = T.batch { { name = "x.y", tags = { b = "2", a = "1" }, value = 1.5, kind = "health",
                      msg = "hi", level = "WARNING" } }
local s = b.s[0]
local ser = enc.series(s.series)
T.eq(ser.name, "x.y", "series name")
T.eq(ser.keys[1] .. ser.keys[2], "ab", "tag keys sorted")
T.eq(enc.text(b, s.msg), "hi", "message text")
T.eq(enc.text(b, s.level), "WARNING", "level text")
T.eq(s.kind, K.HEALTH, "kind")
T.eq(enc.number(3), "3", "integer formatting")
T.eq(enc.number(0.1), "0.1", "shortest float formatting")
-- a NUL inside a tag value is refused with a clear error, not misparsed
local s, err = T.run_check("tests/fixtures/lua/checks/nul.lua", {}, 1000)
T.ok(s == nil, "a NUL byte in a tag fails the run")
T.like(err, "NUL byte", "and says why")
T.done()
