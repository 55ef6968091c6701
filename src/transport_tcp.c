/*
 * transport_tcp.c - stream chunks to host:port (Graphite plaintext, ...).
 *
 * Connects lazily when there is data, writes the queue head by head, and on
 * any error closes the socket and reconnects after the forwarder's `retry`
 * backoff (base doubling to cap, with jitter; ms_retry.h), counted as
 * retries. A chunk counts as sent once the peer's TCP acknowledged all of it
 * (the socket's unacknowledged bytes, SIOCOUTQ, fall to 0), not when the
 * kernel took it: a chunk written just before the peer died is not lost. The
 * socket is read to see the peer close at once. A chunk whose write failed,
 * or was not acknowledged, stays queued and is written again whole after the
 * reconnect (line protocols tolerate the repeat).
 * Options: address (host:port).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

#include <uv.h>

#include "ms_forwarder.h"
#include "ms_log.h"
#include "ms_resolve.h"
#include "ms_retry.h"

typedef struct tcp_state {
    ms_forwarder *f;
    ms_resolve res; /* host:port, and the request while one is pending */
    uv_tcp_t sock;
    uv_connect_t conn;
    uv_write_t wr;
    uv_timer_t retry;
    uv_timer_t ackw; /* polls for the peer's acknowledgement of the head */
    int acking;      /* the head is written, waiting for that */
    uint64_t ack_since;
    char rbuf[256]; /* what the peer sends (ignored) */
    int connected, connecting, writing, closing_sock, stopping, sock_open;
    uint64_t backoff_ms;
    unsigned attempt; /* failures since the last connect */
    int handles;      /* open uv handles (retry and ack timers, socket), a pending resolve */
} tcp_state;

static void try_write(tcp_state *t);
static void start_connect(tcp_state *t);
static void ack_check(tcp_state *t);
static void ack_tick(uv_timer_t *timer);
static void fail(tcp_state *t, const char *what, int status);

static void maybe_done(tcp_state *t)
{
    if (t->stopping && t->handles == 0) {
        ms_forwarder *f = t->f;
        ms_forwarder_set_data(f, NULL);
        free(t);
        ms_forwarder_closed(f);
    }
}

static void handle_closed(uv_handle_t *h)
{
    tcp_state *t = h->data;
    if ((uv_handle_t *)&t->sock == h) t->closing_sock = t->sock_open = 0;
    t->handles--;
    maybe_done(t);
}

static void retry_cb(uv_timer_t *timer)
{
    tcp_state *t = timer->data;
    if (!t->stopping && ms_forwarder_head(t->f)) {
        ms_forwarder_release(t->f);
        start_connect(t);
    }
}

/* Drop the connection and schedule a reconnect. */
static void fail(tcp_state *t, const char *what, int status)
{
    t->backoff_ms = (uint64_t)(ms_retry_delay(ms_forwarder_retry(t->f), ++t->attempt) * 1000);
    ms_forwarder_log(t->f, MS_LOG_WARN, "%s %s:%s: %s (retry in %.1fs)", what, t->res.host,
                     t->res.port, uv_strerror(status), (double)t->backoff_ms / 1000);
    ms_forwarder_count_retry(t->f);
    ms_forwarder_release(t->f);
    t->connected = t->connecting = t->acking = 0;
    uv_timer_stop(&t->ackw);
    if (t->sock_open && !t->closing_sock) {
        t->closing_sock = 1;
        uv_close((uv_handle_t *)&t->sock, handle_closed);
    }
    if (!t->stopping) uv_timer_start(&t->retry, retry_cb, t->backoff_ms, 0);
    ms_forwarder_endpoint_failed(t->f); /* failover: the queue may move on */
}

static void write_cb(uv_write_t *req, int status)
{
    tcp_state *t = req->data;
    t->writing = 0;
    if (status < 0) {
        if (status != UV_ECANCELED)
            fail(t, "write to", status);
        else
            ms_forwarder_release(t->f);
        return;
    }
    t->acking = 1;
    t->ack_since = uv_now(ms_forwarder_loop(t->f));
    ack_check(t);
}

/* The head is written: sent once the peer acknowledged every byte of it;
 * until then look again every 5 ms (for up to 30 s, then reconnect). */
static void ack_check(tcp_state *t)
{
    if (!t->acking || !t->connected) return;
    int unacked = 0;
#ifdef SIOCOUTQ
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&t->sock, &fd) == 0 && ioctl(fd, SIOCOUTQ, &unacked) < 0)
        unacked = 0;
#endif
    if (unacked > 0) {
        if (uv_now(ms_forwarder_loop(t->f)) - t->ack_since > 30000)
            fail(t, "no acknowledgement from", UV_ETIMEDOUT);
        else
            uv_timer_start(&t->ackw, ack_tick, 5, 0);
        return;
    }
    t->acking = 0;
    ms_forwarder_pop(t->f, 1);
    try_write(t);
}

static void ack_tick(uv_timer_t *timer)
{
    ack_check(timer->data);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    tcp_state *t = h->data;
    *buf = uv_buf_init(t->rbuf, sizeof t->rbuf);
}

/* The peer sends nothing we use; EOF or an error means it went away. */
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    tcp_state *t = s->data;
    if (n < 0 && t->connected)
        fail(t, "connection closed by", n == UV_EOF ? UV_ECONNRESET : (int)n);
}

static void try_write(tcp_state *t)
{
    if (!t->connected || t->writing || t->acking) return;
    ms_chunk *c = ms_forwarder_head(t->f);
    if (!c) return;
    uv_buf_t buf = uv_buf_init(c->data, (unsigned)c->len);
    t->wr.data = t;
    int rc = uv_write(&t->wr, (uv_stream_t *)&t->sock, &buf, 1, write_cb);
    if (rc < 0) {
        fail(t, "write to", rc);
        return;
    }
    t->writing = 1;
}

static void connect_cb(uv_connect_t *req, int status)
{
    tcp_state *t = req->data;
    t->connecting = 0;
    if (status < 0) {
        fail(t, "connect to", status);
        return;
    }
    t->connected = 1;
    t->attempt = 0;
    uv_read_start((uv_stream_t *)&t->sock, alloc_cb, read_cb);
    ms_forwarder_log(t->f, MS_LOG_INFO, "connected to %s:%s", t->res.host, t->res.port);
    try_write(t);
}

/* The address resolved: connect to it (or retry after the backoff). */
static void resolved(void *data, int status, const struct sockaddr *sa, size_t salen)
{
    tcp_state *t = data;
    (void)salen;
    t->handles--; /* the resolve counted as pending work */
    if (t->stopping) {
        maybe_done(t);
        return;
    }
    if (status < 0) {
        t->connecting = 0;
        fail(t, "resolve", status);
        return;
    }
    uv_tcp_init(ms_forwarder_loop(t->f), &t->sock);
    t->sock.data = t;
    t->sock_open = 1;
    t->handles++;
    uv_tcp_nodelay(&t->sock, 1);
    t->conn.data = t;
    int rc = uv_tcp_connect(&t->conn, &t->sock, sa, connect_cb);
    if (rc < 0) fail(t, "connect to", rc);
}

static void start_connect(tcp_state *t)
{
    if (t->connected || t->connecting || t->closing_sock || t->stopping) return;
    t->connecting = 1;
    int rc = ms_resolve_start(&t->res, resolved, t);
    if (rc < 0) {
        t->connecting = 0;
        fail(t, "resolve", rc);
        return;
    }
    t->handles++;
}

static int tcp_start(ms_forwarder *f, ms_error *err)
{
    ms_resolve res;
    int rc = ms_resolve_init(&res, ms_forwarder_loop(f), ms_forwarder_opt_str(f, "address"),
                             SOCK_STREAM, ms_forwarder_name(f), err);
    if (rc != MS_OK) return rc;
    tcp_state *t = calloc(1, sizeof *t);
    if (!t) return ms_error_set(err, MS_ENOMEM, "out of memory");
    t->f = f;
    t->res = res; /* no request started yet: a plain copy */
    t->backoff_ms = 1000;
    uv_timer_init(ms_forwarder_loop(f), &t->retry);
    uv_timer_init(ms_forwarder_loop(f), &t->ackw);
    t->retry.data = t->ackw.data = t;
    t->handles = 2;
    ms_forwarder_set_data(f, t);
    return MS_OK;
}

static void tcp_kick(ms_forwarder *f)
{
    tcp_state *t = ms_forwarder_data(f);
    if (!t) return;
    if (t->connected)
        try_write(t);
    else if (!uv_is_active((uv_handle_t *)&t->retry))
        start_connect(t);
}

static void tcp_stop(ms_forwarder *f)
{
    tcp_state *t = ms_forwarder_data(f);
    t->stopping = 1;
    ms_resolve_cancel(&t->res);
    uv_close((uv_handle_t *)&t->retry, handle_closed);
    uv_close((uv_handle_t *)&t->ackw, handle_closed);
    if (t->sock_open && !t->closing_sock) {
        t->closing_sock = 1;
        uv_close((uv_handle_t *)&t->sock, handle_closed);
    }
    maybe_done(t);
}

const ms_transport ms_transport_tcp = {
    .name = "tcp",
    .pull = 0,
    .start = tcp_start,
    .kick = tcp_kick,
    .stop = tcp_stop,
};
