/*
 * fuzz_statsd.c - libFuzzer harness for the Etsy StatsD line parser
 * (ms_statsd_parse with dogstatsd=0) and the aggregation behind it: every
 * input is parsed into a table, merged into a second one and flushed, the way
 * the listener does it. Invariants checked: keys are sanitized (only
 * [A-Za-z0-9_.;=-]), the parser counts every metric it hands over.
 */
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_DOGSTATSD
#define FUZZ_DOGSTATSD 0 /* fuzz_dogstatsd.c sets 1 */
#endif

#include "ms_series.h"
#include "ms_statsd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t n_metrics;

static void on_metric(void *ud, const ms_sd_metric *m)
{
    for (size_t i = 0; i < m->key_len; i++) {
        char c = m->key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ';' || c == '='))
            __builtin_trap();
    }
    if (!m->key_len || !(m->rate == m->rate)) __builtin_trap();
    n_metrics++;
    ms_sd_agg_add(ud, m);
}

static void on_event(void *ud, const ms_sd_event *e)
{
    ms_sd_agg_add_event(ud, e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ms_sd_agg *main_table;
    if (!main_table) {
        ms_series_set_limit(100000);
        main_table = ms_sd_agg_new(1000, 64);
    }
    ms_sd_agg *w = ms_sd_agg_new(1000, 64);
    ms_sd_sink sink = {on_metric, on_event, NULL, w};
    ms_sd_parse_stats st = {0};
    n_metrics = 0;
    ms_statsd_parse((const char *)data, size, FUZZ_DOGSTATSD, &sink, &st);
    if (st.metrics != n_metrics) __builtin_trap();
    ms_sd_agg_merge(main_table, w);
    ms_sd_agg_free(w);
    static const double pct[] = {90, -10, 99.9};
    ms_sd_flush_opts o = {.interval = 10,
                          .npct = 3,
                          .pct = pct,
                          .flush_counts = 1,
                          .gauges_max_ttl = 1,
                          .graphite = 1,
                          .legacy_namespace = 1,
                          .delete_counters = 1,
                          .delete_timers = 1,
                          .delete_sets = 1,
                          .delete_gauges = 1,
                          .global_suffix = ""};
    ms_batch *b = ms_batch_new(64);
    ms_sd_agg_flush(main_table, &o, 1000, b);
    ms_batch_unref(b);
    return 0;
}
