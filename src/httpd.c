/*
 * httpd.c - a small HTTP/1.1 server on the libuv loop (see ms_httpd.h).
 *
 * Only what a scrape endpoint needs: GET and HEAD, exact-path routes, a
 * response built whole by a synchronous handler. Everything is bounded:
 *  - the request head (request line + headers) must fit in MS_HTTPD_MAX_HEAD
 *    bytes, else 431 and the connection closes;
 *  - at most MS_HTTPD_MAX_CONNS connections; past that a new connection is
 *    accepted and closed at once, and counted;
 *  - a connection with no complete request for MS_HTTPD_IDLE_MS is closed;
 *  - while MS_HTTPD_MAX_WRITES responses wait to be written the connection
 *    stops reading (a client pipelining without reading gets backpressure).
 *
 * Each connection owns a fixed input buffer the size of the head bound.
 * Requests are parsed out of it as soon as they are complete, so a request
 * split over several reads and several requests in one read both work.
 * Responses go out in request order because handlers run synchronously.
 *
 * Closing: when a response says "Connection: close" the server writes it,
 * shuts down its sending side and keeps reading (discarding) for a short
 * linger, so a client that sent more than we read does not get a reset
 * before it reads the response.
 *
 * Ownership: the server owns its routes (paths copied), its connections and
 * their buffers; ms_httpd_stop closes every handle and frees the server once
 * libuv reports them closed, then calls `done`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "ms_buf.h"
#include "ms_err.h"
#include "ms_httpd.h"
#include "ms_log.h"

#define MS_HTTPD_MAX_HEAD   8192
#define MS_HTTPD_MAX_CONNS  256
#define MS_HTTPD_IDLE_MS    30000
#define MS_HTTPD_LINGER_MS  2000
#define MS_HTTPD_MAX_WRITES 16
#define MS_HTTPD_MAX_SKIP   (1u << 20) /* request body bytes we discard before giving up */

typedef struct route {
    struct route *next;
    char *path;
    ms_http_handler h;
    void *ud;
} route;

typedef struct conn conn;

struct ms_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    route *routes;
    conn *conns; /* open (not closing) connections, doubly linked */
    int nconns;
    int handles; /* handles initialised and not yet closed (listener included) */
    uint64_t rejected;
    int stopping;
    void (*done)(void *ud);
    void *done_ud;
    char addr[300];
};

struct conn {
    conn *prev, *next;
    ms_httpd *s;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles;   /* 2 while open; freed at 0 */
    int closing;   /* uv_close called */
    int reading;   /* uv_read_start active */
    int finishing; /* the last response is queued: read nothing more as requests */
    int peer_eof;  /* the client half-closed; close once the answers are written */
    int lingering; /* shut down, discarding input until EOF or the linger timer */
    int writes;    /* write requests in flight */
    uint64_t skip; /* request body bytes still to discard */
    size_t len;    /* bytes in buf */
    char buf[MS_HTTPD_MAX_HEAD];
};

typedef struct write_req {
    uv_write_t req;
    conn *c;
    ms_buf head, body;
} write_req;

/* A parsed request head; strings point into the connection buffer. */
typedef struct request {
    const char *method;
    size_t method_len;
    char *path; /* NUL-terminated in place */
    char *query;
    int minor;     /* HTTP/1.<minor> */
    int close;     /* the client asked to close (or HTTP/1.0) */
    int keepalive; /* "Connection: keep-alive" */
    int chunked;   /* Transfer-Encoding present */
    int expect;    /* Expect: 100-continue (the body may never come) */
    int64_t clen;  /* Content-Length or -1 */
} request;

static void conn_close(conn *c);
static void conn_process(conn *c);
static void conn_read_stop(conn *c);

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status >= 500 ? "Error" : status >= 400 ? "Client Error" : "OK";
    }
}

/* ---- handle bookkeeping ---- */

/* A server handle finished closing; the last one frees the server and calls
 * `done` (only once stopping). */
static void server_handle_gone(ms_httpd *s)
{
    if (--s->handles > 0 || !s->stopping) return;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    route *r = s->routes;
    while (r) {
        route *next = r->next;
        free(r->path);
        free(r);
        r = next;
    }
    free(s);
    if (done) done(ud);
}

static void on_listener_closed(uv_handle_t *h)
{
    server_handle_gone(h->data);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles > 0) return;
    ms_httpd *s = c->s;
    free(c);
    server_handle_gone(s);
}

static void on_rejected_closed(uv_handle_t *h)
{
    ms_httpd *s = h->data;
    free(h);
    server_handle_gone(s);
}

/* Close both handles of c (idempotent); pending writes get UV_ECANCELED. */
static void conn_close(conn *c)
{
    if (c->closing) return;
    c->closing = 1;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->s->nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t)
{
    conn_close(t->data);
}

static void conn_arm_timer(conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    if (c->lingering || c->finishing) {
        /* Input is discarded: read it into the (no longer needed) buffer. */
        buf->base = c->buf;
        buf->len = sizeof c->buf;
        return;
    }
    buf->base = c->buf + c->len;
    buf->len = sizeof c->buf - c->len;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = st->data;
    if (c->closing) return;
    if (nread < 0) {
        conn_read_stop(c);
        /* The client half-closed: answer what was already asked, then close. */
        if (nread == UV_EOF && !c->lingering && c->writes > 0)
            c->peer_eof = 1;
        else
            conn_close(c);
        return;
    }
    if (nread == 0 || c->lingering || c->finishing) return;
    c->len += (size_t)nread;
    conn_process(c);
}

static void conn_read_start(conn *c)
{
    if (c->reading || c->closing) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
    else
        conn_close(c);
}

static void conn_read_stop(conn *c)
{
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

/* ---- writing ---- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    free(req);
    if (status == UV_ECANCELED || c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Discard what the client still sends until it closes or the linger ends. */
    c->lingering = 1;
    conn_arm_timer(c, MS_HTTPD_LINGER_MS);
    conn_read_start(c);
}

/* The last response is written: send FIN, then linger. */
static void conn_finish(conn *c)
{
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) {
        conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        conn_close(c);
    }
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    conn *c = w->c;
    ms_buf_free(&w->head);
    ms_buf_free(&w->body);
    free(w);
    c->writes--;
    if (status == UV_ECANCELED || c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->finishing) {
        if (c->writes > 0) return;
        if (c->peer_eof)
            conn_close(c);
        else
            conn_finish(c);
        return;
    }
    if (c->writes < MS_HTTPD_MAX_WRITES) {
        conn_process(c); /* requests left buffered while writes were full */
        if (c->closing || c->finishing) return;
        if (!c->peer_eof)
            conn_read_start(c);
        else if (c->writes == 0)
            conn_close(c);
    }
}

/* Queue one response. Takes the body (the caller's buffer is left empty).
 * `head_only` sends the headers of a HEAD request; `close` ends the
 * connection after this response. */
static void conn_respond(conn *c, int status, const char *ctype, ms_buf *body, int head_only,
                         int close, const char *extra)
{
    write_req *w = calloc(1, sizeof *w);
    if (!w) {
        ms_buf_free(body);
        conn_close(c);
        return;
    }
    w->c = c;
    w->req.data = c;
    size_t clen = body->len; /* a HEAD response announces the length GET would send */
    if (head_only)
        ms_buf_free(body);
    else
        w->body = *body;
    *body = (ms_buf)MS_BUF_INIT;
    int rc = ms_buf_printf(&w->head,
                           "HTTP/1.1 %d %s\r\nServer: moonstat\r\nContent-Type: %s\r\n"
                           "Content-Length: %zu\r\nConnection: %s\r\n%s\r\n",
                           status, status_text(status), ctype ? ctype : "text/plain; charset=utf-8",
                           clen, close ? "close" : "keep-alive", extra ? extra : "");
    if (rc != MS_OK) {
        ms_buf_free(&w->head);
        ms_buf_free(&w->body);
        free(w);
        conn_close(c);
        return;
    }
    uv_buf_t bufs[2];
    unsigned nbufs = 1;
    bufs[0] = uv_buf_init(w->head.data, (unsigned)w->head.len);
    if (w->body.len > 0) bufs[nbufs++] = uv_buf_init(w->body.data, (unsigned)w->body.len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write) != 0) {
        ms_buf_free(&w->head);
        ms_buf_free(&w->body);
        free(w);
        conn_close(c);
        return;
    }
    c->writes++;
    if (close) {
        c->finishing = 1;
        c->len = 0;
    }
}

/* A response the server writes itself (errors); always plain text. */
static void conn_error(conn *c, int status, int head_only, int close, const char *extra)
{
    ms_buf body = MS_BUF_INIT;
    ms_buf_printf(&body, "%d %s\n", status, status_text(status));
    conn_respond(c, status, NULL, &body, head_only, close, extra);
}

/* ---- parsing ---- */

/* Find the end of the request head in p[0..n): the offset just past the
 * empty line (CRLF CRLF, or bare LF LF), or 0 when not there yet. */
static size_t head_end(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') continue;
        if (i + 1 < n && p[i + 1] == '\n') return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
    }
    return 0;
}

static int is_tchar(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Does the comma-separated header value v[0..n) contain token tok? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t start = i;
        while (i < n && v[i] != ',') i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) end--;
        if (end - start == tl && strncasecmp(v + start, tok, tl) == 0) return 1;
    }
    return 0;
}

/* One header line (without its line end) into r. Returns 0 or an HTTP status. */
static int parse_header(char *line, size_t n, request *r)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)line[i])) i++;
    if (i == 0 || i >= n || line[i] != ':') return 400; /* also rejects obs-fold */
    size_t name_len = i++;
    while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
    size_t vend = n;
    while (vend > i && (line[vend - 1] == ' ' || line[vend - 1] == '\t')) vend--;
    const char *v = line + i;
    size_t vn = vend - i;
    if (name_len == 10 && strncasecmp(line, "connection", 10) == 0) {
        if (has_token(v, vn, "close")) r->close = 1;
        if (has_token(v, vn, "keep-alive")) r->keepalive = 1;
    } else if (name_len == 14 && strncasecmp(line, "content-length", 14) == 0) {
        int64_t val = 0;
        if (vn == 0 || vn > 18) return 400;
        for (size_t k = 0; k < vn; k++) {
            if (v[k] < '0' || v[k] > '9') return 400;
            val = val * 10 + (v[k] - '0');
        }
        if (r->clen >= 0 && r->clen != val) return 400;
        r->clen = val;
    } else if (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
        r->chunked = 1;
    } else if (name_len == 6 && strncasecmp(line, "expect", 6) == 0) {
        r->expect = 1;
    }
    return 0;
}

/* Parse the request line and headers in p[0..n) (n includes the final empty
 * line). Writes NULs into p to terminate path and query. Returns 0 or an
 * HTTP status to answer with (the connection is then closed). */
static int parse_head(char *p, size_t n, request *r)
{
    memset(r, 0, sizeof *r);
    r->clen = -1;
    char *end = p + n;
    char *eol = memchr(p, '\n', n);
    size_t ll = (size_t)(eol - p);
    if (ll > 0 && p[ll - 1] == '\r') ll--;
    /* METHOD SP target SP HTTP/1.x */
    char *sp1 = memchr(p, ' ', ll);
    if (!sp1 || sp1 == p) return 400;
    for (char *q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q)) return 400;
    char *target = sp1 + 1;
    char *sp2 = memchr(target, ' ', ll - (size_t)(target - p));
    if (!sp2 || sp2 == target) return 400;
    char *ver = sp2 + 1;
    size_t vl = ll - (size_t)(ver - p);
    if (vl != 8 || memcmp(ver, "HTTP/", 5) != 0 || ver[6] != '.' || ver[5] < '0' || ver[5] > '9' ||
        ver[7] < '0' || ver[7] > '9')
        return 400;
    if (ver[5] != '1') return 505;
    r->method = p;
    r->method_len = (size_t)(sp1 - p);
    r->minor = ver[7] - '0';
    /* absolute-form: skip scheme://authority */
    size_t scheme = strncasecmp(target, "http://", 7) == 0    ? 7
                    : strncasecmp(target, "https://", 8) == 0 ? 8
                                                              : 0;
    if (scheme) {
        char *slash = memchr(target + scheme, '/', (size_t)(sp2 - target) - scheme);
        target = slash ? slash : sp2; /* no path: "/" below */
    }
    *sp2 = '\0';
    if (target == sp2) {
        r->path = (char *)"/";
        r->query = sp2;
    } else {
        if (*target != '/') return 400;
        for (char *q = target; q < sp2; q++)
            if ((unsigned char)*q <= 0x20 || *q == 0x7f) return 400;
        char *qm = strchr(target, '?');
        char *hash = strchr(target, '#');
        if (hash) *hash = '\0';
        if (qm && (!hash || qm < hash)) {
            *qm = '\0';
            r->query = qm + 1;
        } else {
            r->query = sp2; /* "" */
        }
        r->path = target;
    }
    /* headers */
    char *line = eol + 1;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl) break;
        size_t len = (size_t)(nl - line);
        if (len > 0 && line[len - 1] == '\r') len--;
        if (len == 0) break; /* the empty line */
        int st = parse_header(line, len, r);
        if (st) return st;
        line = nl + 1;
    }
    if (r->minor == 0 && !r->keepalive) r->close = 1;
    return 0;
}

static route *route_find(ms_httpd *s, const char *path)
{
    for (route *r = s->routes; r; r = r->next)
        if (strcmp(r->path, path) == 0) return r;
    return NULL;
}

/* Answer one parsed request. */
static void conn_dispatch(conn *c, request *r)
{
    int head_only = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    int get = r->method_len == 3 && memcmp(r->method, "GET", 3) == 0;
    int close = r->close || r->chunked;
    if (!get && !head_only) {
        conn_error(c, 405, 0, close, "Allow: GET, HEAD\r\n");
        return;
    }
    route *rt = route_find(c->s, r->path);
    if (!rt) {
        conn_error(c, 404, head_only, close, NULL);
        return;
    }
    ms_http_response res = {200, NULL, MS_BUF_INIT};
    rt->h(r->path, r->query, &res, rt->ud);
    if (res.status < 100 || res.status > 999) res.status = 500;
    conn_respond(c, res.status, res.content_type, &res.body, head_only, close, NULL);
}

/* Answer every complete request in the buffer, stopping when the write
 * bound is reached (on_write resumes) or the connection is ending. */
static void conn_process(conn *c)
{
    size_t off = 0;
    while (!c->closing && !c->finishing && c->writes < MS_HTTPD_MAX_WRITES) {
        if (c->skip > 0) {
            size_t k = c->len - off < c->skip ? c->len - off : (size_t)c->skip;
            off += k;
            c->skip -= k;
            if (c->skip > 0) break;
        }
        /* Tolerate empty lines between requests (RFC 9112 2.2). */
        while (off < c->len && (c->buf[off] == '\r' || c->buf[off] == '\n')) off++;
        if (off == c->len) break;
        size_t n = head_end(c->buf + off, c->len - off);
        if (n == 0) {
            if (c->len - off >= sizeof c->buf) {
                conn_error(c, 431, 0, 1, NULL);
                return;
            }
            break;
        }
        request r;
        int st = parse_head(c->buf + off, n, &r);
        off += n;
        if (st) {
            conn_error(c, st, 0, 1, NULL);
            return;
        }
        if (r.clen > 0) {
            /* No route takes a body: skip it, or close when it is large or
             * the client waits for a 100 Continue it will not get. */
            if ((uint64_t)r.clen > MS_HTTPD_MAX_SKIP || r.expect)
                r.close = 1;
            else
                c->skip = (uint64_t)r.clen;
        }
        conn_arm_timer(c, MS_HTTPD_IDLE_MS); /* idle time counts from the last request */
        conn_dispatch(c, &r);
    }
    if (c->closing || c->finishing) return;
    if (off > 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    if (c->writes >= MS_HTTPD_MAX_WRITES) conn_read_stop(c);
}

/* ---- accepting ---- */

static void reject(ms_httpd *s, uv_stream_t *server)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) return;
    uv_tcp_init(s->loop, t);
    t->data = s;
    s->handles++;
    uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_rejected_closed);
    if (s->rejected++ % 1000 == 0)
        ms_log_warn("httpd %s: connection limit (%d) reached; %llu rejected so far", s->addr,
                    MS_HTTPD_MAX_CONNS, (unsigned long long)s->rejected);
}

static void on_connection(uv_stream_t *server, int status)
{
    ms_httpd *s = server->data;
    if (status < 0 || s->stopping) return;
    if (s->nconns >= MS_HTTPD_MAX_CONNS) {
        reject(s, server);
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        reject(s, server);
        return;
    }
    c->s = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    s->handles++;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_arm_timer(c, MS_HTTPD_IDLE_MS);
    conn_read_start(c);
}

/* ---- public ---- */

/* Resolve a literal host (IPv4, IPv6, "localhost", "" / "*" = any) into sa. */
static int make_addr(const char *host, int port, struct sockaddr_storage *sa)
{
    if (!host[0] || strcmp(host, "*") == 0) host = "0.0.0.0";
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)sa) == 0) return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) == 0) return 0;
    return -1;
}

int ms_httpd_start(uv_loop_t *loop, const char *host, int port, ms_httpd **out, ms_error *err)
{
    *out = NULL;
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    if (port < 0 || port > 65535 || make_addr(host, port, &sa) != 0)
        return ms_error_set(err, MS_EIO, "httpd: %s:%d: not an IP address and port", host, port);
    ms_httpd *s = calloc(1, sizeof *s);
    if (!s) return ms_error_set(err, MS_ENOMEM, "httpd: out of memory");
    s->loop = loop;
    snprintf(s->addr, sizeof s->addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->handles = 1;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (rc != 0) {
        ms_error_set(err, MS_EIO, "httpd: cannot listen on %s: %s", s->addr, uv_strerror(rc));
        s->stopping = 1;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return MS_EIO;
    }
    *out = s;
    return MS_OK;
}

int ms_httpd_route(ms_httpd *s, const char *path, ms_http_handler h, void *ud)
{
    route *r = route_find(s, path);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MS_ENOMEM;
        r->path = strdup(path);
        if (!r->path) {
            free(r);
            return MS_ENOMEM;
        }
        r->next = s->routes;
        s->routes = r;
    }
    r->h = h;
    r->ud = ud;
    return MS_OK;
}

void ms_httpd_unroute(ms_httpd *s, const char *path)
{
    for (route **pp = &s->routes; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->path, path) == 0) {
            route *r = *pp;
            *pp = r->next;
            free(r->path);
            free(r);
            return;
        }
    }
}

/* Close the listener and every connection (in-flight writes are cancelled).
 * The server is freed once libuv has closed every handle; then done(ud). */
void ms_httpd_stop(ms_httpd *s, void (*done)(void *ud), void *ud)
{
    if (!s || s->stopping) return;
    s->stopping = 1;
    s->done = done;
    s->done_ud = ud;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    while (s->conns) conn_close(s->conns);
}
