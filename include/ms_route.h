/*
 * ms_route.h - forwarder-level routing (src/forwarder_route.c): which samples
 * a forwarder takes, and to which of its endpoints each one goes.
 *
 * A forwarder's section may hold, besides its encoder's options:
 *   include, exclude  rules by name glob and tags (the syntax of the `filter`
 *                     processor, which runs them): a sample is taken when some
 *                     include entry matches (or there is none) and no exclude
 *                     entry does; what is left out is counted in
 *                     moonstat_forwarder_excluded_samples_total;
 *   endpoints         several backends, each what `address` (tcp and other
 *                     stream/datagram transports) or `url` (http) would be;
 *   balance           failover (default): one endpoint at a time, the next on
 *                     failure, back to the first after `failback` (30s);
 *                     hash: consistent hashing by series, so each series
 *                     always lands on the same endpoint.
 * A forwarder with endpoints runs one child forwarder per endpoint (its own
 * transport, queue and counters tagged endpoint=...); the parent filters and
 * processes, then hands each child its share of the batch. docs/forwarders/
 * routing.md tells the whole story.
 *
 * forwarder.c calls the ms_route_* functions; transports only report
 * failures (ms_forwarder_endpoint_failed in ms_forwarder.h).
 */
#ifndef MS_ROUTE_H
#define MS_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "ms_config.h"
#include "ms_err.h"
#include "ms_forwarder.h"
#include "ms_sample.h"

/* ---- the hash ring (consistent hashing with virtual nodes) ---- */

typedef struct ms_ring ms_ring;

/* Virtual nodes per endpoint: enough for a share within a few percent of even. */
#define MS_RING_VNODES 1024

/* 64-bit hash of bytes (FNV-1a, then a 64-bit finalizer); stable across
 * runs and machines, so a series keeps its endpoint over restarts. */
uint64_t ms_route_hash(const void *p, size_t len);

/* A ring over `n` endpoint names (n >= 1, at most 65535), `vnodes` points each,
 * placed by hashing the name: adding an endpoint moves only ~1/(n+1) of the
 * keys, all of them to the new one. NULL on allocation failure; free with
 * ms_ring_free. */
ms_ring *ms_ring_new(const char *const *names, size_t n, unsigned vnodes);
/* Index (0-based, into the names given to ms_ring_new) of the endpoint of key. */
size_t ms_ring_pick(const ms_ring *r, const void *key, size_t len);
void ms_ring_free(ms_ring *r);

/* ---- the routing of one forwarder ---- */

typedef struct ms_route ms_route;

/* Is `key` a routing key of a forwarder section (include, exclude,
 * endpoints, balance, failback)? */
int ms_route_is_key(const char *key);

/* Read the routing keys of forwarder f's `section` (errors with config.yaml
 * line:col). *out is NULL when the section has none. With endpoints, one
 * child forwarder per endpoint is created (and started when loop is
 * non-NULL); `tp` is f's transport. Owned by f (ms_route_free). */
int ms_route_new(struct uv_loop_s *loop, lua_State *L, const ms_config *cfg, ms_forwarder *f,
                 const ms_node *section, const ms_transport *tp, ms_route **out, ms_error *err);

/* Apply include/exclude to b, taking the caller's reference (like
 * ms_procs_apply): returns b itself, a filtered copy when b was shared, or
 * NULL. NULL r returns b. */
ms_batch *ms_route_filter(ms_route *r, ms_batch *b);

/* Does the route have endpoints (children)? NULL r: no. */
int ms_route_has_endpoints(const ms_route *r);

/* Hand b (borrowed) to the endpoints: 1 when done so, 0 when r has no
 * endpoints and the forwarder sends b itself. */
int ms_route_send(ms_route *r, ms_batch *b);

/* Stop: stop counting; with endpoints stop every child and call
 * ms_forwarder_closed on the parent when all have closed, returning 1.
 * Returns 0 when the parent stops its own transport. */
int ms_route_stop(ms_route *r, double timeout);

/* Reload: hand what the children of `from` queued (or from's own queue)
 * to `to`'s children (the one of the same endpoint, else the active one),
 * or to `to` itself. At least one of the two has endpoints. */
void ms_route_take_queue(ms_forwarder *to, ms_route *to_r, ms_forwarder *from, ms_route *from_r);

/* Has the filter file changed on disk since it was loaded (reload)? */
int ms_route_changed(const ms_route *r, const ms_config *cfg);

/* A child's transport failed (failover moves its queue on) or sent a chunk. */
void ms_route_endpoint_failed(ms_route *r, ms_forwarder *child);
void ms_route_endpoint_ok(ms_route *r, ms_forwarder *child);

/* Free the route and its children (stopped before, or never started). */
void ms_route_free(ms_route *r);

#endif
