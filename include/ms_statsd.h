/*
 * ms_statsd.h - StatsD / DogStatsD / JSON line parsing and Etsy-exact
 * aggregation (docs/statsd.md).
 *
 * Parsing (statsd_parse.c) is pure: a packet in, one callback per metric,
 * event or rejected line out. Nothing is allocated; strings handed to the
 * callbacks point into the packet or into the caller's scratch buffer and are
 * valid only during the call.
 *
 * Aggregation (statsd_agg.c) keeps one table per thread: workers add parsed
 * metrics to their own table; at each flush the main thread moves every
 * worker's table into the main one (ms_sd_agg_merge), which keeps what
 * persists between flushes (gauges, idle counters unless deleted) and turns
 * the interval into samples (ms_sd_agg_flush).
 */
#ifndef MS_STATSD_H
#define MS_STATSD_H

#include <stddef.h>
#include <stdint.h>

#include "ms_err.h"
#include "ms_sample.h"

/* ---- parsing ---- */

typedef enum {
    MS_SD_COUNTER = 0,
    MS_SD_GAUGE,
    MS_SD_TIMER, /* ms; h and d too in DogStatsD mode */
    MS_SD_SET,
    MS_SD_TYPES_
} ms_sd_type;

/* One parsed value. key/tags/member are not NUL-terminated. */
typedef struct ms_sd_metric {
    const char *key; /* sanitized like Etsy: whitespace -> _, / -> -, other bytes dropped */
    size_t key_len;
    ms_sd_type type;
    double value;       /* counters, gauges, timers */
    double rate;        /* sample rate (1 when absent) */
    int delta;          /* gauge value started with + or - */
    double ts;          /* DogStatsD |T<unix>, 0 when absent */
    const char *member; /* sets: the raw member text ("0" when empty, like Etsy) */
    size_t member_len;
    const char *tags; /* "k:v,k2,..." (DogStatsD |#...), NULL when absent */
    size_t tags_len;
    const char *container; /* DogStatsD |c:<id>, NULL when absent */
    size_t container_len;
} ms_sd_metric;

/* A DogStatsD event (_e{..}) or service check (_sc|..), already turned into
 * one sample: kind MS_KIND_EVENT (value 1, msg "title\ntext") or
 * MS_KIND_HEALTH (value 0 OK, 8 WARNING, 16 CRITICAL/UNKNOWN, level word,
 * msg the check's message). */
typedef struct ms_sd_event {
    ms_kind kind;
    const char *name; /* event: "event" (the title goes in msg); check: its name */
    size_t name_len;
    double value, ts; /* ts 0: now */
    const char *msg;
    size_t msg_len;
    const char *level; /* health level word, or NULL */
    const char *tags;  /* raw "k:v,..." or NULL */
    size_t tags_len;
    const char *host; /* h:<host>, or NULL */
    size_t host_len;
} ms_sd_event;

typedef struct ms_sd_sink {
    void (*metric)(void *ud, const ms_sd_metric *m);
    void (*event)(void *ud, const ms_sd_event *e);                           /* may be NULL */
    void (*bad)(void *ud, const char *line, size_t len, const char *reason); /* may be NULL */
    void *ud;
} ms_sd_sink;

typedef struct ms_sd_parse_stats {
    uint64_t lines, metrics, bad, events;
} ms_sd_parse_stats;

/* Longest line (and key) the parser accepts; longer lines are bad lines. */
#define MS_SD_MAX_LINE 65536

/* Parse one packet: lines split on "\n" (empty lines skipped), each line may
 * hold several values ("k:1|c:2|c"). dogstatsd=0 is Etsy statsd 0.9 exactly
 * (h and d are counters, no value packing, |T and |c: are bad sample rates);
 * dogstatsd=1 adds value packing, h/d as timers, |T, |c:, _e and _sc.
 * Counts go to *st (added to). */
void ms_statsd_parse(const char *buf, size_t len, int dogstatsd, const ms_sd_sink *sink,
                     ms_sd_parse_stats *st);

/* JavaScript's Number(s) for the ASCII subset (whitespace trimmed, "" -> 0,
 * hex/octal/binary prefixes, Infinity). Returns 0 and *out, or -1 for NaN. */
int ms_statsd_js_number(const char *s, size_t len, double *out);

/* The pystatsd JSON format: one flat object {"metric_name": .., "metric_type":
 * trace|gauge|guage|counter|timer, "value": .., other keys -> tags}. Calls
 * sink->metric once (trace: a gauge with ts set to now, so it is forwarded as
 * is) or sink->bad with the reason. Tags are handed over as "k:v,k:v" in
 * `tagbuf` (cap bytes). Returns 0 or -1. */
int ms_statsd_parse_json(const char *buf, size_t len, char *tagbuf, size_t cap,
                         const ms_sd_sink *sink);

/* ---- aggregation ---- */

typedef struct ms_sd_agg ms_sd_agg;

typedef struct ms_sd_histo {
    char *metric; /* substring of the key */
    size_t nbins;
    double *bins; /* +inf for "inf" */
} ms_sd_histo;

typedef struct ms_sd_flush_opts {
    double interval; /* s: rates are per second over this */
    size_t npct;
    const double *pct; /* percentiles, e.g. 90, 99.9, -10 */
    size_t nhisto;
    const ms_sd_histo *histo;
    int delete_counters, delete_timers, delete_sets, delete_gauges;
    int gauges_max_ttl; /* flushes a gauge survives without updates when deleted (>= 1) */
    int flush_counts;   /* counters: emit the count too (not just the rate) */
    size_t ncalc;       /* calculatedTimerMetrics filter (0: all) */
    char *const *calc;
    double expire_after; /* s: entries idle this long are dropped (0: never) */
    /* naming */
    int graphite;         /* Etsy Graphite backend names (below) instead of plain key.stat */
    int legacy_namespace; /* stats.<key> / stats_counts.<key> / stats.timers.<key> ... */
    const char *global_prefix, *prefix_counter, *prefix_timer, *prefix_gauge, *prefix_set;
    const char *global_suffix; /* "" or "suffix" (written as ".suffix") */
} ms_sd_flush_opts;

/* A table; max_series bounds its entries (new keys past it are dropped and
 * counted), timer_cap the exact values one timer keeps per interval before
 * it switches to the sketch. NULL on allocation failure. */
ms_sd_agg *ms_sd_agg_new(uint32_t max_series, uint32_t timer_cap);
void ms_sd_agg_free(ms_sd_agg *a);
void ms_sd_agg_set_limits(ms_sd_agg *a, uint32_t max_series, uint32_t timer_cap);

/* Record one metric. Returns MS_OK, MS_EFULL (series cap; counted) or MS_ENOMEM. */
int ms_sd_agg_add(ms_sd_agg *a, const ms_sd_metric *m);

/* Keep an event/service check (or a |T sample) for the next flush. */
int ms_sd_agg_add_event(ms_sd_agg *a, const ms_sd_event *e);

/* Move src's interval data into dst (src is left empty). Same rules as if
 * dst had received src's lines after its own. */
int ms_sd_agg_merge(ms_sd_agg *dst, ms_sd_agg *src);

/* Turn the interval into samples appended to `out` (ts = now), then reset or
 * delete entries as the options say. */
void ms_sd_agg_flush(ms_sd_agg *a, const ms_sd_flush_opts *o, double now, ms_batch *out);

/* Entries held, keys dropped at the cap, timers that went to the sketch. */
uint32_t ms_sd_agg_size(const ms_sd_agg *a);
uint64_t ms_sd_agg_dropped(const ms_sd_agg *a);
uint64_t ms_sd_agg_sketched(const ms_sd_agg *a);

/* Shortest text that reads back as x, the way JavaScript prints numbers
 * (used for percentile and bin names). */
void ms_statsd_js_format(double x, char *buf, size_t cap);

/* ---- the listeners (listener_statsd.c): `listeners: { statsd: .., json: .. }` ---- */

struct uv_loop_s;
struct ms_config;

/* --config-test: check both sections (file:line:col messages). */
int ms_statsd_listeners_validate(const struct ms_config *cfg, ms_error *err);
/* Open the sockets and start the workers and flush timers of the enabled
 * listeners. An error (bind failure, bad section) names the listener. */
int ms_statsd_listeners_start(struct uv_loop_s *loop, const struct ms_config *cfg, ms_error *err);
/* SIGHUP: keep sockets, threads and aggregates when the socket settings are
 * unchanged; apply everything else. A bad section keeps the running one. */
int ms_statsd_listeners_reload(const struct ms_config *cfg, ms_error *err);
/* Close the sockets, flush what is aggregated to the pipeline (call before
 * ms_pipeline_stop). */
void ms_statsd_listeners_stop(void);
/* Free the tables after the loop ended. */
void ms_statsd_listeners_free(void);

#endif
