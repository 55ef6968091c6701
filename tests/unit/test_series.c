/* test_series.c - interning: canonical keys, tag order, base tags, bounds. */
#include <stdlib.h>

#include "ms_series.h"
#include "t.h"

static ms_tag tag(const char *k, const char *v)
{
    return (ms_tag){k, v, (uint32_t)strlen(k), (uint32_t)strlen(v)};
}

int main(void)
{
    ms_tag ab[] = {tag("b", "2"), tag("a", "1")};
    ms_tag ba[] = {tag("a", "1"), tag("b", "2")};
    uint32_t x = ms_series_intern("cpu", 3, ab, 2);
    uint32_t y = ms_series_intern("cpu", 3, ba, 2);
    T_OK(x != 0, "intern gives an id");
    T_EQ_INT(x, y, "tag order does not matter");
    const ms_series *s = ms_series_get(x);
    T_EQ_STR(s->key, "cpu{a=1,b=2}", "canonical key sorts tags");
    T_EQ_STR(s->name, "cpu", "name kept");
    T_EQ_INT(s->ntags, 2, "two tags");
    T_EQ_STR(s->tags[0].k, "a", "first tag sorted");
    T_OK(ms_series_intern("cpu", 3, NULL, 0) != x, "no tags is another series");
    T_EQ_INT(ms_series_intern("", 0, NULL, 0), 0, "empty name refused");
    T_OK(ms_series_get(0) == NULL, "id 0 is none");
    T_OK(ms_series_get(9999) == NULL, "unknown id is NULL");

    ms_tag dup[] = {tag("a", "1"), tag("a", "9")};
    uint32_t d = ms_series_intern("m", 1, dup, 2);
    T_EQ_STR(ms_series_get(d)->key, "m{a=9}", "later duplicate key wins");

    ms_tag base[] = {tag("host", "h1"), tag("cluster", "prod")};
    ms_series_set_base_tags(base, 2);
    uint32_t b1 = ms_series_intern("up", 2, NULL, 0);
    T_EQ_STR(ms_series_get(b1)->key, "up{cluster=prod,host=h1}", "base tags added");
    ms_tag mine[] = {tag("host", "other")};
    uint32_t b2 = ms_series_intern("up", 2, mine, 1);
    T_EQ_STR(ms_series_get(b2)->key, "up{cluster=prod,host=other}", "caller's tag beats base tag");

    /* many series: ids stable, pointers stable across growth */
    const ms_series *first = ms_series_get(x);
    char name[32];
    uint32_t last = 0;
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(name, sizeof name, "m.%d", i);
        last = ms_series_intern(name, (size_t)n, NULL, 0);
    }
    T_OK(last != 0, "20000 series interned");
    T_OK(ms_series_get(x) == first, "pointer stable after growth");
    T_EQ_INT(ms_series_intern("m.123", 5, NULL, 0), ms_series_intern("m.123", 5, NULL, 0),
             "lookup after growth finds the same id");

    /* bound */
    uint32_t have = ms_series_count();
    ms_series_set_limit(have + 2);
    T_OK(ms_series_intern("new.1", 5, NULL, 0) != 0, "under the limit: ok");
    T_OK(ms_series_intern("new.2", 5, NULL, 0) != 0, "at the limit: ok");
    T_EQ_INT(ms_series_intern("new.3", 5, NULL, 0), 0, "past the limit: refused");
    T_EQ_INT(ms_series_dropped(), 1, "refusal counted");
    T_OK(ms_series_intern("new.1", 5, NULL, 0) != 0, "existing series still found when full");

    /* long keys go through the heap path */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ms_tag bt[] = {tag("k", big)};
    ms_series_set_limit(have + 10);
    uint32_t lid = ms_series_intern("long", 4, bt, 1);
    T_OK(lid != 0 && ms_series_get(lid)->key_len > 2000, "long key interned");
    ms_series_reset();
    T_EQ_INT(ms_series_count(), 0, "reset empties the table");
    return t_done();
}
