/*
 * ms_httpd.h - a small HTTP/1.1 server on the libuv loop, for the scrape
 * endpoint (/metrics) and /health. GET and HEAD only, keep-alive, bounded
 * request size and connection count.
 *
 * Handlers are registered per path; a handler fills a response buffer and
 * returns the status. One server may be shared by several owners of paths.
 */
#ifndef MS_HTTPD_H
#define MS_HTTPD_H

#include "ms_buf.h"
#include "ms_err.h"

struct uv_loop_s;
typedef struct ms_httpd ms_httpd;

typedef struct ms_http_response {
    int status;               /* 200 by default */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    ms_buf body;
} ms_http_response;

typedef void (*ms_http_handler)(const char *path, const char *query, ms_http_response *res,
                                void *ud);

/* Listen on host:port. Returns MS_OK and *out, or MS_EIO with err naming the address. */
int ms_httpd_start(struct uv_loop_s *loop, const char *host, int port, ms_httpd **out,
                   ms_error *err);
/* Route exact `path` to h (replaces an existing route for the path). */
int ms_httpd_route(ms_httpd *s, const char *path, ms_http_handler h, void *ud);
void ms_httpd_unroute(ms_httpd *s, const char *path);
/* Close the listener and connections; `done` (may be NULL) when all closed. */
void ms_httpd_stop(ms_httpd *s, void (*done)(void *ud), void *ud);

#endif
