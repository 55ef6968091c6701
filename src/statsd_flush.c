/*
 * statsd_flush.c - a StatsD aggregation table into samples, with Etsy statsd
 * 0.9's process_metrics and Graphite backend naming (see ms_statsd.h,
 * docs/statsd.md): counters, timers with percentiles, top-N and histogram
 * bins (exact, or from the sketch past timer_cap), gauges, sets; then the
 * reset or delete rules. Floating-point operations follow Etsy's JavaScript
 * in order, so the numbers agree to the last bit while a timer is exact.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_series.h"
#include "ms_statsd.h"
#include "statsd_int.h"

/* ---- flush ---- */

typedef struct emitter {
    const ms_sd_flush_opts *o;
    ms_batch *out;
    double now;
    const entry *e;
    char name[MS_SD_MAX_LINE + 512];
    size_t base; /* length of the name up to and including the key */
} emitter;

static size_t put(char *b, size_t o, size_t cap, const char *s, size_t n)
{
    if (o + n >= cap) n = o < cap ? cap - o - 1 : 0;
    memcpy(b + o, s, n);
    return o + n;
}

/* Name prefix for the entry: Graphite namespaces or nothing; `ns2` is an
 * extra namespace for legacy counts ("stats_counts"). */
static void begin(emitter *x, const char *legacy_ns)
{
    const ms_sd_flush_opts *o = x->o;
    size_t n = 0, cap = sizeof x->name;
    const char *typ = NULL;
    if (o->graphite) {
        if (legacy_ns) {
            n = put(x->name, n, cap, legacy_ns, strlen(legacy_ns));
            if (*legacy_ns) n = put(x->name, n, cap, ".", 1);
        } else {
            switch (x->e->type) {
            case MS_SD_COUNTER:
                typ = o->prefix_counter;
                break;
            case MS_SD_TIMER:
                typ = o->prefix_timer;
                break;
            case MS_SD_GAUGE:
                typ = o->prefix_gauge;
                break;
            default:
                typ = o->prefix_set;
                break;
            }
            if (o->global_prefix && *o->global_prefix) {
                n = put(x->name, n, cap, o->global_prefix, strlen(o->global_prefix));
                n = put(x->name, n, cap, ".", 1);
            }
            if (typ && *typ) {
                n = put(x->name, n, cap, typ, strlen(typ));
                n = put(x->name, n, cap, ".", 1);
            }
        }
    }
    n = put(x->name, n, cap, x->e->key + 1, x->e->name_len);
    x->base = n;
}

/* Emit one value named <prefix><key>[.stat][.sub]<suffix>. */
static void emit(emitter *x, const char *stat, const char *sub, ms_kind kind, double v)
{
    size_t n = x->base, cap = sizeof x->name;
    if (stat) {
        n = put(x->name, n, cap, ".", 1);
        n = put(x->name, n, cap, stat, strlen(stat));
    }
    if (sub) {
        n = put(x->name, n, cap, ".", 1);
        n = put(x->name, n, cap, sub, strlen(sub));
    }
    if (x->o->graphite && x->o->global_suffix && *x->o->global_suffix) {
        n = put(x->name, n, cap, ".", 1);
        n = put(x->name, n, cap, x->o->global_suffix, strlen(x->o->global_suffix));
    }
    uint32_t id = ms_series_intern(x->name, n, x->e->tags, x->e->ntags);
    if (id) ms_batch_add(x->out, id, kind, v, x->now, NULL, 0, NULL, 0);
}

/* Etsy's calculatedTimerMetrics filter: the stat with /_(top)?\d+$/ replaced
 * by "_percent" must be listed. */
static int calc_ok(const ms_sd_flush_opts *o, const char *stat)
{
    if (!o->ncalc) return 1;
    char c[128];
    size_t n = strlen(stat);
    if (n >= sizeof c) return 0;
    memcpy(c, stat, n + 1);
    size_t d = n;
    while (d > 0 && c[d - 1] >= '0' && c[d - 1] <= '9') d--;
    if (d < n && d > 0) {
        size_t u = d;
        if (u >= 4 && !memcmp(c + u - 3, "top", 3) && c[u - 4] == '_')
            u -= 4;
        else if (c[u - 1] == '_')
            u -= 1;
        else
            u = (size_t)-1;
        if (u != (size_t)-1) snprintf(c + u, sizeof c - u, "_percent");
    }
    for (size_t i = 0; i < o->ncalc; i++)
        if (!strcmp(o->calc[i], c)) return 1;
    return 0;
}

static void tstat(emitter *x, const char *stat, double v)
{
    if (calc_ok(x->o, stat)) emit(x, stat, NULL, MS_KIND_GAUGE, v);
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* JavaScript's Math.round for x >= 0 (ties up, no x+0.5 rounding error). */
static double js_round(double x)
{
    double f = floor(x);
    return x - f >= 0.5 ? f + 1 : f;
}

/* The pct's name part: '' + pct with the first '.' -> '_' and '-' -> 'top'. */
static void pct_name(double pct, char *out, size_t cap)
{
    char b[64];
    ms_statsd_js_format(pct, b, sizeof b);
    char *dot = strchr(b, '.');
    if (dot) *dot = '_';
    char *minus = strchr(b, '-');
    if (minus)
        snprintf(out, cap, "%.*stop%s", (int)(minus - b), b, minus + 1);
    else
        snprintf(out, cap, "%s", b);
}

static const ms_sd_histo *histo_for(const ms_sd_flush_opts *o, const entry *e)
{
    for (size_t i = 0; i < o->nhisto; i++)
        if (memmem(e->key + 1, e->name_len, o->histo[i].metric, strlen(o->histo[i].metric)))
            return &o->histo[i];
    return NULL;
}

static void bin_name(double bin, char *out, size_t cap)
{
    char b[64];
    if (isinf(bin))
        snprintf(b, sizeof b, "inf");
    else
        ms_statsd_js_format(bin, b, sizeof b);
    char *dot = strchr(b, '.');
    if (dot) *dot = '_';
    snprintf(out, cap, "bin_%s", b);
}

/* Etsy's process_metrics for one timer with exact values. */
static void timer_exact(emitter *x, entry *e)
{
    const ms_sd_flush_opts *o = x->o;
    double *values = e->u.t.vals;
    uint32_t count = e->u.t.n;
    qsort(values, count, sizeof *values, dbl_cmp);
    double min = values[0], max = values[count - 1];
    double *cum = malloc(2 * count * sizeof *cum);
    if (!cum) return;
    double *sq = cum + count;
    cum[0] = min;
    sq[0] = min * min;
    for (uint32_t i = 1; i < count; i++) {
        cum[i] = values[i] + cum[i - 1];
        sq[i] = (values[i] * values[i]) + sq[i - 1];
    }
    double sum = min, sum_sq = min * min, mean = min, boundary = max;
    char pn[80], st[128];
    for (size_t k = 0; k < o->npct; k++) {
        double pct = o->pct[k];
        double num = count;
        if (count > 1) {
            num = js_round(fabs(pct) / 100 * count);
            if (num == 0) continue;
            size_t ni = (size_t)num;
            if (pct > 0) {
                boundary = values[ni - 1];
                sum = cum[ni - 1];
                sum_sq = sq[ni - 1];
            } else {
                boundary = values[count - ni];
                /* cumulativeValues[-1] is undefined in JavaScript: NaN */
                double below = count >= ni + 1 ? cum[count - ni - 1] : NAN;
                double below_sq = count >= ni + 1 ? sq[count - ni - 1] : NAN;
                sum = cum[count - 1] - below;
                sum_sq = sq[count - 1] - below_sq;
            }
            mean = sum / num;
        }
        pct_name(pct, pn, sizeof pn);
        snprintf(st, sizeof st, "count_%s", pn);
        tstat(x, st, num);
        snprintf(st, sizeof st, "mean_%s", pn);
        tstat(x, st, mean);
        snprintf(st, sizeof st, "%s_%s", pct > 0 ? "upper" : "lower", pn);
        tstat(x, st, boundary);
        snprintf(st, sizeof st, "sum_%s", pn);
        tstat(x, st, sum);
        snprintf(st, sizeof st, "sum_squares_%s", pn);
        tstat(x, st, sum_sq);
    }
    sum = cum[count - 1];
    sum_sq = sq[count - 1];
    mean = sum / count;
    double diffs = 0;
    for (uint32_t i = 0; i < count; i++) diffs += (values[i] - mean) * (values[i] - mean);
    uint32_t mid = count / 2;
    double median = (count % 2) ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    tstat(x, "std", sqrt(diffs / count));
    tstat(x, "upper", max);
    tstat(x, "lower", min);
    tstat(x, "count", e->u.t.count);
    tstat(x, "count_ps", e->u.t.count / o->interval);
    tstat(x, "sum", sum);
    tstat(x, "sum_squares", sum_sq);
    tstat(x, "mean", mean);
    tstat(x, "median", median);
    const ms_sd_histo *h = histo_for(o, e);
    if (h && calc_ok(o, "histogram")) {
        uint32_t i = 0;
        for (size_t b = 0; b < h->nbins; b++) {
            double freq = 0;
            for (; i < count && (isinf(h->bins[b]) || values[i] < h->bins[b]); i++) freq += 1;
            bin_name(h->bins[b], pn, sizeof pn);
            emit(x, "histogram", pn, MS_KIND_GAUGE, freq);
        }
    }
    free(cum);
}

/* Value at 0-based rank r of the sketch (min and max exact). */
static double sk_at(const entry *e, uint64_t r)
{
    if (r == 0) return e->u.t.skmin;
    if (r >= e->u.t.skn - 1) return e->u.t.skmax;
    walk w = {e->u.t.sk, 0, SK_BINS - 1};
    double v;
    uint64_t n, seen = 0;
    while (ms_sd_sketch_next(&w, &v, &n)) {
        if (r < seen + n) return v;
        seen += n;
    }
    return e->u.t.skmax;
}

/* Sum and sum of squares of the lowest k values (approximate). */
static void sk_low(const entry *e, uint64_t k, double *sum, double *sq)
{
    walk w = {e->u.t.sk, 0, SK_BINS - 1};
    double v, s = 0, q = 0;
    uint64_t n;
    while (k && ms_sd_sketch_next(&w, &v, &n)) {
        uint64_t t = n < k ? n : k;
        s += v * t;
        q += v * v * t;
        k -= t;
    }
    *sum = s;
    *sq = q;
}

/* The same statistics from the sketch (past timer_cap values): counts, sum,
 * sum_squares, upper, lower exact; mean exact; std from the sums; quantiles
 * and per-percentile sums within SK_ALPHA relative error. */
static void timer_sketch(emitter *x, entry *e)
{
    const ms_sd_flush_opts *o = x->o;
    uint64_t count = e->u.t.skn;
    char pn[80], st[128];
    double tsum = e->u.t.sksum, tsq = e->u.t.sksq;
    for (size_t k = 0; k < o->npct; k++) {
        double pct = o->pct[k];
        double num = js_round(fabs(pct) / 100 * (double)count);
        if (num == 0) continue;
        uint64_t ni = (uint64_t)num;
        double sum, sq, boundary;
        sk_low(e, pct > 0 ? ni : count - ni, &sum, &sq);
        if (pct > 0) {
            boundary = sk_at(e, ni - 1);
        } else {
            boundary = sk_at(e, count - ni);
            sum = tsum - sum;
            sq = tsq - sq;
        }
        pct_name(pct, pn, sizeof pn);
        snprintf(st, sizeof st, "count_%s", pn);
        tstat(x, st, num);
        snprintf(st, sizeof st, "mean_%s", pn);
        tstat(x, st, sum / num);
        snprintf(st, sizeof st, "%s_%s", pct > 0 ? "upper" : "lower", pn);
        tstat(x, st, boundary);
        snprintf(st, sizeof st, "sum_%s", pn);
        tstat(x, st, sum);
        snprintf(st, sizeof st, "sum_squares_%s", pn);
        tstat(x, st, sq);
    }
    double mean = tsum / (double)count;
    double var = tsq / (double)count - mean * mean;
    uint64_t mid = count / 2;
    double median = (count % 2) ? sk_at(e, mid) : (sk_at(e, mid - 1) + sk_at(e, mid)) / 2;
    tstat(x, "std", sqrt(var > 0 ? var : 0));
    tstat(x, "upper", e->u.t.skmax);
    tstat(x, "lower", e->u.t.skmin);
    tstat(x, "count", e->u.t.count);
    tstat(x, "count_ps", e->u.t.count / o->interval);
    tstat(x, "sum", tsum);
    tstat(x, "sum_squares", tsq);
    tstat(x, "mean", mean);
    tstat(x, "median", median);
    const ms_sd_histo *h = histo_for(o, e);
    if (h && calc_ok(o, "histogram")) {
        walk w = {e->u.t.sk, 0, SK_BINS - 1};
        double v;
        uint64_t n;
        size_t b = 0;
        double *freq = calloc(h->nbins ? h->nbins : 1, sizeof *freq);
        if (!freq) return;
        while (ms_sd_sketch_next(&w, &v, &n)) {
            while (b < h->nbins && !isinf(h->bins[b]) && !(v < h->bins[b])) b++;
            if (b < h->nbins) freq[b] += (double)n;
        }
        for (b = 0; b < h->nbins; b++) {
            bin_name(h->bins[b], pn, sizeof pn);
            emit(x, "histogram", pn, MS_KIND_GAUGE, freq[b]);
        }
        free(freq);
    }
}

static void timer_reset(entry *e)
{
    free(e->u.t.sk);
    e->u.t.sk = NULL;
    e->u.t.skn = 0;
    e->u.t.n = 0;
    e->u.t.count = 0;
    if (e->u.t.cap > 64) { /* give back what a burst took */
        free(e->u.t.vals);
        e->u.t.vals = NULL;
        e->u.t.cap = 0;
    }
}

void ms_sd_agg_flush(ms_sd_agg *a, const ms_sd_flush_opts *o, double now, ms_batch *out)
{
    static emitter xs; /* big name buffer; flush runs on the main thread only */
    emitter *x = &xs;
    x->o = o;
    x->out = out;
    x->now = now;
    for (uint32_t i = 0; i < a->cap; i++) {
        entry *e = a->slots[i];
        if (!e) continue;
        x->e = e;
        if (e->touched) e->last = now;
        int del = 0;
        switch (e->type) {
        case MS_SD_COUNTER: {
            double rate = e->u.sum / o->interval;
            if (o->graphite && o->legacy_namespace) {
                begin(x, "stats");
                emit(x, NULL, NULL, MS_KIND_RATE, rate);
                if (o->flush_counts) {
                    begin(x, "stats_counts");
                    emit(x, NULL, NULL, MS_KIND_GAUGE, e->u.sum);
                }
            } else {
                begin(x, NULL);
                emit(x, "rate", NULL, MS_KIND_RATE, rate);
                if (o->flush_counts) emit(x, "count", NULL, MS_KIND_GAUGE, e->u.sum);
            }
            e->u.sum = 0;
            del = o->delete_counters;
            break;
        }
        case MS_SD_TIMER:
            begin(x, o->graphite && o->legacy_namespace ? "stats.timers" : NULL);
            if (e->u.t.sk && e->u.t.skn)
                timer_sketch(x, e);
            else if (e->u.t.n)
                timer_exact(x, e);
            else {
                tstat(x, "count", 0);
                tstat(x, "count_ps", 0);
            }
            timer_reset(e);
            del = o->delete_timers;
            break;
        case MS_SD_GAUGE:
            begin(x, o->graphite && o->legacy_namespace ? "stats.gauges" : NULL);
            emit(x, NULL, NULL, MS_KIND_GAUGE, e->u.g.v);
            e->u.g.abs = 0;
            if (o->delete_gauges) {
                if (e->touched) e->ttl = o->gauges_max_ttl > 1 ? o->gauges_max_ttl : 1;
                del = --e->ttl < 1;
            }
            break;
        case MS_SD_SET:
            begin(x, o->graphite && o->legacy_namespace ? "stats.sets" : NULL);
            emit(x, "count", NULL, MS_KIND_GAUGE, e->u.s.n);
            memset(e->u.s.h, 0, e->u.s.cap * sizeof *e->u.s.h);
            e->u.s.n = 0;
            del = o->delete_sets;
            break;
        }
        e->touched = 0;
        if (!del && o->expire_after > 0 && now - e->last > o->expire_after) del = 1;
        e->dead = (uint8_t)del;
    }
    /* removal shifts entries back into freed slots: re-check a slot after it */
    for (uint32_t i = 0; i < a->cap;) {
        if (a->slots[i] && a->slots[i]->dead)
            ms_sd_agg_remove(a, i);
        else
            i++;
    }
    if (a->events->n) {
        ms_batch_append(out, a->events);
        ms_batch *fresh = ms_batch_new(16);
        if (fresh) {
            ms_batch_unref(a->events);
            a->events = fresh;
        }
    }
}
