/*
 * bench/dd_ref.c - a reference encoder in C for Datadog's /api/v1/series
 * JSON, the yardstick for forwarders/datadog.lua in bench/bench_encoders.sh.
 * Built as a shared object and loaded by bench/enc_bench.lua with ffi.load
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
#include "ref.h"

static obuf body;

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
static size_t put_clean(obuf *o, const char *s, size_t n, int (*ok)(unsigned char), int strip)
{
    size_t i = 0, start = o->len;
    if (strip)
        while (i < n && !letter(ok((unsigned char)s[i]) ? (unsigned char)s[i] : '_')) i++;
    for (; i < n; i++) {
        char c = ok((unsigned char)s[i]) ? s[i] : '_';
        put(o, &c, 1);
    }
    return o->len - start;
}

static void put_json(obuf *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c < 32) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
    put(o, "\"", 1);
}

/* {"metric":"<name>","host":"<host>","tags":["k:v",...], */
static int build_prefix(dd_series *d, const ms_series *se)
{
    obuf p = {0};
    put_str(&p, "{\"metric\":\"");
    size_t n0 = p.len;
    size_t w = put_clean(&p, se->name, se->name_len, name_ok, 1);
    if (w == 0) put_str(&p, "unnamed");
    if (p.len - n0 > 200) p.len = n0 + 200;
    put_str(&p, "\"");
    for (uint32_t i = 0; i < se->ntags; i++)
        if (se->tags[i].klen == 4 && !memcmp(se->tags[i].k, "host", 4)) {
            put_str(&p, ",\"host\":");
            put_json(&p, se->tags[i].v, se->tags[i].vlen);
        }
    put_str(&p, ",\"tags\":[");
    int first = 1;
    for (uint32_t i = 0; i < se->ntags; i++) {
        const ms_tag *t = &se->tags[i];
        if (t->klen == 4 && !memcmp(t->k, "host", 4)) continue;
        size_t at = p.len;
        put(&p, first ? "\"" : ",\"", first ? 1 : 2);
        size_t ts = p.len;
        if (put_clean(&p, t->k, t->klen, tag_ok, 1) == 0) {
            p.len = at; /* nothing left of the key: no tag */
            continue;
        }
        if (t->vlen) {
            put(&p, ":", 1);
            put_clean(&p, t->v, t->vlen, tag_ok, 0);
        }
        if (p.len - ts > 200) p.len = ts + 200;
        put(&p, "\"", 1);
        first = 0;
    }
    put_str(&p, "],");
    if (!p.p) return -1;
    d->prefix = p.p;
    d->plen = p.len;
    return 0;
}

/* v in moonstat.encoder's number format (bench/ref.h). */
static void put_number(obuf *o, double v)
{
    char t[40];
    put(o, t, fmt_num(t, v));
}

static void put_interval(obuf *o, double d)
{
    char t[24];
    put(o, "\"interval\":", 11);
    put(o, t, fmt_i64(t, d < 1.5 ? 1 : (long long)floor(d + 0.5)));
    put(o, ",", 1);
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
        if (sec != last_sec) last_sec = sec, tslen = fmt_i64(ts, (long long)sec);
        if (s->kind == MS_KIND_GAUGE) {
            put_str(&body, sep);
            put(&body, d->prefix, d->plen);
            put_str(&body, "\"type\":\"gauge\",\"points\":[[");
        } else {
            double pv = d->last_v, pt = d->last_t;
            int had = d->has_last;
            d->last_v = v, d->last_t = s->ts, d->has_last = 1;
            if (s->kind == MS_KIND_COUNTER) {
                if (!had || v < pv || s->ts <= pt) continue;
                put_str(&body, sep);
                put(&body, d->prefix, d->plen);
                put_str(&body, "\"type\":\"count\",");
                put_interval(&body, s->ts - pt);
                v -= pv;
            } else {
                put_str(&body, sep);
                put(&body, d->prefix, d->plen);
                put_str(&body, "\"type\":\"rate\",");
                put_interval(&body, had && s->ts > pt ? s->ts - pt : rate_interval);
            }
            put_str(&body, "\"points\":[[");
        }
        put(&body, ts, tslen);
        put(&body, ",", 1);
        put_number(&body, v);
        put(&body, "]]}", 3);
        sep = ",";
    }
    if (sep[0] == ',') put(&body, "]}", 2);
    need(&body, 1);
    *out = body.p;
    *len = body.len;
    return 0;
}
