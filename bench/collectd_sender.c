/*
 * collectd_sender.c - sends collectd network packets (binary protocol, no
 * security) over UDP as fast as one core can (sendmmsg, 64 datagrams per
 * call) for a given time, for bench_collectd.sh.
 *
 *   collectd_sender HOST PORT SECONDS [VALUES_PER_SECOND]
 *
 * Without VALUES_PER_SECOND (or 0) it sends flat out; with it, 8 datagrams
 * per sendmmsg and sleeps to keep to that rate.
 *
 * The packets are filled the way collectd's network plugin fills them: up to
 * 1452 bytes, a part only when it differs from the previous value list of the
 * same packet (host, time_hr, interval_hr, plugin, plugin_instance, type,
 * type_instance), then the values part. The value lists cycle through a mix
 * of 8 hosts x (load, memory, 4 cpus, interface, df, disk): gauges and
 * derives. Every datagram gets a time_hr 2^-20 s (about 1 us) after the one
 * before, so every identifier's time keeps increasing (collectd drops a value
 * not newer than the last one of its identifier). Prints
 * "values <sent> packets <sent> seconds <elapsed> derive_series <n>", where
 * derive_series is the number of distinct DERIVE data sources (the first
 * value of each gives no rate).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64
#define PKT   1452
#define HOSTS 8
#define MAXVL 512

typedef struct {
    const char *plugin, *pinst, *type, *tinst;
    int n;      /* data sources */
    int derive; /* 1: DERIVE, 0: GAUGE */
} vl_t;

static vl_t mix[MAXVL];
static int nmix;

static void addvl(const char *p, const char *pi, const char *t, const char *ti, int n, int derive)
{
    mix[nmix++] = (vl_t){p, pi, t, ti, n, derive};
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t put_str(uint8_t *b, uint16_t type, const char *s)
{
    size_t l = strlen(s) + 1;
    uint16_t h[2] = {htons(type), htons((uint16_t)(4 + l))};
    memcpy(b, h, 4);
    memcpy(b + 4, s, l);
    return 4 + l;
}

static size_t put_u64(uint8_t *b, uint16_t type, uint64_t v)
{
    uint16_t h[2] = {htons(type), htons(12)};
    memcpy(b, h, 4);
    for (int i = 0; i < 8; i++) b[4 + i] = (uint8_t)(v >> (56 - 8 * i));
    return 12;
}

static size_t vl_size(const vl_t *v)
{
    return 6 + 9 * (size_t)v->n;
}

static size_t put_values(uint8_t *b, const vl_t *v, uint64_t seq)
{
    uint16_t h[3] = {htons(6), htons((uint16_t)vl_size(v)), htons((uint16_t)v->n)};
    memcpy(b, h, 6);
    for (int i = 0; i < v->n; i++) b[6 + i] = v->derive ? 2 : 1;
    uint8_t *p = b + 6 + v->n;
    for (int i = 0; i < v->n; i++, p += 8) {
        if (v->derive) {
            uint64_t x = 1000000 + seq; /* big endian */
            for (int k = 0; k < 8; k++) p[k] = (uint8_t)(x >> (56 - 8 * k));
        } else {
            double g = 0.25 * (double)(i + 1); /* little endian on x86 */
            memcpy(p, &g, 8);
        }
    }
    return vl_size(v);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS\n", argv[0]);
        return 2;
    }
    double secs = atof(argv[3]), rate = argc > 4 ? atof(argv[4]) : 0;
    int per_call = rate > 0 ? 8 : BATCH, rounds = rate > 0 ? 1 : 16;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) return 2;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("socket");
        return 1;
    }
    static const char *cpus[] = {"0", "1", "2", "3"},
                      *states[] = {"user", "system", "idle", "wait"};
    static const char *mem[] = {"used", "free", "cached", "buffered"};
    addvl("load", "", "load", "", 3, 0);
    for (int i = 0; i < 4; i++) addvl("memory", "", "memory", mem[i], 1, 0);
    for (int c = 0; c < 4; c++)
        for (int s = 0; s < 4; s++) addvl("cpu", cpus[c], "cpu", states[s], 1, 1);
    addvl("interface", "eth0", "if_octets", "", 2, 1);
    addvl("interface", "eth0", "if_packets", "", 2, 1);
    addvl("interface", "eth0", "if_errors", "", 2, 1);
    addvl("df", "root", "df_complex", "used", 1, 0);
    addvl("df", "root", "df_complex", "free", 1, 0);
    addvl("disk", "sda", "disk_octets", "", 2, 1);
    addvl("disk", "sda", "disk_ops", "", 2, 1);
    int derive_ds = 0;
    for (int i = 0; i < nmix; i++) derive_ds += mix[i].derive ? mix[i].n : 0;

    /* one cycle over hosts x mix, as packets; then sent round robin */
    static uint8_t ring[4096][PKT];
    size_t len[4096], toff[4096];
    int nvals[4096], nring = 0;
    char hosts[HOSTS][32];
    for (int h = 0; h < HOSTS; h++) snprintf(hosts[h], sizeof hosts[h], "bench%d", h);
    uint64_t t0 = (uint64_t)time(NULL) << 30;
    for (int h = 0, i = 0; h < HOSTS;) {
        uint8_t *b = ring[nring];
        size_t n = put_str(b, 0, hosts[h]);
        toff[nring] = n + 4;
        n += put_u64(b + n, 8, t0);
        n += put_u64(b + n, 9, (uint64_t)10 << 30);
        nvals[nring] = 0;
        const vl_t *prev = NULL;
        while (h < HOSTS) {
            const vl_t *v = &mix[i];
            size_t need = vl_size(v) + 4 * 5 + strlen(v->plugin) + strlen(v->pinst) +
                          strlen(v->type) + strlen(v->tinst) + 4 + strlen(hosts[h]) + 1;
            if (n + need > PKT) break;
            if (!prev || strcmp(prev->plugin, v->plugin)) n += put_str(b + n, 2, v->plugin);
            if (!prev || strcmp(prev->pinst, v->pinst)) n += put_str(b + n, 3, v->pinst);
            if (!prev || strcmp(prev->type, v->type)) n += put_str(b + n, 4, v->type);
            if (!prev || strcmp(prev->tinst, v->tinst)) n += put_str(b + n, 5, v->tinst);
            n += put_values(b + n, v, 0);
            nvals[nring] += v->n;
            prev = v;
            if (++i == nmix) {
                i = 0;
                h++;
                break; /* the host part comes first in a packet: one host per packet */
            }
        }
        len[nring++] = n;
    }
    static uint8_t bufs[BATCH][PKT];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    int bval[BATCH];
    for (int i = 0; i < BATCH; i++) {
        memcpy(bufs[i], ring[i % nring], len[i % nring]);
        bval[i] = nvals[i % nring];
        iov[i] = (struct iovec){bufs[i], len[i % nring]};
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long packets = 0, values = 0;
    uint64_t t = t0;
    double s0 = now(), s = s0;
    while (s - s0 < secs) {
        for (int r = 0; r < rounds; r++) {
            for (int i = 0; i < per_call; i++) { /* the next time_hr, big endian */
                t += 1u << 10;
                uint8_t *p = bufs[i] + toff[i % nring];
                for (int k = 0; k < 8; k++) p[k] = (uint8_t)(t >> (56 - 8 * k));
            }
            int n = sendmmsg(fd, msgs, (unsigned)per_call, 0);
            for (int i = 0; i < n; i++) values += (unsigned)bval[i];
            if (n > 0) packets += (unsigned)n;
            if (n < per_call)
                t -= (uint64_t)(per_call - (n > 0 ? n : 0)) << 10; /* unsent: times reused */
        }
        s = now();
        double ahead = rate > 0 ? (double)values / rate - (s - s0) : 0;
        if (ahead > 0) {
            struct timespec ts = {(time_t)ahead, (long)((ahead - (double)(time_t)ahead) * 1e9)};
            nanosleep(&ts, NULL);
            s = now();
        }
    }
    printf("values %llu packets %llu seconds %.3f derive_series %d\n", values, packets, s - s0,
           derive_ds * HOSTS);
    return 0;
}
