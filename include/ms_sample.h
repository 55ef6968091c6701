/*
 * ms_sample.h - samples and batches.
 *
 * A sample is a flat C struct naming its series by interned id. Samples travel
 * in batches (arrays), never one allocation each. A batch is reference counted:
 * the router hands the same batch to every forwarder, each takes a reference.
 * Text that belongs to a sample (health message and level, event text) lives in
 * the batch's `text` arena; the sample holds offset+1 into it (0 = none).
 *
 * The layout is shared with Lua (lua/moonstat/ffi.lua declares the same
 * structs); change both together - tests/unit/test_ffi.c checks they agree.
 */
#ifndef MS_SAMPLE_H
#define MS_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MS_KIND_GAUGE = 0, /* a level */
    MS_KIND_COUNTER,   /* a monotonically growing total */
    MS_KIND_RATE,      /* per-second rate (computed by ms.rate or an aggregator) */
    MS_KIND_HEALTH,    /* health value (0 OK, 8 WARNING, 16 ERROR) + message + level */
    MS_KIND_EVENT,     /* an event: value 0/1, text in msg */
    MS_KIND_COUNT_
} ms_kind;

typedef struct ms_sample {
    double value;
    double ts;       /* unix time, seconds (fractional) */
    uint32_t series; /* ms_series id */
    uint32_t msg;    /* offset+1 into batch text: message (health/event), 0 none */
    uint32_t level;  /* offset+1 into batch text: level word ("OK", ...), 0 none */
    uint8_t kind;    /* ms_kind */
    uint8_t pad[3];
} ms_sample;

typedef struct ms_batch {
    int refs;
    uint32_t n, cap;
    ms_sample *s;
    char *text; /* NUL-separated strings referenced by samples */
    uint32_t text_len, text_cap;
} ms_batch;

/* New empty batch with room for `cap` samples (grows as needed). refs = 1.
 * Returns NULL on allocation failure. */
ms_batch *ms_batch_new(uint32_t cap);

/* Append one sample; msg/level may be NULL. Returns MS_OK or MS_ENOMEM. */
int ms_batch_add(ms_batch *b, uint32_t series, ms_kind kind, double value, double ts,
                 const char *msg, size_t msg_len, const char *level, size_t level_len);

/* Append every sample of src (with its texts) to dst. MS_OK or MS_ENOMEM. */
int ms_batch_append(ms_batch *dst, const ms_batch *src);

/* Text of a sample's msg/level field, or NULL. */
const char *ms_batch_text(const ms_batch *b, uint32_t off);

void ms_batch_ref(ms_batch *b);
/* Drop a reference; frees at zero. NULL is fine. */
void ms_batch_unref(ms_batch *b);

/* "gauge", "counter", "rate", "health", "event" (or "?" for a bad value). */
const char *ms_kind_name(int kind);

/* Current unix time in seconds, fractional. */
double ms_now(void);

#endif
