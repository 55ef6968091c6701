/* sample.c - batches of samples (see ms_sample.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ms_err.h"
#include "ms_ffi.h"
#include "ms_sample.h"

ms_batch *ms_batch_new(uint32_t cap)
{
    ms_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    if (cap < 16) cap = 16;
    b->s = malloc(cap * sizeof *b->s);
    if (!b->s) {
        free(b);
        return NULL;
    }
    b->cap = cap;
    b->refs = 1;
    return b;
}

/* Copy s[0..n) plus a NUL into the text arena; returns offset+1, 0 on failure. */
static uint32_t put_text(ms_batch *b, const char *s, size_t n)
{
    if (b->text_len + n + 1 > b->text_cap) {
        size_t cap = b->text_cap ? b->text_cap : 256;
        while (cap < b->text_len + n + 1) cap *= 2;
        if (cap > UINT32_MAX) return 0;
        char *t = realloc(b->text, cap);
        if (!t) return 0;
        b->text = t;
        b->text_cap = (uint32_t)cap;
    }
    uint32_t off = b->text_len;
    memcpy(b->text + off, s, n);
    b->text[off + n] = 0;
    b->text_len += (uint32_t)n + 1;
    return off + 1;
}

int ms_batch_add(ms_batch *b, uint32_t series, ms_kind kind, double value, double ts,
                 const char *msg, size_t msg_len, const char *level, size_t level_len)
{
    if (b->n == b->cap) {
        uint32_t cap = b->cap * 2;
        ms_sample *s = realloc(b->s, cap * sizeof *s);
        if (!s) return MS_ENOMEM;
        b->s = s;
        b->cap = cap;
    }
    ms_sample *s = &b->s[b->n];
    memset(s, 0, sizeof *s);
    s->value = value;
    s->ts = ts;
    s->series = series;
    s->kind = (uint8_t)kind;
    if (msg && !(s->msg = put_text(b, msg, msg_len))) return MS_ENOMEM;
    if (level && !(s->level = put_text(b, level, level_len))) return MS_ENOMEM;
    b->n++;
    return MS_OK;
}

const char *ms_batch_text(const ms_batch *b, uint32_t off)
{
    if (off == 0 || off > b->text_len) return NULL;
    return b->text + off - 1;
}

void ms_batch_ref(ms_batch *b)
{
    b->refs++;
}

void ms_batch_unref(ms_batch *b)
{
    if (!b || --b->refs > 0) return;
    free(b->s);
    free(b->text);
    free(b);
}

const char *ms_kind_name(int kind)
{
    static const char *names[] = {"gauge", "counter", "rate", "health", "event"};
    return kind >= 0 && kind < MS_KIND_COUNT_ ? names[kind] : "?";
}

double ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double ms_ffi_now(void)
{
    return ms_now();
}

int ms_batch_append(ms_batch *dst, const ms_batch *src)
{
    for (uint32_t i = 0; i < src->n; i++) {
        const ms_sample *s = &src->s[i];
        const char *m = ms_batch_text(src, s->msg), *l = ms_batch_text(src, s->level);
        if (ms_batch_add(dst, s->series, (ms_kind)s->kind, s->value, s->ts, m, m ? strlen(m) : 0, l,
                         l ? strlen(l) : 0) != MS_OK)
            return MS_ENOMEM;
    }
    return MS_OK;
}
