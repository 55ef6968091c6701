/*
 * statsd_int.h - what the StatsD modules share inside src/ (not a public
 * header): the aggregation table's layout (statsd_agg.c builds it,
 * statsd_flush.c turns it into samples), the timer sketch, and the key
 * sanitizer (statsd_parse.c, statsd_json.c).
 */
#ifndef MS_STATSD_INT_H
#define MS_STATSD_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ms_config.h"
#include "ms_series.h"
#include "ms_statsd.h"

/* ---- the timer sketch: log buckets, relative error SK_ALPHA ---- */

#define SK_ALPHA 0.01
#define SK_OFF   1100 /* bucket index offset: covers about 1e-9 .. 1e12 */
#define SK_BINS  2600

typedef struct sketch {
    uint32_t pos[SK_BINS], neg[SK_BINS];
    uint64_t zero;
} sketch;

/* A walk over a sketch's buckets in ascending value order. */
typedef struct walk {
    const sketch *s;
    int stage, i; /* stage 0: negatives (high index first), 1: zero, 2: positives */
} walk;

typedef struct entry {
    uint64_t hash;
    char *key; /* type byte, name, NUL, then k NUL v NUL per tag (owned) */
    uint32_t key_len, name_len, ntags;
    uint8_t type, touched, dead;
    int ttl;
    double last;
    ms_tag *tags; /* point into key */
    union {
        double sum; /* counter */
        struct {
            double v;
            int abs;
        } g;
        struct {
            double *vals;
            uint32_t n, cap;
            double count; /* timer_counters: sum of 1/rate */
            sketch *sk;
            uint64_t skn;
            double sksum, sksq, skmin, skmax;
        } t;
        struct {
            uint64_t *h;
            uint32_t n, cap;
        } s;
    } u;
} entry;

struct ms_sd_agg {
    entry **slots;
    uint32_t cap, n;
    uint32_t max_series, timer_cap;
    uint64_t dropped, sketched;
    ms_batch *events;
    uint32_t max_events;
};

/* Representative value of positive bucket i (within SK_ALPHA of its members). */
double ms_sd_sketch_value(int i);
/* Next non-empty bucket of the walk: its value and count; 0 at the end. */
int ms_sd_sketch_next(walk *w, double *v, uint64_t *n);
/* Remove the entry in slot i (backward shift: re-check slot i afterwards). */
void ms_sd_agg_remove(ms_sd_agg *a, uint32_t i);

/* Etsy's key sanitizing: whitespace runs -> "_", "/" -> "-", bytes outside
 * [A-Za-z0-9_.;=-] dropped. out has room for n bytes; returns its length. */
size_t ms_sd_sanitize(const char *s, size_t n, char *out);

/* ---- the listeners' config (statsd_conf.c) ---- */

typedef struct sd_conf {
    int enabled;
    char *udp, *tcp, *unix_path;
    int64_t workers, recv_batch, max_series, timer_cap, gauges_max_ttl, bad_line_log;
    uint64_t recv_buffer;
    double flush_interval, expire_after;
    int dogstatsd, graphite_naming, legacy_namespace, flush_counts, delete_idle_stats;
    ms_strlist percentiles, calculated_timer_metrics;
    const ms_node *histogram;
    char *global_prefix, *prefix_counter, *prefix_timer, *prefix_gauge, *prefix_set, *global_suffix;
    char *delete_counters, *delete_timers, *delete_gauges, *delete_sets;
} sd_conf;

/* The schema of listeners.json (json=1) or listeners.statsd. */
const ms_field *ms_sd_conf_fields(int json);
/* Fill *c from section `sec` of listener `name` and check it; *pct and
 * *histo (with *nhisto entries) are allocated for the caller, who frees them
 * (free, ms_sd_histo_free) and c (ms_schema_free) also on error. */
int ms_sd_conf_load(const ms_config *cfg, const char *name, int json, const ms_node *sec,
                    sd_conf *c, double **pct, ms_sd_histo **histo, size_t *nhisto, ms_error *err);
/* The flush options of a loaded section (pointing into c, pct and histo). */
void ms_sd_conf_opts(const sd_conf *c, const double *pct, const ms_sd_histo *histo, size_t nhisto,
                     ms_sd_flush_opts *o);
void ms_sd_histo_free(ms_sd_histo *h, size_t n);

#endif
