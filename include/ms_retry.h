/*
 * ms_retry.h - the retry policy of a forwarder's transports: which failures
 * are retried, how long to wait (exponential backoff with jitter between
 * `retry.base` and `retry.cap`), and the HTTP Retry-After header.
 *
 * Transient (retried): connection errors, timeouts, HTTP 5xx and 429.
 * Permanent (not retried): any other 4xx; the chunk is rejected
 * (ms_forwarder_reject) so one bad batch never blocks the queue.
 */
#ifndef MS_RETRY_H
#define MS_RETRY_H

#include "ms_config.h"
#include "ms_err.h"

typedef struct ms_retry {
    double base; /* first delay, seconds */
    double cap;  /* longest delay, seconds */
} ms_retry;

/* Fill *out from a `retry: { base: 1s, cap: 30s }` map (NULL: the defaults
 * 1s and 30s). Errors name cfg's file, line and column; `ctx` is the key path
 * ("forwarders.x.retry"). */
int ms_retry_parse(const ms_config *cfg, const ms_node *n, const char *ctx, ms_retry *out,
                   ms_error *err);
/* Delay in seconds before retry number `attempt` (1: the first): d =
 * min(cap, base * 2^(attempt-1)), then "equal jitter": d/2 plus a uniformly
 * random part of up to d/2, so clients that failed together spread out. */
double ms_retry_delay(const ms_retry *r, unsigned attempt);
/* Seconds to wait from `now` (unix seconds) that a Retry-After value asks
 * for: delta-seconds ("120") or an HTTP date (IMF-fixdate, RFC 850 or
 * asctime). -1 when it is neither; 0 for a date in the past. */
double ms_retry_after(const char *value, double now);
/* Is an HTTP status worth retrying (5xx, 429)? */
int ms_retry_http_transient(long status);

#endif
