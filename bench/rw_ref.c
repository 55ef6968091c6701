/*
 * bench/rw_ref.c - a reference encoder in C for Prometheus remote write's
 * WriteRequest protobuf, the yardstick for forwarders/prometheus_remote_write.lua
 * in bench/bench_remote_write.sh. Built as a shared object and loaded by
 * bench/rw_bench.lua with ffi.load inside moonstat (it resolves
 * ms_series_get from the binary), so both encode the very same batch and the
 * bench checks that their bytes are identical.
 *
 * It works the way a good C encoder would, and the way the Lua one does: the
 * label fields of a series (sanitized, sorted) are built once per series id
 * and cached in an array; each batch is grouped by series in one pass (a
 * linked list per series through arrays, an epoch stamp per series id
 * instead of clearing), then each TimeSeries is written with its exact length
 * known up front. Label values must be ASCII here (the Lua encoder also
 * replaces bytes that are not UTF-8; the bench's values are ASCII).
 *
 * API (for LuaJIT's FFI):
 *   int rw_ref(const ms_batch *b, const char **out, size_t *len)
 *     encodes b; *out points into a buffer owned here, valid until the next
 *     call. Returns 0, or -1 for a value it cannot write.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ms_sample.h"
#include "ms_series.h"

typedef struct {
    unsigned char *p;
    size_t len, cap;
} obuf;

static void need(obuf *o, size_t n)
{
    if (o->len + n <= o->cap) return;
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap < o->len + n) cap *= 2;
    o->p = realloc(o->p, cap);
    if (!o->p) abort();
    o->cap = cap;
}

static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 128) v >>= 7, n++;
    return n;
}

static inline unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 128) *p++ = (unsigned char)(v | 128), v >>= 7;
    *p++ = (unsigned char)v;
    return p;
}

static void put_field(obuf *o, unsigned tag, const void *s, size_t n)
{
    need(o, n + 11);
    o->p[o->len++] = (unsigned char)tag;
    o->len = (size_t)(put_varint(o->p + o->len, n) - o->p);
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* ---- the label bytes of a series, cached by id ---- */

typedef struct {
    unsigned char *p; /* NULL: not built yet */
    size_t len;
} labels;

static labels *cache;
static size_t ncache;

typedef struct {
    char name[256];
    size_t nlen;
    const char *v;
    size_t vlen;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

static int name_byte(int c, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           (colon && c == ':');
}

/* Sanitize s into out (metric name: colon allowed; label name: leading "__"
 * becomes "_"). Returns the length. */
static size_t sanitize(const char *s, size_t n, char *out, int metric)
{
    size_t k = 0;
    if (n && s[0] >= '0' && s[0] <= '9') out[k++] = '_';
    for (size_t i = 0; i < n && k < 255; i++) out[k++] = name_byte(s[i], metric) ? s[i] : '_';
    if (!k) out[k++] = '_';
    if (!metric && k >= 2 && out[0] == '_' && out[1] == '_') {
        size_t u = 0;
        while (u < k && out[u] == '_') u++;
        memmove(out + 1, out + u, k - u);
        k = k - u + 1;
    }
    return k;
}

static int build(uint32_t id, labels *l)
{
    const ms_series *se = ms_series_get(id);
    if (!se) return -1;
    pair *ps = calloc(se->ntags + 1, sizeof *ps);
    if (!ps) abort();
    size_t np = 1;
    memcpy(ps[0].name, "__name__", 8);
    ps[0].nlen = 8;
    char mname[256];
    size_t mlen = sanitize(se->name, se->name_len, mname, 1);
    ps[0].v = mname;
    ps[0].vlen = mlen;
    for (uint32_t k = 0; k < se->ntags; k++) {
        const ms_tag *t = &se->tags[k];
        if (!t->vlen) continue;
        for (uint32_t i = 0; i < t->vlen; i++)
            if ((unsigned char)t->v[i] >= 0x80) return free(ps), -1;
        pair *p = &ps[np];
        p->nlen = sanitize(t->k, t->klen, p->name, 0);
        int dup = 0;
        for (size_t j = 0; j < np && !dup; j++) dup = !pair_cmp(&ps[j], p);
        if (dup) continue;
        p->v = t->v;
        p->vlen = t->vlen;
        np++;
    }
    qsort(ps, np, sizeof *ps, pair_cmp);
    obuf b = {0}, one = {0};
    for (size_t i = 0; i < np; i++) {
        one.len = 0;
        put_field(&one, 0x0a, ps[i].name, ps[i].nlen);
        put_field(&one, 0x12, ps[i].v, ps[i].vlen);
        put_field(&b, 0x0a, one.p, one.len);
    }
    free(one.p);
    free(ps);
    l->p = b.p;
    l->len = b.len;
    return 0;
}

/* ---- grouping scratch ---- */

static uint32_t *stamp, *group; /* by series id */
static size_t nid;
static uint32_t epoch;
static uint32_t *gid;         /* by group */
static int32_t *first, *last; /* by group */
static size_t *gsize;         /* by group */
static int32_t *next;         /* by sample */
static uint64_t *msv;         /* by sample */
static size_t ncap;
static obuf out;

static void grow_ids(uint32_t id)
{
    if (id < nid && id < ncache) return;
    size_t n = nid ? nid : 1024;
    while (n <= id) n *= 2;
    stamp = realloc(stamp, n * sizeof *stamp);
    group = realloc(group, n * sizeof *group);
    cache = realloc(cache, n * sizeof *cache);
    if (!stamp || !group || !cache) abort();
    memset(stamp + nid, 0, (n - nid) * sizeof *stamp);
    memset(cache + ncache, 0, (n - ncache) * sizeof *cache);
    nid = ncache = n;
}

int rw_ref(const ms_batch *b, const char **outp, size_t *lenp)
{
    if (b->n > ncap) {
        ncap = b->n;
        gid = realloc(gid, (ncap + 1) * sizeof *gid);
        first = realloc(first, (ncap + 1) * sizeof *first);
        last = realloc(last, (ncap + 1) * sizeof *last);
        gsize = realloc(gsize, (ncap + 1) * sizeof *gsize);
        next = realloc(next, ncap * sizeof *next);
        msv = realloc(msv, ncap * sizeof *msv);
        if (!gid || !first || !last || !gsize || !next || !msv) abort();
    }
    epoch++;
    uint32_t ng = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *s = &b->s[i];
        if (s->kind == MS_KIND_HEALTH || s->kind == MS_KIND_EVENT) continue;
        double ms = floor(s->ts * 1000 + 0.5);
        if (!(ms >= 0)) continue;
        uint32_t id = s->series;
        grow_ids(id);
        labels *l = &cache[id];
        if (!l->p && build(id, l) != 0) return -1;
        msv[i] = (uint64_t)ms;
        next[i] = -1;
        uint32_t g;
        if (stamp[id] != epoch) {
            stamp[id] = epoch;
            g = ++ng;
            group[id] = g;
            gid[g] = id;
            first[g] = (int32_t)i;
            gsize[g] = l->len;
        } else {
            g = group[id];
            next[last[g]] = (int32_t)i;
        }
        last[g] = (int32_t)i;
        gsize[g] += 12 + varint_len(msv[i]);
    }
    out.len = 0;
    for (uint32_t g = 1; g <= ng; g++) {
        labels *l = &cache[gid[g]];
        size_t size = gsize[g];
        need(&out, 1 + varint_len(size) + size);
        unsigned char *p = out.p + out.len;
        *p++ = 0x0a;
        p = put_varint(p, size);
        memcpy(p, l->p, l->len);
        p += l->len;
        for (int32_t i = first[g]; i >= 0; i = next[i]) {
            p[0] = 0x12;
            p[1] = (unsigned char)(10 + varint_len(msv[i]));
            p[2] = 0x09;
            memcpy(p + 3, &b->s[i].value, 8); /* little-endian hosts */
            p[11] = 0x10;
            p = put_varint(p + 12, msv[i]);
        }
        out.len = (size_t)(p - out.p);
    }
    *outp = (const char *)out.p;
    *lenp = out.len;
    return 0;
}
