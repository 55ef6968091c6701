/*
 * lua.c - the LuaJIT host (see ms_lua.h): states with an accounting
 * allocator, package.path from paths.lua, script loading with file:line
 * errors, YAML nodes pushed as tables, and the small FFI helpers every state
 * shares (log, buffers, parsing).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>

#include "ms_buf.h"
#include "ms_ffi.h"
#include "ms_log.h"
#include "ms_lua.h"

struct ms_lua {
    lua_State *L;
    size_t used;
    uint64_t limit;
    int enforce;
    int oom;
};

/* The allocator: counts bytes, refuses growth past the limit while enforced. */
static void *ms_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    ms_lua *l = ud;
    if (nsize == 0) {
        if (ptr) l->used -= osize;
        free(ptr);
        return NULL;
    }
    size_t old = ptr ? osize : 0;
    if (l->enforce && l->limit && nsize > old && l->used - old + nsize > l->limit) {
        l->oom = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p) l->used = l->used - old + nsize;
    return p;
}

static int panic_fn(lua_State *L)
{
    ms_log_error("lua panic: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
    abort();
}

/* package.path = "<dir>/?.lua;<dir>/?/init.lua;..." for each lua dir. */
static void set_package_path(lua_State *L, const ms_strlist *dirs)
{
    ms_buf b = MS_BUF_INIT;
    for (size_t i = 0; dirs && i < dirs->n; i++)
        ms_buf_printf(&b, "%s/?.lua;%s/?/init.lua;", dirs->v[i], dirs->v[i]);
    ms_buf_puts(&b, "./?.lua");
    lua_getglobal(L, "package");
    lua_pushlstring(L, b.data ? b.data : "", b.len);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    ms_buf_free(&b);
}

ms_lua *ms_lua_new(const ms_lua_opts *o, ms_error *err)
{
    ms_lua *l = calloc(1, sizeof *l);
    if (!l) {
        ms_error_set(err, MS_ENOMEM, "out of memory creating a Lua state");
        return NULL;
    }
    l->limit = o->memory_limit;
    l->L = lua_newstate(ms_alloc, l);
    if (!l->L) {
        free(l);
        ms_error_set(err, MS_ENOMEM, "cannot create a Lua state");
        return NULL;
    }
    lua_atpanic(l->L, panic_fn);
    luaL_openlibs(l->L);
    if (!o->jit) luaJIT_setmode(l->L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    set_package_path(l->L, o->lua_paths);
    return l;
}

void ms_lua_free(ms_lua *l)
{
    if (!l) return;
    l->enforce = 0;
    lua_close(l->L);
    free(l);
}

lua_State *ms_lua_state(ms_lua *l)
{
    return l->L;
}

size_t ms_lua_mem(const ms_lua *l)
{
    return l->used;
}

uint64_t ms_lua_limit(const ms_lua *l)
{
    return l->limit;
}

void ms_lua_enforce(ms_lua *l, int on)
{
    l->enforce = on;
}

int ms_lua_oom(const ms_lua *l)
{
    return l->oom;
}

void ms_lua_clear_oom(ms_lua *l)
{
    l->oom = 0;
}

ms_lua *ms_lua_from(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

int ms_lua_pcall(lua_State *L, int nargs, int nres, ms_error *err)
{
    int base = lua_gettop(L) - nargs - 1;
    int rc = lua_pcall(L, nargs, nres, 0);
    if (rc == 0) return MS_OK;
    const char *m = lua_tostring(L, -1);
    if (rc == LUA_ERRMEM) m = "not enough memory";
    ms_error_set(err, MS_ELUA, "%s", m ? m : "(error object is not a string)");
    lua_settop(L, base);
    return MS_ELUA;
}

int ms_lua_dofile(lua_State *L, const char *path, int nres, ms_error *err)
{
    int rc = luaL_loadfile(L, path);
    if (rc != 0) {
        const char *m = lua_tostring(L, -1);
        if (rc == LUA_ERRFILE)
            ms_error_set(err, MS_EIO, "%s: cannot read: %s", path, strerror(errno));
        else
            ms_error_set(err, MS_ELUA, "%s", m ? m : "load error");
        lua_pop(L, 1);
        return rc == LUA_ERRFILE ? MS_EIO : MS_ELUA;
    }
    return ms_lua_pcall(L, 0, nres, err);
}

/* Plain scalars that read as numbers or booleans become such in Lua. */
static void push_scalar(lua_State *L, const ms_node *n)
{
    const char *v = n->value ? n->value : "";
    if (n->plain) {
        char *end;
        if (*v) {
            double d = strtod(v, &end);
            if (*end == 0 && (v[0] != '0' || v[1] != 'x')) {
                lua_pushnumber(L, d);
                return;
            }
        }
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) {
            lua_pushboolean(L, 1);
            return;
        }
        if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) {
            lua_pushboolean(L, 0);
            return;
        }
        if (!strcmp(v, "null") || !strcmp(v, "~") || !*v) {
            lua_pushnil(L);
            return;
        }
    }
    lua_pushstring(L, v);
}

void ms_lua_push_node(lua_State *L, const ms_node *n)
{
    if (!n) {
        lua_newtable(L);
        return;
    }
    switch (n->type) {
    case MS_NODE_SCALAR:
        push_scalar(L, n);
        break;
    case MS_NODE_SEQ:
        lua_createtable(L, (int)n->n, 0);
        for (size_t i = 0; i < n->n; i++) {
            ms_lua_push_node(L, n->items[i]);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    case MS_NODE_MAP:
        lua_createtable(L, 0, (int)n->n);
        for (size_t i = 0; i < n->n; i++) {
            ms_lua_push_node(L, n->items[i]);
            lua_setfield(L, -2, n->items[i]->key);
        }
        break;
    }
}

/* ---- FFI helpers shared by every state ---- */

int ms_ffi_buf_put(void *buf, const char *p, size_t len)
{
    return ms_buf_append(buf, p, len);
}

void ms_ffi_log(int level, const char *where, const char *msg)
{
    if (level < MS_LOG_DEBUG) level = MS_LOG_DEBUG;
    if (level > MS_LOG_ERROR) level = MS_LOG_ERROR;
    ms_log_write((ms_log_level)level, "%s: %s", where ? where : "?", msg ? msg : "");
}

int ms_ffi_parse_duration(const char *s, double *out)
{
    return ms_parse_duration(s, out);
}

int ms_ffi_parse_size(const char *s, double *out)
{
    uint64_t v;
    int rc = ms_parse_size(s, &v);
    if (rc == MS_OK) *out = (double)v;
    return rc;
}

#define LAYOUT_SIZE(T)                                                                             \
    {                                                                                              \
#T, sizeof(T)                                                                              \
    }
#define LAYOUT_FIELD(T, f)                                                                         \
    {                                                                                              \
#T "." #f, offsetof(T, f)                                                                  \
    }

size_t ms_ffi_layout(const char *what)
{
    static const struct {
        const char *name;
        size_t v;
    } tab[] = {
        LAYOUT_SIZE(ms_tag),
        LAYOUT_FIELD(ms_tag, k),
        LAYOUT_FIELD(ms_tag, v),
        LAYOUT_FIELD(ms_tag, klen),
        LAYOUT_FIELD(ms_tag, vlen),
        LAYOUT_SIZE(ms_series),
        LAYOUT_FIELD(ms_series, id),
        LAYOUT_FIELD(ms_series, ntags),
        LAYOUT_FIELD(ms_series, name),
        LAYOUT_FIELD(ms_series, name_len),
        LAYOUT_FIELD(ms_series, key_len),
        LAYOUT_FIELD(ms_series, key),
        LAYOUT_FIELD(ms_series, tags),
        LAYOUT_SIZE(ms_sample),
        LAYOUT_FIELD(ms_sample, value),
        LAYOUT_FIELD(ms_sample, ts),
        LAYOUT_FIELD(ms_sample, series),
        LAYOUT_FIELD(ms_sample, msg),
        LAYOUT_FIELD(ms_sample, level),
        LAYOUT_FIELD(ms_sample, kind),
        LAYOUT_SIZE(ms_batch),
        LAYOUT_FIELD(ms_batch, refs),
        LAYOUT_FIELD(ms_batch, n),
        LAYOUT_FIELD(ms_batch, cap),
        LAYOUT_FIELD(ms_batch, s),
        LAYOUT_FIELD(ms_batch, text),
        LAYOUT_FIELD(ms_batch, text_len),
        LAYOUT_FIELD(ms_batch, text_cap),
    };
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (!strcmp(tab[i].name, what)) return tab[i].v;
    return (size_t)-1;
}
