/*
 * bench/ref.h - what the C reference encoders of bench/ (enc_ref.c,
 * kafka_ref.c, dd_ref.c, rw_ref.c) share, header-only: a growable output
 * buffer and moonstat.encoder's number format.
 *
 * The number format: integers below 2^53 without a fraction; a value with 1
 * to 4 decimals from integers (if m = v * 10^k is an integer below 10^15 and
 * m / 10^k == v, the decimal m / 10^k is exactly what "%.15g" prints; a last
 * digit 0 means a shorter k exists, so printf decides); else the shortest of
 * "%.15g", "%.16g", "%.17g" that reads back to v.
 */
#ifndef BENCH_REF_H
#define BENCH_REF_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
} obuf;

/* Room for n more bytes (aborts when memory runs out: a benchmark). */
static inline void need(obuf *o, size_t n)
{
    if (o->len + n <= o->cap) return;
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap < o->len + n) cap *= 2;
    o->p = realloc(o->p, cap);
    if (!o->p) abort();
    o->cap = cap;
}

static inline void put(obuf *o, const void *s, size_t n)
{
    need(o, n);
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static inline void put_str(obuf *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Decimal digits of v into p; returns the length. */
static inline size_t fmt_i64(char *p, long long v)
{
    char t[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        t[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0) p[k++] = '-';
    while (n) p[k++] = t[--n];
    return k;
}

/* v in moonstat.encoder's number format into p (32 bytes); the length. */
static inline size_t fmt_num(char *p, double v)
{
    if (v == floor(v) && v > -9007199254740992.0 && v < 9007199254740992.0)
        return fmt_i64(p, (long long)v);
    static const double scale[] = {10, 100, 1000, 10000};
    for (int k = 0; k < 4; k++) {
        double m = v * scale[k];
        if (m != floor(m) || m <= -1e15 || m >= 1e15 || m / scale[k] != v) continue;
        long long a = (long long)(m < 0 ? -m : m), s = (long long)scale[k];
        long long ip = a / s, fr = a % s;
        if (fr % 10 == 0) break;
        size_t n = 0;
        if (m < 0) p[n++] = '-';
        n += fmt_i64(p + n, ip);
        p[n++] = '.';
        for (int d = k; d >= 0; d--, fr /= 10) p[n + (size_t)d] = (char)('0' + fr % 10);
        return n + (size_t)k + 1;
    }
    int n = snprintf(p, 32, "%.15g", v);
    if (strtod(p, NULL) != v) {
        n = snprintf(p, 32, "%.16g", v);
        if (strtod(p, NULL) != v) n = snprintf(p, 32, "%.17g", v);
    }
    return (size_t)n;
}

#endif
