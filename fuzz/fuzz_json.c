/*
 * fuzz_json.c - libFuzzer harness for the pystatsd JSON parser
 * (ms_statsd_parse_json, the JSON listener's one call per datagram).
 * Invariants: exactly one of metric/bad is called; an accepted metric has a
 * sanitized non-empty name and tags that fit the buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "ms_statsd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int calls;

static void on_metric(void *ud, const ms_sd_metric *m)
{
    (void)ud;
    calls++;
    if (!m->key_len || m->tags_len > 256) __builtin_trap();
    for (size_t i = 0; i < m->key_len; i++)
        if (m->key[i] == ' ' || m->key[i] == '/' || m->key[i] == ':') __builtin_trap();
}

static void on_bad(void *ud, const char *line, size_t len, const char *why)
{
    (void)ud;
    (void)line;
    (void)len;
    if (!why || !*why) __builtin_trap();
    calls++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char tags[256];
    ms_sd_sink sink = {on_metric, NULL, on_bad, NULL};
    calls = 0;
    int rc = ms_statsd_parse_json((const char *)data, size, tags, sizeof tags, &sink);
    if (calls != 1 || (rc != 0 && rc != -1)) __builtin_trap();
    return 0;
}
