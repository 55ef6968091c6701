/*
 * check.c - scheduled Lua checks (see ms_check.h): discovery in the check
 * directories, the list of loaded checks, reload, run-once mode, /health,
 * moonstat_check_* metrics, and the test API for `moonstat --script`.
 * One check's Lua state and runs are in check_host.c.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <uv.h>

#include "check_int.h"
#include "ms_log.h"
#include "ms_series.h"
#include "ms_stats.h"

static ms_check *checks;
static uint64_t load_errors;

static void stats_provider(ms_batch *b, double now, void *ud);

/* ---- lifecycle ---- */

static ms_check *check_new(const char *name, const char *file)
{
    ms_check *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->name = strdup(name);
    c->file = strdup(file);
    c->co_ref = c->run_ref = c->collect_ref = LUA_NOREF;
    if (!c->name || !c->file) {
        free(c->name);
        free(c->file);
        free(c);
        return NULL;
    }
    return c;
}

static void check_free(ms_check *c)
{
    ms_lua_free(c->lua);
    ms_batch_unref(c->capture);
    free(c->type);
    free(c->name);
    free(c->file);
    free(c);
}

static void on_close(uv_handle_t *h)
{
    ms_check *c = h->data;
    if (--c->handles == 0) check_free(c);
}

/* Stop timers and free the check once its handles are closed. */
static void check_stop(ms_check *c)
{
    if (c->closing) return;
    c->closing = 1;
    if (c->state == ST_RUNNING && ms_check_once_pending > 0) ms_check_once_pending--;
    ms_check_unqueue(c); /* nothing it waited for runs now */
    if (c->handles == 0) {
        check_free(c);
        return;
    }
    uv_close((uv_handle_t *)&c->timer, on_close);
}

/* One check file found in the directories. */
typedef struct found {
    char name[256];
    char file[4096];
    struct stat st;
} found;

/* List the *.lua files of the check directories (first directory wins). */
static found *scan(const ms_config *cfg, size_t *count)
{
    found *v = NULL;
    size_t n = 0, cap = 0;
    for (size_t d = 0; d < cfg->paths.checks.n; d++) {
        const char *dir = cfg->paths.checks.v[d];
        DIR *dh = opendir(dir);
        if (!dh) {
            ms_log_warn("checks directory %s: cannot open", dir);
            continue;
        }
        struct dirent *e;
        while ((e = readdir(dh))) {
            size_t len = strlen(e->d_name);
            if (len < 5 || len - 4 >= sizeof v->name || strcmp(e->d_name + len - 4, ".lua") != 0)
                continue;
            if (e->d_name[0] == '.' || e->d_name[0] == '_') continue;
            char name[256];
            memcpy(name, e->d_name, len - 4);
            name[len - 4] = 0;
            int dup = 0;
            for (size_t i = 0; i < n; i++) dup |= !strcmp(v[i].name, name);
            if (dup) {
                ms_log_warn("check %s: %s/%s ignored, an earlier directory has it", name, dir,
                            e->d_name);
                continue;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                found *nv = realloc(v, cap * sizeof *v);
                if (!nv) break;
                v = nv;
            }
            snprintf(v[n].name, sizeof v[n].name, "%s", name);
            snprintf(v[n].file, sizeof v[n].file, "%s/%s", dir, e->d_name);
            if (stat(v[n].file, &v[n].st) != 0 || !S_ISREG(v[n].st.st_mode)) continue;
            n++;
        }
        closedir(dh);
    }
    *count = n;
    return v;
}

/* Warn about sections of config.yaml that name no check file. */
static void warn_orphans(const ms_config *cfg, const found *f, size_t n)
{
    for (size_t i = 0; cfg->checks && i < cfg->checks->n; i++) {
        const ms_node *s = cfg->checks->items[i];
        int have = 0;
        for (size_t j = 0; j < n && !have; j++) have = !strcmp(f[j].name, s->key);
        if (!have)
            ms_log_warn("%s:%d:%d: checks.%s: no file %s.lua in the checks directories", cfg->path,
                        s->key_line, s->key_col, s->key, s->key);
    }
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Load the checks of cfg; `keep`: the list so far (reload) - unchanged ones
 * are kept, changed ones reloaded in place. Returns the new list. */
static ms_check *sync_checks(const ms_config *cfg, ms_check *keep, int arm, int run_now)
{
    size_t n = 0;
    found *f = scan(cfg, &n);
    warn_orphans(cfg, f, n);
    ms_check *list = NULL, **tail = &list;
    for (size_t i = 0; i < n; i++) {
        const ms_node *section = ms_node_get(cfg->checks, f[i].name);
        ms_check *c = NULL, **pp = &keep;
        for (; *pp; pp = &(*pp)->next) {
            if (!strcmp((*pp)->name, f[i].name) && !strcmp((*pp)->file, f[i].file)) {
                c = *pp;
                *pp = c->next; /* take it out of the old list */
                c->next = NULL;
                break;
            }
        }
        ms_error err = {0};
        if (c) {
            int changed = !same_file(&c->st, &f[i].st) || !ms_node_equal(c->section, section);
            c->section = section;
            if (changed) {
                c->st = f[i].st;
                int rc = ms_check_load(c, cfg, NULL, 0, &err);
                if (rc == MS_ENOENT) { /* disabled now */
                    check_stop(c);
                    continue;
                }
                if (rc != MS_OK) {
                    load_errors++;
                    ms_log_error("check %s: %s (keeping the previous version)", c->name, err.msg);
                } else {
                    ms_log_info("check %s: reloaded", c->name);
                }
            }
        } else {
            c = check_new(f[i].name, f[i].file);
            if (!c) continue;
            c->section = section;
            c->st = f[i].st;
            int rc = ms_check_load(c, cfg, NULL, 0, &err);
            if (rc != MS_OK) {
                if (rc != MS_ENOENT) {
                    load_errors++;
                    ms_log_error("check %s: %s", c->name, err.msg);
                }
                check_free(c);
                continue;
            }
            if (arm) ms_check_arm(c, 1, run_now);
            ms_log_debug("check %s: loaded from %s, every %gs", c->name, c->file, c->interval);
        }
        *tail = c;
        tail = &c->next;
    }
    free(f);
    while (keep) { /* what is left was removed */
        ms_check *c = keep;
        keep = c->next;
        ms_log_info("check %s: removed", c->name);
        check_stop(c);
    }
    return list;
}

int ms_checks_start(uv_loop_t *l, const ms_config *cfg, ms_error *err)
{
    ms_check_loop = l;
    ms_check_cfg = cfg;
    srand((unsigned)uv_hrtime());
    checks = sync_checks(cfg, NULL, 1, 0);
    ms_stats_register(stats_provider, NULL);
    ms_log_info("%d checks loaded", ms_checks_count());
    return MS_OK;
}

int ms_checks_validate(uv_loop_t *l, const ms_config *cfg)
{
    ms_check_loop = l;
    ms_check_cfg = cfg;
    uint64_t before = load_errors;
    ms_check *list = sync_checks(cfg, NULL, 0, 0);
    while (list) {
        ms_check *c = list;
        list = c->next;
        check_stop(c);
    }
    return (int)(load_errors - before);
}

int ms_checks_reload(const ms_config *cfg)
{
    ms_check_cfg = cfg;
    checks = sync_checks(cfg, checks, 1, 0);
    return MS_OK;
}

void ms_checks_stop(void)
{
    ms_stats_unregister(stats_provider, NULL);
    while (checks) {
        ms_check *c = checks;
        checks = c->next;
        check_stop(c);
    }
}

int ms_checks_count(void)
{
    int n = 0;
    for (ms_check *c = checks; c; c = c->next) n++;
    return n;
}

/* Print one captured sample: name{tags} value kind [level message]. */
static void print_sample(FILE *out, const ms_batch *b, const ms_sample *s)
{
    const ms_series *ser = ms_series_get(s->series);
    char num[32];
    for (int prec = 15; prec <= 17; prec++) { /* the shortest text that reads back exactly */
        snprintf(num, sizeof num, "%.*g", prec, s->value);
        if (strtod(num, NULL) == s->value) break;
    }
    fprintf(out, "%s %s %s", ser ? ser->key : "?", num, ms_kind_name(s->kind));
    if (s->level) fprintf(out, " %s", ms_batch_text(b, s->level));
    if (s->msg) fprintf(out, " %s", ms_batch_text(b, s->msg));
    fputc('\n', out);
}

int ms_checks_run_once(uv_loop_t *l, const ms_config *cfg, const char *only, FILE *out,
                       ms_error *err)
{
    ms_check_loop = l;
    ms_check_cfg = cfg;
    ms_check *list = sync_checks(cfg, NULL, 0, 0);
    int found_only = 0, rc = MS_OK;
    for (ms_check *c = list; c; c = c->next) {
        if (only && strcmp(c->name, only) != 0) continue;
        found_only = 1;
        c->capture = ms_batch_new(64);
        ms_check_arm(c, 0, 0);
        ms_check_once_pending++;
        ms_check_start_run(c, ms_now());
    }
    while (ms_check_once_pending > 0) uv_run(ms_check_loop, UV_RUN_ONCE);
    for (ms_check *c = list; c; c = c->next) {
        if (!c->capture) continue;
        for (uint32_t i = 0; i < c->capture->n; i++)
            print_sample(out, c->capture, &c->capture->s[i]);
        if (c->errors && rc == MS_OK)
            rc = ms_error_set(err, MS_ELUA, "check %s: %s", c->name, c->last_error);
    }
    if (only && !found_only && rc == MS_OK)
        rc = ms_error_set(err, MS_ENOENT, "no enabled check named '%s' in the checks directories",
                          only);
    while (list) {
        ms_check *c = list;
        list = c->next;
        check_stop(c);
    }
    uv_run(ms_check_loop, UV_RUN_NOWAIT);
    return rc;
}

/* ---- health and stats ---- */

void ms_checks_health_json(ms_buf *out)
{
    ms_buf_puts(out, "{\"checks\":{");
    for (ms_check *c = checks; c; c = c->next) {
        ms_buf_puts(out, "\"");
        ms_buf_json_str(out, c->name, strlen(c->name));
        const char *status = c->runs == 0 ? "pending" : c->last_error[0] ? "error" : "ok";
        ms_buf_puts(out, "\":{\"file\":\"");
        ms_buf_json_str(out, c->file, strlen(c->file));
        ms_buf_printf(out,
                      "\",\"interval\":%g,\"last_run\":%.3f,\"duration\":%.6f,"
                      "\"status\":\"%s\",\"runs\":%llu,\"errors\":%llu,\"timeouts\":%llu,"
                      "\"skipped\":%llu,\"memory\":%zu,\"error\":",
                      c->interval, c->last_run, c->last_duration, status,
                      (unsigned long long)c->runs, (unsigned long long)c->errors,
                      (unsigned long long)c->timeouts, (unsigned long long)c->skipped,
                      c->lua ? ms_lua_mem(c->lua) : 0);
        if (c->last_error[0]) {
            ms_buf_puts(out, "\"");
            ms_buf_json_str(out, c->last_error, strlen(c->last_error));
            ms_buf_puts(out, "\"");
        } else {
            ms_buf_puts(out, "null");
        }
        ms_buf_puts(out, c->next ? "}," : "}");
    }
    ms_buf_printf(out, "},\"load_errors\":%llu}", (unsigned long long)load_errors);
}

static void stats_provider(ms_batch *b, double now, void *ud)
{
    (void)ud;
    size_t mem = 0;
    for (ms_check *c = checks; c; c = c->next) {
        const char *kv[] = {"check", c->name, NULL};
        ms_stats_add(b, "moonstat_check_runs_total", MS_KIND_COUNTER, (double)c->runs, now, kv);
        ms_stats_add(b, "moonstat_check_errors_total", MS_KIND_COUNTER, (double)c->errors, now, kv);
        ms_stats_add(b, "moonstat_check_timeouts_total", MS_KIND_COUNTER, (double)c->timeouts, now,
                     kv);
        ms_stats_add(b, "moonstat_check_skipped_total", MS_KIND_COUNTER, (double)c->skipped, now,
                     kv);
        ms_stats_add(b, "moonstat_check_samples_total", MS_KIND_COUNTER, (double)c->samples, now,
                     kv);
        ms_stats_add(b, "moonstat_check_duration_seconds", MS_KIND_GAUGE, c->last_duration, now,
                     kv);
        mem += c->lua ? ms_lua_mem(c->lua) : 0;
    }
    ms_stats_add(b, "moonstat_checks", MS_KIND_GAUGE, ms_checks_count(), now, NULL);
    ms_stats_add(b, "moonstat_check_ready_max_wait_seconds", MS_KIND_GAUGE,
                 ms_check_ready_max_wait(), now, NULL);
    ms_stats_add(b, "moonstat_check_load_errors_total", MS_KIND_COUNTER, (double)load_errors, now,
                 NULL);
    ms_stats_add(b, "moonstat_lua_check_memory_bytes", MS_KIND_GAUGE, (double)mem, now, NULL);
}

/* ---- moonstat --script: __moonstat_test (see lua/moonstat/testing.lua) ---- */

#define TEST_CHECK_MT "moonstat.test_check"

static ms_check **test_check_arg(lua_State *L)
{
    ms_check **ud = luaL_checkudata(L, 1, TEST_CHECK_MT);
    if (!*ud) luaL_error(L, "check is closed");
    return ud;
}

/* load_check(file, config) -> handle | nil, err: a check loaded as the
 * scheduler would (own state, JIT off, limits), kept until the handle is
 * collected, so state a check keeps between runs survives. */
static int l_load_check(lua_State *L)
{
    const char *file = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(strcspn(base, ".")), base);
    ms_check *c = check_new(name, file);
    if (!c) return luaL_error(L, "out of memory");
    ms_error err = {0};
    if (ms_check_load(c, ms_check_cfg, L, 2, &err) != MS_OK) {
        check_free(c);
        lua_pushnil(L);
        lua_pushstring(L, err.msg);
        return 2;
    }
    ms_check_arm(c, 0, 0);
    ms_check **ud = lua_newuserdata(L, sizeof *ud);
    *ud = c;
    luaL_getmetatable(L, TEST_CHECK_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* run(handle, ts) -> samples | nil, err: one run to completion at time ts;
 * samples are tables { name, key, tags, value, ts, kind, msg, level }. */
static int l_run(lua_State *L)
{
    ms_check *c = *test_check_arg(L);
    double ts = luaL_optnumber(L, 2, ms_now());
    ms_batch_unref(c->capture);
    c->capture = ms_batch_new(64);
    uint64_t errors = c->errors;
    ms_check_once_pending = 1;
    ms_check_start_run(c, ts);
    while (ms_check_once_pending > 0) uv_run(ms_check_loop, UV_RUN_ONCE);
    if (c->errors != errors) {
        lua_pushnil(L);
        lua_pushstring(L, c->last_error);
        return 2;
    }
    ms_batch *b = c->capture;
    lua_createtable(L, (int)b->n, 0);
    for (uint32_t i = 0; i < b->n; i++) {
        const ms_sample *s = &b->s[i];
        const ms_series *ser = ms_series_get(s->series);
        lua_createtable(L, 0, 8);
        lua_pushstring(L, ser->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, ser->key);
        lua_setfield(L, -2, "key");
        lua_createtable(L, 0, (int)ser->ntags);
        for (uint32_t t = 0; t < ser->ntags; t++) {
            lua_pushlstring(L, ser->tags[t].v, ser->tags[t].vlen);
            lua_setfield(L, -2, ser->tags[t].k);
        }
        lua_setfield(L, -2, "tags");
        lua_pushnumber(L, s->value);
        lua_setfield(L, -2, "value");
        lua_pushnumber(L, s->ts);
        lua_setfield(L, -2, "ts");
        lua_pushstring(L, ms_kind_name(s->kind));
        lua_setfield(L, -2, "kind");
        if (s->msg) {
            lua_pushstring(L, ms_batch_text(b, s->msg));
            lua_setfield(L, -2, "msg");
        }
        if (s->level) {
            lua_pushstring(L, ms_batch_text(b, s->level));
            lua_setfield(L, -2, "level");
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static int l_close_check(lua_State *L)
{
    ms_check **ud = luaL_checkudata(L, 1, TEST_CHECK_MT);
    if (*ud) {
        check_stop(*ud);
        *ud = NULL;
        uv_run(ms_check_loop, UV_RUN_NOWAIT);
    }
    return 0;
}

void ms_checks_lua_open(lua_State *L, uv_loop_t *l, const ms_config *cfg)
{
    ms_check_loop = l;
    ms_check_cfg = cfg;
    luaL_newmetatable(L, TEST_CHECK_MT);
    lua_pushcfunction(L, l_close_check);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_load_check);
    lua_setfield(L, -2, "load_check");
    lua_pushcfunction(L, l_run);
    lua_setfield(L, -2, "run");
    lua_pushcfunction(L, l_close_check);
    lua_setfield(L, -2, "close");
    lua_setglobal(L, "__moonstat_test");
}
