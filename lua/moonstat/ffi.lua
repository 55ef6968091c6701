-- moonstat.ffi: the C declarations Lua uses through the LuaJIT FFI.
--
-- These mirror include/ms_sample.h, include/ms_series.h and include/ms_ffi.h;
-- tests/unit/test_ffi.c checks that sizes and offsets agree. Load it with
-- `local C, ffi = require "moonstat.ffi"`; it is safe to require many times.
local ffi = require "ffi"

if not pcall(ffi.typeof, "ms_sample") then
  ffi.cdef [[
typedef struct ms_tag { const char *k, *v; uint32_t klen, vlen; } ms_tag;
typedef struct ms_series {
  uint32_t id; uint32_t ntags;
  const char *name; uint32_t name_len; uint32_t key_len;
  const char *key; const ms_tag *tags;
} ms_series;
typedef struct ms_sample {
  double value; double ts;
  uint32_t series; uint32_t msg; uint32_t level;
  uint8_t kind; uint8_t pad[3];
} ms_sample;
typedef struct ms_batch {
  int refs; uint32_t n, cap;
  ms_sample *s;
  char *text; uint32_t text_len, text_cap;
} ms_batch;
int ms_ffi_check_submit(void *check, const char *buf, size_t len, int n);
uint32_t ms_ffi_series_with(uint32_t id, const char *name, size_t name_len, const char *key,
                            size_t klen, const char *value, size_t vlen);
const ms_series *ms_ffi_series(uint32_t id);
int ms_ffi_buf_put(void *buf, const char *p, size_t len);
double ms_ffi_now(void);
void ms_ffi_log(int level, const char *where, const char *msg);
int ms_ffi_parse_duration(const char *s, double *out);
int ms_ffi_parse_size(const char *s, double *out);
]]
end

-- Sample kinds, as in ms_sample.h.
local M = {
  C = ffi.C,
  GAUGE = 0, COUNTER = 1, RATE = 2, HEALTH = 3, EVENT = 4,
  kind_names = { [0] = "gauge", "counter", "rate", "health", "event" },
}
M.kinds = { gauge = 0, counter = 1, rate = 2, health = 3, event = 4 }
return M
