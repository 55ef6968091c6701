/*
 * check_fs.c - ms.statvfs(path [, timeout]) for checks: the file system's
 * size and inode counts.
 *
 * Without a timeout the call is made right away: a local file system
 * answers from memory. statvfs(3) on a network or FUSE file system can block
 * for minutes (its server is gone), so with a timeout it runs on a thread of
 * its own while the check's run waits, as for the network API: the run
 * yields and is resumed with the answer, or with an error when the call
 * takes longer than the timeout (never past the run's deadline).
 *
 * Why a detached thread per call and not libuv's pool: a call stuck in the
 * kernel must not hold anything the loop waits for. The pool's work
 * requests keep the loop alive, so a hung NFS server would stop moonstat
 * from exiting; and the pool would start its threads on hosts that never
 * need them. Here a finished thread puts its request on the `done` list and
 * wakes the loop through an eventfd watched by an unreferenced uv_poll
 * handle (the fd stays open for the life of the process, so a thread that
 * finishes late writes to a valid fd even after the loop is gone). A stuck
 * thread ends with the process. At most MAX_PENDING calls are on threads at
 * once, and a path whose previous call has not returned yet is refused at
 * once, so hung mounts cannot pile up threads.
 *
 * A request is malloc'd and referenced by its thread and by its timer
 * handle; it is freed when both are done. The Lua userdata that anchors it
 * while the run waits closes it when collected (so freeing the check's
 * state detaches it).
 */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lauxlib.h>
#include <uv.h>

#include "check_int.h"

#define FS_MT        "moonstat.statvfs"
#define DFLT_TIMEOUT 5.0 /* s, for a timeout <= 0 */
#define MAX_PENDING  16  /* calls on threads at once, all checks */

typedef struct fsreq {
    ms_check_io io;
    uv_timer_t timer;
    struct fsreq *pnext; /* in `pending` until the loop saw its thread finish */
    struct fsreq *dnext; /* in `done` (under `mu`) */
    lua_State *L;        /* the check's main state (for the registry) */
    int refs;            /* thread + timer handle; freed at 0 (loop thread only) */
    int detached;        /* answered or closed: nothing more goes to the run */
    int ref;             /* registry anchor of the userdata while the run waits */
    int rc, err;         /* set by the thread */
    double timeout;      /* s, as waited (cut to the run's budget) */
    struct statvfs st;
    char path[];
} fsreq;

static fsreq *pending; /* loop thread only */
static int npending;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static fsreq *done;  /* finished threads' requests, under mu */
static int efd = -1; /* threads -> loop */
static uv_poll_t done_poll;
static int poll_started;

static void fs_unref(fsreq *r)
{
    if (--r->refs == 0) free(r);
}

static void on_timer_closed(uv_handle_t *h)
{
    fs_unref(h->data);
}

/* Stop waiting: unlink from the check, drop the anchor, close the timer.
 * The request itself lives on until its thread is done. */
static void fs_detach(fsreq *r, int drop_ref)
{
    if (r->detached) return;
    r->detached = 1;
    ms_check_io_del(&r->io);
    if (drop_ref && r->ref != LUA_NOREF) luaL_unref(r->L, LUA_REGISTRYINDEX, r->ref);
    r->ref = LUA_NOREF;
    if (!uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, on_timer_closed);
    else
        fs_unref(r); /* closed by a loop-wide walk: its callback is not ours */
}

/* ms_check_io close: the run ended while waiting. */
static void fs_close(ms_check_io *io)
{
    fs_detach((fsreq *)io, 1);
}

/* __gc of the anchoring userdata: the state is going away. */
static int l_gc(lua_State *L)
{
    void **box = luaL_checkudata(L, 1, FS_MT);
    fsreq *r = *box;
    if (r) {
        r->ref = LUA_NOREF; /* the registry goes with the state */
        fs_detach(r, 0);
    }
    *box = NULL;
    return 0;
}

static void push_number_field(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

/* Push statvfs's answer on L: a table of the fields (see docs/checks.md)
 * and nil, or nil and "statvfs <path>: <reason>". Returns 2. */
static int push_result(lua_State *L, const char *path, int rc, int err, const struct statvfs *s)
{
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "statvfs %s: %s", path, strerror(err));
        return 2;
    }
    lua_createtable(L, 0, 12);
    push_number_field(L, "bsize", (double)s->f_bsize);
    push_number_field(L, "frsize", (double)s->f_frsize);
    push_number_field(L, "blocks", (double)s->f_blocks);
    push_number_field(L, "bfree", (double)s->f_bfree);
    push_number_field(L, "bavail", (double)s->f_bavail);
    push_number_field(L, "files", (double)s->f_files);
    push_number_field(L, "ffree", (double)s->f_ffree);
    push_number_field(L, "favail", (double)s->f_favail);
    push_number_field(L, "fsid", (double)s->f_fsid);
    push_number_field(L, "flag", (double)s->f_flag);
    push_number_field(L, "namemax", (double)s->f_namemax);
    lua_pushboolean(L, (s->f_flag & ST_RDONLY) != 0);
    lua_setfield(L, -2, "readonly");
    lua_pushnil(L);
    return 2;
}

/* Push the answer on the waiting run and resume it. */
static void fs_answer(fsreq *r, int timed_out)
{
    ms_check *c = r->io.c;
    lua_State *co = c->co;
    fs_detach(r, 1);
    if (timed_out) {
        char t[32];
        snprintf(t, sizeof t, "%.3g", r->timeout);
        ms_check_io_count(IO_TIMEOUT);
        lua_pushnil(co);
        lua_pushfstring(co, "statvfs %s: timed out after %s s (a hung network file system?)",
                        r->path, t);
    } else {
        push_result(co, r->path, r->rc, r->err, &r->st);
    }
    ms_check_io_resume(c, 2);
}

/* The call's own thread: the call that may block, then the hand-back. */
static void *fs_thread(void *arg)
{
    fsreq *r = arg;
    r->rc = statvfs(r->path, &r->st);
    r->err = r->rc ? errno : 0;
    pthread_mutex_lock(&mu);
    r->dnext = done;
    done = r;
    pthread_mutex_unlock(&mu);
    uint64_t one = 1;
    ssize_t n = write(efd, &one, sizeof one);
    (void)n; /* a full counter (never) still leaves the fd readable */
    return NULL;
}

/* On the loop: answer the runs whose calls finished, forget the calls. */
static void on_done(uv_poll_t *h, int status, int events)
{
    (void)h, (void)status, (void)events;
    uint64_t v;
    ssize_t n = read(efd, &v, sizeof v);
    (void)n;
    pthread_mutex_lock(&mu);
    fsreq *list = done;
    done = NULL;
    pthread_mutex_unlock(&mu);
    while (list) {
        fsreq *r = list;
        list = r->dnext;
        for (fsreq **p = &pending; *p; p = &(*p)->pnext) {
            if (*p == r) {
                *p = r->pnext;
                break;
            }
        }
        npending--;
        if (!r->detached) fs_answer(r, 0);
        fs_unref(r);
    }
}

/* The eventfd and its poll handle, made on first use; 0 or a -errno. */
static int start_notify(void)
{
    if (poll_started) return 0;
    if (efd < 0) efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) return -errno;
    int rc = uv_poll_init(ms_check_loop, &done_poll, efd);
    if (rc == 0) rc = uv_poll_start(&done_poll, UV_READABLE, on_done);
    if (rc != 0) return rc;
    uv_unref((uv_handle_t *)&done_poll); /* waiting threads do not keep the loop up */
    poll_started = 1;
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    fsreq *r = t->data;
    if (!r->detached) fs_answer(r, 1);
}

/* nil, "statvfs <path>: <why>" */
static int fail(lua_State *L, const char *path, const char *why)
{
    lua_pushnil(L);
    lua_pushfstring(L, "statvfs %s: %s", path, why);
    return 2;
}

/* ms.statvfs(path [, timeout]) -> table | nil, err. With a timeout it
 * yields the run until the call's thread answers; see the top of the file. */
static int l_statvfs(lua_State *L)
{
    const char *why;
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    if (lua_isnoneornil(L, 2)) {
        struct statvfs st;
        int rc = statvfs(path, &st);
        return push_result(L, path, rc, rc ? errno : 0, &st);
    }
    double timeout = luaL_checknumber(L, 2);
    ms_check *c = ms_check_io_owner(L, &why);
    if (!c) return fail(L, path, why);
    for (fsreq *p = pending; p; p = p->pnext)
        if (!strcmp(p->path, path))
            return fail(L, path,
                        "the previous call on this path has not returned yet (a hung network "
                        "file system?)");
    if (npending >= MAX_PENDING) {
        lua_pushnil(L);
        lua_pushfstring(L,
                        "statvfs %s: %d calls are still waiting for their file systems (hung "
                        "mounts?)",
                        path, MAX_PENDING);
        return 2;
    }
    int rc = start_notify();
    if (rc != 0) return fail(L, path, uv_strerror(rc));
    /* everything that may raise (Lua memory) first, while no thread runs */
    void **box = lua_newuserdata(L, sizeof(void *));
    *box = NULL;
    luaL_getmetatable(L, FS_MT);
    lua_setmetatable(L, -2);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    fsreq *r = calloc(1, sizeof *r + len + 1);
    if (!r) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "out of memory");
    }
    memcpy(r->path, path, len + 1);
    r->L = ms_lua_state(c->lua);
    double left = ms_check_io_budget(c);
    r->timeout = timeout > 0 ? timeout : DFLT_TIMEOUT;
    if (left < r->timeout) r->timeout = left;
    r->io.close = fs_close;
    r->io.box = box;
    r->timer.data = r;
    r->ref = ref;
    r->refs = 2;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &attr, fs_thread, r);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        free(r);
        return fail(L, path, strerror(rc));
    }
    *box = r;
    r->pnext = pending;
    pending = r;
    npending++;
    uv_timer_init(ms_check_loop, &r->timer);
    ms_check_io_add(c, &r->io);
    uv_timer_start(&r->timer, on_timeout, (uint64_t)(r->timeout * 1000) + 1, 0);
    return ms_check_io_yield(L);
}

void ms_check_fs_open(lua_State *L)
{
    if (luaL_newmetatable(L, FS_MT)) {
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_statvfs);
    lua_setfield(L, -2, "statvfs");
}
