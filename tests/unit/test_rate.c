/* test_rate.c - rate math: first reading, steady rate, resets, 32/64-bit wraps. */
#include "ms_rate.h"
#include "t.h"

int main(void)
{
    double r = -1;
    T_EQ_INT(ms_rate_compute(100, 10, 150, 20, &r), 1, "simple rate");
    T_EQ_DBL(r, 5.0, 1e-12, "50 over 10 s");
    T_EQ_INT(ms_rate_compute(100, 10, 100, 20, &r), 1, "no change is a rate");
    T_EQ_DBL(r, 0.0, 1e-12, "zero rate");
    T_EQ_INT(ms_rate_compute(100, 10, 150, 10, &r), 0, "no time passed: no rate");
    T_EQ_INT(ms_rate_compute(100, 20, 150, 10, &r), 0, "clock went back: no rate");
    T_EQ_INT(ms_rate_compute(5000, 10, 10, 20, &r), 0, "decrease is a reset: no rate");
    /* 32-bit wrap: 2^32 - 100 -> 50 is +150 */
    T_EQ_INT(ms_rate_compute(4294967196.0, 0, 50, 10, &r), 1, "32-bit wrap gives a rate");
    T_EQ_DBL(r, 15.0, 1e-9, "32-bit wrap delta");
    /* 64-bit wrap */
    T_EQ_INT(ms_rate_compute(18446744073709549568.0, 0, 2048, 1, &r), 1,
             "64-bit wrap gives a rate");
    T_EQ_DBL(r, 4096.0, 1.0, "64-bit wrap delta");
    /* a drop from the middle of the 32-bit range is a reset, not a wrap */
    T_EQ_INT(ms_rate_compute(2000000000.0, 0, 10, 10, &r), 0, "mid-range drop is a reset");
    T_EQ_INT(ms_rate_compute(0.0 / 0.0, 0, 10, 10, &r), 0, "NaN gives no rate");

    /* stateful: per series */
    T_EQ_INT(ms_rate_update(1, 100, 0, &r), 0, "first reading: nothing");
    T_EQ_INT(ms_rate_update(2, 7, 0, &r), 0, "other series: first reading");
    T_EQ_INT(ms_rate_update(1, 130, 10, &r), 1, "second reading: rate");
    T_EQ_DBL(r, 3.0, 1e-12, "rate value");
    T_EQ_INT(ms_rate_update(1, 5, 20, &r), 0, "reset: nothing");
    T_EQ_INT(ms_rate_update(1, 25, 30, &r), 1, "after reset the new base counts");
    T_EQ_DBL(r, 2.0, 1e-12, "rate from the reset base");
    T_EQ_INT(ms_rate_update(2, 17, 5, &r), 1, "series 2 independent");
    T_EQ_DBL(r, 2.0, 1e-12, "series 2 rate");
    for (uint32_t s = 10; s < 5000; s++) ms_rate_update(s, 1, 0, &r);
    T_EQ_INT(ms_rate_update(1, 45, 40, &r), 1, "state survives table growth");
    T_EQ_DBL(r, 2.0, 1e-12, "rate after growth");

    ms_rate_reset();
    ms_rate_set_limit(2);
    ms_rate_update(1, 1, 0, &r);
    ms_rate_update(2, 1, 0, &r);
    T_EQ_INT(ms_rate_update(3, 1, 0, &r), 0, "past the bound: nothing");
    T_EQ_INT(ms_rate_update(3, 2, 1, &r), 0, "and still nothing (not stored)");
    T_EQ_INT(ms_rate_dropped(), 2, "past the bound: counted");
    ms_rate_reset();
    return t_done();
}
