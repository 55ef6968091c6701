/*
 * forwarder_route.c - forwarder-level routing (see ms_route.h):
 *  - include/exclude rules, checked here with config.yaml line:col and run
 *    by the `filter` processor (lua/processors/filter.lua: one decision per
 *    series, cached);
 *  - several endpoints per forwarder: one child forwarder per endpoint (its
 *    own transport, queue and counters), fed by failover (one active
 *    endpoint; a failing one hands its queue to the next) or by a consistent
 *    hash ring keyed by the series (each batch split per endpoint before
 *    encoding, so a down endpoint only holds up its own share).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "ms_log.h"
#include "ms_processor.h"
#include "ms_route.h"
#include "ms_series.h"
#include "ms_stats.h"

#define MAX_ENDPOINTS 256

/* ---- the ring ---- */

typedef struct ring_point {
    uint64_t h;
    uint32_t idx;
} ring_point;

struct ms_ring {
    size_t n; /* points */
    ring_point *p;
};

/* splitmix64's finalizer: a bijection that spreads every input bit. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t ms_route_hash(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h ^ len);
}

static int point_cmp(const void *a, const void *b)
{
    const ring_point *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx; /* ties: by index, deterministic */
}

/* Points of endpoint i: its name's hash mixed with the point's number. */
ms_ring *ms_ring_new(const char *const *names, size_t n, unsigned vnodes)
{
    if (n == 0 || n > 65535 || vnodes == 0) return NULL;
    ms_ring *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->n = n * vnodes;
    r->p = malloc(r->n * sizeof *r->p);
    if (!r->p) {
        free(r);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t base = ms_route_hash(names[i], strlen(names[i]));
        for (unsigned k = 0; k < vnodes; k++)
            r->p[i * vnodes + k] =
                (ring_point){mix64(base + (uint64_t)(k + 1) * 0x9e3779b97f4a7c15ULL), (uint32_t)i};
    }
    qsort(r->p, r->n, sizeof *r->p, point_cmp);
    return r;
}

/* The first point at or after the key's hash (wrapping past the end). */
size_t ms_ring_pick(const ms_ring *r, const void *key, size_t len)
{
    uint64_t h = ms_route_hash(key, len);
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->p[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return r->p[lo == r->n ? 0 : lo].idx;
}

void ms_ring_free(ms_ring *r)
{
    if (!r) return;
    free(r->p);
    free(r);
}

/* ---- the route ---- */

struct ms_route {
    ms_forwarder *parent;
    char *name;
    int live, stopping;
    ms_procs *rules; /* the filter processor for include/exclude, or NULL */
    uint64_t excluded;
    /* endpoints */
    size_t n;
    ms_forwarder **child;
    char **ep;       /* endpoint texts, as configured */
    uint8_t *up;     /* last outcome of each endpoint: 1 sent (or not tried), 0 failed */
    ms_node **shell; /* each child's section: the parent's items plus its endpoint */
    ms_node *epnode; /* the endpoint scalars, one per child */
    int hash;
    ms_ring *ring;
    uint16_t *slot; /* series id -> child + 1 (0: not looked up yet) */
    uint32_t nslot;
    uint16_t *pick; /* scratch: the child of each sample of a batch */
    uint32_t npick;
    uint32_t *count; /* scratch: samples per child */
    size_t active;   /* failover: the endpoint that gets new batches */
    double failback, switched;
    uint64_t failovers;
    int moving;  /* a failover is moving a queue: ignore nested reports */
    size_t left; /* children still stopping */
};

static const char *const route_keys[] = {"include", "exclude", "endpoints", "balance", "failback"};

int ms_route_is_key(const char *key)
{
    for (size_t i = 0; i < sizeof route_keys / sizeof *route_keys; i++)
        if (!strcmp(key, route_keys[i])) return 1;
    return 0;
}

static void stats_provider(ms_batch *b, double now, void *ud);

/* ---- include / exclude ---- */

/* One rule entry: a glob (scalar), or a map with `name` (a glob) and/or
 * `tags` (a map of tag key to glob). */
static int check_entry(const ms_config *cfg, const char *what, const ms_node *e, ms_error *err)
{
    if (e->type == MS_NODE_SCALAR) {
        if (!e->value[0])
            return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s: empty glob", cfg->path, e->line,
                                e->col, what);
        return MS_OK;
    }
    if (e->type != MS_NODE_MAP || e->n == 0)
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: %s: expected a name glob or a map with name and/or tags",
                            cfg->path, e->line, e->col, what);
    for (size_t i = 0; i < e->n; i++) {
        const ms_node *v = e->items[i];
        if (!strcmp(v->key, "name")) {
            if (v->type != MS_NODE_SCALAR || !v->value[0])
                return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s.name: expected a glob", cfg->path,
                                    v->line, v->col, what);
        } else if (!strcmp(v->key, "tags")) {
            if (v->type != MS_NODE_MAP || v->n == 0)
                return ms_error_set(err, MS_EINVAL,
                                    "%s:%d:%d: %s.tags: expected a map of tag key to glob, e.g. "
                                    "{ env: prod }",
                                    cfg->path, v->line, v->col, what);
            for (size_t k = 0; k < v->n; k++)
                if (v->items[k]->type != MS_NODE_SCALAR)
                    return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s.tags.%s: expected a glob",
                                        cfg->path, v->items[k]->line, v->items[k]->col, what,
                                        v->items[k]->key);
        } else {
            return ms_error_set(err, MS_EINVAL,
                                "%s:%d:%d: %s: unknown key '%s' (known: name, tags)", cfg->path,
                                v->key_line, v->key_col, what, v->key);
        }
    }
    return MS_OK;
}

/* `include` or `exclude` of forwarder `name`: one entry or a list of them. */
static int check_rules(const ms_config *cfg, const char *name, const ms_node *n, ms_error *err)
{
    char what[512];
    if (n->type != MS_NODE_SEQ) {
        snprintf(what, sizeof what, "forwarders.%s.%s", name, n->key);
        return check_entry(cfg, what, n, err);
    }
    for (size_t i = 0; i < n->n; i++) {
        snprintf(what, sizeof what, "forwarders.%s.%s[%zu]", name, n->key, i);
        int rc = check_entry(cfg, what, n->items[i], err);
        if (rc != MS_OK) return rc;
    }
    return MS_OK;
}

/* Load the rules as the list [ { filter: { include: ..., exclude: ... } } ]
 * (nodes built here around the section's own: used only while loading). */
static int make_rules(ms_route *r, lua_State *L, const ms_config *cfg, const ms_node *inc,
                      const ms_node *exc, ms_error *err)
{
    ms_node *set_items[2], wrap[2], *one[2];
    size_t nset = 0;
    const ms_node *rules[2] = {inc, exc};
    for (size_t i = 0; i < 2; i++) {
        if (!rules[i]) continue;
        set_items[nset] = (ms_node *)rules[i];
        if (rules[i]->type != MS_NODE_SEQ) { /* one entry: a list of one for the filter */
            wrap[i] = *rules[i];
            wrap[i].type = MS_NODE_SEQ;
            wrap[i].n = 1;
            one[i] = (ms_node *)rules[i];
            wrap[i].items = &one[i];
            set_items[nset] = &wrap[i];
        }
        nset++;
    }
    const ms_node *pos = inc ? inc : exc;
    ms_node set = {.type = MS_NODE_MAP, .line = pos->line, .col = pos->col, .key = "filter"};
    set.n = nset;
    set.items = set_items;
    ms_node *setp = &set;
    ms_node item = {.type = MS_NODE_MAP, .line = pos->line, .col = pos->col, .n = 1};
    item.items = &setp;
    ms_node *itemp = &item;
    ms_node list = {.type = MS_NODE_SEQ, .line = pos->line, .col = pos->col, .n = 1};
    list.items = &itemp;
    char ctx[512];
    snprintf(ctx, sizeof ctx, "forwarders.%s (include/exclude)", r->name);
    return ms_procs_new(L, cfg, &list, ctx, r->name, 0, 1, &r->rules, err);
}

/* include/exclude over b (the caller's reference is taken), counting what
 * was left out. */
ms_batch *ms_route_filter(ms_route *r, ms_batch *b)
{
    if (!r || !r->rules || !b) return b;
    uint32_t before = b->n;
    b = ms_procs_apply(r->rules, b);
    r->excluded += before - (b ? b->n : 0);
    return b;
}

int ms_route_changed(const ms_route *r, const ms_config *cfg)
{
    return r && ms_procs_changed(r->rules, cfg);
}

/* ---- endpoints ---- */

/* Validate endpoints/balance/failback; fills r->n, r->hash, r->failback. */
static int check_endpoints(ms_route *r, const ms_config *cfg, const ms_node *section,
                           const ms_transport *tp, const char *optkey, ms_error *err)
{
    const ms_node *eps = ms_node_get(section, "endpoints");
    const ms_node *bal = ms_node_get(section, "balance");
    const ms_node *fb = ms_node_get(section, "failback");
    const char *name = r->name;
    if (!eps) {
        const ms_node *stray = bal ? bal : fb;
        if (stray)
            return ms_error_set(err, MS_EINVAL, "%s:%d:%d: forwarders.%s.%s: needs endpoints",
                                cfg->path, stray->key_line, stray->key_col, name, stray->key);
        return MS_OK;
    }
    if (tp->pull)
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s.endpoints: the %s transport serves what is "
                            "scraped; endpoints are for forwarders that send",
                            cfg->path, eps->key_line, eps->key_col, name, tp->name);
    if (strcmp(tp->name, "tcp") && strcmp(tp->name, "udp") && strcmp(tp->name, "http"))
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s.endpoints: the %s transport has no "
                            "endpoints (they are for tcp, udp and http forwarders)%s",
                            cfg->path, eps->key_line, eps->key_col, name, tp->name,
                            strcmp(tp->name, "kafka") ? "" : "; kafka takes its `brokers` list");
    if (eps->type != MS_NODE_SEQ || eps->n == 0 || eps->n > MAX_ENDPOINTS)
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s.endpoints: expected a list of 1 to %d %s",
                            cfg->path, eps->line, eps->col, name, MAX_ENDPOINTS,
                            strcmp(optkey, "url") ? "host:port addresses" : "URLs");
    const ms_node *own = ms_node_get(section, optkey);
    if (own)
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s: give %s or endpoints, not both", cfg->path,
                            own->key_line, own->key_col, name, optkey);
    for (size_t i = 0; i < eps->n; i++) {
        const ms_node *e = eps->items[i];
        char host[256];
        int port;
        if (e->type != MS_NODE_SCALAR || !e->value[0] ||
            (strcmp(optkey, "url") && ms_parse_address(e->value, host, sizeof host, &port)))
            return ms_error_set(
                err, MS_EINVAL, "%s:%d:%d: forwarders.%s.endpoints[%zu]: expected %s", cfg->path,
                e->line, e->col, name, i, strcmp(optkey, "url") ? "host:port" : "a URL");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(eps->items[j]->value, e->value))
                return ms_error_set(err, MS_EINVAL,
                                    "%s:%d:%d: forwarders.%s.endpoints[%zu]: '%s' is listed twice",
                                    cfg->path, e->line, e->col, name, i, e->value);
    }
    if (bal && (bal->type != MS_NODE_SCALAR ||
                (strcmp(bal->value, "failover") && strcmp(bal->value, "hash"))))
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s.balance: expected failover or hash", cfg->path,
                            bal->line, bal->col, name);
    r->hash = bal && !strcmp(bal->value, "hash");
    r->failback = 30;
    if (fb && r->hash)
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s.failback: only for balance: failover",
                            cfg->path, fb->key_line, fb->key_col, name);
    if (fb && (fb->type != MS_NODE_SCALAR || ms_parse_duration(fb->value, &r->failback) != MS_OK ||
               r->failback <= 0))
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: forwarders.%s.failback: expected a duration like 30s",
                            cfg->path, fb->line, fb->col, name);
    r->n = eps->n;
    return MS_OK;
}

/* The section of child i: the parent's items but the routing keys and the
 * processors (the parent runs those), plus `optkey: <endpoint i>` placed
 * where the endpoint is written (so its errors point there). */
static int make_shell(ms_route *r, const ms_node *section, const ms_node *ep, const char *optkey,
                      size_t i)
{
    ms_node *s = calloc(1, sizeof *s);
    if (!s) return MS_ENOMEM;
    r->shell[i] = s;
    *s = *section;
    s->n = 0;
    s->items = calloc(section->n + 1, sizeof *s->items);
    if (!s->items) return MS_ENOMEM;
    for (size_t k = 0; k < section->n; k++) {
        const ms_node *v = section->items[k];
        if (ms_route_is_key(v->key) || !strcmp(v->key, "processors")) continue;
        s->items[s->n++] = (ms_node *)v;
    }
    ms_node *e = &r->epnode[i];
    *e = *ep;
    e->key = (char *)optkey;
    e->key_line = ep->line;
    e->key_col = ep->col;
    s->items[s->n++] = e;
    return MS_OK;
}

/* A child created before a later one failed: stop it, then free it. */
static void orphan_stopped(ms_forwarder *child)
{
    ms_forwarder_free(child);
}

/* One child forwarder per endpoint (started with the loop); on a failure
 * the ones already started are stopped and free themselves. */
static int make_children(ms_route *r, uv_loop_t *loop, lua_State *L, const ms_config *cfg,
                         const ms_node *section, const char *optkey, ms_error *err)
{
    const ms_node *eps = ms_node_get(section, "endpoints");
    r->child = calloc(r->n, sizeof *r->child);
    r->ep = calloc(r->n, sizeof *r->ep);
    r->up = calloc(r->n, 1);
    r->shell = calloc(r->n, sizeof *r->shell);
    r->epnode = calloc(r->n, sizeof *r->epnode);
    r->count = calloc(r->n, sizeof *r->count);
    if (!r->child || !r->ep || !r->up || !r->shell || !r->epnode || !r->count)
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n; i++) {
        r->up[i] = 1;
        r->ep[i] = strdup(eps->items[i]->value);
        if (!r->ep[i] || make_shell(r, section, eps->items[i], optkey, i) != MS_OK)
            return ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    if (r->hash && !(r->ring = ms_ring_new((const char *const *)r->ep, r->n, MS_RING_VNODES)))
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n; i++) {
        int rc = ms_forwarder_new(loop, L, cfg, r->name, r->shell[i], &r->child[i], err);
        if (rc != MS_OK) {
            for (size_t k = 0; loop && k < i; k++) { /* started: stop them first */
                ms_forwarder_set_owner(r->child[k], NULL, NULL);
                ms_forwarder_stop(r->child[k], 0, orphan_stopped);
                r->child[k] = NULL;
            }
            return rc;
        }
        ms_forwarder_set_owner(r->child[i], r, r->ep[i]);
    }
    return MS_OK;
}

/* Check the routing keys, load the rules, create the children. */
int ms_route_new(uv_loop_t *loop, lua_State *L, const ms_config *cfg, ms_forwarder *f,
                 const ms_node *section, const ms_transport *tp, ms_route **out, ms_error *err)
{
    *out = NULL;
    const ms_node *inc = ms_node_get(section, "include");
    const ms_node *exc = ms_node_get(section, "exclude");
    if (inc && ms_node_is_null(inc)) inc = NULL;
    if (exc && ms_node_is_null(exc)) exc = NULL;
    int any = inc || exc;
    for (size_t i = 2; i < sizeof route_keys / sizeof *route_keys; i++)
        any |= ms_node_get(section, route_keys[i]) != NULL;
    if (!any) return MS_OK;
    ms_route *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(ms_forwarder_name(f)))) {
        free(r);
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    r->parent = f;
    const char *optkey = strcmp(tp->name, "http") ? "address" : "url";
    int rc = MS_OK;
    if (inc) rc = check_rules(cfg, r->name, inc, err);
    if (rc == MS_OK && exc) rc = check_rules(cfg, r->name, exc, err);
    if (rc == MS_OK) rc = check_endpoints(r, cfg, section, tp, optkey, err);
    if (rc == MS_OK && (inc || exc)) rc = make_rules(r, L, cfg, inc, exc, err);
    if (rc == MS_OK && r->n) rc = make_children(r, loop, L, cfg, section, optkey, err);
    if (rc != MS_OK) {
        ms_route_free(r);
        return rc;
    }
    r->switched = ms_now();
    if (loop) {
        r->live = 1;
        ms_stats_register(stats_provider, r);
    }
    *out = r;
    return MS_OK;
}

int ms_route_has_endpoints(const ms_route *r)
{
    return r && r->n > 0;
}

/* The child of a series: from the cache, else from the ring (then cached;
 * ids never change meaning, and they are bounded by agent.max_series). */
static size_t child_of(ms_route *r, uint32_t series)
{
    if (series < r->nslot && r->slot[series]) return r->slot[series] - 1u;
    const ms_series *s = ms_series_get(series);
    size_t idx = s ? ms_ring_pick(r->ring, s->key, s->key_len) : 0;
    if (series >= r->nslot) {
        uint32_t n = r->nslot ? r->nslot : 1024;
        while (n <= series) n *= 2;
        uint16_t *ns = realloc(r->slot, (size_t)n * sizeof *ns);
        if (!ns) return idx; /* not cached: looked up again next time */
        memset(ns + r->nslot, 0, (size_t)(n - r->nslot) * sizeof *ns);
        r->slot = ns;
        r->nslot = n;
    }
    r->slot[series] = (uint16_t)(idx + 1);
    return idx;
}

/* Split b by series over the ring; each child gets its share as a batch of
 * its own (or b itself when all of b is one child's). */
static void send_hash(ms_route *r, ms_batch *b)
{
    if (b->n > r->npick) {
        uint16_t *np = realloc(r->pick, (size_t)b->n * sizeof *np);
        if (!np) {
            ms_log_error("forwarder %s: out of memory splitting a batch of %u samples; dropped",
                         r->name, b->n);
            ms_forwarder_count_failed(r->child[0], b->n);
            return;
        }
        r->pick = np;
        r->npick = b->n;
    }
    memset(r->count, 0, r->n * sizeof *r->count);
    for (uint32_t i = 0; i < b->n; i++) {
        size_t c = child_of(r, b->s[i].series);
        r->pick[i] = (uint16_t)c;
        r->count[c]++;
    }
    for (size_t c = 0; c < r->n; c++) {
        if (r->count[c] == b->n) {
            ms_forwarder_send(r->child[c], b);
            return;
        }
    }
    for (size_t c = 0; c < r->n; c++) {
        if (!r->count[c]) continue;
        ms_batch *part = ms_batch_new(r->count[c]);
        uint64_t lost = part ? 0 : r->count[c];
        for (uint32_t i = 0; part && i < b->n; i++) {
            if (r->pick[i] != c) continue;
            const ms_sample *s = &b->s[i];
            const char *msg = ms_batch_text(b, s->msg), *lvl = ms_batch_text(b, s->level);
            if (ms_batch_add(part, s->series, (ms_kind)s->kind, s->value, s->ts, msg,
                             msg ? strlen(msg) : 0, lvl, lvl ? strlen(lvl) : 0) != MS_OK)
                lost++;
        }
        if (lost) ms_forwarder_count_failed(r->child[c], lost);
        if (part && part->n) ms_forwarder_send(r->child[c], part);
        ms_batch_unref(part);
    }
}

/* Hash: split b over the ring. Failover: b to the active endpoint, the
 * first one again once `failback` has passed since the last switch. */
int ms_route_send(ms_route *r, ms_batch *b)
{
    if (!r || !r->n) return 0;
    if (r->hash) {
        send_hash(r, b);
        return 1;
    }
    double now = ms_now();
    if (r->active != 0 && now - r->switched >= r->failback) {
        ms_forwarder_log(r->parent, MS_LOG_INFO, "failing back to %s", r->ep[0]);
        r->active = 0;
        r->switched = now;
    }
    ms_forwarder_send(r->child[r->active], b);
    return 1;
}

static size_t index_of(const ms_route *r, const ms_forwarder *child)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->child[i] == child) return i;
    return r->n;
}

/* Failover: when the active endpoint fails, the next one (the first that has
 * not failed last, in order) becomes active; a failed endpoint hands what it
 * queued to the active one. Hash: only noted (a series stays on its
 * endpoint; its share waits in that endpoint's queue). */
void ms_route_endpoint_failed(ms_route *r, ms_forwarder *child)
{
    size_t i = index_of(r, child);
    if (i == r->n) return;
    r->up[i] = 0;
    if (r->hash || r->stopping || r->moving || r->n < 2) return;
    r->moving = 1;
    if (i == r->active) {
        size_t next = (i + 1) % r->n;
        for (size_t k = 1; k < r->n; k++) {
            size_t j = (i + k) % r->n;
            if (r->up[j]) {
                next = j;
                break;
            }
        }
        ms_forwarder_log(r->parent, MS_LOG_WARN, "endpoint %s failed; failing over to %s", r->ep[i],
                         r->ep[next]);
        r->active = next;
        r->switched = ms_now();
        r->failovers++;
    }
    ms_forwarder_take_queue(r->child[r->active], child);
    r->moving = 0;
}

void ms_route_endpoint_ok(ms_route *r, ms_forwarder *child)
{
    size_t i = index_of(r, child);
    if (i < r->n) r->up[i] = 1;
}

/* ---- reload, stop, free ---- */

/* Reload: old child -> new child of the same endpoint (else the active one,
 * or the new plain forwarder); an old plain forwarder -> the active child. */
void ms_route_take_queue(ms_forwarder *to, ms_route *to_r, ms_forwarder *from, ms_route *from_r)
{
    int to_many = ms_route_has_endpoints(to_r);
    if (!ms_route_has_endpoints(from_r)) {
        if (to_many) ms_forwarder_take_queue(to_r->child[to_r->active], from);
        return;
    }
    for (size_t i = 0; i < from_r->n; i++) {
        ms_forwarder *target = to;
        if (to_many) {
            size_t j = 0;
            while (j < to_r->n && strcmp(to_r->ep[j], from_r->ep[i])) j++;
            target = to_r->child[j < to_r->n ? j : to_r->active];
        }
        ms_forwarder_take_queue(target, from_r->child[i]);
    }
}

static void child_stopped(ms_forwarder *child)
{
    ms_route *r = ms_forwarder_owner(child);
    if (r && --r->left == 0) ms_forwarder_closed(r->parent);
}

/* Stop counting; stop each child, the last one to close closes the parent. */
int ms_route_stop(ms_route *r, double timeout)
{
    if (!r) return 0;
    r->stopping = 1;
    if (r->live) ms_stats_unregister(stats_provider, r);
    r->live = 0;
    if (!r->n) return 0;
    r->left = r->n;
    for (size_t i = 0; i < r->n; i++) ms_forwarder_stop(r->child[i], timeout, child_stopped);
    return 1;
}

void ms_route_free(ms_route *r)
{
    if (!r) return;
    if (r->live) ms_stats_unregister(stats_provider, r);
    ms_procs_free(r->rules);
    for (size_t i = 0; i < r->n; i++) {
        if (r->child) ms_forwarder_free(r->child[i]);
        if (r->ep) free(r->ep[i]);
        if (r->shell && r->shell[i]) free(r->shell[i]->items);
        if (r->shell) free(r->shell[i]);
    }
    free(r->child);
    free(r->ep);
    free(r->up);
    free(r->shell);
    free(r->epnode);
    free(r->count);
    free(r->pick);
    free(r->slot);
    ms_ring_free(r->ring);
    free(r->name);
    free(r);
}

/* moonstat_forwarder_excluded_samples_total (with rules); per endpoint
 * moonstat_forwarder_endpoint_up and, for failover,
 * moonstat_forwarder_failovers_total. */
static void stats_provider(ms_batch *b, double now, void *ud)
{
    ms_route *r = ud;
    const char *kv[] = {"forwarder", r->name, NULL, NULL, NULL};
    if (r->rules)
        ms_stats_add(b, "moonstat_forwarder_excluded_samples_total", MS_KIND_COUNTER,
                     (double)r->excluded, now, kv);
    if (r->n && !r->hash)
        ms_stats_add(b, "moonstat_forwarder_failovers_total", MS_KIND_COUNTER, (double)r->failovers,
                     now, kv);
    for (size_t i = 0; i < r->n; i++) {
        kv[2] = "endpoint";
        kv[3] = r->ep[i];
        ms_stats_add(b, "moonstat_forwarder_endpoint_up", MS_KIND_GAUGE, r->up[i], now, kv);
    }
}
