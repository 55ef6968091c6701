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
#include "ms_retry.h"
#include "ms_route.h"
#include "ms_spool.h"
#include "ms_stats.h"

static const ms_transport *const transports[] = {
    &ms_transport_tcp,  &ms_transport_file, &ms_transport_scrape,
    &ms_transport_http, &ms_transport_udp,  &ms_transport_kafka,
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
    ms_route *route; /* include/exclude and endpoints (forwarder_route.c), or NULL */
    ms_route *owner; /* the route this forwarder is an endpoint of, or NULL */
    char *endpoint;  /* ... and that endpoint */
    /* delivery (issue 6): sample bound, spool, retry policy, counters */
    uint64_t slimit, qsamples; /* buffer_samples and what is queued */
    ms_fspool *spool;          /* spool: section, or NULL */
    ms_retry retry;            /* retry: { base, cap } */
    uint64_t retried, rejected;
    double reject_log_t;   /* last rejection logged */
    uint64_t reject_quiet; /* rejections not logged since */
    /* batching (issue 5): batch_size, batch_bytes, batch_interval */
    uint64_t bsize, bbytes; /* samples and bytes per chunk at most */
    double binterval;       /* hold and merge batches this long (s); 0: no */
    double bps;             /* bytes per sample of the last encode: sizes the ranges */
    ms_batch *held;         /* what batch_interval holds, or NULL */
    uv_timer_t btimer;      /* fires batch_interval after the first held batch */
    int btimer_on;          /* btimer initialized (closed in stop) */
    uint64_t unencodable;   /* samples the encoder skipped (NaN/Inf, events) */
};

const ms_transport *ms_transport_find(const char *name)
{
    for (size_t i = 0; i < sizeof transports / sizeof *transports; i++)
        if (!strcmp(transports[i]->name, name)) return transports[i];
    return NULL;
}

static void stats_provider(ms_batch *b, double now, void *ud);
static void spool_wake(void *ud);

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
           !strcmp(k, "processors") || ms_route_is_key(k) || !strcmp(k, "buffer_samples") ||
           !strcmp(k, "spool") || !strcmp(k, "retry") || !strcmp(k, "batch_size") ||
           !strcmp(k, "batch_bytes") || !strcmp(k, "batch_interval");
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
                         "enabled, buffer_size, buffer_samples, spool, retry, processors, include, "
                         "exclude, endpoints, balance, failback, batch_size, batch_bytes, "
                         "batch_interval%s%s)",
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

/* An encoder whose `transport` is a function picks it from the options:
 * call it with the options table (at -1) and look the name up. */
static int pick_transport(ms_forwarder *f, int mod, ms_error *err)
{
    lua_State *L = f->L;
    lua_getfield(L, mod, "transport");
    lua_pushvalue(L, -2);
    int rc = ms_lua_pcall(L, 1, 1, err);
    if (rc != MS_OK) return rc;
    f->tp = lua_isstring(L, -1) ? ms_transport_find(lua_tostring(L, -1)) : NULL;
    if (!f->tp)
        rc = ms_error_set(err, MS_EINVAL, "%s: transport '%s' is not one moonstat has", f->file,
                          lua_isstring(L, -1) ? lua_tostring(L, -1) : "(none)");
    lua_pop(L, 1);
    return rc;
}

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

/* The batching keys of f's section: batch_size (samples per chunk, default
 * 5000), batch_bytes (bytes per chunk, default 1MB: under carbon's 1 MiB
 * frame and Kafka's 1000000-byte message) and batch_interval (default 0).
 * A chunk must fit the buffer: batch_size <= buffer_samples and
 * batch_bytes <= buffer_size. Errors carry config.yaml line:col. */
static int read_batching(ms_forwarder *f, const ms_config *cfg, ms_error *err)
{
    f->bsize = 5000;
    f->bbytes = 1000000;
    const ms_node *n = ms_node_get(f->section, "batch_size");
    if (n && (n->type != MS_NODE_SCALAR || ms_parse_size(n->value, &f->bsize) != MS_OK ||
              !f->bsize || f->bsize > f->slimit || f->bsize > UINT32_MAX))
        return ms_error_set(
            err, MS_EINVAL,
            "%s:%d:%d: forwarders.%s.batch_size: expected a count of samples from 1 "
            "to buffer_samples (%llu)",
            cfg->path, n->line, n->col, f->name, (unsigned long long)f->slimit);
    if ((n = ms_node_get(f->section, "batch_bytes")) &&
        (n->type != MS_NODE_SCALAR || ms_parse_size(n->value, &f->bbytes) != MS_OK ||
         f->bbytes < 64 || f->bbytes > f->qlimit))
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s.batch_bytes: expected a size like 1MB, from "
                            "64 bytes to buffer_size (%llu)",
                            cfg->path, n->line, n->col, f->name, (unsigned long long)f->qlimit);
    if (!ms_node_get(f->section, "batch_bytes") && f->bbytes > f->qlimit) f->bbytes = f->qlimit;
    if ((n = ms_node_get(f->section, "batch_interval")) &&
        (n->type != MS_NODE_SCALAR || ms_parse_duration(n->value, &f->binterval) != MS_OK ||
         f->binterval < 0 || f->binterval > 3600))
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s.batch_interval: expected a duration like 10s "
                            "(0 to 1h)",
                            cfg->path, n->line, n->col, f->name);
    return MS_OK;
}

/* A pull forwarder (scrape) keeps the latest value of each series and has
 * no queue: the keys that shape a queue are errors there, not silently
 * ignored. */
static int no_push_keys(ms_forwarder *f, const ms_config *cfg, const ms_node *section,
                        ms_error *err)
{
    static const char *const keys[] = {"buffer_size", "buffer_samples", "spool",         "retry",
                                       "batch_size",  "batch_bytes",    "batch_interval"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const ms_node *n = ms_node_get(section, keys[i]);
        if (n)
            return ms_error_set(err, MS_EINVAL,
                                "%s:%d:%d: forwarders.%s.%s: a %s forwarder is scraped: it has no "
                                "queue to buffer, spool, retry or batch",
                                cfg->path, n->key_line, n->key_col, f->name, keys[i], f->type);
    }
    return MS_OK;
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
    f->slimit = 1000000;
    const ms_node *bsn = ms_node_get(section, "buffer_samples");
    if (bsn && (bsn->type != MS_NODE_SCALAR || ms_parse_size(bsn->value, &f->slimit) != MS_OK ||
                !f->slimit)) {
        rc = ms_error_set(err, MS_EINVAL,
                          "%s:%d:%d: forwarders.%s.buffer_samples: expected a count like 1000000",
                          cfg->path, bsn->line, bsn->col, name);
        goto fail;
    }
    if ((rc = read_batching(f, cfg, err)) != MS_OK) goto fail;
    char rctx[512];
    snprintf(rctx, sizeof rctx, "forwarders.%s.retry", name);
    if ((rc = ms_retry_parse(cfg, ms_node_get(section, "retry"), rctx, &f->retry, err)) != MS_OK)
        goto fail;
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
    int tp_fn = lua_isfunction(L, -1); /* chosen by the options: resolved below */
    f->tp = lua_isstring(L, -1) ? ms_transport_find(lua_tostring(L, -1)) : NULL;
    if (!f->tp && !tp_fn) {
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
    if (tp_fn && (rc = pick_transport(f, mod, err)) != MS_OK) goto fail_lua;
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
    if ((rc = ms_route_new(loop, L, cfg, f, section, f->tp, &f->route, err)) != MS_OK) goto fail;
    if (f->tp->pull && (rc = no_push_keys(f, cfg, section, err)) != MS_OK) goto fail;
    if (!ms_route_has_endpoints(f->route) && !f->tp->pull && /* the endpoints spool, each */
        (rc = ms_fspool_new(loop, cfg, name, ms_node_get(section, "spool"), spool_wake, f,
                            &f->spool, err)) != MS_OK)
        goto fail;
    if (!loop || ms_route_has_endpoints(f->route)) { /* validation, or the endpoints send */
        *out = f;
        return MS_OK;
    }
    if ((rc = f->tp->start(f, err)) != MS_OK) goto fail;
    if (f->binterval > 0 && !f->tp->pull) { /* batch_interval: send_batch holds */
        uv_timer_init(loop, &f->btimer);
        f->btimer.data = f;
        f->btimer_on = 1;
    }
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

/* Would a chunk of len bytes and ns samples fit in the memory buffer? */
static int fits(const ms_forwarder *f, size_t len, uint32_t ns)
{
    return f->qbytes + len <= f->qlimit && f->qsamples + ns <= f->slimit;
}

/* Replay: move spool records into the memory queue, oldest first, while
 * fewer than 8 chunks are queued, they fit (a record larger than the bounds
 * is let in alone), and the replay rate allows. Returns how many. */
static int spool_refill(ms_forwarder *f)
{
    int added = 0;
    ms_spool_rec rec;
    while (f->spool && !f->stopping) {
        int n = 0;
        for (ms_chunk *c = f->head; c && n < 8; c = c->next) n++;
        if (n >= 8 || ms_fspool_next(f->spool, &rec) != MS_OK) break;
        if (f->head && !fits(f, rec.len, rec.nsamples)) break; /* alone, a big one may pass */
        ms_chunk *c = malloc(sizeof *c + rec.len + rec.eplen + 1);
        if (!c) break;
        int rc = ms_fspool_take(f->spool, &rec, c->data);
        if (rc != MS_OK) {
            free(c);
            if (rc == MS_EIO) continue; /* a bad record: skipped and counted by the spool */
            break;
        }
        c->data[rec.len + rec.eplen] = 0;
        c->next = NULL;
        c->nsamples = rec.nsamples;
        c->len = rec.len;
        c->off = 0;
        c->endpoint = rec.eplen ? c->data + rec.len : NULL;
        c->spooled = 1;
        c->t = rec.t;
        if (f->tail)
            f->tail->next = c;
        else
            f->head = c;
        f->tail = c;
        f->qbytes += c->len;
        f->qsamples += c->nsamples;
        added++;
    }
    return added;
}

/* The spool's timer: records wait for replay. */
static void spool_wake(void *ud)
{
    ms_forwarder *f = ud;
    if (spool_refill(f)) f->tp->kick(f);
}

static void drop_one(ms_forwarder *f)
{
    ms_chunk **pp = f->head_busy ? &f->head->next : &f->head;
    ms_chunk *c = *pp;
    if (!c) return;
    *pp = c->next;
    if (f->tail == c) f->tail = f->head_busy ? f->head : NULL;
    if (!f->head) f->tail = NULL;
    f->qbytes -= c->len;
    f->qsamples -= c->nsamples;
    f->dropped += c->nsamples;
    if (c->spooled) ms_fspool_ack(f->spool);
    free(c);
}

/* Queue `len` bytes holding `nsamples` samples, dropping the oldest chunks
 * past the bound. */
static void enqueue(ms_forwarder *f, const char *p, size_t len, uint32_t nsamples,
                    const char *endpoint)
{
    int spooled = 0; /* with a spool: on disk first, or only (spool_fwd.c decides) */
    if (f->spool && !ms_fspool_put(f->spool, p, len, endpoint, nsamples, ms_now(),
                                   fits(f, len, nsamples), &spooled))
        return;
    if (len > f->qlimit || nsamples > f->slimit) {
        f->dropped += nsamples;
        return;
    }
    while (!fits(f, len, nsamples) && f->head && !(f->head_busy && !f->head->next)) drop_one(f);
    size_t eplen = endpoint ? strlen(endpoint) + 1 : 0; /* the endpoint lives after the data */
    ms_chunk *c = malloc(sizeof *c + len + eplen);
    if (!c) {
        f->dropped += nsamples;
        return;
    }
    c->next = NULL;
    c->nsamples = nsamples;
    c->len = len;
    c->off = 0;
    memcpy(c->data, p, len);
    c->endpoint = endpoint ? memcpy(c->data + len, endpoint, eplen) : NULL;
    c->spooled = (uint32_t)spooled;
    c->t = ms_now();
    f->qsamples += nsamples;
    if (f->tail)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    f->qbytes += len;
}

/* Run the wrapped encoder on b into out, leaving nres of its results on L
 * (the parts list, see queue_parts). */
static int run_encoder(ms_forwarder *f, ms_batch *b, ms_buf *out, int nres, ms_error *err)
{
    lua_State *L = f->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, f->encode_ref);
    lua_pushlightuserdata(L, b);
    lua_pushlightuserdata(L, out);
    int rc = ms_lua_pcall(L, 2, nres, err);
    if (rc != MS_OK) f->encode_errors++;
    return rc;
}

int ms_forwarder_encode(ms_forwarder *f, ms_batch *b, ms_buf *out, ms_error *err)
{
    return run_encoder(f, b, out, 0, err);
}

/* Queue f->enc as one chunk of nsamples, or, when the encoder started parts
 * (ms_forwarder.h), one chunk per part: the wrapper returns them as a flat
 * list {offset, endpoint, nsamples, ...} at -1, which is popped here.
 * Offsets and counts are clamped, so a wrong list cannot overrun. */
static void queue_parts(ms_forwarder *f, uint32_t nsamples)
{
    lua_State *L = f->L;
    int t = lua_gettop(L);
    size_t n = lua_istable(L, t) ? lua_objlen(L, t) / 3 : 0, start = 0;
    uint32_t left = nsamples; /* what the first (plain) chunk counts */
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, t, (int)(3 * i));
        double k = lua_tonumber(L, -1);
        lua_pop(L, 1);
        left -= k <= 0 ? 0 : k < left ? (uint32_t)k : left;
    }
    uint32_t ns = left, budget = nsamples - left;
    const char *ep = NULL;
    for (size_t i = 1; i <= n + 1; i++) {
        size_t end = f->enc.len;
        const char *next = NULL; /* strings stay anchored by the list */
        uint32_t next_ns = 0;
        if (i <= n) {
            lua_rawgeti(L, t, (int)(3 * i - 2));
            lua_rawgeti(L, t, (int)(3 * i - 1));
            lua_rawgeti(L, t, (int)(3 * i));
            double o = lua_tonumber(L, -3), k = lua_tonumber(L, -1);
            next = lua_tostring(L, -2);
            lua_pop(L, 3);
            end = o <= (double)start ? start : o >= (double)f->enc.len ? f->enc.len : (size_t)o;
            next_ns = k <= 0 ? 0 : k < budget ? (uint32_t)k : budget;
            budget -= next_ns;
        }
        if (end > start) enqueue(f, f->enc.data + start, end - start, ns, ep);
        start = end;
        ep = next;
        ns = next_ns;
    }
    lua_settop(L, t - 1);
}

static void send_batch(ms_forwarder *f, ms_batch *b);

void ms_forwarder_send(ms_forwarder *f, ms_batch *b)
{
    if (f->stopping || b->n == 0) return;
    if (!f->procs && !f->route) {
        send_batch(f, b);
        return;
    }
    ms_batch_ref(b); /* shared with the router: the processors get a private copy */
    ms_batch *own = ms_route_filter(f->route, b); /* include/exclude first */
    if (own) own = ms_procs_apply(f->procs, own);
    if (!own) return;
    if (own->n) send_batch(f, own);
    ms_batch_unref(own);
}

/* Samples per range to encode: batch_size, or fewer when the bytes per
 * sample seen last say batch_bytes would not hold that many (aiming at 90%
 * of it, so most ranges fit the first time). At least 1. */
static uint32_t range_size(const ms_forwarder *f)
{
    double k = (double)f->bsize;
    if (f->bps > 0 && 0.9 * (double)f->bbytes / f->bps < k) k = 0.9 * (double)f->bbytes / f->bps;
    return k < 1 ? 1 : (uint32_t)k;
}

static int encode_ranges(ms_forwarder *f, ms_batch *b, uint32_t first, uint32_t n);

/* Encode samples [first, first+n) of b and queue the chunk(s). The encoder
 * sees a view: a batch struct on the stack over b's samples and text (no
 * copy; encoders only read). Its result over batch_bytes is dropped and the
 * range re-encoded in smaller ranges sized by the bytes per sample it just
 * measured (a range of one sample is queued whatever its size). What the
 * encoder reports skipped (NaN/Inf, events it cannot write: the second
 * result of the wrapper) is counted as unencodable and not in the chunk.
 * Returns 1 when bytes were queued. */
static int encode_range(ms_forwarder *f, ms_batch *b, uint32_t first, uint32_t n)
{
    ms_batch v = *b;
    v.refs = 1;
    v.s = b->s + first;
    v.n = v.cap = n;
    ms_error err = {0};
    ms_buf_reset(&f->enc);
    if (run_encoder(f, &v, &f->enc, 2, &err) != MS_OK) {
        f->failed += n;
        ms_forwarder_log(f, MS_LOG_ERROR, "encoder %s: %s", f->file, err.msg);
        return 0;
    }
    double sk = lua_tonumber(f->L, -1);
    lua_pop(f->L, 1); /* the parts list stays for queue_parts */
    if (f->enc.len) f->bps = (double)f->enc.len / n;
    if (f->enc.len > f->bbytes && n > 1) { /* bps > bbytes/n now: the ranges get smaller */
        lua_pop(f->L, 1);
        return encode_ranges(f, b, first, n);
    }
    uint32_t skipped = sk <= 0 ? 0 : sk < n ? (uint32_t)sk : n;
    f->unencodable += skipped;
    queue_parts(f, n - skipped);
    return f->enc.len > 0;
}

/* Encode [first, first+n) of b in ranges of range_size(f) samples. */
static int encode_ranges(ms_forwarder *f, ms_batch *b, uint32_t first, uint32_t n)
{
    int queued = 0;
    while (n) {
        uint32_t k = range_size(f);
        if (k > n) k = n;
        queued |= encode_range(f, b, first, k);
        first += k;
        n -= k;
    }
    return queued;
}

/* Encode a whole batch into chunks and start the transport. */
static void encode_batch(ms_forwarder *f, ms_batch *b)
{
    int queued = encode_ranges(f, b, 0, b->n);
    if (f->enc.cap > (1u << 21)) ms_buf_free(&f->enc); /* do not keep a huge scratch */
    if (queued) f->tp->kick(f);
}

/* batch_interval is over (or the forwarder stops or hands its queue over):
 * encode what is held. */
static void flush_held(ms_forwarder *f)
{
    ms_batch *h = f->held;
    f->held = NULL;
    if (f->btimer_on) uv_timer_stop(&f->btimer);
    if (h && h->n) encode_batch(f, h);
    ms_batch_unref(h);
}

static void btimer_cb(uv_timer_t *t)
{
    flush_held(t->data);
}

/* batch_interval: merge b (borrowed) into the held batch; the first batch
 * held starts the timer. Once a full range is held it is encoded at once,
 * and what is left over stays held. Without memory b goes out now. */
static void hold(ms_forwarder *f, ms_batch *b)
{
    uint32_t n0 = f->held ? f->held->n : 0;
    if ((!f->held && !(f->held = ms_batch_new(b->n))) || ms_batch_append(f->held, b) != MS_OK) {
        if (f->held) f->held->n = n0; /* undo a partial append */
        flush_held(f);
        encode_batch(f, b);
        return;
    }
    ms_batch *h = f->held;
    uint32_t k = range_size(f);
    if (h->n >= k) {
        uint32_t full = h->n / k * k, rest = h->n - full;
        ms_batch *left = rest ? ms_batch_new(rest) : NULL;
        ms_batch tail = *h;
        tail.s = h->s + full;
        tail.n = tail.cap = rest;
        if (rest && (!left || ms_batch_append(left, &tail) != MS_OK)) {
            ms_batch_unref(left); /* no memory to keep the rest: all of it goes */
            left = NULL;
            full = h->n;
        }
        int queued = encode_ranges(f, h, 0, full);
        if (f->enc.cap > (1u << 21)) ms_buf_free(&f->enc);
        if (queued) f->tp->kick(f);
        ms_batch_unref(h);
        f->held = left;
        if (!left) uv_timer_stop(&f->btimer);
    }
    if (f->held && !uv_is_active((uv_handle_t *)&f->btimer)) {
        double ms = f->binterval * 1000;
        uv_timer_start(&f->btimer, btimer_cb, ms < 1 ? 1 : (uint64_t)ms, 0);
    }
}

/* Encode and queue (push) or hand over (pull) one batch; with
 * batch_interval it is held first. */
static void send_batch(ms_forwarder *f, ms_batch *b)
{
    if (ms_route_send(f->route, b)) return; /* several endpoints: each child encodes its share */
    if (f->tp->pull) {
        f->tp->batch(f, b);
        return;
    }
    if (f->btimer_on && !f->stopping)
        hold(f, b);
    else
        encode_batch(f, b);
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
    f->qsamples -= c->nsamples;
    if (ok)
        f->sent += c->nsamples;
    else
        f->failed += c->nsamples;
    if (c->spooled) ms_fspool_ack(f->spool);
    free(c);
    spool_refill(f); /* the transport takes the next head itself */
    if (ok && f->owner) ms_route_endpoint_ok(f->owner, f);
}

void ms_forwarder_release(ms_forwarder *f)
{
    f->head_busy = 0;
}

void ms_forwarder_count_failed(ms_forwarder *f, uint64_t nsamples)
{
    f->failed += nsamples;
}

const ms_retry *ms_forwarder_retry(ms_forwarder *f)
{
    return &f->retry;
}

void ms_forwarder_count_retry(ms_forwarder *f)
{
    f->retried++;
}

void ms_forwarder_reject(ms_forwarder *f, const char *what, const char *body, size_t len)
{
    ms_chunk *c = f->head;
    uint32_t ns = c ? c->nsamples : 0;
    double now = ms_now();
    if (now - f->reject_log_t >= 60) {
        ms_forwarder_log(f, MS_LOG_WARN,
                         "%s, dropping %u samples (%zu bytes)%s%.*s (%llu more rejected since the "
                         "last message; logged at most once a minute)",
                         what, ns, c ? c->len : 0, len ? ": " : "", (int)(len > 512 ? 512 : len),
                         body ? body : "", (unsigned long long)f->reject_quiet);
        f->reject_log_t = now;
        f->reject_quiet = 0;
    } else {
        f->reject_quiet++;
    }
    f->rejected += ns;
    ms_forwarder_pop(f, 0);
}

void ms_forwarder_endpoint_failed(ms_forwarder *f)
{
    if (f->owner && !f->stopping) ms_route_endpoint_failed(f->owner, f);
}

void ms_forwarder_set_owner(ms_forwarder *f, ms_route *owner, const char *endpoint)
{
    f->owner = owner;
    free(f->endpoint);
    f->endpoint = endpoint ? strdup(endpoint) : NULL;
    ms_fspool_set_endpoint(f->spool, endpoint); /* each endpoint spools on its own */
}

ms_route *ms_forwarder_owner(const ms_forwarder *f)
{
    return f->owner;
}

void ms_forwarder_take_queue(ms_forwarder *to, ms_forwarder *from)
{
    flush_held(from); /* batch_interval: held samples are queued and move too */
    if (ms_route_has_endpoints(to->route) || ms_route_has_endpoints(from->route)) {
        ms_route_take_queue(to, to->route, from, from->route); /* child by child */
        return;
    }
    ms_chunk *c = from->head;
    if (from->head_busy && c) c = c->next; /* the in-flight one stays with its writer */
    int same_spool = ms_fspool_same(to->spool, from->spool);
    if (from->head_busy && from->head) {
        from->head->next = NULL;
        from->tail = from->head;
    } else {
        from->head = from->tail = NULL;
    }
    while (c) {
        ms_chunk *next = c->next;
        from->qbytes -= c->len;
        from->qsamples -= c->nsamples;
        to->qsamples += c->nsamples;
        if (!same_spool) c->spooled = 0; /* its record stays in the old spool for a restart */
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

/* Stopping with a spool: what is still in memory goes to disk for the next
 * start (chunks that are spool records already stay there, unacked). When a
 * reloaded forwarder shares the spool and reads on, a spool record left here
 * (the request that was in flight) is written again for it to replay, and
 * its old place acked. */
static void spool_leftovers(ms_forwarder *f)
{
    uint64_t n = 0;
    int shared = ms_fspool_shared(f->spool);
    for (ms_chunk *c = f->head; c; c = c->next) {
        if (!c->spooled || shared) {
            ms_fspool_save(f->spool, c->data, c->len, c->endpoint, c->nsamples, c->t);
            n += c->nsamples;
        }
        if (c->spooled && shared) ms_fspool_ack(f->spool);
        c->spooled = 0;
        c->nsamples = 0; /* not failed: kept for the next start */
    }
    ms_fspool_sync(f->spool);
    if (n)
        ms_forwarder_log(f, MS_LOG_INFO, "stopping: %llu queued samples written to the spool",
                         (unsigned long long)n);
}

static void drain_tick(uv_timer_t *t)
{
    ms_forwarder *f = t->data;
    if (f->head && ms_now() < f->drain_until) return;
    if (f->head) ms_forwarder_log(f, MS_LOG_WARN, "stopping with %zu bytes unsent", f->qbytes);
    if (f->spool) spool_leftovers(f);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, drain_closed);
}

void ms_forwarder_stop(ms_forwarder *f, double timeout, void (*done)(ms_forwarder *))
{
    flush_held(f); /* batch_interval: what is held is queued, then drained */
    if (f->btimer_on) {
        f->btimer_on = 0;
        uv_close((uv_handle_t *)&f->btimer, NULL); /* closed before the transport is */
    }
    f->stopping = 1;
    f->done = done;
    ms_stats_unregister(stats_provider, f);
    ms_fspool_stop(f->spool);
    if (ms_route_stop(f->route, timeout)) return; /* the endpoints stop, then ms_forwarder_closed */
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
    ms_batch_unref(f->held);
    ms_procs_free(f->procs);
    ms_route_free(f->route);
    free(f->endpoint);
    for (ms_chunk *c = f->head; c; c = c->next) c->spooled = 0; /* undelivered: no ack */
    while (f->head) ms_forwarder_pop(f, 0);
    ms_fspool_free(f->spool);
    f->spool = NULL;
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
               !ms_procs_changed(f->procs, cfg) && !ms_route_changed(f->route, cfg);
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
    if (f->endpoint)
        ms_log_write((ms_log_level)level, "forwarder %s[%s]: %s", f->name, f->endpoint, msg);
    else
        ms_log_write((ms_log_level)level, "forwarder %s: %s", f->name, msg);
}

static void stats_provider(ms_batch *b, double now, void *ud)
{
    ms_forwarder *f = ud;
    const char *kv[] = {"forwarder", f->name, f->endpoint ? "endpoint" : NULL, f->endpoint, NULL};
    ms_stats_add(b, "moonstat_forwarder_sent_samples_total", MS_KIND_COUNTER, (double)f->sent, now,
                 kv);
    ms_stats_add(b, "moonstat_forwarder_failed_samples_total", MS_KIND_COUNTER, (double)f->failed,
                 now, kv);
    uint64_t dropped_spool = 0;
    if (f->spool) ms_fspool_stats(f->spool, b, now, kv, &dropped_spool);
    const char *kr[] = {
        "forwarder", f->name, "reason", "buffer_full", f->endpoint ? "endpoint" : NULL,
        f->endpoint, NULL};
    ms_stats_add(b, "moonstat_forwarder_dropped_samples_total", MS_KIND_COUNTER, (double)f->dropped,
                 now, kr);
    if (f->spool) {
        kr[3] = "spool_full";
        ms_stats_add(b, "moonstat_forwarder_dropped_samples_total", MS_KIND_COUNTER,
                     (double)dropped_spool, now, kr);
    }
    kr[3] = "unencodable"; /* NaN/Inf values, events the format has no place for */
    ms_stats_add(b, "moonstat_forwarder_dropped_samples_total", MS_KIND_COUNTER,
                 (double)f->unencodable, now, kr);
    ms_stats_add(b, "moonstat_forwarder_retries_total", MS_KIND_COUNTER, (double)f->retried, now,
                 kv);
    ms_stats_add(b, "moonstat_forwarder_rejected_samples_total", MS_KIND_COUNTER,
                 (double)f->rejected, now, kv);
    ms_stats_add(b, "moonstat_forwarder_queue_samples", MS_KIND_GAUGE, (double)f->qsamples, now,
                 kv);
    double oldest = f->head ? f->head->t : ms_fspool_oldest(f->spool);
    ms_stats_add(b, "moonstat_forwarder_oldest_pending_seconds", MS_KIND_GAUGE,
                 oldest > 0 && now > oldest ? now - oldest : 0, now, kv);
    ms_stats_add(b, "moonstat_forwarder_encode_errors_total", MS_KIND_COUNTER,
                 (double)f->encode_errors, now, kv);
    ms_stats_add(b, "moonstat_forwarder_queue_bytes", MS_KIND_GAUGE, (double)f->qbytes, now, kv);
}
