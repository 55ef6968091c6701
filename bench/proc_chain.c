/*
 * bench/proc_chain.c - the processor chain of bench_processors.sh written in
 * C, as the yardstick for the Lua one: rename (glob "cpu.*" -> "system.cpu.*"),
 * filter (exclude "*.idle") and drop_stale (2m ahead, 5m behind) over a batch
 * of samples, compacting the batch in place. Like the Lua built-ins it
 * decides once per series id (cold path: fnmatch, interning) and caches the
 * result in arrays indexed by id, so the per-sample work is the same.
 *
 * Usage: proc_chain SAMPLES SERIES ROUNDS -> prints "ns_per_sample kept".
 * Built by bench/bench_processors.sh against the moonstat objects in build/.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ms_sample.h"
#include "ms_series.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint32_t *ren; /* id -> renamed id (0: not decided yet) */
static int8_t *keep;  /* id -> 1 keep, 0 drop, -1 not decided yet */

/* rename rule, cold path: "cpu.*" -> "system.cpu.*" with the same tags */
static uint32_t rename_cold(uint32_t id)
{
    const ms_series *s = ms_series_get(id);
    uint32_t nid = id;
    if (s && fnmatch("cpu.*", s->name, 0) == 0) {
        char name[512];
        snprintf(name, sizeof name, "system.cpu.%s", s->name + 4);
        nid = ms_series_intern(name, strlen(name), s->tags, s->ntags);
        if (!nid) nid = id;
    }
    ren[id] = nid;
    return nid;
}

/* filter rule, cold path: exclude "*.idle" */
static int filter_cold(uint32_t id)
{
    const ms_series *s = ms_series_get(id);
    int k = !(s && fnmatch("*.idle", s->name, 0) == 0);
    keep[id] = (int8_t)k;
    return k;
}

/* The chain over one batch; returns the number of samples kept. */
static uint32_t chain(ms_batch *b, double now)
{
    const double ahead = 120, behind = 300;
    uint32_t j = 0;
    ms_sample *s = b->s;
    for (uint32_t i = 0; i < b->n; i++) {
        ms_sample smp = s[i];
        uint32_t nid = ren[smp.series];
        if (!nid) nid = rename_cold(smp.series);
        smp.series = nid;
        int k = keep[nid];
        if (k < 0) k = filter_cold(nid);
        if (!k) continue;
        double d = smp.ts - now;
        if (d > ahead || d < -behind) continue;
        s[j++] = smp;
    }
    b->n = j;
    return j;
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)atoi(argv[1]) : 1000000;
    uint32_t nseries = argc > 2 ? (uint32_t)atoi(argv[2]) : 1000;
    int rounds = argc > 3 ? atoi(argv[3]) : 20;
    ms_series_set_limit(4 * nseries + 16);
    uint32_t *ids = calloc(nseries, sizeof *ids);
    for (uint32_t k = 0; k < nseries; k++) { /* the same series as the Lua bench */
        char name[64], host[32];
        snprintf(name, sizeof name, "%s.%u%s", k % 2 ? "disk" : "cpu", k,
                 k % 10 == 3 ? ".idle" : "");
        snprintf(host, sizeof host, "web%u", k % 8);
        ms_tag t = {"host", host, 4, (uint32_t)strlen(host)};
        ids[k] = ms_series_intern(name, strlen(name), &t, 1);
    }
    uint32_t cap = ms_series_count() * 2 + 16;
    ren = calloc(cap, sizeof *ren);
    keep = malloc(cap);
    memset(keep, -1, cap);
    const double now = 1700000000;
    ms_batch *tmpl = ms_batch_new(n), *work = ms_batch_new(n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = i % nseries;
        double ts = now - (i % 10 == 7 ? 600 : 0);
        ms_batch_add(tmpl, ids[k], MS_KIND_GAUGE, (double)i, ts, NULL, 0, NULL, 0);
    }
    size_t bytes = (size_t)n * sizeof(ms_sample);
    double best_chain = 1e9, best_copy = 1e9;
    uint32_t kept = 0;
    for (int r = 0; r < rounds + 1; r++) { /* round 0 warms the caches */
        double t0 = now_s();
        memcpy(work->s, tmpl->s, bytes);
        work->n = n;
        double t1 = now_s();
        kept = chain(work, now);
        double t2 = now_s();
        if (r == 0) continue;
        if (t1 - t0 < best_copy) best_copy = t1 - t0;
        if (t2 - t1 < best_chain) best_chain = t2 - t1;
    }
    printf("%.3f %u\n", best_chain * 1e9 / n, kept);
    ms_batch_unref(tmpl);
    ms_batch_unref(work);
    free(ids);
    free(ren);
    free(keep);
    return 0;
}
