/*
 * check_http.c - ms.http for checks: libcurl's multi interface driven by the
 * check loop (curl_multi_socket_action from uv_poll callbacks and one
 * uv_timer), so a request yields the check's run coroutine and the loop
 * serves everything else until the answer, an error or the timeout comes.
 *
 *   ms.http.request{ method, url, headers, body, timeout, user, password,
 *                    bearer, ca_file, cert, key, insecure, unix_socket,
 *                    max_body, follow, certinfo }
 *       -> status, headers, body, info | nil, err
 *          info = { time = seconds, cert_expires = unix seconds (certinfo) }
 *   ms.http.get(url [, opts])  ms.http.post(url, body [, opts])
 *
 * One multi handle serves every check; a request is an ms_check_io of its
 * check (closed, i.e. removed from the multi, when the run ends) with a Lua
 * userdata whose __gc closes it when the state goes.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <uv.h>

#include "check_int.h"

#define REQ_MT       "moonstat.http_request"
#define DFLT_TIMEOUT 10.0
#define DFLT_MAX     (8u << 20) /* response body bytes kept */

typedef struct req {
    ms_check_io io;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body, *head; /* received */
    size_t blen, bcap, hlen, hcap, max;
    int too_big, ref, certinfo;
    char method[16];
    char url[512];
    char errbuf[CURL_ERROR_SIZE];
} req;

typedef struct poll_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
} poll_ctx;

static CURLM *multi;
static uv_timer_t mtimer;
static uv_loop_t *mloop;

/* ---- the multi handle on the loop ---- */

static void check_done(void);

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    poll_ctx *pc = p->data;
    int flags = 0, running;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    uint64_t t0 = uv_hrtime();
    curl_multi_socket_action(multi, pc->fd, flags, &running);
    check_done();
    ms_check_turn_charge(uv_hrtime() - t0);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl wants. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *u, void *sockp)
{
    (void)e;
    (void)u;
    poll_ctx *pc = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (pc && uv_is_closing((uv_handle_t *)&pc->poll)) {
            curl_multi_assign(multi, fd, NULL); /* closed at shutdown (uv_walk) */
        } else if (pc) {
            uv_poll_stop(&pc->poll);
            uv_close((uv_handle_t *)&pc->poll, on_poll_closed);
            curl_multi_assign(multi, fd, NULL);
        }
        return 0;
    }
    if (pc && uv_is_closing((uv_handle_t *)&pc->poll)) return -1;
    if (!pc) {
        pc = calloc(1, sizeof *pc);
        if (!pc) return -1;
        pc->fd = fd;
        if (uv_poll_init_socket(mloop, &pc->poll, fd) != 0) {
            free(pc);
            return -1;
        }
        pc->poll.data = pc;
        curl_multi_assign(multi, fd, pc);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    uv_poll_start(&pc->poll, ev, on_poll);
    return 0;
}

static void on_mtimer(uv_timer_t *t)
{
    (void)t;
    int running;
    uint64_t t0 = uv_hrtime();
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
    ms_check_turn_charge(uv_hrtime() - t0); /* the transfers runs started: the queue waits */
}

/* CURLMOPT_TIMERFUNCTION: curl's next timeout, -1 none. */
static int on_timer(CURLM *m, long ms, void *u)
{
    (void)m;
    (void)u;
    if (uv_is_closing((uv_handle_t *)&mtimer)) return 0; /* shutting down */
    if (ms < 0)
        uv_timer_stop(&mtimer);
    else
        uv_timer_start(&mtimer, on_mtimer, (uint64_t)ms, 0);
    return 0;
}

/* The multi handle, made on first use. NULL when curl fails to start. */
static CURLM *get_multi(void)
{
    if (multi && mloop == ms_check_loop) return multi;
    if (multi) return NULL; /* another loop (not expected) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
    multi = curl_multi_init();
    if (!multi) return NULL;
    mloop = ms_check_loop;
    uv_timer_init(mloop, &mtimer);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
    return multi;
}

/* ---- requests ---- */

static void req_free(req *r)
{
    if (r->easy) {
        curl_multi_remove_handle(multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->hdrs);
    free(r->body);
    free(r->head);
    free(r);
}

/* Closing a request: out of the multi (no callback will see it again). */
static void req_close(ms_check_io *io)
{
    ms_check_io_del(io);
    req_free((req *)io);
}

static int grow(char **p, size_t *len, size_t *cap, const char *d, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1) c *= 2;
        char *q = realloc(*p, c);
        if (!q) return -1;
        *p = q;
        *cap = c;
    }
    memcpy(*p + *len, d, n);
    *len += n;
    (*p)[*len] = 0;
    return 0;
}

static size_t on_body(char *d, size_t sz, size_t n, void *u)
{
    req *r = u;
    size_t k = sz * n;
    if (r->blen + k > r->max) {
        r->too_big = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    return grow(&r->body, &r->blen, &r->bcap, d, k) ? 0 : k;
}

static size_t on_header(char *d, size_t sz, size_t n, void *u)
{
    req *r = u;
    size_t k = sz * n;
    if (k >= 5 && !memcmp(d, "HTTP/", 5)) r->hlen = 0; /* a new response (redirect, 100) */
    if (r->hlen + k > 1u << 20) return 0;
    return grow(&r->head, &r->hlen, &r->hcap, d, k) ? 0 : k;
}

/* Push the response headers as a table, names lower-cased; repeated names
 * are joined with ", ". */
static void push_headers(lua_State *L, req *r)
{
    lua_newtable(L);
    const char *p = r->head, *end = r->head ? r->head + r->hlen : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && memcmp(p, "HTTP/", 5) != 0) {
            char name[128];
            size_t nl = (size_t)(colon - p);
            if (nl >= sizeof name) nl = sizeof name - 1;
            for (size_t i = 0; i < nl; i++) name[i] = (char)tolower((unsigned char)p[i]);
            name[nl] = 0;
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
            lua_getfield(L, -1, name);
            if (lua_isstring(L, -1)) {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            }
            lua_setfield(L, -2, name);
        }
        p = eol + 1;
    }
}

/* The leaf certificate's "Expire date" as unix seconds, or -1. */
static double cert_expiry(CURL *e)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
        return -1;
    for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next) {
        if (strncmp(l->data, "Expire date:", 12) != 0) continue;
        struct tm tm = {0};
        const char *end = strptime(l->data + 12, "%b %d %H:%M:%S %Y", &tm);
        if (!end) return -1;
        return (double)timegm(&tm);
    }
    return -1;
}

/* The 4th result: { time = seconds, cert_expires = unix seconds (certinfo) }. */
static void push_info(lua_State *L, req *r)
{
    lua_createtable(L, 0, 2);
    double t = 0;
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &t);
    lua_pushnumber(L, t);
    lua_setfield(L, -2, "time");
    if (r->certinfo) {
        double x = cert_expiry(r->easy);
        if (x > 0) {
            lua_pushnumber(L, x);
            lua_setfield(L, -2, "cert_expires");
        }
    }
}

/* Hand finished transfers back to their runs. */
static void check_done(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (!r || !r->io.c) continue;
        ms_check *c = r->io.c;
        lua_State *co = c->co;
        CURLcode res = m->data.result;
        int nres;
        ms_check_io_count(res == CURLE_OK ? IO_HTTP_OK : IO_HTTP_ERR);
        if (res == CURLE_OPERATION_TIMEDOUT) ms_check_io_count(IO_TIMEOUT);
        if (res == CURLE_OK) {
            long status = 0;
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
            lua_pushinteger(co, status);
            push_headers(co, r);
            lua_pushlstring(co, r->body ? r->body : "", r->blen);
            push_info(co, r);
            nres = 4;
        } else {
            lua_pushnil(co);
            if (r->too_big)
                lua_pushfstring(co, "%s %s: response body larger than max_body (%d bytes)",
                                r->method, r->url, (int)r->max);
            else
                lua_pushfstring(co, "%s %s: %s", r->method, r->url,
                                r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
            nres = 2;
        }
        luaL_unref(co, LUA_REGISTRYINDEX, r->ref);
        req_close(&r->io); /* m is invalid from here */
        ms_check_io_resume(c, nres);
    }
}

static int l_req_gc(lua_State *L)
{
    void **box = luaL_checkudata(L, 1, REQ_MT);
    if (*box) req_close(*box);
    *box = NULL;
    return 0;
}

/* opts field k as a string, or NULL. */
static const char *opt_str(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays alive: it is in the opts table */
    return s;
}

static int fail(lua_State *L, const char *fmt, const char *a, const char *b)
{
    lua_pushnil(L);
    lua_pushfstring(L, fmt, a, b);
    return 2;
}

/* The options ms.http.request takes (see the file's header). */
static const char *const http_known[] = {
    "method",      "url",      "headers", "body",     "timeout", "user",
    "password",    "bearer",   "ca_file", "cert",     "key",     "insecure",
    "unix_socket", "max_body", "follow",  "certinfo", NULL};

/* The request in the table at index t (see the file's header). */
static int do_request(lua_State *L, int t)
{
    const char *why;
    ms_check *c = ms_check_io_owner(L, &why);
    if (!c) return fail(L, "%s%s", "ms.http: ", why);
    const char *bad = ms_check_unknown_option(L, t, http_known);
    if (bad) return fail(L, "ms.http: unknown option '%s'%s", bad, " (see docs/checks.md#mshttp)");
    const char *url = opt_str(L, t, "url");
    if (!url || !*url) return fail(L, "%s%s", "ms.http: ", "the request has no url");
    const char *method = opt_str(L, t, "method");
    if (!method) method = "GET";
    if (!get_multi()) return fail(L, "%s %s: cannot start libcurl", method, url);
    req *r = calloc(1, sizeof *r);
    void **box = lua_newuserdata(L, sizeof(void *));
    *box = r;
    if (!r) return luaL_error(L, "out of memory");
    luaL_getmetatable(L, REQ_MT);
    lua_setmetatable(L, -2);
    r->io.close = req_close;
    r->io.box = box;
    r->ref = LUA_NOREF;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->url, sizeof r->url, "%s", url);
    r->easy = curl_easy_init();
    if (!r->easy) {
        req_free(r);
        *box = NULL;
        return fail(L, "%s %s: cannot create a curl handle", method, url);
    }
    CURL *e = r->easy;
    lua_getfield(L, t, "max_body");
    r->max =
        lua_isnumber(L, -1) && lua_tonumber(L, -1) > 0 ? (size_t)lua_tonumber(L, -1) : DFLT_MAX;
    lua_getfield(L, t, "timeout");
    double timeout =
        lua_isnumber(L, -1) && lua_tonumber(L, -1) > 0 ? lua_tonumber(L, -1) : DFLT_TIMEOUT;
    lua_getfield(L, t, "insecure");
    int insecure = lua_toboolean(L, -1);
    lua_getfield(L, t, "follow");
    int follow = lua_toboolean(L, -1);
    lua_getfield(L, t, "certinfo");
    r->certinfo = lua_toboolean(L, -1);
    lua_pop(L, 5);
    double left = ms_check_io_budget(c);
    if (left < timeout) timeout = left;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000) + 1);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "moonstat/" MS_VERSION);
    if (r->certinfo) curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    if (follow) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    }
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    size_t blen = 0;
    lua_getfield(L, t, "body");
    const char *body = lua_isstring(L, -1) ? lua_tolstring(L, -1, &blen) : NULL;
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
        if (!strcmp(method, "GET")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
    }
    lua_pop(L, 1);
    const char *s;
    if ((s = opt_str(L, t, "user"))) {
        curl_easy_setopt(e, CURLOPT_USERNAME, s);
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
    if ((s = opt_str(L, t, "password"))) curl_easy_setopt(e, CURLOPT_PASSWORD, s);
    if ((s = opt_str(L, t, "ca_file"))) curl_easy_setopt(e, CURLOPT_CAINFO, s);
    if ((s = opt_str(L, t, "cert"))) curl_easy_setopt(e, CURLOPT_SSLCERT, s);
    if ((s = opt_str(L, t, "key"))) curl_easy_setopt(e, CURLOPT_SSLKEY, s);
    if ((s = opt_str(L, t, "unix_socket"))) curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, s);
    if (insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if ((s = opt_str(L, t, "bearer"))) {
        lua_pushfstring(L, "Authorization: Bearer %s", s);
        r->hdrs = curl_slist_append(r->hdrs, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_getfield(L, t, "headers");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
                lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
                r->hdrs = curl_slist_append(r->hdrs, lua_tostring(L, -1));
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (r->hdrs) curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    if (curl_multi_add_handle(multi, e) != CURLM_OK) {
        req_free(r);
        *box = NULL;
        return fail(L, "%s %s: libcurl refused the request", method, url);
    }
    ms_check_io_add(c, &r->io);
    r->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the userdata, while in flight */
    return ms_check_io_yield(L);
}

static int l_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    return do_request(L, 1);
}

/* Copy opts at idx (or nothing) into a new table at the top. */
static void opts_copy(lua_State *L, int idx)
{
    lua_newtable(L);
    int t = lua_gettop(L);
    if (!lua_istable(L, idx)) return;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, t);
    }
}

static int l_get(lua_State *L)
{
    luaL_checkstring(L, 1);
    opts_copy(L, 2);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "url");
    return do_request(L, lua_gettop(L));
}

static int l_post(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    opts_copy(L, 3);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "url");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "body");
    lua_getfield(L, -1, "method");
    if (lua_isnil(L, -1)) {
        lua_pushliteral(L, "POST");
        lua_setfield(L, -3, "method");
    }
    lua_pop(L, 1);
    return do_request(L, lua_gettop(L));
}

void ms_check_http_open(lua_State *L)
{
    if (luaL_newmetatable(L, REQ_MT)) {
        lua_pushcfunction(L, l_req_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_request);
    lua_setfield(L, -2, "request");
    lua_pushcfunction(L, l_get);
    lua_setfield(L, -2, "get");
    lua_pushcfunction(L, l_post);
    lua_setfield(L, -2, "post");
    lua_setfield(L, -2, "http");
}
