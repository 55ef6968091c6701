/*
 * ms_pipeline.h - where every source's samples go: processors (Lua) then the
 * router, which hands each batch to every enabled forwarder.
 *
 * Sources call ms_pipeline_submit with a batch; the pipeline gathers what
 * arrives into one batch per agent tick (or sooner when it reaches
 * pipeline_batch samples) so forwarders encode big batches, not many small
 * ones. The pipeline also owns the JIT-enabled lua_State in which encoders
 * and processors run.
 */
#ifndef MS_PIPELINE_H
#define MS_PIPELINE_H

#include <lua.h>

#include "ms_config.h"
#include "ms_err.h"
#include "ms_sample.h"

struct uv_loop_s;

/* Create the pipeline state and the forwarders of `cfg`. */
int ms_pipeline_start(struct uv_loop_s *loop, const ms_config *cfg, ms_error *err);

/* --config-test: load every enabled forwarder's encoder and check its options
 * without starting anything. Returns MS_OK or the first error. */
int ms_pipeline_validate(const ms_config *cfg, ms_error *err);

/* Apply a new config: forwarders whose section did not change keep running
 * with their buffers; changed ones are replaced (the old one hands over its
 * queue), removed ones drain and stop. Scripts are re-read; one that fails to
 * load keeps its previous version. */
int ms_pipeline_reload(const ms_config *cfg, ms_error *err);

/* Take one reference of `b` (the caller's); the batch is forwarded on the
 * next flush. */
void ms_pipeline_submit(ms_batch *b);

/* Forward what is pending now. */
void ms_pipeline_flush(void);

/* Flush, then let every forwarder drain for at most `timeout` s, then close.
 * `done` is called once everything is closed. */
void ms_pipeline_stop(double timeout, void (*done)(void));

/* Free everything after the loop has ended. */
void ms_pipeline_free(void);

/* The JIT-enabled pipeline state. */
lua_State *ms_pipeline_lua(void);

#endif
