/*
 * fuzz_exec_parse.c - libFuzzer harness for the exec bridge's line parsers
 * (script output is untrusted text). The harness includes exec_parse.c. The
 * first input byte picks the format (and whether the script is named like a
 * Nagios plugin); the rest is split into lines as exec_run.c does and fed
 * to the parser, then the run is ended with an exit code from that byte.
 */
#include "../src/exec_parse.c"

#include "ms_series.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        ms_series_set_limit(50000);
        init = 1;
    }
    if (size < 1 || size > 65536) return 0;
    uint8_t sel = data[0];
    ms_exec_parser p = {.script = "fuzz",
                        .stem = (sel & 0x80) ? "check_fuzz" : "fuzz",
                        .prefix = (sel & 0x40) ? "pre" : NULL,
                        .format = (sel & 7) % MS_EXEC_FMT_COUNT_,
                        .out = ms_batch_new(16)};
    ms_exec_parser_begin(&p, 1700000000.0);
    char *line = malloc(size);
    const uint8_t *s = data + 1, *end = data + size;
    while (s < end) {
        const uint8_t *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        memcpy(line, s, n);
        line[n] = 0;
        ms_error err = {0};
        int rc = ms_exec_parse_line(&p, line, n, &err);
        if (rc != MS_OK && (rc != MS_EINVAL || !err.msg[0])) __builtin_trap();
        s += n + (nl ? 1 : 0);
    }
    ms_exec_parser_end(&p, (sel >> 3) & 7, 0, NULL);
    for (uint32_t i = 0; i < p.out->n; i++)
        if (!ms_series_get(p.out->s[i].series)) __builtin_trap();
    free(line);
    ms_batch_unref(p.out);
    if (ms_series_count() > 40000) { /* keep the table from filling up */
        ms_series_reset();
        ms_rate_reset();
    }
    return 0;
}
