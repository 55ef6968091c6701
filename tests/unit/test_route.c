/* test_route.c - the consistent hash ring of forwarder routing: an even
 * spread, stability, and only ~1/N of the series moving (all to the new
 * endpoint) when an endpoint is added; none but its own when one is removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_route.h"
#include "t.h"

#define NSERIES 10000

static char keys[NSERIES][64];

/* Pick every key on a ring over names[0..n). */
static void pick_all(const char *const *names, size_t n, size_t *out)
{
    ms_ring *r = ms_ring_new(names, n, MS_RING_VNODES);
    for (size_t i = 0; i < NSERIES; i++) out[i] = r ? ms_ring_pick(r, keys[i], strlen(keys[i])) : 0;
    ms_ring_free(r);
}

int main(void)
{
    static size_t three[NSERIES], again[NSERIES], four[NSERIES], two[NSERIES];
    /* series keys as ms_series makes them: name{k=v,...}, mixed names */
    const char *names[] = {"cpu.user", "cpu.system", "disk.used", "net.rx_bytes", "http.requests"};
    for (size_t i = 0; i < NSERIES; i++)
        snprintf(keys[i], sizeof keys[i], "%s{host=web%zu,instance=%zu}", names[i % 5], i / 5 % 97,
                 i);
    const char *eps[] = {"10.0.0.1:2003", "10.0.0.2:2003", "10.0.0.3:2003", "10.0.0.4:2003"};

    T_OK(ms_ring_new(eps, 0, MS_RING_VNODES) == NULL, "a ring needs an endpoint");
    ms_ring *one = ms_ring_new(eps, 1, 8);
    int all_zero = 1;
    for (size_t i = 0; i < 100; i++) all_zero &= ms_ring_pick(one, keys[i], strlen(keys[i])) == 0;
    T_OK(all_zero, "one endpoint takes every series");
    ms_ring_free(one);

    pick_all(eps, 3, three);
    size_t count[3] = {0};
    for (size_t i = 0; i < NSERIES; i++) count[three[i] < 3 ? three[i] : 0]++;
    for (size_t e = 0; e < 3; e++) {
        double share = (double)count[e] / (NSERIES / 3.0);
        T_OK(share > 0.85 && share < 1.15, "endpoint %zu holds %zu of %d series (%.1f%% of even)",
             e, count[e], NSERIES, share * 100);
    }

    pick_all(eps, 3, again);
    T_OK(!memcmp(three, again, sizeof three), "the same ring picks the same endpoints (restart)");

    pick_all(eps, 4, four);
    size_t moved = 0, moved_elsewhere = 0;
    for (size_t i = 0; i < NSERIES; i++) {
        if (four[i] == three[i]) continue;
        moved++;
        moved_elsewhere += four[i] != 3;
    }
    double frac = (double)moved / NSERIES;
    T_OK(frac > 0.25 * 0.85 && frac < 0.25 * 1.15,
         "adding a 4th endpoint moves %.1f%% of the series (~25%%)", frac * 100);
    T_EQ_INT(moved_elsewhere, 0, "every moved series moved to the new endpoint");

    /* removing the last endpoint moves only its own series */
    pick_all(eps, 2, two);
    size_t wrong = 0;
    for (size_t i = 0; i < NSERIES; i++) wrong += three[i] != 2 && two[i] != three[i];
    T_EQ_INT(wrong, 0, "removing an endpoint moves only the series it held");

    /* the order endpoints are listed in does not matter: names place them */
    const char *rev[] = {eps[2], eps[1], eps[0]};
    size_t *r3 = malloc(sizeof three);
    pick_all(rev, 3, r3);
    size_t same = 0;
    for (size_t i = 0; i < NSERIES; i++) same += !strcmp(rev[r3[i]], eps[three[i]]);
    T_EQ_INT(same, NSERIES, "a series keeps its endpoint when the list is reordered");
    free(r3);

    /* the hash is fixed: the same bytes give the same value on every run */
    T_OK(ms_route_hash("a", 1) != ms_route_hash("b", 1), "hash tells bytes apart");
    T_EQ_INT(ms_route_hash("cpu.user{host=a}", 16) == ms_route_hash("cpu.user{host=a}", 16), 1,
             "hash is a function");
    return t_done();
}
