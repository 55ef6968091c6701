/*
 * transport_udp.c - send each queued chunk to host:port as UDP datagrams
 * (carbon's UDP line receiver, StatsD-like peers).
 *
 * A chunk is cut into datagrams at newline boundaries, each at most
 * `max_datagram` bytes (default 1432: a 1500-byte Ethernet MTU less IPv6
 * and UDP headers, so nothing is fragmented); lines are never split. A line
 * longer than max_datagram goes alone in one datagram, and a line longer
 * than a UDP datagram can be (65507 bytes) is left out, counted and logged.
 *
 * Datagrams are handed to the kernel with uv_udp_try_send; when the socket
 * buffer is full, one uv_udp_send waits for room and the chunk goes on from
 * where it was (chunk->off). A chunk is counted as sent once every datagram
 * was handed over (UDP cannot say more: a datagram lost on the way is lost);
 * a send error drops the rest of the chunk and counts it as failed.
 * The address is resolved when the transport starts and again after a
 * failed resolve (1 s doubling to 30 s); chunks wait in the queue meanwhile.
 * Options: address (host:port), max_datagram (bytes).
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "ms_forwarder.h"
#include "ms_log.h"
#include "ms_resolve.h"
#include "ms_retry.h"

#define UDP_MAX_PAYLOAD 65507

typedef struct udp_state {
    ms_forwarder *f;
    ms_resolve res; /* host:port, and the request while one is pending */
    size_t max_dgram;
    uv_udp_t sock;
    uv_udp_send_t req;
    uv_timer_t retry;
    struct sockaddr_storage addr;
    int resolved, sending, stopping, warned;
    unsigned attempt; /* failed lookups in a row, for the backoff */
    int handles;      /* open uv handles and pending requests */
} udp_state;

static void try_send(udp_state *u);
static void start_resolve(udp_state *u);

/* When stopping and every handle and request is done: free the state and
 * tell the core. */
static void maybe_done(udp_state *u)
{
    if (u->stopping && u->handles == 0) {
        ms_forwarder *f = u->f;
        ms_forwarder_set_data(f, NULL);
        free(u);
        ms_forwarder_closed(f);
    }
}

static void handle_closed(uv_handle_t *h)
{
    udp_state *u = h->data;
    u->handles--;
    maybe_done(u);
}

/* The next datagram of c from c->off: its length in *len (0 at the end).
 * Returns 1 to send it, 0 to skip it (a line too long for any datagram). */
static int next_datagram(udp_state *u, ms_chunk *c, size_t *len)
{
    const char *p = c->data + c->off;
    size_t rest = c->len - c->off;
    if (rest <= u->max_dgram) {
        *len = rest;
        return rest <= UDP_MAX_PAYLOAD;
    }
    for (size_t i = u->max_dgram; i > 0; i--) /* last newline that fits */
        if (p[i - 1] == '\n') {
            *len = i;
            return 1;
        }
    const char *nl = memchr(p, '\n', rest); /* the first line alone is too long */
    *len = nl ? (size_t)(nl - p) + 1 : rest;
    return *len <= UDP_MAX_PAYLOAD;
}

static void retry_cb(uv_timer_t *t)
{
    udp_state *u = t->data;
    if (!u->resolved)
        start_resolve(u);
    else
        try_send(u);
}

/* A send failed: the rest of the head chunk is dropped and counted. */
static void send_failed(udp_state *u, int status)
{
    if (!u->warned)
        ms_forwarder_log(u->f, MS_LOG_WARN, "send to %s:%s: %s (dropping the rest of the chunk)",
                         u->res.host, u->res.port, uv_strerror(status));
    u->warned = 1;
    ms_forwarder_pop(u->f, 0);
}

/* A datagram that waited for room in the socket buffer went out (or failed,
 * or was cancelled by stop): move past it and go on. */
static void send_cb(uv_udp_send_t *req, int status)
{
    udp_state *u = req->data;
    u->sending = 0;
    u->handles--;
    if (u->stopping) {
        ms_forwarder_release(u->f);
        maybe_done(u);
        return;
    }
    ms_chunk *c = ms_forwarder_head(u->f);
    if (status < 0) {
        send_failed(u, status);
    } else if (c) {
        size_t len = 0;
        next_datagram(u, c, &len);
        c->off += len;
        if (c->off >= c->len) ms_forwarder_pop(u->f, 1);
    }
    try_send(u);
}

/* Write queued chunks as datagrams until the queue is empty or the socket
 * buffer is full (then one uv_udp_send waits for room). */
static void try_send(udp_state *u)
{
    ms_chunk *c;
    while (u->resolved && !u->sending && !u->stopping && (c = ms_forwarder_head(u->f))) {
        while (c->off < c->len) {
            size_t len = 0;
            if (!next_datagram(u, c, &len)) {
                ms_forwarder_log(u->f, MS_LOG_WARN,
                                 "a %zu-byte line does not fit a UDP datagram: left out", len);
                ms_forwarder_count_failed(u->f, 1);
                c->off += len;
                continue;
            }
            uv_buf_t buf = uv_buf_init(c->data + c->off, (unsigned)len);
            int rc = uv_udp_try_send(&u->sock, &buf, 1, (const struct sockaddr *)&u->addr);
            if (rc == UV_EAGAIN) { /* socket buffer full: wait for room */
                u->req.data = u;
                rc = uv_udp_send(&u->req, &u->sock, &buf, 1, (const struct sockaddr *)&u->addr,
                                 send_cb);
                if (rc == 0) {
                    u->sending = 1;
                    u->handles++;
                    return;
                }
            }
            if (rc < 0) {
                send_failed(u, rc);
                break;
            }
            c->off += len;
        }
        if (c->off >= c->len) {
            u->warned = 0;
            ms_forwarder_pop(u->f, 1);
        }
    }
}

/* The address resolved (keep it and start sending) or not (retry after
 * the backoff). */
static void resolved(void *data, int status, const struct sockaddr *sa, size_t salen)
{
    udp_state *u = data;
    u->handles--;
    if (u->stopping) {
        maybe_done(u);
        return;
    }
    if (status < 0) {
        double delay = ms_retry_delay(ms_forwarder_retry(u->f), ++u->attempt);
        ms_forwarder_log(u->f, MS_LOG_WARN, "resolve %s:%s: %s (retry in %.1fs)", u->res.host,
                         u->res.port, uv_strerror(status), delay);
        uv_timer_start(&u->retry, retry_cb, (uint64_t)(delay * 1000), 0);
        return;
    }
    memcpy(&u->addr, sa, salen);
    u->resolved = 1;
    u->attempt = 0;
    ms_forwarder_log(u->f, MS_LOG_INFO, "sending datagrams to %s:%s", u->res.host, u->res.port);
    try_send(u);
}

/* Resolve host:port on libuv's thread pool (one request at a time). */
static void start_resolve(udp_state *u)
{
    if (u->res.pending || u->stopping) return;
    int rc = ms_resolve_start(&u->res, resolved, u);
    if (rc < 0) {
        double delay = ms_retry_delay(ms_forwarder_retry(u->f), ++u->attempt);
        ms_forwarder_log(u->f, MS_LOG_WARN, "resolve %s:%s: %s (retry in %.1fs)", u->res.host,
                         u->res.port, uv_strerror(rc), delay);
        uv_timer_start(&u->retry, retry_cb, (uint64_t)(delay * 1000), 0);
        return;
    }
    u->handles++;
}

/* Read the options, open the socket and start resolving the address. The
 * state is owned by the forwarder's transport data until stop. */
static int udp_start(ms_forwarder *f, ms_error *err)
{
    uv_loop_t *loop = ms_forwarder_loop(f);
    ms_resolve res;
    int rc = ms_resolve_init(&res, loop, ms_forwarder_opt_str(f, "address"), SOCK_DGRAM,
                             ms_forwarder_name(f), err);
    if (rc != MS_OK) return rc;
    double max = 1432;
    if (ms_forwarder_opt_num(f, "max_datagram", &max) == MS_EINVAL || max < 64 ||
        max > UDP_MAX_PAYLOAD)
        return ms_error_set(
            err, MS_EINVAL, "forwarder %s: max_datagram must be 64 to %d bytes, got '%s'",
            ms_forwarder_name(f), UDP_MAX_PAYLOAD, ms_forwarder_opt_str(f, "max_datagram"));
    udp_state *u = calloc(1, sizeof *u);
    if (!u) return ms_error_set(err, MS_ENOMEM, "out of memory");
    u->f = f;
    u->res = res; /* no request started yet: a plain copy */
    u->max_dgram = (size_t)max;
    rc = uv_udp_init(loop, &u->sock);
    if (rc < 0) {
        free(u);
        return ms_error_set(err, MS_EIO, "forwarder %s: udp socket: %s", ms_forwarder_name(f),
                            uv_strerror(rc));
    }
    u->sock.data = u;
    uv_timer_init(loop, &u->retry);
    u->retry.data = u;
    u->handles = 2;
    ms_forwarder_set_data(f, u);
    start_resolve(u);
    return MS_OK;
}

static void udp_kick(ms_forwarder *f)
{
    udp_state *u = ms_forwarder_data(f);
    if (u) try_send(u);
}

/* Close the timer and the socket (a pending send is cancelled); the state
 * is freed once they are closed. */
static void udp_stop(ms_forwarder *f)
{
    udp_state *u = ms_forwarder_data(f);
    u->stopping = 1;
    ms_resolve_cancel(&u->res);
    uv_close((uv_handle_t *)&u->retry, handle_closed);
    uv_close((uv_handle_t *)&u->sock, handle_closed); /* cancels a pending send */
    maybe_done(u);
}

const ms_transport ms_transport_udp = {
    .name = "udp",
    .pull = 0,
    .start = udp_start,
    .kick = udp_kick,
    .stop = udp_stop,
};
