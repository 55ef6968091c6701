/*
 * statsd_agg.c - StatsD aggregation with Etsy statsd 0.9's semantics (see
 * ms_statsd.h, docs/statsd.md): counters, timers (percentiles, top-N,
 * histogram bins), persistent gauges with deltas, sets, and the delete*
 * family; bounded by a series cap, a per-timer cap on exact values (then a
 * log-bucket sketch with 1% relative error) and idle expiry.
 *
 * A table is an open-addressing hash of entries keyed by type + name + sorted
 * tags (layout in statsd_int.h). statsd_flush.c turns a table into samples.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_err.h"
#include "ms_series.h"
#include "ms_statsd.h"
#include "statsd_int.h"

/* ---- the sketch: log buckets, relative error SK_ALPHA ---- */

static double sk_gamma(void)
{
    return (1 + SK_ALPHA) / (1 - SK_ALPHA);
}

static int sk_index(double v) /* v > 0 */
{
    static double lg;
    if (!lg) lg = log(sk_gamma());
    double i = ceil(log(v) / lg) + SK_OFF;
    if (i < 0) i = 0;
    if (i > SK_BINS - 1) i = SK_BINS - 1;
    return (int)i;
}

double ms_sd_sketch_value(int i)
{
    double g = sk_gamma();
    return 2 * pow(g, i - SK_OFF) / (g + 1);
}

static void sk_add(sketch *s, double v, uint32_t n)
{
    if (v > 0)
        s->pos[sk_index(v)] += n;
    else if (v < 0)
        s->neg[sk_index(-v)] += n;
    else
        s->zero += n;
}

int ms_sd_sketch_next(walk *w, double *v, uint64_t *n)
{
    for (;;) {
        if (w->stage == 0) {
            if (w->i < 0) {
                w->stage = 1;
                continue;
            }
            int i = w->i--;
            if (w->s->neg[i]) {
                *v = -ms_sd_sketch_value(i), *n = w->s->neg[i];
                return 1;
            }
        } else if (w->stage == 1) {
            w->stage = 2;
            w->i = 0;
            if (w->s->zero) {
                *v = 0, *n = w->s->zero;
                return 1;
            }
        } else {
            if (w->i >= SK_BINS) return 0;
            int i = w->i++;
            if (w->s->pos[i]) {
                *v = ms_sd_sketch_value(i), *n = w->s->pos[i];
                return 1;
            }
        }
    }
}

/* ---- entries ---- */

/* 64-bit hash, 8 bytes a step (keys and set members). */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)p[i] << (8 * i);
    h = (h ^ w) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

ms_sd_agg *ms_sd_agg_new(uint32_t max_series, uint32_t timer_cap)
{
    ms_sd_agg *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cap = 64;
    a->slots = calloc(a->cap, sizeof *a->slots);
    a->events = ms_batch_new(16);
    if (!a->slots || !a->events) {
        ms_sd_agg_free(a);
        return NULL;
    }
    a->max_events = 10000;
    ms_sd_agg_set_limits(a, max_series, timer_cap);
    return a;
}

void ms_sd_agg_set_limits(ms_sd_agg *a, uint32_t max_series, uint32_t timer_cap)
{
    a->max_series = max_series ? max_series : 1;
    a->timer_cap = timer_cap ? timer_cap : 1;
}

static void entry_free(entry *e)
{
    if (!e) return;
    if (e->type == MS_SD_TIMER) {
        free(e->u.t.vals);
        free(e->u.t.sk);
    } else if (e->type == MS_SD_SET) {
        free(e->u.s.h);
    }
    free(e->tags);
    free(e->key);
    free(e);
}

void ms_sd_agg_free(ms_sd_agg *a)
{
    if (!a) return;
    for (uint32_t i = 0; a->slots && i < a->cap; i++) entry_free(a->slots[i]);
    free(a->slots);
    ms_batch_unref(a->events);
    free(a);
}

uint32_t ms_sd_agg_size(const ms_sd_agg *a)
{
    return a->n;
}
uint64_t ms_sd_agg_dropped(const ms_sd_agg *a)
{
    return a->dropped;
}
uint64_t ms_sd_agg_sketched(const ms_sd_agg *a)
{
    return a->sketched;
}

static int grow(ms_sd_agg *a)
{
    uint32_t nc = a->cap * 2;
    entry **ns = calloc(nc, sizeof *ns);
    if (!ns) return MS_ENOMEM;
    for (uint32_t i = 0; i < a->cap; i++) {
        entry *e = a->slots[i];
        if (!e) continue;
        uint32_t j = (uint32_t)e->hash & (nc - 1);
        while (ns[j]) j = (j + 1) & (nc - 1);
        ns[j] = e;
    }
    free(a->slots);
    a->slots = ns;
    a->cap = nc;
    return MS_OK;
}

/* Remove the entry in slot i (backward-shift deletion keeps probes intact). */
void ms_sd_agg_remove(ms_sd_agg *a, uint32_t i)
{
    entry_free(a->slots[i]);
    a->slots[i] = NULL;
    a->n--;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & (a->cap - 1);
        entry *e = a->slots[j];
        if (!e) return;
        uint32_t home = (uint32_t)e->hash & (a->cap - 1);
        /* can e move to the hole at i? only when its home is not in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            a->slots[i] = e;
            a->slots[j] = NULL;
            i = j;
        }
    }
}

/* Find or (when create) add the entry for canonical key k[0..n). */
static entry *lookup(ms_sd_agg *a, const char *k, size_t n, uint64_t h, int create, int *full)
{
    uint32_t i = (uint32_t)h & (a->cap - 1);
    for (; a->slots[i]; i = (i + 1) & (a->cap - 1)) {
        entry *e = a->slots[i];
        if (e->hash == h && e->key_len == n && !memcmp(e->key, k, n)) return e;
    }
    if (!create) return NULL;
    if (a->n >= a->max_series) {
        a->dropped++;
        if (full) *full = 1;
        return NULL;
    }
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = malloc(n + 1))) {
        free(e);
        return NULL;
    }
    memcpy(e->key, k, n);
    e->key[n] = 0;
    e->key_len = (uint32_t)n;
    e->hash = h;
    e->type = (uint8_t)k[0];
    e->name_len = (uint32_t)strlen(k + 1);
    /* tags: k NUL v NUL pairs after the name */
    const char *p = k + 1 + e->name_len + 1, *end = k + n;
    uint32_t nt = 0;
    for (const char *q = p; q < end; q += strlen(q) + 1) nt++;
    nt /= 2;
    if (nt) {
        e->tags = calloc(nt, sizeof *e->tags);
        if (!e->tags) {
            free(e->key);
            free(e);
            return NULL;
        }
        const char *q = e->key + (p - k);
        for (uint32_t t = 0; t < nt; t++) {
            size_t kl = strlen(q);
            const char *v = q + kl + 1;
            size_t vl = strlen(v);
            e->tags[t] = (ms_tag){q, v, (uint32_t)kl, (uint32_t)vl};
            q = v + vl + 1;
        }
        e->ntags = nt;
    }
    a->slots[i] = e;
    a->n++;
    if (a->n * 2 > a->cap && grow(a) != MS_OK) {
        /* keep working at a higher load; the table still has free slots */
    }
    return e;
}

typedef struct tagp {
    const char *k, *v;
    size_t kl, vl;
} tagp;

static int tag_cmp(const void *x, const void *y)
{
    const tagp *a = x, *b = y;
    size_t n = a->kl < b->kl ? a->kl : b->kl;
    int c = memcmp(a->k, b->k, n);
    if (c) return c;
    if (a->kl != b->kl) return a->kl < b->kl ? -1 : 1;
    return 0;
}

#define MAX_TAGS 64

/* Canonical key of (type, name, tags, container) into buf; returns its length
 * or 0 when it does not fit. */
static size_t canon(char *buf, size_t cap, int type, const char *name, size_t nl, const char *tags,
                    size_t tl, const char *cont, size_t cl)
{
    tagp t[MAX_TAGS + 1];
    size_t nt = 0;
    const char *p = tags, *e = tags ? tags + tl : NULL;
    while (p && p < e && nt < MAX_TAGS) {
        const char *q = memchr(p, ',', (size_t)(e - p));
        if (!q) q = e;
        if (q > p) {
            const char *c = memchr(p, ':', (size_t)(q - p));
            t[nt].k = p;
            t[nt].kl = c ? (size_t)(c - p) : (size_t)(q - p);
            t[nt].v = c ? c + 1 : q;
            t[nt].vl = c ? (size_t)(q - c - 1) : 0;
            if (t[nt].kl) nt++;
        }
        p = q + 1;
    }
    if (cont) t[nt++] = (tagp){"container_id", cont, 12, cl};
    /* stable insertion sort by key: equal keys stay in input order (the
     * later one wins at interning) */
    for (size_t i = 1; i < nt; i++) {
        tagp x = t[i];
        size_t j = i;
        while (j > 0 && tag_cmp(&t[j - 1], &x) > 0) {
            t[j] = t[j - 1];
            j--;
        }
        t[j] = x;
    }
    size_t need = 2 + nl;
    for (size_t i = 0; i < nt; i++) need += t[i].kl + t[i].vl + 2;
    if (need > cap) return 0;
    size_t o = 0;
    buf[o++] = (char)type;
    memcpy(buf + o, name, nl);
    o += nl;
    buf[o++] = 0;
    for (size_t i = 0; i < nt; i++) {
        /* a NUL inside a tag would break the layout: such a tag is cut there */
        size_t kl = strnlen(t[i].k, t[i].kl), vl = strnlen(t[i].v, t[i].vl);
        memcpy(buf + o, t[i].k, kl);
        o += kl;
        buf[o++] = 0;
        memcpy(buf + o, t[i].v, vl);
        o += vl;
        buf[o++] = 0;
    }
    return o;
}

static void sk_push(entry *e, double v)
{
    sk_add(e->u.t.sk, v, 1);
    e->u.t.skn++;
    e->u.t.sksum += v;
    e->u.t.sksq += v * v;
    if (v < e->u.t.skmin) e->u.t.skmin = v;
    if (v > e->u.t.skmax) e->u.t.skmax = v;
}

/* Move a timer's exact values into a new sketch (past timer_cap). */
static int to_sketch(ms_sd_agg *a, entry *e)
{
    sketch *s = calloc(1, sizeof *s);
    if (!s) return MS_ENOMEM;
    e->u.t.sk = s;
    e->u.t.skn = 0;
    e->u.t.sksum = e->u.t.sksq = 0;
    e->u.t.skmin = INFINITY;
    e->u.t.skmax = -INFINITY;
    a->sketched++;
    for (uint32_t i = 0; i < e->u.t.n; i++) sk_push(e, e->u.t.vals[i]);
    free(e->u.t.vals);
    e->u.t.vals = NULL;
    e->u.t.n = e->u.t.cap = 0;
    return MS_OK;
}

static int timer_push(ms_sd_agg *a, entry *e, double v)
{
    if (!e->u.t.sk && e->u.t.n >= a->timer_cap && to_sketch(a, e) != MS_OK) return MS_ENOMEM;
    if (e->u.t.sk) {
        sk_push(e, v);
        return MS_OK;
    }
    if (e->u.t.n == e->u.t.cap) {
        uint32_t nc = e->u.t.cap ? e->u.t.cap * 2 : 8;
        double *nv = realloc(e->u.t.vals, nc * sizeof *nv);
        if (!nv) return MS_ENOMEM;
        e->u.t.vals = nv;
        e->u.t.cap = nc;
    }
    e->u.t.vals[e->u.t.n++] = v;
    return MS_OK;
}

static int set_insert(entry *e, uint64_t h)
{
    if (!h) h = 1;
    if ((e->u.s.n + 1) * 2 > e->u.s.cap) {
        uint32_t nc = e->u.s.cap ? e->u.s.cap * 2 : 16;
        uint64_t *nh = calloc(nc, sizeof *nh);
        if (!nh) return MS_ENOMEM;
        for (uint32_t i = 0; i < e->u.s.cap; i++) {
            uint64_t x = e->u.s.h[i];
            if (!x) continue;
            uint32_t j = (uint32_t)x & (nc - 1);
            while (nh[j]) j = (j + 1) & (nc - 1);
            nh[j] = x;
        }
        free(e->u.s.h);
        e->u.s.h = nh;
        e->u.s.cap = nc;
    }
    uint32_t j = (uint32_t)h & (e->u.s.cap - 1);
    while (e->u.s.h[j]) {
        if (e->u.s.h[j] == h) return MS_OK;
        j = (j + 1) & (e->u.s.cap - 1);
    }
    e->u.s.h[j] = h;
    e->u.s.n++;
    return MS_OK;
}

static void tags_of(const char *buf, size_t len, size_t name_end, ms_tag *t, size_t *nt)
{
    size_t n = 0;
    const char *p = buf + name_end + 1, *e = buf + len;
    while (p < e && n < MAX_TAGS + 1) {
        size_t kl = strlen(p);
        const char *v = p + kl + 1;
        size_t vl = strlen(v);
        t[n++] = (ms_tag){p, v, (uint32_t)kl, (uint32_t)vl};
        p = v + vl + 1;
    }
    *nt = n;
}

/* Room canon() may need for a name, tags and container of these lengths. */
static size_t canon_cap(size_t nl, size_t tl, size_t cl)
{
    return 2 + nl + tl + 2 * (MAX_TAGS + 1) + (cl ? 14 + cl : 0);
}

static int agg_add(ms_sd_agg *a, const ms_sd_metric *m, const char *buf, size_t n);

/* The canonical key lives on the stack for the usual line and on the heap
 * for a long one (thread-local arrays would cost every thread their size). */
int ms_sd_agg_add(ms_sd_agg *a, const ms_sd_metric *m)
{
    char small[1024];
    size_t cap = canon_cap(m->key_len, m->tags_len, m->container_len);
    char *buf = cap <= sizeof small ? small : malloc(cap);
    if (!buf) return MS_ENOMEM;
    size_t n = canon(buf, cap, m->type, m->key, m->key_len, m->tags, m->tags_len, m->container,
                     m->container_len);
    int rc = n ? agg_add(a, m, buf, n) : MS_EINVAL;
    if (buf != small) free(buf);
    return rc;
}

/* Add m, whose canonical key is buf[0..n). */
static int agg_add(ms_sd_agg *a, const ms_sd_metric *m, const char *buf, size_t n)
{
    if (m->ts > 0 && (m->type == MS_SD_COUNTER || m->type == MS_SD_GAUGE)) {
        /* DogStatsD |T: forwarded as is, not aggregated */
        if (a->events->n >= a->max_events) {
            a->dropped++;
            return MS_EFULL;
        }
        ms_tag t[MAX_TAGS + 1];
        size_t nt;
        tags_of(buf, n, 1 + m->key_len, t, &nt);
        uint32_t id = ms_series_intern(m->key, m->key_len, t, nt);
        if (!id) return MS_EFULL;
        double v = m->type == MS_SD_COUNTER ? m->value * (1 / m->rate) : m->value;
        return ms_batch_add(a->events, id, MS_KIND_GAUGE, v, m->ts, NULL, 0, NULL, 0);
    }
    int full = 0;
    entry *e = lookup(a, buf, n, hash_bytes(buf, n), 1, &full);
    if (!e) return full ? MS_EFULL : MS_ENOMEM;
    e->touched = 1;
    switch (m->type) {
    case MS_SD_COUNTER:
        e->u.sum += m->value * (1 / m->rate);
        return MS_OK;
    case MS_SD_TIMER:
        e->u.t.count += 1 / m->rate;
        return timer_push(a, e, m->value);
    case MS_SD_GAUGE:
        if (m->delta) {
            e->u.g.v += m->value;
        } else {
            e->u.g.v = m->value;
            e->u.g.abs = 1;
        }
        return MS_OK;
    case MS_SD_SET:
        return set_insert(e, hash_bytes(m->member, m->member_len));
    default:
        return MS_EINVAL;
    }
}

int ms_sd_agg_add_event(ms_sd_agg *a, const ms_sd_event *ev)
{
    if (a->events->n >= a->max_events) {
        a->dropped++;
        return MS_EFULL;
    }
    char small[1024];
    size_t cap = canon_cap(ev->name_len, ev->tags_len, 0);
    char *buf = cap <= sizeof small ? small : malloc(cap);
    if (!buf) return MS_ENOMEM;
    size_t n = canon(buf, cap, 'e', ev->name, ev->name_len, ev->tags, ev->tags_len, NULL, 0);
    ms_tag t[MAX_TAGS + 2];
    size_t nt = 0;
    if (n) tags_of(buf, n, 1 + ev->name_len, t, &nt);
    if (ev->host) t[nt++] = (ms_tag){"host", ev->host, 4, (uint32_t)ev->host_len};
    uint32_t id = n ? ms_series_intern(ev->name, ev->name_len, t, nt) : 0;
    if (buf != small) free(buf);
    if (!n) return MS_EINVAL;
    if (!id) return MS_EFULL;
    return ms_batch_add(a->events, id, ev->kind, ev->value, ev->ts > 0 ? ev->ts : ms_now(), ev->msg,
                        ev->msg_len, ev->level, ev->level ? strlen(ev->level) : 0);
}

/* ---- merge ---- */

static int merge_timer(ms_sd_agg *dst, entry *d, entry *s)
{
    d->u.t.count += s->u.t.count;
    int rc = MS_OK;
    for (uint32_t i = 0; i < s->u.t.n && rc == MS_OK; i++) rc = timer_push(dst, d, s->u.t.vals[i]);
    if (rc != MS_OK || !s->u.t.sk) return rc;
    if (!d->u.t.sk && to_sketch(dst, d) != MS_OK) return MS_ENOMEM;
    sketch *ds = d->u.t.sk, *ss = s->u.t.sk;
    for (int i = 0; i < SK_BINS; i++) ds->pos[i] += ss->pos[i], ds->neg[i] += ss->neg[i];
    ds->zero += ss->zero;
    d->u.t.skn += s->u.t.skn;
    d->u.t.sksum += s->u.t.sksum;
    d->u.t.sksq += s->u.t.sksq;
    if (s->u.t.skmin < d->u.t.skmin) d->u.t.skmin = s->u.t.skmin;
    if (s->u.t.skmax > d->u.t.skmax) d->u.t.skmax = s->u.t.skmax;
    return MS_OK;
}

int ms_sd_agg_merge(ms_sd_agg *dst, ms_sd_agg *src)
{
    int rc = MS_OK;
    for (uint32_t i = 0; i < src->cap; i++) {
        entry *s = src->slots[i];
        if (!s) continue;
        int full = 0;
        entry *d = lookup(dst, s->key, s->key_len, s->hash, 1, &full);
        if (!d) {
            rc = full ? MS_EFULL : MS_ENOMEM;
            continue;
        }
        d->touched |= s->touched;
        switch (s->type) {
        case MS_SD_COUNTER:
            d->u.sum += s->u.sum;
            break;
        case MS_SD_GAUGE:
            if (s->u.g.abs) {
                d->u.g.v = s->u.g.v;
                d->u.g.abs = 1;
            } else {
                d->u.g.v += s->u.g.v;
            }
            break;
        case MS_SD_TIMER:
            if (merge_timer(dst, d, s) != MS_OK) rc = MS_ENOMEM;
            break;
        case MS_SD_SET:
            for (uint32_t j = 0; j < s->u.s.cap; j++)
                if (s->u.s.h[j]) set_insert(d, s->u.s.h[j]);
            break;
        }
    }
    for (uint32_t i = 0; i < src->cap; i++) {
        entry_free(src->slots[i]);
        src->slots[i] = NULL;
    }
    src->n = 0;
    dst->dropped += src->dropped;
    dst->sketched += src->sketched;
    src->dropped = src->sketched = 0;
    if (src->events->n) {
        if (dst->events->n + src->events->n > dst->max_events)
            dst->dropped += src->events->n;
        else if (ms_batch_append(dst->events, src->events) != MS_OK)
            rc = MS_ENOMEM;
        ms_batch *fresh = ms_batch_new(16);
        if (fresh) {
            ms_batch_unref(src->events);
            src->events = fresh;
        }
    }
    return rc;
}
