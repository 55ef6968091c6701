/*
 * test_retry.c - the retry policy: backoff with jitter within [d/2, d],
 * capped; Retry-After as seconds and as each HTTP date form; which HTTP
 * statuses are transient; the retry: section's errors.
 */
#include <stdlib.h>

#include "ms_config.h"
#include "ms_retry.h"
#include "t.h"

static void test_delay(void)
{
    ms_retry r = {0.5, 8};
    int ok = 1, spread = 0;
    for (unsigned a = 1; a <= 10; a++) {
        double d = 0.5;
        for (unsigned i = 1; i < a; i++) d = d * 2 > 8 ? 8 : d * 2;
        double lo = 1e9, hi = 0;
        for (int k = 0; k < 200; k++) {
            double x = ms_retry_delay(&r, a);
            if (x < d / 2 || x > d) ok = 0;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
        if (hi - lo > d / 4) spread++;
    }
    T_OK(ok, "every delay is within [d/2, d] of min(cap, base*2^(n-1))");
    T_EQ_INT(spread, 10, "jitter spreads the delays at every attempt");
    T_OK(ms_retry_delay(&r, 1000) <= 8, "a huge attempt number stays capped");
}

static void test_retry_after(void)
{
    double now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    T_EQ_DBL(ms_retry_after("120", now), 120, 0, "delta-seconds");
    T_EQ_DBL(ms_retry_after(" 7 \r\n", now), 7, 0, "delta-seconds with header whitespace");
    T_EQ_DBL(ms_retry_after("Tue, 14 Nov 2023 22:14:00 GMT", now), 40, 0, "IMF-fixdate");
    T_EQ_DBL(ms_retry_after("Tuesday, 14-Nov-23 22:13:50 GMT", now), 30, 0, "RFC 850 date");
    T_EQ_DBL(ms_retry_after("Tue Nov 14 22:13:25 2023", now), 5, 0, "asctime date");
    T_EQ_DBL(ms_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), 0, 0, "a past date: now");
    T_EQ_DBL(ms_retry_after("soon", now), -1, 0, "garbage: -1");
    T_EQ_DBL(ms_retry_after("-5", now), -1, 0, "negative: -1");
    T_EQ_DBL(ms_retry_after("", now), -1, 0, "empty: -1");
}

static void test_status(void)
{
    T_OK(ms_retry_http_transient(500) && ms_retry_http_transient(503) &&
             ms_retry_http_transient(429),
         "5xx and 429 are transient");
    T_OK(!ms_retry_http_transient(400) && !ms_retry_http_transient(404) &&
             !ms_retry_http_transient(413),
         "other 4xx are permanent");
}

static void test_parse(void)
{
    ms_config cfg = {0};
    cfg.path = "config.yaml";
    ms_node *root = NULL;
    ms_error err = {0};
    const char *y = "a: { base: 250ms, cap: 4s }\nb: { base: 2s, cap: 1s }\nc: { bse: 1s }\n"
                    "d: { base: -1s }\n";
    T_EQ_INT(ms_node_parse_string("config.yaml", y, strlen(y), &root, &err), MS_OK, "yaml");
    ms_retry r;
    T_EQ_INT(ms_retry_parse(&cfg, ms_node_get(root, "a"), "x.retry", &r, &err), MS_OK, "parses");
    T_EQ_DBL(r.base, 0.25, 1e-9, "base");
    T_EQ_DBL(r.cap, 4, 1e-9, "cap");
    T_EQ_INT(ms_retry_parse(&cfg, NULL, "x.retry", &r, &err), MS_OK, "absent: defaults");
    T_OK(r.base == 1 && r.cap == 30, "defaults 1s and 30s");
    T_EQ_INT(ms_retry_parse(&cfg, ms_node_get(root, "b"), "x.retry", &r, &err), MS_EINVAL,
             "cap < base");
    T_OK(strstr(err.msg, "config.yaml:2:") && strstr(err.msg, "x.retry.cap"), "%s", err.msg);
    T_EQ_INT(ms_retry_parse(&cfg, ms_node_get(root, "c"), "x.retry", &r, &err), MS_EINVAL,
             "unknown key");
    T_OK(strstr(err.msg, "config.yaml:3:6") && strstr(err.msg, "'bse'"), "%s", err.msg);
    T_EQ_INT(ms_retry_parse(&cfg, ms_node_get(root, "d"), "x.retry", &r, &err), MS_EINVAL,
             "bad duration");
    T_OK(strstr(err.msg, "config.yaml:4:") != NULL, "%s", err.msg);
    ms_node_free(root);
}

int main(void)
{
    test_delay();
    test_retry_after();
    test_status();
    test_parse();
    return t_done();
}
