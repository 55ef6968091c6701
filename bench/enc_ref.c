/*
 * bench/enc_ref.c - reference encoders in C, the yardstick for the Lua
 * encoders of forwarders/ in bench/bench_encoders.sh. Built as a shared
 * object and loaded by bench/enc_bench.lua with ffi.load, inside moonstat
 * (it resolves ms_series_get from the binary), so both encode the very same
 * batch and the bench asserts their bytes are identical.
 *
 * Each format works the way a good C encoder would, and the way the Lua ones
 * do: what a series contributes (path, measurement and tags, JSON prefix,
 * pickle op) is built once per series id and cached in an array; the
 * per-sample work formats the value and the timestamp (cached while it does
 * not change) into a growable buffer.
 *
 * The number format is moonstat.encoder's `number`: integers below 2^53
 * without a fraction, others with the fewest of 15, 16 or 17 significant
 * digits that read back to the same double. Formats: "influx", "graphite"
 * (tag_mode path, no prefix), "opentsdb" (seconds), "kairosdb" (no ttl),
 * "pickle" (graphite_pickle, path mode). Batches must hold gauges, counters
 * and rates only (texts are not handled here).
 *
 * API (for LuaJIT's FFI):
 *   int enc_ref(const char *format, const ms_batch *b, const char **out, size_t *len)
 *     encodes b; *out points into a buffer owned here, valid until the next
 *     call. Returns 0, or -1 for an unknown format or a sample it cannot write.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_sample.h"
#include "ms_series.h"
#include "ref.h"

static obuf out;

/* ---- per-series caches: id -> bytes (NULL: not built; len 0: skip) ---- */

typedef struct {
    char *p;
    size_t len;
} entry;

typedef struct {
    entry *e;
    size_t n;
} cache;

static entry *cache_get(cache *c, uint32_t id)
{
    if (id >= c->n) {
        size_t n = c->n ? c->n : 1024;
        while (n <= id) n *= 2;
        c->e = realloc(c->e, n * sizeof *c->e);
        if (!c->e) abort();
        memset(c->e + c->n, 0, (n - c->n) * sizeof *c->e);
        c->n = n;
    }
    return &c->e[id];
}

static void cache_set(entry *e, obuf *b)
{
    e->p = malloc(b->len + 1);
    if (!e->p) abort();
    memcpy(e->p, b->p, b->len);
    e->len = b->len;
    b->len = 0;
}

/* ---- sanitizers (moonstat.lineproto's and the encoders' byte maps) ---- */

static int alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int graphite_safe(unsigned char c)
{
    return alnum(c) || c == '_' || c == '-' || c == ':' || c >= 128;
}

/* A Graphite path level (a tag value): unsafe bytes -> '_'. */
static void put_level(obuf *o, const char *s, size_t n)
{
    need(o, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        o->p[o->len++] = graphite_safe(c) ? (char)c : '_';
    }
}

/* A Graphite name: unsafe bytes -> '_', dots kept, no empty levels. */
static void put_gname(obuf *o, const char *s, size_t n)
{
    size_t start = o->len;
    int want_dot = 0;
    need(o, n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            want_dot = o->len > start;
            continue;
        }
        if (want_dot) o->p[o->len++] = '.', want_dot = 0;
        o->p[o->len++] = graphite_safe(c) ? (char)c : '_';
    }
    if (o->len == start) o->p[o->len++] = '_';
}

/* Influx escapes: measurement ("," " "), tag (also "="); control -> '_'. */
static void put_influx(obuf *o, const char *s, size_t n, int tag)
{
    need(o, 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c == 127)
            c = '_';
        else if (c == ',' || c == ' ' || (tag && c == '='))
            o->p[o->len++] = '\\';
        o->p[o->len++] = (char)c;
    }
}

/* OpenTSDB's charset: a-z A-Z 0-9 - _ . / and bytes >= 128; others '_'. */
static void put_tsdb(obuf *o, const char *s, size_t n)
{
    need(o, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = alnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c >= 128;
        o->p[o->len++] = ok ? (char)c : '_';
    }
}

/* JSON string body (KairosDB); tag=1 also turns ':' and '=' into '_'. */
static void put_json(obuf *o, const char *s, size_t n, int tag)
{
    need(o, 6 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c == 127)
            o->len += (size_t)sprintf(o->p + o->len, "\\u%04x", c);
        else if (c == '"' || c == '\\')
            o->p[o->len++] = '\\', o->p[o->len++] = (char)c;
        else
            o->p[o->len++] = (tag && (c == ':' || c == '=')) ? '_' : (char)c;
    }
}

/* The Graphite path of a series in "path" mode: host, other tag values by
 * key, then the name. */
static void graphite_path(obuf *o, const ms_series *se)
{
    for (uint32_t i = 0; i < se->ntags; i++)
        if (!strcmp(se->tags[i].k, "host") && se->tags[i].vlen) {
            put_level(o, se->tags[i].v, se->tags[i].vlen);
            put(o, ".", 1);
        }
    for (uint32_t i = 0; i < se->ntags; i++)
        if (strcmp(se->tags[i].k, "host") && se->tags[i].vlen) {
            put_level(o, se->tags[i].v, se->tags[i].vlen);
            put(o, ".", 1);
        }
    put_gname(o, se->name, se->name_len);
}

static obuf tmp;

/* ---- the formats ---- */

static int usable(const ms_sample *s)
{
    return s->kind != MS_KIND_EVENT && !isnan(s->value) && !isinf(s->value);
}

static int enc_influx(const ms_batch *b)
{
    static cache c;
    double last = -INFINITY;
    char ts[32], num[40];
    size_t tsl = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *s = &b->s[i];
        if (s->kind == MS_KIND_HEALTH || s->kind == MS_KIND_EVENT) return -1;
        if (!usable(s)) continue;
        entry *e = cache_get(&c, s->series);
        if (!e->p) {
            const ms_series *se = ms_series_get(s->series);
            if (!se) return -1;
            put_influx(&tmp, se->name, se->name_len, 0);
            for (uint32_t k = 0; k < se->ntags; k++) {
                if (!se->tags[k].klen || !se->tags[k].vlen) continue;
                put(&tmp, ",", 1);
                put_influx(&tmp, se->tags[k].k, se->tags[k].klen, 1);
                put(&tmp, "=", 1);
                put_influx(&tmp, se->tags[k].v, se->tags[k].vlen, 1);
            }
            put(&tmp, " value=", 7);
            cache_set(e, &tmp);
        }
        if (s->ts != last) {
            last = s->ts;
            double sec = floor(s->ts);
            double us = floor((s->ts - sec) * 1e6 + 0.5);
            if (us >= 1e6) sec += 1, us -= 1e6;
            tsl = sec == 0 ? (size_t)snprintf(ts, sizeof ts, "%lld000", (long long)us)
                           : (size_t)snprintf(ts, sizeof ts, "%lld%06lld000", (long long)sec,
                                              (long long)us);
        }
        double v = s->value;
        size_t nl;
        int integer = s->kind == MS_KIND_COUNTER && v == floor(v) && v > -9.2e18 && v < 9.2e18;
        if (integer) {
            nl = fmt_i64(num, (long long)v);
            num[nl++] = 'i';
        } else {
            nl = fmt_num(num, v);
        }
        need(&out, e->len + nl + tsl + 2);
        memcpy(out.p + out.len, e->p, e->len);
        out.len += e->len;
        memcpy(out.p + out.len, num, nl);
        out.len += nl;
        out.p[out.len++] = ' ';
        memcpy(out.p + out.len, ts, tsl);
        out.len += tsl;
        out.p[out.len++] = '\n';
    }
    return 0;
}

static int enc_graphite(const ms_batch *b)
{
    static cache c;
    double last = -INFINITY;
    char ts[32], num[40];
    size_t tsl = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *s = &b->s[i];
        if (!usable(s)) continue;
        entry *e = cache_get(&c, s->series);
        if (!e->p) {
            const ms_series *se = ms_series_get(s->series);
            if (!se) return -1;
            graphite_path(&tmp, se);
            put(&tmp, " ", 1);
            cache_set(e, &tmp);
        }
        double t = floor(s->ts);
        if (t != last) last = t, tsl = fmt_i64(ts, (long long)t);
        size_t nl = fmt_num(num, s->value);
        need(&out, e->len + nl + tsl + 2);
        memcpy(out.p + out.len, e->p, e->len);
        out.len += e->len;
        memcpy(out.p + out.len, num, nl);
        out.len += nl;
        out.p[out.len++] = ' ';
        memcpy(out.p + out.len, ts, tsl);
        out.len += tsl;
        out.p[out.len++] = '\n';
    }
    return 0;
}

/* OpenTSDB (kairos=0) and KairosDB (kairos=1) JSON arrays. */
static int enc_json(const ms_batch *b, int kairos)
{
    static cache cs[2];
    cache *c = &cs[kairos];
    double last = -INFINITY;
    char ts[32], num[40];
    size_t tsl = 0;
    char sep = '[';
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *s = &b->s[i];
        if (!usable(s)) continue;
        entry *e = cache_get(c, s->series);
        if (!e->p) {
            const ms_series *se = ms_series_get(s->series);
            if (!se) return -1;
            put_str(&tmp, kairos ? "{\"name\":\"" : "{\"metric\":\"");
            if (kairos)
                put_json(&tmp, se->name, se->name_len, 0);
            else
                put_tsdb(&tmp, se->name, se->name_len);
            put_str(&tmp, "\",\"tags\":{");
            int nt = 0;
            for (uint32_t k = 0; k < se->ntags; k++) {
                if (!se->tags[k].klen || !se->tags[k].vlen) continue;
                if (nt++) put(&tmp, ",", 1);
                put(&tmp, "\"", 1);
                if (kairos)
                    put_json(&tmp, se->tags[k].k, se->tags[k].klen, 1);
                else
                    put_tsdb(&tmp, se->tags[k].k, se->tags[k].klen);
                put_str(&tmp, "\":\"");
                if (kairos)
                    put_json(&tmp, se->tags[k].v, se->tags[k].vlen, 1);
                else
                    put_tsdb(&tmp, se->tags[k].v, se->tags[k].vlen);
                put(&tmp, "\"", 1);
            }
            if (!nt) return -1; /* the bench's series always have tags */
            put_str(&tmp, kairos ? "},\"datapoints\":[[" : "},\"timestamp\":");
            cache_set(e, &tmp);
        }
        if (s->ts != last) {
            last = s->ts;
            tsl = fmt_i64(ts, (long long)(kairos ? floor(s->ts * 1000 + 0.5) : floor(s->ts)));
        }
        size_t nl = fmt_num(num, s->value);
        need(&out, e->len + nl + tsl + 16);
        out.p[out.len++] = sep;
        sep = ',';
        memcpy(out.p + out.len, e->p, e->len);
        out.len += e->len;
        memcpy(out.p + out.len, ts, tsl);
        out.len += tsl;
        if (kairos) {
            out.p[out.len++] = ',';
        } else {
            memcpy(out.p + out.len, ",\"value\":", 9);
            out.len += 9;
        }
        memcpy(out.p + out.len, num, nl);
        out.len += nl;
        if (kairos) out.p[out.len++] = ']', out.p[out.len++] = ']';
        out.p[out.len++] = '}';
    }
    if (sep == ',') put(&out, "]", 1);
    return 0;
}

static void be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24), p[1] = (char)(v >> 16), p[2] = (char)(v >> 8), p[3] = (char)v;
}

/* 'G' + the double big-endian. */
static void put_g(char *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    p[0] = 'G';
    for (int k = 0; k < 8; k++) p[1 + k] = (char)(u >> (56 - 8 * k));
}

static int enc_pickle(const ms_batch *b)
{
    static cache c;
    const size_t frame_max = 1000000;
    size_t start = (size_t)-1;
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *s = &b->s[i];
        if (!usable(s)) continue;
        entry *e = cache_get(&c, s->series);
        if (!e->p) {
            const ms_series *se = ms_series_get(s->series);
            if (!se) return -1;
            put(&tmp, "X\0\0\0\0", 5);
            graphite_path(&tmp, se);
            uint32_t n = (uint32_t)tmp.len - 5;
            tmp.p[1] = (char)n, tmp.p[2] = (char)(n >> 8), tmp.p[3] = (char)(n >> 16),
            tmp.p[4] = (char)(n >> 24);
            cache_set(e, &tmp);
        }
        if (start != (size_t)-1 && out.len - start > frame_max - 64 - e->len) {
            put(&out, "e.", 2);
            be32(out.p + start, (uint32_t)(out.len - start - 4));
            start = (size_t)-1;
        }
        if (start == (size_t)-1) {
            start = out.len;
            put(&out, "\0\0\0\0\x80\x02](", 8);
        }
        need(&out, e->len + 20);
        memcpy(out.p + out.len, e->p, e->len);
        out.len += e->len;
        double t = floor(s->ts);
        if (t >= -2147483648.0 && t <= 2147483647.0) {
            int32_t v = (int32_t)t;
            out.p[out.len++] = 'J';
            memcpy(out.p + out.len, &v, 4); /* little-endian hosts only */
            out.len += 4;
        } else {
            put_g(out.p + out.len, t);
            out.len += 9;
        }
        put_g(out.p + out.len, s->value);
        out.len += 9;
        out.p[out.len++] = (char)0x86;
        out.p[out.len++] = (char)0x86;
    }
    if (start != (size_t)-1) {
        put(&out, "e.", 2);
        be32(out.p + start, (uint32_t)(out.len - start - 4));
    }
    return 0;
}

/* Encode b in `format`; see the header comment. */
int enc_ref(const char *format, const ms_batch *b, const char **o, size_t *len)
{
    int rc;
    out.len = 0;
    tmp.len = 0;
    if (!strcmp(format, "influx"))
        rc = enc_influx(b);
    else if (!strcmp(format, "graphite"))
        rc = enc_graphite(b);
    else if (!strcmp(format, "opentsdb"))
        rc = enc_json(b, 0);
    else if (!strcmp(format, "kairosdb"))
        rc = enc_json(b, 1);
    else if (!strcmp(format, "pickle"))
        rc = enc_pickle(b);
    else
        rc = -1;
    *o = out.p;
    *len = out.len;
    return rc;
}
