/*
 * stats.c - moonstat's own metrics (see ms_stats.h): a list of providers
 * polled every stats_interval into one batch for the pipeline, and the
 * event loop's longest stall per interval (moonstat_loop_max_stall_seconds).
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "ms_err.h"
#include "ms_pipeline.h"
#include "ms_stats.h"

#define MAX_PROVIDERS 32

typedef struct provider {
    ms_stats_fn fn;
    void *ud;
} provider;

static provider providers[MAX_PROVIDERS];
static int nproviders;
static uv_timer_t timer;
static int timer_on;

int ms_stats_register(ms_stats_fn fn, void *ud)
{
    for (int i = 0; i < nproviders; i++)
        if (providers[i].fn == fn && providers[i].ud == ud) return MS_OK;
    if (nproviders == MAX_PROVIDERS) return MS_EFULL;
    providers[nproviders++] = (provider){fn, ud};
    return MS_OK;
}

void ms_stats_unregister(ms_stats_fn fn, void *ud)
{
    for (int i = 0; i < nproviders; i++) {
        if (providers[i].fn == fn && providers[i].ud == ud) {
            memmove(&providers[i], &providers[i + 1],
                    (size_t)(nproviders - i - 1) * sizeof *providers);
            nproviders--;
            return;
        }
    }
}

void ms_stats_add(ms_batch *b, const char *name, ms_kind kind, double value, double now,
                  const char *const *kv)
{
    ms_tag tags[8] = {{0}}; /* zeroed: gcc cannot see n == 0 when kv is NULL */
    size_t n = 0;
    for (; kv && kv[2 * n] && n < 8; n++)
        tags[n] = (ms_tag){kv[2 * n], kv[2 * n + 1], (uint32_t)strlen(kv[2 * n]),
                           (uint32_t)strlen(kv[2 * n + 1])};
    uint32_t id = ms_series_intern(name, strlen(name), tags, n);
    if (id) ms_batch_add(b, id, kind, value, now, NULL, 0, NULL, 0);
}

ms_batch *ms_stats_collect(double now)
{
    ms_batch *b = ms_batch_new(64);
    if (!b) return NULL;
    for (int i = 0; i < nproviders; i++) providers[i].fn(b, now, providers[i].ud);
    return b;
}

/* ---- loop stall: moonstat_loop_max_stall_seconds ----
 * The longest time one turn of the loop spent running callbacks (timers,
 * I/O, idle, Lua slices) without going back to wait for I/O, i.e. the worst
 * delay an event that arrived meanwhile could see, over one stats interval.
 * A prepare handle runs right before each wait; the time between two of them
 * minus what libuv counted as idle in the wait (UV_METRICS_IDLE_TIME) is the
 * turn's busy time. Costs two clock reads per turn (and libuv's idle-time
 * accounting a non-blocking epoll_wait before each blocking one). */
static uv_prepare_t stall_prep;
static uint64_t stall_t, stall_idle, stall_max; /* ns */
static int stall_on;

static void stall_turn(uv_prepare_t *p)
{
    uint64_t t = uv_hrtime(), idle = uv_metrics_idle_time(p->loop);
    if (stall_t) {
        uint64_t span = t - stall_t, waited = idle - stall_idle;
        uint64_t busy = span > waited ? span - waited : 0;
        if (busy > stall_max) stall_max = busy;
    }
    stall_t = t;
    stall_idle = idle;
}

/* Stats provider: the maximum since the previous report, then reset. */
static void stall_stats(ms_batch *b, double now, void *ud)
{
    (void)ud;
    ms_stats_add(b, "moonstat_loop_max_stall_seconds", MS_KIND_GAUGE, (double)stall_max / 1e9, now,
                 NULL);
    stall_max = 0;
}

static void stall_start(uv_loop_t *loop)
{
    if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME) != 0) return;
    uv_prepare_init(loop, &stall_prep);
    uv_prepare_start(&stall_prep, stall_turn);
    uv_unref((uv_handle_t *)&stall_prep);
    stall_t = 0;
    stall_max = 0;
    stall_on = 1;
    ms_stats_register(stall_stats, NULL);
}

static void stall_stop(void)
{
    if (!stall_on) return;
    ms_stats_unregister(stall_stats, NULL);
    uv_close((uv_handle_t *)&stall_prep, NULL);
    stall_on = 0;
}

static void tick(uv_timer_t *t)
{
    (void)t;
    ms_batch *b = ms_stats_collect(ms_now());
    if (b) ms_pipeline_submit(b);
}

int ms_stats_start(uv_loop_t *loop, double interval)
{
    if (interval <= 0) return MS_OK;
    uv_timer_init(loop, &timer);
    uint64_t ms = (uint64_t)(interval * 1000);
    uv_timer_start(&timer, tick, ms, ms);
    timer_on = 1;
    stall_start(loop);
    return MS_OK;
}

void ms_stats_stop(void)
{
    if (timer_on) uv_close((uv_handle_t *)&timer, NULL);
    timer_on = 0;
    stall_stop();
}
