/*
 * listener_stream.c - the StatsD listener's sockets on the main loop: TCP
 * (newline-framed lines, at most MS_SD_MAX_LINE each, a partial last line
 * kept until the next read or parsed at EOF) and the unix datagram socket
 * for DogStatsD clients. Both parse into the listener's main-loop table
 * (l->local), merged at the next flush like the workers' tables.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "listener_int.h"
#include "ms_config.h"
#include "ms_log.h"

/* ---- TCP ---- */

static void conn_closed(uv_handle_t *h)
{
    tcp_conn *c = h->data;
    listener *l = c->l;
    for (tcp_conn **pp = &l->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    free(c->buf);
    free(c);
}

static void conn_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    static char rbuf[65536];
    (void)h;
    (void)sz;
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

/* Parse the whole lines of what arrived; keep the partial last line. */
static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    tcp_conn *c = s->data;
    listener *l = c->l;
    if (n < 0) {
        if (c->len && !c->skipping)
            ms_sd_listener_parse(l, l->local, c->buf, c->len, NULL, c->peer);
        c->len = 0;
        if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, conn_closed);
        return;
    }
    const char *p = b->base, *e = b->base + n;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *end = nl ? nl : e;
        size_t add = (size_t)(end - p);
        if (!c->skipping) {
            if (c->len + add > MS_SD_MAX_LINE) {
                pctx px = {l, l->local, NULL, c->peer};
                atomic_fetch_add(&l->lines, 1);
                atomic_fetch_add(&l->bad, 1);
                ms_sd_listener_bad(&px, c->buf, c->len, "line too long");
                c->skipping = 1;
                c->len = 0;
            } else {
                memcpy(c->buf + c->len, p, add);
                c->len += add;
            }
        }
        if (!nl) break;
        if (!c->skipping && c->len)
            ms_sd_listener_parse(l, l->local, c->buf, c->len, NULL, c->peer);
        c->len = 0;
        c->skipping = 0;
        p = nl + 1;
    }
}

static void on_conn(uv_stream_t *srv, int status)
{
    listener *l = srv->data;
    if (status < 0) return;
    tcp_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->buf = malloc(MS_SD_MAX_LINE + 1))) {
        free(c);
        return;
    }
    c->l = l;
    uv_tcp_init(ms_sd_loop, &c->h);
    c->h.data = c;
    c->next = l->conns;
    l->conns = c;
    if (uv_accept(srv, (uv_stream_t *)&c->h) != 0) {
        uv_close((uv_handle_t *)&c->h, conn_closed);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&c->h, (struct sockaddr *)&ss, &sl) == 0)
        ms_sd_peer_str((struct sockaddr *)&ss, c->peer, sizeof c->peer);
    uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read);
}

int ms_sd_tcp_start(listener *l, ms_error *err)
{
    if (!*l->c.tcp || l->json) return MS_OK;
    char host[256];
    int port;
    ms_parse_address(l->c.tcp, host, sizeof host, &port);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return ms_error_set(err, MS_EINVAL, "listeners.%s.tcp: %s: not an IP address", l->name,
                            l->c.tcp);
    if (!(l->tcp = malloc(sizeof *l->tcp))) return ms_error_set(err, MS_ENOMEM, "out of memory");
    uv_tcp_init(ms_sd_loop, l->tcp);
    l->tcp->data = l;
    int rc = uv_tcp_bind(l->tcp, (struct sockaddr *)&ss, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)l->tcp, 128, on_conn);
    if (rc)
        return ms_error_set(err, MS_EIO, "listeners.%s.tcp: listen %s: %s", l->name, l->c.tcp,
                            uv_strerror(rc));
    return MS_OK;
}

/* ---- unix datagrams ---- */

static void unix_readable(uv_poll_t *h, int status, int events)
{
    listener *l = h->data;
    static char buf[DGRAM_MAX];
    (void)events;
    if (status < 0) return;
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(l->unix_fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) break;
        ms_sd_listener_parse(l, l->local, buf, (size_t)n, NULL, "unix socket");
    }
}

int ms_sd_unix_start(listener *l, ms_error *err)
{
    l->unix_fd = -1;
    if (!*l->c.unix_path || l->json) return MS_OK;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", l->c.unix_path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return ms_error_set(err, MS_EIO, "listeners.%s.unix: %s", l->name, strerror(errno));
    unlink(l->c.unix_path); /* a socket left by an earlier run */
    int rb = (int)l->c.recv_buffer;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        return ms_error_set(err, MS_EIO, "listeners.%s.unix: bind %s: %s", l->name, l->c.unix_path,
                            strerror(e));
    }
    if (!(l->unix_poll = malloc(sizeof *l->unix_poll))) {
        close(fd);
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    l->unix_fd = fd;
    uv_poll_init(ms_sd_loop, l->unix_poll, fd);
    l->unix_poll->data = l;
    uv_poll_start(l->unix_poll, UV_READABLE, unix_readable);
    return MS_OK;
}

void ms_sd_free_handle(uv_handle_t *h)
{
    free(h);
}

void ms_sd_tcp_stop(listener *l)
{
    if (l->tcp) {
        uv_close((uv_handle_t *)l->tcp, ms_sd_free_handle);
        l->tcp = NULL;
    }
    for (tcp_conn *c = l->conns; c; c = c->next)
        if (!uv_is_closing((uv_handle_t *)&c->h)) uv_close((uv_handle_t *)&c->h, conn_closed);
}

void ms_sd_unix_stop(listener *l)
{
    if (l->unix_fd < 0) return;
    unix_readable(l->unix_poll, 0, UV_READABLE); /* what is queued */
    uv_poll_stop(l->unix_poll);
    uv_close((uv_handle_t *)l->unix_poll, ms_sd_free_handle);
    l->unix_poll = NULL;
    close(l->unix_fd);
    unlink(l->c.unix_path);
    l->unix_fd = -1;
}
