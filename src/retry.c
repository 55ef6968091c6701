/*
 * retry.c - the transports' retry policy (see ms_retry.h): config, backoff
 * with jitter, Retry-After.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ms_retry.h"

/* A duration from the map `n` at `key`, or `def`; errors at the value. */
static int get_duration(const ms_config *cfg, const ms_node *n, const char *ctx, const char *key,
                        double def, double *out, ms_error *err)
{
    const ms_node *v = ms_node_get(n, key);
    *out = def;
    if (!v) return MS_OK;
    if (v->type != MS_NODE_SCALAR || ms_parse_duration(v->value, out) != MS_OK || *out <= 0)
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: %s.%s: expected a duration greater than 0 like 500ms or 2s",
                            cfg->path, v->line, v->col, ctx, key);
    return MS_OK;
}

int ms_retry_parse(const ms_config *cfg, const ms_node *n, const char *ctx, ms_retry *out,
                   ms_error *err)
{
    out->base = 1;
    out->cap = 30;
    if (!n || ms_node_is_null(n)) return MS_OK;
    if (n->type != MS_NODE_MAP)
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: %s: expected a map like { base: 1s, cap: 30s }", cfg->path,
                            n->line, n->col, ctx);
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->items[i]->key;
        if (strcmp(k, "base") && strcmp(k, "cap"))
            return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s: unknown key '%s' (known: base, cap)",
                                cfg->path, n->items[i]->key_line, n->items[i]->key_col, ctx, k);
    }
    int rc = get_duration(cfg, n, ctx, "base", 1, &out->base, err);
    if (rc == MS_OK) rc = get_duration(cfg, n, ctx, "cap", 30, &out->cap, err);
    if (rc == MS_OK && out->cap < out->base) {
        const ms_node *c = ms_node_get(n, "cap");
        const ms_node *at = c ? c : n;
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s.cap: must not be less than base",
                            cfg->path, at->line, at->col, ctx);
    }
    return rc;
}

/* xorshift64*: enough randomness for jitter, seeded once per process. */
static double uniform01(void)
{
    static uint64_t x;
    if (!x) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^ 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

double ms_retry_delay(const ms_retry *r, unsigned attempt)
{
    double d = r->base;
    for (unsigned i = 1; i < attempt && d < r->cap; i++) d *= 2;
    if (d > r->cap) d = r->cap;
    return d / 2 + uniform01() * d / 2;
}

double ms_retry_after(const char *v, double now)
{
    if (!v) return -1;
    while (isspace((unsigned char)*v)) v++;
    size_t n = strlen(v);
    while (n && isspace((unsigned char)v[n - 1])) n--;
    if (!n || n > 64) return -1;
    char s[72];
    memcpy(s, v, n);
    s[n] = 0;
    if (strspn(s, "0123456789") == n) return n > 9 ? 1e9 : (double)atol(s);
    static const char *const fmts[] = {"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
                                       "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
                                       "%a %b %e %H:%M:%S %Y"};     /* asctime */
    for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(s, fmts[i], &tm);
        if (!end || *end) continue;
        double t = (double)timegm(&tm);
        return t > now ? t - now : 0;
    }
    return -1;
}

int ms_retry_http_transient(long status)
{
    return status >= 500 || status == 429;
}
