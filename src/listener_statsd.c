/*
 * listener_statsd.c - the StatsD/DogStatsD listener (UDP, TCP, unix
 * datagrams) and the pystatsd JSON listener (UDP), config under
 * `listeners: { statsd: {...}, json: {...} }` (docs/statsd.md).
 *
 * Threads: each UDP socket (one per worker, SO_REUSEPORT on the same
 * address) is read by its own thread with recvmmsg; the thread parses into
 * its own aggregation table under its own mutex (taken once per recvmmsg
 * batch). TCP and unix-datagram input is read on the main loop into a
 * main-thread table (listener_stream.c). At each flush the main loop swaps
 * every worker's table for an empty one (the lock is held for a pointer
 * swap), merges them into the listener's main table, flushes that into a
 * batch and submits it: only the main thread touches the pipeline. On SIGHUP
 * only what changed restarts (see apply); tables are merged, never dropped.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <uv.h>

#include "ms_config.h"
#include "ms_log.h"
#include "ms_pipeline.h"
#include "ms_stats.h"
#include "ms_statsd.h"
#include "listener_int.h"
#include "statsd_int.h"

static listener L[2] = {{.name = "statsd"}, {.name = "json", .json = 1}};
uv_loop_t *ms_sd_loop; /* the main loop (listener_stream.c uses it) */
static int stats_on;

static const ms_field *fields_of(const listener *l)
{
    return ms_sd_conf_fields(l->json);
}

static void make_opts(listener *l)
{
    ms_sd_conf_opts(&l->c, l->pct, l->histo, l->nhisto, &l->fo);
}

/* ---- parsing into a table ---- */

void ms_sd_peer_str(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (!sa) {
        snprintf(out, cap, "unix socket");
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)sa;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%d", ip, ntohs(s->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%d", ip, ntohs(s->sin6_port));
    } else {
        snprintf(out, cap, "unix socket");
    }
}

static void on_metric(void *ud, const ms_sd_metric *m)
{
    pctx *p = ud;
    if (ms_sd_agg_add(p->agg, m) == MS_EFULL) atomic_fetch_add(&p->l->dropped, 1);
}

static void on_event(void *ud, const ms_sd_event *e)
{
    pctx *p = ud;
    atomic_fetch_add(&p->l->events, 1);
    if (ms_sd_agg_add_event(p->agg, e) == MS_EFULL) atomic_fetch_add(&p->l->dropped, 1);
}

/* Count a rejected line; log the first bad_line_log per minute with the peer. */
void ms_sd_listener_bad(void *ud, const char *line, size_t len, const char *reason)
{
    pctx *p = ud;
    listener *l = p->l;
    if (l->json) atomic_fetch_add(&l->bad, 1); /* statsd lines are counted by the parser */
    int log = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec;
    pthread_mutex_lock(&l->log_mu);
    if (now - l->log_window >= 60) {
        l->log_window = now;
        l->logged = 0;
    }
    if (l->logged < atomic_load(&l->bad_log)) {
        l->logged++;
        log = 1;
    }
    pthread_mutex_unlock(&l->log_mu);
    if (!log) return;
    char peer[96];
    if (p->peer_text)
        snprintf(peer, sizeof peer, "%s", p->peer_text);
    else
        ms_sd_peer_str(p->peer, peer, sizeof peer);
    char shown[121];
    size_t n = len < 120 ? len : 120;
    for (size_t i = 0; i < n; i++) shown[i] = (line[i] >= 32 && line[i] < 127) ? line[i] : '?';
    shown[n] = 0;
    ms_log_warn("listeners.%s: bad %s from %s: %s: \"%s\"%s", l->name,
                l->json ? "datagram" : "line", peer, reason, shown, len > 120 ? "..." : "");
}

/* Parse one datagram (or a chunk of whole TCP lines) into agg. */
void ms_sd_listener_parse(listener *l, ms_sd_agg *agg, const char *buf, size_t len,
                          const struct sockaddr *peer, const char *peer_text)
{
    pctx p = {l, agg, peer, peer_text};
    ms_sd_sink sink = {on_metric, on_event, ms_sd_listener_bad, &p};
    atomic_fetch_add(&l->packets, 1);
    if (l->json) {
        char tags[4096];
        atomic_fetch_add(&l->lines, 1);
        if (ms_statsd_parse_json(buf, len, tags, sizeof tags, &sink) == 0)
            atomic_fetch_add(&l->metrics, 1);
        return;
    }
    ms_sd_parse_stats st = {0};
    ms_statsd_parse(buf, len, atomic_load(&l->dog), &sink, &st);
    atomic_fetch_add(&l->lines, st.lines);
    atomic_fetch_add(&l->bad, st.bad);
    atomic_fetch_add(&l->metrics, st.metrics);
}

/* ---- UDP workers ---- */

#define DGRAM_MAX 65536

/* Read one socket until it is empty (recvmmsg batches), parsing into the
 * worker's table under its mutex (once per batch). */
static void read_socket(worker *w, int fd, int batch, struct mmsghdr *msgs, struct iovec *iov,
                        struct sockaddr_storage *peers, char *bufs)
{
    listener *l = w->l;
    for (;;) {
        for (int i = 0; i < batch; i++) {
            iov[i] = (struct iovec){bufs + (size_t)i * DGRAM_MAX, DGRAM_MAX};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &peers[i],
                                              .msg_namelen = sizeof peers[i],
                                              .msg_iov = &iov[i],
                                              .msg_iovlen = 1};
        }
        int n = recvmmsg(fd, msgs, (unsigned)batch, MSG_DONTWAIT, NULL);
        if (n <= 0) return;
        pthread_mutex_lock(&w->mu);
        for (int i = 0; i < n; i++)
            ms_sd_listener_parse(l, w->agg, iov[i].iov_base, msgs[i].msg_len,
                                 (struct sockaddr *)&peers[i], NULL);
        pthread_mutex_unlock(&w->mu);
        if (n < batch) return;
    }
}

/* A reader thread: poll its sockets, read what is there, until told to stop. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    listener *l = w->l;
    int batch = (int)l->c.recv_batch;
    struct mmsghdr *msgs = calloc((size_t)batch, sizeof *msgs);
    struct iovec *iov = calloc((size_t)batch, sizeof *iov);
    struct sockaddr_storage *peers = calloc((size_t)batch, sizeof *peers);
    char *bufs = malloc((size_t)batch * DGRAM_MAX);
    struct pollfd pf[64];
    int npf = 0;
    if (!msgs || !iov || !peers || !bufs) {
        ms_log_error("listeners.%s: worker: out of memory", l->name);
        goto out;
    }
    for (int j = 0; j < l->nufd && npf < 64; j++)
        if (j % l->nw == w->idx) pf[npf++] = (struct pollfd){l->ufd[j], POLLIN, 0};
    if (npf == 1) {
        /* one socket: block in recvmmsg itself (no poll per wakeup); the
         * receive timeout lets the thread see `stop` */
        struct timeval tv = {0, 200000};
        setsockopt(pf[0].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (!atomic_load(&w->stop)) {
            for (int i = 0; i < batch; i++) {
                iov[i] = (struct iovec){bufs + (size_t)i * DGRAM_MAX, DGRAM_MAX};
                msgs[i].msg_hdr = (struct msghdr){.msg_name = &peers[i],
                                                  .msg_namelen = sizeof peers[i],
                                                  .msg_iov = &iov[i],
                                                  .msg_iovlen = 1};
            }
            int n = recvmmsg(pf[0].fd, msgs, (unsigned)batch, MSG_WAITFORONE, NULL);
            if (n <= 0) continue;
            pthread_mutex_lock(&w->mu);
            for (int i = 0; i < n; i++)
                ms_sd_listener_parse(l, w->agg, iov[i].iov_base, msgs[i].msg_len,
                                     (struct sockaddr *)&peers[i], NULL);
            pthread_mutex_unlock(&w->mu);
        }
    }
    while (npf > 1 && !atomic_load(&w->stop)) {
        if (poll(pf, (nfds_t)npf, 200) <= 0) continue;
        for (int f = 0; f < npf; f++)
            if (pf[f].revents & POLLIN) read_socket(w, pf[f].fd, batch, msgs, iov, peers, bufs);
    }
out:
    free(msgs);
    free(iov);
    free(peers);
    free(bufs);
    return NULL;
}

/* An AF_INET/AF_INET6 UDP socket bound to addr with SO_REUSEPORT. */
static int udp_socket(listener *l, ms_error *err)
{
    char host[256];
    int port;
    ms_parse_address(l->c.udp, host, sizeof host, &port);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0)
        sl = sizeof(struct sockaddr_in);
    else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0)
        sl = sizeof(struct sockaddr_in6);
    else
        return ms_error_set(err, MS_EINVAL, "listeners.%s.udp: %s: not an IP address", l->name,
                            l->c.udp);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ms_error_set(err, MS_EIO, "listeners.%s.udp: socket: %s", l->name, strerror(errno));
    int one = 1, rb = (int)l->c.recv_buffer;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (rb > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        close(fd);
        return ms_error_set(err, MS_EIO, "listeners.%s.udp: bind %s: %s", l->name, l->c.udp,
                            strerror(e));
    }
    return fd;
}

static void set_rcvbuf(int fd, uint64_t bytes)
{
    int rb = (int)bytes;
    if (rb > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
}

/* Have at least n UDP sockets on l->c.udp (more may stay from before). */
static int udp_open(listener *l, int n, ms_error *err)
{
    if (n <= l->nufd) return MS_OK;
    int *nf = realloc(l->ufd, (size_t)n * sizeof *nf);
    if (!nf) return ms_error_set(err, MS_ENOMEM, "out of memory");
    l->ufd = nf;
    ino_t *ni = realloc(l->uino, (size_t)n * sizeof *ni);
    if (!ni) return ms_error_set(err, MS_ENOMEM, "out of memory");
    l->uino = ni;
    while (l->nufd < n) {
        int fd = udp_socket(l, err);
        if (fd < 0) return err ? err->code : MS_EIO;
        struct stat st;
        l->uino[l->nufd] = fstat(fd, &st) == 0 ? st.st_ino : 0;
        l->ufd[l->nufd++] = fd;
    }
    return MS_OK;
}

/* Read what is queued on the UDP sockets into the main-loop table, then close
 * them (the workers are stopped): nothing the kernel holds is lost. */
static void udp_close(listener *l)
{
    static char buf[DGRAM_MAX];
    for (int j = 0; j < l->nufd; j++) {
        struct sockaddr_storage peer;
        for (;;) {
            socklen_t pl = sizeof peer;
            ssize_t n =
                recvfrom(l->ufd[j], buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&peer, &pl);
            if (n < 0) break;
            ms_sd_listener_parse(l, l->local, buf, (size_t)n, (struct sockaddr *)&peer, NULL);
        }
        close(l->ufd[j]);
    }
    free(l->ufd);
    free(l->uino);
    l->ufd = NULL;
    l->uino = NULL;
    l->nufd = 0;
}

/* Stop the reader threads and merge their tables into main (the sockets stay
 * open: the kernel keeps queueing meanwhile). */
static void workers_stop(listener *l)
{
    for (int i = 0; i < l->nw; i++) atomic_store(&l->w[i].stop, 1);
    for (int i = 0; i < l->nw; i++) {
        worker *w = &l->w[i];
        if (w->started) pthread_join(w->th, NULL);
        if (w->agg) ms_sd_agg_merge(l->main, w->agg);
        ms_sd_agg_free(w->agg);
        ms_sd_agg_free(w->spare);
        pthread_mutex_destroy(&w->mu);
    }
    free(l->w);
    l->w = NULL;
    l->nw = 0;
}

/* Open the sockets the config asks for and start c.workers reader threads. */
static int workers_start(listener *l, ms_error *err)
{
    if (!*l->c.udp) return MS_OK;
    int n = (int)l->c.workers;
    int rc = udp_open(l, n, err);
    if (rc) return rc;
    for (int j = 0; j < l->nufd; j++) set_rcvbuf(l->ufd[j], l->c.recv_buffer);
    l->w = calloc((size_t)n, sizeof *l->w);
    if (!l->w) return ms_error_set(err, MS_ENOMEM, "out of memory");
    l->nw = n; /* the threads read it to pick their sockets */
    for (int i = 0; i < n; i++) {
        worker *w = &l->w[i];
        w->l = l;
        w->idx = i;
        pthread_mutex_init(&w->mu, NULL);
        w->agg = ms_sd_agg_new((uint32_t)l->c.max_series, (uint32_t)l->c.timer_cap);
        w->spare = ms_sd_agg_new((uint32_t)l->c.max_series, (uint32_t)l->c.timer_cap);
    }
    for (int i = 0; i < n; i++) {
        worker *w = &l->w[i];
        if (!w->agg || !w->spare) {
            workers_stop(l);
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        }
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            workers_stop(l);
            return ms_error_set(err, MS_EIO, "listeners.%s: cannot start a worker thread", l->name);
        }
        w->started = 1;
    }
    return MS_OK;
}

/* ---- flush ---- */

static void flush_now(listener *l)
{
    for (int i = 0; i < l->nw; i++) {
        worker *w = &l->w[i];
        pthread_mutex_lock(&w->mu);
        ms_sd_agg *full = w->agg;
        w->agg = w->spare;
        pthread_mutex_unlock(&w->mu);
        ms_sd_agg_merge(l->main, full);
        w->spare = full;
    }
    ms_sd_agg_merge(l->main, l->local);
    ms_batch *b = ms_batch_new(256);
    if (!b) return;
    ms_sd_agg_flush(l->main, &l->fo, ms_now(), b);
    if (b->n)
        ms_pipeline_submit(b);
    else
        ms_batch_unref(b);
}

static void on_timer(uv_timer_t *t)
{
    flush_now(t->data);
}

/* ---- own metrics ---- */

/* Kernel drops of our UDP sockets: the "drops" column of /proc/net/udp(6)
 * for the rows whose inode is one of ours. */
static uint64_t kernel_drops(const listener *l)
{
    uint64_t total = 0;
    const char *files[] = {"/proc/net/udp", "/proc/net/udp6"};
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(files[f], "r");
        if (!fp) continue;
        char line[512];
        if (!fgets(line, sizeof line, fp)) {
            fclose(fp);
            continue;
        }
        while (fgets(line, sizeof line, fp)) {
            /* sl local rem st tx:rx tr:when retr uid timeout inode ref ptr drops */
            unsigned long long ino = 0, drops = 0;
            char *tok, *save = NULL;
            int col = 0;
            for (tok = strtok_r(line, " \n", &save); tok;
                 tok = strtok_r(NULL, " \n", &save), col++) {
                if (col == 9) ino = strtoull(tok, NULL, 10);
                if (col == 12) drops = strtoull(tok, NULL, 10);
            }
            for (int j = 0; j < l->nufd; j++)
                if (l->uino[j] && (unsigned long long)l->uino[j] == ino) total += drops;
        }
        fclose(fp);
    }
    return total;
}

static void stats_provider(ms_batch *b, double now, void *ud)
{
    (void)ud;
    for (int i = 0; i < 2; i++) {
        listener *l = &L[i];
        if (!l->main) continue;
        const char *kv[] = {"listener", l->name, NULL};
        ms_stats_add(b, "moonstat_statsd_packets_total", MS_KIND_COUNTER,
                     (double)atomic_load(&l->packets), now, kv);
        ms_stats_add(b, "moonstat_statsd_lines_total", MS_KIND_COUNTER,
                     (double)atomic_load(&l->lines), now, kv);
        ms_stats_add(b, "moonstat_statsd_bad_lines_total", MS_KIND_COUNTER,
                     (double)atomic_load(&l->bad), now, kv);
        ms_stats_add(b, "moonstat_statsd_metrics_total", MS_KIND_COUNTER,
                     (double)atomic_load(&l->metrics), now, kv);
        ms_stats_add(b, "moonstat_statsd_events_total", MS_KIND_COUNTER,
                     (double)atomic_load(&l->events), now, kv);
        ms_stats_add(b, "moonstat_statsd_dropped_total", MS_KIND_COUNTER,
                     (double)(atomic_load(&l->dropped) + ms_sd_agg_dropped(l->main)), now, kv);
        ms_stats_add(b, "moonstat_statsd_sketched_timers_total", MS_KIND_COUNTER,
                     (double)ms_sd_agg_sketched(l->main), now, kv);
        ms_stats_add(b, "moonstat_statsd_series", MS_KIND_GAUGE, ms_sd_agg_size(l->main), now, kv);
        ms_stats_add(b, "moonstat_statsd_kernel_drops_total", MS_KIND_COUNTER,
                     (double)kernel_drops(l), now, kv);
    }
}

/* ---- start / reload / stop ---- */

static void free_conf(listener *l)
{
    ms_schema_free(fields_of(l), &l->c);
    free(l->pct);
    ms_sd_histo_free(l->histo, l->nhisto);
    l->pct = NULL, l->histo = NULL, l->nhisto = 0;
}

/* Bring listener l in line with its section in cfg (NULL: stop it). Only
 * what changed is restarted: the UDP sockets when `udp` changes, the reader
 * threads when workers, recv_batch or the table bounds change (the sockets
 * stay open meanwhile), TCP and unix when their address changes. The tables
 * are merged, never dropped. */
static int apply(listener *l, const ms_config *cfg, ms_error *err)
{
    const ms_node *sec = cfg ? ms_node_get(cfg->listeners, l->name) : NULL;
    sd_conf c = {0};
    double *pct = NULL;
    ms_sd_histo *histo = NULL;
    size_t nh = 0;
    int enabled = 0;
    if (sec) {
        int rc = ms_sd_conf_load(cfg, l->name, l->json, sec, &c, &pct, &histo, &nh, err);
        if (rc) {
            ms_schema_free(fields_of(l), &c);
            free(pct);
            ms_sd_histo_free(histo, nh);
            return rc;
        }
        enabled = c.enabled;
    }
    int running = l->have_conf;
    if (!enabled) {
        if (running) {
            workers_stop(l);
            udp_close(l);
            ms_sd_tcp_stop(l);
            ms_sd_unix_stop(l);
            flush_now(l);
            uv_timer_stop(l->timer);
            uv_close((uv_handle_t *)l->timer, ms_sd_free_handle);
            l->timer = NULL;
            free_conf(l);
            l->have_conf = 0;
            ms_log_info("listeners.%s: stopped", l->name);
        }
        ms_schema_free(fields_of(l), &c);
        free(pct);
        ms_sd_histo_free(histo, nh);
        return MS_OK;
    }
    const sd_conf *o = &l->c;
    int udp_chg = !running || strcmp(o->udp, c.udp);
    int thr_chg = udp_chg || o->workers != c.workers || o->recv_batch != c.recv_batch ||
                  o->max_series != c.max_series || o->timer_cap != c.timer_cap;
    int buf_chg = !running || o->recv_buffer != c.recv_buffer;
    int tcp_chg = !running || strcmp(o->tcp, c.tcp);
    int unix_chg = !running || strcmp(o->unix_path, c.unix_path);
    double old_interval = running ? o->flush_interval : 0;
    if (running) {
        if (thr_chg) workers_stop(l);
        if (udp_chg) udp_close(l);
        if (tcp_chg) ms_sd_tcp_stop(l);
        if (unix_chg) ms_sd_unix_stop(l);
        free_conf(l);
    } else {
        l->unix_fd = -1;
    }
    l->c = c;
    l->c.histogram = NULL; /* points into cfg's tree: not kept */
    l->pct = pct;
    l->histo = histo;
    l->nhisto = nh;
    l->have_conf = 1;
    atomic_store(&l->dog, c.dogstatsd);
    atomic_store(&l->bad_log, (int)c.bad_line_log);
    make_opts(l);
    if (!l->main) {
        l->main = ms_sd_agg_new((uint32_t)c.max_series, (uint32_t)c.timer_cap);
        l->local = ms_sd_agg_new((uint32_t)c.max_series, (uint32_t)c.timer_cap);
        pthread_mutex_init(&l->log_mu, NULL);
        if (!l->main || !l->local) return ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    ms_sd_agg_set_limits(l->main, (uint32_t)c.max_series, (uint32_t)c.timer_cap);
    ms_sd_agg_set_limits(l->local, (uint32_t)c.max_series, (uint32_t)c.timer_cap);
    if (!l->timer) {
        if (!(l->timer = malloc(sizeof *l->timer)))
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        uv_timer_init(ms_sd_loop, l->timer);
        l->timer->data = l;
    }
    if (!running || old_interval != c.flush_interval) {
        uint64_t ms = (uint64_t)(c.flush_interval * 1000);
        uv_timer_start(l->timer, on_timer, ms, ms);
    }
    int rc = MS_OK;
    if (thr_chg)
        rc = workers_start(l, err);
    else if (buf_chg)
        for (int j = 0; j < l->nufd; j++) set_rcvbuf(l->ufd[j], c.recv_buffer);
    if (!rc && tcp_chg) rc = ms_sd_tcp_start(l, err);
    if (!rc && unix_chg) rc = ms_sd_unix_start(l, err);
    if (rc) return rc; /* what did start keeps running; stop() cleans up */
    if (thr_chg || tcp_chg || unix_chg)
        ms_log_info("listeners.%s: listening (udp %s, tcp %s, unix %s, %d worker%s)", l->name,
                    *c.udp ? c.udp : "-", (*c.tcp && !l->json) ? c.tcp : "-",
                    (*c.unix_path && !l->json) ? c.unix_path : "-", l->nw, l->nw == 1 ? "" : "s");
    return MS_OK;
}

int ms_statsd_listeners_start(struct uv_loop_s *lp, const ms_config *cfg, ms_error *err)
{
    ms_sd_loop = lp;
    for (int i = 0; i < 2; i++) {
        int rc = apply(&L[i], cfg, err);
        if (rc) {
            for (int j = 0; j <= i; j++) apply(&L[j], NULL, NULL); /* undo what started */
            return rc;
        }
    }
    if (!stats_on) {
        ms_stats_register(stats_provider, NULL);
        stats_on = 1;
    }
    return MS_OK;
}

int ms_statsd_listeners_reload(const ms_config *cfg, ms_error *err)
{
    int first = MS_OK;
    for (int i = 0; i < 2; i++) {
        ms_error e = {0};
        int rc = apply(&L[i], cfg, &e);
        if (rc) {
            ms_log_error("reload: %s (keeping listeners.%s as it was)", e.msg, L[i].name);
            if (!first) {
                first = rc;
                if (err) *err = e;
            }
        }
    }
    return first;
}

void ms_statsd_listeners_stop(void)
{
    for (int i = 0; i < 2; i++) {
        listener *l = &L[i];
        if (l->have_conf) apply(l, NULL, NULL); /* closes, merges and flushes */
    }
    if (stats_on) ms_stats_unregister(stats_provider, NULL);
    stats_on = 0;
}

void ms_statsd_listeners_free(void)
{
    for (int i = 0; i < 2; i++) {
        listener *l = &L[i];
        if (l->nw) workers_stop(l); /* only when stop() was not reached */
        for (int j = 0; j < l->nufd; j++) close(l->ufd[j]);
        free(l->ufd);
        free(l->uino);
        l->ufd = NULL, l->uino = NULL, l->nufd = 0;
        ms_sd_agg_free(l->main);
        ms_sd_agg_free(l->local);
        l->main = l->local = NULL;
    }
}
