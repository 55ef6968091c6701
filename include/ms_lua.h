/*
 * ms_lua.h - the LuaJIT host: states with accounted memory, the moonstat
 * module, script loading with file:line errors, YAML nodes as Lua tables.
 *
 * Two kinds of state:
 *  - check states: one per check, JIT off (so the instruction hook that
 *    enforces timeouts and time slices always runs), heap capped by
 *    memory_limit through our allocator.
 *  - the pipeline state: one on the main thread, JIT on, for encoders and
 *    processors, where the hot loops live.
 * Each state's package.path is paths.lua (`<dir>/?.lua;<dir>/?/init.lua`).
 */
#ifndef MS_LUA_H
#define MS_LUA_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "ms_config.h"
#include "ms_err.h"

typedef struct ms_lua ms_lua;

typedef struct ms_lua_opts {
    int jit;                     /* 1: JIT on; 0: interpreter only */
    uint64_t memory_limit;       /* bytes; 0 = none */
    const ms_strlist *lua_paths; /* package.path roots (absolute), may be NULL */
} ms_lua_opts;

/* New state with the standard libraries and package.path set. Caller owns it
 * (ms_lua_free). NULL with err on failure. */
ms_lua *ms_lua_new(const ms_lua_opts *o, ms_error *err);
void ms_lua_free(ms_lua *l);
lua_State *ms_lua_state(ms_lua *l);

/* Memory accounting: bytes in use now, the limit, and whether an allocation
 * was refused since the last ms_lua_clear_oom. The limit is enforced only
 * while ms_lua_enforce(l, 1) is on (while script code runs), so the host's own
 * calls never fail on the limit. */
size_t ms_lua_mem(const ms_lua *l);
uint64_t ms_lua_limit(const ms_lua *l);
void ms_lua_enforce(ms_lua *l, int on);
int ms_lua_oom(const ms_lua *l);
void ms_lua_clear_oom(ms_lua *l);

/* The ms_lua that owns L (stored in the allocator's userdata). */
ms_lua *ms_lua_from(lua_State *L);

/* Load `path` as a chunk and call it with no arguments, leaving `nres`
 * results on the stack. Errors come back as "path:line: message". */
int ms_lua_dofile(lua_State *L, const char *path, int nres, ms_error *err);

/* lua_pcall with a traceback-free handler that keeps "file:line: message";
 * on error the message is in err and the stack is restored to its level
 * before the function was pushed. */
int ms_lua_pcall(lua_State *L, int nargs, int nres, ms_error *err);

/* Push a YAML node as a Lua value: maps as tables, sequences as arrays, plain
 * scalars that look like numbers/booleans as such, others as strings. NULL
 * pushes an empty table. */
void ms_lua_push_node(lua_State *L, const ms_node *n);

#endif
