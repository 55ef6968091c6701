/*
 * ms_ffi.h - the flat functions Lua calls through the LuaJIT FFI.
 *
 * Exported from the binary (linked with -Wl,-E). lua/moonstat/ffi.lua holds
 * the matching ffi.cdef; tests/unit/test_ffi.c checks the two agree. Every
 * function takes pointers, lengths and numbers, and returns an int code
 * (MS_OK or a negative MS_E*) where it can fail; error text is static.
 */
#ifndef MS_FFI_H
#define MS_FFI_H

#include <stddef.h>
#include <stdint.h>

#include "ms_sample.h"
#include "ms_series.h"

/* A check's samples of one run (or of every lua/moonstat/check.lua
 * flush_every samples), in one call. `buf` holds n records of text:
 *   kind name \0 (key \0 value \0)* \0 msg \0 level \0 value \0 ts \0 \x1e
 * where kind is one digit (ms_kind), value is a number as strtod reads it,
 * ts the sample's unix time or empty for the run's time, and \x1e ends the
 * record (a NUL inside a string misaligns the fields and is caught). Checks run
 * interpreted, where one string is cheaper to build than C arrays. `check` is
 * the lightuserdata the host put in the check's state. Kind MS_KIND_RATE means
 * "compute the rate from this reading" (no sample on the first reading or a
 * reset). Returns the number of samples kept, or MS_EINVAL for a malformed
 * buffer (a NUL inside a name, tag or message). */
int ms_ffi_check_submit(void *check, const char *buf, size_t len, int n);

/* The series for an id (NULL when unknown). Owned by the series table. */
const ms_series *ms_ffi_series(uint32_t id);

/* The id of series `id` changed: renamed to `name` (NULL: same name), and
 * with tag `key` set to `value` (value NULL: tag removed; key NULL: tags
 * unchanged). Interned like any series (base tags added back), so the result
 * is stable: processors cache it. Returns 0 for an unknown id, an empty name
 * or a full series table (counted there). Implemented in processor.c. */
uint32_t ms_ffi_series_with(uint32_t id, const char *name, size_t name_len, const char *key,
                            size_t klen, const char *value, size_t vlen);

/* Append bytes to a C-owned output buffer (an ms_buf* given to an encoder). */
int ms_ffi_buf_put(void *buf, const char *p, size_t len);

/* Unix time, seconds. */
double ms_ffi_now(void);

/* Log `msg` at level (0 debug .. 3 error), prefixed with `where` (file:line). */
void ms_ffi_log(int level, const char *where, const char *msg);

/* Size or offset of a shared struct or field, by name ("ms_sample",
 * "ms_sample.series", ...), or (size_t)-1 for an unknown name. Lets a test
 * check that lua/moonstat/ffi.lua declares the same layout as the headers. */
size_t ms_ffi_layout(const char *what);

/* Parse helpers shared with config.yaml (0 on success). */
int ms_ffi_parse_duration(const char *s, double *out);
int ms_ffi_parse_size(const char *s, double *out);

#endif
