/*
 * test_resolve.c - ms_resolve (src/resolve.c): the address option parsed
 * with a message naming the forwarder, numeric IPv4 and IPv6 addresses
 * resolved on the loop, a name that does not resolve, and a cancelled
 * request that still calls back once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "ms_resolve.h"
#include "t.h"

typedef struct answer {
    int calls, status, family, port;
    char ip[64];
} answer;

static void on_resolved(void *data, int status, const struct sockaddr *sa, size_t salen)
{
    answer *a = data;
    a->calls++;
    a->status = status;
    if (!sa) return;
    a->family = sa->sa_family;
    if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, a->ip, sizeof a->ip);
        a->port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, a->ip, sizeof a->ip);
        a->port = ntohs(in6->sin6_port);
    }
}

/* Resolve address on a fresh loop; the answer in *a. */
static int resolve(uv_loop_t *loop, const char *address, int socktype, answer *a)
{
    ms_resolve r;
    ms_error err = {0};
    memset(a, 0, sizeof *a);
    if (ms_resolve_init(&r, loop, address, socktype, "t", &err) != MS_OK) return -1;
    int rc = ms_resolve_start(&r, on_resolved, a);
    if (rc < 0) return rc;
    T_EQ_INT(r.pending, 1, "pending while on the thread pool");
    uv_run(loop, UV_RUN_DEFAULT);
    T_EQ_INT(r.pending, 0, "not pending after the callback");
    return 0;
}

int main(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ms_resolve r;
    ms_error err = {0};

    T_EQ_INT(ms_resolve_init(&r, &loop, NULL, SOCK_STREAM, "carbon", &err), MS_EINVAL,
             "no address: MS_EINVAL");
    T_EQ_STR(err.msg, "forwarder carbon: needs address host:port", "the message names it");
    memset(&err, 0, sizeof err);
    T_EQ_INT(ms_resolve_init(&r, &loop, "graphite.example.com", SOCK_STREAM, "c2", &err), MS_EINVAL,
             "no port: MS_EINVAL");
    T_EQ_STR(err.msg, "forwarder c2: needs address host:port", "... naming the forwarder");
    T_EQ_INT(ms_resolve_init(&r, &loop, "graphite.example.com:2003", SOCK_DGRAM, "c", &err), MS_OK,
             "host:port parses");
    T_EQ_STR(r.host, "graphite.example.com", "host kept");
    T_EQ_STR(r.port, "2003", "port kept as text");
    T_EQ_INT(r.pending, 0, "nothing pending after init");

    answer a;
    T_EQ_INT(resolve(&loop, "127.0.0.1:2003", SOCK_STREAM, &a), 0, "IPv4 started");
    T_EQ_INT(a.calls, 1, "IPv4: one callback");
    T_EQ_INT(a.status, 0, "IPv4: resolved");
    T_EQ_INT(a.family, AF_INET, "IPv4: AF_INET");
    T_EQ_STR(a.ip, "127.0.0.1", "IPv4: the address");
    T_EQ_INT(a.port, 2003, "IPv4: the port");

    T_EQ_INT(resolve(&loop, "[::1]:8125", SOCK_DGRAM, &a), 0, "IPv6 started");
    T_EQ_INT(a.status, 0, "IPv6: resolved");
    T_EQ_INT(a.family, AF_INET6, "IPv6: AF_INET6");
    T_EQ_STR(a.ip, "::1", "IPv6: the address");
    T_EQ_INT(a.port, 8125, "IPv6: the port");

    T_EQ_INT(resolve(&loop, "no-such-host.invalid:9", SOCK_STREAM, &a), 0, "bad name started");
    T_EQ_INT(a.calls, 1, "bad name: one callback");
    T_OK(a.status < 0, "bad name: an error (%s)", uv_strerror(a.status));
    T_EQ_INT(a.family, 0, "bad name: no address");

    /* cancelled at once: one callback, with UV_EAI_CANCELED or (when the
     * thread pool was quicker) the answer */
    memset(&a, 0, sizeof a);
    T_EQ_INT(ms_resolve_init(&r, &loop, "127.0.0.1:1", SOCK_STREAM, "c", &err), MS_OK, "init");
    T_EQ_INT(ms_resolve_start(&r, on_resolved, &a), 0, "started");
    ms_resolve_cancel(&r);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(a.calls, 1, "cancelled: one callback");
    T_OK(a.status == UV_EAI_CANCELED || a.status == 0,
         "cancelled: UV_EAI_CANCELED or the answer (%d)", a.status);
    T_EQ_INT(r.pending, 0, "cancelled: not pending");
    ms_resolve_cancel(&r); /* nothing pending: nothing happens */

    uv_loop_close(&loop);
    return t_done();
}
