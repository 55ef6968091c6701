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

struct ms_check;

/* An I/O object a check opened (a socket in check_net.c, an HTTP request in
 * check_http.c). It is in its check's `io` list while open; `close` stops
 * its I/O, unlinks it and frees it once libuv/libcurl let go. `box` is the
 * Lua userdata slot pointing at it (cleared on close); the userdata's __gc
 * closes it, so freeing the Lua state closes everything. */
typedef struct ms_check_io {
    struct ms_check_io *prev, *next;
    struct ms_check *c;
    void **box;
    void (*close)(struct ms_check_io *io);
} ms_check_io;

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
    int io_wait;                  /* yielded for I/O: an I/O callback resumes it */
    ms_check_io *io;              /* open sockets and requests (closed when a run ends) */
    /* schedule */
    uv_timer_t timer; /* next run */
    int closing, handles;
    /* the ready queue (check_host.c): work waiting for a loop turn's budget */
    struct ms_check *rq_prev, *rq_next;
    int queued;     /* RQ_NONE, or what is waiting: RQ_START, RQ_CONTINUE, RQ_IO */
    int rq_nargs;   /* RQ_IO: values pushed on co for the resume */
    double rq_ts;   /* RQ_START: the run's time */
    uint64_t rq_at; /* uv_hrtime when queued */
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

/* What c waits for in the ready queue (RQ_NONE: nothing). */
enum { RQ_NONE = 0, RQ_START, RQ_CONTINUE, RQ_IO };

/* Take c out of the ready queue (a check stopped, a run abandoned). */
void ms_check_unqueue(ms_check *c);

/* Charge ns of work an I/O callback did for checks (curl driving transfers,
 * results pushed) to this loop turn: the ready queue runs that much less. */
void ms_check_turn_charge(uint64_t ns);

/* Longest time a check waited in the ready queue since the last call, in
 * seconds, and reset (moonstat_check_ready_max_wait_seconds). */
double ms_check_ready_max_wait(void);

/* Initialise c's timer handle (c->handles = 1) and, when schedule is set,
 * arm the first run within the jitter window (now, with run_now). */
void ms_check_arm(ms_check *c, int schedule, int run_now);

/* ---- the non-blocking I/O API (check_net.c, check_http.c) ---- */

/* The check whose run coroutine is L, or NULL with *why set when L may not
 * yield for I/O here (load time, a nested coroutine, under a C function). */
ms_check *ms_check_io_owner(lua_State *L, const char **why);

/* Yield the run for I/O: `return ms_check_io_yield(L);` in a C function.
 * The I/O callback pushes the results on c->co and calls ms_check_io_resume. */
int ms_check_io_yield(lua_State *L);

/* Resume c's run with the nargs values pushed on c->co; a run past its
 * deadline is killed instead; a run no longer running is left alone. */
void ms_check_io_resume(struct ms_check *c, int nargs);

/* Seconds left before c's run deadline (at least 1 ms). */
double ms_check_io_budget(const struct ms_check *c);

/* Link io into / out of its check's list; close every open one of c. */
void ms_check_io_add(struct ms_check *c, ms_check_io *io);
void ms_check_io_del(ms_check_io *io);
void ms_check_io_close_all(struct ms_check *c);

/* Counters of moonstat_check_io_* (check_net.c registers their provider). */
enum { IO_HTTP_OK, IO_HTTP_ERR, IO_CONN_OK, IO_CONN_ERR, IO_TIMEOUT, IO_NCOUNT };
void ms_check_io_count(int what);

/* The first key of the options table at index t that is not in the
 * NULL-terminated list `known`, or NULL when all are known ("(not a
 * string)" for a key of another type). The string stays referenced by the
 * table. Used by ms.http and ms.exec to refuse misspelt options. */
const char *ms_check_unknown_option(lua_State *L, int t, const char *const *known);

/* Add ms.tcp, ms.unix, ms.udp, ms.monotime and ms.json (check_net.c) and
 * ms.http (check_http.c) to the table at the top of L's stack. */
void ms_check_net_open(lua_State *L);
void ms_check_http_open(lua_State *L);

/* Add ms.exec (check_exec.c): a command without a shell, in its own
 * process group, killed with it at its timeout or when the run ends. */
void ms_check_exec_open(lua_State *L);

/* Add ms.statvfs (check_fs.c) to the table at the top of L's stack. */
void ms_check_fs_open(lua_State *L);

#endif
