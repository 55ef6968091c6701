/*
 * ms_rate.h - per-second rates from successive counter readings.
 *
 * State is kept per series id in a table that outlives check reloads. The first
 * reading of a series gives no rate; a decrease is a counter wrap when the
 * previous value sat in the top eighth of the 32-bit (or 64-bit) range and the
 * new one in the bottom eighth, and is a reset otherwise (no rate; the new value
 * becomes the base).
 */
#ifndef MS_RATE_H
#define MS_RATE_H

#include <stdint.h>

/* Pure math, no state: the rate from (prev, prev_ts) to (cur, ts).
 * Returns 1 and *out when there is a rate, 0 for a reset, a non-advancing
 * clock or a non-finite value. */
int ms_rate_compute(double prev, double prev_ts, double cur, double ts, double *out);

/* Record `value` at `ts` for `series`; returns 1 and *out when a rate is
 * available (see above), 0 otherwise (first reading, reset, full table). */
int ms_rate_update(uint32_t series, double value, double ts, double *out);

/* Bound of the rate table (entries); default 100000. Past it new series get no
 * rate and are counted in ms_rate_dropped(). */
void ms_rate_set_limit(uint32_t max_entries);
uint64_t ms_rate_dropped(void);
void ms_rate_reset(void);

#endif
