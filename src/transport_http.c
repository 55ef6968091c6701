/*
 * transport_http.c - POST each queued chunk to an HTTP(S) endpoint
 * (InfluxDB, OpenTSDB, KairosDB, ...) with libcurl's multi interface driven
 * by the libuv loop (curl_multi_socket_action from uv_poll and uv_timer
 * callbacks: nothing blocks the loop).
 *
 * One request is in flight at a time, in queue order, on one reused easy
 * handle (keep-alive). Outcome of a request:
 *   2xx                       sent: the chunk is popped and counted as sent;
 *   5xx, 429, network errors  the chunk stays queued; retried after the
 *   and timeouts              Retry-After the response asked for (seconds or
 *                             an HTTP date), else after the forwarder's
 *                             `retry` backoff (base doubling to cap, with
 *                             jitter; reset on success); counted as retries;
 *   other 4xx (and 1xx/3xx)   rejected (ms_forwarder_reject): dropped, counted
 *                             as rejected and failed, logged with the start
 *                             of the response body at most once a minute.
 *
 * Options (read as text with ms_forwarder_opt_str; an encoder declares those
 * its users may set, with its own defaults):
 *   url              base URL, e.g. http://127.0.0.1:8086 (required)
 *   endpoint         appended to url; "{key}" is replaced by the URL-escaped
 *                    value of option `key`; a query parameter whose value
 *                    comes out empty is left out ("&rp={rp}" with rp "")
 *   content_type     Content-Type header
 *   content_encoding Content-Encoding header
 *   compress         "", "gzip" or "snappy": each body is compressed just
 *                    before it is POSTed (src/compress.c) and Content-Encoding
 *                    says so (it replaces content_encoding)
 *   headers          extra headers (a map)
 *   fixed_headers    header lines an encoder always sends ("Name: value", one a
 *                    line; the encoder declares it with its one allowed value)
 *   timeout          whole-request timeout (duration, default 10 s)
 *   user, password   basic auth
 *   token            "Authorization: <token_scheme> <token>" (scheme default Bearer)
 *   ca_file          CA bundle to verify the server with
 *   insecure         true: do not verify the TLS certificate or host name
 *   cert, key        TLS client certificate and its private key (PEM files;
 *                    key may be left out when cert holds both)
 *   key_password     passphrase of an encrypted key
 *   auth_header      a header line whose "{key}" are replaced by the raw value
 *                    of option `key`, e.g. "DD-API-KEY: {api_key}"; left out
 *                    when a value is empty
 * Secrets (password, token, headers, auth_header, key_password) are never logged.
 *
 * A chunk with an endpoint (a part, see ms_forwarder.h) goes to url + that
 * endpoint instead, expanded like `endpoint`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <uv.h>

#include "ms_buf.h"
#include "ms_compress.h"
#include "ms_forwarder.h"
#include "ms_log.h"
#include "ms_retry.h"

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
    char *base;               /* url without the endpoint, for parts */
    char *part_ep, *part_url; /* the last part endpoint and its URL */
    const char *cur;          /* URL of the request in flight (for logs) */
    char err[CURL_ERROR_SIZE];
    ms_buf body; /* start of the response body (for logs) */
    ms_compress_kind compress;
    ms_buf zbody; /* the compressed body of the request in flight */
    uv_timer_t curl_timer, retry;
    int busy, stopping;
    uint64_t backoff_ms;  /* the wait before the retry now scheduled */
    unsigned attempt;     /* failures in a row (backoff exponent) */
    char retry_after[80]; /* Retry-After of the last response */
    int handles;          /* open uv handles: two timers + polls */
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
    ms_buf_free(&h->zbody);
    free(h->url);
    free(h->base);
    free(h->part_ep);
    free(h->part_url);
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

/* Response headers: keep Retry-After. */
static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    http_state *h = ud;
    size_t len = size * n;
    if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        size_t v = len - 12 < sizeof h->retry_after - 1 ? len - 12 : sizeof h->retry_after - 1;
        memcpy(h->retry_after, p + 12, v);
        h->retry_after[v] = 0;
    }
    return len;
}

/* Set h->backoff_ms for the retry of the head chunk (Retry-After when the
 * response had one, else the forwarder's backoff with jitter), log, count. */
static void retry_later(http_state *h, const char *why)
{
    double ra = h->retry_after[0] ? ms_retry_after(h->retry_after, ms_now()) : -1;
    double d =
        ra >= 0 ? (ra > 3600 ? 3600 : ra) : ms_retry_delay(ms_forwarder_retry(h->f), ++h->attempt);
    h->backoff_ms = (uint64_t)(d * 1000);
    ms_forwarder_log(h->f, MS_LOG_WARN, "POST %s: %s (retry in %.1fs%s)", h->cur, why,
                     (double)h->backoff_ms / 1000, ra >= 0 ? ", as Retry-After asks" : "");
    ms_forwarder_count_retry(h->f);
    ms_forwarder_release(h->f);
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
    char why[640];
    if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "%s", h->err[0] ? h->err : curl_easy_strerror(rc));
    } else if (status >= 200 && status < 300) {
        h->attempt = 0;
        ms_forwarder_pop(h->f, 1);
        try_send(h);
        return;
    } else if (ms_retry_http_transient(status)) {
        snprintf(why, sizeof why, "HTTP %ld", status);
    } else { /* permanent: not retried, so one bad batch never blocks the queue */
        snprintf(why, sizeof why, "POST %s: HTTP %ld", h->cur, status);
        h->attempt = 0;
        ms_forwarder_reject(h->f, why, h->body.data, h->body.len);
        try_send(h);
        return;
    }
    if (rc != CURLE_OK) h->retry_after[0] = 0; /* a header of a response we did not get */
    retry_later(h, why);
    if (!h->stopping) uv_timer_start(&h->retry, retry_cb, h->backoff_ms, 0);
    if (status != 429) ms_forwarder_endpoint_failed(h->f); /* failover: the queue may move on */
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

/* The bytes to POST for chunk c: its data, or with `compress` its data
 * compressed into h->zbody (owned by h, valid until the next request);
 * *len is set. NULL when compression failed (a retry is scheduled). */
static const char *request_body(http_state *h, ms_chunk *c, size_t *len)
{
    *len = c->len;
    if (h->compress == MS_COMPRESS_NONE) return c->data;
    if (h->zbody.cap > ((size_t)4 << 20) && c->len < ((size_t)1 << 20))
        ms_buf_free(&h->zbody); /* do not keep a huge scratch for small bodies */
    ms_error err = {0};
    if (ms_compress(h->compress, c->data, c->len, &h->zbody, &err) != MS_OK) {
        retry_later(h, err.msg);
        uv_timer_start(&h->retry, retry_cb, h->backoff_ms, 0);
        return NULL;
    }
    *len = h->zbody.len;
    return h->zbody.data;
}

/* Start POSTing the head chunk unless a request or a retry wait is on. */
static const char *chunk_url(http_state *h, ms_chunk *c);

static void try_send(http_state *h)
{
    if (h->busy || h->stopping || uv_is_active((uv_handle_t *)&h->retry)) return;
    ms_chunk *c = ms_forwarder_head(h->f);
    if (!c) return;
    if (!(h->cur = chunk_url(h, c))) {
        h->cur = h->url;
        ms_forwarder_pop(h->f, 0); /* its endpoint names no option: cannot succeed */
        try_send(h);
        return;
    }
    curl_easy_setopt(h->easy, CURLOPT_URL, h->cur);
    h->err[0] = 0;
    h->body.len = 0;
    h->retry_after[0] = 0;
    size_t blen = c->len;
    const char *body = request_body(h, c, &blen);
    if (!body) return; /* could not compress: retry_later was called */
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, body);
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

/* The URL for chunk c (borrowed from h): the forwarder's, or url + the
 * chunk's part endpoint (the last one is cached); NULL (logged) when that
 * endpoint names no option, or memory ran out. */
static const char *chunk_url(http_state *h, ms_chunk *c)
{
    if (!c->endpoint) return h->url;
    if (h->part_ep && !strcmp(h->part_ep, c->endpoint)) return h->part_url;
    ms_buf u = MS_BUF_INIT;
    ms_error err = {0};
    ms_buf_puts(&u, h->base);
    if (*c->endpoint != '/') ms_buf_puts(&u, "/");
    if (expand_endpoint(h->f, h->easy, c->endpoint, &u, &err) != MS_OK) {
        ms_forwarder_log(h->f, MS_LOG_ERROR, "dropping %u samples: %s", c->nsamples, err.msg);
        ms_buf_free(&u);
        return NULL;
    }
    free(h->part_ep);
    free(h->part_url);
    h->part_ep = strdup(c->endpoint);
    h->part_url = ms_buf_detach(&u, NULL);
    if (h->part_ep && h->part_url) return h->part_url;
    free(h->part_ep); /* out of memory: the chunk is dropped, never sent elsewhere */
    free(h->part_url);
    h->part_ep = h->part_url = NULL;
    return NULL;
}

/* The auth_header option with its {key} placeholders filled in, appended to
 * out; *empty is set when a value was empty (then the header is left out). */
static int expand_secret(ms_forwarder *f, const char *tpl, ms_buf *out, int *empty, ms_error *err)
{
    *empty = 0;
    for (const char *p = tpl; *p; p++) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        if (!end) {
            ms_buf_append(out, p, 1);
            continue;
        }
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(end - p - 1), p + 1);
        const char *v = ms_forwarder_opt_str(f, key);
        if (!v)
            return ms_error_set(err, MS_EINVAL,
                                "forwarder %s: auth_header names {%s}, which is no option",
                                ms_forwarder_name(f), key);
        if (strpbrk(v, "\r\n"))
            return ms_error_set(err, MS_EINVAL, "forwarder %s: option %s holds a line break",
                                ms_forwarder_name(f), key);
        *empty |= !*v;
        ms_buf_puts(out, v);
        p = end;
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

/* Add each line of text ("Name: value" lines, NULL for none) as a header. */
static int add_header_lines(http_state *h, const char *text)
{
    char line[4096];
    int rc = MS_OK;
    while (rc == MS_OK && text && *text) {
        size_t n = strcspn(text, "\n");
        snprintf(line, sizeof line, "%.*s", (int)n, text);
        if (n) rc = add_header(h, line);
        text += n + (text[n] == '\n');
    }
    return rc;
}

/* Is `path` a file this process can read? (a clear error at start beats a
 * TLS handshake failure on every request) */
static int readable(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp) fclose(fp);
    return fp != NULL;
}

/* TLS client certificate: options cert and key (PEM files) and key_password
 * (for an encrypted key) go to libcurl; a key alone, or a file that cannot be
 * read, is an error naming the option. The password is never logged. */
static int client_cert(ms_forwarder *f, CURL *e, ms_error *err)
{
    const char *cert = ms_forwarder_opt_str(f, "cert"), *key = ms_forwarder_opt_str(f, "key");
    const char *pass = ms_forwarder_opt_str(f, "key_password");
    if (cert && !*cert) cert = NULL;
    if (key && !*key) key = NULL;
    if (!cert && key)
        return ms_error_set(err, MS_EINVAL, "forwarder %s: key is set but cert is not",
                            ms_forwarder_name(f));
    if (!cert) return MS_OK;
    if (!readable(cert) || (key && !readable(key)))
        return ms_error_set(err, MS_ENOENT, "forwarder %s: cannot read %s file %s",
                            ms_forwarder_name(f), readable(cert) ? "key" : "cert",
                            readable(cert) ? key : cert);
    curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    if (key) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, key);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (pass && *pass) curl_easy_setopt(e, CURLOPT_KEYPASSWD, pass);
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
    if (memchr(url, '{', ul)) { /* "https://api.{site}": url may name options too */
        int rc = expand_endpoint(f, h->easy, url, &u, err);
        if (rc != MS_OK) {
            ms_buf_free(&u);
            return rc;
        }
        while (u.len && u.data[u.len - 1] == '/') u.len--;
    } else {
        ms_buf_append(&u, url, ul);
    }
    size_t base_len = u.len;
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
    h->base = h->url ? strndup(h->url, base_len) : NULL;
    h->cur = h->url;
    if (!h->url || !h->base) return ms_error_set(err, MS_ENOMEM, "out of memory");
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_URL, h->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
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
    const char *cz = ms_forwarder_opt_str(f, "compress");
    if (ms_compress_parse(cz, &h->compress) != MS_OK)
        return ms_error_set(err, MS_EINVAL,
                            "forwarder %s: compress '%s' is not one of: gzip, snappy",
                            ms_forwarder_name(f), cz);
    ms_error zerr = {0};
    if (ms_compress_ready(h->compress, &zerr) != MS_OK)
        return ms_error_set(err, zerr.code, "forwarder %s: compress %s", ms_forwarder_name(f),
                            zerr.msg);
    if (h->compress != MS_COMPRESS_NONE) ce = ms_compress_name(h->compress);
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
    const char *ah = ms_forwarder_opt_str(f, "auth_header");
    if (rc == MS_OK && ah && *ah) {
        ms_buf sec = MS_BUF_INIT;
        int empty = 0;
        if ((rc = expand_secret(f, ah, &sec, &empty, err)) != MS_OK) {
            ms_buf_free(&sec);
            return rc;
        }
        if (!empty && sec.data) rc = add_header(h, sec.data);
        ms_buf_free(&sec);
    }
    if (rc == MS_OK) rc = add_header_lines(h, ms_forwarder_opt_str(f, "fixed_headers"));
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
    if ((rc = client_cert(f, e, err)) != MS_OK) return rc;
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
        free(h->base);
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
