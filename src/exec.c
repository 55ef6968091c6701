/*
 * exec.c - the exec bridge's scheduler (see ms_exec.h): discovery of the
 * executables in paths.scripts, their timers (interval plus jitter, like
 * checks), overlap skipping, long-running restarts with backoff, reload,
 * stop, /health and moonstat_exec_* metrics. One run is in exec_run.c, the
 * settings in exec_conf.c, the line formats in exec_parse.c.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "exec_int.h"
#include "ms_log.h"
#include "ms_stats.h"

uv_loop_t *ms_exec_loop;
static const ms_config *cur_cfg;
static exec_script *scripts;
static uint64_t nonexec_files, refused_files, conf_errors;
static int stopping;

static void stats_provider(ms_batch *b, double now, void *ud);

static double rand01(void)
{
    return (double)rand() / ((double)RAND_MAX + 1.0);
}

static double interval_of(const exec_script *s)
{
    return s->cf->set.interval > 0 ? s->cf->set.interval : cur_cfg->agent.interval;
}

static double jitter_of(const exec_script *s)
{
    double iv = interval_of(s), j = s->cf->set.jitter >= 0 ? s->cf->set.jitter : iv / 10;
    return j > iv ? iv : j;
}

/* ---- lifecycle of a script entry ---- */

static void script_free(exec_script *s)
{
    ms_exec_conf_free(s->cf);
    ms_exec_conf_free(s->pending);
    free(s->name);
    free(s->file);
    free(s->dir);
    free(s->stem);
    free(s);
}

static void on_timer_close(uv_handle_t *h)
{
    exec_script *s = h->data;
    s->timer_init = 0;
    if (!s->cur) script_free(s);
}

/* Drop s from the schedule; it is freed once its run (if any) has ended. */
static void script_release(exec_script *s)
{
    s->removed = 1;
    if (s->closing) return;
    s->closing = 1;
    if (s->timer_init)
        uv_close((uv_handle_t *)&s->timer, on_timer_close);
    else if (!s->cur)
        script_free(s);
}

static void on_timer(uv_timer_t *t);

/* Arm s's timer `delay` seconds from now. */
static void arm(exec_script *s, double delay)
{
    if (s->closing) return;
    if (!s->timer_init) {
        uv_timer_init(ms_exec_loop, &s->timer);
        s->timer.data = s;
        s->timer_init = 1;
    }
    uv_timer_start(&s->timer, on_timer, (uint64_t)(delay * 1000), 0);
}

/* Periodic: start a run unless the last one still runs, then re-arm.
 * Long-running: (re)start the script. */
static void on_timer(uv_timer_t *t)
{
    exec_script *s = t->data;
    if (s->cf->long_running) {
        if (!s->cur && ms_exec_run_start(s) != MS_OK) { /* could not spawn: back off too */
            arm(s, s->backoff);
            s->backoff =
                s->backoff * 2 > s->cf->set.restart_max ? s->cf->set.restart_max : s->backoff * 2;
        }
        return;
    }
    double iv = interval_of(s), j = jitter_of(s);
    arm(s, iv + (j > 0 ? (rand01() - 0.5) * j : 0));
    if (s->cur) { /* logged the first time, then at most once a minute */
        double now = ms_now();
        if (s->skipped++ == 0 || now - s->skip_logged >= 60) {
            s->skip_logged = now;
            ms_log_warn("script %s: still running at its next interval, run skipped (%llu so far)",
                        s->name, (unsigned long long)s->skipped);
        }
        return;
    }
    ms_exec_run_start(s);
}

void ms_exec_run_ended(exec_script *s)
{
    if (s->pending) {
        ms_exec_conf_free(s->cf);
        s->cf = s->pending;
        s->pending = NULL;
    }
    if (s->removed) {
        if (!s->timer_init) script_free(s);
        return;
    }
    if (stopping) return;
    if (!s->cf->long_running) { /* periodic (perhaps long-running before a reload) */
        if (!s->timer_init || !uv_is_active((uv_handle_t *)&s->timer))
            arm(s, rand01() * jitter_of(s));
        return;
    }
    /* restart with backoff; a run that lasted longer than the longest delay
     * starts the backoff over */
    if (s->last_duration >= s->cf->set.restart_max) s->backoff = s->cf->set.restart_delay;
    s->restarts++;
    ms_log_info("script %s: restarting in %gs", s->name, s->backoff);
    arm(s, s->backoff);
    s->backoff = s->backoff * 2 > s->cf->set.restart_max ? s->cf->set.restart_max : s->backoff * 2;
}

/* ---- discovery ---- */

typedef struct found {
    char name[256];
    char file[4096];
    char dir[4096];
    struct stat st;
} found;

/* Executable regular files of the script directories (first directory wins).
 * Non-executable and world-writable files are logged and skipped. */
static found *scan(const ms_config *cfg, size_t *count)
{
    found *v = NULL;
    size_t n = 0, cap = 0;
    nonexec_files = refused_files = 0;
    for (size_t d = 0; d < cfg->paths.scripts.n; d++) {
        const char *dir = cfg->paths.scripts.v[d];
        DIR *dh = opendir(dir);
        if (!dh) {
            if (errno == ENOENT)
                ms_log_debug("scripts directory %s: does not exist", dir);
            else
                ms_log_warn("scripts directory %s: cannot open: %s", dir, strerror(errno));
            continue;
        }
        struct dirent *e;
        while ((e = readdir(dh))) {
            size_t len = strlen(e->d_name);
            if (e->d_name[0] == '.' || e->d_name[len - 1] == '~' || len >= sizeof v->name) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 32;
                found *nv = realloc(v, cap * sizeof *v);
                if (!nv) break;
                v = nv;
            }
            found *f = &v[n];
            snprintf(f->name, sizeof f->name, "%s", e->d_name);
            snprintf(f->file, sizeof f->file, "%s/%s", dir, e->d_name);
            snprintf(f->dir, sizeof f->dir, "%s", dir);
            if (stat(f->file, &f->st) != 0 || !S_ISREG(f->st.st_mode)) continue;
            if (!(f->st.st_mode & 0111)) {
                nonexec_files++;
                ms_log_warn("script %s: not executable, skipped", f->file);
                continue;
            }
            if (f->st.st_mode & S_IWOTH) {
                refused_files++;
                ms_log_error("script %s: writable by everyone, refused", f->file);
                continue;
            }
            int dup = 0;
            for (size_t i = 0; i < n; i++) dup |= !strcmp(v[i].name, f->name);
            if (dup) {
                ms_log_warn("script %s: %s ignored, an earlier directory has it", f->name, f->file);
                continue;
            }
            n++;
        }
        closedir(dh);
    }
    *count = n;
    return v;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static exec_script *script_new(const found *f, exec_conf *cf)
{
    exec_script *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->name = strdup(f->name);
    s->file = strdup(f->file);
    s->dir = strdup(f->dir);
    const char *dot = strrchr(f->name, '.'); /* the stem: the name without its extension */
    s->stem = dot && dot != f->name ? strndup(f->name, (size_t)(dot - f->name)) : strdup(f->name);
    s->st = f->st;
    s->cf = cf;
    s->last_status = -1;
    s->backoff = cf->set.restart_delay;
    if (!s->name || !s->file || !s->dir || !s->stem) {
        s->cf = NULL;
        script_free(s);
        return NULL;
    }
    return s;
}

/* Bring the list in line with cfg and the directories. */
static exec_script *sync_scripts(const ms_config *cfg, exec_script *keep)
{
    size_t n = 0;
    found *f = scan(cfg, &n);
    for (size_t i = 0; cfg->scripts && i < cfg->scripts->n; i++) { /* sections without a file */
        const ms_node *sec = cfg->scripts->items[i];
        if (sec->type != MS_NODE_MAP || !strcmp(sec->key, "env") || !strcmp(sec->key, "tags"))
            continue;
        int have = 0;
        for (size_t j = 0; j < n && !have; j++) have = !strcmp(f[j].name, sec->key);
        if (!have)
            ms_log_warn("%s:%d:%d: scripts.%s: no executable %s in the scripts directories",
                        cfg->path, sec->key_line, sec->key_col, sec->key, sec->key);
    }
    exec_script *list = NULL, **tail = &list;
    for (size_t i = 0; i < n; i++) {
        exec_conf *cf = NULL;
        ms_error err = {0};
        int rc = ms_exec_conf_build(cfg, f[i].name, &cf, &err);
        exec_script *s = NULL, **pp = &keep;
        for (; *pp; pp = &(*pp)->next) {
            if (!strcmp((*pp)->name, f[i].name) && !strcmp((*pp)->file, f[i].file)) {
                s = *pp;
                *pp = s->next;
                s->next = NULL;
                break;
            }
        }
        if (rc != MS_OK && rc != MS_ENOENT) {
            conf_errors++;
            ms_log_error("script %s: %s%s", f[i].name, err.msg,
                         s ? " (keeping its previous settings)" : " (not started)");
            if (s) { /* a broken section keeps the running version */
                *tail = s;
                tail = &s->next;
            }
            continue;
        }
        if (rc == MS_ENOENT) {
            if (s) { /* disabled now: stop it like a removed one */
                ms_log_info("script %s: stopped", s->name);
                if (s->cur && s->cf->long_running) ms_exec_run_terminate(s, "disabled");
                script_release(s);
            }
            continue;
        }
        if (s) {
            const exec_conf *latest = s->pending ? s->pending : s->cf;
            int changed = !ms_exec_conf_equal(latest, cf) || !same_file(&s->st, &f[i].st);
            s->st = f[i].st;
            if (!changed) {
                ms_exec_conf_free(cf);
            } else {
                int was_long = s->cf->long_running;
                ms_log_info("script %s: changed", s->name);
                if (s->cur) {
                    ms_exec_conf_free(s->pending);
                    s->pending = cf;
                    if (was_long) ms_exec_run_terminate(s, "changed");
                } else {
                    ms_exec_conf_free(s->cf);
                    s->cf = cf;
                    s->backoff = cf->set.restart_delay;
                    if (cf->long_running)
                        arm(s, 0);
                    else if (was_long)
                        arm(s, rand01() * jitter_of(s));
                }
            }
        } else {
            if (!(s = script_new(&f[i], cf))) {
                ms_exec_conf_free(cf);
                continue;
            }
            arm(s, s->cf->long_running ? 0 : rand01() * jitter_of(s));
            ms_log_debug("script %s: %s, %s", s->name, s->file,
                         s->cf->long_running ? "long-running" : "periodic");
        }
        *tail = s;
        tail = &s->next;
    }
    free(f);
    while (keep) { /* what is left was removed */
        exec_script *s = keep;
        keep = s->next;
        ms_log_info("script %s: removed", s->name);
        if (s->cur && s->cf->long_running) ms_exec_run_terminate(s, "removed");
        script_release(s);
    }
    return list;
}

int ms_exec_start(uv_loop_t *loop, const ms_config *cfg, ms_error *err)
{
    ms_exec_loop = loop;
    cur_cfg = cfg;
    stopping = 0;
    ms_stats_register(stats_provider, NULL);
    int rc = ms_exec_conf_check(cfg, 0, err);
    if (rc != MS_OK) {
        conf_errors++;
        ms_log_error("%s (no scripts run)", err->msg);
        return rc;
    }
    scripts = sync_scripts(cfg, NULL);
    if (ms_exec_count()) ms_log_info("%d scripts scheduled", ms_exec_count());
    return MS_OK;
}

int ms_exec_reload(const ms_config *cfg)
{
    ms_error err = {0};
    if (ms_exec_conf_check(cfg, 0, &err) != MS_OK) {
        conf_errors++;
        ms_log_error("reload: %s (keeping the scripts as they were)", err.msg);
        return err.code;
    }
    cur_cfg = cfg;
    scripts = sync_scripts(cfg, scripts);
    return MS_OK;
}

int ms_exec_validate(const ms_config *cfg, ms_error *err)
{
    return ms_exec_conf_check(cfg, 1, err);
}

/* Wait (blocking, bounded by the longest grace) for the abandoned groups to
 * go, then SIGKILL what is left. */
static void wait_groups(int *pids, size_t n, double grace)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)(grace * 1e9);
    size_t left = n;
    while (left && uv_hrtime() < deadline) {
        left = 0;
        for (size_t i = 0; i < n; i++) {
            if (!pids[i]) continue;
            if (pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) == pids[i]) pids[i] = -pids[i];
            if (pids[i] < 0 && kill(pids[i], 0) != 0) pids[i] = 0; /* the group is gone */
            if (pids[i]) left++;
        }
        if (left) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!pids[i]) continue;
        int pid = pids[i] > 0 ? pids[i] : -pids[i];
        kill(-pid, SIGKILL);
        if (pids[i] > 0) waitpid(pid, NULL, 0);
    }
}

void ms_exec_stop(void)
{
    stopping = 1;
    ms_stats_unregister(stats_provider, NULL);
    size_t n = 0;
    for (exec_script *s = scripts; s; s = s->next) n++;
    int *pids = calloc(n ? n : 1, sizeof *pids);
    size_t np = 0;
    double grace = 0;
    while (scripts) {
        exec_script *s = scripts;
        scripts = s->next;
        if (s->cur && pids) {
            if (s->cf->set.grace > grace) grace = s->cf->set.grace;
            pids[np++] = ms_exec_run_abandon(s);
        } else {
            ms_exec_run_abandon(s);
        }
        script_release(s);
    }
    if (pids && np) wait_groups(pids, np, grace);
    free(pids);
}

int ms_exec_count(void)
{
    int n = 0;
    for (exec_script *s = scripts; s; s = s->next) n++;
    return n;
}

/* ---- health and stats ---- */

void ms_exec_health_json(ms_buf *out)
{
    ms_buf_puts(out, "{");
    for (exec_script *s = scripts; s; s = s->next) {
        ms_buf_puts(out, "\"");
        ms_buf_json_str(out, s->name, strlen(s->name));
        const char *status = s->cur             ? "running"
                             : s->runs == 0     ? "pending"
                             : s->last_error[0] ? "error"
                                                : "ok";
        ms_buf_puts(out, "\":{\"file\":\"");
        ms_buf_json_str(out, s->file, strlen(s->file));
        ms_buf_printf(out,
                      "\",\"mode\":\"%s\",\"interval\":%g,\"last_run\":%.3f,\"duration\":%.6f,"
                      "\"status\":\"%s\",\"exit_status\":%d,\"runs\":%llu,\"errors\":%llu,"
                      "\"timeouts\":%llu,\"skipped\":%llu,\"bad_lines\":%llu,\"error\":",
                      s->cf->set.mode, interval_of(s), s->last_run, s->last_duration, status,
                      s->last_status, (unsigned long long)s->runs, (unsigned long long)s->errors,
                      (unsigned long long)s->timeouts, (unsigned long long)s->skipped,
                      (unsigned long long)s->bad_lines);
        if (s->last_error[0]) {
            ms_buf_puts(out, "\"");
            ms_buf_json_str(out, s->last_error, strlen(s->last_error));
            ms_buf_puts(out, "\"");
        } else {
            ms_buf_puts(out, "null");
        }
        ms_buf_puts(out, s->next ? "}," : "}");
    }
    ms_buf_puts(out, "}");
}

static void stats_provider(ms_batch *b, double now, void *ud)
{
    (void)ud;
    for (exec_script *s = scripts; s; s = s->next) {
        const char *kv[] = {"script", s->name, NULL};
        static const char *const names[] = {
            "moonstat_exec_runs_total",      "moonstat_exec_errors_total",
            "moonstat_exec_timeouts_total",  "moonstat_exec_skipped_total",
            "moonstat_exec_bad_lines_total", "moonstat_exec_output_truncated_total",
            "moonstat_exec_samples_total",   "moonstat_exec_restarts_total"};
        const uint64_t v[] = {s->runs,      s->errors,    s->timeouts, s->skipped,
                              s->bad_lines, s->truncated, s->samples,  s->restarts};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            ms_stats_add(b, names[i], MS_KIND_COUNTER, (double)v[i], now, kv);
        ms_stats_add(b, "moonstat_exec_duration_seconds", MS_KIND_GAUGE, s->last_duration, now, kv);
    }
    ms_stats_add(b, "moonstat_exec_scripts", MS_KIND_GAUGE, ms_exec_count(), now, NULL);
    ms_stats_add(b, "moonstat_exec_skipped_files", MS_KIND_GAUGE,
                 (double)(nonexec_files + refused_files), now, NULL);
    ms_stats_add(b, "moonstat_exec_config_errors_total", MS_KIND_COUNTER, (double)conf_errors, now,
                 NULL);
}
