/*
 * check_host.c - one check's Lua side: its isolated state, the instruction
 * hook that enforces time slices, timeouts and memory limits, the runs, and
 * the samples they submit through the FFI.
 *
 * Each check owns a lua_State with the JIT off (so the hook always runs) and
 * a capped heap, and runs as a coroutine. The hook, called every HOOK_COUNT
 * VM instructions:
 *   - past the time slice, yields the coroutine so the loop can serve I/O;
 *     the run continues from the back of the ready queue (below);
 *   - past the timeout, or after the allocator refused memory, marks the run
 *     killed and raises an error on every instruction so not even a pcall
 *     ms_check_loop survives; a yielded run that is killed is never resumed.
 * A killed or failed run is logged with the script's file:line and counted;
 * after a kill the state is rebuilt from the file.
 *
 * A run also yields for I/O (check_net.c, check_http.c): the API function
 * sets io_wait and yields; the I/O callback pushes the results and resumes
 * it through ms_check_io_resume. Each I/O timeout is cut to the run's
 * deadline, so a waiting run is still killed on time; whatever a run opened
 * is closed when it ends (finish_run) or is abandoned.
 *
 * Nothing runs Lua straight from a libuv callback: a due timer (a run to
 * start), an I/O completion (a run to resume) and a sliced run (to continue)
 * put the check on one FIFO ready queue, and an idle handle drains it for at
 * most agent.check_turn_budget per loop turn, leaving the rest for the next
 * turn, after the loop has polled for I/O. So 200 checks due in one tick, or
 * 200 answers arriving together, cost the loop a few short turns rather than
 * one long one. While the queue is not empty the idle handle keeps the loop's
 * poll from blocking.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "check_int.h"
#include "ms_ffi.h"
#include "ms_log.h"
#include "ms_pipeline.h"
#include "ms_rate.h"
#include "ms_series.h"

#define HOOK_COUNT   1000
#define LOAD_TIMEOUT 1.0 /* s a check file may run at load time */
#define MAX_TAGS     64
#define TICK_MS      10 /* scheduling granularity: runs due in one tick share a wake-up */

uv_loop_t *ms_check_loop;
const ms_config *ms_check_cfg;
int ms_check_once_pending;
static ms_check *current; /* the check whose code is running now */

/* the ready queue: checks in the order their work became due */
static ms_check *rq_head, *rq_tail;
static uv_idle_t rq_idle;    /* drains the queue; active while it is not empty */
static uv_prepare_t rq_prep; /* before each poll: a new turn, nothing charged yet */
static uv_loop_t *rq_loop;   /* rq_idle, rq_prep are initialised on this loop */
static uint64_t rq_charged;  /* ns of check work this turn outside the queue */
static uint64_t rq_max_wait; /* ns, since ms_check_ready_max_wait */

/* ---- the hook ---- */

/* Can L yield here? Not when a C function (other than pcall/xpcall, which
 * LuaJIT can yield across) sits between the running code and the resume. */
static int can_yield(lua_State *L)
{
    lua_Debug ar;
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sn", &ar)) return 0;
        if (ar.what[0] == 'C' &&
            !(ar.name && (!strcmp(ar.name, "pcall") || !strcmp(ar.name, "xpcall"))))
            return 0;
    }
    return 1;
}

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    ms_check *c = current;
    if (!c) return;
    uint64_t now = uv_hrtime();
    if (!c->killed && ms_lua_oom(c->lua)) c->killed = 2;
    if (!c->killed && now >= c->deadline) c->killed = 1;
    if (c->killed) {
        lua_sethook(L, hook, LUA_MASKCOUNT, 1); /* error on every instruction from now on */
        if (L == c->co && can_yield(L)) lua_yield(L, 0);
        luaL_error(L, "%s", c->killed == 1 ? "check timed out" : "check exceeded its memory limit");
    }
    if (now >= c->slice_end && L == c->co && can_yield(L)) lua_yield(L, 0);
}

/* ---- loading ---- */

/* Copy a Lua value from one state to another (tables of plain values). */
static void copy_value(lua_State *from, int idx, lua_State *to, int depth)
{
    idx = idx < 0 ? lua_gettop(from) + idx + 1 : idx;
    switch (lua_type(from, idx)) {
    case LUA_TNUMBER:
        lua_pushnumber(to, lua_tonumber(from, idx));
        break;
    case LUA_TBOOLEAN:
        lua_pushboolean(to, lua_toboolean(from, idx));
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(from, idx, &n);
        lua_pushlstring(to, s, n);
        break;
    }
    case LUA_TTABLE:
        lua_newtable(to);
        if (depth > 16) break;
        lua_pushnil(from);
        while (lua_next(from, idx)) {
            copy_value(from, -2, to, depth + 1);
            copy_value(from, -1, to, depth + 1);
            lua_rawset(to, -3);
            lua_pop(from, 1);
        }
        break;
    default:
        lua_pushnil(to);
    }
}

/* Number field of the table at idx, or dflt. */
static double num_field(lua_State *L, int idx, const char *k, double dflt)
{
    lua_getfield(L, idx, k);
    double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : dflt;
    lua_pop(L, 1);
    return v;
}

static int is_common_key(const char *k)
{
    static const char *keys[] = {"enabled", "interval", "timeout", "jitter",
                                 "memory",  "slice",    NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(k, keys[i])) return 1;
    return 0;
}

/* Settings from a check's section; < 0 means "not set". */
typedef struct settings {
    int enabled;
    double interval, timeout, jitter, slice;
    int64_t memory;
} settings;

/* Read this check's common keys from its section (types checked, line:col). */
static int read_settings(const char *name, const ms_node *s, const ms_config *cfg, settings *st,
                         ms_error *err)
{
    const char *file = cfg ? cfg->path : "config";
    st->enabled = -1; /* not set: the file's `enabled`, else on */
    st->interval = st->timeout = st->jitter = st->slice = -1;
    st->memory = -1;
    for (size_t i = 0; s && s->type == MS_NODE_MAP && i < s->n; i++) {
        const ms_node *v = s->items[i];
        if (!is_common_key(v->key)) continue;
        if (v->type != MS_NODE_SCALAR)
            return ms_error_set(err, MS_EINVAL, "%s:%d:%d: checks.%s.%s: expected a scalar", file,
                                v->line, v->col, name, v->key);
        int rc = MS_OK;
        if (!strcmp(v->key, "enabled")) {
            rc = ms_parse_bool(v->value, &st->enabled);
        } else if (!strcmp(v->key, "memory")) {
            uint64_t m = 0;
            rc = ms_parse_size(v->value, &m);
            if (rc == MS_OK && m < 65536) rc = MS_EINVAL;
            st->memory = (int64_t)m;
        } else {
            double d = 0;
            rc = ms_parse_duration(v->value, &d);
            if (rc == MS_OK && d <= 0 && strcmp(v->key, "jitter") != 0) rc = MS_EINVAL;
            if (!strcmp(v->key, "interval")) st->interval = d;
            if (!strcmp(v->key, "timeout")) st->timeout = d;
            if (!strcmp(v->key, "jitter")) st->jitter = d;
            if (!strcmp(v->key, "slice")) st->slice = d;
        }
        if (rc != MS_OK)
            return ms_error_set(err, MS_EINVAL, "%s:%d:%d: checks.%s.%s: bad value '%s'", file,
                                v->line, v->col, name, v->key, v->value);
    }
    return MS_OK;
}

/* Check the section's own keys against the file's `defaults` (when the
 * check declares them) and fill ms.config from them. Table at -1: defaults. */
static int apply_defaults(ms_check *c, lua_State *L, const ms_config *cfg, ms_error *err)
{
    int dflt = lua_gettop(L);
    lua_getglobal(L, "ms");
    lua_getfield(L, -1, "config");
    int conf = lua_gettop(L);
    const ms_node *s = c->section;
    for (size_t i = 0; s && s->type == MS_NODE_MAP && i < s->n; i++) {
        const ms_node *v = s->items[i];
        if (is_common_key(v->key)) continue;
        lua_getfield(L, dflt, v->key);
        int known = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!known) {
            int rc = ms_error_set(err, MS_EINVAL,
                                  "%s:%d:%d: checks.%s: unknown key '%s' (%s declares its keys in "
                                  "`defaults`)",
                                  cfg ? cfg->path : "config", v->key_line, v->key_col, c->name,
                                  v->key, c->file);
            lua_settop(L, dflt - 1);
            return rc;
        }
    }
    lua_pushnil(L);
    while (lua_next(L, dflt)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, conf);
        int have = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!have) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, conf);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_settop(L, dflt - 1);
    return MS_OK;
}

/* Build the check's Lua state from its file and apply its settings. On
 * error the check keeps its previous state and settings; err says why.
 * `cfg_from`: a Lua state holding a config table at cfg_idx (run_check),
 * else the section node is used. Returns MS_ENOENT for a disabled check. */
int ms_check_load(ms_check *c, const ms_config *cfg, lua_State *cfg_from, int cfg_idx,
                  ms_error *err)
{
    settings st;
    int rc = read_settings(c->name, c->section, cfg, &st, err);
    if (rc != MS_OK) return rc;
    if (!st.enabled) return MS_ENOENT;
    const ms_agent_config *ag = cfg ? &cfg->agent : NULL;
    uint64_t memory = st.memory > 0 ? (uint64_t)st.memory : (ag ? ag->check_memory : 16u << 20);
    ms_strlist nopaths = {0, NULL};
    ms_lua_opts o = {0, memory, cfg ? &cfg->paths.lua : &nopaths};
    ms_lua *l = ms_lua_new(&o, err);
    if (!l) return err ? err->code : MS_ENOMEM;
    lua_State *L = ms_lua_state(l);
    int run_ref, collect_ref;

    /* __moonstat = { check, name, file, config } then ms = require "moonstat.check" */
    lua_newtable(L);
    lua_pushlightuserdata(L, c);
    lua_setfield(L, -2, "check");
    lua_pushstring(L, c->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, c->file);
    lua_setfield(L, -2, "file");
    if (cfg_from) {
        copy_value(cfg_from, cfg_idx, L, 0);
    } else {
        lua_newtable(L);
        const ms_node *sec = c->section;
        for (size_t i = 0; sec && sec->type == MS_NODE_MAP && i < sec->n; i++) {
            const ms_node *v = sec->items[i];
            if (is_common_key(v->key)) continue;
            ms_lua_push_node(L, v);
            lua_setfield(L, -2, v->key);
        }
    }
    lua_setfield(L, -2, "config");
    lua_setglobal(L, "__moonstat");
    lua_getglobal(L, "require");
    lua_pushstring(L, "moonstat.check");
    if ((rc = ms_lua_pcall(L, 1, 1, err)) != MS_OK) goto fail;
    lua_pushvalue(L, -1);
    lua_setglobal(L, "ms");
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "moonstat");
    lua_pop(L, 2);
    ms_check_net_open(L); /* ms.tcp/unix/udp/json/monotime, ms.http, ms.exec */
    ms_check_http_open(L);
    ms_check_exec_open(L);
    ms_check_fs_open(L); /* ms.statvfs */
    lua_getfield(L, -1, "_run");
    run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);

    /* run the file with limits on (JIT is off in this state, so the hook holds) */
    ms_check *saved = current;
    ms_lua *saved_lua = c->lua;
    c->lua = l; /* the hook looks at c->lua for the memory flag */
    current = c;
    c->killed = 0;
    lua_State *saved_co = c->co;
    c->co = NULL;
    c->deadline = uv_hrtime() + (uint64_t)(LOAD_TIMEOUT * 1e9);
    c->slice_end = UINT64_MAX;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
    ms_lua_enforce(l, 1);
    rc = ms_lua_dofile(L, c->file, 1, err);
    ms_lua_enforce(l, 0);
    current = saved;
    c->lua = saved_lua;
    c->co = saved_co;
    if (rc == MS_OK && c->killed)
        rc = ms_error_set(err, MS_ELUA, "%s: %s while loading", c->file,
                          c->killed == 1 ? "timed out" : "ran out of memory");
    c->killed = 0;
    if (rc != MS_OK) goto fail;
    if (lua_isfunction(L, -1)) {
        lua_newtable(L);
        lua_insert(L, -2);
        lua_setfield(L, -2, "collect");
    }
    if (!lua_istable(L, -1)) {
        rc = ms_error_set(err, MS_ELUA, "%s: must return a table with collect() or a function",
                          c->file);
        goto fail;
    }
    lua_getfield(L, -1, "collect");
    if (!lua_isfunction(L, -1)) {
        rc = ms_error_set(err, MS_ELUA, "%s: the returned table has no collect function", c->file);
        goto fail;
    }
    collect_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* a file returning `enabled = false` (a service check) stays off until
     * config.yaml has a section for it; tests (cfg_from) load it anyway */
    if (st.enabled < 0 && !cfg_from && !c->section) {
        lua_getfield(L, -1, "enabled");
        int off = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (off) {
            rc = MS_ENOENT;
            goto fail;
        }
    }
    lua_getfield(L, -1, "defaults");
    if (lua_istable(L, -1)) {
        if ((rc = apply_defaults(c, L, cfg, err)) != MS_OK) goto fail;
    } else {
        lua_pop(L, 1);
    }
    /* settings: config section > the file's own value > agent defaults */
    free(c->type);
    lua_getfield(L, -1, "type");
    c->type = lua_isstring(L, -1) ? strdup(lua_tostring(L, -1)) : NULL;
    lua_pop(L, 1);
    c->interval =
        st.interval > 0 ? st.interval : num_field(L, -1, "interval", ag ? ag->interval : 10);
    c->timeout =
        st.timeout > 0 ? st.timeout : num_field(L, -1, "timeout", ag ? ag->check_timeout : 10);
    if (c->interval <= 0) c->interval = 10;
    if (c->timeout <= 0) c->timeout = 10;
    c->jitter = st.jitter >= 0
                    ? st.jitter
                    : (ag && ag->check_jitter >= 0 ? ag->check_jitter : c->interval / 10);
    c->slice = st.slice > 0 ? st.slice : (ag ? ag->check_slice : 0.01);
    c->memory = memory;
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_gc(L, LUA_GCSETPAUSE, 120); /* many small heaps: collect sooner than the default 200% */
    if (c->state == ST_RUNNING) {
        /* a sliced run of the old version is abandoned with its state */
        ms_check_unqueue(c);
        ms_check_io_close_all(c);
        c->io_wait = 0;
        c->state = ST_IDLE;
        if (ms_check_once_pending > 0) ms_check_once_pending--;
        ms_log_info("check %s: run in progress abandoned for the new version", c->name);
    }
    ms_lua_free(c->lua);
    c->lua = l;
    c->co = NULL;
    c->co_ref = LUA_NOREF;
    c->run_ref = run_ref;
    c->collect_ref = collect_ref;
    return MS_OK;
fail:
    ms_lua_free(l);
    return rc;
}

/* ---- samples ---- */

/* Parse one NUL-terminated field at *p (bounded by end); NULL when missing. */
static const char *field(const char **p, const char *end, size_t *len)
{
    const char *s = *p;
    const char *z = s < end ? memchr(s, 0, (size_t)(end - s)) : NULL;
    if (!z) return NULL;
    *len = (size_t)(z - s);
    *p = z + 1;
    return s;
}

/* The records of one run -> a batch for the pipeline (or the capture batch).
 * See ms_ffi.h for the layout. */
int ms_ffi_check_submit(void *check, const char *buf, size_t len, int n)
{
    ms_check *c = check;
    const char *p = buf, *end = buf + len;
    ms_batch *b = c->capture;
    int own = 0, kept = 0;
    if (!b) {
        b = ms_batch_new((uint32_t)(n > 0 ? n : 1));
        if (!b) return MS_ENOMEM;
        own = 1;
    }
    ms_tag tags[MAX_TAGS + 1];
    for (int i = 0; i < n; i++) {
        size_t nlen, klen, vlen, mlen, llen, xlen, tlen;
        if (p >= end || *p < '0' || *p >= '0' + MS_KIND_COUNT_) goto bad;
        int kind = *p++ - '0';
        const char *name = field(&p, end, &nlen);
        if (!name) goto bad;
        size_t nt = 0;
        if (c->type) {
            tags[nt++] = (ms_tag){"type", c->type, 4, (uint32_t)strlen(c->type)};
        }
        for (;;) {
            const char *k = field(&p, end, &klen);
            if (!k) goto bad;
            if (klen == 0) break;
            const char *v = field(&p, end, &vlen);
            if (!v) goto bad;
            if (nt < MAX_TAGS + 1) tags[nt++] = (ms_tag){k, v, (uint32_t)klen, (uint32_t)vlen};
        }
        const char *msg = field(&p, end, &mlen);
        const char *level = msg ? field(&p, end, &llen) : NULL;
        const char *vtext = level ? field(&p, end, &xlen) : NULL;
        const char *ttext = vtext ? field(&p, end, &tlen) : NULL;
        if (!ttext || !xlen || p >= end || *p++ != '\x1e') goto bad; /* the record's end */
        char *e;
        double v = strtod(vtext, &e);
        if (e != vtext + xlen) goto bad;
        double t = tlen ? strtod(ttext, &e) : 0;
        if (tlen && e != ttext + tlen) goto bad;
        if (t <= 0) t = c->run_ts; /* none: the run's time */
        uint32_t id = ms_series_intern(name, nlen, tags, nt);
        if (!id) continue; /* table full: counted there */
        if (kind == MS_KIND_RATE && !ms_rate_update(id, v, t, &v)) continue;
        if (ms_batch_add(b, id, (ms_kind)kind, v, t, mlen ? msg : NULL, mlen, llen ? level : NULL,
                         llen) != MS_OK)
            break;
        kept++;
    }
    c->samples += (uint64_t)kept;
    if (own) {
        if (b->n)
            ms_pipeline_submit(b);
        else
            ms_batch_unref(b);
    }
    return kept;
bad:
    if (own) ms_batch_unref(b);
    return MS_EINVAL;
}

/* ---- running ---- */

static void schedule_next(ms_check *c);
static void step(ms_check *c, int nargs);

static double rand01(void)
{
    return (double)rand() / ((double)RAND_MAX + 1.0);
}

/* "file:line" of where co is now, for messages about a run we abandon. */
static void where(lua_State *co, char *out, size_t cap)
{
    lua_Debug ar;
    snprintf(out, cap, "?");
    for (int level = 0; lua_getstack(co, level, &ar); level++) {
        if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
            snprintf(out, cap, "%s:%d", ar.short_src, ar.currentline);
            return;
        }
    }
}

/* A run ended: record it, log failures, rebuild the state after a kill. */
static void finish_run(ms_check *c, int ok, const char *msg)
{
    lua_State *L = ms_lua_state(c->lua);
    ms_check_io_close_all(c); /* sockets and requests live for one run */
    c->io_wait = 0;
    if (ok && lua_status(c->co) == 0) {
        lua_settop(c->co, 0); /* finished cleanly: the next run reuses this coroutine */
    } else {
        luaL_unref(L, LUA_REGISTRYINDEX, c->co_ref);
        c->co = NULL;
        c->co_ref = LUA_NOREF;
    }
    c->runs++;
    c->last_duration = (double)(uv_hrtime() - c->run_start) / 1e9;
    c->last_run = c->run_ts;
    c->state = ST_IDLE;
    int killed = c->killed;
    c->killed = 0;
    ms_lua_clear_oom(c->lua);
    if (ok) {
        c->last_error[0] = 0;
    } else {
        c->errors++;
        if (killed == 1) c->timeouts++;
        if (killed == 2) c->ooms++;
        snprintf(c->last_error, sizeof c->last_error, "%s", msg);
        ms_log_error("check %s: %s", c->name, msg);
    }
    if (killed) {
        ms_error err = {0};
        lua_sethook(L, NULL, 0, 0);
        if (ms_check_load(c, ms_check_cfg, NULL, 0, &err) != MS_OK)
            ms_log_error("check %s: reloading after the kill failed, keeping the old state: %s",
                         c->name, err.msg);
    }
    if (ms_check_once_pending > 0) ms_check_once_pending--;
}

/* Continue a yielded run with nargs values on c->co, or end it when it is
 * past its deadline (or was killed at a yield point). */
static void continue_run(ms_check *c, int nargs)
{
    if (!c->killed && uv_hrtime() >= c->deadline) c->killed = 1;
    if (c->killed) {
        char loc[256], msg[MS_ERROR_MAX];
        where(c->co, loc, sizeof loc);
        snprintf(msg, sizeof msg, "%s: %s after %.3gs%s", loc,
                 c->killed == 1 ? "timed out" : "exceeded its memory limit", c->timeout,
                 c->io_wait ? " (waiting for I/O)" : "");
        finish_run(c, 0, msg);
        return;
    }
    step(c, nargs);
}

/* ---- the ready queue ---- */

static void rq_drain(uv_idle_t *h);

static void rq_new_turn(uv_prepare_t *p)
{
    (void)p;
    rq_charged = 0;
}

void ms_check_turn_charge(uint64_t ns)
{
    rq_charged += ns;
}

/* Put c at the back of the ready queue for `what` (an RQ_*); nargs: values
 * on c->co for an I/O resume; ts: the time of a run to start. */
static void rq_push(ms_check *c, int what, int nargs, double ts)
{
    if (c->queued) return;
    if (rq_loop != ms_check_loop) { /* first use (or a new loop) */
        uv_idle_init(ms_check_loop, &rq_idle);
        uv_prepare_init(ms_check_loop, &rq_prep);
        uv_prepare_start(&rq_prep, rq_new_turn);
        uv_unref((uv_handle_t *)&rq_prep); /* rq_idle, active, keeps the loop alive */
        rq_loop = ms_check_loop;
    }
    c->queued = what;
    c->rq_nargs = nargs;
    c->rq_ts = ts;
    c->rq_at = uv_hrtime();
    c->rq_next = NULL;
    c->rq_prev = rq_tail;
    if (rq_tail)
        rq_tail->rq_next = c;
    else
        rq_head = c;
    rq_tail = c;
    if (!uv_is_active((uv_handle_t *)&rq_idle)) uv_idle_start(&rq_idle, rq_drain);
}

void ms_check_unqueue(ms_check *c)
{
    if (!c->queued) return;
    if (c->rq_prev)
        c->rq_prev->rq_next = c->rq_next;
    else
        rq_head = c->rq_next;
    if (c->rq_next)
        c->rq_next->rq_prev = c->rq_prev;
    else
        rq_tail = c->rq_prev;
    c->rq_prev = c->rq_next = NULL;
    c->queued = RQ_NONE;
    if (!rq_head && rq_loop) uv_idle_stop(&rq_idle);
}

double ms_check_ready_max_wait(void)
{
    double s = (double)rq_max_wait / 1e9;
    rq_max_wait = 0;
    return s;
}

/* Do what c waited for: start its run, continue it after a slice, or
 * resume it with an I/O result (or end it when it is past its deadline). */
static void rq_run(ms_check *c, int what, int nargs, double ts)
{
    if (what == RQ_START) {
        if (c->state != ST_RUNNING && !c->closing) ms_check_start_run(c, ts);
        return;
    }
    if (c->state != ST_RUNNING || !c->co) return;
    if (what == RQ_IO) {
        if (!c->killed && uv_hrtime() >= c->deadline) c->killed = 1;
        if (c->killed) {
            continue_run(c, 0); /* ends the run; keeps io_wait for the message */
            return;
        }
        c->io_wait = 0;
    }
    continue_run(c, what == RQ_IO ? nargs : 0);
}

/* The idle handle: run queued work in FIFO order until the turn's budget is
 * spent (at least one item, so the queue always moves). What I/O callbacks
 * did for checks since the turn began (ms_check_turn_charge: curl starting
 * the transfers the previous drain asked for, answers parsed) is taken off
 * the budget first, so a turn's check work stays near the budget however
 * much each run sets off. Work queued during this drain (a run sliced again,
 * an I/O call that finished at once) waits for the next turn. */
static void rq_drain(uv_idle_t *h)
{
    uint64_t start = uv_hrtime();
    double b = ms_check_cfg && ms_check_cfg->agent.check_turn_budget > 0
                   ? ms_check_cfg->agent.check_turn_budget
                   : 0.001;
    uint64_t budget = (uint64_t)(b * 1e9);
    uint64_t end = start + (budget > rq_charged ? budget - rq_charged : 0);
    rq_charged = 0;
    for (uint64_t now = start; rq_head && rq_head->rq_at <= start;) {
        ms_check *c = rq_head;
        int what = c->queued, nargs = c->rq_nargs;
        double ts = c->rq_ts;
        if (now - c->rq_at > rq_max_wait) rq_max_wait = now - c->rq_at;
        ms_check_unqueue(c);
        rq_run(c, what, nargs, ts);
        now = uv_hrtime();
        if (now >= end) break;
    }
    if (!rq_head) uv_idle_stop(h);
}

/* ---- the I/O API's side of the runs (see check_int.h) ---- */

ms_check *ms_check_io_owner(lua_State *L, const char **why)
{
    ms_check *c = current;
    if (!c || !c->co || c->state != ST_RUNNING) {
        *why = "network calls can only be made while the check runs (inside collect), "
               "not when its file is loaded";
        return NULL;
    }
    if (L != c->co) {
        *why = "network calls cannot be made from a coroutine the check created";
        return NULL;
    }
    /* the run must be able to yield from here: no C function (but pcall)
     * between the caller and the resume; level 0 is the API function */
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sn", &ar)) break;
        if (ar.what[0] == 'C' &&
            !(ar.name && (!strcmp(ar.name, "pcall") || !strcmp(ar.name, "xpcall")))) {
            *why = "network calls cannot be made inside a function called from C "
                   "(a table.sort comparator, a string.gsub callback, ...)";
            return NULL;
        }
    }
    return c;
}

int ms_check_io_yield(lua_State *L)
{
    if (current) current->io_wait = 1;
    return lua_yield(L, 0);
}

void ms_check_io_resume(ms_check *c, int nargs)
{
    if (c->state != ST_RUNNING || !c->co || c->closing || !c->io_wait || c->queued) return;
    rq_push(c, RQ_IO, nargs, 0); /* the results wait on c->co */
}

double ms_check_io_budget(const ms_check *c)
{
    uint64_t now = uv_hrtime();
    double left = c->deadline > now ? (double)(c->deadline - now) / 1e9 : 0;
    return left + 0.001;
}

/* Resume the run's coroutine for one slice. */
static void step(ms_check *c, int nargs)
{
    lua_State *L = ms_lua_state(c->lua);
    current = c;
    c->slice_end = uv_hrtime() + (uint64_t)(c->slice * 1e9);
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
    ms_lua_enforce(c->lua, 1);
    int r = lua_resume(c->co, nargs);
    ms_lua_enforce(c->lua, 0);
    current = NULL;
    if (!c->killed && ms_lua_oom(c->lua)) c->killed = 2;
    if (r == LUA_YIELD && c->io_wait && !c->killed) return; /* an I/O callback resumes it */
    if (r == LUA_YIELD) {
        c->io_wait = 0;
        /* sliced (or killed at a yield point): continue or kill from the
         * back of the ready queue, after the loop has polled for I/O */
        rq_push(c, RQ_CONTINUE, 0, 0);
        return;
    }
    if (r == 0) {
        finish_run(c, 1, NULL);
        return;
    }
    char msg[MS_ERROR_MAX];
    const char *m = lua_tostring(c->co, -1);
    if (r == LUA_ERRMEM || c->killed == 2)
        snprintf(msg, sizeof msg, "%s (exceeded its memory limit of %.1f MiB)",
                 m ? m : "not enough memory", (double)c->memory / 1048576.0);
    else
        snprintf(msg, sizeof msg, "%s", m ? m : "error object is not a string");
    if (c->killed == 1 && !strstr(msg, "timed out")) {
        size_t k = strlen(msg);
        snprintf(msg + k, sizeof msg - k, " (timed out after %.3gs)", c->timeout);
    }
    finish_run(c, 0, msg);
}

/* Start one run now; its time (ms.timestamp(), sample times) is ts. */
void ms_check_start_run(ms_check *c, double ts)
{
    lua_State *L = ms_lua_state(c->lua);
    lua_settop(L, 0);
    if (!c->co) {
        c->co = lua_newthread(L);
        c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    c->state = ST_RUNNING;
    c->run_ts = ts;
    c->run_start = uv_hrtime();
    c->deadline = c->run_start + (uint64_t)(c->timeout * 1e9);
    c->killed = 0;
    lua_rawgeti(c->co, LUA_REGISTRYINDEX, c->run_ref);
    lua_rawgeti(c->co, LUA_REGISTRYINDEX, c->collect_ref);
    lua_pushnumber(c->co, c->run_ts);
    step(c, 2);
}

static void timer_cb(uv_timer_t *t)
{
    ms_check *c = t->data;
    if (c->state == ST_RUNNING || c->queued) {
        c->skipped++;
        ms_log_warn("check %s: still %s at its next interval, run skipped", c->name,
                    c->state == ST_RUNNING ? "running" : "waiting for its turn");
    } else {
        rq_push(c, RQ_START, 0, ms_now()); /* its time is when it was due */
    }
    schedule_next(c);
}

/* Arm the timer for the next interval plus a random jitter. */
/* Arm c's timer `delay` s from now, rounded up to the next TICK_MS boundary
 * of the loop clock: runs due within one tick share one loop wake-up, so a
 * thousand checks a second cost at most 1000 / TICK_MS wake-ups. */
static void arm_in(ms_check *c, double delay)
{
    uint64_t now = uv_now(ms_check_loop);
    uint64_t due = now + (uint64_t)(delay * 1000);
    due = (due + TICK_MS - 1) / TICK_MS * TICK_MS;
    uv_timer_start(&c->timer, timer_cb, due - now, 0);
}

static void schedule_next(ms_check *c)
{
    double jitter = c->jitter > c->interval ? c->interval : c->jitter;
    double delay = c->interval + (jitter > 0 ? (rand01() - 0.5) * jitter : 0);
    arm_in(c, delay < 0.001 ? 0.001 : delay);
}

void ms_check_arm(ms_check *c, int schedule, int run_now)
{
    uv_timer_init(ms_check_loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    if (!schedule) return;
    /* first run: spread over the jitter window so many checks do not fire
     * together, yet a long interval does not delay the first sample */
    double window = c->jitter < c->interval ? c->jitter : c->interval;
    double first = run_now ? 0 : rand01() * window;
    arm_in(c, first);
}
