/*
 * statsd_json.c - the pystatsd JSON datagram parser (a strict flat object of
 * scalars, written here: no JSON library) and JavaScript's number-to-text
 * rules, used for Etsy's percentile and bin names (see ms_statsd.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_sample.h"
#include "ms_statsd.h"
#include "statsd_int.h"

typedef struct span {
    const char *p;
    size_t n;
} span;

static int span_is(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && !memcmp(s.p, lit, n);
}

/* ---- JSON (a strict flat object of scalars) ---- */

typedef struct jp {
    const char *p, *e;
} jp;

static void jws(jp *j)
{
    while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A JSON string at j->p (the opening quote) decoded into out (room for the
 * input's length); returns its length or -1. */
static long jstring(jp *j, char *out)
{
    if (j->p >= j->e || *j->p != '"') return -1;
    j->p++;
    size_t o = 0;
    while (j->p < j->e) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"') return (long)o;
        if (c < 0x20) return -1;
        if (c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        if (j->p >= j->e) return -1;
        c = (unsigned char)*j->p++;
        switch (c) {
        case '"':
            out[o++] = '"';
            break;
        case '\\':
            out[o++] = '\\';
            break;
        case '/':
            out[o++] = '/';
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (j->e - j->p < 4 || hex4(j->p, &cp)) return -1;
            j->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (j->e - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                j->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
            }
            o += put_utf8(out + o, cp); /* \uXXXX is 6 bytes, UTF-8 at most 4 */
            break;
        }
        default:
            return -1;
        }
    }
    return -1;
}

/* A JSON number (strict grammar); returns its length or 0. */
static size_t jnumber(const char *p, const char *e)
{
    const char *s = p;
    if (p < e && *p == '-') p++;
    if (p >= e) return 0;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < e && *p >= '0' && *p <= '9') p++;
    else
        return 0;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    return (size_t)(p - s);
}

static int json_bad(const ms_sd_sink *sink, const char *buf, size_t len, const char *why)
{
    if (sink->bad) sink->bad(sink->ud, buf, len, why);
    return -1;
}

static int lit(jp *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(j->e - j->p) < n || memcmp(j->p, w, n)) return 0;
    j->p += n;
    return 1;
}

int ms_statsd_parse_json(const char *buf, size_t len, char *tagbuf, size_t cap,
                         const ms_sd_sink *sink)
{
    if (len > MS_SD_MAX_LINE) return json_bad(sink, buf, len, "datagram too long");
    jp j = {buf, buf + len};
    char kbuf[MS_SD_MAX_LINE], vbuf[MS_SD_MAX_LINE], name[MS_SD_MAX_LINE];
    size_t name_len = 0, tl = 0;
    int have_name = 0, have_type = 0, have_value = 0;
    ms_sd_type type = MS_SD_GAUGE;
    int trace = 0;
    double value = 0;
    jws(&j);
    if (j.p >= j.e || *j.p != '{') return json_bad(sink, buf, len, "not a JSON object");
    j.p++;
    jws(&j);
    int first = 1;
    for (;;) {
        if (j.p < j.e && *j.p == '}' && first) {
            j.p++;
            break;
        }
        long kl = jstring(&j, kbuf);
        if (kl < 0) return json_bad(sink, buf, len, "bad JSON key");
        jws(&j);
        if (j.p >= j.e || *j.p != ':') return json_bad(sink, buf, len, "expected ':'");
        j.p++;
        jws(&j);
        long vl;
        int is_str = 0, is_null = 0;
        if (j.p < j.e && *j.p == '"') {
            vl = jstring(&j, vbuf);
            if (vl < 0) return json_bad(sink, buf, len, "bad JSON string");
            is_str = 1;
        } else if (lit(&j, "true")) {
            memcpy(vbuf, "true", 4), vl = 4;
        } else if (lit(&j, "false")) {
            memcpy(vbuf, "false", 5), vl = 5;
        } else if (lit(&j, "null")) {
            vl = 0, is_null = 1;
        } else {
            size_t nl = jnumber(j.p, j.e);
            if (!nl) return json_bad(sink, buf, len, "values must be strings, numbers, booleans");
            memcpy(vbuf, j.p, nl);
            vl = (long)nl;
            j.p += nl;
        }
        span k = {kbuf, (size_t)kl}, v = {vbuf, (size_t)vl};
        if (span_is(k, "metric_name")) {
            if (have_name++ || !is_str) return json_bad(sink, buf, len, "bad metric_name");
            name_len = ms_sd_sanitize(v.p, v.n, name);
        } else if (span_is(k, "metric_type")) {
            if (have_type++ || !is_str) return json_bad(sink, buf, len, "bad metric_type");
            if (span_is(v, "counter"))
                type = MS_SD_COUNTER;
            else if (span_is(v, "gauge") || span_is(v, "guage"))
                type = MS_SD_GAUGE;
            else if (span_is(v, "timer"))
                type = MS_SD_TIMER;
            else if (span_is(v, "trace"))
                type = MS_SD_GAUGE, trace = 1;
            else
                return json_bad(sink, buf, len, "metric_type must be trace|gauge|counter|timer");
        } else if (span_is(k, "value")) {
            if (have_value++ || is_null || !v.n || jnumber(v.p, v.p + v.n) != v.n)
                return json_bad(sink, buf, len, "value must be a number");
            char tmp[512];
            size_t n = v.n < sizeof tmp ? v.n : sizeof tmp - 1;
            memcpy(tmp, v.p, n);
            tmp[n] = 0;
            value = strtod(tmp, NULL);
        } else if (!is_null) {
            /* another key: a tag k:v (',' and ':' in keys, ',' in values -> '_') */
            if (tl + k.n + v.n + 2 > cap) return json_bad(sink, buf, len, "too many tags");
            if (tl) tagbuf[tl++] = ',';
            for (size_t i = 0; i < k.n; i++)
                tagbuf[tl++] = (k.p[i] == ',' || k.p[i] == ':') ? '_' : k.p[i];
            tagbuf[tl++] = ':';
            for (size_t i = 0; i < v.n; i++) tagbuf[tl++] = v.p[i] == ',' ? '_' : v.p[i];
        }
        first = 0;
        jws(&j);
        if (j.p < j.e && *j.p == ',') {
            j.p++;
            jws(&j);
            continue;
        }
        if (j.p < j.e && *j.p == '}') {
            j.p++;
            break;
        }
        return json_bad(sink, buf, len, "expected ',' or '}' (only flat objects)");
    }
    jws(&j);
    if (j.p != j.e) return json_bad(sink, buf, len, "data after the object");
    if (!have_name || !name_len) return json_bad(sink, buf, len, "no metric_name");
    if (!have_type) return json_bad(sink, buf, len, "no metric_type");
    if (!have_value) return json_bad(sink, buf, len, "no value");
    if (type == MS_SD_TIMER && !(value >= 0)) return json_bad(sink, buf, len, "negative timer");
    ms_sd_metric m = {0};
    m.key = name;
    m.key_len = name_len;
    m.type = type;
    m.value = value;
    m.rate = 1;
    m.ts = trace ? ms_now() : 0;
    m.tags = tl ? tagbuf : NULL;
    m.tags_len = tl;
    sink->metric(sink->ud, &m);
    return 0;
}

/* ---- JavaScript number formatting ---- */

void ms_statsd_js_format(double x, char *buf, size_t cap)
{
    if (x != x) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(x)) {
        snprintf(buf, cap, x > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (x == 0) {
        snprintf(buf, cap, "0");
        return;
    }
    /* shortest round-trip digits, then JavaScript's layout rules */
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp: [-]d.ddde[+-]XX */
    char digits[24];
    int nd = 0, neg = tmp[0] == '-';
    const char *p = tmp + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int e10 = atoi(p + 1); /* value = 0.d1d2... * 10^(e10+1) */
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int n = e10 + 1; /* position of the decimal point */
    char *o = buf, *end = buf + cap - 1;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o < end) *o++ = (ch);                                                                  \
    } while (0)
    if (neg) PUT('-');
    if (nd <= n && n <= 21) {
        for (int i = 0; i < nd; i++) PUT(digits[i]);
        for (int i = nd; i < n; i++) PUT('0');
    } else if (0 < n && n <= 21) {
        for (int i = 0; i < n; i++) PUT(digits[i]);
        PUT('.');
        for (int i = n; i < nd; i++) PUT(digits[i]);
    } else if (-6 < n && n <= 0) {
        PUT('0');
        PUT('.');
        for (int i = 0; i < -n; i++) PUT('0');
        for (int i = 0; i < nd; i++) PUT(digits[i]);
    } else {
        PUT(digits[0]);
        if (nd > 1) {
            PUT('.');
            for (int i = 1; i < nd; i++) PUT(digits[i]);
        }
        PUT('e');
        PUT(n - 1 >= 0 ? '+' : '-');
        char ex[16];
        snprintf(ex, sizeof ex, "%d", abs(n - 1));
        for (char *q = ex; *q; q++) PUT(*q);
    }
#undef PUT
    *o = 0;
}
