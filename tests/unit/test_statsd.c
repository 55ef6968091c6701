/*
 * test_statsd.c - the StatsD/DogStatsD/JSON parsers and the Etsy-exact
 * aggregation (statsd_parse.c, statsd_agg.c). The numbers expected here are
 * what Etsy statsd 0.9 computes (tests/integration/test_statsd_etsy.sh runs
 * the real thing).
 */
#include <stdlib.h>

#include "ms_series.h"
#include "ms_statsd.h"
#include "t.h"

/* ---- a recording sink ---- */

typedef struct rec {
    int n, bad, events;
    ms_sd_metric m[64];
    char keys[64][128], members[64][64], tags[64][128];
    char last_bad[128];
    ms_sd_event ev;
    char ev_name[64], ev_msg[256];
} rec;

static void r_metric(void *ud, const ms_sd_metric *m)
{
    rec *r = ud;
    if (r->n >= 64) return;
    r->m[r->n] = *m;
    snprintf(r->keys[r->n], 128, "%.*s", (int)m->key_len, m->key);
    snprintf(r->members[r->n], 64, "%.*s", (int)m->member_len, m->member ? m->member : "");
    snprintf(r->tags[r->n], 128, "%.*s", (int)m->tags_len, m->tags ? m->tags : "");
    r->n++;
}

static void r_event(void *ud, const ms_sd_event *e)
{
    rec *r = ud;
    r->events++;
    r->ev = *e;
    snprintf(r->ev_name, sizeof r->ev_name, "%.*s", (int)e->name_len, e->name);
    snprintf(r->ev_msg, sizeof r->ev_msg, "%.*s", (int)e->msg_len, e->msg ? e->msg : "");
}

static void r_bad(void *ud, const char *line, size_t len, const char *why)
{
    rec *r = ud;
    r->bad++;
    snprintf(r->last_bad, sizeof r->last_bad, "%s", why);
}

static rec R;

static void parse(const char *s, int dog)
{
    memset(&R, 0, sizeof R);
    ms_sd_sink sink = {r_metric, r_event, r_bad, &R};
    ms_sd_parse_stats st = {0};
    ms_statsd_parse(s, strlen(s), dog, &sink, &st);
}

static void test_js_number(void)
{
    double v;
    T_OK(ms_statsd_js_number("12.5", 4, &v) == 0 && v == 12.5, "Number('12.5')");
    T_OK(ms_statsd_js_number(" 7 ", 3, &v) == 0 && v == 7, "whitespace trimmed");
    T_OK(ms_statsd_js_number("", 0, &v) == 0 && v == 0, "'' is 0");
    T_OK(ms_statsd_js_number("0x1f", 4, &v) == 0 && v == 31, "hex");
    T_OK(ms_statsd_js_number("0b101", 5, &v) == 0 && v == 5, "binary");
    T_OK(ms_statsd_js_number(".5", 2, &v) == 0 && v == 0.5, "leading dot");
    T_OK(ms_statsd_js_number("5.", 2, &v) == 0 && v == 5, "trailing dot");
    T_OK(ms_statsd_js_number("-1e3", 4, &v) == 0 && v == -1000, "exponent");
    T_OK(ms_statsd_js_number("-Infinity", 9, &v) == 0 && isinf(v) && v < 0, "-Infinity");
    T_OK(ms_statsd_js_number("1e", 2, &v) != 0, "'1e' is NaN");
    T_OK(ms_statsd_js_number("-0x1", 4, &v) != 0, "signed hex is NaN");
    T_OK(ms_statsd_js_number("inf", 3, &v) != 0, "'inf' is NaN");
    T_OK(ms_statsd_js_number("1,5", 3, &v) != 0, "'1,5' is NaN");
    T_OK(ms_statsd_js_number(".", 1, &v) != 0, "'.' is NaN");
    char b[64];
    ms_statsd_js_format(99.9, b, sizeof b);
    T_EQ_STR(b, "99.9", "format 99.9");
    ms_statsd_js_format(-10, b, sizeof b);
    T_EQ_STR(b, "-10", "format -10");
    ms_statsd_js_format(1e21, b, sizeof b);
    T_EQ_STR(b, "1e+21", "format 1e21");
    ms_statsd_js_format(1.5e-7, b, sizeof b);
    T_EQ_STR(b, "1.5e-7", "format 1.5e-7");
    ms_statsd_js_format(0.000015, b, sizeof b);
    T_EQ_STR(b, "0.000015", "format 0.000015");
    ms_statsd_js_format(0.1 + 0.2, b, sizeof b);
    T_EQ_STR(b, "0.30000000000000004", "format 0.1+0.2");
    ms_statsd_js_format(123456789012, b, sizeof b);
    T_EQ_STR(b, "123456789012", "format a big integer");
}

static void test_etsy_lines(void)
{
    parse("a.b:1|c\nx:2.5|g\n\nt:10|ms|@0.5\ns:hello|s", 0);
    T_EQ_INT(R.n, 4, "four metrics, the empty line skipped");
    T_OK(R.m[0].type == MS_SD_COUNTER && R.m[0].value == 1 && R.m[0].rate == 1, "counter");
    T_OK(R.m[1].type == MS_SD_GAUGE && R.m[1].value == 2.5 && !R.m[1].delta, "gauge");
    T_OK(R.m[2].type == MS_SD_TIMER && R.m[2].value == 10 && R.m[2].rate == 0.5, "timer + rate");
    T_EQ_STR(R.members[3], "hello", "set member");
    parse("k:1|c:2|c:3|ms", 0);
    T_EQ_INT(R.n, 3, "several values per line");
    T_OK(R.m[2].type == MS_SD_TIMER && R.m[2].value == 3, "third value is a timer");
    parse("g:+4|g\ng:-2|g\ng: +4|g", 0);
    T_OK(R.m[0].delta && R.m[0].value == 4, "+ delta");
    T_OK(R.m[1].delta && R.m[1].value == -2, "- delta");
    T_OK(!R.m[2].delta && R.m[2].value == 4, "' +4' is absolute (Etsy matches /^[-+]/)");
    parse("my key/with\tstuff!:1|c", 0);
    T_EQ_STR(R.keys[0], "my_key-with_stuff", "Etsy sanitizing: spaces, /, other bytes");
    parse("a  \xc2\xa0"
          "b:1|c",
          0);
    T_EQ_STR(R.keys[0], "a_b", "a run of whitespace (with U+00A0) is one _");
    parse("k:5|x", 0);
    T_OK(R.n == 1 && R.m[0].type == MS_SD_COUNTER, "unknown type counts as a counter");
    parse("k:5|h\nk:5|d", 0);
    T_OK(R.n == 2 && R.m[0].type == MS_SD_COUNTER && R.m[1].type == MS_SD_COUNTER,
         "Etsy mode: h and d are counters (statsd 0.9)");
    parse("k:5|h\nk:5|d", 1);
    T_OK(R.n == 2 && R.m[0].type == MS_SD_TIMER && R.m[1].type == MS_SD_TIMER,
         "DogStatsD mode: h and d are timers");
    parse("k:|s", 0);
    T_EQ_STR(R.members[0], "0", "empty set member is '0'");
    parse("k:1|c|@0.1e5", 0);
    T_OK(R.n == 1 && R.m[0].rate == 0.1, "sample rate read as /^@([\\d.]+)/");
    parse("k:1|c|@0.5|junk", 0);
    T_OK(R.n == 1 && R.m[0].rate == 0.5, "fields after the rate are ignored");
    /* rejected lines */
    const char *bad[] = {"nocolon",     "k:abc|c", "k:-1|ms", "k:1|c|@x", "k:1|c|",
                         "k:1|c|@-0.5", "k:1",     ":1|c",    "k:|c",     "k:1|g|x",
                         "k:1|c|@+1",   "k:0x|c",  NULL};
    for (int i = 0; bad[i]; i++) {
        parse(bad[i], 0);
        T_OK(R.n == 0 && R.bad == 1, "bad line '%s' (%s)", bad[i], R.last_bad);
    }
    parse("k:1|c:|c", 0);
    T_OK(R.n == 1 && R.bad == 1, "one good value, one bad in the same line");
    parse("k:-1|h", 0);
    T_OK(R.n == 1 && R.m[0].value == -1, "negative h passes (only 'ms' must be >= 0)");
}

static void test_dogstatsd(void)
{
    parse("page.views:1|c|#env:prod,web", 1);
    T_OK(R.n == 1 && !strcmp(R.tags[0], "env:prod,web"), "tags");
    parse("page.views:1|c|@0.5|#env:prod", 1);
    T_OK(R.n == 1 && R.m[0].rate == 0.5 && !strcmp(R.tags[0], "env:prod"), "rate then tags");
    parse("page.views:1|c|#env:prod|@0.5", 1);
    T_OK(R.n == 1 && R.m[0].rate == 0.5, "tags then rate");
    parse("lat:1:2:3|d|#a:b", 1);
    T_OK(R.n == 3 && R.m[2].value == 3 && R.m[0].type == MS_SD_TIMER && !strcmp(R.tags[1], "a:b"),
         "value packing k:1:2:3|d");
    parse("lat:1:2:3|d", 0);
    T_OK(R.n == 1 && R.bad == 2, "Etsy mode: value-only bits are bad lines");
    parse("g:5|g|T1700000000", 1);
    T_OK(R.n == 1 && R.m[0].ts == 1700000000, "|T timestamp");
    parse("g:5|g|c:abc123", 1);
    T_OK(R.n == 1 && R.m[0].container_len == 6 && !memcmp(R.m[0].container, "abc123", 6),
         "|c: container");
    parse("g:5|g|c:abc:def", 1);
    T_OK(R.n == 1 && R.m[0].container_len == 7, "a container id may hold ':'");
    parse("k:1|c:2|c", 1);
    T_OK(R.n == 2 && R.m[1].value == 2, "DogStatsD mode keeps k:1|c:2|c");
    parse("g:5|g|T1700000000", 0);
    T_OK(R.n == 0 && R.bad == 1, "Etsy mode: |T is a bad sample rate");
    parse("_e{5,4}:title|text|d:1700000000|h:web1|p:low|t:warning|#a:b", 1);
    T_OK(R.events == 1 && R.ev.kind == MS_KIND_EVENT && R.ev.ts == 1700000000, "event");
    T_EQ_STR(R.ev_msg, "title\ntext", "event message is title and text");
    T_OK(R.ev.host_len == 4 && R.ev.tags_len == 3, "event host and tags");
    parse("_e{50,4}:title|text", 1);
    T_OK(R.events == 0 && R.bad == 1, "event with wrong lengths is bad");
    parse("_sc|db.up|1|d:1700000000|h:db1|#role:x|m:slow | replies", 1);
    T_OK(R.events == 1 && R.ev.kind == MS_KIND_HEALTH && R.ev.value == 8 &&
             !strcmp(R.ev.level, "WARNING"),
         "service check WARNING -> health 8");
    T_EQ_STR(R.ev_msg, "slow | replies", "check message is the rest of the line");
    T_EQ_STR(R.ev_name, "db.up", "check name");
    parse("_sc|db.up|7", 1);
    T_OK(R.events == 0 && R.bad == 1, "bad status rejected");
}

static void test_json(void)
{
    char tags[256];
    memset(&R, 0, sizeof R);
    ms_sd_sink sink = {r_metric, r_event, r_bad, &R};
    const char *ok1 = "{\"metric_name\": \"api.hits\", \"metric_type\": \"counter\", \"value\": 3, "
                      "\"dc\": \"eu\", \"canary\": true, \"n\": 1.5e2, \"x\": null}";
    T_OK(ms_statsd_parse_json(ok1, strlen(ok1), tags, sizeof tags, &sink) == 0, "JSON counter");
    T_OK(R.n == 1 && R.m[0].type == MS_SD_COUNTER && R.m[0].value == 3, "value 3");
    T_EQ_STR(R.tags[0], "dc:eu,canary:true,n:1.5e2", "other keys are tags, null skipped");
    const char *ok2 = "{\"metric_name\":\"t\",\"metric_type\":\"guage\",\"value\":-1.5,"
                      "\"s\":\"a\\u00e9\\n\"}";
    T_OK(ms_statsd_parse_json(ok2, strlen(ok2), tags, sizeof tags, &sink) == 0 &&
             R.m[1].type == MS_SD_GAUGE && R.m[1].value == -1.5,
         "guage is a gauge");
    const char *ok4 = "{\"metric_name\":\"q\",\"metric_type\":\"timer\",\"value\":\"12.5\"}";
    T_OK(ms_statsd_parse_json(ok4, strlen(ok4), tags, sizeof tags, &sink) == 0 &&
             R.m[R.n - 1].value == 12.5,
         "a value may be a string holding a JSON number");
    const char *ok3 = "{\"metric_name\":\"tr\",\"metric_type\":\"trace\",\"value\":7}";
    T_OK(ms_statsd_parse_json(ok3, strlen(ok3), tags, sizeof tags, &sink) == 0 &&
             R.m[R.n - 1].ts > 0,
         "trace is forwarded as is (ts set)");
    const char *bad[] = {"",
                         "[]",
                         "{\"metric_name\":\"a\",\"metric_type\":\"counter\"}",
                         "{\"metric_name\":\"a\",\"metric_type\":\"x\",\"value\":1}",
                         "{\"metric_name\":\"a\",\"metric_type\":\"counter\",\"value\":\"1x\"}",
                         "{\"metric_name\":\"a\",\"metric_type\":\"counter\",\"value\":1,}",
                         "{\"metric_name\":\"a\",\"metric_type\":\"counter\",\"value\":1} x",
                         "{\"metric_name\":\"a\",\"metric_type\":\"counter\",\"value\":01}",
                         "{\"metric_name\":\"a\",\"metric_type\":\"counter\",\"value\":1,\"o\":{}}",
                         "{\"metric_name\":\"a\",\"metric_name\":\"b\",\"metric_type\":\"counter\","
                         "\"value\":1}",
                         "{\"metric_name\":\"a\",\"metric_type\":\"timer\",\"value\":-1}",
                         "{\"metric_name\":\"a\\ud800\",\"metric_type\":\"counter\",\"value\":1}",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        int before = R.bad;
        T_OK(ms_statsd_parse_json(bad[i], strlen(bad[i]), tags, sizeof tags, &sink) != 0 &&
                 R.bad == before + 1,
             "bad JSON %d rejected (%s)", i, R.last_bad);
    }
}

/* ---- aggregation ---- */

static ms_batch *B;

static double val(const char *name)
{
    for (uint32_t i = 0; i < B->n; i++) {
        const ms_series *s = ms_series_get(B->s[i].series);
        if (s && !strcmp(s->name, name)) return B->s[i].value;
    }
    return NAN;
}

static int has(const char *name)
{
    return !isnan(val(name)) || 0;
}

static void feed(ms_sd_agg *a, const char *s, int dog)
{
    ms_sd_parse_stats st = {0};
    memset(&R, 0, sizeof R);
    ms_sd_sink rs = {r_metric, NULL, NULL, &R};
    ms_statsd_parse(s, strlen(s), dog, &rs, &st);
    for (int i = 0; i < R.n; i++) {
        R.m[i].key = R.keys[i];
        R.m[i].member = R.m[i].member ? R.members[i] : NULL;
        R.m[i].tags = R.m[i].tags ? R.tags[i] : NULL;
        ms_sd_agg_add(a, &R.m[i]);
    }
}

static ms_sd_flush_opts opts(void)
{
    static const double pct[] = {90, 95, 99.9, -10};
    ms_sd_flush_opts o = {0};
    o.interval = 10;
    o.npct = 4;
    o.pct = pct;
    o.flush_counts = 1;
    o.gauges_max_ttl = 1;
    o.graphite = 1;
    o.legacy_namespace = 1;
    o.global_prefix = "stats";
    o.prefix_counter = "counters";
    o.prefix_timer = "timers";
    o.prefix_gauge = "gauges";
    o.prefix_set = "sets";
    o.global_suffix = "";
    return o;
}

static void flush(ms_sd_agg *a, const ms_sd_flush_opts *o)
{
    ms_batch_unref(B);
    B = ms_batch_new(64);
    ms_sd_agg_flush(a, o, 1000, B);
}

static void test_agg_etsy(void)
{
    ms_sd_agg *a = ms_sd_agg_new(1000, 10000);
    ms_sd_flush_opts o = opts();
    feed(a, "c:1|c\nc:2|c|@0.5\ng:10|g\ng:-3|g\nnewg:+5|g\ns:a|s\ns:b|s\ns:a|s", 0);
    /* timer 1..20 */
    for (int i = 20; i >= 1; i--) {
        char l[32];
        snprintf(l, sizeof l, "t:%d|ms", i);
        feed(a, l, 0);
    }
    flush(a, &o);
    T_EQ_DBL(val("stats_counts.c"), 5, 0, "count with a sample rate: 1 + 2/0.5");
    T_EQ_DBL(val("stats.c"), 0.5, 1e-15, "rate per second");
    T_EQ_DBL(val("stats.gauges.g"), 7, 0, "gauge delta applied");
    T_EQ_DBL(val("stats.gauges.newg"), 5, 0, "delta on a new gauge sets it");
    T_EQ_DBL(val("stats.sets.s.count"), 2, 0, "set unique count");
    T_EQ_DBL(val("stats.timers.t.count"), 20, 0, "timer count");
    T_EQ_DBL(val("stats.timers.t.count_ps"), 2, 0, "timer count_ps");
    T_EQ_DBL(val("stats.timers.t.mean"), 10.5, 0, "mean");
    T_EQ_DBL(val("stats.timers.t.median"), 10.5, 0, "median (even count)");
    T_EQ_DBL(val("stats.timers.t.upper"), 20, 0, "upper");
    T_EQ_DBL(val("stats.timers.t.lower"), 1, 0, "lower");
    T_EQ_DBL(val("stats.timers.t.sum"), 210, 0, "sum");
    T_EQ_DBL(val("stats.timers.t.sum_squares"), 2870, 0, "sum_squares");
    T_EQ_DBL(val("stats.timers.t.std"), sqrt(665.0 / 20), 1e-12, "population std");
    T_EQ_DBL(val("stats.timers.t.count_90"), 18, 0, "count_90");
    T_EQ_DBL(val("stats.timers.t.upper_90"), 18, 0, "upper_90");
    T_EQ_DBL(val("stats.timers.t.sum_90"), 171, 0, "sum_90");
    T_EQ_DBL(val("stats.timers.t.mean_90"), 9.5, 0, "mean_90");
    T_EQ_DBL(val("stats.timers.t.count_99_9"), 20, 0, "count_99_9 (name uses _)");
    T_EQ_DBL(val("stats.timers.t.count_top10"), 2, 0, "count_top10");
    T_EQ_DBL(val("stats.timers.t.lower_top10"), 19, 0, "lower_top10: the top-N boundary");
    T_EQ_DBL(val("stats.timers.t.sum_top10"), 39, 0, "sum_top10");
    T_EQ_DBL(val("stats.timers.t.sum_squares_top10"), 761, 0, "sum_squares_top10");
    /* second flush: idle */
    flush(a, &o);
    T_EQ_DBL(val("stats_counts.c"), 0, 0, "idle counter sent as 0");
    T_EQ_DBL(val("stats.timers.t.count"), 0, 0, "idle timer: count 0");
    T_OK(!has("stats.timers.t.mean"), "idle timer: nothing else");
    T_EQ_DBL(val("stats.gauges.g"), 7, 0, "gauge persists");
    T_EQ_DBL(val("stats.sets.s.count"), 0, 0, "idle set: 0");
    /* delete family */
    o.delete_counters = o.delete_timers = o.delete_sets = o.delete_gauges = 1;
    flush(a, &o);
    T_OK(has("stats.gauges.g"), "deleteGauges: sent once more at the flush it is deleted");
    flush(a, &o);
    T_EQ_INT(B->n, 0, "everything deleted: an empty flush");
    T_EQ_INT(ms_sd_agg_size(a), 0, "table empty");
    /* gauges_max_ttl */
    o.gauges_max_ttl = 3;
    feed(a, "g2:1|g", 0);
    flush(a, &o);
    flush(a, &o);
    flush(a, &o);
    T_OK(has("stats.gauges.g2"), "gauge kept gauges_max_ttl flushes");
    flush(a, &o);
    T_OK(!has("stats.gauges.g2"), "then deleted");
    /* single value timer: every percentile is that value */
    feed(a, "one:42|ms", 0);
    flush(a, &o);
    T_EQ_DBL(val("stats.timers.one.upper_90"), 42, 0, "one value: upper_90");
    T_EQ_DBL(val("stats.timers.one.lower_top10"), 42, 0, "one value: lower_top10");
    T_EQ_DBL(val("stats.timers.one.count_top10"), 1, 0, "one value: count_top10");
    ms_sd_agg_free(a);
}

static void test_naming(void)
{
    ms_sd_agg *a = ms_sd_agg_new(1000, 10000);
    ms_sd_flush_opts o = opts();
    o.legacy_namespace = 0;
    o.global_suffix = "sfx";
    o.prefix_gauge = "";
    feed(a, "c:1|c\ng:1|g\nt:1|ms\ns:x|s", 0);
    flush(a, &o);
    T_OK(has("stats.counters.c.rate.sfx") && has("stats.counters.c.count.sfx"),
         "non-legacy counters: prefix, rate/count, suffix");
    T_OK(has("stats.g.sfx"), "empty per-type prefix is left out");
    T_OK(has("stats.timers.t.mean.sfx") && has("stats.sets.s.count.sfx"), "timers and sets");
    o.graphite = 0;
    feed(a, "c:1|c\nt:1|ms", 0);
    flush(a, &o);
    T_OK(has("c.rate") && has("c.count") && has("t.mean") && has("g") && has("s.count"),
         "plain naming for tagged backends");
    o.ncalc = 2;
    char *calc[] = {"mean", "upper_percent"};
    o.calc = calc;
    feed(a, "t:1|ms\nt:2|ms", 0);
    flush(a, &o);
    T_OK(has("t.mean") && has("t.upper_90") && !has("t.median") && !has("t.count_90"),
         "calculated_timer_metrics filter");
    ms_sd_agg_free(a);
}

static void test_tags_merge_bounds(void)
{
    ms_sd_agg *main = ms_sd_agg_new(1000, 10000), *w1 = ms_sd_agg_new(1000, 10000),
              *w2 = ms_sd_agg_new(1000, 10000);
    ms_sd_flush_opts o = opts();
    o.graphite = 0;
    feed(w1, "c:1|c|#b:2,a:1\ng:10|g\ns:x|s\nt:1|ms", 1);
    feed(w2, "c:2|c|#a:1,b:2\ng:+5|g\ns:y|s\ns:x|s\nt:3|ms", 1);
    ms_sd_agg_merge(main, w1);
    ms_sd_agg_merge(main, w2);
    T_EQ_INT(ms_sd_agg_size(w1), 0, "merge empties the source");
    flush(main, &o);
    int found = 0;
    for (uint32_t i = 0; i < B->n; i++) {
        const ms_series *s = ms_series_get(B->s[i].series);
        if (!strcmp(s->name, "c.count") && s->ntags >= 2) found += B->s[i].value == 3;
    }
    T_EQ_INT(found, 1, "tags in any order are one series");
    T_EQ_DBL(val("g"), 15, 0, "gauge set in one worker, delta in the next");
    T_EQ_DBL(val("s.count"), 2, 0, "sets merged");
    T_EQ_DBL(val("t.mean"), 2, 0, "timers merged");
    /* series cap */
    ms_sd_agg *small = ms_sd_agg_new(2, 10000);
    feed(small, "a:1|c\nb:1|c\nc:1|c", 0);
    T_EQ_INT(ms_sd_agg_size(small), 2, "series cap holds");
    T_EQ_INT(ms_sd_agg_dropped(small), 1, "drop counted");
    ms_sd_agg_free(small);
    /* timer cap: past it the sketch answers within 1% */
    ms_sd_agg *sk = ms_sd_agg_new(10, 100);
    for (int i = 1; i <= 10000; i++) {
        ms_sd_metric m = {.key = "lat", .key_len = 3, .type = MS_SD_TIMER, .value = i, .rate = 1};
        ms_sd_agg_add(sk, &m);
    }
    T_EQ_INT(ms_sd_agg_sketched(sk), 1, "timer went to the sketch");
    o.graphite = 1;
    flush(sk, &o);
    T_EQ_DBL(val("stats.timers.lat.count"), 10000, 0, "sketch: count exact");
    T_EQ_DBL(val("stats.timers.lat.sum"), 50005000, 0, "sketch: sum exact");
    T_EQ_DBL(val("stats.timers.lat.upper"), 10000, 0, "sketch: upper exact");
    T_EQ_DBL(val("stats.timers.lat.lower"), 1, 0, "sketch: lower exact");
    T_EQ_DBL(val("stats.timers.lat.mean"), 5000.5, 1e-9, "sketch: mean exact");
    T_EQ_DBL(val("stats.timers.lat.std"), sqrt((10000.0 * 10000 - 1) / 12), 1e-3, "sketch: std");
    T_EQ_DBL(val("stats.timers.lat.median"), 5000.5, 5000.5 * 0.01, "sketch: median within 1%");
    T_EQ_DBL(val("stats.timers.lat.upper_90"), 9000, 90, "sketch: upper_90 within 1%");
    T_EQ_DBL(val("stats.timers.lat.count_90"), 9000, 0, "sketch: count_90 exact");
    T_EQ_DBL(val("stats.timers.lat.sum_90"), 40504500, 40504500 * 0.01, "sketch: sum_90 within 1%");
    T_EQ_DBL(val("stats.timers.lat.lower_top10"), 9001, 90.01, "sketch: lower_top10 within 1%");
    /* a sketch merges with exact values */
    ms_sd_agg *w = ms_sd_agg_new(10, 100);
    for (int i = 1; i <= 200; i++) {
        ms_sd_metric m = {.key = "lat", .key_len = 3, .type = MS_SD_TIMER, .value = i, .rate = 1};
        ms_sd_agg_add(w, &m);
        if (i <= 50) ms_sd_agg_add(sk, &m);
    }
    ms_sd_agg_merge(sk, w);
    flush(sk, &o);
    T_EQ_DBL(val("stats.timers.lat.count"), 250, 0, "merged sketch + exact: count");
    T_EQ_DBL(val("stats.timers.lat.sum"), 1275 + 20100, 0, "merged: sum exact");
    ms_sd_agg_free(w);
    /* idle expiry */
    o.expire_after = 60;
    feed(sk, "old:1|c", 0);
    ms_sd_agg_flush(sk, &o, 1000, B);
    ms_sd_agg_flush(sk, &o, 1030, B);
    T_OK(ms_sd_agg_size(sk) >= 1, "idle key kept before expire_after");
    ms_sd_agg_flush(sk, &o, 1100, B);
    T_EQ_INT(ms_sd_agg_size(sk), 0, "idle keys expire");
    ms_sd_agg_free(sk);
    ms_sd_agg_free(main);
    ms_sd_agg_free(w1);
    ms_sd_agg_free(w2);
}

static void test_events(void)
{
    ms_sd_agg *a = ms_sd_agg_new(100, 100);
    memset(&R, 0, sizeof R);
    ms_sd_sink sink = {r_metric, r_event, r_bad, &R};
    ms_sd_parse_stats st = {0};
    const char *l = "_sc|db.up|2|h:db9|m:down";
    ms_statsd_parse(l, strlen(l), 1, &sink, &st);
    ms_sd_agg_add_event(a, &R.ev);
    ms_sd_flush_opts o = opts();
    flush(a, &o);
    T_EQ_INT(B->n, 1, "service check flushed as one sample");
    const ms_series *s = ms_series_get(B->s[0].series);
    T_OK(B->s[0].kind == MS_KIND_HEALTH && B->s[0].value == 16 && !strcmp(s->name, "db.up"),
         "health 16 for CRITICAL");
    T_EQ_STR(ms_batch_text(B, B->s[0].msg), "down", "message kept");
    T_EQ_STR(ms_batch_text(B, B->s[0].level), "CRITICAL", "level kept");
    int host_ok = 0;
    for (uint32_t i = 0; i < s->ntags; i++)
        host_ok |= !strcmp(s->tags[i].k, "host") && !strcmp(s->tags[i].v, "db9");
    T_OK(host_ok, "h: becomes the host tag");
    ms_sd_agg_free(a);
}

int main(void)
{
    ms_tag base = {"host", "unit", 4, 4};
    ms_series_set_limit(100000);
    ms_series_set_base_tags(&base, 1);
    test_js_number();
    test_etsy_lines();
    test_dogstatsd();
    test_json();
    test_agg_etsy();
    test_naming();
    test_tags_merge_bounds();
    test_events();
    ms_batch_unref(B);
    ms_series_reset();
    return t_done();
}
