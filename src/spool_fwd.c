/*
 * spool_fwd.c - a forwarder's use of its disk spool (see ms_spool.h, "for the
 * forwarder core"): the `spool:` section, the choice between memory and
 * disk for each new chunk, replay at `replay_rate`, the fsync timer, the
 * counters and gauges. forwarder.c keeps the memory queue and calls in at
 * enqueue, pop, stop and for its stats.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "ms_config.h"
#include "ms_log.h"
#include "ms_spool.h"
#include "ms_stats.h"

#define TICK_MS 50

struct ms_fspool {
    char *name;     /* the forwarder's */
    char *base_dir; /* spool.dir, absolute */
    char *dir;      /* base_dir, or base_dir/<endpoint> for a routed child */
    ms_spool_opts o;
    int overflow;          /* mode overflow: only what does not fit in memory */
    double rate;           /* replay: chunks or bytes per second, 0 unlimited */
    int rate_bytes;        /* rate counts bytes */
    double tokens, last_t; /* the replay token bucket */
    ms_spool *sp;          /* opened on first use; NULL when that failed */
    int open_failed;
    uv_timer_t *timer;
    void (*wake)(void *);
    void *ud;
    uint64_t dropped_newest; /* samples refused: spool full (drop_newest) or too large */
    double last_err_log;
};

/* ---- config ---- */

static void tick(uv_timer_t *t);

static int bad(ms_error *err, const ms_config *cfg, const ms_node *n, const char *name,
               const char *key, const char *what)
{
    return ms_error_set(err, MS_EINVAL, "%s:%d:%d: forwarders.%s.spool.%s: %s", cfg->path, n->line,
                        n->col, name, key, what);
}

/* "100" chunks/s, "10MiB" (a size) bytes/s, optional "/s"; 0 or "unlimited". */
static int parse_rate(const char *v, double *rate, int *bytes)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s", v);
    size_t n = strlen(tmp);
    if (n > 2 && !strcmp(tmp + n - 2, "/s")) tmp[n - 2] = 0;
    *bytes = 0;
    *rate = 0;
    if (!strcmp(tmp, "unlimited")) return MS_OK;
    char *end;
    double d = strtod(tmp, &end);
    if (end != tmp && !*end && d >= 0) {
        *rate = d;
        return MS_OK;
    }
    uint64_t sz;
    if (ms_parse_size(tmp, &sz) != MS_OK) return MS_EINVAL;
    *rate = (double)sz;
    *bytes = 1;
    return MS_OK;
}

static const char *const spool_keys[] = {"dir",   "max_size", "segment_size", "on_full",
                                         "fsync", "mode",     "replay_rate",  NULL};

int ms_fspool_new(struct uv_loop_s *loop, const ms_config *cfg, const char *name, const ms_node *n,
                  void (*wake)(void *), void *ud, ms_fspool **out, ms_error *err)
{
    *out = NULL;
    if (!n) return MS_OK;
    if (n->type != MS_NODE_MAP && !ms_node_is_null(n))
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s.spool: expected a map like { max_size: 1GiB }",
                            cfg->path, n->line, n->col, name);
    for (size_t i = 0; n->type == MS_NODE_MAP && i < n->n; i++) {
        const ms_node *v = n->items[i];
        size_t k = 0;
        while (spool_keys[k] && strcmp(spool_keys[k], v->key)) k++;
        if (!spool_keys[k])
            return ms_error_set(err, MS_EINVAL,
                                "%s:%d:%d: forwarders.%s.spool: unknown key '%s' (known: dir, "
                                "max_size, segment_size, on_full, fsync, mode, replay_rate)",
                                cfg->path, v->key_line, v->key_col, name, v->key);
        if (v->type != MS_NODE_SCALAR) return bad(err, cfg, v, name, v->key, "expected a scalar");
    }
    ms_fspool *fs = calloc(1, sizeof *fs);
    if (!fs) return ms_error_set(err, MS_ENOMEM, "out of memory");
    fs->o.max_size = 1ull << 30;
    fs->o.segment_size = 16u << 20;
    fs->o.fsync = 1;
    const ms_node *v;
    int rc = MS_OK;
    if ((v = ms_node_get(n, "max_size")) && ms_parse_size(v->value, &fs->o.max_size) != MS_OK)
        rc = bad(err, cfg, v, name, "max_size", "expected a size like 1GiB");
    if (rc == MS_OK && (v = ms_node_get(n, "segment_size")) &&
        (ms_parse_size(v->value, &fs->o.segment_size) != MS_OK || fs->o.segment_size < 4096))
        rc = bad(err, cfg, v, name, "segment_size", "expected a size of at least 4KiB");
    else if (rc == MS_OK && !v && fs->o.max_size && fs->o.segment_size > fs->o.max_size / 8)
        fs->o.segment_size = fs->o.max_size / 8 < 4096 ? 4096 : fs->o.max_size / 8;
    if (rc == MS_OK && (v = ms_node_get(n, "on_full"))) {
        if (!strcmp(v->value, "drop_newest"))
            fs->o.on_full = MS_SPOOL_DROP_NEWEST;
        else if (strcmp(v->value, "drop_oldest"))
            rc = bad(err, cfg, v, name, "on_full", "expected drop_oldest or drop_newest");
    }
    if (rc == MS_OK && (v = ms_node_get(n, "fsync"))) {
        if (!strcmp(v->value, "batch"))
            fs->o.fsync = 0;
        else if (!strcmp(v->value, "never"))
            fs->o.fsync = -1;
        else if (ms_parse_duration(v->value, &fs->o.fsync) != MS_OK || fs->o.fsync <= 0)
            rc = bad(err, cfg, v, name, "fsync", "expected batch, never or a duration like 1s");
    }
    if (rc == MS_OK && (v = ms_node_get(n, "mode"))) {
        if (!strcmp(v->value, "overflow"))
            fs->overflow = 1;
        else if (strcmp(v->value, "always"))
            rc = bad(err, cfg, v, name, "mode", "expected always or overflow");
    }
    if (rc == MS_OK && (v = ms_node_get(n, "replay_rate")) &&
        parse_rate(v->value, &fs->rate, &fs->rate_bytes) != MS_OK)
        rc = bad(err, cfg, v, name, "replay_rate",
                 "expected chunks per second (100), bytes per second (10MiB/s) or unlimited");
    fs->name = strdup(name);
    if (rc == MS_OK) {
        const char *d = (v = ms_node_get(n, "dir")) ? v->value : NULL;
        char def[4096];
        if (!d) {
            snprintf(def, sizeof def, "%s/spool/%s",
                     cfg->agent.state_dir && *cfg->agent.state_dir ? cfg->agent.state_dir
                                                                   : "/var/lib/moonstat",
                     name);
            d = def;
        }
        fs->base_dir = ms_config_resolve(cfg, d);
        fs->dir = fs->base_dir ? strdup(fs->base_dir) : NULL;
        if (!fs->name || !fs->dir) rc = ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    if (rc != MS_OK) {
        ms_fspool_free(fs);
        return rc;
    }
    fs->wake = wake;
    fs->ud = ud;
    if (loop) {
        fs->timer = malloc(sizeof *fs->timer);
        if (!fs->timer) {
            ms_fspool_free(fs);
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        }
        uv_timer_init(loop, fs->timer);
        fs->timer->data = fs;
        uv_timer_start(fs->timer, tick, 0, TICK_MS);
    }
    *out = fs;
    return MS_OK;
}

/* A routed child (one endpoint of several) spools in a folder of its own. */
void ms_fspool_set_endpoint(ms_fspool *fs, const char *endpoint)
{
    if (!fs || fs->sp || !endpoint) return;
    char sub[512];
    size_t j = 0;
    for (const char *p = endpoint; *p && j < sizeof sub - 1; p++)
        sub[j++] = isalnum((unsigned char)*p) || *p == '.' || *p == '-' ? *p : '_';
    sub[j] = 0;
    char *d = malloc(strlen(fs->base_dir) + j + 2);
    if (!d) return;
    sprintf(d, "%s/%s", fs->base_dir, sub);
    free(fs->dir);
    fs->dir = d;
}

/* The spool, opened on first use (after a routed child learnt its endpoint). */
static ms_spool *sp(ms_fspool *fs)
{
    if (fs->sp || fs->open_failed) return fs->sp;
    char owner[300];
    snprintf(owner, sizeof owner, "forwarder %s", fs->name);
    ms_error err = {0};
    if (ms_spool_open(fs->dir, &fs->o, owner, &fs->sp, &err) != MS_OK) {
        fs->open_failed = 1;
        ms_log_error("%s: %s; going on without a spool (memory buffer only)", owner, err.msg);
        return NULL;
    }
    ms_spool_set_opts(fs->sp, &fs->o);
    if (fs->timer) uv_timer_start(fs->timer, tick, TICK_MS, TICK_MS);
    return fs->sp;
}

/* Periodic: the first tick opens the spool (so what a previous run left is
 * replayed even when nothing new comes); then fsync when due, and replay
 * when there is something unread. */
static void tick(uv_timer_t *t)
{
    ms_fspool *fs = t->data;
    if (!fs->sp && !sp(fs)) {
        uv_timer_stop(t);
        return;
    }
    ms_spool_sync(fs->sp, 0);
    if (ms_spool_unread(fs->sp) && fs->wake) fs->wake(fs->ud);
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

void ms_fspool_free(ms_fspool *fs)
{
    if (!fs) return;
    if (fs->timer) uv_close((uv_handle_t *)fs->timer, timer_closed);
    if (fs->sp) ms_spool_close(fs->sp);
    free(fs->name);
    free(fs->base_dir);
    free(fs->dir);
    free(fs);
}

void ms_fspool_stop(ms_fspool *fs)
{
    if (!fs) return;
    if (fs->timer) uv_timer_stop(fs->timer);
    fs->wake = NULL;
}

/* ---- the data path ---- */

int ms_fspool_put(ms_fspool *fs, const void *p, size_t len, const char *ep, uint32_t ns, double t,
                  int fits, int *spooled)
{
    *spooled = 0;
    ms_spool *s = sp(fs);
    if (!s) return 1;
    uint64_t unread = ms_spool_unread(s);
    if (fs->overflow && !unread && fits) return 1; /* memory only while it fits */
    ms_error err = {0};
    int kept = 0;
    int rc = ms_spool_append(s, p, len, ep, ns, t, fits && !unread, &kept, &err);
    if (rc == MS_OK) {
        *spooled = kept;
        return kept;
    }
    if (rc == MS_EFULL) {
        fs->dropped_newest += ns;
        return 0;
    }
    double now = ms_now();
    if (now - fs->last_err_log >= 60) {
        ms_log_error("forwarder %s: %s; keeping the chunk in memory", fs->name, err.msg);
        fs->last_err_log = now;
    }
    return 1;
}

/* The replay rate is a token bucket holding at most one second's worth (at
 * least one chunk): a record goes when the bucket holds its cost (1, or its
 * bytes, capped at the bucket's size so a big record is not stuck). */
int ms_fspool_next(ms_fspool *fs, ms_spool_rec *rec)
{
    if (!fs->sp || !ms_spool_unread(fs->sp)) return MS_ENOENT;
    int rc = ms_spool_next(fs->sp, rec);
    if (rc != MS_OK || fs->rate <= 0) return rc;
    double now = ms_now(), burst = fs->rate < 1 ? 1 : fs->rate;
    if (fs->last_t == 0) fs->tokens = burst;
    fs->tokens += (now - fs->last_t) * fs->rate;
    if (fs->tokens > burst) fs->tokens = burst;
    fs->last_t = now;
    double cost = fs->rate_bytes ? (double)rec->len : 1;
    return fs->tokens >= (cost < burst ? cost : burst) ? MS_OK : MS_ENOENT;
}

int ms_fspool_take(ms_fspool *fs, const ms_spool_rec *rec, void *dst)
{
    int rc = ms_spool_take(fs->sp, dst);
    if (rc == MS_OK && fs->rate > 0) fs->tokens -= fs->rate_bytes ? (double)rec->len : 1;
    return rc;
}

void ms_fspool_ack(ms_fspool *fs)
{
    if (fs && fs->sp) ms_spool_ack(fs->sp);
}

int ms_fspool_same(ms_fspool *a, const ms_fspool *b)
{
    return a && b && b->sp && sp(a) == b->sp;
}

int ms_fspool_shared(const ms_fspool *fs)
{
    return fs && fs->sp && ms_spool_refs(fs->sp) > 1;
}

void ms_fspool_save(ms_fspool *fs, const void *p, size_t len, const char *ep, uint32_t ns, double t)
{
    ms_spool *s = sp(fs);
    if (!s) return;
    ms_error err = {0};
    int rc = ms_spool_append(s, p, len, ep, ns, t, 0, NULL, &err);
    if (rc == MS_EFULL) fs->dropped_newest += ns;
    if (rc != MS_OK) ms_log_error("forwarder %s: stopping: %s", fs->name, err.msg);
}

void ms_fspool_sync(ms_fspool *fs)
{
    if (fs && fs->sp) ms_spool_sync(fs->sp, 1);
}

double ms_fspool_oldest(ms_fspool *fs)
{
    if (!fs || !fs->sp) return 0;
    ms_spool_stats st;
    ms_spool_get_stats(fs->sp, &st);
    return st.oldest;
}

void ms_fspool_stats(ms_fspool *fs, ms_batch *b, double now, const char *const *kv,
                     uint64_t *dropped_spool)
{
    ms_spool_stats st;
    memset(&st, 0, sizeof st);
    if (fs->sp) ms_spool_get_stats(fs->sp, &st);
    *dropped_spool = fs->dropped_newest + st.dropped_samples;
    ms_stats_add(b, "moonstat_forwarder_spool_bytes", MS_KIND_GAUGE, (double)st.disk_bytes, now,
                 kv);
    ms_stats_add(b, "moonstat_forwarder_spool_samples", MS_KIND_GAUGE,
                 (double)(st.unread_samples + st.loaded_samples), now, kv);
    ms_stats_add(b, "moonstat_forwarder_spool_unread_samples", MS_KIND_GAUGE,
                 (double)st.unread_samples, now, kv);
    ms_stats_add(b, "moonstat_forwarder_spool_segments", MS_KIND_GAUGE, (double)st.segments, now,
                 kv);
    ms_stats_add(b, "moonstat_forwarder_spool_written_bytes_total", MS_KIND_COUNTER,
                 (double)st.appended_bytes, now, kv);
    ms_stats_add(b, "moonstat_forwarder_spool_corrupt_records_total", MS_KIND_COUNTER,
                 (double)st.corrupt_records, now, kv);
    ms_stats_add(b, "moonstat_forwarder_spool_corrupt_bytes_total", MS_KIND_COUNTER,
                 (double)st.corrupt_bytes, now, kv);
}
