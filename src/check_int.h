/*
 * check_int.h - what check.c (discovery, schedule, reload, reporting) and
 * check_host.c (one check's Lua state, hook, runs) share. Internal to the
 * check module; the public interface is include/ms_check.h.
 */
#ifndef MS_CHECK_INT_H
#define MS_CHECK_INT_H

#include <stdint.h>
#include <sys/stat.h>

#include <lua.h>
#include <uv.h>

#include "ms_check.h"
#include "ms_lua.h"
#include "ms_sample.h"

typedef enum { ST_IDLE = 0, ST_RUNNING, ST_DONE } run_state;

typedef struct ms_check {
    struct ms_check *next;
    char *name, *file;
    struct stat st;         /* file identity when loaded */
    const ms_node *section; /* in the config it was loaded from */
    /* settings */
    double interval, timeout, jitter, slice;
    uint64_t memory;
    char *type; /* the check's `type`, a tag on its samples */
    /* Lua */
    ms_lua *lua;
    lua_State *co; /* the running coroutine, or NULL */
    int co_ref, run_ref, collect_ref;
    uint64_t deadline, slice_end; /* uv_hrtime ns */
    int killed;                   /* why: 0 no, 1 timeout, 2 memory */
    /* schedule */
    uv_timer_t timer; /* next run */
    uv_idle_t resume; /* continue a sliced run on the next loop turn */
    int closing, handles;
    run_state state;
    double run_ts;
    uint64_t run_start;
    /* output */
    ms_batch *capture; /* --test / run_check: samples go here, not to the pipeline */
    /* stats */
    uint64_t runs, errors, timeouts, ooms, skipped, samples;
    double last_run, last_duration;
    char last_error[MS_ERROR_MAX];
} ms_check;

extern uv_loop_t *ms_check_loop;      /* the loop checks run on */
extern const ms_config *ms_check_cfg; /* the config in force */
extern int ms_check_once_pending;     /* run-once mode: runs not yet finished */

/* Build c's Lua state from its file and apply its settings; on error c keeps
 * its previous state. cfg_from/cfg_idx: a Lua table to use as ms.config
 * (tests) instead of c->section. MS_ENOENT for a disabled check. */
int ms_check_load(ms_check *c, const ms_config *cfg, lua_State *cfg_from, int cfg_idx,
                  ms_error *err);

/* Start one run of c now, with run time ts. */
void ms_check_start_run(ms_check *c, double ts);

/* Initialise c's timer handles (c->handles = 2) and, when schedule is set,
 * arm the first run within the jitter window (now, with run_now). */
void ms_check_arm(ms_check *c, int schedule, int run_now);

#endif
