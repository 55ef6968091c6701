/*
 * transport_http.c - POST each queued chunk to an HTTP(S) endpoint
 * (InfluxDB, OpenTSDB, KairosDB, ...) with libcurl's multi interface driven
 * by the libuv loop (curl_multi_socket_action from uv_poll and uv_timer
 * callbacks: nothing blocks the loop).
 *
 * One request is in flight at a time, in queue order, on one reused easy
 * handle (keep-alive). Outcome of a request:
 *   2xx                       sent: the chunk is popped and counted as sent;
 *   5xx, 429, network errors  the chunk stays queued; retried after a backoff
 *                             of 1 s doubling to 30 s (reset on success);
 *   other 4xx (and 1xx/3xx)   the chunk is dropped and counted as failed; the
 *                             start of the response body is logged.
 *
 * Options (read as text with ms_forwarder_opt_str; an encoder declares those
 * its users may set, with its own defaults):
 *   url              base URL, e.g. http://127.0.0.1:8086 (required)
 *   endpoint         appended to url; "{key}" is replaced by the URL-escaped
 *                    value of option `key`; a query parameter whose value
 *                    comes out empty is left out ("&rp={rp}" with rp "")
 *   content_type     Content-Type header
 *   content_encoding Content-Encoding header
 *   headers          extra headers (a map)
 *   timeout          whole-request timeout (duration, default 10 s)
 *   user, password   basic auth
 *   token            "Authorization: <token_scheme> <token>" (scheme default Bearer)
 *   ca_file          CA bundle to verify the server with
 *   insecure         true: do not verify the TLS certificate or host name
 * Secrets (password, token, headers) are never logged.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include "ms_buf.h"
#include "ms_forwarder.h"
#include "ms_log.h"

typedef struct http_state http_state;

/* One socket curl asked us to watch. */
typedef struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    http_state *h;
} http_sock;

struct http_state {
    ms_forwarder *f;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdrs;
    char *url;
    char err[CURL_ERROR_SIZE];
    ms_buf body; /* start of the response body (for logs) */
    uv_timer_t curl_timer, retry;
    int busy, stopping;
    uint64_t backoff_ms;
    int handles; /* open uv handles: two timers + polls */
};

static void try_send(http_state *h);

static void maybe_done(http_state *h)
{
    if (!h->stopping || h->handles) return;
    ms_forwarder *f = h->f;
    if (h->easy) curl_easy_cleanup(h->easy);
    if (h->multi) curl_multi_cleanup(h->multi);
    curl_slist_free_all(h->hdrs);
    ms_buf_free(&h->body);
    free(h->url);
    free(h);
    ms_forwarder_set_data(f, NULL);
    ms_forwarder_closed(f);
}

static void handle_closed(uv_handle_t *hd)
{
    http_state *h = hd->data;
    if (hd->type == UV_POLL) free((http_sock *)hd); /* poll is the first member */
    h->handles--;
    maybe_done(h);
}

/* The response body: keep the first 512 bytes for messages. */
static size_t body_cb(char *p, size_t size, size_t n, void *ud)
{
    http_state *h = ud;
    size_t len = size * n;
    if (h->body.len < 512)
        ms_buf_append(&h->body, p, len < 512 - h->body.len ? len : 512 - h->body.len);
    return len;
}

/* Schedule a retry of the head chunk after the backoff. */
static void retry_later(http_state *h, const char *why)
{
    ms_forwarder_log(h->f, MS_LOG_WARN, "POST %s: %s (retry in %.1fs)", h->url, why,
                     (double)h->backoff_ms / 1000);
    ms_forwarder_release(h->f);
    h->backoff_ms = h->backoff_ms * 2 > 30000 ? 30000 : h->backoff_ms * 2;
}

static void retry_cb(uv_timer_t *t)
{
    try_send(t->data);
}

/* A request finished: decide sent / retry / drop by its outcome. */
static void finished(http_state *h, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(h->multi, h->easy);
    h->busy = 0;
    uint64_t delay = h->backoff_ms;
    char why[640];
    if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "%s", h->err[0] ? h->err : curl_easy_strerror(rc));
    } else if (status >= 200 && status < 300) {
        h->backoff_ms = 1000;
        ms_forwarder_pop(h->f, 1);
        try_send(h);
        return;
    } else if (status >= 500 || status == 429) {
        snprintf(why, sizeof why, "HTTP %ld", status);
    } else {
        ms_chunk *c = ms_forwarder_head(h->f);
        ms_forwarder_log(h->f, MS_LOG_WARN,
                         "POST %s: HTTP %ld, dropping %u samples (%zu bytes): %.*s", h->url, status,
                         c ? c->nsamples : 0, c ? c->len : 0, (int)h->body.len,
                         h->body.data ? h->body.data : "");
        ms_forwarder_pop(h->f, 0);
        try_send(h);
        return;
    }
    retry_later(h, why);
    if (!h->stopping) uv_timer_start(&h->retry, retry_cb, delay, 0);
}

static void check_done(http_state *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)))
        if (m->msg == CURLMSG_DONE) finished(h, m->data.result);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    http_sock *s = p->data;
    http_state *h = s->h;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    check_done(h);
}

/* CURLMOPT_SOCKETFUNCTION: watch (or stop watching) a socket for curl. */
static int socket_cb(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    (void)e;
    http_state *h = ud;
    http_sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(h->multi, fd, NULL);
            s->poll.data = h;
            uv_close((uv_handle_t *)&s->poll, handle_closed);
        }
        return 0;
    }
    if (h->stopping) return 0;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return -1;
        s->fd = fd;
        s->h = h;
        if (uv_poll_init_socket(ms_forwarder_loop(h->f), &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        h->handles++;
        curl_multi_assign(h->multi, fd, s);
    }
    int ev = (what == CURL_POLL_IN ? UV_READABLE : 0) | (what == CURL_POLL_OUT ? UV_WRITABLE : 0) |
             (what == CURL_POLL_INOUT ? UV_READABLE | UV_WRITABLE : 0);
    uv_poll_start(&s->poll, ev, poll_cb);
    return 0;
}

static void curl_timer_cb(uv_timer_t *t)
{
    http_state *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called after timeout_ms. */
static int timer_cb(CURLM *m, long timeout_ms, void *ud)
{
    (void)m;
    http_state *h = ud;
    if (h->stopping) return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&h->curl_timer);
    else
        uv_timer_start(&h->curl_timer, curl_timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

/* Start POSTing the head chunk unless a request or a retry wait is on. */
static void try_send(http_state *h)
{
    if (h->busy || h->stopping || uv_is_active((uv_handle_t *)&h->retry)) return;
    ms_chunk *c = ms_forwarder_head(h->f);
    if (!c) return;
    h->err[0] = 0;
    h->body.len = 0;
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->len);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, (const char *)c->data);
    CURLMcode mc = curl_multi_add_handle(h->multi, h->easy);
    if (mc != CURLM_OK) {
        retry_later(h, curl_multi_strerror(mc));
        uv_timer_start(&h->retry, retry_cb, h->backoff_ms, 0);
        return;
    }
    h->busy = 1;
}

/* Append `tpl` to out, replacing "{key}" by the escaped option value and
 * leaving out query parameters that come out empty. */
static int expand_endpoint(ms_forwarder *f, CURL *e, const char *tpl, ms_buf *out, ms_error *err)
{
    int in_query = 0;
    while (*tpl) {
        size_t n = strcspn(tpl, "?&");
        ms_buf part = MS_BUF_INIT;
        int placeholders = 0;
        for (size_t i = 0; i < n; i++) {
            if (tpl[i] == '{') {
                const char *end = memchr(tpl + i, '}', n - i);
                if (!end) break;
                char key[128];
                snprintf(key, sizeof key, "%.*s", (int)(end - tpl - i - 1), tpl + i + 1);
                const char *v = ms_forwarder_opt_str(f, key);
                if (!v) {
                    ms_buf_free(&part);
                    return ms_error_set(err, MS_EINVAL,
                                        "forwarder %s: endpoint names {%s}, which is no option",
                                        ms_forwarder_name(f), key);
                }
                char *esc = curl_easy_escape(e, v, 0);
                ms_buf_puts(&part, esc ? esc : "");
                curl_free(esc);
                placeholders++;
                i = (size_t)(end - tpl);
            } else {
                ms_buf_append(&part, tpl + i, 1);
            }
        }
        int empty_param = in_query && placeholders && part.len && part.data[part.len - 1] == '=';
        if (!empty_param && part.len) {
            if (in_query) ms_buf_puts(out, strchr(out->data ? out->data : "", '?') ? "&" : "?");
            ms_buf_append(out, part.data, part.len);
        }
        ms_buf_free(&part);
        tpl += n;
        if (*tpl) in_query = 1, tpl++;
    }
    return MS_OK;
}

static int add_header(http_state *h, const char *line)
{
    struct curl_slist *n = curl_slist_append(h->hdrs, line);
    if (!n) return MS_ENOMEM;
    h->hdrs = n;
    return MS_OK;
}

/* Build the easy handle from the options. */
static int setup(http_state *h, ms_error *err)
{
    ms_forwarder *f = h->f;
    const char *url = ms_forwarder_opt_str(f, "url");
    if (!url || !*url)
        return ms_error_set(err, MS_EINVAL, "forwarder %s: needs url", ms_forwarder_name(f));
    ms_buf u = MS_BUF_INIT;
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/') ul--;
    ms_buf_append(&u, url, ul);
    const char *ep = ms_forwarder_opt_str(f, "endpoint");
    if (ep && *ep) {
        if (*ep != '/') ms_buf_puts(&u, "/");
        int rc = expand_endpoint(f, h->easy, ep, &u, err);
        if (rc != MS_OK) {
            ms_buf_free(&u);
            return rc;
        }
    }
    h->url = strdup(u.data ? u.data : "");
    ms_buf_free(&u);
    if (!h->url) return ms_error_set(err, MS_ENOMEM, "out of memory");
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_URL, h->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "moonstat/" MS_VERSION);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    double timeout = 10;
    ms_forwarder_opt_num(f, "timeout", &timeout);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout * 1000));
    char line[4096];
    const char *ct = ms_forwarder_opt_str(f, "content_type");
    snprintf(line, sizeof line, "Content-Type: %s", ct && *ct ? ct : "application/octet-stream");
    int rc = add_header(h, line);
    const char *ce = ms_forwarder_opt_str(f, "content_encoding");
    if (rc == MS_OK && ce && *ce) {
        snprintf(line, sizeof line, "Content-Encoding: %s", ce);
        rc = add_header(h, line);
    }
    if (rc == MS_OK) rc = add_header(h, "Expect:"); /* no 100-continue round trip */
    const char *tok = ms_forwarder_opt_str(f, "token");
    if (rc == MS_OK && tok && *tok) {
        const char *scheme = ms_forwarder_opt_str(f, "token_scheme");
        snprintf(line, sizeof line, "Authorization: %s %s", scheme && *scheme ? scheme : "Bearer",
                 tok);
        rc = add_header(h, line);
    }
    const char *hl = ms_forwarder_opt_str(f, "headers");
    while (rc == MS_OK && hl && *hl) {
        size_t n = strcspn(hl, "\n");
        snprintf(line, sizeof line, "%.*s", (int)n, hl);
        rc = add_header(h, line);
        hl += n + (hl[n] == '\n');
    }
    if (rc != MS_OK) return ms_error_set(err, rc, "out of memory");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs);
    const char *user = ms_forwarder_opt_str(f, "user");
    if (user && *user) {
        const char *pw = ms_forwarder_opt_str(f, "password");
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, pw ? pw : "");
    }
    const char *ca = ms_forwarder_opt_str(f, "ca_file");
    if (ca && *ca) curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    const char *insecure = ms_forwarder_opt_str(f, "insecure");
    if (insecure && !strcmp(insecure, "true")) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return MS_OK;
}

static int http_start(ms_forwarder *f, ms_error *err)
{
    static int global_init;
    if (!global_init) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return ms_error_set(err, MS_EINVAL, "curl_global_init failed");
        global_init = 1;
    }
    http_state *h = calloc(1, sizeof *h);
    if (!h) return ms_error_set(err, MS_ENOMEM, "out of memory");
    h->f = f;
    h->backoff_ms = 1000;
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    int rc = h->multi && h->easy ? setup(h, err) : ms_error_set(err, MS_ENOMEM, "curl init failed");
    if (rc != MS_OK) {
        if (h->easy) curl_easy_cleanup(h->easy);
        if (h->multi) curl_multi_cleanup(h->multi);
        curl_slist_free_all(h->hdrs);
        free(h->url);
        free(h);
        return rc;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    uv_timer_init(ms_forwarder_loop(f), &h->curl_timer);
    uv_timer_init(ms_forwarder_loop(f), &h->retry);
    h->curl_timer.data = h->retry.data = h;
    h->handles = 2;
    ms_forwarder_set_data(f, h);
    ms_forwarder_log(f, MS_LOG_INFO, "posting to %s", h->url);
    return MS_OK;
}

static void http_kick(ms_forwarder *f)
{
    http_state *h = ms_forwarder_data(f);
    if (h) try_send(h);
}

static void http_stop(ms_forwarder *f)
{
    http_state *h = ms_forwarder_data(f);
    h->stopping = 1;
    if (h->busy) {
        curl_multi_remove_handle(h->multi, h->easy); /* closes its sockets (socket_cb) */
        h->busy = 0;
        ms_forwarder_release(f);
    }
    curl_multi_cleanup(h->multi); /* closes the cached connections (socket_cb REMOVE) */
    h->multi = NULL;
    uv_close((uv_handle_t *)&h->curl_timer, handle_closed);
    uv_close((uv_handle_t *)&h->retry, handle_closed);
    maybe_done(h);
}

const ms_transport ms_transport_http = {
    .name = "http",
    .pull = 0,
    .start = http_start,
    .kick = http_kick,
    .stop = http_stop,
};
