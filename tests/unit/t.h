/*
 * t.h - the unit-test harness: each check prints "ok N - what" or
 * "not ok N - what (file:line)"; t_done() prints the plan and returns the
 * exit status. tests/run.sh adds the lines of every test program up.
 */
#ifndef MS_T_H
#define MS_T_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int t_n, t_failed;

#define T_OK(cond, ...)                                                                            \
    do {                                                                                           \
        int t_c = !!(cond); /* evaluated once */                                                   \
        ++t_n;                                                                                     \
        if (t_c) {                                                                                 \
            printf("ok %d - ", t_n);                                                               \
        } else {                                                                                   \
            ++t_failed;                                                                            \
            printf("not ok %d - ", t_n);                                                           \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        if (!t_c) printf(" (%s:%d)", __FILE__, __LINE__);                                          \
        printf("\n");                                                                              \
    } while (0)

#define T_EQ_INT(a, b, what)                                                                       \
    do {                                                                                           \
        long long t_a = (long long)(a), t_b = (long long)(b);                                      \
        T_OK(t_a == t_b, "%s: %lld == %lld", what, t_a, t_b);                                      \
    } while (0)

#define T_EQ_DBL(a, b, eps, what)                                                                  \
    do {                                                                                           \
        double t_a = (a), t_b = (b);                                                               \
        T_OK(fabs(t_a - t_b) <= (eps), "%s: %.9g ~ %.9g", what, t_a, t_b);                         \
    } while (0)

#define T_EQ_STR(a, b, what)                                                                       \
    do {                                                                                           \
        const char *t_a = (a), *t_b = (b);                                                         \
        T_OK(t_a &&t_b &&strcmp(t_a, t_b) == 0, "%s: '%s' == '%s'", what, t_a ? t_a : "(null)",    \
             t_b ? t_b : "(null)");                                                                \
    } while (0)

static inline int t_done(void)
{
    printf("1..%d\n", t_n);
    return t_failed ? 1 : 0;
}

#endif
