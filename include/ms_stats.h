/*
 * ms_stats.h - moonstat's own metrics (moonstat_*).
 *
 * Modules register a provider; every agent.stats_interval the stats module
 * makes one batch, lets each provider append its samples, and submits the
 * batch to the pipeline like any other source.
 */
#ifndef MS_STATS_H
#define MS_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "ms_sample.h"
#include "ms_series.h"

typedef void (*ms_stats_fn)(ms_batch *b, double now, void *ud);

/* Register/unregister a provider (the pair fn+ud identifies it). */
int ms_stats_register(ms_stats_fn fn, void *ud);
void ms_stats_unregister(ms_stats_fn fn, void *ud);

/* Helper for providers: intern name+tags (tags as k,v,k,v,...,NULL) and append
 * one sample (the base tags are added by interning). */
void ms_stats_add(ms_batch *b, const char *name, ms_kind kind, double value, double now,
                  const char *const *kv);

/* Build the batch of all providers now (NULL on allocation failure). */
ms_batch *ms_stats_collect(double now);

/* Start/stop the periodic emission on the main loop, and with it the
 * loop-stall measurement (moonstat_loop_max_stall_seconds). */
struct uv_loop_s;
int ms_stats_start(struct uv_loop_s *loop, double interval);
void ms_stats_stop(void);

#endif
