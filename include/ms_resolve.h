/*
 * ms_resolve.h - resolve a socket transport's `address` (host:port) on
 * libuv's thread pool (src/transport_tcp.c, src/transport_udp.c).
 *
 * One request at a time; the callback gets the first address getaddrinfo
 * returns, valid only during the call. What to do after a failure (back
 * off, fail over to another endpoint) is the transport's: the two retry on
 * their own schedules.
 */
#ifndef MS_RESOLVE_H
#define MS_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>

#include <uv.h>

#include "ms_err.h"

/* status: 0 and the address, or a negative libuv error (UV_EAI_CANCELED
 * after ms_resolve_cancel) and sa NULL. The callback may free the
 * ms_resolve (the state it is part of). */
typedef void (*ms_resolve_cb)(void *data, int status, const struct sockaddr *sa, size_t salen);

typedef struct ms_resolve {
    char host[256];
    char port[16];
    int pending; /* 1 from ms_resolve_start until the callback */
    /* private */
    uv_loop_t *loop;
    int socktype;
    uv_getaddrinfo_t req;
    ms_resolve_cb cb;
    void *data;
} ms_resolve;

/* Parse `address` ("host:port", "[v6]:port", ":port") into r for loop;
 * socktype is SOCK_STREAM or SOCK_DGRAM. MS_EINVAL, "forwarder <name>:
 * needs address host:port", when address is NULL or not one. r holds no
 * resources: nothing to free. */
int ms_resolve_init(ms_resolve *r, uv_loop_t *loop, const char *address, int socktype,
                    const char *name, ms_error *err);
/* Start resolving; cb(data, ...) is called once, later, on the loop. 0, or a
 * negative libuv error and no callback. Not while r->pending. */
int ms_resolve_start(ms_resolve *r, ms_resolve_cb cb, void *data);
/* Cancel a pending resolve: its callback gets UV_EAI_CANCELED unless it was
 * done already (then it gets the answer). Nothing when none is pending. */
void ms_resolve_cancel(ms_resolve *r);

#endif
