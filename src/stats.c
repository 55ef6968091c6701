/*
 * stats.c - moonstat's own metrics (see ms_stats.h): a list of providers
 * polled every stats_interval into one batch for the pipeline.
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
    ms_tag tags[8];
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
    return MS_OK;
}

void ms_stats_stop(void)
{
    if (timer_on) uv_close((uv_handle_t *)&timer, NULL);
    timer_on = 0;
}
