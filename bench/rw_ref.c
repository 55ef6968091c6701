/*
 * bench/rw_ref.c - a reference encoder in C for Prometheus remote write's
 * WriteRequest protobuf, the yardstick for forwarders/prometheus_remote_write.lua
 * in bench/bench_encoders.sh. Built as a shared object and loaded by
 * bench/enc_bench.lua with ffi.load inside moonstat (it resolves
 * ms_series_get from the binary), so both encode the very same batch and the
 * bench checks that their bytes are identical.
 *
 * It works the way a good C encoder would, and the way the Lua one does: the
 * label fields of a series (sanitized, sorted) are built once per series id
 * and kept back to back in one arena (offset and length by id); a first pass gives each sample its
 * group (one per series, an epoch stamp per series id instead of clearing) and adds up each
 * TimeSeries' size; the samples are then written in batch order, each at its
 * TimeSeries' cursor (no list to chase, the timestamp varint made once per
 * distinct timestamp), and last each TimeSeries' tag, length and labels. Label values must be ASCII
 * here (the Lua encoder also replaces bytes that are not UTF-8; the bench's values are ASCII).
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
#include "ref.h"

/* the buffer's bytes as unsigned (protobuf is bytes) */
#define UP(o) ((unsigned char *)(o)->p)

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
    o->p[o->len++] = (char)tag;
    o->len = (size_t)(put_varint(UP(o) + o->len, n) - UP(o));
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* ---- the label bytes of a series, cached by id ---- */

typedef struct {
    size_t off, len; /* in arena; len 0: not built yet */
} labels;

static labels *cache;
static size_t ncache;
static obuf arena;

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
    need(&arena, b.len);
    memcpy(arena.p + arena.len, b.p, b.len);
    l->off = arena.len;
    l->len = b.len;
    arena.len += b.len;
    free(b.p);
    return 0;
}

/* ---- grouping scratch ---- */

static uint32_t *stamp, *group; /* by series id */
static size_t nid;
static uint32_t epoch;
static uint32_t *gid;  /* by group: series id */
static size_t *gsize;  /* by group: bytes of the samples, then of the TimeSeries */
static size_t *pos;    /* by group: write cursor */
static uint32_t *sgrp; /* by sample: group, 0 when skipped */
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
        gsize = realloc(gsize, (ncap + 1) * sizeof *gsize);
        pos = realloc(pos, (ncap + 1) * sizeof *pos);
        sgrp = realloc(sgrp, ncap * sizeof *sgrp);
        if (!gid || !gsize || !pos || !sgrp) abort();
    }
    epoch++;
    uint32_t ng = 0;
    double last_ts = -1, ms = -1;
    size_t ml = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *s = &b->s[i];
        sgrp[i] = 0;
        if (s->kind == MS_KIND_HEALTH || s->kind == MS_KIND_EVENT) continue;
        if (s->ts != last_ts) {
            last_ts = s->ts;
            ms = floor(s->ts * 1000 + 0.5);
            if (ms >= 0) ml = varint_len((uint64_t)ms);
        }
        if (!(ms >= 0)) continue;
        uint32_t id = s->series;
        grow_ids(id);
        uint32_t g;
        if (stamp[id] != epoch) {
            labels *l = &cache[id];
            if (!l->len && build(id, l) != 0) return -1;
            stamp[id] = epoch;
            g = ++ng;
            group[id] = g;
            gid[g] = id;
            gsize[g] = l->len;
        } else {
            g = group[id];
        }
        sgrp[i] = g;
        gsize[g] += 12 + ml;
    }
    size_t total = 0;
    for (uint32_t g = 1; g <= ng; g++) {
        total += 1 + varint_len(gsize[g]);
        pos[g] = total + cache[gid[g]].len;
        total += gsize[g];
    }
    out.len = 0;
    need(&out, total + 8); /* 8 bytes of slack for the varint's 8-byte move */
    unsigned char tsb[16];
    size_t tl = 0;
    last_ts = -1;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t g = sgrp[i];
        if (!g) continue;
        const ms_sample *s = &b->s[i];
        if (s->ts != last_ts) {
            last_ts = s->ts;
            tl = (size_t)(put_varint(tsb, (uint64_t)floor(s->ts * 1000 + 0.5)) - tsb);
        }
        unsigned char *p = UP(&out) + pos[g];
        p[0] = 0x12;
        p[1] = (unsigned char)(10 + tl);
        p[2] = 0x09;
        memcpy(p + 3, &s->value, 8); /* little-endian hosts */
        p[11] = 0x10;
        memcpy(p + 12, tsb, 8); /* may run into what is written later */
        pos[g] += 12 + tl;
    }
    unsigned char *p = UP(&out);
    for (uint32_t g = 1; g <= ng; g++) {
        const labels *l = &cache[gid[g]];
        *p++ = 0x0a;
        p = put_varint(p, gsize[g]);
        memcpy(p, arena.p + l->off, l->len);
        p += gsize[g];
    }
    out.len = total;
    *outp = (const char *)out.p;
    *lenp = out.len;
    return 0;
}
