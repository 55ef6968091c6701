/*
 * ms_series.h - series interning: a series is a metric name plus its tags,
 * sorted by key. Each distinct series is stored once and named by a small id
 * (uint32, 1-based; 0 means "none"). Samples carry ids, never strings.
 *
 * The table is process-global. Interning takes a mutex (it happens once per
 * new series or per flush, never per packet); looking an id up takes no lock:
 * entries live in fixed pages that never move, so a pointer stays valid for the
 * life of the process. The table is bounded (agent.max_series); past the bound
 * interning returns 0 and counts the drop.
 */
#ifndef MS_SERIES_H
#define MS_SERIES_H

#include <stddef.h>
#include <stdint.h>

typedef struct ms_tag {
    const char *k, *v;
    uint32_t klen, vlen;
} ms_tag;

/* One interned series. All strings are NUL-terminated and owned by the table. */
typedef struct ms_series {
    uint32_t id;
    uint32_t ntags;
    const char *name;
    uint32_t name_len;
    uint32_t key_len;
    const char *key;    /* canonical "name{k=v,k2=v2}" (or just name) - unique per series */
    const ms_tag *tags; /* sorted by key, no duplicate keys */
} ms_series;

/* Set the bound (call before interning; may be raised later, never lowered below use). */
void ms_series_set_limit(uint32_t max_series);

/* Tags added to every series interned from now on (agent.tags and host);
 * a tag the caller passes with the same key wins. Copies the strings. */
int ms_series_set_base_tags(const ms_tag *tags, size_t ntags);

/* Intern name + tags (in any order; a later duplicate key wins over an earlier
 * one) plus the base tags. Returns the id, or 0 when the table is full (counted) or the name is
 * empty. Caller keeps ownership of its strings. */
uint32_t ms_series_intern(const char *name, size_t name_len, const ms_tag *tags, size_t ntags);

/* The series for id, or NULL. */
const ms_series *ms_series_get(uint32_t id);

/* Number of series interned, and how many interning attempts were dropped. */
uint32_t ms_series_count(void);
uint64_t ms_series_dropped(void);

/* Free everything (tests, and the end of main so sanitizers see no leak). */
void ms_series_reset(void);

#endif
