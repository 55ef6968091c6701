/*
 * series.c - series interning (see ms_series.h).
 *
 * Series live in pages of PAGE entries that never move, so ms_series_get is
 * a lock-free array lookup. An open-addressing hash of canonical keys
 * ("name{k=v,...}") maps to ids. Each series is one allocation holding the
 * struct, its tag array and all its strings.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ms_err.h"
#include "ms_ffi.h"
#include "ms_series.h"

#define PAGE_BITS 12
#define PAGE      (1u << PAGE_BITS)
#define MAX_PAGES 4096 /* 16M series: far above any sane bound */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ms_series **pages[MAX_PAGES];
static uint32_t count;
static uint32_t limit = 100000;
static uint64_t dropped;
static uint32_t *hash_ids; /* slot -> id (0 empty) */
static uint32_t hash_cap;  /* power of two */
static ms_tag *base;
static size_t nbase;
static char *base_mem;

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

void ms_series_set_limit(uint32_t max_series)
{
    pthread_mutex_lock(&lock);
    if (max_series < count) max_series = count;
    if (max_series > (uint32_t)MAX_PAGES * PAGE - 1) max_series = (uint32_t)MAX_PAGES * PAGE - 1;
    limit = max_series;
    pthread_mutex_unlock(&lock);
}

const ms_series *ms_series_get(uint32_t id)
{
    if (id == 0 || id > __atomic_load_n(&count, __ATOMIC_ACQUIRE)) return NULL;
    uint32_t i = id - 1;
    return pages[i >> PAGE_BITS][i & (PAGE - 1)];
}

const ms_series *ms_ffi_series(uint32_t id)
{
    return ms_series_get(id);
}

uint32_t ms_series_count(void)
{
    return __atomic_load_n(&count, __ATOMIC_ACQUIRE);
}

uint64_t ms_series_dropped(void)
{
    return __atomic_load_n(&dropped, __ATOMIC_RELAXED);
}

static int tag_cmp(const void *a, const void *b)
{
    const ms_tag *x = a, *y = b;
    uint32_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->k, y->k, n);
    if (c) return c;
    return (x->klen > y->klen) - (x->klen < y->klen);
}

/* Copy n tags into dst, their strings (NUL-terminated) into mem, which has
 * room for all of them; returns the end of what was written. */
static char *copy_tags(ms_tag *dst, const ms_tag *src, size_t n, char *mem)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[i];
        memcpy(mem, src[i].k, src[i].klen);
        mem[src[i].klen] = 0;
        dst[i].k = mem;
        mem += src[i].klen + 1;
        memcpy(mem, src[i].v, src[i].vlen);
        mem[src[i].vlen] = 0;
        dst[i].v = mem;
        mem += src[i].vlen + 1;
    }
    return mem;
}

/* Copy base tags (the caller's strings stay the caller's). */
int ms_series_set_base_tags(const ms_tag *tags, size_t ntags)
{
    size_t bytes = 0;
    for (size_t i = 0; i < ntags; i++) bytes += tags[i].klen + tags[i].vlen + 2;
    ms_tag *nt = ntags ? calloc(ntags, sizeof *nt) : NULL;
    char *mem = bytes ? malloc(bytes) : NULL;
    if ((ntags && !nt) || (bytes && !mem)) {
        free(nt);
        free(mem);
        return MS_ENOMEM;
    }
    copy_tags(nt, tags, ntags, mem);
    pthread_mutex_lock(&lock);
    free(base);
    free(base_mem);
    base = nt;
    nbase = ntags;
    base_mem = mem;
    pthread_mutex_unlock(&lock);
    return MS_OK;
}

/* Merge base tags and the caller's into `out` (sorted, later keys win).
 * Returns the count. `out` has room for nbase + ntags. */
static size_t merge_tags(const ms_tag *tags, size_t ntags, ms_tag *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nbase; i++) out[n++] = base[i];
    for (size_t i = 0; i < ntags; i++) out[n++] = tags[i];
    /* stable order of precedence: sort by key keeping the last of equals */
    for (size_t i = 1; i < n; i++) { /* insertion sort: n is small, and stable */
        ms_tag t = out[i];
        size_t j = i;
        while (j > 0 && tag_cmp(&out[j - 1], &t) > 0) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = t;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && tag_cmp(&out[w - 1], &out[i]) == 0)
            out[w - 1] = out[i]; /* later wins */
        else
            out[w++] = out[i];
    }
    return w;
}

/* Canonical key "name{k=v,k2=v2}" into buf (malloc'd when it does not fit in
 * stack space; caller frees when *heap). */
static size_t make_key(const char *name, size_t nlen, const ms_tag *t, size_t nt, char *buf,
                       size_t cap, char **heap)
{
    size_t need = nlen + 2;
    for (size_t i = 0; i < nt; i++) need += t[i].klen + t[i].vlen + 2;
    char *p = buf;
    *heap = NULL;
    if (need > cap) {
        p = malloc(need);
        if (!p) return 0;
        *heap = p;
    }
    size_t o = 0;
    memcpy(p, name, nlen);
    o = nlen;
    if (nt) {
        p[o++] = '{';
        for (size_t i = 0; i < nt; i++) {
            if (i) p[o++] = ',';
            memcpy(p + o, t[i].k, t[i].klen);
            o += t[i].klen;
            p[o++] = '=';
            memcpy(p + o, t[i].v, t[i].vlen);
            o += t[i].vlen;
        }
        p[o++] = '}';
    }
    return o;
}

static int grow_hash(void)
{
    uint32_t ncap = hash_cap ? hash_cap * 2 : 1024;
    uint32_t *nh = calloc(ncap, sizeof *nh);
    if (!nh) return MS_ENOMEM;
    for (uint32_t i = 0; i < hash_cap; i++) {
        uint32_t id = hash_ids[i];
        if (!id) continue;
        const ms_series *s = ms_series_get(id);
        uint32_t slot = (uint32_t)hash_bytes(s->key, s->key_len) & (ncap - 1);
        while (nh[slot]) slot = (slot + 1) & (ncap - 1);
        nh[slot] = id;
    }
    free(hash_ids);
    hash_ids = nh;
    hash_cap = ncap;
    return MS_OK;
}

/* Build the one allocation that holds a series and its strings. */
static ms_series *new_series(uint32_t id, const char *name, size_t nlen, const ms_tag *t, size_t nt,
                             const char *key, size_t klen)
{
    size_t bytes = sizeof(ms_series) + nt * sizeof(ms_tag) + nlen + 1 + klen + 1;
    for (size_t i = 0; i < nt; i++) bytes += t[i].klen + t[i].vlen + 2;
    ms_series *s = malloc(bytes);
    if (!s) return NULL;
    ms_tag *tags = (ms_tag *)(s + 1);
    char *p = (char *)(tags + nt);
    s->id = id;
    s->ntags = (uint32_t)nt;
    memcpy(p, name, nlen);
    p[nlen] = 0;
    s->name = p;
    s->name_len = (uint32_t)nlen;
    p += nlen + 1;
    memcpy(p, key, klen);
    p[klen] = 0;
    s->key = p;
    s->key_len = (uint32_t)klen;
    p += klen + 1;
    copy_tags(tags, t, nt, p);
    s->tags = tags;
    return s;
}

uint32_t ms_series_intern(const char *name, size_t name_len, const ms_tag *tags, size_t ntags)
{
    if (!name || name_len == 0) return 0;
    pthread_mutex_lock(&lock);
    ms_tag stack_tags[32];
    ms_tag *mt = stack_tags;
    if (nbase + ntags > 32) mt = malloc((nbase + ntags) * sizeof *mt);
    uint32_t id = 0;
    char kbuf[512], *heap = NULL;
    if (!mt) goto out;
    size_t nt = merge_tags(tags, ntags, mt);
    size_t klen = make_key(name, name_len, mt, nt, kbuf, sizeof kbuf, &heap);
    if (!klen) goto out;
    const char *key = heap ? heap : kbuf;
    uint64_t h = hash_bytes(key, klen);
    if (hash_cap) {
        for (uint32_t slot = (uint32_t)h & (hash_cap - 1);; slot = (slot + 1) & (hash_cap - 1)) {
            uint32_t cand = hash_ids[slot];
            if (!cand) break;
            const ms_series *s = ms_series_get(cand);
            if (s->key_len == klen && memcmp(s->key, key, klen) == 0) {
                id = cand;
                goto out;
            }
        }
    }
    if (count >= limit) {
        dropped++;
        goto out;
    }
    if ((count + 1) * 2 > hash_cap && grow_hash() != MS_OK) goto out;
    uint32_t idx = count;
    if (!pages[idx >> PAGE_BITS]) {
        pages[idx >> PAGE_BITS] = calloc(PAGE, sizeof(ms_series *));
        if (!pages[idx >> PAGE_BITS]) goto out;
    }
    ms_series *s = new_series(idx + 1, name, name_len, mt, nt, key, klen);
    if (!s) goto out;
    pages[idx >> PAGE_BITS][idx & (PAGE - 1)] = s;
    uint32_t slot = (uint32_t)h & (hash_cap - 1);
    while (hash_ids[slot]) slot = (slot + 1) & (hash_cap - 1);
    hash_ids[slot] = idx + 1;
    __atomic_store_n(&count, idx + 1, __ATOMIC_RELEASE);
    id = idx + 1;
out:
    free(heap);
    if (mt != stack_tags) free(mt);
    pthread_mutex_unlock(&lock);
    return id;
}

void ms_series_reset(void)
{
    pthread_mutex_lock(&lock);
    for (uint32_t i = 0; i < count; i++) free(pages[i >> PAGE_BITS][i & (PAGE - 1)]);
    for (uint32_t p = 0; p < MAX_PAGES; p++) {
        free(pages[p]);
        pages[p] = NULL;
    }
    free(hash_ids);
    hash_ids = NULL;
    hash_cap = 0;
    count = 0;
    dropped = 0;
    free(base);
    free(base_mem);
    base = NULL;
    base_mem = NULL;
    nbase = 0;
    pthread_mutex_unlock(&lock);
}
