/*
 * statsd_conf.c - the `listeners.statsd` and `listeners.json` sections: one
 * schema (only the udp/tcp defaults differ), the checks beyond types
 * (addresses, ranges, percentiles, histogram bins, the delete_* tri-states)
 * with file:line:col messages, and the flush options they give.
 */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "ms_config.h"
#include "ms_statsd.h"
#include "statsd_int.h"

/* ---- config ---- */

/* clang-format off */
#define F(k, t, d, h) {#k, t, d, offsetof(sd_conf, k), h}
#define STATSD_FIELDS(UDP, TCP)                                                                    \
    F(enabled, MS_T_BOOL, "true", "false turns the listener off"),                                 \
    F(udp, MS_T_STRING, UDP, "host:port of the UDP socket; empty: none"),                          \
    F(tcp, MS_T_STRING, TCP, "host:port of the TCP socket (newline-framed); empty: none"),         \
    {"unix", MS_T_STRING, "", offsetof(sd_conf, unix_path),                                        \
     "path of a unix datagram socket (DogStatsD clients); empty: none"},                           \
    F(workers, MS_T_INT, "1", "UDP reader threads, each with its own SO_REUSEPORT socket and table"), \
    F(recv_buffer, MS_T_SIZE, "8MiB", "SO_RCVBUF of each UDP socket (the kernel may cap it: net.core.rmem_max)"), \
    F(recv_batch, MS_T_INT, "64", "datagrams read per recvmmsg call"),                             \
    F(flush_interval, MS_T_DURATION, "10s", "aggregation interval (Etsy flushInterval)"),          \
    F(dogstatsd, MS_T_BOOL, "true", "DogStatsD extensions; false: Etsy statsd 0.9 exactly (h and d count as counters)"), \
    F(percentiles, MS_T_STRLIST, "[90]", "timer percentiles (Etsy percentThreshold); negative: top-N"), \
    F(histogram, MS_T_NODE, NULL, "list of { metric: substring, bins: [10, 100, inf] } (Etsy histogram)"), \
    F(calculated_timer_metrics, MS_T_STRLIST, "[]", "only these timer stats (Etsy calculatedTimerMetrics); empty: all"), \
    F(graphite_naming, MS_T_BOOL, "false", "name flushed values as Etsy's Graphite backend does (stats.*, stats.timers.*, ...)"), \
    F(legacy_namespace, MS_T_BOOL, "true", "graphite_naming: Etsy legacyNamespace"),               \
    F(global_prefix, MS_T_STRING, "stats", "graphite_naming without legacy_namespace: first level"), \
    F(prefix_counter, MS_T_STRING, "counters", "graphite_naming without legacy_namespace"),        \
    F(prefix_timer, MS_T_STRING, "timers", "graphite_naming without legacy_namespace"),            \
    F(prefix_gauge, MS_T_STRING, "gauges", "graphite_naming without legacy_namespace"),            \
    F(prefix_set, MS_T_STRING, "sets", "graphite_naming without legacy_namespace"),                \
    F(global_suffix, MS_T_STRING, "", "graphite_naming: last level of every name; empty: none"),   \
    F(flush_counts, MS_T_BOOL, "true", "counters: send the count as well as the rate"),           \
    F(delete_idle_stats, MS_T_BOOL, "false", "default of the four delete_* keys (Etsy deleteIdleStats)"), \
    F(delete_counters, MS_T_STRING, "", "true: a counter without data is not sent; empty: delete_idle_stats"), \
    F(delete_timers, MS_T_STRING, "", "true: a timer without data is not sent; empty: delete_idle_stats"), \
    F(delete_gauges, MS_T_STRING, "", "true: a gauge without updates for gauges_max_ttl flushes is dropped; empty: delete_idle_stats"), \
    F(delete_sets, MS_T_STRING, "", "true: a set without data is not sent; empty: delete_idle_stats"), \
    F(gauges_max_ttl, MS_T_INT, "1", "delete_gauges: flushes a gauge survives without updates"),  \
    F(max_series, MS_T_INT, "100000", "most keys a table holds; new ones past it are dropped (moonstat_statsd_dropped_total)"), \
    F(timer_cap, MS_T_INT, "10000", "exact values one timer keeps per interval; past it a sketch with 1% relative error"), \
    F(expire_after, MS_T_DURATION, "1h", "keys without data this long are dropped whatever delete_* says; 0: never"), \
    F(bad_line_log, MS_T_INT, "5", "rejected lines logged per minute (all are counted)"),          \
    {NULL, 0, NULL, 0, NULL}
static const ms_field statsd_fields[] = {STATSD_FIELDS("127.0.0.1:8125", "127.0.0.1:8125")};
static const ms_field json_fields[] = {STATSD_FIELDS("127.0.0.1:5090", "")};
/* clang-format on */

const ms_field *ms_sd_conf_fields(int json)
{
    return json ? json_fields : statsd_fields;
}

/* "" -> dflt; "true"/"false"/... -> 0/1; else -1. */
static int tri(const char *s, int dflt)
{
    int b;
    if (!s || !*s) return dflt;
    return ms_parse_bool(s, &b) == MS_OK ? b : -1;
}

static int conf_error(const ms_config *cfg, const ms_node *n, const char *sec, ms_error *err,
                      const char *what)
{
    return ms_error_set(err, MS_EINVAL, "%s:%d:%d: listeners.%s.%s", cfg->path, n ? n->line : 1,
                        n ? n->col : 1, sec, what);
}

/* Parse and check one listener section into *c, the percentiles into *pct and
 * the histogram into *histo (all owned by the caller, see conf_free). */
int ms_sd_conf_load(const ms_config *cfg, const char *nm, int json, const ms_node *sec, sd_conf *c,
                    double **pct, ms_sd_histo **histo, size_t *nhisto, ms_error *err)
{
    *pct = NULL;
    *histo = NULL;
    *nhisto = 0;
    int rc = ms_schema_apply(ms_sd_conf_fields(json), sec, c, 0, cfg->path, err);
    if (rc) return rc;
    const ms_node *n;
#define CHECK(cond, key, msg)                                                                      \
    if (!(cond))                                                                                   \
    return conf_error(cfg, (n = ms_node_get(sec, key)) ? n : sec, nm, err, key ": " msg)
    char host[256];
    int port;
    CHECK(!*c->udp || ms_parse_address(c->udp, host, sizeof host, &port) == MS_OK, "udp",
          "expected host:port or empty");
    CHECK(!*c->tcp || ms_parse_address(c->tcp, host, sizeof host, &port) == MS_OK, "tcp",
          "expected host:port or empty");
    CHECK(strlen(c->unix_path) < sizeof(((struct sockaddr_un *)0)->sun_path), "unix",
          "path too long");
    CHECK(c->workers >= 1 && c->workers <= 64, "workers", "expected 1 to 64");
    CHECK(c->recv_batch >= 1 && c->recv_batch <= 1024, "recv_batch", "expected 1 to 1024");
    CHECK(c->recv_buffer <= INT_MAX, "recv_buffer", "at most 2GiB");
    CHECK(c->flush_interval >= 0.01, "flush_interval", "expected at least 10ms");
    CHECK(c->max_series >= 1 && c->max_series <= 100000000, "max_series", "expected 1 to 1e8");
    CHECK(c->timer_cap >= 1 && c->timer_cap <= 100000000, "timer_cap", "expected 1 to 1e8");
    CHECK(c->gauges_max_ttl >= 0, "gauges_max_ttl", "expected 0 or more");
    CHECK(c->bad_line_log >= 0, "bad_line_log", "expected 0 or more");
    CHECK(c->expire_after >= 0, "expire_after", "expected 0 or a duration");
    CHECK(tri(c->delete_counters, 0) >= 0, "delete_counters", "expected true, false or empty");
    CHECK(tri(c->delete_timers, 0) >= 0, "delete_timers", "expected true, false or empty");
    CHECK(tri(c->delete_gauges, 0) >= 0, "delete_gauges", "expected true, false or empty");
    CHECK(tri(c->delete_sets, 0) >= 0, "delete_sets", "expected true, false or empty");
    if (c->percentiles.n && !(*pct = calloc(c->percentiles.n, sizeof **pct)))
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->percentiles.n; i++) {
        char *end;
        double v = strtod(c->percentiles.v[i], &end);
        CHECK(*c->percentiles.v[i] && !*end && v != 0 && v >= -100 && v <= 100, "percentiles",
              "each must be a number in [-100, 100], not 0");
        (*pct)[i] = v;
    }
    const ms_node *h = c->histogram;
    if (!ms_node_is_null(h)) {
        if (h->type != MS_NODE_SEQ)
            return conf_error(cfg, h, nm, err, "histogram: expected a list of {metric, bins}");
        if (!(*histo = calloc(h->n ? h->n : 1, sizeof **histo)))
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        for (size_t i = 0; i < h->n; i++) {
            const ms_node *it = h->items[i], *m = ms_node_get(it, "metric"),
                          *b = ms_node_get(it, "bins");
            if (it->type != MS_NODE_MAP || it->n != 2 || !m || m->type != MS_NODE_SCALAR || !b ||
                b->type != MS_NODE_SEQ || !b->n)
                return conf_error(cfg, it, nm, err,
                                  "histogram: each item is { metric: text, bins: [numbers, inf] }");
            ms_sd_histo *x = &(*histo)[(*nhisto)++];
            x->metric = strdup(m->value);
            x->bins = calloc(b->n, sizeof *x->bins);
            if (!x->metric || !x->bins) return ms_error_set(err, MS_ENOMEM, "out of memory");
            for (size_t j = 0; j < b->n; j++) {
                const ms_node *v = b->items[j];
                char *end = NULL;
                double d = v->type == MS_NODE_SCALAR ? strtod(v->value, &end) : 0;
                if (v->type == MS_NODE_SCALAR && !strcmp(v->value, "inf")) {
                    d = INFINITY;
                    end = v->value + 3;
                }
                if (!end || end == v->value || *end)
                    return conf_error(cfg, v, nm, err, "histogram: a bin is a number or inf");
                x->bins[x->nbins++] = d;
            }
        }
    }
#undef CHECK
    return MS_OK;
}

void ms_sd_histo_free(ms_sd_histo *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].metric);
        free(h[i].bins);
    }
    free(h);
}

void ms_sd_conf_opts(const sd_conf *c, const double *pct, const ms_sd_histo *histo, size_t nhisto,
                     ms_sd_flush_opts *o)
{
    memset(o, 0, sizeof *o);
    o->interval = c->flush_interval;
    o->npct = c->percentiles.n;
    o->pct = pct;
    o->nhisto = nhisto;
    o->histo = histo;
    o->delete_counters = tri(c->delete_counters, c->delete_idle_stats);
    o->delete_timers = tri(c->delete_timers, c->delete_idle_stats);
    o->delete_gauges = tri(c->delete_gauges, c->delete_idle_stats);
    o->delete_sets = tri(c->delete_sets, c->delete_idle_stats);
    o->gauges_max_ttl = c->gauges_max_ttl > 1 ? (int)c->gauges_max_ttl : 1;
    o->flush_counts = c->flush_counts;
    o->ncalc = c->calculated_timer_metrics.n;
    o->calc = c->calculated_timer_metrics.v;
    o->expire_after = c->expire_after;
    o->graphite = c->graphite_naming;
    o->legacy_namespace = c->legacy_namespace;
    o->global_prefix = c->global_prefix;
    o->prefix_counter = c->prefix_counter;
    o->prefix_timer = c->prefix_timer;
    o->prefix_gauge = c->prefix_gauge;
    o->prefix_set = c->prefix_set;
    o->global_suffix = c->global_suffix;
}

int ms_statsd_listeners_validate(const ms_config *cfg, ms_error *err)
{
    static const char *names[] = {"statsd", "json"};
    for (int i = 0; i < 2; i++) {
        const ms_node *sec = ms_node_get(cfg->listeners, names[i]);
        if (!sec) continue;
        sd_conf c = {0};
        double *pct;
        ms_sd_histo *h;
        size_t nh;
        int rc = ms_sd_conf_load(cfg, names[i], i, sec, &c, &pct, &h, &nh, err);
        ms_schema_free(ms_sd_conf_fields(i), &c);
        free(pct);
        ms_sd_histo_free(h, nh);
        if (rc) return rc;
    }
    return MS_OK;
}
