/*
 * exec_int.h - what the parts of the exec bridge share: exec_conf.c (the
 * `scripts:` schema into per-script settings), exec.c (discovery, schedule,
 * reload, stats) and exec_run.c (one child process: spawn, pipes, timeout,
 * reaping). Internal to the module; the public interface is include/ms_exec.h.
 */
#ifndef MS_EXEC_INT_H
#define MS_EXEC_INT_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <uv.h>

#include "ms_exec.h"

/* The keys of `scripts:` (as defaults) and of `scripts.NAME:`. */
typedef struct exec_settings {
    int enabled;
    double interval, timeout, jitter, grace, restart_delay, restart_max;
    uint64_t max_output, max_line;
    char *format, *mode, *user, *prefix;
    int allow_root;
    ms_strlist args;
    ms_tags env, tags;
} exec_settings;

/* One script's resolved settings; immutable once built, so a run in
 * progress keeps using the one it started with. */
typedef struct exec_conf {
    exec_settings set;
    int fmt;          /* ms_exec_format */
    int long_running; /* mode: long-running */
    int setid;        /* switch to uid/gid in the child */
    uid_t uid;
    gid_t gid;
    char **env;   /* NULL-terminated, owned */
    ms_tag *tags; /* from set.tags, pointing into it */
    size_t ntags;
} exec_conf;

typedef struct exec_run exec_run;

typedef struct exec_script {
    struct exec_script *next;
    char *name, *file, *dir, *stem;
    struct stat st;
    exec_conf *cf;      /* in force */
    exec_conf *pending; /* takes over when the current run ends (reload) */
    uv_timer_t timer;   /* next run, or the restart of a long-running one */
    int timer_init, closing, removed;
    exec_run *cur;  /* the run in progress, or NULL */
    double backoff; /* long-running: next restart delay, s */
    /* stats */
    uint64_t runs, errors, timeouts, skipped, bad_lines, truncated, samples, restarts;
    double last_run, last_duration, skip_logged;
    int last_status; /* exit status, 128+signal, -1 none */
    char last_error[256];
} exec_script;

extern uv_loop_t *ms_exec_loop;

/* ---- exec_conf.c ---- */

/* Check the `scripts:` section of cfg: unknown keys and the defaults, and
 * (with `sections`) every script's section. */
int ms_exec_conf_check(const ms_config *cfg, int sections, ms_error *err);
/* Settings of script `name` (its section may be NULL): the section's keys
 * over the defaults. *out is owned by the caller (ms_exec_conf_free).
 * MS_ENOENT when the script is disabled. */
int ms_exec_conf_build(const ms_config *cfg, const char *name, exec_conf **out, ms_error *err);
void ms_exec_conf_free(exec_conf *c);
int ms_exec_conf_equal(const exec_conf *a, const exec_conf *b);

/* ---- exec_run.c ---- */

/* Spawn one run of s (s->cur must be NULL). Returns MS_OK or an error
 * (logged and counted by the caller). */
int ms_exec_run_start(exec_script *s);
/* Terminate s's running group: SIGTERM now, SIGKILL after the grace. */
void ms_exec_run_terminate(exec_script *s, const char *why);
/* Stop: SIGTERM to s's group, close the run's handles; returns the pid to
 * wait for (0 when none). */
int ms_exec_run_abandon(exec_script *s);

/* exec.c: called by exec_run.c when s's run has ended and its handles are
 * closing (s->cur is NULL again). */
void ms_exec_run_ended(exec_script *s);

#endif
