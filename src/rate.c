/*
 * rate.c - per-second rates from counter readings (see ms_rate.h).
 *
 * The state table maps series id -> (previous value, previous time); it is an
 * open-addressing hash that only grows, bounded by ms_rate_set_limit.
 */
#include <math.h>
#include <stdlib.h>

#include "ms_err.h"
#include "ms_rate.h"

typedef struct entry {
    uint32_t series; /* 0: empty */
    double value, ts;
} entry;

static entry *tab;
static uint32_t cap, used, limit = 100000;
static uint64_t dropped;

#define TWO32 4294967296.0
#define TWO64 18446744073709551616.0

/* A decrease from prev to cur is a wrap of a `range`-wide counter when prev
 * was in the range's top eighth and cur is in its bottom eighth. */
static int is_wrap(double prev, double cur, double range)
{
    return prev < range && prev >= range * 7 / 8 && cur < range / 8;
}

int ms_rate_compute(double prev, double prev_ts, double cur, double ts, double *out)
{
    if (!isfinite(prev) || !isfinite(cur) || !(ts > prev_ts)) return 0;
    double delta;
    if (cur >= prev)
        delta = cur - prev;
    else if (is_wrap(prev, cur, TWO32))
        delta = TWO32 - prev + cur;
    else if (is_wrap(prev, cur, TWO64))
        delta = TWO64 - prev + cur;
    else
        return 0; /* reset */
    *out = delta / (ts - prev_ts);
    return 1;
}

static entry *find(uint32_t series)
{
    if (!cap) return NULL;
    for (uint32_t i = (series * 2654435761u) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (tab[i].series == series || tab[i].series == 0) return &tab[i];
    }
}

static int grow(void)
{
    uint32_t ncap = cap ? cap * 2 : 256;
    entry *nt = calloc(ncap, sizeof *nt);
    if (!nt) return MS_ENOMEM;
    entry *old = tab;
    uint32_t ocap = cap;
    tab = nt;
    cap = ncap;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i].series) *find(old[i].series) = old[i];
    free(old);
    return MS_OK;
}

int ms_rate_update(uint32_t series, double value, double ts, double *out)
{
    if (series == 0) return 0;
    entry *e = find(series);
    if (!e || e->series == 0) {
        if (used >= limit) {
            dropped++;
            return 0;
        }
        if ((used + 1) * 2 > cap) {
            if (grow() != MS_OK) {
                dropped++;
                return 0;
            }
        }
        e = find(series);
        e->series = series;
        e->value = value;
        e->ts = ts;
        used++;
        return 0;
    }
    int have = ms_rate_compute(e->value, e->ts, value, ts, out);
    if (ts > e->ts || !isfinite(e->value)) {
        e->value = value;
        e->ts = ts;
    }
    return have;
}

void ms_rate_set_limit(uint32_t max_entries)
{
    limit = max_entries;
}

uint64_t ms_rate_dropped(void)
{
    return dropped;
}

void ms_rate_reset(void)
{
    free(tab);
    tab = NULL;
    cap = used = 0;
    dropped = 0;
}
