/*
 * forwarder.c - the forwarder core (see ms_forwarder.h): loads the Lua
 * encoder, checks the forwarder's options against the encoder's declared
 * options (errors carry config.yaml line:col), encodes batches into a bounded
 * queue of chunks, and counts what was sent, failed and dropped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <uv.h>

#include "ms_forwarder.h"
#include "ms_log.h"
#include "ms_lua.h"
#include "ms_processor.h"
#include "ms_stats.h"

static const ms_transport *const transports[] = {
    &ms_transport_tcp,
    &ms_transport_file,
    &ms_transport_scrape,
    &ms_transport_http,
};

struct ms_forwarder {
    char *name, *type, *file;
    struct stat st; /* encoder file identity */
    const ms_node *section;
    const ms_transport *tp;
    void *tpdata;
    uv_loop_t *loop;
    lua_State *L;
    int encode_ref, opts_ref;
    size_t nopt;
    char **opt_k, **opt_v; /* options as text, for transports */
    ms_chunk *head, *tail;
    int head_busy;
    size_t qbytes;
    uint64_t qlimit;
    uint64_t sent, failed, dropped, encode_errors;
    int stopping;
    void (*done)(ms_forwarder *);
    uv_timer_t drain;
    int drain_on;
    double drain_until;
    ms_buf enc;
    ms_procs *procs; /* this forwarder's own processors, or NULL */
};

const ms_transport *ms_transport_find(const char *name)
{
    for (size_t i = 0; i < sizeof transports / sizeof *transports; i++)
        if (!strcmp(transports[i]->name, name)) return transports[i];
    return NULL;
}

static void stats_provider(ms_batch *b, double now, void *ud);

/* ---- options ---- */

static int add_opt(ms_forwarder *f, const char *k, const char *v)
{
    char **nk = realloc(f->opt_k, (f->nopt + 1) * sizeof *nk);
    if (!nk) return MS_ENOMEM;
    f->opt_k = nk;
    char **nv = realloc(f->opt_v, (f->nopt + 1) * sizeof *nv);
    if (!nv) return MS_ENOMEM;
    f->opt_v = nv;
    f->opt_k[f->nopt] = strdup(k);
    f->opt_v[f->nopt] = strdup(v);
    f->nopt++;
    return MS_OK;
}

static int is_core_key(const char *k)
{
    return !strcmp(k, "type") || !strcmp(k, "enabled") || !strcmp(k, "buffer_size") ||
           !strcmp(k, "processors");
}

/* Convert the scalar text `v` (from config or a default) to the option's
 * type, push it on L and record its text form. `pos` names where it came from. */
static int push_option(ms_forwarder *f, const char *key, const char *type, const ms_node *node,
                       const char *pos, ms_error *err)
{
    lua_State *L = f->L;
    if (!strcmp(type, "list") || !strcmp(type, "map")) {
        ms_node_type want = !strcmp(type, "list") ? MS_NODE_SEQ : MS_NODE_MAP;
        if (node && node->type != want)
            return ms_error_set(err, MS_EINVAL, "%s: forwarders.%s.%s: expected a %s", pos, f->name,
                                key, type);
        ms_lua_push_node(L, node);
        if (node && want == MS_NODE_MAP) { /* text form for transports: "key: value\n" lines */
            ms_buf t = MS_BUF_INIT;
            for (size_t i = 0; i < node->n; i++)
                if (node->items[i]->type == MS_NODE_SCALAR)
                    ms_buf_printf(&t, "%s: %s\n", node->items[i]->key, node->items[i]->value);
            int rc = add_opt(f, key, t.data ? t.data : "");
            ms_buf_free(&t);
            return rc;
        }
        return MS_OK;
    }
    if (node && node->type != MS_NODE_SCALAR)
        return ms_error_set(err, MS_EINVAL, "%s: forwarders.%s.%s: expected a %s, got a %s", pos,
                            f->name, key, type, node->type == MS_NODE_MAP ? "map" : "list");
    const char *v = node ? node->value : NULL, *orig = v;
    char text[64];
    if (!v) { /* default from Lua, already converted by the encoder author: take as is */
        lua_pushnil(L);
        return MS_OK;
    }
    int rc = MS_OK;
    if (!strcmp(type, "string")) {
        lua_pushstring(L, v);
    } else if (!strcmp(type, "number") || !strcmp(type, "integer")) {
        char *end;
        double d = strtod(v, &end);
        if (!*v || *end || (!strcmp(type, "integer") && d != (double)(long long)d)) rc = MS_EINVAL;
        lua_pushnumber(L, d);
    } else if (!strcmp(type, "bool")) {
        int b = 0;
        rc = ms_parse_bool(v, &b);
        lua_pushboolean(L, b);
        v = b ? "true" : "false";
    } else if (!strcmp(type, "duration")) {
        double d = 0;
        rc = ms_parse_duration(v, &d);
        lua_pushnumber(L, d);
        snprintf(text, sizeof text, "%.17g", d);
        v = text;
    } else if (!strcmp(type, "size")) {
        uint64_t s = 0;
        rc = ms_parse_size(v, &s);
        lua_pushnumber(L, (double)s);
        snprintf(text, sizeof text, "%llu", (unsigned long long)s);
        v = text;
    } else if (!strcmp(type, "address")) {
        char host[256];
        int port;
        rc = ms_parse_address(v, host, sizeof host, &port);
        lua_pushstring(L, v);
    } else {
        lua_pushstring(L, v);
        return ms_error_set(err, MS_EINVAL, "%s: encoder option %s has unknown type '%s'", f->file,
                            key, type);
    }
    if (rc != MS_OK) {
        lua_pop(L, 1);
        return ms_error_set(err, MS_EINVAL, "%s: forwarders.%s.%s: expected %s %s, got '%s'", pos,
                            f->name, key, !strcmp(type, "address") ? "an" : "a", type, orig);
    }
    return add_opt(f, key, v);
}

/* When the option's spec (at index spec) lists `choices`, the value at -1
 * must be one of them. */
static int check_choice(ms_forwarder *f, const char *key, int spec, const char *pos, ms_error *err)
{
    lua_State *L = f->L;
    lua_getfield(L, spec, "choices");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return MS_OK;
    }
    ms_buf list = MS_BUF_INIT;
    int found = 0;
    for (int i = 1;; i++) {
        lua_rawgeti(L, -1, i);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        found |= lua_rawequal(L, -1, -3);
        ms_buf_printf(&list, "%s%s", i > 1 ? ", " : "", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    int rc = MS_OK;
    if (!found)
        rc = ms_error_set(err, MS_EINVAL, "%s: forwarders.%s.%s: '%s' is not one of: %s", pos,
                          f->name, key, lua_tostring(L, -1), list.data ? list.data : "");
    ms_buf_free(&list);
    return rc;
}

/* Text of a Lua default (at -1) as a scalar node, for conversion. */
static int default_node(lua_State *L, ms_node *tmp, char *buf, size_t cap)
{
    memset(tmp, 0, sizeof *tmp);
    tmp->type = MS_NODE_SCALAR;
    tmp->plain = 1;
    tmp->value = buf;
    if (lua_type(L, -1) == LUA_TBOOLEAN)
        snprintf(buf, cap, "%s", lua_toboolean(L, -1) ? "true" : "false");
    else if (lua_type(L, -1) == LUA_TNUMBER)
        snprintf(buf, cap, "%.17g", lua_tonumber(L, -1));
    else if (lua_isstring(L, -1))
        snprintf(buf, cap, "%s", lua_tostring(L, -1));
    else
        return 0;
    return 1;
}

/* Build the options table: every declared option from the section or its
 * default; unknown keys in the section are errors. Leaves it at -1. */
static int build_options(ms_forwarder *f, int mod, const ms_config *cfg, ms_error *err)
{
    lua_State *L = f->L;
    const ms_node *sec = f->section;
    char pos[512];
    lua_getfield(L, mod, "options");
    int specs = lua_gettop(L);
    if (!lua_istable(L, specs)) {
        lua_pop(L, 1);
        lua_newtable(L);
        specs = lua_gettop(L);
    }
    for (size_t i = 0; sec && sec->type == MS_NODE_MAP && i < sec->n; i++) {
        const ms_node *v = sec->items[i];
        if (is_core_key(v->key)) continue;
        lua_getfield(L, specs, v->key);
        int known = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!known) {
            ms_buf keys = MS_BUF_INIT;
            lua_pushnil(L);
            while (lua_next(L, specs)) {
                lua_pop(L, 1);
                ms_buf_printf(&keys, "%s%s", keys.len ? ", " : "", lua_tostring(L, -1));
            }
            ms_error_set(err, MS_EINVAL,
                         "%s:%d:%d: forwarders.%s: unknown option '%s' for type %s (known: type, "
                         "enabled, buffer_size, processors%s%s)",
                         cfg->path, v->key_line, v->key_col, f->name, v->key, f->type,
                         keys.len ? ", " : "", keys.len ? keys.data : "");
            ms_buf_free(&keys);
            return MS_EINVAL;
        }
    }
    lua_newtable(L);
    int opts = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, specs)) {
        const char *key = lua_tostring(L, -2);
        const char *type = "string";
        int spec = lua_gettop(L);
        if (lua_istable(L, spec)) {
            lua_getfield(L, spec, "type");
            if (lua_isstring(L, -1)) type = lua_tostring(L, -1);
            lua_pop(L, 1);
            lua_getfield(L, spec, "default");
        } else {
            if (lua_type(L, spec) == LUA_TNUMBER) type = "number";
            if (lua_type(L, spec) == LUA_TBOOLEAN) type = "bool";
            lua_pushvalue(L, spec);
        }
        const ms_node *node = ms_node_get(sec, key);
        ms_node tmp;
        char buf[512];
        int rc;
        if (node) {
            snprintf(pos, sizeof pos, "%s:%d:%d", cfg->path, node->line, node->col);
            lua_pop(L, 1);
            rc = push_option(f, key, type, node, pos, err);
        } else if (default_node(L, &tmp, buf, sizeof buf)) {
            lua_pop(L, 1);
            snprintf(pos, sizeof pos, "%s (default of %s)", f->file, key);
            rc = push_option(f, key, type, &tmp, pos, err);
        } else {
            rc = MS_OK; /* table or nil default: as the encoder wrote it */
        }
        if (rc != MS_OK) return rc;
        if (lua_istable(L, spec) && (rc = check_choice(f, key, spec, pos, err)) != MS_OK) return rc;
        lua_setfield(L, opts, key);
        lua_settop(L, spec - 1);
    }
    lua_remove(L, specs);
    return MS_OK;
}

/* ---- creation ---- */

static char *find_encoder(const ms_config *cfg, const char *type)
{
    for (size_t i = 0; i < cfg->paths.forwarders.n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.lua", cfg->paths.forwarders.v[i], type);
        struct stat st;
        if (stat(path, &st) == 0) return strdup(path);
    }
    return NULL;
}

int ms_forwarder_new(uv_loop_t *loop, lua_State *L, const ms_config *cfg, const char *name,
                     const ms_node *section, ms_forwarder **out, ms_error *err)
{
    const ms_node *tn = ms_node_get(section, "type");
    if (!tn || tn->type != MS_NODE_SCALAR || !tn->value[0])
        return ms_error_set(
            err, MS_EINVAL, "%s:%d:%d: forwarders.%s: needs a type (a file in forwarders/)",
            cfg->path, section ? section->line : 0, section ? section->col : 0, name);
    if (strchr(tn->value, '/') || strchr(tn->value, '.'))
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: forwarders.%s: bad type '%s'", cfg->path,
                            tn->line, tn->col, name, tn->value);
    ms_forwarder *f = calloc(1, sizeof *f);
    if (!f) return ms_error_set(err, MS_ENOMEM, "out of memory");
    f->name = strdup(name);
    f->type = strdup(tn->value);
    f->section = section;
    f->loop = loop;
    f->L = L;
    f->encode_ref = f->opts_ref = LUA_NOREF;
    f->qlimit = 64u << 20;
    int rc = MS_OK;
    const ms_node *bs = ms_node_get(section, "buffer_size");
    if (bs && (bs->type != MS_NODE_SCALAR || ms_parse_size(bs->value, &f->qlimit) != MS_OK)) {
        rc = ms_error_set(err, MS_EINVAL,
                          "%s:%d:%d: forwarders.%s.buffer_size: expected a size like 64MiB",
                          cfg->path, bs->line, bs->col, name);
        goto fail;
    }
    f->file = find_encoder(cfg, f->type);
    if (!f->file) {
        rc =
            ms_error_set(err, MS_ENOENT,
                         "%s:%d:%d: forwarders.%s: no encoder %s.lua in the forwarders directories",
                         cfg->path, tn->line, tn->col, name, f->type);
        goto fail;
    }
    stat(f->file, &f->st);
    int top = lua_gettop(L);
    if ((rc = ms_lua_dofile(L, f->file, 1, err)) != MS_OK) goto fail;
    int mod = lua_gettop(L);
    if (!lua_istable(L, mod)) {
        rc = ms_error_set(err, MS_ELUA, "%s: must return a table", f->file);
        goto fail_lua;
    }
    lua_getfield(L, mod, "transport");
    f->tp = lua_isstring(L, -1) ? ms_transport_find(lua_tostring(L, -1)) : NULL;
    if (!f->tp) {
        rc = ms_error_set(err, MS_EINVAL, "%s: transport '%s' is not one moonstat has", f->file,
                          lua_isstring(L, -1) ? lua_tostring(L, -1) : "(none)");
        goto fail_lua;
    }
    lua_pop(L, 1);
    lua_getfield(L, mod, "encode");
    int has_encode = lua_isfunction(L, -1);
    lua_pop(L, 1);
    if (!has_encode) {
        rc = ms_error_set(err, MS_ELUA, "%s: has no encode function", f->file);
        goto fail_lua;
    }
    if ((rc = build_options(f, mod, cfg, err)) != MS_OK) goto fail_lua;
    lua_pushvalue(L, -1);
    f->opts_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* wrapped = require("moonstat.forwarder").wrap(mod, opts) */
    lua_getglobal(L, "require");
    lua_pushstring(L, "moonstat.forwarder");
    if ((rc = ms_lua_pcall(L, 1, 1, err)) != MS_OK) goto fail_lua;
    lua_getfield(L, -1, "wrap");
    lua_pushvalue(L, mod);
    lua_pushvalue(L, -4);
    if ((rc = ms_lua_pcall(L, 2, 1, err)) != MS_OK) goto fail_lua;
    f->encode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, top);
    char ctx[512];
    snprintf(ctx, sizeof ctx, "forwarders.%s.processors", name);
    if ((rc = ms_procs_new(L, cfg, ms_node_get(section, "processors"), ctx, name, loop != NULL, 1,
                           &f->procs, err)) != MS_OK)
        goto fail;
    if (!loop) { /* validation only (--config-test): nothing is started */
        *out = f;
        return MS_OK;
    }
    if ((rc = f->tp->start(f, err)) != MS_OK) goto fail;
    ms_stats_register(stats_provider, f);
    *out = f;
    return MS_OK;
fail_lua:
    lua_settop(L, top);
fail:
    ms_forwarder_free(f);
    return rc;
}

/* ---- the queue ---- */

static void drop_one(ms_forwarder *f)
{
    ms_chunk **pp = f->head_busy ? &f->head->next : &f->head;
    ms_chunk *c = *pp;
    if (!c) return;
    *pp = c->next;
    if (f->tail == c) f->tail = f->head_busy ? f->head : NULL;
    if (!f->head) f->tail = NULL;
    f->qbytes -= c->len;
    f->dropped += c->nsamples;
    free(c);
}

/* Queue `len` bytes holding `nsamples` samples, dropping the oldest chunks
 * past the bound. */
static void enqueue(ms_forwarder *f, const char *p, size_t len, uint32_t nsamples)
{
    if (len > f->qlimit) {
        f->dropped += nsamples;
        return;
    }
    while (f->qbytes + len > f->qlimit && f->head && !(f->head_busy && !f->head->next)) drop_one(f);
    ms_chunk *c = malloc(sizeof *c + len);
    if (!c) {
        f->dropped += nsamples;
        return;
    }
    c->next = NULL;
    c->nsamples = nsamples;
    c->len = len;
    c->off = 0;
    memcpy(c->data, p, len);
    if (f->tail)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    f->qbytes += len;
}

int ms_forwarder_encode(ms_forwarder *f, ms_batch *b, ms_buf *out, ms_error *err)
{
    lua_State *L = f->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, f->encode_ref);
    lua_pushlightuserdata(L, b);
    lua_pushlightuserdata(L, out);
    int rc = ms_lua_pcall(L, 2, 0, err);
    if (rc != MS_OK) f->encode_errors++;
    return rc;
}

static void send_batch(ms_forwarder *f, ms_batch *b);

void ms_forwarder_send(ms_forwarder *f, ms_batch *b)
{
    if (f->stopping || b->n == 0) return;
    if (!f->procs) {
        send_batch(f, b);
        return;
    }
    ms_batch_ref(b); /* shared with the router: the processors get a private copy */
    ms_batch *own = ms_procs_apply(f->procs, b);
    if (!own) return;
    if (own->n) send_batch(f, own);
    ms_batch_unref(own);
}

/* Encode and queue (push) or hand over (pull) one batch. */
static void send_batch(ms_forwarder *f, ms_batch *b)
{
    if (f->tp->pull) {
        f->tp->batch(f, b);
        return;
    }
    ms_error err = {0};
    ms_buf_reset(&f->enc);
    if (ms_forwarder_encode(f, b, &f->enc, &err) != MS_OK) {
        f->failed += b->n;
        ms_forwarder_log(f, MS_LOG_ERROR, "encoder %s: %s", f->file, err.msg);
        return;
    }
    if (f->enc.len == 0) return;
    enqueue(f, f->enc.data, f->enc.len, b->n);
    if (f->enc.cap > (1u << 20)) ms_buf_free(&f->enc); /* do not keep a huge scratch */
    f->tp->kick(f);
}

ms_chunk *ms_forwarder_head(ms_forwarder *f)
{
    if (f->head) f->head_busy = 1;
    return f->head;
}

void ms_forwarder_pop(ms_forwarder *f, int ok)
{
    ms_chunk *c = f->head;
    f->head_busy = 0;
    if (!c) return;
    f->head = c->next;
    if (!f->head) f->tail = NULL;
    f->qbytes -= c->len;
    if (ok)
        f->sent += c->nsamples;
    else
        f->failed += c->nsamples;
    free(c);
}

void ms_forwarder_release(ms_forwarder *f)
{
    f->head_busy = 0;
}

void ms_forwarder_count_failed(ms_forwarder *f, uint64_t nsamples)
{
    f->failed += nsamples;
}

void ms_forwarder_take_queue(ms_forwarder *to, ms_forwarder *from)
{
    ms_chunk *c = from->head;
    if (from->head_busy && c) c = c->next; /* the in-flight one stays with its writer */
    if (from->head_busy && from->head) {
        from->head->next = NULL;
        from->tail = from->head;
    } else {
        from->head = from->tail = NULL;
    }
    while (c) {
        ms_chunk *next = c->next;
        from->qbytes -= c->len;
        c->next = NULL;
        if (to->tail)
            to->tail->next = c;
        else
            to->head = c;
        to->tail = c;
        to->qbytes += c->len;
        c = next;
    }
    if (to->head && !to->tp->pull) to->tp->kick(to);
}

/* ---- stopping ---- */

static void drain_closed(uv_handle_t *h)
{
    ms_forwarder *f = h->data;
    f->drain_on = 0;
    f->tp->stop(f);
}

static void drain_tick(uv_timer_t *t)
{
    ms_forwarder *f = t->data;
    if (f->head && ms_now() < f->drain_until) return;
    if (f->head) ms_forwarder_log(f, MS_LOG_WARN, "stopping with %zu bytes unsent", f->qbytes);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, drain_closed);
}

void ms_forwarder_stop(ms_forwarder *f, double timeout, void (*done)(ms_forwarder *))
{
    f->stopping = 1;
    f->done = done;
    ms_stats_unregister(stats_provider, f);
    uv_timer_init(f->loop, &f->drain);
    f->drain.data = f;
    f->drain_on = 1;
    f->drain_until = ms_now() + timeout;
    uv_timer_start(&f->drain, drain_tick, 0, 20);
}

void ms_forwarder_closed(ms_forwarder *f)
{
    if (f->done) f->done(f);
}

void ms_forwarder_free(ms_forwarder *f)
{
    if (!f) return;
    ms_stats_unregister(stats_provider, f);
    ms_procs_free(f->procs);
    while (f->head) ms_forwarder_pop(f, 0);
    if (f->L) {
        luaL_unref(f->L, LUA_REGISTRYINDEX, f->encode_ref);
        luaL_unref(f->L, LUA_REGISTRYINDEX, f->opts_ref);
    }
    for (size_t i = 0; i < f->nopt; i++) {
        free(f->opt_k[i]);
        free(f->opt_v[i]);
    }
    free(f->opt_k);
    free(f->opt_v);
    ms_buf_free(&f->enc);
    free(f->name);
    free(f->type);
    free(f->file);
    free(f);
}

/* ---- accessors ---- */

uv_loop_t *ms_forwarder_loop(ms_forwarder *f)
{
    return f->loop;
}

void *ms_forwarder_data(ms_forwarder *f)
{
    return f->tpdata;
}

void ms_forwarder_set_data(ms_forwarder *f, void *data)
{
    f->tpdata = data;
}

const char *ms_forwarder_opt_str(ms_forwarder *f, const char *key)
{
    for (size_t i = 0; i < f->nopt; i++)
        if (!strcmp(f->opt_k[i], key)) return f->opt_v[i];
    return NULL;
}

int ms_forwarder_opt_num(ms_forwarder *f, const char *key, double *out)
{
    const char *v = ms_forwarder_opt_str(f, key);
    if (!v) return MS_ENOENT;
    char *end;
    double d = strtod(v, &end);
    if (end == v) return MS_EINVAL;
    *out = d;
    return MS_OK;
}

const char *ms_forwarder_name(const ms_forwarder *f)
{
    return f->name;
}

const ms_node *ms_forwarder_section(const ms_forwarder *f)
{
    return f->section;
}

int ms_forwarder_same(ms_forwarder *f, const ms_config *cfg, const ms_node *section)
{
    if (!ms_node_equal(f->section, section)) return 0;
    char *file = find_encoder(cfg, f->type);
    struct stat st;
    int same = file && !strcmp(file, f->file) && stat(file, &st) == 0 &&
               st.st_mtim.tv_sec == f->st.st_mtim.tv_sec &&
               st.st_mtim.tv_nsec == f->st.st_mtim.tv_nsec && st.st_size == f->st.st_size &&
               !ms_procs_changed(f->procs, cfg);
    free(file);
    if (same) f->section = section;
    return same;
}

void ms_forwarder_log(ms_forwarder *f, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ms_log_write((ms_log_level)level, "forwarder %s: %s", f->name, msg);
}

static void stats_provider(ms_batch *b, double now, void *ud)
{
    ms_forwarder *f = ud;
    const char *kv[] = {"forwarder", f->name, NULL};
    ms_stats_add(b, "moonstat_forwarder_sent_samples_total", MS_KIND_COUNTER, (double)f->sent, now,
                 kv);
    ms_stats_add(b, "moonstat_forwarder_failed_samples_total", MS_KIND_COUNTER, (double)f->failed,
                 now, kv);
    ms_stats_add(b, "moonstat_forwarder_dropped_samples_total", MS_KIND_COUNTER, (double)f->dropped,
                 now, kv);
    ms_stats_add(b, "moonstat_forwarder_encode_errors_total", MS_KIND_COUNTER,
                 (double)f->encode_errors, now, kv);
    ms_stats_add(b, "moonstat_forwarder_queue_bytes", MS_KIND_GAUGE, (double)f->qbytes, now, kv);
}
