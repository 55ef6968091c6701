/*
 * udp_sink.c - the bare receiver the listener benchmarks measure against:
 * recvmmsg in batches of 64 into a socket with the given SO_RCVBUF, and the
 * least work that still counts what arrived (no parsing, no aggregation):
 *   lines     count newline-separated lines (StatsD; bench_statsd.sh)
 *   collectd  walk each packet's part headers and count the values of its
 *             values parts (bench_collectd.sh)
 *
 *   udp_sink lines|collectd PORT RCVBUF_BYTES
 *
 * Runs until SIGTERM, then prints "lines <n> packets <n>" (or "values ...").
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64
#define DGRAM 65536

static volatile sig_atomic_t done;

static void on_term(int sig)
{
    (void)sig;
    done = 1;
}

/* Lines in one StatsD datagram. */
static unsigned long long count_lines(const uint8_t *p, const uint8_t *e)
{
    unsigned long long n = 1;
    while ((p = memchr(p, '\n', (size_t)(e - p)))) n++, p++;
    return n;
}

/* Values in one collectd packet: the counts of its values parts (type 6). */
static unsigned long long count_values(const uint8_t *p, const uint8_t *e)
{
    unsigned long long n = 0;
    while (e - p >= 4) {
        unsigned type = (unsigned)p[0] << 8 | p[1], len = (unsigned)p[2] << 8 | p[3];
        if (len < 4 || len > (size_t)(e - p)) break;
        if (type == 6 && len >= 6) n += (unsigned)p[4] << 8 | p[5];
        p += len;
    }
    return n;
}

int main(int argc, char **argv)
{
    int collectd = argc == 4 && !strcmp(argv[1], "collectd");
    if (argc != 4 || (!collectd && strcmp(argv[1], "lines") != 0)) {
        fprintf(stderr, "usage: %s lines|collectd PORT RCVBUF_BYTES\n", argv[0]);
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_DGRAM, 0), rb = atoi(argv[3]);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("bind");
        return 1;
    }
    struct sigaction act = {.sa_handler = on_term};
    sigaction(SIGTERM, &act, NULL); /* no SA_RESTART: recvmmsg returns EINTR */
    static uint8_t bufs[BATCH][DGRAM];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){bufs[i], DGRAM};
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long count = 0, packets = 0;
    printf("ready\n");
    fflush(stdout);
    while (!done) {
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0) continue;
        packets += (unsigned)n;
        for (int i = 0; i < n; i++) {
            const uint8_t *p = bufs[i], *e = p + msgs[i].msg_len;
            count += collectd ? count_values(p, e) : count_lines(p, e);
        }
    }
    printf("%s %llu packets %llu\n", collectd ? "values" : "lines", count, packets);
    return 0;
}
