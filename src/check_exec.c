/*
 * check_exec.c - ms.exec for checks: run a command without a shell, the
 * cosocket way. The call yields the check's run coroutine; libuv spawns the
 * child in a session and process group of its own, reads its stdout and
 * stderr into capped buffers (what passes the cap is still read, so the
 * child never blocks on a full pipe), writes `stdin` to it, and resumes the
 * run when the child has exited and both pipes are closed.
 *
 *   ms.exec(argv [, opts]) -> code, stdout, stderr, info | nil, err [, stdout, stderr]
 *     argv  a list of strings (argv[1] is the program, looked up in PATH when
 *           it has no '/'), or one string: a program without arguments
 *     opts  timeout (s, default 10, cut to what is left of the run),
 *           env { NAME = "value" | false } added to (false: removed from)
 *           moonstat's environment, stdin (a string; default /dev/null),
 *           max_output (bytes kept per stream, default 1 MiB), lines (return
 *           after this many stdout lines, terminating the child), grace (s
 *           between SIGTERM and SIGKILL, default 1), cwd
 *     code  the exit status, or 128 + the signal that ended the child
 *     info  { signal = N, stopped = true (`lines` reached), truncated = true
 *             (output past max_output was dropped), duration = s }
 *
 * A child's process group gets SIGTERM, then SIGKILL after `grace`, when the
 * call times out (the run gets nil, "... timed out ..." and the partial
 * output at once), when `lines` is reached, when the child exits leaving
 * other processes in its group, and when the run ends, fails or is stopped
 * while the call waits. Such a child is then finished in the background
 * (reaped, its pipes drained) and counted in moonstat_check_exec_running;
 * groups still alive when moonstat exits are killed at exit.
 *
 * A child is malloc'd and libuv owns it until its handles are closed; the
 * Lua userdata holds a pointer to it while the call waits (anchored in the
 * registry), and its __gc detaches it when the state goes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <lauxlib.h>
#include <uv.h>

#include "check_int.h"
#include "ms_stats.h"

#define EXEC_MT      "moonstat.exec"
#define DFLT_TIMEOUT 10.0
#define DFLT_GRACE   1.0
#define DFLT_MAX_OUT (1u << 20)
#define MAX_MAX_OUT  (64u << 20)

extern char **environ;

/* What one stream kept: at most `cap` bytes of it; `total` counts all. */
typedef struct obuf {
    char *p;
    size_t len, cap, alloc; /* kept, the cap, allocated */
    uint64_t total;
    int open; /* still being read */
} obuf;

typedef struct xproc {
    ms_check_io io;
    struct xproc *gprev, *gnext; /* every live child, for the exit handler */
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    uv_write_t wr;
    int handles;  /* initialised handles not closed yet; freed at 0 */
    int released; /* its handles are closing */
    int waiting;  /* the Lua call waits for it */
    int pid, exited, sig;
    int64_t status;
    int stage; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
    int timed_out, stopped, truncated;
    int has_in, in_open;
    double timeout, grace;
    int lines, nl;
    obuf o, e;
    char *in_data;
    int ref;      /* registry anchor of the userdata while waiting */
    lua_State *L; /* the state that holds `ref` */
    uint64_t start;
    char name[256]; /* argv[1], for messages */
} xproc;

static xproc *live;     /* every child not yet freed */
static int64_t running; /* of which not yet exited */
static uint64_t n_ok, n_err, n_timeout, n_trunc, n_bg_kill;
static char readbuf[65536]; /* read callbacks use it in turn */

/* ---- own metrics ---- */

/* moonstat_check_exec_total{result}, _truncated_total, _killed_total
 * (children terminated because their run ended first) and _running. */
static void stats_provider(ms_batch *b, double now, void *ud)
{
    (void)ud;
    static const char *const ok[] = {"result", "ok", NULL};
    static const char *const err[] = {"result", "error", NULL};
    static const char *const to[] = {"result", "timeout", NULL};
    ms_stats_add(b, "moonstat_check_exec_total", MS_KIND_COUNTER, (double)n_ok, now, ok);
    ms_stats_add(b, "moonstat_check_exec_total", MS_KIND_COUNTER, (double)n_err, now, err);
    ms_stats_add(b, "moonstat_check_exec_total", MS_KIND_COUNTER, (double)n_timeout, now, to);
    ms_stats_add(b, "moonstat_check_exec_truncated_total", MS_KIND_COUNTER, (double)n_trunc, now,
                 NULL);
    ms_stats_add(b, "moonstat_check_exec_killed_total", MS_KIND_COUNTER, (double)n_bg_kill, now,
                 NULL);
    ms_stats_add(b, "moonstat_check_exec_running", MS_KIND_GAUGE, (double)running, now, NULL);
}

/* ---- freeing ---- */

static void x_free(xproc *x)
{
    if (x->gprev)
        x->gprev->gnext = x->gnext;
    else if (live == x)
        live = x->gnext;
    if (x->gnext) x->gnext->gprev = x->gprev;
    free(x->o.p);
    free(x->e.p);
    free(x->in_data);
    free(x);
}

static void on_closed(uv_handle_t *h)
{
    xproc *x = h->data;
    if (--x->handles == 0) x_free(x);
}

static void close_h(uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, on_closed);
}

/* Close every handle; the memory goes with the last close callback. */
static void release(xproc *x)
{
    if (x->released) return;
    x->released = 1;
    if (!x->exited) running--;
    x->exited = 1;
    x->pid = 0; /* reaped and its group gone (or SIGKILLed): nothing left to signal */
    close_h((uv_handle_t *)&x->timer);
    close_h((uv_handle_t *)&x->out);
    close_h((uv_handle_t *)&x->err);
    if (x->has_in) close_h((uv_handle_t *)&x->in);
    close_h((uv_handle_t *)&x->proc);
}

/* ---- the Lua call's end ---- */

/* Leave the check: unlink from its I/O list, drop the registry anchor. */
static void detach(xproc *x)
{
    x->waiting = 0;
    ms_check_io_del(&x->io);
    if (x->ref != LUA_NOREF && x->L) luaL_unref(x->L, LUA_REGISTRYINDEX, x->ref);
    x->ref = LUA_NOREF;
    x->L = NULL;
}

static void push_out(lua_State *co, const obuf *b)
{
    lua_pushlstring(co, b->p ? b->p : "", b->len);
}

/* Push the call's results on the run's coroutine; returns their count. */
static int push_results(xproc *x, lua_State *co)
{
    if (x->timed_out) {
        n_timeout++;
        lua_pushnil(co);
        lua_pushfstring(co,
                        "exec %s: timed out after %.3fs (its process group was sent SIGTERM, "
                        "then SIGKILL after %.3fs)",
                        x->name, x->timeout, x->grace);
        push_out(co, &x->o);
        push_out(co, &x->e);
        return 4;
    }
    n_ok++;
    if (x->truncated) n_trunc++;
    lua_pushinteger(co, x->sig ? 128 + x->sig : (lua_Integer)x->status);
    push_out(co, &x->o);
    push_out(co, &x->e);
    lua_createtable(co, 0, 4);
    if (x->sig) {
        lua_pushinteger(co, x->sig);
        lua_setfield(co, -2, "signal");
    }
    if (x->stopped) {
        lua_pushboolean(co, 1);
        lua_setfield(co, -2, "stopped");
    }
    if (x->truncated) {
        lua_pushboolean(co, 1);
        lua_setfield(co, -2, "truncated");
    }
    lua_pushnumber(co, (double)(uv_hrtime() - x->start) / 1e9);
    lua_setfield(co, -2, "duration");
    return 4;
}

/* Resume the waiting run with the results (the child goes on alone). */
static void finish_call(xproc *x)
{
    ms_check *c = x->io.c;
    if (!x->waiting || !c || !c->co) return;
    int n = push_results(x, c->co);
    detach(x);
    ms_check_io_resume(c, n);
}

/* ---- the child's end ---- */

static void on_timer(uv_timer_t *t);

/* Signal x's process group; never group 0 (that would be moonstat's own). */
static int gkill(xproc *x, int sig)
{
    if (x->pid <= 0) return -1;
    return kill(-x->pid, sig);
}

/* SIGTERM the group now, SIGKILL it `grace` later (stage 1). */
static void terminate(xproc *x)
{
    if (x->stage > 0) return;
    gkill(x, SIGTERM);
    x->stage = 1;
    uv_timer_start(&x->timer, on_timer, (uint64_t)(x->grace * 1000) + 1, 0);
}

/* Done when the child was reaped and both pipes are closed: answer the
 * call, then wait for the rest of its group (if any) to go. */
static void maybe_done(xproc *x)
{
    if (x->released || !x->exited || x->o.open || x->e.open) return;
    int group_left = x->stage < 2 && gkill(x, 0) == 0;
    if (group_left) terminate(x);
    if (!group_left) release(x);
    finish_call(x); /* last: resuming may end the run or free the state */
}

/* The timeout, then the grace steps: SIGTERM, SIGKILL, give up on pipes a
 * process outside the group still holds. */
static void on_timer(uv_timer_t *t)
{
    xproc *x = t->data;
    if (x->stage == 0) {
        x->timed_out = 1;
        terminate(x);
        finish_call(x);
        return;
    }
    if (x->stage == 1) {
        gkill(x, SIGKILL);
        x->stage = 2;
        uv_timer_start(&x->timer, on_timer, (uint64_t)(x->grace * 1000) + 1, 0);
        maybe_done(x);
        return;
    }
    gkill(x, SIGKILL);
    if (x->o.open || x->e.open) {
        x->o.open = x->e.open = 0;
        uv_read_stop((uv_stream_t *)&x->out);
        uv_read_stop((uv_stream_t *)&x->err);
    }
    if (x->exited)
        maybe_done(x);
    else
        uv_timer_start(&x->timer, on_timer, (uint64_t)(x->grace * 1000) + 1, 0);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    xproc *x = p->data;
    x->exited = 1;
    running--;
    x->status = status;
    x->sig = sig;
    maybe_done(x);
}

/* ---- output ---- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(readbuf, sizeof readbuf);
}

/* Keep what fits in b (growing it up to its cap); count the rest. Returns
 * 1 when some of it was dropped. */
static int keep(obuf *b, const char *p, size_t n)
{
    b->total += n;
    size_t room = b->cap - b->len;
    size_t take = n < room ? n : room;
    if (take) {
        size_t need = b->len + take, cap = b->alloc ? b->alloc : 4096;
        while (cap < need) cap *= 2;
        if (cap > b->cap) cap = b->cap;
        if (cap != b->alloc) {
            char *np = realloc(b->p, cap);
            if (!np) return 1;
            b->p = np;
            b->alloc = cap;
        }
        memcpy(b->p + b->len, p, take);
        b->len += take;
    }
    return take < n;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    xproc *x = st->data;
    int is_out = st == (uv_stream_t *)&x->out;
    obuf *b = is_out ? &x->o : &x->e;
    if (nread < 0) {
        uv_read_stop(st);
        b->open = 0;
        maybe_done(x);
        return;
    }
    size_t n = (size_t)nread;
    if (is_out && x->lines > 0) {
        if (x->stopped) { /* past the lines asked for: drain and drop */
            b->total += n;
            return;
        }
        const char *p = buf->base, *end = buf->base + n;
        while (p < end && x->nl < x->lines) {
            const char *q = memchr(p, '\n', (size_t)(end - p));
            if (!q) break;
            x->nl++;
            p = q + 1;
        }
        if (x->nl >= x->lines) {
            if (keep(b, buf->base, (size_t)(p - buf->base))) x->truncated = 1;
            b->total += (size_t)(end - p);
            x->stopped = 1;
            terminate(x);
            return;
        }
    }
    if (keep(b, buf->base, n)) x->truncated = 1;
}

static void on_written(uv_write_t *w, int status)
{
    xproc *x = w->data;
    (void)status; /* EPIPE: the child did not read it all; not an error of the call */
    free(x->in_data);
    x->in_data = NULL;
    if (x->in_open) {
        x->in_open = 0;
        close_h((uv_handle_t *)&x->in); /* EOF for the child */
    }
}

/* ---- the Lua side ---- */

/* io->close: the run ended (or the state goes) while the call waits:
 * terminate the child's group and let it finish in the background. */
static void x_close(ms_check_io *io)
{
    xproc *x = (xproc *)io;
    detach(x);
    if (x->released) return;
    if (!x->exited) n_bg_kill++;
    /* its group, even when the child itself has exited; past stage 0 the
     * timer already runs the SIGKILL step */
    if (x->stage == 0) terminate(x);
}

static int l_gc(lua_State *L)
{
    void **box = luaL_checkudata(L, 1, EXEC_MT);
    xproc *x = *box;
    if (x) {
        x->L = NULL; /* the state is collecting: its registry is not ours to touch */
        x->ref = LUA_NOREF;
        x_close(&x->io);
    }
    *box = NULL;
    return 0;
}

static int fail(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushnil(L);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return 2;
}

/* Mark every descriptor above stderr close-on-exec, so the child inherits
 * none of moonstat's files or sockets (Lua's io.open does not set it). */
static void cloexec_all(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return;
    struct dirent *e;
    int self = dirfd(d);
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (fd <= 2 || fd == self) continue;
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
    closedir(d);
}

/* Kill what is left at exit: SIGTERM every live group, wait up to the
 * longest grace for the children, SIGKILL the rest. The loop is gone by
 * now, so the children are reaped here. */
static void at_exit(void)
{
    double grace = 0;
    int any = 0;
    for (xproc *x = live; x; x = x->gnext) {
        if (!x->pid) continue;
        kill(-x->pid, SIGTERM);
        any = 1;
        if (x->grace > grace) grace = x->grace;
    }
    if (!any) return;
    uint64_t end = uv_hrtime() + (uint64_t)(grace * 1e9);
    for (;;) {
        int left = 0;
        for (xproc *x = live; x; x = x->gnext) {
            if (!x->pid) continue;
            if (!x->exited && waitpid(x->pid, NULL, WNOHANG) == x->pid) x->exited = 1;
            if (x->exited && kill(-x->pid, 0) != 0) x->pid = 0;
            left += x->pid != 0;
        }
        if (!left || uv_hrtime() >= end) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (xproc *x = live; x; x = x->gnext) {
        if (!x->pid) continue;
        kill(-x->pid, SIGKILL);
        if (!x->exited) waitpid(x->pid, NULL, 0);
        x->pid = 0;
    }
}

/* The options ms.exec takes (see the file's header). */
static const char *const exec_known[] = {"timeout", "env",   "stdin", "max_output",
                                         "lines",   "grace", "cwd",   NULL};

/* Number option k of the table at t: dflt when absent; -1 when not a
 * positive number. */
static double num_opt(lua_State *L, int t, const char *k, double dflt)
{
    if (!t) return dflt;
    lua_getfield(L, t, k);
    double v = dflt;
    if (!lua_isnil(L, -1))
        v = lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) > 0 ? lua_tonumber(L, -1) : -1;
    lua_pop(L, 1);
    return v;
}

/* moonstat's environment with the env table at idx applied: a NULL-
 * terminated array; its strings live in a Lua table left on the stack. */
static char **build_env(lua_State *L, int idx, const char **bad)
{
    lua_newtable(L); /* anchors the "K=V" strings */
    int keep = lua_gettop(L);
    size_t n = 0, cap = 16;
    char **env = malloc(cap * sizeof *env);
    if (!env) return NULL;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq) {
            lua_pushlstring(L, *e, (size_t)(eq - *e));
            lua_rawget(L, idx);
            int overridden = !lua_isnil(L, -1);
            lua_pop(L, 1);
            if (overridden) continue;
        }
        if (n + 2 > cap) {
            char **ne = realloc(env, (cap *= 2) * sizeof *env);
            if (!ne) goto oom;
            env = ne;
        }
        env[n++] = *e;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || !*lua_tostring(L, -2) ||
            strchr(lua_tostring(L, -2), '=') ||
            !(lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ||
              (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)))) {
            *bad = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "(not a string)";
            lua_pop(L, 2);
            free(env);
            return NULL;
        }
        if (lua_type(L, -1) != LUA_TBOOLEAN) {
            if (n + 2 > cap) {
                char **ne = realloc(env, (cap *= 2) * sizeof *env);
                if (!ne) goto oom;
                env = ne;
            }
            lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
            env[n++] = (char *)lua_tostring(L, -1);
            lua_rawseti(L, keep, (int)n);
        }
        lua_pop(L, 1);
    }
    env[n] = NULL;
    return env;
oom:
    free(env);
    return NULL;
}

/* ms.exec(argv [, opts]): see the top of this file. */
static int l_exec(lua_State *L)
{
    const char *why;
    ms_check *c = ms_check_io_owner(L, &why);
    if (!c) return fail(L, "ms.exec: %s", why);
    int nargs = lua_gettop(L);
    int ot = nargs >= 2 && lua_istable(L, 2) ? 2 : 0;
    if (nargs >= 2 && !ot && !lua_isnil(L, 2))
        return fail(L, "ms.exec: options must be a table, got %s", luaL_typename(L, 2));
    /* argv */
    int argc = 0;
    if (lua_type(L, 1) == LUA_TSTRING) {
        argc = 1;
    } else if (lua_istable(L, 1)) {
        argc = (int)lua_objlen(L, 1);
        for (int i = 1; i <= argc; i++) {
            lua_rawgeti(L, 1, i);
            int t = lua_type(L, -1);
            lua_pop(L, 1);
            if (t != LUA_TSTRING && t != LUA_TNUMBER)
                return fail(L, "ms.exec: argv[%d] must be a string, got %s", i, lua_typename(L, t));
        }
    } else {
        return fail(L, "ms.exec: argv must be a list of strings, got %s", luaL_typename(L, 1));
    }
    if (argc < 1) return fail(L, "ms.exec: argv is empty (it needs at least the program)");
    if (ot) {
        const char *bad = ms_check_unknown_option(L, ot, exec_known);
        if (bad) return fail(L, "ms.exec: unknown option '%s' (see docs/checks.md#msexec)", bad);
    }
    double timeout = num_opt(L, ot, "timeout", DFLT_TIMEOUT);
    double grace = num_opt(L, ot, "grace", DFLT_GRACE);
    double maxo = num_opt(L, ot, "max_output", DFLT_MAX_OUT);
    double lines = num_opt(L, ot, "lines", 0);
    if (timeout < 0) return fail(L, "%s", "ms.exec: timeout must be a positive number of seconds");
    if (grace < 0) return fail(L, "%s", "ms.exec: grace must be a positive number of seconds");
    if (maxo < 0 || maxo > MAX_MAX_OUT)
        return fail(L, "ms.exec: max_output must be 1..%d bytes", (int)MAX_MAX_OUT);
    if (lines < 0 || lines > 1e9) return fail(L, "%s", "ms.exec: lines must be a positive count");
    size_t in_len = 0;
    const char *in = NULL, *cwd = NULL;
    int env_idx = 0;
    if (ot) {
        lua_getfield(L, ot, "stdin");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            return fail(L, "ms.exec: stdin must be a string, got %s", luaL_typename(L, -1));
        in = lua_tolstring(L, -1, &in_len); /* stays on the stack */
        if (in_len > MAX_MAX_OUT)
            return fail(L, "ms.exec: stdin is larger than %d bytes", (int)MAX_MAX_OUT);
        lua_getfield(L, ot, "cwd");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            return fail(L, "ms.exec: cwd must be a string, got %s", luaL_typename(L, -1));
        cwd = lua_tostring(L, -1);
        lua_getfield(L, ot, "env");
        if (!lua_isnil(L, -1) && !lua_istable(L, -1))
            return fail(L, "ms.exec: env must be a table of NAME = value, got %s",
                        luaL_typename(L, -1));
        if (lua_istable(L, -1)) env_idx = lua_gettop(L);
    }
    /* argv strings stay referenced by the argv table (or arg 1) */
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    if (!argv) return luaL_error(L, "out of memory");
    if (lua_type(L, 1) == LUA_TSTRING) {
        argv[0] = (char *)lua_tostring(L, 1);
    } else {
        lua_newtable(L); /* numbers converted to strings stay referenced here */
        int keep = lua_gettop(L);
        for (int i = 1; i <= argc; i++) {
            lua_rawgeti(L, 1, i);
            argv[i - 1] = (char *)lua_tostring(L, -1);
            lua_rawseti(L, keep, i);
        }
    }
    const char *badenv = NULL;
    char **env = NULL;
    if (env_idx) {
        env = build_env(L, env_idx, &badenv);
        if (!env) {
            free(argv);
            if (badenv)
                return fail(L,
                            "ms.exec: env entry '%s' must be NAME = string (or false to "
                            "remove it), with no '=' in NAME",
                            badenv);
            return luaL_error(L, "out of memory");
        }
    }

    xproc *x = calloc(1, sizeof *x);
    void **box = lua_newuserdata(L, sizeof(void *));
    *box = x;
    if (!x) {
        free(argv);
        free(env);
        return luaL_error(L, "out of memory");
    }
    luaL_getmetatable(L, EXEC_MT);
    lua_setmetatable(L, -2);
    x->io.close = x_close;
    x->io.box = box;
    x->ref = LUA_NOREF;
    x->grace = grace;
    x->lines = (int)lines;
    x->o.cap = x->e.cap = (size_t)maxo;
    snprintf(x->name, sizeof x->name, "%s", argv[0]);
    double left = ms_check_io_budget(c);
    x->timeout = timeout < left ? timeout : left;
    if (in) {
        x->in_data = malloc(in_len ? in_len : 1);
        if (!x->in_data) {
            free(argv);
            free(env);
            free(x);
            *box = NULL;
            return luaL_error(L, "out of memory");
        }
        memcpy(x->in_data, in, in_len);
        x->has_in = 1;
    }
    uv_pipe_init(ms_check_loop, &x->out, 0);
    uv_pipe_init(ms_check_loop, &x->err, 0);
    uv_timer_init(ms_check_loop, &x->timer);
    x->handles = 4;
    if (x->has_in) {
        uv_pipe_init(ms_check_loop, &x->in, 0);
        x->handles++;
    }
    x->out.data = x->err.data = x->timer.data = x->proc.data = x->in.data = x;
    x->wr.data = x;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&x->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&x->err}};
    if (x->has_in)
        stdio[0] = (uv_stdio_container_t){.flags = UV_CREATE_PIPE | UV_READABLE_PIPE,
                                          .data.stream = (uv_stream_t *)&x->in};
    uv_process_options_t o = {.exit_cb = on_exit_cb,
                              .file = argv[0],
                              .args = argv,
                              .env = env,
                              .cwd = cwd,
                              .flags = UV_PROCESS_DETACHED, /* setsid: its own group */
                              .stdio_count = 3,
                              .stdio = stdio};
    static int once;
    if (!once) {
        once = 1;
        atexit(at_exit);
        struct sigaction sa;
        /* a child that exits without reading its stdin must not kill us */
        if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
            signal(SIGPIPE, SIG_IGN);
    }
    cloexec_all();
    x->start = uv_hrtime();
    int rc = uv_spawn(ms_check_loop, &x->proc, &o);
    free(argv);
    free(env);
    x->gnext = live;
    if (live) live->gprev = x;
    live = x;
    if (rc != 0) {
        n_err++;
        x->exited = 1; /* nothing to reap */
        release(x);
        *box = NULL;
        const char *what = rc == UV_ENOENT   ? "not found: give its full path, or check PATH "
                                               "(and cwd for a relative path)"
                           : rc == UV_EACCES ? "permission denied: it must be a file that "
                                               "moonstat's user may execute"
                           : rc == -ENOEXEC  ? "not an executable format: a script needs a #! line"
                                             : uv_strerror(rc);
        return fail(L, "exec %s: %s (%s)", x->name, what, uv_err_name(rc));
    }
    running++;
    x->pid = x->proc.pid;
    x->o.open = x->e.open = 1;
    uv_read_start((uv_stream_t *)&x->out, alloc_cb, on_read);
    uv_read_start((uv_stream_t *)&x->err, alloc_cb, on_read);
    if (x->has_in) {
        x->in_open = 1;
        uv_buf_t b = uv_buf_init(x->in_data, (unsigned)in_len);
        if (in_len == 0 || uv_write(&x->wr, (uv_stream_t *)&x->in, &b, 1, on_written) != 0) {
            x->in_open = 0;
            close_h((uv_handle_t *)&x->in);
        }
    }
    /* the loop's clock may lag (it is read once per turn): a timeout cut to
     * the run's deadline must not fire before that deadline */
    uv_update_time(ms_check_loop);
    uv_timer_start(&x->timer, on_timer, (uint64_t)(x->timeout * 1000) + 1, 0);
    x->waiting = 1;
    ms_check_io_add(c, &x->io);
    x->L = ms_lua_state(c->lua);
    x->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the userdata, while the call waits */
    return ms_check_io_yield(L);
}

void ms_check_exec_open(lua_State *L)
{
    static int registered;
    if (!registered) registered = ms_stats_register(stats_provider, NULL) == MS_OK;
    if (luaL_newmetatable(L, EXEC_MT)) {
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_exec);
    lua_setfield(L, -2, "exec");
}
