/*
 * spool_bench.c - write throughput of the disk spool (src/spool.c), for
 * bench/bench_delivery.sh: appends TOTAL_MIB of records of REC_KIB each to a
 * fresh spool in DIR with the given fsync policy, then syncs, and prints
 * "<MB/s> <seconds>" (MB = 10^6 bytes, the final sync included).
 *
 *   spool_bench DIR TOTAL_MIB REC_KIB batch|never
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ms_log.h"
#include "ms_spool.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: spool_bench DIR TOTAL_MIB REC_KIB batch|never\n");
        return 2;
    }
    size_t total = (size_t)atol(argv[2]) << 20, rec = (size_t)atol(argv[3]) << 10;
    /* one segment for the whole run, so the final sync covers every byte */
    ms_spool_opts o = {0, total + (1u << 20), MS_SPOOL_DROP_OLDEST,
                       strcmp(argv[4], "batch") ? -1 : 0};
    ms_spool *s;
    ms_error err = {0};
    ms_log_set_level(MS_LOG_WARN);
    if (ms_spool_open(argv[1], &o, "bench", &s, &err) != MS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char *buf = malloc(rec);
    for (size_t i = 0; i < rec; i++) buf[i] = (char)('a' + i % 26); /* line-protocol-ish bytes */
    double t0 = now();
    size_t done = 0;
    for (uint32_t i = 0; done < total; i++, done += rec) {
        if (ms_spool_append(s, buf, rec, NULL, 1000, 0, 0, NULL, &err) != MS_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    }
    ms_spool_sync(s, 1);
    double dt = now() - t0;
    printf("%.1f %.3f\n", (double)done / 1e6 / dt, dt);
    ms_spool_close(s);
    free(buf);
    return 0;
}
