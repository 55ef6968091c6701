/*
 * fuzz_dogstatsd.c - libFuzzer harness for the DogStatsD line parser
 * (ms_statsd_parse with dogstatsd=1): the StatsD harness with the extensions
 * on (tags, distributions, value packing, |T, |c:, _e events, _sc checks).
 */
#define FUZZ_DOGSTATSD 1
#include "fuzz_statsd.c"
