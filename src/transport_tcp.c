/*
 * transport_tcp.c - stream chunks to host:port (Graphite plaintext, ...).
 *
 * Connects lazily when there is data, writes the queue head by head, and on
 * any error closes the socket and reconnects with exponential backoff
 * (1 s doubling to 30 s). A chunk whose write failed stays queued and is
 * written again whole after the reconnect (line protocols tolerate the
 * repeat; nothing is lost but what the queue bound drops).
 * Options: address (host:port).
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "ms_forwarder.h"
#include "ms_log.h"

typedef struct tcp_state {
    ms_forwarder *f;
    char host[256];
    char port[16];
    uv_tcp_t sock;
    uv_connect_t conn;
    uv_write_t wr;
    uv_getaddrinfo_t gai;
    uv_timer_t retry;
    int connected, connecting, writing, closing_sock, stopping, sock_open;
    uint64_t backoff_ms;
    int handles; /* open uv handles: retry timer, socket */
} tcp_state;

static void try_write(tcp_state *t);
static void start_connect(tcp_state *t);

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
    ms_forwarder_log(t->f, MS_LOG_WARN, "%s %s:%s: %s (retry in %llus)", what, t->host, t->port,
                     uv_strerror(status), (unsigned long long)(t->backoff_ms / 1000));
    ms_forwarder_release(t->f);
    t->connected = t->connecting = 0;
    if (t->sock_open && !t->closing_sock) {
        t->closing_sock = 1;
        uv_close((uv_handle_t *)&t->sock, handle_closed);
    }
    if (!t->stopping) uv_timer_start(&t->retry, retry_cb, t->backoff_ms, 0);
    t->backoff_ms = t->backoff_ms * 2 > 30000 ? 30000 : t->backoff_ms * 2;
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
    ms_forwarder_pop(t->f, 1);
    try_write(t);
}

static void try_write(tcp_state *t)
{
    if (!t->connected || t->writing) return;
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
    t->backoff_ms = 1000;
    ms_forwarder_log(t->f, MS_LOG_INFO, "connected to %s:%s", t->host, t->port);
    try_write(t);
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tcp_state *t = req->data;
    if (t->stopping) {
        uv_freeaddrinfo(res);
        t->handles--; /* the resolve counted as pending work */
        maybe_done(t);
        return;
    }
    t->handles--;
    if (status < 0) {
        uv_freeaddrinfo(res);
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
    int rc = uv_tcp_connect(&t->conn, &t->sock, res->ai_addr, connect_cb);
    uv_freeaddrinfo(res);
    if (rc < 0) fail(t, "connect to", rc);
}

static void start_connect(tcp_state *t)
{
    if (t->connected || t->connecting || t->closing_sock || t->stopping) return;
    t->connecting = 1;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    t->gai.data = t;
    t->handles++;
    int rc =
        uv_getaddrinfo(ms_forwarder_loop(t->f), &t->gai, resolved_cb, t->host, t->port, &hints);
    if (rc < 0) {
        t->handles--;
        t->connecting = 0;
        fail(t, "resolve", rc);
    }
}

static int tcp_start(ms_forwarder *f, ms_error *err)
{
    const char *addr = ms_forwarder_opt_str(f, "address");
    char host[256];
    int port;
    if (!addr || ms_parse_address(addr, host, sizeof host, &port) != MS_OK)
        return ms_error_set(err, MS_EINVAL, "forwarder %s: needs address host:port",
                            ms_forwarder_name(f));
    tcp_state *t = calloc(1, sizeof *t);
    if (!t) return ms_error_set(err, MS_ENOMEM, "out of memory");
    t->f = f;
    snprintf(t->host, sizeof t->host, "%s", host);
    snprintf(t->port, sizeof t->port, "%d", port);
    t->backoff_ms = 1000;
    uv_timer_init(ms_forwarder_loop(f), &t->retry);
    t->retry.data = t;
    t->handles = 1;
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
    uv_close((uv_handle_t *)&t->retry, handle_closed);
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
