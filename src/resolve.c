/*
 * resolve.c - a socket transport's `address` resolved on libuv's thread
 * pool (see ms_resolve.h): the option parsed once, one getaddrinfo request
 * at a time, the first address handed to the transport's callback.
 */
#include <stdio.h>
#include <string.h>

#include "ms_config.h"
#include "ms_resolve.h"

int ms_resolve_init(ms_resolve *r, uv_loop_t *loop, const char *address, int socktype,
                    const char *name, ms_error *err)
{
    int port;
    memset(r, 0, sizeof *r);
    if (!address || ms_parse_address(address, r->host, sizeof r->host, &port) != MS_OK)
        return ms_error_set(err, MS_EINVAL, "forwarder %s: needs address host:port", name);
    snprintf(r->port, sizeof r->port, "%d", port);
    r->loop = loop;
    r->socktype = socktype;
    return MS_OK;
}

/* The answer: the first address to the callback, then the list is freed
 * (the callback may have freed r: it is not touched after the call). */
static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ms_resolve *r = req->data;
    r->pending = 0;
    if (status == 0 && !res) status = UV_EAI_NODATA;
    if (status < 0)
        r->cb(r->data, status, NULL, 0);
    else
        r->cb(r->data, 0, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
}

int ms_resolve_start(ms_resolve *r, ms_resolve_cb cb, void *data)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = r->socktype;
    r->cb = cb;
    r->data = data;
    r->req.data = r;
    int rc = uv_getaddrinfo(r->loop, &r->req, resolved_cb, r->host, r->port, &hints);
    if (rc == 0) r->pending = 1;
    return rc;
}

void ms_resolve_cancel(ms_resolve *r)
{
    if (r->pending) uv_cancel((uv_req_t *)&r->req);
}
