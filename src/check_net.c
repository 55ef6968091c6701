/*
 * check_net.c - the cosocket side of the checks' I/O API: ms.tcp, ms.unix
 * and ms.udp objects whose connect, send and receive yield the check's run
 * coroutine and are resumed from libuv callbacks, each with a timeout no
 * longer than what is left of the run; ms.json (Debian's lua-cjson, loaded
 * from the system Lua 5.1 C path) and ms.monotime. The list of a check's
 * open I/O objects, closed when its run ends, lives here too.
 *
 * A socket is malloc'd (libuv owns it until its handles are closed); the Lua
 * userdata holds a pointer to it, which close() clears. While an operation
 * is pending the userdata is anchored in the registry so the collector
 * cannot take it from under the yielded run.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <uv.h>

#include "check_int.h"
#include "ms_stats.h"

#define SOCK_MT      "moonstat.socket"
#define MAX_IN       (16u << 20) /* bytes a socket buffers before a receive fails */
#define DFLT_TIMEOUT 5.0

enum { K_TCP, K_UNIX, K_UDP };
enum { OP_NONE, OP_CONNECT, OP_SEND, OP_RECV };
enum { R_LINE, R_BYTES, R_ALL };

typedef struct sock {
    ms_check_io io;
    int kind;
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_udp_t udp;
    } h;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    uv_write_t wr;
    uv_udp_send_t us;
    int refs;   /* open handles + requests in flight; freed at 0 */
    int closed; /* close() was called: callbacks only drop their reference */
    int open;   /* the handle was initialised */
    int op, mode, eof, ref, gai_pending;
    size_t want;
    double timeout; /* s per operation */
    int port;
    char *in; /* received, not yet returned: in[0..inlen) */
    size_t inlen, incap;
    char *out; /* the copy being sent */
    char peer[300];
} sock;

/* ---- the check's I/O list and its counters ---- */

static uint64_t counts[IO_NCOUNT];
static int64_t open_io; /* sockets and requests open now, all checks */

void ms_check_io_count(int what)
{
    if (what >= 0 && what < IO_NCOUNT) counts[what]++;
}

const char *ms_check_unknown_option(lua_State *L, int t, const char *const *known)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(k, known[i]);
        if (!ok) {
            lua_pop(L, 1);
            return k;
        }
    }
    return NULL;
}

/* moonstat_check_io_*: HTTP requests and socket connects by result, I/O
 * operations that timed out, and the sockets and requests open now. */
static void stats_provider(ms_batch *b, double now, void *ud)
{
    (void)ud;
    static const char *const http_ok[] = {"api", "http", "result", "ok", NULL};
    static const char *const http_err[] = {"api", "http", "result", "error", NULL};
    static const char *const conn_ok[] = {"api", "socket", "result", "ok", NULL};
    static const char *const conn_err[] = {"api", "socket", "result", "error", NULL};
    ms_stats_add(b, "moonstat_check_io_requests_total", MS_KIND_COUNTER, (double)counts[IO_HTTP_OK],
                 now, http_ok);
    ms_stats_add(b, "moonstat_check_io_requests_total", MS_KIND_COUNTER,
                 (double)counts[IO_HTTP_ERR], now, http_err);
    ms_stats_add(b, "moonstat_check_io_requests_total", MS_KIND_COUNTER, (double)counts[IO_CONN_OK],
                 now, conn_ok);
    ms_stats_add(b, "moonstat_check_io_requests_total", MS_KIND_COUNTER,
                 (double)counts[IO_CONN_ERR], now, conn_err);
    ms_stats_add(b, "moonstat_check_io_timeouts_total", MS_KIND_COUNTER, (double)counts[IO_TIMEOUT],
                 now, NULL);
    ms_stats_add(b, "moonstat_check_io_open", MS_KIND_GAUGE, (double)open_io, now, NULL);
}

void ms_check_io_add(ms_check *c, ms_check_io *io)
{
    open_io++;
    io->c = c;
    io->prev = NULL;
    io->next = c->io;
    if (c->io) c->io->prev = io;
    c->io = io;
}

void ms_check_io_del(ms_check_io *io)
{
    if (!io->c) return;
    open_io--;
    if (io->prev)
        io->prev->next = io->next;
    else
        io->c->io = io->next;
    if (io->next) io->next->prev = io->prev;
    io->prev = io->next = NULL;
    io->c = NULL;
    if (io->box) *io->box = NULL;
    io->box = NULL;
}

void ms_check_io_close_all(ms_check *c)
{
    while (c->io) c->io->close(c->io);
}

/* ---- sockets ---- */

static void sock_unref(sock *s)
{
    if (--s->refs > 0) return;
    free(s->in);
    free(s->out);
    free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    sock_unref(h->data);
}

/* Stop everything and let go: the memory goes with the last callback. */
static void sock_close(ms_check_io *io)
{
    sock *s = (sock *)io;
    if (s->closed) return;
    s->closed = 1;
    s->op = OP_NONE;
    ms_check_io_del(io);
    if (s->gai_pending) uv_cancel((uv_req_t *)&s->gai);
    if (s->open) uv_close(&s->h.h, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

static const char *kind_name(const sock *s)
{
    return s->kind == K_TCP ? "tcp" : s->kind == K_UNIX ? "unix" : "udp";
}

/* The pending operation is over: results are on c->co; resume the run. */
static void op_finish(sock *s, int nres)
{
    ms_check *c = s->io.c;
    lua_State *co = c->co;
    s->op = OP_NONE;
    uv_timer_stop(&s->timer);
    if (s->open && s->kind == K_UDP)
        uv_udp_recv_stop(&s->h.udp);
    else if (s->open)
        uv_read_stop(&s->h.s);
    luaL_unref(co, LUA_REGISTRYINDEX, s->ref);
    s->ref = LUA_NOREF;
    ms_check_io_resume(c, nres);
}

/* nil, "<what> <peer>: <message>" and resume. */
static void op_fail(sock *s, const char *what, const char *msg)
{
    lua_State *co = s->io.c->co;
    lua_pushnil(co);
    lua_pushfstring(co, "%s %s %s: %s", kind_name(s), what, s->peer, msg);
    op_finish(s, 2);
}

static void op_fail_uv(sock *s, const char *what, int err)
{
    char m[200];
    snprintf(m, sizeof m, "%s (%s)", uv_strerror(err), uv_err_name(err));
    op_fail(s, what, m);
}

static const char *op_name(int op)
{
    return op == OP_CONNECT ? "connect to" : op == OP_SEND ? "send to" : "receive from";
}

static void on_timeout(uv_timer_t *t)
{
    sock *s = t->data;
    if (s->closed || s->op == OP_NONE) return;
    char m[100];
    snprintf(m, sizeof m, "timed out after %.3gs", s->timeout);
    ms_check_io_count(IO_TIMEOUT);
    if (s->op == OP_CONNECT) ms_check_io_count(IO_CONN_ERR);
    if (s->op == OP_CONNECT) {
        /* the handle is unusable after a cancelled connect: close it */
        lua_State *co = s->io.c->co;
        lua_pushnil(co);
        lua_pushfstring(co, "%s connect to %s: %s", kind_name(s), s->peer, m);
        ms_check *c = s->io.c;
        s->op = OP_NONE;
        luaL_unref(co, LUA_REGISTRYINDEX, s->ref);
        s->ref = LUA_NOREF;
        sock_close(&s->io);
        ms_check_io_resume(c, 2);
        return;
    }
    op_fail(s, op_name(s->op), m);
}

/* Arm the operation's timer: the socket's timeout, cut to the run's budget. */
static void op_start(sock *s, lua_State *L, int op, int self)
{
    double t = s->timeout;
    double left = ms_check_io_budget(s->io.c);
    if (left < t) t = left;
    s->op = op;
    lua_pushvalue(L, self);
    s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    uv_timer_start(&s->timer, on_timeout, (uint64_t)(t * 1000) + 1, 0);
}

static void on_connect(uv_connect_t *r, int status)
{
    sock *s = r->data;
    if (s->closed || s->op != OP_CONNECT) {
        sock_unref(s);
        return;
    }
    sock_unref(s);
    ms_check_io_count(status < 0 ? IO_CONN_ERR : IO_CONN_OK);
    if (status < 0) {
        lua_State *co = s->io.c->co;
        ms_check *c = s->io.c;
        lua_pushnil(co);
        lua_pushfstring(co, "%s connect to %s: %s (%s)", kind_name(s), s->peer, uv_strerror(status),
                        uv_err_name(status));
        s->op = OP_NONE;
        luaL_unref(co, LUA_REGISTRYINDEX, s->ref);
        s->ref = LUA_NOREF;
        sock_close(&s->io);
        ms_check_io_resume(c, 2);
        return;
    }
    lua_rawgeti(s->io.c->co, LUA_REGISTRYINDEX, s->ref); /* the socket */
    op_finish(s, 1);
}

/* Start connecting to addr (the op is already OP_CONNECT). */
static void connect_addr(sock *s, const struct sockaddr *addr)
{
    int rc;
    s->conn.data = s;
    if (s->kind == K_UDP) {
        rc = uv_udp_connect(&s->h.udp, addr);
        ms_check_io_count(rc == 0 ? IO_CONN_OK : IO_CONN_ERR);
        if (rc == 0) {
            lua_rawgeti(s->io.c->co, LUA_REGISTRYINDEX, s->ref);
            op_finish(s, 1);
            return;
        }
    } else {
        rc = uv_tcp_connect(&s->conn, &s->h.tcp, addr, on_connect);
        if (rc == 0) {
            s->refs++;
            return;
        }
        ms_check_io_count(IO_CONN_ERR);
    }
    op_fail_uv(s, "connect to", rc);
}

static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *res)
{
    sock *s = r->data;
    s->gai_pending = 0;
    if (s->closed || s->op != OP_CONNECT) {
        uv_freeaddrinfo(res);
        sock_unref(s);
        return;
    }
    sock_unref(s);
    if (status < 0 || !res) {
        ms_check_io_count(IO_CONN_ERR);
        uv_freeaddrinfo(res);
        op_fail(s, "connect to", status < 0 ? uv_strerror(status) : "no address");
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    if (s->kind == K_UDP) {
        int rc = uv_udp_init_ex(ms_check_loop, &s->h.udp, ss.ss_family);
        if (rc < 0) {
            op_fail_uv(s, "connect to", rc);
            return;
        }
        s->h.h.data = s;
        s->open = 1;
        s->refs++;
    }
    connect_addr(s, (struct sockaddr *)&ss);
}

/* ms.tcp(host, port [, opts]) / ms.udp(...) / ms.unix(path [, opts]) ->
 * socket | nil, err. opts.timeout: seconds per operation (default 5). */
static int sock_open(lua_State *L, int kind)
{
    const char *why;
    ms_check *c = ms_check_io_owner(L, &why);
    if (!c) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    const char *host = luaL_checkstring(L, 1);
    int port = kind == K_UNIX ? 0 : (int)luaL_checkinteger(L, 2);
    int oi = kind == K_UNIX ? 2 : 3;
    double timeout = DFLT_TIMEOUT;
    if (lua_istable(L, oi)) {
        lua_getfield(L, oi, "timeout");
        if (lua_isnumber(L, -1)) timeout = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    if (kind != K_UNIX && (port <= 0 || port > 65535)) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: port must be 1-65535, got %d", kind == K_TCP ? "tcp" : "udp", port);
        return 2;
    }
    sock *s = calloc(1, sizeof *s);
    void **box = lua_newuserdata(L, sizeof(void *));
    *box = s;
    if (!s) return luaL_error(L, "out of memory");
    luaL_getmetatable(L, SOCK_MT);
    lua_setmetatable(L, -2);
    int self = lua_gettop(L);
    s->kind = kind;
    s->port = port;
    s->ref = LUA_NOREF;
    s->timeout = timeout > 0 ? timeout : DFLT_TIMEOUT;
    s->io.close = sock_close;
    s->io.box = box;
    if (kind == K_UNIX)
        snprintf(s->peer, sizeof s->peer, "%s", host);
    else
        snprintf(s->peer, sizeof s->peer, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    uv_timer_init(ms_check_loop, &s->timer);
    s->timer.data = s;
    s->refs = 1;
    ms_check_io_add(c, &s->io);
    op_start(s, L, OP_CONNECT, self);
    if (kind == K_UNIX) {
        uv_pipe_init(ms_check_loop, &s->h.pipe, 0);
        s->h.h.data = s;
        s->open = 1;
        s->refs++;
        s->conn.data = s;
        uv_pipe_connect(&s->conn, &s->h.pipe, host, on_connect);
        s->refs++;
        return ms_check_io_yield(L);
    }
    struct sockaddr_storage ss;
    int numeric = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
                  uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0;
    if (kind == K_TCP) {
        uv_tcp_init(ms_check_loop, &s->h.tcp);
        s->h.h.data = s;
        s->open = 1;
        s->refs++;
    } else if (numeric) {
        uv_udp_init_ex(ms_check_loop, &s->h.udp, ss.ss_family);
        s->h.h.data = s;
        s->open = 1;
        s->refs++;
    }
    if (numeric) {
        /* connect_addr may finish at once (udp): it must not resume a run
         * that has not yielded yet, so defer through the resolver path */
        if (kind == K_TCP) {
            connect_addr(s, (struct sockaddr *)&ss);
            if (s->op == OP_CONNECT) return ms_check_io_yield(L);
            /* failed at once: results are on L already, nothing to resume */
            c->io_wait = 0;
            return 2;
        }
        int rc = uv_udp_connect(&s->h.udp, (struct sockaddr *)&ss);
        ms_check_io_count(rc == 0 ? IO_CONN_OK : IO_CONN_ERR);
        s->op = OP_NONE;
        uv_timer_stop(&s->timer);
        luaL_unref(L, LUA_REGISTRYINDEX, s->ref);
        s->ref = LUA_NOREF;
        if (rc < 0) {
            sock_close(&s->io);
            lua_pushnil(L);
            lua_pushfstring(L, "udp connect to %s: %s (%s)", s->peer, uv_strerror(rc),
                            uv_err_name(rc));
            return 2;
        }
        lua_pushvalue(L, self);
        return 1;
    }
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {0};
    hints.ai_socktype = kind == K_TCP ? SOCK_STREAM : SOCK_DGRAM;
    s->gai.data = s;
    int rc = uv_getaddrinfo(ms_check_loop, &s->gai, on_resolved, host, portstr, &hints);
    if (rc < 0) {
        s->op = OP_NONE;
        uv_timer_stop(&s->timer);
        luaL_unref(L, LUA_REGISTRYINDEX, s->ref);
        s->ref = LUA_NOREF;
        sock_close(&s->io);
        lua_pushnil(L);
        lua_pushfstring(L, "%s connect to %s: %s", kind_name(s), s->peer, uv_strerror(rc));
        return 2;
    }
    s->refs++;
    s->gai_pending = 1;
    return ms_check_io_yield(L);
}

static int l_tcp(lua_State *L)
{
    return sock_open(L, K_TCP);
}

static int l_unix(lua_State *L)
{
    return sock_open(L, K_UNIX);
}

static int l_udp(lua_State *L)
{
    return sock_open(L, K_UDP);
}

/* The socket of a method call, or an error pushed (returns NULL). */
static sock *check_sock(lua_State *L, ms_check **c, int *nret)
{
    void **box = luaL_checkudata(L, 1, SOCK_MT);
    sock *s = *box;
    const char *why = NULL;
    *c = NULL;
    if (!s)
        why = "socket is closed (sockets live for one run of the check)";
    else if (s->op != OP_NONE)
        why = "socket is busy with another operation";
    else if (!(*c = ms_check_io_owner(L, &why)))
        s = NULL;
    else if (s->io.c != *c)
        why = "socket belongs to another run";
    if (why) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        *nret = 2;
        return NULL;
    }
    return s;
}

/* Try to satisfy the pending receive from the buffer; pushes results and
 * returns their count, or 0 when more data is needed. */
static int take(sock *s, lua_State *L)
{
    if (s->mode == R_LINE) {
        char *nl = s->inlen ? memchr(s->in, '\n', s->inlen) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - s->in), skip = n + 1;
            if (n > 0 && s->in[n - 1] == '\r') n--;
            lua_pushlstring(L, s->in, n);
            memmove(s->in, s->in + skip, s->inlen - skip);
            s->inlen -= skip;
            return 1;
        }
    } else if (s->mode == R_BYTES) {
        if (s->inlen >= s->want) {
            lua_pushlstring(L, s->in, s->want);
            memmove(s->in, s->in + s->want, s->inlen - s->want);
            s->inlen -= s->want;
            return 1;
        }
    }
    if (s->eof) {
        if (s->mode == R_ALL) {
            lua_pushlstring(L, s->in ? s->in : "", s->inlen);
            s->inlen = 0;
            return 1;
        }
        lua_pushnil(L);
        lua_pushfstring(L, "%s receive from %s: connection closed by the peer", kind_name(s),
                        s->peer);
        lua_pushlstring(L, s->in ? s->in : "", s->inlen); /* the partial data */
        s->inlen = 0;
        return 3;
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    sock *s = h->data;
    (void)hint;
    if (s->incap - s->inlen < 65536 && s->incap < MAX_IN + 65536) {
        size_t cap = s->incap ? s->incap * 2 : 65536;
        while (cap - s->inlen < 65536) cap *= 2;
        char *p = realloc(s->in, cap);
        if (p) {
            s->in = p;
            s->incap = cap;
        }
    }
    b->base = s->in ? s->in + s->inlen : NULL;
    b->len = s->in ? s->incap - s->inlen : 0;
}

static void got_data(sock *s, ssize_t n)
{
    if (s->closed || s->op != OP_RECV) return;
    if (n < 0) {
        if (n != UV_EOF) {
            op_fail_uv(s, "receive from", (int)n);
            return;
        }
        s->eof = 1;
    } else {
        s->inlen += (size_t)n;
    }
    int nres = take(s, s->io.c->co);
    if (nres)
        op_finish(s, nres);
    else if (s->inlen >= MAX_IN)
        op_fail(s, "receive from", "more than 16 MiB without an answer");
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n == 0) return;
    got_data(st->data, n);
}

static void on_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *a,
                    unsigned flags)
{
    sock *s = u->data;
    (void)b;
    (void)flags;
    if (s->closed || s->op != OP_RECV || (n == 0 && !a)) return;
    if (n < 0) {
        op_fail_uv(s, "receive from", (int)n);
        return;
    }
    lua_State *co = s->io.c->co;
    lua_pushlstring(co, s->in, (size_t)n); /* one datagram */
    op_finish(s, 1);
}

/* sock:receive(pattern) -> data | nil, err [, partial]. pattern: "*l" a
 * line (without \r\n, the default), a number of bytes, "*a" until the peer
 * closes. udp: one datagram. */
static int l_receive(lua_State *L)
{
    ms_check *c;
    int nret;
    sock *s = check_sock(L, &c, &nret);
    if (!s) return nret;
    if (lua_isnumber(L, 2)) {
        lua_Number n = lua_tonumber(L, 2);
        if (n < 0 || n > MAX_IN) return luaL_argerror(L, 2, "byte count must be 0..16 MiB");
        s->mode = R_BYTES;
        s->want = (size_t)n;
    } else {
        const char *p = luaL_optstring(L, 2, "*l");
        if (!strcmp(p, "*l") || !strcmp(p, "l"))
            s->mode = R_LINE;
        else if (!strcmp(p, "*a") || !strcmp(p, "a"))
            s->mode = R_ALL;
        else
            return luaL_argerror(L, 2, "expected '*l', '*a' or a number of bytes");
    }
    if (s->kind != K_UDP) {
        int n = take(s, L);
        if (n) return n;
    }
    op_start(s, L, OP_RECV, 1);
    int rc = s->kind == K_UDP ? uv_udp_recv_start(&s->h.udp, on_alloc, on_recv)
                              : uv_read_start(&s->h.s, on_alloc, on_read);
    if (rc < 0 && rc != UV_EALREADY) {
        s->op = OP_NONE;
        uv_timer_stop(&s->timer);
        luaL_unref(L, LUA_REGISTRYINDEX, s->ref);
        lua_pushnil(L);
        lua_pushfstring(L, "%s receive from %s: %s", kind_name(s), s->peer, uv_strerror(rc));
        return 2;
    }
    return ms_check_io_yield(L);
}

static void on_written(sock *s, int status)
{
    free(s->out);
    s->out = NULL;
    if (s->closed || s->op != OP_SEND) {
        sock_unref(s);
        return;
    }
    sock_unref(s);
    if (status < 0) {
        op_fail_uv(s, "send to", status);
        return;
    }
    lua_pushboolean(s->io.c->co, 1);
    op_finish(s, 1);
}

static void on_write(uv_write_t *w, int status)
{
    on_written(w->data, status);
}

static void on_send(uv_udp_send_t *w, int status)
{
    on_written(w->data, status);
}

/* sock:send(data) -> true | nil, err (all of data, or an error). */
static int l_send(lua_State *L)
{
    ms_check *c;
    int nret;
    sock *s = check_sock(L, &c, &nret);
    if (!s) return nret;
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    s->out = malloc(len ? len : 1);
    if (!s->out) return luaL_error(L, "out of memory");
    memcpy(s->out, data, len);
    uv_buf_t b = uv_buf_init(s->out, (unsigned)len);
    op_start(s, L, OP_SEND, 1);
    s->wr.data = s->us.data = s;
    int rc = s->kind == K_UDP ? uv_udp_send(&s->us, &s->h.udp, &b, 1, NULL, on_send)
                              : uv_write(&s->wr, &s->h.s, &b, 1, on_write);
    if (rc < 0) {
        s->op = OP_NONE;
        uv_timer_stop(&s->timer);
        luaL_unref(L, LUA_REGISTRYINDEX, s->ref);
        free(s->out);
        s->out = NULL;
        lua_pushnil(L);
        lua_pushfstring(L, "%s send to %s: %s (%s)", kind_name(s), s->peer, uv_strerror(rc),
                        uv_err_name(rc));
        return 2;
    }
    s->refs++;
    return ms_check_io_yield(L);
}

/* sock:settimeout(seconds): the timeout of each later operation. */
static int l_settimeout(lua_State *L)
{
    void **box = luaL_checkudata(L, 1, SOCK_MT);
    double t = luaL_checknumber(L, 2);
    if (*box && t > 0) ((sock *)*box)->timeout = t;
    return 0;
}

/* sock:close() (also on __gc, and for every socket when the run ends). */
static int l_close(lua_State *L)
{
    void **box = luaL_checkudata(L, 1, SOCK_MT);
    if (*box) sock_close(&((sock *)*box)->io);
    *box = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    void **box = luaL_checkudata(L, 1, SOCK_MT);
    sock *s = *box;
    if (s)
        lua_pushfstring(L, "%s socket %s", kind_name(s), s->peer);
    else
        lua_pushstring(L, "socket (closed)");
    return 1;
}

static int l_monotime(lua_State *L)
{
    lua_pushnumber(L, (double)uv_hrtime() / 1e9);
    return 1;
}

/* ---- ms.json: lua-cjson, from the system Lua 5.1 C module directory ---- */

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#elif defined(__arm__)
#define MULTIARCH "arm-linux-gnueabihf"
#else
#define MULTIARCH "unknown"
#endif
#define CJSON_CPATH                                                                                \
    "/usr/lib/" MULTIARCH "/lua/5.1/?.so;/usr/local/lib/lua/5.1/?.so;/usr/lib/lua/5.1/?.so"

static int l_json_missing(lua_State *L)
{
    lua_pushnil(L);
    lua_pushstring(L, "ms.json needs lua-cjson for LuaJIT/Lua 5.1 (Debian: apt-get install "
                      "lua-cjson), not found in " CJSON_CPATH);
    return 2;
}

/* cjson.safe (decode/encode return nil, err instead of raising), loaded into
 * L on first use and kept in the registry: most checks never touch JSON, and
 * each loaded copy costs the state ~12 KiB. Only for this require is
 * package.cpath the system's Lua 5.1 directory. Leaves the module (or nil) at -1. */
static void push_cjson(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "moonstat.cjson");
    if (!lua_isnil(L, -1)) return;
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushstring(L, CJSON_CPATH);
    lua_setfield(L, -2, "cpath");
    lua_getglobal(L, "require");
    lua_pushstring(L, "cjson.safe");
    int ok = lua_pcall(L, 1, 1, 0) == 0 && lua_istable(L, -1);
    lua_pushstring(L, "");
    lua_setfield(L, -3, "cpath");
    lua_remove(L, -2); /* package */
    if (!ok) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return;
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "moonstat.cjson");
}

/* ms.json.decode / ms.json.encode: forward to cjson.safe's function of the
 * same name (upvalue 1), or nil, err when lua-cjson is not installed. */
static int l_json_call(lua_State *L)
{
    int nargs = lua_gettop(L);
    push_cjson(L);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return l_json_missing(L);
    }
    lua_getfield(L, -1, lua_tostring(L, lua_upvalueindex(1)));
    lua_remove(L, -2);
    lua_insert(L, 1);
    lua_call(L, nargs, LUA_MULTRET);
    return lua_gettop(L);
}

static void open_json(lua_State *L)
{
    lua_newtable(L);
    lua_pushstring(L, "decode");
    lua_pushcclosure(L, l_json_call, 1);
    lua_setfield(L, -2, "decode");
    lua_pushstring(L, "encode");
    lua_pushcclosure(L, l_json_call, 1);
    lua_setfield(L, -2, "encode");
    lua_setfield(L, -2, "json"); /* ms.json */
}

void ms_check_net_open(lua_State *L)
{
    static int registered;
    if (!registered) registered = ms_stats_register(stats_provider, NULL) == MS_OK;
    static const luaL_Reg methods[] = {{"send", l_send},
                                       {"receive", l_receive},
                                       {"settimeout", l_settimeout},
                                       {"close", l_close},
                                       {NULL, NULL}};
    if (luaL_newmetatable(L, SOCK_MT)) {
        lua_newtable(L);
        luaL_register(L, NULL, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_tcp);
    lua_setfield(L, -2, "tcp");
    lua_pushcfunction(L, l_unix);
    lua_setfield(L, -2, "unix");
    lua_pushcfunction(L, l_udp);
    lua_setfield(L, -2, "udp");
    lua_pushcfunction(L, l_monotime);
    lua_setfield(L, -2, "monotime");
    open_json(L);
}
