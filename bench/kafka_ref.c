/*
 * bench/kafka_ref.c - a reference encoder in C for forwarders/kafka.lua's
 * chunks, the yardstick of bench/bench_encoders.sh. Built as a shared object
 * and loaded by bench/enc_bench.lua with ffi.load inside moonstat (it
 * resolves ms_series_get from the binary), so both encode the very same
 * batch and the bench checks that their bytes are identical.
 *
 * It works the way a good C encoder would, and the way the Lua one does:
 * per series id, the key and the JSON prefix (up to "@timestamp":") are
 * built once and cached; per sample, the value and the ISO timestamp
 * (cached while the millisecond does not change) are formatted and a record
 * (key, value, 16-byte trailer in host byte order) is appended to a
 * growable buffer. Gauges, counters and rates only (no texts); NaN and infinities
 * are skipped. Format "json" (apikey_as message, no apikey) or "influx".
 *
 *   int kafka_ref(const char *format, const ms_batch *b, const char **out, size_t *len)
 *     encodes b; *out points into a buffer owned here, valid until the next
 *     call. Returns 0, or -1 for an unknown format or a sample it cannot write.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ms_sample.h"
#include "ms_series.h"
#include "ref.h"

static obuf out;

/* JSON string contents of s (escapes '"', '\' and control bytes). */
static void put_json(obuf *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
        } else if (c < 32) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            put(o, e, 6);
        } else {
            put(o, &s[i], 1);
        }
    }
}

/* Influx escapes: `special` bytes get a backslash, control bytes become '_'. */
static void put_influx(obuf *o, const char *s, size_t n, const char *special)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c == 127) {
            put(o, "_", 1);
            continue;
        }
        if (strchr(special, c)) put(o, "\\", 1);
        put(o, &s[i], 1);
    }
}

static int reserved(const char *k, size_t n)
{
    static const char *const r[] = {"name",      "value",   "@version", "@timestamp", "apikey",
                                    "tenant_id", "message", "level",    "text"};
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        if (strlen(r[i]) == n && !memcmp(r[i], k, n)) return 1;
    return 0;
}

/* ---- per-series prefix cache: id -> bytes ---- */

typedef struct {
    char *p;
    size_t len;
} entry;

static entry *pre;
static size_t npre;
static int pre_json = -1;

static entry *prefix(uint32_t id, int json)
{
    if (pre_json != json) { /* another format: start over */
        for (size_t i = 0; i < npre; i++) free(pre[i].p);
        memset(pre, 0, npre * sizeof *pre);
        pre_json = json;
    }
    if (id >= npre) {
        size_t n = npre ? npre : 1024;
        while (n <= id) n *= 2;
        pre = realloc(pre, n * sizeof *pre);
        if (!pre) abort();
        memset(pre + npre, 0, (n - npre) * sizeof *pre);
        npre = n;
    }
    entry *e = &pre[id];
    if (e->p) return e;
    const ms_series *s = ms_series_get(id);
    if (!s) return NULL;
    obuf b = {0};
    if (json) {
        put(&b, "{\"name\":\"", 9);
        put_json(&b, s->name, s->name_len);
        put(&b, "\"", 1);
        for (uint32_t i = 0; i < s->ntags; i++) {
            const ms_tag *t = &s->tags[i];
            put(&b, ",\"", 2);
            if (reserved(t->k, t->klen)) put(&b, "tag_", 4);
            put_json(&b, t->k, t->klen);
            put(&b, "\":\"", 3);
            put_json(&b, t->v, t->vlen);
            put(&b, "\"", 1);
        }
        const char *tail = ",\"@version\":\"1\",\"@timestamp\":\"";
        put(&b, tail, strlen(tail));
    } else {
        put_influx(&b, s->name, s->name_len, ", ");
        for (uint32_t i = 0; i < s->ntags; i++) {
            const ms_tag *t = &s->tags[i];
            if (!t->klen || !t->vlen) continue;
            put(&b, ",", 1);
            put_influx(&b, t->k, t->klen, ",= ");
            put(&b, "=", 1);
            put_influx(&b, t->v, t->vlen, ",= ");
        }
        put(&b, " ", 1);
    }
    e->p = b.p;
    e->len = b.len;
    return e;
}

/* n as `w` decimal digits at p. */
static void digits(char *p, int n, int w)
{
    for (int i = w - 1; i >= 0; i--, n /= 10) p[i] = (char)('0' + n % 10);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of ms into p (24 bytes). */
static void iso(char *p, long long ms)
{
    time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    memcpy(p, "0000-00-00T00:00:00.000Z", 24);
    digits(p, tm.tm_year + 1900, 4);
    digits(p + 5, tm.tm_mon + 1, 2);
    digits(p + 8, tm.tm_mday, 2);
    digits(p + 11, tm.tm_hour, 2);
    digits(p + 14, tm.tm_min, 2);
    digits(p + 17, tm.tm_sec, 2);
    digits(p + 20, (int)(ms - (long long)sec * 1000), 3);
}

/* Unix seconds -> nanoseconds text, rounded to the microsecond (lineproto's ns). */
static size_t fmt_ns(char *p, double ts)
{
    double sec = floor(ts);
    long long us = (long long)floor((ts - sec) * 1e6 + 0.5);
    if (us >= 1000000) sec += 1, us -= 1000000;
    if (sec == 0) return (size_t)snprintf(p, 40, "%lld000", us);
    return (size_t)snprintf(p, 40, "%lld%06lld000", (long long)sec, us);
}

int kafka_ref(const char *format, const ms_batch *b, const char **o, size_t *len)
{
    int json = !strcmp(format, "json");
    if (!json && strcmp(format, "influx")) return -1;
    out.len = 0;
    long long last_ms = -1;
    double last_ts = -1;
    char ts_text[40];
    size_t ts_len = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *smp = &b->s[i];
        double v = smp->value;
        if (smp->kind == MS_KIND_HEALTH || smp->kind == MS_KIND_EVENT) return -1;
        if (isnan(v) || isinf(v)) continue;
        entry *e = prefix(smp->series, json);
        if (!e) continue;
        const ms_series *s = ms_series_get(smp->series);
        long long ms = (long long)floor(smp->ts * 1000 + 0.5);
        char num[40];
        size_t nl;
        uint32_t vlen;
        if (json) {
            if (ms != last_ms) last_ms = ms, iso(ts_text, ms), ts_len = 24;
            nl = fmt_num(num, v);
            vlen = (uint32_t)(e->len + ts_len + 11 + nl);
        } else {
            if (smp->ts != last_ts) last_ts = smp->ts, ts_len = fmt_ns(ts_text, smp->ts);
            if (smp->kind == MS_KIND_COUNTER && v == floor(v) && v > -9.2e18 && v < 9.2e18) {
                nl = fmt_i64(num, (long long)v);
                num[nl++] = 'i';
            } else {
                nl = fmt_num(num, v);
            }
            vlen = (uint32_t)(e->len + 7 + nl + ts_len);
        }
        struct {
            uint32_t k, v;
            int64_t ts;
        } h = {s->key_len, vlen, ms};
        need(&out, 16 + s->key_len + vlen);
        put(&out, s->key, s->key_len);
        put(&out, e->p, e->len);
        if (json) {
            put(&out, ts_text, ts_len);
            put(&out, "\",\"value\":", 10);
            put(&out, num, nl);
            put(&out, "}", 1);
        } else {
            put(&out, "value=", 6);
            put(&out, num, nl);
            put(&out, " ", 1);
            put(&out, ts_text, ts_len);
        }
        put(&out, &h, 16);
    }
    *o = out.p;
    *len = out.len;
    return 0;
}
