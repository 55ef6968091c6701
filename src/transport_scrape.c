/*
 * transport_scrape.c - the pull transport behind the Prometheus forwarder:
 * keeps the latest sample of every series and serves them over HTTP when a
 * scraper asks (GET /metrics), rendered by the forwarder's Lua encoder.
 *
 * Options (declared by the encoder file, defaults applied by the core):
 *   listen      "host:port" the HTTP server listens on
 *   expire      seconds; a series not updated for this long is dropped (0: never)
 *   max_series  bound of the store; past it new series are dropped and counted
 *
 * The store is an open-addressing hash table keyed by series id holding, per
 * series, the last value, timestamp, kind and copies of the message / level
 * texts. It lives on the loop thread only (batches arrive there).
 *
 * Several scrape forwarders may run, each on its own address. On reload the
 * core starts the new forwarder before stopping the old one: a forwarder of
 * the same name on the same address then shares the old one's HTTP server,
 * takes over its routes and its store, so a scrape sees no gap and the port
 * is never closed. A forwarder of another name on a used address is an error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "ms_buf.h"
#include "ms_check.h"
#include "ms_exec.h"
#include "ms_config.h"
#include "ms_err.h"
#include "ms_forwarder.h"
#include "ms_httpd.h"
#include "ms_log.h"
#include "ms_sample.h"
#include "ms_series.h"

#define SCRAPE_CTYPE      "text/plain; version=0.0.4; charset=utf-8"
#define SCRAPE_MAX_SERIES 100000
#define SCRAPE_EXPIRE     300.0
#define SCRAPE_FULL_RETRY 1000 /* ms between expiry passes forced by a full store */

typedef struct entry {
    uint32_t id; /* series id; 0: empty slot */
    uint8_t kind;
    double value, ts;
    uint64_t seen; /* loop time (ms) of the last update */
    char *msg, *level;
    const ms_series *series;
} entry;

typedef struct store {
    entry *tab;
    uint32_t cap; /* power of two, or 0 */
    uint32_t count;
} store;

typedef struct scrape scrape;
typedef struct listener listener;

/* One HTTP server, shared by the forwarders (of one name) on its address. */
struct listener {
    listener *next;
    char host[256];
    int port;
    ms_httpd *srv;
    scrape *users; /* every forwarder on it, newest first */
    scrape *owner; /* the one that answers /metrics */
};

struct scrape {
    ms_forwarder *f;
    scrape *lnext; /* in listener->users */
    listener *l;
    store st;
    uint32_t max_series;
    uint64_t expire_ms; /* 0: never */
    uint64_t last_expire;
    uint64_t dropped;
};

static listener *listeners; /* loop thread only */

/* ---- the store ---- */

static uint32_t hash_id(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void entry_clear(entry *e)
{
    free(e->msg);
    free(e->level);
    memset(e, 0, sizeof *e);
}

static void store_free(store *st)
{
    for (uint32_t i = 0; i < st->cap; i++)
        if (st->tab[i].id) entry_clear(&st->tab[i]);
    free(st->tab);
    memset(st, 0, sizeof *st);
}

/* Slot holding id, or the empty slot where it would go. Needs cap > count. */
static entry *store_slot(store *st, uint32_t id)
{
    uint32_t mask = st->cap - 1, i = hash_id(id) & mask;
    while (st->tab[i].id && st->tab[i].id != id) i = (i + 1) & mask;
    return &st->tab[i];
}

/* Rehash into a table of `cap` slots (moves entries; texts keep their owner). */
static int store_resize(store *st, uint32_t cap)
{
    entry *old = st->tab;
    uint32_t oldcap = st->cap;
    entry *tab = calloc(cap, sizeof *tab);
    if (!tab) return MS_ENOMEM;
    st->tab = tab;
    st->cap = cap;
    for (uint32_t i = 0; i < oldcap; i++)
        if (old[i].id) *store_slot(st, old[i].id) = old[i];
    free(old);
    return MS_OK;
}

/* Remove the entry in slot i, shifting later entries of its probe run back
 * so that lookups never stop early at the hole. */
static void store_delete(store *st, uint32_t i)
{
    uint32_t mask = st->cap - 1;
    entry_clear(&st->tab[i]);
    st->count--;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!st->tab[j].id) return;
        uint32_t home = hash_id(st->tab[j].id) & mask;
        /* move j into the hole i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        st->tab[i] = st->tab[j];
        memset(&st->tab[j], 0, sizeof st->tab[j]);
        i = j;
    }
}

/* Drop every entry not updated since `now - expire`. */
static void scrape_expire(scrape *sc, uint64_t now)
{
    sc->last_expire = now;
    if (!sc->expire_ms || now < sc->expire_ms) return;
    uint64_t limit = now - sc->expire_ms;
    store *st = &sc->st;
    uint32_t i = 0;
    while (i < st->cap) {
        /* a deletion may shift the next entry into slot i: look at it again */
        if (st->tab[i].id && st->tab[i].seen < limit)
            store_delete(st, i);
        else
            i++;
    }
}

/* Replace *dst with a copy of src (NULL clears); keeps it when unchanged. */
static int set_text(char **dst, const char *src)
{
    if (!src) {
        free(*dst);
        *dst = NULL;
        return MS_OK;
    }
    if (*dst && strcmp(*dst, src) == 0) return MS_OK;
    char *p = strdup(src);
    if (!p) return MS_ENOMEM;
    free(*dst);
    *dst = p;
    return MS_OK;
}

/* The entry for id, inserted empty when new; NULL when the store is full
 * (or memory ran out, or the id is unknown). */
static entry *scrape_entry(scrape *sc, uint32_t id, uint64_t now)
{
    store *st = &sc->st;
    if (st->cap) {
        entry *e = store_slot(st, id);
        if (e->id) return e;
    }
    if (st->count >= sc->max_series) {
        if (now - sc->last_expire < SCRAPE_FULL_RETRY) return NULL;
        scrape_expire(sc, now);
        if (st->count >= sc->max_series) return NULL;
    }
    if ((uint64_t)(st->count + 1) * 2 > st->cap) {
        uint32_t cap = st->cap ? st->cap * 2 : 64;
        if (cap < st->cap || store_resize(st, cap) != MS_OK) return NULL;
    }
    const ms_series *s = ms_series_get(id);
    if (!s) return NULL;
    entry *e = store_slot(st, id);
    e->id = id;
    e->series = s;
    st->count++;
    return e;
}

/* ---- HTTP handlers ---- */

static int cmp_entry(const void *a, const void *b)
{
    const ms_series *x = (*(const entry *const *)a)->series;
    const ms_series *y = (*(const entry *const *)b)->series;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->key, y->key);
}

/* Build a batch of the stored samples, sorted by series name then key.
 * Returns a new batch (caller unrefs) or NULL when memory ran out. */
static ms_batch *scrape_snapshot(scrape *sc)
{
    store *st = &sc->st;
    entry **v = malloc(((size_t)st->count + 1) * sizeof *v);
    ms_batch *b = ms_batch_new(st->count ? st->count : 1);
    if (!v || !b) {
        free(v);
        ms_batch_unref(b);
        return NULL;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < st->cap; i++)
        if (st->tab[i].id) v[n++] = &st->tab[i];
    qsort(v, n, sizeof *v, cmp_entry);
    for (uint32_t i = 0; i < n; i++) {
        const entry *e = v[i];
        if (ms_batch_add(b, e->id, (ms_kind)e->kind, e->value, e->ts, e->msg,
                         e->msg ? strlen(e->msg) : 0, e->level,
                         e->level ? strlen(e->level) : 0) != MS_OK) {
            ms_batch_unref(b);
            b = NULL;
            break;
        }
    }
    free(v);
    return b;
}

/* GET /metrics: expire, snapshot, encode through the Lua encoder. */
static void on_metrics(const char *path, const char *query, ms_http_response *res, void *ud)
{
    scrape *sc = ud;
    scrape_expire(sc, uv_now(ms_forwarder_loop(sc->f)));
    res->content_type = SCRAPE_CTYPE;
    ms_batch *b = scrape_snapshot(sc);
    ms_error err = {0};
    int rc = b ? ms_forwarder_encode(sc->f, b, &res->body, &err)
               : ms_error_set(&err, MS_ENOMEM, "out of memory");
    ms_batch_unref(b);
    if (rc != MS_OK) {
        ms_forwarder_log(sc->f, MS_LOG_ERROR, "/metrics: %s", err.msg);
        ms_buf_reset(&res->body);
        res->status = 500;
        res->content_type = NULL;
        ms_buf_printf(&res->body, "moonstat: encoding /metrics failed: %s\n", err.msg);
    }
}

/* GET /health: the checks' and scripts' state as JSON. */
static void on_health(const char *path, const char *query, ms_http_response *res, void *ud)
{
    res->content_type = "application/json";
    ms_checks_health_json(&res->body);
    if (res->body.len && res->body.data[res->body.len - 1] == '}') {
        res->body.len--; /* {"checks":...} -> {"checks":...,"scripts":{...}} */
        ms_buf_puts(&res->body, ",\"scripts\":");
        ms_exec_health_json(&res->body);
        ms_buf_puts(&res->body, "}");
    }
}

/* Make sc the forwarder answering on its listener's routes. */
static int listener_own(listener *l, scrape *sc)
{
    if (ms_httpd_route(l->srv, "/metrics", on_metrics, sc) != MS_OK ||
        ms_httpd_route(l->srv, "/health", on_health, sc) != MS_OK)
        return MS_ENOMEM;
    l->owner = sc;
    return MS_OK;
}

/* ---- the transport ---- */

static void scrape_free(scrape *sc)
{
    if (!sc) return;
    store_free(&sc->st);
    free(sc);
}

/* Read the options into sc; errors name the forwarder and the option. */
static int scrape_options(ms_forwarder *f, scrape *sc, char *host, size_t hostcap, int *port,
                          ms_error *err)
{
    const char *name = ms_forwarder_name(f);
    const char *listen = ms_forwarder_opt_str(f, "listen");
    if (!listen) listen = "127.0.0.1:9558";
    if (ms_parse_address(listen, host, hostcap, port) != MS_OK)
        return ms_error_set(err, MS_EINVAL, "forwarder %s: listen: bad address \"%s\"", name,
                            listen);
    double v = SCRAPE_EXPIRE;
    ms_forwarder_opt_num(f, "expire", &v);
    if (!(v >= 0 && v < 1e9))
        return ms_error_set(err, MS_EINVAL, "forwarder %s: expire: must be >= 0 seconds", name);
    sc->expire_ms = (uint64_t)(v * 1000.0);
    v = SCRAPE_MAX_SERIES;
    ms_forwarder_opt_num(f, "max_series", &v);
    if (!(v >= 1 && v <= 1e9))
        return ms_error_set(err, MS_EINVAL, "forwarder %s: max_series: must be 1..1e9", name);
    sc->max_series = (uint32_t)v;
    return MS_OK;
}

/* Start: read the options, then listen (or join the listener a previous
 * instance of this forwarder holds, taking over its store). Without a loop
 * (moonstat --config-test) only the options are checked. */
static int scrape_start(ms_forwarder *f, ms_error *err)
{
    scrape *sc = calloc(1, sizeof *sc);
    if (!sc) return ms_error_set(err, MS_ENOMEM, "out of memory");
    sc->f = f;
    char host[256];
    int port = 0;
    int rc = scrape_options(f, sc, host, sizeof host, &port, err);
    if (rc != MS_OK) {
        scrape_free(sc);
        return rc;
    }
    if (!ms_forwarder_loop(f)) { /* --config-test: the options were all to check */
        scrape_free(sc);
        return MS_OK;
    }
    sc->last_expire = uv_now(ms_forwarder_loop(f));
    const char *name = ms_forwarder_name(f);
    listener *l = listeners;
    while (l && (l->port != port || strcmp(l->host, host) != 0)) l = l->next;
    if (l) {
        const char *other = l->owner ? ms_forwarder_name(l->owner->f) : "";
        if (l->owner && strcmp(other, name) != 0) {
            scrape_free(sc);
            return ms_error_set(err, MS_EINVAL,
                                "forwarder %s: listen %s:%d is already used by forwarder %s", name,
                                host, port, other);
        }
        scrape *prev = l->owner;
        if (listener_own(l, sc) != MS_OK) {
            if (prev) listener_own(l, prev);
            scrape_free(sc);
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        }
        /* reload: the previous instance's store moves here */
        if (prev) {
            store tmp = sc->st;
            sc->st = prev->st;
            prev->st = tmp;
        }
        ms_forwarder_log(f, MS_LOG_INFO, "serving /metrics on %s:%d (kept open, %u series kept)",
                         host, port, sc->st.count);
    } else {
        l = calloc(1, sizeof *l);
        if (!l) {
            scrape_free(sc);
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        }
        snprintf(l->host, sizeof l->host, "%s", host);
        l->port = port;
        rc = ms_httpd_start(ms_forwarder_loop(f), host, port, &l->srv, err);
        if (rc == MS_OK && listener_own(l, sc) != MS_OK) {
            ms_httpd_stop(l->srv, NULL, NULL);
            rc = ms_error_set(err, MS_ENOMEM, "out of memory");
        }
        if (rc != MS_OK) {
            char msg[MS_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            ms_error_set(err, rc, "forwarder %s: %s", name, msg);
            free(l);
            scrape_free(sc);
            return rc;
        }
        l->next = listeners;
        listeners = l;
        ms_forwarder_log(f, MS_LOG_INFO, "serving http://%s%s%s:%d/metrics",
                         strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
    }
    sc->l = l;
    sc->lnext = l->users;
    l->users = sc;
    ms_forwarder_set_data(f, sc);
    return MS_OK;
}

/* A batch arrived (borrowed): keep the latest sample of each series. */
static void scrape_batch(ms_forwarder *f, ms_batch *b)
{
    scrape *sc = ms_forwarder_data(f);
    if (!sc) return;
    uint64_t now = uv_now(ms_forwarder_loop(f));
    uint64_t dropped = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *s = &b->s[i];
        entry *e = s->series ? scrape_entry(sc, s->series, now) : NULL;
        if (!e || set_text(&e->msg, ms_batch_text(b, s->msg)) != MS_OK ||
            set_text(&e->level, ms_batch_text(b, s->level)) != MS_OK) {
            dropped++;
            continue;
        }
        e->kind = s->kind;
        e->value = s->value;
        e->ts = s->ts;
        e->seen = now;
    }
    if (dropped) {
        if (sc->dropped == 0 || (sc->dropped + dropped) / 10000 != sc->dropped / 10000)
            ms_forwarder_log(f, MS_LOG_WARN,
                             "store full (max_series %u): %llu samples of new series dropped",
                             sc->max_series, (unsigned long long)(sc->dropped + dropped));
        sc->dropped += dropped;
        ms_forwarder_count_failed(f, dropped);
    }
}

static void on_server_closed(void *ud)
{
    scrape *sc = ud;
    ms_forwarder *f = sc->f;
    scrape_free(sc);
    ms_forwarder_closed(f);
}

/* Stop: leave the listener; the last one out stops the HTTP server. */
static void scrape_stop(ms_forwarder *f)
{
    scrape *sc = ms_forwarder_data(f);
    ms_forwarder_set_data(f, NULL);
    if (!sc) {
        ms_forwarder_closed(f);
        return;
    }
    listener *l = sc->l;
    for (scrape **pp = &l->users; *pp; pp = &(*pp)->lnext) {
        if (*pp == sc) {
            *pp = sc->lnext;
            break;
        }
    }
    if (l->users) {
        if (l->owner == sc && listener_own(l, l->users) != MS_OK) {
            ms_httpd_unroute(l->srv, "/metrics");
            ms_httpd_unroute(l->srv, "/health");
            l->owner = NULL;
        }
        scrape_free(sc);
        ms_forwarder_closed(f);
        return;
    }
    for (listener **pp = &listeners; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    ms_httpd *srv = l->srv;
    free(l);
    ms_httpd_stop(srv, on_server_closed, sc);
}

const ms_transport ms_transport_scrape = {
    .name = "scrape",
    .pull = 1,
    .start = scrape_start,
    .batch = scrape_batch,
    .kick = NULL,
    .stop = scrape_stop,
};
