/*
 * processor.c - processor lists (see ms_processor.h): finding and loading
 * lua/processors/<name>.lua, checking settings with config.yaml positions,
 * keeping the last good version of each for reloads, running a list over a
 * batch (one Lua call; the loop is lua/moonstat/processor.lua), counting
 * errors and drops, and the FFI function that re-interns a changed series.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "ms_buf.h"
#include "ms_ffi.h"
#include "ms_log.h"
#include "ms_lua.h"
#include "ms_processor.h"
#include "ms_series.h"
#include "ms_stats.h"

#define MAX_TAGS 256

typedef struct entry {
    char *name, *file;
    struct stat st;
    int ref; /* the sample function, in the registry */
    int drop_on_error;
} entry;

struct ms_procs {
    lua_State *L;
    char *ctx, *forwarder;
    size_t n;
    entry *e;
    double *counts; /* 2n: errors and drops per entry, written by Lua */
    int run_ref;
    int live;
};

/* Last good instance of each (state, place): reused while its file and
 * settings are unchanged, and kept when a reload fails to load it. */
typedef struct last_good {
    struct last_good *next;
    lua_State *L;
    char *key, *file, *sig;
    struct stat st;
    int ref;
} last_good;

static last_good *goods;

static void stats_provider(ms_batch *b, double now, void *ud);

/* ---- series ---- */

uint32_t ms_ffi_series_with(uint32_t id, const char *name, size_t name_len, const char *key,
                            size_t klen, const char *value, size_t vlen)
{
    const ms_series *s = ms_series_get(id);
    if (!s) return 0;
    ms_tag tags[MAX_TAGS + 1];
    size_t nt = 0;
    for (uint32_t i = 0; i < s->ntags && nt < MAX_TAGS; i++) {
        if (key && s->tags[i].klen == klen && !memcmp(s->tags[i].k, key, klen)) continue;
        tags[nt++] = s->tags[i];
    }
    if (key && value) tags[nt++] = (ms_tag){key, value, (uint32_t)klen, (uint32_t)vlen};
    if (!name) {
        name = s->name;
        name_len = s->name_len;
    }
    return ms_series_intern(name, name_len, tags, nt);
}

/* ---- helpers ---- */

/* A canonical text of a settings node (NULL: ""), to see whether it changed. */
static void node_sig(ms_buf *b, const ms_node *n)
{
    if (!n) return;
    switch (n->type) {
    case MS_NODE_SCALAR:
        ms_buf_printf(b, "%c%zu:%s", n->plain ? 'p' : 's', strlen(n->value), n->value);
        break;
    case MS_NODE_SEQ:
        ms_buf_puts(b, "[");
        for (size_t i = 0; i < n->n; i++) node_sig(b, n->items[i]);
        ms_buf_puts(b, "]");
        break;
    case MS_NODE_MAP:
        ms_buf_puts(b, "{");
        for (size_t i = 0; i < n->n; i++) {
            ms_buf_printf(b, "%zu:%s=", strlen(n->items[i]->key), n->items[i]->key);
            node_sig(b, n->items[i]);
        }
        ms_buf_puts(b, "}");
        break;
    }
}

/* The file of processor `name` in the first paths.lua directory that has it
 * (malloc'd), or NULL. */
static char *find_file(const ms_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->paths.lua.n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/processors/%s.lua", cfg->paths.lua.v[i], name);
        struct stat st;
        if (stat(path, &st) == 0) return strdup(path);
    }
    return NULL;
}

static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_size == b->st_size && a->st_ino == b->st_ino;
}

static last_good *find_good(lua_State *L, const char *key)
{
    for (last_good *g = goods; g; g = g->next)
        if (g->L == L && !strcmp(g->key, key)) return g;
    return NULL;
}

/* Remember the function at -1 (not popped) as the last good one of key. */
static void set_good(lua_State *L, const char *key, const char *file, const struct stat *st,
                     const char *sig)
{
    last_good *g = find_good(L, key);
    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g) return;
        g->L = L;
        g->key = strdup(key);
        g->ref = LUA_NOREF;
        g->next = goods;
        goods = g;
    }
    free(g->file);
    free(g->sig);
    g->file = strdup(file);
    g->sig = strdup(sig);
    g->st = *st;
    luaL_unref(L, LUA_REGISTRYINDEX, g->ref);
    lua_pushvalue(L, -1);
    g->ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* ---- loading one processor ---- */

/* Check the settings map `set` against the module at `mod` and push them as
 * a table (drop_on_error left out; it goes to *drop). `pos`/`what` prefix
 * messages. */
static int push_settings(lua_State *L, int mod, const ms_config *cfg, const ms_node *set,
                         const char *what, int *drop, ms_error *err)
{
    lua_newtable(L);
    int tab = lua_gettop(L);
    int is_fn = lua_isfunction(L, mod);
    if (!is_fn) lua_getfield(L, mod, "settings");
    int specs = is_fn ? 0 : lua_gettop(L);
    if (specs && !lua_istable(L, specs)) {
        lua_pop(L, 1);
        specs = 0;
    }
    for (size_t i = 0; set && i < set->n; i++) {
        const ms_node *v = set->items[i];
        if (!strcmp(v->key, "drop_on_error")) {
            if (v->type != MS_NODE_SCALAR || ms_parse_bool(v->value, drop) != MS_OK)
                return ms_error_set(err, MS_EINVAL,
                                    "%s:%d:%d: %s: drop_on_error: expected true or false",
                                    cfg->path, v->line, v->col, what);
            continue;
        }
        int dtype = LUA_TNIL;
        if (specs) {
            lua_getfield(L, specs, v->key);
            dtype = lua_type(L, -1);
            lua_pop(L, 1);
        }
        if (dtype == LUA_TNIL) {
            ms_buf keys = MS_BUF_INIT;
            ms_buf_puts(&keys, "drop_on_error");
            if (specs) {
                lua_pushnil(L);
                while (lua_next(L, specs)) {
                    lua_pop(L, 1);
                    if (lua_type(L, -1) == LUA_TSTRING)
                        ms_buf_printf(&keys, ", %s", lua_tostring(L, -1));
                }
            }
            ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s: unknown setting '%s' (known: %s)",
                         cfg->path, v->key_line, v->key_col, what, v->key, keys.data);
            ms_buf_free(&keys);
            return MS_EINVAL;
        }
        ms_lua_push_node(L, v);
        int got = lua_type(L, -1);
        const char *want = NULL;
        if (dtype == LUA_TTABLE && got != LUA_TTABLE && got != LUA_TNIL)
            want = "a list or a map";
        else if (dtype == LUA_TNUMBER && got != LUA_TNUMBER)
            want = "a number";
        else if (dtype == LUA_TBOOLEAN && got != LUA_TBOOLEAN)
            want = "true or false";
        else if (dtype == LUA_TSTRING && v->type != MS_NODE_SCALAR)
            want = "a string";
        if (want)
            return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s.%s: expected %s", cfg->path, v->line,
                                v->col, what, v->key, want);
        if (dtype == LUA_TSTRING && got != LUA_TSTRING) { /* 10 -> "10" */
            lua_pop(L, 1);
            lua_pushstring(L, v->value);
        }
        lua_setfield(L, tab, v->key);
    }
    if (specs) lua_remove(L, specs);
    return MS_OK;
}

/* Load `file` and make its sample function with settings `set`; leaves the
 * function at -1. Errors carry the file's line or config.yaml's line:col. */
static int load_one(lua_State *L, const ms_config *cfg, const char *file, const char *name,
                    const ms_node *set, const char *what, int *drop, ms_error *err)
{
    int top = lua_gettop(L);
    int rc = ms_lua_dofile(L, file, 1, err);
    if (rc != MS_OK) return rc;
    int mod = lua_gettop(L);
    if (!lua_isfunction(L, mod) && !lua_istable(L, mod)) {
        lua_settop(L, top);
        return ms_error_set(err, MS_ELUA,
                            "%s: must return a function of one sample, or a table with "
                            "new(settings)",
                            file);
    }
    lua_getglobal(L, "require");
    lua_pushstring(L, "moonstat.processor");
    if ((rc = ms_lua_pcall(L, 1, 1, err)) != MS_OK) {
        lua_settop(L, top);
        return rc;
    }
    lua_getfield(L, -1, "instance");
    lua_pushvalue(L, mod);
    if ((rc = push_settings(L, mod, cfg, set, what, drop, err)) != MS_OK) {
        lua_settop(L, top);
        return rc;
    }
    lua_pushstring(L, name);
    ms_error e2 = {0};
    if (ms_lua_pcall(L, 3, 1, &e2) != MS_OK) {
        lua_settop(L, top);
        return ms_error_set(err, MS_ELUA, "%s: %s", what, e2.msg);
    }
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return MS_OK;
}

/* ---- lists ---- */

/* Build the Lua per-batch function for p's entries. */
static int make_runner(ms_procs *p, ms_error *err)
{
    lua_State *L = p->L;
    int top = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "moonstat.processor");
    int rc = ms_lua_pcall(L, 1, 1, err);
    if (rc != MS_OK) return rc;
    lua_getfield(L, -1, "chain");
    lua_createtable(L, (int)p->n, 0);
    lua_createtable(L, (int)p->n, 0);
    lua_createtable(L, (int)p->n, 0);
    for (size_t i = 0; i < p->n; i++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->e[i].ref);
        lua_rawseti(L, -4, (int)i + 1);
        lua_pushstring(L, p->e[i].name);
        lua_rawseti(L, -3, (int)i + 1);
        lua_pushboolean(L, p->e[i].drop_on_error);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_pushlightuserdata(L, p->counts);
    lua_pushstring(L, p->ctx);
    rc = ms_lua_pcall(L, 5, 1, err);
    if (rc == MS_OK) p->run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, top);
    return rc;
}

/* Name and settings of list item `it` ("name" or {name: settings}). */
static int parse_item(const ms_config *cfg, const ms_node *it, const char *what, const char **name,
                      const ms_node **set, ms_error *err)
{
    *set = NULL;
    if (it->type == MS_NODE_SCALAR) {
        *name = it->value;
    } else if (it->type == MS_NODE_MAP && it->n == 1) {
        *name = it->items[0]->key;
        *set = it->items[0];
        if (ms_node_is_null(*set)) {
            *set = NULL;
        } else if ((*set)->type != MS_NODE_MAP) {
            return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s: settings of %s must be a map",
                                cfg->path, (*set)->line, (*set)->col, what, *name);
        }
    } else {
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: %s: expected a processor name or a map of one name to its "
                            "settings",
                            cfg->path, it->line, it->col, what);
    }
    if (!**name || strchr(*name, '/') || strchr(*name, '.'))
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s: bad processor name '%s'", cfg->path,
                            it->line, it->col, what, *name);
    return MS_OK;
}

int ms_procs_new(lua_State *L, const ms_config *cfg, const ms_node *list, const char *ctx,
                 const char *forwarder, int live, int reload, ms_procs **out, ms_error *err)
{
    *out = NULL;
    if (!list || ms_node_is_null(list) || (list->type == MS_NODE_SEQ && list->n == 0)) return MS_OK;
    if (list->type != MS_NODE_SEQ)
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s: expected a list", cfg->path, list->line,
                            list->col, ctx);
    ms_procs *p = calloc(1, sizeof *p);
    if (!p) return ms_error_set(err, MS_ENOMEM, "out of memory");
    p->L = L;
    p->ctx = strdup(ctx);
    p->forwarder = forwarder ? strdup(forwarder) : NULL;
    p->run_ref = LUA_NOREF;
    p->e = calloc(list->n, sizeof *p->e);
    p->counts = calloc(2 * list->n + 1, sizeof *p->counts);
    if (!p->ctx || !p->e || !p->counts) {
        ms_procs_free(p);
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    int rc = MS_OK;
    for (size_t i = 0; i < list->n; i++) {
        const ms_node *it = list->items[i];
        const char *name = NULL;
        const ms_node *set = NULL;
        char what[512], key[1024];
        snprintf(what, sizeof what, "%s[%zu]", ctx, i);
        if ((rc = parse_item(cfg, it, what, &name, &set, err)) != MS_OK) goto fail;
        snprintf(what, sizeof what, "%s[%zu] %s", ctx, i, name);
        size_t occ = 0; /* the same processor may be listed twice */
        for (size_t j = 0; j < p->n; j++) occ += !strcmp(p->e[j].name, name);
        snprintf(key, sizeof key, "%s/%s#%zu", ctx, name, occ);
        entry *e = &p->e[p->n];
        e->drop_on_error = cfg->agent.processor_drop_on_error;
        e->ref = LUA_NOREF;
        e->name = strdup(name);
        ms_buf sig = MS_BUF_INIT;
        ms_buf_puts(&sig, "");
        node_sig(&sig, set);
        char *file = find_file(cfg, name);
        last_good *g = find_good(L, key);
        ms_error lerr = {0};
        int lrc = MS_OK;
        if (!file) {
            lrc = ms_error_set(&lerr, MS_ENOENT,
                               "%s:%d:%d: %s: no processors/%s.lua in the paths.lua directories",
                               cfg->path, it->line, it->col, what, name);
        } else {
            stat(file, &e->st);
            e->file = file;
            if (g && !strcmp(g->file, file) && same_stat(&g->st, &e->st) &&
                !strcmp(g->sig, sig.data)) {
                /* unchanged: the same instance, caches and all */
                int drop = e->drop_on_error;
                for (size_t k = 0; set && k < set->n; k++)
                    if (!strcmp(set->items[k]->key, "drop_on_error"))
                        ms_parse_bool(set->items[k]->value, &drop);
                e->drop_on_error = drop;
                lua_rawgeti(L, LUA_REGISTRYINDEX, g->ref);
                e->ref = luaL_ref(L, LUA_REGISTRYINDEX);
            } else if ((lrc = load_one(L, cfg, file, name, set, what, &e->drop_on_error, &lerr)) ==
                       MS_OK) {
                set_good(L, key, file, &e->st, sig.data);
                e->ref = luaL_ref(L, LUA_REGISTRYINDEX);
            }
        }
        ms_buf_free(&sig);
        if (lrc != MS_OK) {
            if (!reload || !g) {
                *err = lerr; /* nothing to keep: the caller keeps what it runs */
                rc = lrc;
                free(e->name);
                free(e->file);
                goto fail;
            }
            /* loaded before: keep that version */
            ms_log_error("%s (keeping the previous version of %s)", lerr.msg, name);
            lua_rawgeti(L, LUA_REGISTRYINDEX, g->ref);
            e->ref = luaL_ref(L, LUA_REGISTRYINDEX);
            if (!e->file) {
                e->file = strdup(g->file);
                e->st = g->st;
            }
        }
        p->n++;
    }
    if (p->n == 0) {
        ms_procs_free(p);
        return MS_OK;
    }
    if ((rc = make_runner(p, err)) != MS_OK) goto fail;
    p->live = live;
    if (live) ms_stats_register(stats_provider, p);
    *out = p;
    return MS_OK;
fail:
    ms_procs_free(p);
    return rc;
}

ms_batch *ms_procs_apply(ms_procs *p, ms_batch *b)
{
    if (!p || !b || b->n == 0) return b;
    if (b->refs > 1) { /* shared: work on a copy */
        ms_batch *c = ms_batch_new(b->n);
        if (!c || ms_batch_append(c, b) != MS_OK) {
            ms_log_error("%s: out of memory copying a batch of %u samples; dropped", p->ctx, b->n);
            ms_batch_unref(c);
            ms_batch_unref(b);
            return NULL;
        }
        ms_batch_unref(b);
        b = c;
    }
    lua_State *L = p->L;
    double now = ms_now();
    int top = lua_gettop(L);
    /* run(b, now): on an error (a processor raised; Lua knows which sample)
     * call again with the message, to count it and go on after that sample */
    for (uint32_t tries = 0; tries <= b->n + 1; tries++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->run_ref);
        lua_pushlightuserdata(L, b);
        lua_pushnumber(L, now);
        int nargs = 2;
        if (tries > 0) {
            lua_pushvalue(L, top + 1);
            lua_remove(L, top + 1);
            nargs = 3;
        }
        if (lua_pcall(L, nargs, 0, 0) == 0) break; /* the error stays at top + 1 */
    }
    lua_settop(L, top);
    return b;
}

int ms_procs_changed(const ms_procs *p, const ms_config *cfg)
{
    for (size_t i = 0; p && i < p->n; i++) {
        char *file = find_file(cfg, p->e[i].name);
        struct stat st;
        int same = file && p->e[i].file && !strcmp(file, p->e[i].file) && stat(file, &st) == 0 &&
                   same_stat(&st, &p->e[i].st);
        free(file);
        if (!same) return 1;
    }
    return 0;
}

void ms_procs_free(ms_procs *p)
{
    if (!p) return;
    if (p->live) ms_stats_unregister(stats_provider, p);
    for (size_t i = 0; i < p->n; i++) {
        luaL_unref(p->L, LUA_REGISTRYINDEX, p->e[i].ref);
        free(p->e[i].name);
        free(p->e[i].file);
    }
    if (p->L) luaL_unref(p->L, LUA_REGISTRYINDEX, p->run_ref);
    free(p->e);
    free(p->counts);
    free(p->ctx);
    free(p->forwarder);
    free(p);
}

void ms_procs_forget(lua_State *L)
{
    for (last_good **pp = &goods; *pp;) {
        last_good *g = *pp;
        if (g->L != L) {
            pp = &g->next;
            continue;
        }
        *pp = g->next;
        luaL_unref(L, LUA_REGISTRYINDEX, g->ref);
        free(g->key);
        free(g->file);
        free(g->sig);
        free(g);
    }
}

/* moonstat_processor_errors_total / _dropped_total per processor name (the
 * entries of one name summed), tagged with the forwarder for its own list. */
static void stats_provider(ms_batch *b, double now, void *ud)
{
    ms_procs *p = ud;
    for (size_t i = 0; i < p->n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++) seen |= !strcmp(p->e[j].name, p->e[i].name);
        if (seen) continue;
        double errs = 0, drops = 0;
        for (size_t j = i; j < p->n; j++) {
            if (strcmp(p->e[j].name, p->e[i].name)) continue;
            errs += p->counts[2 * j];
            drops += p->counts[2 * j + 1];
        }
        const char *kv[] = {"processor", p->e[i].name, p->forwarder ? "forwarder" : NULL,
                            p->forwarder, NULL};
        ms_stats_add(b, "moonstat_processor_errors_total", MS_KIND_COUNTER, errs, now, kv);
        ms_stats_add(b, "moonstat_processor_dropped_total", MS_KIND_COUNTER, drops, now, kv);
    }
}
