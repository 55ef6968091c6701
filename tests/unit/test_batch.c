/* test_batch.c - batches: growth, texts, append, refcounts. */
#include "ms_err.h"
#include "ms_sample.h"
#include "t.h"

int main(void)
{
    ms_batch *b = ms_batch_new(1);
    T_OK(b && b->refs == 1 && b->n == 0, "new batch");
    for (int i = 0; i < 100; i++)
        ms_batch_add(b, (uint32_t)i + 1, MS_KIND_GAUGE, i * 1.5, 1000 + i, NULL, 0, NULL, 0);
    T_EQ_INT(b->n, 100, "grows past its first capacity");
    T_EQ_DBL(b->s[99].value, 148.5, 0, "values kept");
    ms_batch_add(b, 7, MS_KIND_HEALTH, 16, 5, "disk full", 9, "ERROR", 5);
    ms_sample *h = &b->s[100];
    T_EQ_STR(ms_batch_text(b, h->msg), "disk full", "message text");
    T_EQ_STR(ms_batch_text(b, h->level), "ERROR", "level text");
    T_OK(ms_batch_text(b, 0) == NULL, "offset 0 is no text");
    T_OK(ms_batch_text(b, b->text_len + 5) == NULL, "offset past the arena is no text");
    ms_batch *c = ms_batch_new(4);
    ms_batch_add(c, 1, MS_KIND_EVENT, 1, 1, "first", 5, NULL, 0);
    T_EQ_INT(ms_batch_append(c, b), MS_OK, "append");
    T_EQ_INT(c->n, 102, "appended count");
    T_EQ_STR(ms_batch_text(c, c->s[101].msg), "disk full", "texts re-based on append");
    T_EQ_STR(ms_batch_text(c, c->s[0].msg), "first", "own texts intact");
    T_EQ_STR(ms_kind_name(MS_KIND_COUNTER), "counter", "kind name");
    T_EQ_STR(ms_kind_name(99), "?", "bad kind name");
    ms_batch_ref(b);
    ms_batch_unref(b);
    T_EQ_INT(b->refs, 1, "ref/unref");
    ms_batch_unref(b);
    ms_batch_unref(c);
    ms_batch_unref(NULL);
    T_OK(ms_now() > 1.6e9, "ms_now is unix time");
    return t_done();
}
