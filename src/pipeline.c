/*
 * pipeline.c - samples from every source to every forwarder (see
 * ms_pipeline.h). Submitted batches are merged into one pending batch that is
 * forwarded every agent.flush_interval or as soon as it holds
 * agent.pipeline_batch samples; past twice that bound new samples are dropped
 * and counted.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "ms_forwarder.h"
#include "ms_log.h"
#include "ms_lua.h"
#include "ms_pipeline.h"
#include "ms_processor.h"
#include "ms_stats.h"

typedef struct fwd_entry {
    struct fwd_entry *next;
    ms_forwarder *f;
} fwd_entry;

static uv_loop_t *loop;
static ms_lua *lua;
static fwd_entry *fwds;
static ms_procs *procs; /* the global processor list (config `processors:`) */
static ms_batch *pending;
static uv_timer_t flush_timer;
static int stopping, stopping_left;
static void (*stop_done)(void);
static uint32_t max_pending = 10000;
static uint64_t submitted, dropped, forwarded;

static void stats_provider(ms_batch *b, double now, void *ud);

/* Create every enabled forwarder of cfg; `old`: running ones that may be kept. */
static fwd_entry *make_forwarders(const ms_config *cfg, fwd_entry **old, ms_error *first_err)
{
    fwd_entry *list = NULL, **tail = &list;
    const ms_node *fs = cfg->forwarders;
    for (size_t i = 0; fs && i < fs->n; i++) {
        const ms_node *sec = fs->items[i];
        const ms_node *en = ms_node_get(sec, "enabled");
        int enabled = 1;
        if (en && (en->type != MS_NODE_SCALAR || ms_parse_bool(en->value, &enabled) != MS_OK)) {
            ms_error tmp = {0};
            ms_error *e = first_err && !first_err->code ? first_err : &tmp;
            ms_error_set(e, MS_EINVAL, "%s:%d:%d: forwarders.%s.enabled: expected true or false",
                         cfg->path, en->line, en->col, sec->key);
            if (e == &tmp) ms_log_error("%s", tmp.msg);
            continue;
        }
        if (!enabled) continue;
        fwd_entry *e = NULL;
        for (fwd_entry **pp = old; pp && *pp; pp = &(*pp)->next) {
            if (!strcmp(ms_forwarder_name((*pp)->f), sec->key) &&
                ms_forwarder_same((*pp)->f, cfg, sec)) {
                e = *pp;
                *pp = e->next;
                break;
            }
        }
        if (!e) {
            ms_forwarder *f = NULL;
            ms_error err = {0};
            if (ms_forwarder_new(loop, ms_lua_state(lua), cfg, sec->key, sec, &f, &err) != MS_OK) {
                if (first_err && !first_err->code)
                    *first_err = err; /* the caller reports the first */
                else
                    ms_log_error("%s", err.msg);
                continue;
            }
            e = calloc(1, sizeof *e);
            if (!e) {
                ms_forwarder_free(f);
                continue;
            }
            e->f = f;
            /* a replaced forwarder of the same name hands over what it queued */
            for (fwd_entry *o = old ? *old : NULL; o; o = o->next)
                if (!strcmp(ms_forwarder_name(o->f), sec->key)) ms_forwarder_take_queue(f, o->f);
            ms_log_info("forwarder %s: started", sec->key);
        }
        e->next = NULL;
        *tail = e;
        tail = &e->next;
    }
    return list;
}

int ms_pipeline_validate(const ms_config *cfg, ms_error *err)
{
    ms_lua_opts o = {1, 0, &cfg->paths.lua};
    ms_lua *l = ms_lua_new(&o, err);
    if (!l) return err ? err->code : MS_ENOMEM;
    ms_procs *p = NULL;
    int rc = ms_procs_new(ms_lua_state(l), cfg, cfg->processors, "processors", NULL, 0, 0, &p, err);
    ms_procs_free(p);
    const ms_node *fs = cfg->forwarders;
    for (size_t i = 0; fs && i < fs->n && rc == MS_OK; i++) {
        ms_forwarder *f = NULL;
        rc = ms_forwarder_new(NULL, ms_lua_state(l), cfg, fs->items[i]->key, fs->items[i], &f, err);
        ms_forwarder_free(f);
    }
    ms_procs_forget(ms_lua_state(l));
    ms_lua_free(l);
    return rc;
}

static void flush_cb(uv_timer_t *t)
{
    (void)t;
    ms_pipeline_flush();
}

int ms_pipeline_start(uv_loop_t *l, const ms_config *cfg, ms_error *err)
{
    loop = l;
    ms_lua_opts o = {1, 0, &cfg->paths.lua};
    lua = ms_lua_new(&o, err);
    if (!lua) return err ? err->code : MS_ENOMEM;
    int rc = ms_procs_new(ms_lua_state(lua), cfg, cfg->processors, "processors", NULL, 1, 0, &procs,
                          err);
    if (rc != MS_OK) return rc;
    ms_error ferr = {0};
    fwds = make_forwarders(cfg, NULL, &ferr);
    if (ferr.code) {
        if (err) *err = ferr;
        return ferr.code;
    }
    max_pending = (uint32_t)cfg->agent.pipeline_batch;
    uint64_t ms = (uint64_t)(cfg->agent.flush_interval * 1000);
    if (ms < 1) ms = 1;
    uv_timer_init(loop, &flush_timer);
    uv_timer_start(&flush_timer, flush_cb, ms, ms);
    ms_stats_register(stats_provider, NULL);
    return MS_OK;
}

static void free_done(ms_forwarder *f)
{
    ms_forwarder_free(f);
}

int ms_pipeline_reload(const ms_config *cfg, ms_error *err)
{
    ms_pipeline_flush();
    max_pending = (uint32_t)cfg->agent.pipeline_batch;
    uint64_t ms = (uint64_t)(cfg->agent.flush_interval * 1000);
    uv_timer_set_repeat(&flush_timer, ms < 1 ? 1 : ms);
    /* processors: unchanged ones are reused, broken ones keep their last version */
    ms_procs *np = NULL;
    ms_error perr = {0};
    if (ms_procs_new(ms_lua_state(lua), cfg, cfg->processors, "processors", NULL, 1, 1, &np,
                     &perr) != MS_OK) {
        ms_log_error("reload: %s (keeping the running processors)", perr.msg);
    } else {
        ms_procs_free(procs);
        procs = np;
    }
    fwd_entry *old = fwds;
    fwds = make_forwarders(cfg, &old, err);
    while (old) { /* removed or replaced: drain briefly, then stop */
        fwd_entry *e = old;
        old = e->next;
        ms_log_info("forwarder %s: stopped (removed or changed)", ms_forwarder_name(e->f));
        ms_forwarder_stop(e->f, cfg->agent.shutdown_timeout, free_done);
        free(e);
    }
    return MS_OK;
}

void ms_pipeline_submit(ms_batch *b)
{
    if (!b) return;
    submitted += b->n;
    if (stopping || !fwds) {
        ms_batch_unref(b);
        return;
    }
    if (!pending) {
        pending = b; /* take the caller's reference */
    } else if (pending->n + b->n > 2 * max_pending) {
        dropped += b->n;
        ms_batch_unref(b);
    } else {
        if (ms_batch_append(pending, b) != MS_OK) dropped += b->n;
        ms_batch_unref(b);
    }
    if (pending && pending->n >= max_pending) ms_pipeline_flush();
}

void ms_pipeline_flush(void)
{
    ms_batch *b = pending;
    pending = NULL;
    if (!b) return;
    b = ms_procs_apply(procs, b); /* may drop samples, or all of them */
    if (!b) return;
    for (fwd_entry *e = fwds; e && b->n; e = e->next) ms_forwarder_send(e->f, b);
    forwarded += b->n;
    ms_batch_unref(b);
}

static void stopped_one(ms_forwarder *f)
{
    ms_forwarder_free(f);
    if (--stopping_left == 0 && stop_done) stop_done();
}

void ms_pipeline_stop(double timeout, void (*done)(void))
{
    ms_pipeline_flush();
    stopping = 1;
    stop_done = done;
    ms_stats_unregister(stats_provider, NULL);
    uv_close((uv_handle_t *)&flush_timer, NULL);
    stopping_left = 0;
    for (fwd_entry *e = fwds; e; e = e->next) stopping_left++;
    if (stopping_left == 0) {
        if (done) done();
    }
    while (fwds) {
        fwd_entry *e = fwds;
        fwds = e->next;
        ms_forwarder_stop(e->f, timeout, stopped_one);
        free(e);
    }
}

void ms_pipeline_free(void)
{
    ms_batch_unref(pending);
    pending = NULL;
    ms_procs_free(procs);
    procs = NULL;
    if (lua) ms_procs_forget(ms_lua_state(lua));
    ms_lua_free(lua);
    lua = NULL;
}

lua_State *ms_pipeline_lua(void)
{
    return lua ? ms_lua_state(lua) : NULL;
}

static void stats_provider(ms_batch *b, double now, void *ud)
{
    (void)ud;
    ms_stats_add(b, "moonstat_pipeline_samples_total", MS_KIND_COUNTER, (double)submitted, now,
                 NULL);
    ms_stats_add(b, "moonstat_pipeline_dropped_samples_total", MS_KIND_COUNTER, (double)dropped,
                 now, NULL);
    ms_stats_add(b, "moonstat_series", MS_KIND_GAUGE, ms_series_count(), now, NULL);
    ms_stats_add(b, "moonstat_series_dropped_total", MS_KIND_COUNTER, (double)ms_series_dropped(),
                 now, NULL);
    ms_stats_add(b, "moonstat_lua_pipeline_memory_bytes", MS_KIND_GAUGE,
                 lua ? (double)ms_lua_mem(lua) : 0, now, NULL);
}
