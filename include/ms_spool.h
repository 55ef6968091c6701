/*
 * ms_spool.h - a forwarder's disk spool: an append-only log of encoded
 * chunks in segment files, delivered oldest first and deleted once delivered.
 *
 * Layout of a spool directory:
 *   lock                   flock'd while a process has the spool open
 *   ack                    where delivery got to: segment id and offset
 *   <16 hex digits>.seg    segments, ids increasing; each a run of records
 * A record is a 32-byte header (magic "MSR1", CRC-32C of everything after the
 * CRC field, data length, sample count, endpoint length, spare, time the chunk
 * was made in ms) followed by the data bytes and the endpoint bytes.
 *
 * Records move through three states: unread (on disk only), loaded (read, or
 * appended with `loaded`, and now held in memory by the forwarder) and
 * delivered (ms_spool_ack, oldest loaded first). A segment whose records are
 * all delivered is deleted. Opening a spool scans every segment: a truncated
 * record or one with a bad magic, length or checksum ends its segment (logged
 * with file and offset, counted; nothing after it in that segment is read).
 *
 * Bounds: `max_size` bytes of segment files; past it either the oldest
 * segment is deleted (its unread samples counted as dropped) or the new
 * record is refused (MS_EFULL). One spool object per directory per process:
 * opening a directory that is open already returns the same object with one
 * more reference (a reloaded forwarder shares its predecessor's spool).
 */
#ifndef MS_SPOOL_H
#define MS_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "ms_config.h"
#include "ms_err.h"

typedef struct ms_spool ms_spool;

typedef enum { MS_SPOOL_DROP_OLDEST = 0, MS_SPOOL_DROP_NEWEST } ms_spool_on_full;

typedef struct ms_spool_opts {
    uint64_t max_size;     /* bytes of segment files in all (0: unbounded) */
    uint64_t segment_size; /* a segment is closed once it holds this much */
    ms_spool_on_full on_full;
    double fsync; /* 0: fdatasync after every append; > 0: at most this long
                   * after an append (ms_spool_sync); < 0: never (the OS decides) */
} ms_spool_opts;

typedef struct ms_spool_rec {
    uint32_t len;      /* data bytes */
    uint32_t eplen;    /* endpoint bytes (0: none) */
    uint32_t nsamples; /* samples encoded in the data */
    double t;          /* when the chunk was made (unix seconds) */
} ms_spool_rec;

typedef struct ms_spool_stats {
    uint64_t disk_bytes;                       /* size of the segment files */
    uint64_t unread_records, unread_samples;   /* on disk, not in memory */
    uint64_t unread_bytes;                     /* data bytes of those */
    uint64_t loaded_records, loaded_samples;   /* read, not yet delivered */
    uint64_t appended_records, appended_bytes; /* since open */
    uint64_t dropped_records, dropped_samples; /* deleted unread (max_size, drop_oldest) */
    uint64_t corrupt_records, corrupt_bytes;   /* skipped bad records and what followed */
    uint64_t segments;                         /* segment files */
    double oldest;                             /* time of the oldest undelivered record, 0: none */
} ms_spool_stats;

/* Open (creating it and its parents) the spool in `dir`; `owner` names it in
 * log lines ("forwarder x"). A directory another process holds is an error.
 * The result is released with ms_spool_close. */
int ms_spool_open(const char *dir, const ms_spool_opts *o, const char *owner, ms_spool **out,
                  ms_error *err);
/* Drop one reference; the last one syncs and closes the files. */
void ms_spool_close(ms_spool *s);
/* How many holders the open spool has (2 while a reloaded forwarder and its
 * predecessor both hold it). */
int ms_spool_refs(const ms_spool *s);
/* Replace the options (reload). */
void ms_spool_set_opts(ms_spool *s, const ms_spool_opts *o);
const char *ms_spool_dir(const ms_spool *s);

/* Append one record (data, then the endpoint when not NULL). `loaded`: the
 * caller keeps the chunk in memory and will ack it (only honoured when no
 * record is unread; returns whether it was through *kept). MS_EFULL: over
 * max_size with drop_newest, or larger than max_size: not written. MS_EIO: a
 * write error (the segment is cut back to before the record). */
int ms_spool_append(ms_spool *s, const void *data, size_t len, const char *endpoint,
                    uint32_t nsamples, double t, int loaded, int *kept, ms_error *err);
/* Header of the next unread record: MS_OK, or MS_ENOENT when none. */
int ms_spool_next(ms_spool *s, ms_spool_rec *rec);
/* Read the record ms_spool_next described into dst (len + eplen bytes: data
 * then endpoint) and mark it loaded. MS_EIO: it failed its checksum now (the
 * rest of its segment is skipped and counted; call ms_spool_next again). */
int ms_spool_take(ms_spool *s, void *dst);
/* The oldest loaded record was delivered (or given up for good). */
void ms_spool_ack(ms_spool *s);
/* Records not yet read into memory. */
uint64_t ms_spool_unread(const ms_spool *s);
/* fdatasync what was appended once the fsync interval has passed since the
 * first unsynced append (or now, with force). */
void ms_spool_sync(ms_spool *s, int force);
void ms_spool_get_stats(ms_spool *s, ms_spool_stats *st);

/* ---- for the forwarder core (src/spool_fwd.c) ----
 *
 * A forwarder with a `spool:` section holds an ms_fspool: the section's
 * options, the spool (opened on first use), the replay rate limit and the
 * fsync timer. Chunks in the forwarder's memory queue that are also records
 * of the spool ("spooled") are acked when popped. */
typedef struct ms_fspool ms_fspool;
struct uv_loop_s;
struct ms_batch;
/* Parse the `spool:` node of forwarder `name` (NULL: no spool, *out NULL).
 * With loop NULL nothing is opened or started (validation). `wake(ud)` runs
 * when unread records wait for replay (from a timer). Free with
 * ms_fspool_free. The spool is opened on the first tick of its timer (or the
 * first chunk), after a routed child learnt its endpoint. */
int ms_fspool_new(struct uv_loop_s *loop, const ms_config *cfg, const char *name, const ms_node *n,
                  void (*wake)(void *), void *ud, ms_fspool **out, ms_error *err);
/* A routed child spools in <dir>/<endpoint>: call before first use. */
void ms_fspool_set_endpoint(ms_fspool *fs, const char *endpoint);
/* Stop replaying and ticking (the forwarder is stopping). */
void ms_fspool_stop(ms_fspool *fs);
void ms_fspool_free(ms_fspool *fs);
/* A new chunk. Returns 1 when the caller queues it in memory (*spooled: it
 * is a spool record too, to be acked), 0 when it went to disk only or was
 * refused (counted as dropped, reason spool_full). `fits`: the memory buffer
 * has room for it. Without a usable spool it returns 1, *spooled 0. */
int ms_fspool_put(ms_fspool *fs, const void *p, size_t len, const char *ep, uint32_t ns, double t,
                  int fits, int *spooled);
/* Next record to replay, when the replay rate allows one now. */
int ms_fspool_next(ms_fspool *fs, ms_spool_rec *rec);
/* Read it into dst (rec->len + rec->eplen bytes) as ms_spool_take does. */
int ms_fspool_take(ms_fspool *fs, const ms_spool_rec *rec, void *dst);
void ms_fspool_ack(ms_fspool *fs);
/* Do a and b use the same open spool (a reload)? Opens a's if need be. */
int ms_fspool_same(ms_fspool *a, const ms_fspool *b);
/* Is the spool held by another forwarder too (the one replacing this)? */
int ms_fspool_shared(const ms_fspool *fs);
/* Stopping: write a chunk still in memory as an unread record. */
void ms_fspool_save(ms_fspool *fs, const void *p, size_t len, const char *ep, uint32_t ns,
                    double t);
void ms_fspool_sync(ms_fspool *fs);
/* Time of the oldest undelivered record (0: none). */
double ms_fspool_oldest(ms_fspool *fs);
/* Append the spool gauges and counters (tags kv); *dropped_spool gets the
 * samples dropped for want of spool room. */
void ms_fspool_stats(ms_fspool *fs, struct ms_batch *b, double now, const char *const *kv,
                     uint64_t *dropped_spool);

/* CRC-32C (Castagnoli) of p[0..n), continuing from crc (start with 0): the
 * SSE 4.2 instruction where the CPU has it, else ms_crc32c_portable (tables,
 * slicing by 8). */
uint32_t ms_crc32c(uint32_t crc, const void *p, size_t n);
uint32_t ms_crc32c_portable(uint32_t crc, const void *p, size_t n);

#endif
