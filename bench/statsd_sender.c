/*
 * statsd_sender.c - sends StatsD counters over UDP as fast as one core can
 * (sendmmsg, 64 datagrams per call) for a given time, for bench_statsd.sh.
 *
 *   statsd_sender HOST PORT SECONDS LINES_PER_PACKET [KEYS]
 *
 * Every line is "bench.k<N>:1|c" with N cycling over KEYS (1000) keys, so the
 * sum of all counts that arrive equals the number of lines that arrived.
 * Prints "lines <sent> packets <sent> seconds <elapsed>" on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS LINES_PER_PACKET [KEYS]\n", argv[0]);
        return 2;
    }
    double secs = atof(argv[3]);
    int per = atoi(argv[4]), keys = argc > 5 ? atoi(argv[5]) : 1000;
    if (per < 1 || keys < 1) return 2;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) return 2;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("socket");
        return 1;
    }
    /* BATCH prepared datagrams, the keys rotating through them */
    static char bufs[BATCH][8192];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    int k = 0;
    for (int i = 0; i < BATCH; i++) {
        size_t n = 0;
        for (int l = 0; l < per; l++) {
            n += (size_t)snprintf(bufs[i] + n, sizeof bufs[i] - n, "%sbench.k%d:1|c", l ? "\n" : "",
                                  k);
            k = (k + 1) % keys;
        }
        iov[i] = (struct iovec){bufs[i], n};
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long packets = 0;
    double t0 = now(), t = t0;
    while (t - t0 < secs) {
        for (int r = 0; r < 16; r++) {
            int n = sendmmsg(fd, msgs, BATCH, 0);
            if (n > 0) packets += (unsigned)n;
        }
        t = now();
    }
    printf("lines %llu packets %llu seconds %.3f\n", packets * (unsigned)per, packets, t - t0);
    return 0;
}
