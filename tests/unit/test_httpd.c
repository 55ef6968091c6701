/*
 * test_httpd.c - the small HTTP server (src/httpd.c), driven over real TCP.
 *
 * The main thread runs the libuv loop with the server; a client thread talks
 * to it with blocking sockets and records the checks. When the client is
 * done it wakes the loop (uv_async) to stop the server; the test then checks
 * that every handle was closed (uv_loop_close succeeds) - with ASan, leaks of
 * connections or buffers fail the run too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "ms_buf.h"
#include "ms_err.h"
#include "ms_httpd.h"
#include "t.h"

/* T_OK evaluates its condition twice: checks with side effects go through this. */
#define CHECK(expr, ...)                                                                           \
    do {                                                                                           \
        int check_ok_ = (expr);                                                                    \
        T_OK(check_ok_, __VA_ARGS__);                                                              \
    } while (0)

static int port;
static uv_async_t stop_async;
static ms_httpd *server;
static int stop_done;

/* ---- handlers (run on the loop thread) ---- */

static void h_hello(const char *path, const char *query, ms_http_response *res, void *ud)
{
    ms_buf_puts(&res->body, "hello world\n");
}

static void h_echo(const char *path, const char *query, ms_http_response *res, void *ud)
{
    res->content_type = "application/x-echo";
    ms_buf_printf(&res->body, "path=%s query=%s", path, query ? query : "(null)");
}

static void h_big(const char *path, const char *query, ms_http_response *res, void *ud)
{
    for (int i = 0; i < 1 << 20; i++) ms_buf_append(&res->body, &"0123456789abcdef"[i & 15], 1);
}

static void h_fail(const char *path, const char *query, ms_http_response *res, void *ud)
{
    res->status = 503;
    ms_buf_puts(&res->body, "down\n");
}

/* ---- a blocking client ---- */

typedef struct client {
    int fd;
    char buf[1 << 16];
    size_t len;
} client;

typedef struct response {
    int status;
    long clen;
    char ctype[128], connection[64], allow[64];
    char *body;
    size_t body_len;
} response;

static void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int cl_open(client *c)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static void cl_close(client *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static int cl_send(client *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        if (k <= 0) return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static int cl_sends(client *c, const char *s)
{
    return cl_send(c, s, strlen(s));
}

/* Read more bytes into the buffer; 0 on EOF, -1 on error/timeout. */
static ssize_t cl_fill(client *c)
{
    if (c->len == sizeof c->buf) return -1;
    ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (k > 0) c->len += (size_t)k;
    return k;
}

/* Copy header `name`'s value from head[0..n) into out. */
static void header(const char *head, size_t n, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    const char *p = head, *end = head + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) break;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            size_t vl = (size_t)(eol - v);
            if (vl > 0 && v[vl - 1] == '\r') vl--;
            if (vl >= cap) vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
        }
        p = eol + 1;
    }
}

/* Read one response (HEAD: no body expected). Returns 0 or -1 when the
 * connection ended or the response is malformed. Caller frees r->body. */
static int cl_response(client *c, response *r, int head)
{
    memset(r, 0, sizeof *r);
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (cl_fill(c) <= 0) return -1;
    size_t hn = (size_t)(end - c->buf) + 4;
    if (sscanf(c->buf, "HTTP/1.1 %d", &r->status) != 1) return -1;
    char cl[32];
    header(c->buf, hn, "Content-Length", cl, sizeof cl);
    r->clen = cl[0] ? atol(cl) : -1;
    header(c->buf, hn, "Content-Type", r->ctype, sizeof r->ctype);
    header(c->buf, hn, "Connection", r->connection, sizeof r->connection);
    header(c->buf, hn, "Allow", r->allow, sizeof r->allow);
    memmove(c->buf, c->buf + hn, c->len - hn);
    c->len -= hn;
    size_t want = head || r->clen < 0 ? 0 : (size_t)r->clen;
    r->body = malloc(want + 1);
    while (r->body_len < want) {
        if (c->len == 0 && cl_fill(c) <= 0) break;
        size_t k = c->len < want - r->body_len ? c->len : want - r->body_len;
        memcpy(r->body + r->body_len, c->buf, k);
        r->body_len += k;
        memmove(c->buf, c->buf + k, c->len - k);
        c->len -= k;
    }
    r->body[r->body_len] = '\0';
    return r->body_len == want ? 0 : -1;
}

/* Is the connection closed by the server (EOF or reset) with nothing more sent? */
static int cl_eof(client *c)
{
    if (c->len > 0) return 0;
    char b[64];
    ssize_t k = recv(c->fd, b, sizeof b, 0);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

/* One request on a fresh connection; returns the status (-1: no response). */
static int one_shot(const char *req, response *r)
{
    memset(r, 0, sizeof *r);
    client *c = malloc(sizeof *c);
    int st = -1;
    if (cl_open(c) == 0 && cl_sends(c, req) == 0 && cl_response(c, r, 0) == 0) st = r->status;
    cl_close(c);
    free(c);
    return st;
}

/* ---- the client thread: every check over the wire ---- */

static void test_basic(client *c)
{
    response r;
    CHECK(cl_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0, "send GET /hello");
    CHECK(cl_response(c, &r, 0) == 0, "GET /hello answered");
    T_EQ_INT(r.status, 200, "GET /hello status");
    T_EQ_INT(r.clen, 12, "Content-Length");
    T_EQ_STR(r.body, "hello world\n", "body");
    T_EQ_STR(r.ctype, "text/plain; charset=utf-8", "default content type");
    T_EQ_STR(r.connection, "keep-alive", "HTTP/1.1 keeps the connection");
    free(r.body);

    /* keep-alive: a second request on the same connection */
    cl_sends(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(cl_response(c, &r, 0) == 0, "second request on the same connection");
    T_EQ_STR(r.body, "path=/echo query=", "no query string: empty");
    T_EQ_STR(r.ctype, "application/x-echo", "handler's content type");
    free(r.body);

    cl_sends(c, "GET /nope HTTP/1.1\r\n\r\n");
    CHECK(cl_response(c, &r, 0) == 0, "unknown path answered");
    T_EQ_INT(r.status, 404, "unknown path: 404");
    free(r.body);

    cl_sends(c, "GET /gone HTTP/1.1\r\n\r\n");
    cl_response(c, &r, 0);
    T_EQ_INT(r.status, 404, "unrouted path: 404");
    free(r.body);

    cl_sends(c, "GET /fail HTTP/1.1\r\n\r\n");
    cl_response(c, &r, 0);
    T_EQ_INT(r.status, 503, "handler's status");
    T_EQ_STR(r.body, "down\n", "handler's body with its status");
    free(r.body);

    /* a body sent with another method is skipped, then the connection goes on */
    cl_sends(c, "POST /hello HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde");
    CHECK(cl_response(c, &r, 0) == 0, "POST answered");
    T_EQ_INT(r.status, 405, "POST: 405");
    T_EQ_STR(r.allow, "GET, HEAD", "405 names what is allowed");
    free(r.body);

    cl_sends(c, "HEAD /hello HTTP/1.1\r\n\r\n");
    CHECK(cl_response(c, &r, 1) == 0, "HEAD answered");
    T_EQ_INT(r.status, 200, "HEAD status");
    T_EQ_INT(r.clen, 12, "HEAD announces the GET length");
    free(r.body);
    /* if HEAD had sent a body, this response would not parse */
    cl_sends(c, "GET /echo?after=head HTTP/1.1\r\n\r\n");
    CHECK(cl_response(c, &r, 0) == 0 && r.status == 200, "request after HEAD parses (no body)");
    T_EQ_STR(r.body, "path=/echo query=after=head", "query string handed to the handler");
    free(r.body);
}

static void test_pipelined(client *c)
{
    response r;
    cl_sends(c, "GET /hello HTTP/1.1\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: y\r\n\r\n"
                "GET /missing HTTP/1.1\r\n\r\n");
    int ok = cl_response(c, &r, 0) == 0 && r.status == 200 && !strcmp(r.body, "hello world\n");
    free(r.body);
    ok = ok && cl_response(c, &r, 0) == 0 && !strcmp(r.body, "path=/echo query=n=2");
    free(r.body);
    ok = ok && cl_response(c, &r, 0) == 0 && r.status == 404;
    free(r.body);
    CHECK(ok, "three pipelined requests in one write, answered in order");

    /* more pipelined requests than the server keeps writes in flight */
    ms_buf req = MS_BUF_INIT;
    for (int i = 0; i < 200; i++) ms_buf_printf(&req, "GET /echo?i=%d HTTP/1.1\r\n\r\n", i);
    cl_send(c, req.data, req.len);
    ms_buf_free(&req);
    int good = 0;
    for (int i = 0; i < 200; i++) {
        char want[64];
        snprintf(want, sizeof want, "path=/echo query=i=%d", i);
        if (cl_response(c, &r, 0) == 0 && strcmp(r.body, want) == 0) good++;
        free(r.body);
    }
    T_EQ_INT(good, 200, "200 pipelined requests all answered in order");
}

static void test_split(client *c)
{
    response r;
    cl_sends(c, "GET /ech");
    msleep(50);
    cl_sends(c, "o?a=b&c HTTP/1.1\r\nHo");
    msleep(50);
    cl_sends(c, "st: x\r\n\r");
    msleep(50);
    cl_sends(c, "\n");
    CHECK(cl_response(c, &r, 0) == 0, "request split over four writes answered");
    T_EQ_STR(r.body, "path=/echo query=a=b&c", "split request parsed whole");
    free(r.body);
}

static void test_big(client *c)
{
    response r;
    cl_sends(c, "GET /big HTTP/1.1\r\n\r\n");
    CHECK(cl_response(c, &r, 0) == 0, "1 MiB response read whole");
    T_EQ_INT(r.clen, 1 << 20, "1 MiB Content-Length");
    CHECK(r.body_len == 1 << 20 && r.body[12345] == "0123456789abcdef"[12345 & 15],
          "1 MiB body content");
    free(r.body);
}

static void test_closing(void)
{
    client *c = malloc(sizeof *c);
    response r;

    cl_open(c);
    cl_sends(c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(cl_response(c, &r, 0) == 0 && r.status == 200, "Connection: close answered");
    T_EQ_STR(r.connection, "close", "response says close");
    CHECK(cl_eof(c), "server closes after Connection: close");
    free(r.body);
    cl_close(c);

    cl_open(c);
    cl_sends(c, "GET /hello HTTP/1.0\r\n\r\n");
    CHECK(cl_response(c, &r, 0) == 0 && r.status == 200, "HTTP/1.0 answered");
    CHECK(cl_eof(c), "HTTP/1.0 connection closed after the response");
    free(r.body);
    cl_close(c);

    /* oversized header: 431, then the connection closes */
    cl_open(c);
    ms_buf big = MS_BUF_INIT;
    ms_buf_puts(&big, "GET /hello HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 9000; i++) ms_buf_append(&big, "a", 1);
    ms_buf_puts(&big, "\r\n\r\n");
    cl_send(c, big.data, big.len);
    ms_buf_free(&big);
    CHECK(cl_response(c, &r, 0) == 0, "oversized header answered");
    T_EQ_INT(r.status, 431, "oversized header: 431");
    CHECK(cl_eof(c), "closed after 431");
    free(r.body);
    cl_close(c);

    response r2;
    T_EQ_INT(one_shot("BREW /pot HTCPCP/1.0\r\n\r\n", &r2), 400, "garbage request line: 400");
    free(r2.body);
    T_EQ_INT(one_shot("GET / HTTP/2.0\r\n\r\n", &r2), 505, "HTTP/2.0 over text: 505");
    free(r2.body);
    T_EQ_INT(one_shot("GET /hello HTTP/1.1\r\n bad fold\r\n\r\n", &r2), 400, "bad header: 400");
    free(r2.body);
    T_EQ_INT(one_shot("GET http://h:1/echo?q=1 HTTP/1.1\r\n\r\n", &r2), 200, "absolute-form");
    T_EQ_STR(r2.body, "path=/echo query=q=1", "absolute-form path and query");
    free(r2.body);
    free(c);
}

static void test_limit(void)
{
    enum { N = 300 };
    client *cs = calloc(N, sizeof *cs);
    msleep(300); /* let the server see the earlier connections close */
    int accepted = 0, rejected = -1;
    for (int i = 0; i < N; i++) {
        response r = {0};
        if (cl_open(&cs[i]) != 0) break;
        if (cl_sends(&cs[i], "GET /hello HTTP/1.1\r\n\r\n") == 0 &&
            cl_response(&cs[i], &r, 0) == 0) {
            accepted++;
        } else {
            rejected = i;
            free(r.body);
            break;
        }
        free(r.body);
    }
    T_EQ_INT(accepted, 256, "256 connections served at once");
    T_EQ_INT(rejected, 256, "the 257th is closed");
    for (int i = 0; i < N; i++)
        if (cs[i].fd > 0) cl_close(&cs[i]);
    free(cs);
    int st = -1;
    for (int tries = 0; tries < 50 && st != 200; tries++) {
        msleep(20);
        response r = {0};
        st = one_shot("GET /hello HTTP/1.1\r\n\r\n", &r);
        free(r.body);
    }
    T_EQ_INT(st, 200, "connections accepted again once others closed");
}

static void *client_main(void *arg)
{
    client *c = malloc(sizeof *c);
    CHECK(cl_open(c) == 0, "connect to 127.0.0.1:%d", port);
    test_basic(c);
    test_pipelined(c);
    test_split(c);
    test_big(c);
    cl_close(c);
    test_closing();
    test_limit();

    /* stop with a connection open: the server closes it */
    cl_open(c);
    response r;
    cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n");
    CHECK(cl_response(c, &r, 0) == 0, "idle connection established");
    free(r.body);
    uv_async_send(&stop_async);
    CHECK(cl_eof(c), "stop closes open connections");
    cl_close(c);
    free(c);
    return NULL;
}

/* ---- the loop thread ---- */

static void on_stopped(void *ud)
{
    *(int *)ud = 1;
}

static void on_stop(uv_async_t *a)
{
    ms_httpd_stop(server, on_stopped, &stop_done);
    uv_close((uv_handle_t *)a, NULL);
}

/* A port that was free a moment ago. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    ms_error err = {0};
    port = free_port();
    int rc = ms_httpd_start(&loop, "127.0.0.1", port, &server, &err);
    T_EQ_INT(rc, MS_OK, "start on 127.0.0.1");
    if (rc != MS_OK) {
        printf("# %s\n", err.msg);
        return t_done();
    }
    ms_httpd *dup = NULL;
    rc = ms_httpd_start(&loop, "127.0.0.1", port, &dup, &err);
    T_EQ_INT(rc, MS_EIO, "second listener on the same port fails");
    CHECK(strstr(err.msg, "127.0.0.1") != NULL, "error names the address: %s", err.msg);
    rc = ms_httpd_start(&loop, "no.such.host", port, &dup, &err);
    CHECK(rc != MS_OK && dup == NULL, "bad host rejected: %s", err.msg);

    ms_httpd_route(server, "/hello", h_hello, NULL);
    ms_httpd_route(server, "/echo", h_echo, NULL);
    ms_httpd_route(server, "/big", h_big, NULL);
    ms_httpd_route(server, "/fail", h_fail, NULL);
    ms_httpd_route(server, "/gone", h_fail, NULL);
    ms_httpd_route(server, "/hello", h_hello, NULL); /* replaces, no duplicate */
    ms_httpd_unroute(server, "/gone");
    uv_async_init(&loop, &stop_async, on_stop);

    pthread_t th;
    pthread_create(&th, NULL, client_main, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);

    CHECK(stop_done, "stop called done");
    T_EQ_INT(uv_loop_close(&loop), 0, "every handle closed");
    return t_done();
}
