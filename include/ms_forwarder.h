/*
 * ms_forwarder.h - a forwarder is one configured backend: a Lua encoder file
 * (forwarders/<type>.lua) that turns batches into bytes, over a C transport
 * that moves the bytes (tcp, file, scrape, ...).
 *
 * Push transports (tcp, file, ...): for each batch the core runs the encoder
 * and queues the bytes as a chunk; the transport takes chunks from the head of
 * the queue, and reports each as sent or failed. The queue is bounded
 * (`buffer_size`); when full the oldest chunk is dropped and its samples are
 * counted as dropped.
 *
 * Pull transports (scrape): the transport gets every batch (`batch` hook) and
 * keeps what it needs (the latest value of each series); when asked it calls
 * ms_forwarder_encode to render through the same Lua encoder.
 *
 * The encoder file returns a table:
 *   { transport = "tcp", options = { key = default | {type=, default=, help=} },
 *     encode = function(batch, out, opts, parts) ... end }
 * `transport` may also be a function(opts) returning the transport's name,
 * when an option picks it (forwarders/graphite.lua's `protocol: tcp|udp`).
 * `options` lists every key the forwarder's section may hold besides the
 * common ones (type, enabled, buffer_size, processors, batch_size,
 * batch_bytes, batch_interval, and the routing keys of ms_route.h: include,
 * exclude, endpoints, ...); anything else is a config error with line and
 * column. encode may return the number of samples it skipped (NaN/Inf,
 * events it has no place for): they are counted as dropped, reason
 * "unencodable", and not as part of the chunk.
 *
 * Batching (push transports): a batch is encoded in ranges of at most
 * batch_size samples (the encoder sees a view: an ms_batch over a slice of
 * the samples, sharing the text arena); a range whose bytes exceed
 * batch_bytes is encoded again in smaller ranges. With batch_interval the
 * batches are first held and merged for up to that long (flushed at stop
 * and on ms_forwarder_take_queue).
 *
 * Parts (one batch, several endpoints): encode gets a fourth argument
 * `parts`; `parts:start(endpoint, nsamples)` ends the chunk written so far
 * and starts a new one holding what is written to `out` from then on. That
 * chunk carries `endpoint` (ms_chunk.endpoint: a path with {option}
 * placeholders, as the http transport's `endpoint` option) and counts
 * `nsamples` of the batch's samples (`parts:add(n)` adds to the count of the
 * part started last, for a count known only once it is written); the bytes
 * before the first start() form an ordinary chunk (endpoint NULL) counting
 * the rest. The C side gets {offset, endpoint, nsamples, ...} back from the
 * wrapper (lua/moonstat/forwarder.lua) and clamps it. Empty parts are not
 * queued. The http transport POSTs a chunk to url + its endpoint (each part
 * is sent, retried or dropped on its own); other push transports ignore the
 * endpoint and write the parts in order. Chunks with different endpoints are
 * never merged. (forwarders/datadog.lua sends series and service checks from
 * one batch this way.)
 */
#ifndef MS_FORWARDER_H
#define MS_FORWARDER_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "ms_buf.h"
#include "ms_config.h"
#include "ms_err.h"
#include "ms_sample.h"

typedef struct ms_forwarder ms_forwarder;

typedef struct ms_chunk {
    struct ms_chunk *next;
    uint32_t nsamples;    /* samples encoded in it (for counting sent/dropped) */
    size_t len;           /* bytes in data */
    size_t off;           /* bytes of data already written (transports may use it) */
    const char *endpoint; /* NULL, or the part's endpoint (see Parts above; owned by the chunk) */
    uint32_t spooled;     /* also a record of the forwarder's spool (acked when popped) */
    double t;             /* when it was made (unix seconds; oldest-pending age) */
    char data[];
} ms_chunk;

typedef struct ms_transport {
    const char *name;
    int pull; /* 1: pull transport (gets batches), 0: push (gets chunks) */
    /* Start: read options (ms_forwarder_opt_*), open what is needed. */
    int (*start)(ms_forwarder *f, ms_error *err);
    /* Pull: a batch arrived (borrowed: take a ref to keep it). */
    void (*batch)(ms_forwarder *f, ms_batch *b);
    /* Push: a chunk was queued; start writing if idle. */
    void (*kick)(ms_forwarder *f);
    /* Close everything; call ms_forwarder_closed(f) when handles are closed.
     * Push transports should have tried to write what is queued before (the
     * core waits for the queue to drain up to the shutdown timeout first). */
    void (*stop)(ms_forwarder *f);
} ms_transport;

/* The transports, one file each (src/transport_<name>.c). */
extern const ms_transport ms_transport_tcp;    /* stream to host:port, reconnecting */
extern const ms_transport ms_transport_file;   /* append to a file, or stdout for "-" */
extern const ms_transport ms_transport_scrape; /* HTTP /metrics (latest value per series) */
extern const ms_transport ms_transport_http;   /* POST each chunk (libcurl multi) */
extern const ms_transport ms_transport_udp;    /* datagrams to host:port, split at newlines */
extern const ms_transport ms_transport_kafka;  /* one message per record (librdkafka) */

/* Transports known to the core (the table is in forwarder.c). */
const ms_transport *ms_transport_find(const char *name);

/* ---- for the pipeline ---- */

/* Create forwarder `name` from its config section: loads forwarders/<type>.lua
 * into the pipeline state L, checks the options, starts the transport. With
 * loop NULL nothing is started (validation); free the result with
 * ms_forwarder_free. */
struct uv_loop_s;
int ms_forwarder_new(struct uv_loop_s *loop, lua_State *L, const ms_config *cfg, const char *name,
                     const ms_node *section, ms_forwarder **out, ms_error *err);
/* Hand a batch to the forwarder (borrowed). */
void ms_forwarder_send(ms_forwarder *f, ms_batch *b);
/* Begin stopping; `done(f)` runs once the transport is closed; then free. */
void ms_forwarder_stop(ms_forwarder *f, double timeout, void (*done)(ms_forwarder *));
void ms_forwarder_free(ms_forwarder *f);
/* Move the queued chunks of `from` to the end of `to` (reload). */
void ms_forwarder_take_queue(ms_forwarder *to, ms_forwarder *from);
const char *ms_forwarder_name(const ms_forwarder *f);
const ms_node *ms_forwarder_section(const ms_forwarder *f);
/* Reload: does `section` (in the new config) describe this forwarder as it
 * runs (same section, same encoder file)? If so the section pointer is
 * updated to the new config's and 1 is returned. */
int ms_forwarder_same(ms_forwarder *f, const ms_config *cfg, const ms_node *section);

/* ---- for transports ---- */

struct uv_loop_s *ms_forwarder_loop(ms_forwarder *f);
/* Transport-private data pointer. */
void *ms_forwarder_data(ms_forwarder *f);
void ms_forwarder_set_data(ms_forwarder *f, void *data);
/* Options after defaults were applied (from the encoder's `options`). The
 * returned string is owned by the forwarder. NULL / MS_ENOENT when absent.
 * A map option set in the config reads as "key: value\n" lines. */
const char *ms_forwarder_opt_str(ms_forwarder *f, const char *key);
int ms_forwarder_opt_num(ms_forwarder *f, const char *key, double *out);
/* Head of the queue (oldest chunk) or NULL. The head is then in flight: the
 * core will not drop it to make room until it is popped or released. */
ms_chunk *ms_forwarder_head(ms_forwarder *f);
/* The head chunk was written (ok=1: counted as sent) or given up (ok=0:
 * counted as failed); it is removed and freed. */
void ms_forwarder_pop(ms_forwarder *f, int ok);
/* The head is no longer in flight (write failed, will retry later). */
void ms_forwarder_release(ms_forwarder *f);
/* Count samples that failed or were dropped outside the queue. */
void ms_forwarder_count_failed(ms_forwarder *f, uint64_t nsamples);
/* Retry policy (ms_retry.h, the section's `retry:`): transports wait
 * ms_retry_delay(ms_forwarder_retry(f), attempt) after a transient failure
 * and count each retry. */
struct ms_retry;
const struct ms_retry *ms_forwarder_retry(ms_forwarder *f);
void ms_forwarder_count_retry(ms_forwarder *f);
/* The backend refused the head chunk for good (HTTP 4xx other than 429):
 * it is popped, counted as rejected (and failed), and logged at most once a
 * minute with `what` and the start of the response body. */
void ms_forwarder_reject(ms_forwarder *f, const char *what, const char *body, size_t len);
/* The endpoint could not be reached, or answered with a server error: with
 * several endpoints and failover, what f queued moves to the next one
 * (include/ms_route.h). Call after releasing the head. */
void ms_forwarder_endpoint_failed(ms_forwarder *f);

/* ---- for routing (src/forwarder_route.c, include/ms_route.h) ---- */

/* Make f the child of `owner` for `endpoint` (copied; it tags f's counters
 * and log lines), or (NULL, NULL) no one's child. */
struct ms_route;
void ms_forwarder_set_owner(ms_forwarder *f, struct ms_route *owner, const char *endpoint);
struct ms_route *ms_forwarder_owner(const ms_forwarder *f);
/* Pull transports: run the encoder on `b`, appending the bytes to out. */
int ms_forwarder_encode(ms_forwarder *f, ms_batch *b, ms_buf *out, ms_error *err);
/* Transport's stop finished. */
void ms_forwarder_closed(ms_forwarder *f);

/* Logging helper: "forwarder <name>: message". */
void ms_forwarder_log(ms_forwarder *f, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
