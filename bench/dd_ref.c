/*
 * bench/dd_ref.c - a reference encoder in C for Datadog's /api/v1/series
 * JSON, the yardstick for forwarders/datadog.lua in bench/bench_datadog.sh.
 * Built as a shared object and loaded by bench/dd_bench.lua with ffi.load
 * inside moonstat (ms_series_get comes from the binary), so both encode the
 * same batch and the bench checks that they wrote the same bytes.
 *
 * It works the way a good C encoder would, and the way the Lua one does: the
 * JSON prefix of a series (name, host, tags) is built once per series id and
 * cached; per sample it formats the type, the timestamp (cached while it does
 * not change), the value and, for counters, the increase since the series'
 * previous sample with its interval (state kept per series id across calls,
 * as the Lua encoder keeps it). Rules as in docs/forwarders/datadog.md, for
 * ASCII names and tags (the bench's); gauges, counters and rates only.
 *
 * API (for LuaJIT's FFI):
 *   int dd_ref(const ms_batch *b, double rate_interval, const char **out, size_t *len)
 *     encodes b; *out points into a buffer owned here, valid until the next
 *     call. Returns 0, or -1 when memory ran out.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_sample.h"
#include "ms_series.h"

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static sbuf body;

static int grow(sbuf *o, size_t n)
{
    if (o->len + n <= o->cap) return 0;
    size_t cap = o->cap ? o->cap * 2 : 1 << 16;
    while (cap < o->len + n) cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) return -1;
    o->p = p;
    o->cap = cap;
    return 0;
}

static void add(sbuf *o, const char *s, size_t n)
{
    if (grow(o, n)) return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void adds(sbuf *o, const char *s)
{
    add(o, s, strlen(s));
}

/* Per series id: the cached prefix and the counter/rate state. */
typedef struct {
    char *prefix; /* NULL: not built yet */
    size_t plen;
    double last_v, last_t;
    int has_last;
} dd_series;

static dd_series *tab;
static size_t ntab;

static int letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 128;
}

static int name_ok(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '.';
}

static int tag_ok(unsigned char c)
{
    return name_ok(c) || c == '-' || c == ':' || c == '/' || c >= 128;
}

/* Append s mapped through ok() (others become '_'), leading non-letters cut;
 * returns the bytes written. */
static size_t put_clean(sbuf *o, const char *s, size_t n, int (*ok)(unsigned char), int strip)
{
    size_t i = 0, start = o->len;
    if (strip)
        while (i < n && !letter(ok((unsigned char)s[i]) ? (unsigned char)s[i] : '_')) i++;
    for (; i < n; i++) {
        char c = ok((unsigned char)s[i]) ? s[i] : '_';
        add(o, &c, 1);
    }
    return o->len - start;
}

static void put_json(sbuf *o, const char *s, size_t n)
{
    add(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            add(o, esc, 2);
        } else if (c < 32) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            add(o, esc, 6);
        } else {
            add(o, (const char *)&c, 1);
        }
    }
    add(o, "\"", 1);
}

/* {"metric":"<name>","host":"<host>","tags":["k:v",...], */
static int build_prefix(dd_series *d, const ms_series *se)
{
    sbuf p = {0};
    adds(&p, "{\"metric\":\"");
    size_t n0 = p.len;
    size_t w = put_clean(&p, se->name, se->name_len, name_ok, 1);
    if (w == 0) adds(&p, "unnamed");
    if (p.len - n0 > 200) p.len = n0 + 200;
    adds(&p, "\"");
    for (uint32_t i = 0; i < se->ntags; i++)
        if (se->tags[i].klen == 4 && !memcmp(se->tags[i].k, "host", 4)) {
            adds(&p, ",\"host\":");
            put_json(&p, se->tags[i].v, se->tags[i].vlen);
        }
    adds(&p, ",\"tags\":[");
    int first = 1;
    for (uint32_t i = 0; i < se->ntags; i++) {
        const ms_tag *t = &se->tags[i];
        if (t->klen == 4 && !memcmp(t->k, "host", 4)) continue;
        size_t at = p.len;
        add(&p, first ? "\"" : ",\"", first ? 1 : 2);
        size_t ts = p.len;
        if (put_clean(&p, t->k, t->klen, tag_ok, 1) == 0) {
            p.len = at; /* nothing left of the key: no tag */
            continue;
        }
        if (t->vlen) {
            add(&p, ":", 1);
            put_clean(&p, t->v, t->vlen, tag_ok, 0);
        }
        if (p.len - ts > 200) p.len = ts + 200;
        add(&p, "\"", 1);
        first = 0;
    }
    adds(&p, "],");
    if (!p.p) return -1;
    d->prefix = p.p;
    d->plen = p.len;
    return 0;
}

/* Decimal digits of v (|v| < 2^63). */
static size_t put_i64(char *p, long long v)
{
    char t[24];
    size_t n = 0, k = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do t[n++] = (char)('0' + u % 10);
    while ((u /= 10));
    if (v < 0) p[k++] = '-';
    while (n) p[k++] = t[--n];
    return k;
}

/* moonstat.encoder's number(): integers below 2^53 as integers; others the
 * shortest of %.15g/%.16g/%.17g that reads back. Fast path without printf
 * for values with 1 to 4 decimals: if m = v * 10^k is an integer below 10^15
 * and m / 10^k == v, the decimal m / 10^k is exactly what %.15g prints (the
 * Lua encoder makes the same argument); a last digit 0 means a shorter k. */
static void put_number(sbuf *o, double v)
{
    char t[40];
    size_t n;
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        add(o, t, put_i64(t, (long long)v));
        return;
    }
    static const double scale[] = {10, 100, 1000, 10000};
    for (int k = 0; k < 4; k++) {
        double m = v * scale[k];
        if (m != floor(m) || fabs(m) >= 1e15 || m / scale[k] != v) continue;
        long long a = (long long)fabs(m), sc = (long long)scale[k];
        if (a % 10 == 0) break;
        n = 0;
        if (m < 0) t[n++] = '-';
        n += put_i64(t + n, a / sc);
        t[n++] = '.';
        long long fr = a % sc;
        for (int d = k; d >= 0; d--) t[n + (size_t)d] = (char)('0' + fr % 10), fr /= 10;
        n += (size_t)k + 1;
        add(o, t, n);
        return;
    }
    n = (size_t)snprintf(t, sizeof t, "%.15g", v);
    if (strtod(t, NULL) != v) n = (size_t)snprintf(t, sizeof t, "%.16g", v);
    if (strtod(t, NULL) != v) n = (size_t)snprintf(t, sizeof t, "%.17g", v);
    add(o, t, n);
}

static void put_interval(sbuf *o, double d)
{
    char t[24];
    add(o, "\"interval\":", 11);
    add(o, t, put_i64(t, d < 1.5 ? 1 : (long long)floor(d + 0.5)));
    add(o, ",", 1);
}

int dd_ref(const ms_batch *b, double rate_interval, const char **out, size_t *len)
{
    body.len = 0;
    const char *sep = "{\"series\":[";
    double last_sec = -1;
    char ts[24];
    size_t tslen = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *s = &b->s[i];
        double v = s->value;
        if (s->kind > MS_KIND_RATE || isnan(v) || isinf(v)) continue;
        if (s->series >= ntab) {
            size_t nn = ntab ? ntab : 1024;
            while (nn <= s->series) nn *= 2;
            dd_series *t = realloc(tab, nn * sizeof *t);
            if (!t) return -1;
            memset(t + ntab, 0, (nn - ntab) * sizeof *t);
            tab = t;
            ntab = nn;
        }
        dd_series *d = &tab[s->series];
        if (!d->prefix) {
            const ms_series *se = ms_series_get(s->series);
            if (!se || build_prefix(d, se)) continue;
        }
        double sec = floor(s->ts);
        if (sec != last_sec) last_sec = sec, tslen = put_i64(ts, (long long)sec);
        if (s->kind == MS_KIND_GAUGE) {
            adds(&body, sep);
            add(&body, d->prefix, d->plen);
            adds(&body, "\"type\":\"gauge\",\"points\":[[");
        } else {
            double pv = d->last_v, pt = d->last_t;
            int had = d->has_last;
            d->last_v = v, d->last_t = s->ts, d->has_last = 1;
            if (s->kind == MS_KIND_COUNTER) {
                if (!had || v < pv || s->ts <= pt) continue;
                adds(&body, sep);
                add(&body, d->prefix, d->plen);
                adds(&body, "\"type\":\"count\",");
                put_interval(&body, s->ts - pt);
                v -= pv;
            } else {
                adds(&body, sep);
                add(&body, d->prefix, d->plen);
                adds(&body, "\"type\":\"rate\",");
                put_interval(&body, had && s->ts > pt ? s->ts - pt : rate_interval);
            }
            adds(&body, "\"points\":[[");
        }
        add(&body, ts, tslen);
        add(&body, ",", 1);
        put_number(&body, v);
        add(&body, "]]}", 3);
        sep = ",";
    }
    if (sep[0] == ',') add(&body, "]}", 2);
    if (grow(&body, 1)) return -1;
    *out = body.p;
    *len = body.len;
    return 0;
}
