/*
 * listener_int.h - the StatsD/JSON listener's state, shared by
 * listener_statsd.c (config, UDP reader threads, flush, reload) and
 * listener_stream.c (TCP and unix-datagram sockets on the main loop).
 * Not a public header.
 */
#ifndef MS_LISTENER_INT_H
#define MS_LISTENER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <uv.h>

#include "ms_statsd.h"
#include "statsd_int.h"

#define DGRAM_MAX 65536

typedef struct listener listener;

typedef struct worker {
    listener *l;
    int idx; /* reads the UDP sockets j with j % nw == idx */
    pthread_t th;
    int started;
    atomic_int stop;
    pthread_mutex_t mu;
    ms_sd_agg *agg, *spare;
} worker;

typedef struct tcp_conn {
    uv_tcp_t h;
    listener *l;
    char *buf;
    size_t len;
    int skipping; /* dropping a line that grew past MS_SD_MAX_LINE */
    char peer[64];
    struct tcp_conn *next;
} tcp_conn;

struct listener {
    const char *name; /* "statsd" | "json" */
    int json;
    sd_conf c;
    int have_conf;
    double *pct;
    ms_sd_histo *histo;
    size_t nhisto;
    ms_sd_flush_opts fo;
    ms_sd_agg *main, *local; /* local: what the main loop read (TCP, unix) */
    int *ufd; /* UDP sockets (SO_REUSEPORT, one address): kept while udp is unchanged */
    ino_t *uino;
    int nufd;
    worker *w; /* reader threads: restarted on worker changes, the sockets stay */
    int nw;
    atomic_int dog, bad_log; /* what the workers read of the config */
    uv_tcp_t *tcp;           /* handles are allocated: a closing one may outlive a reload */
    tcp_conn *conns;
    uv_poll_t *unix_poll;
    int unix_fd;
    uv_timer_t *timer;
    /* counters (atomics: workers add) */
    atomic_uint_fast64_t packets, lines, bad, metrics, events, dropped;
    pthread_mutex_t log_mu;
    double log_window;
    int logged;
};

/* What a parse callback needs: the listener, the table, and who sent it. */
typedef struct pctx {
    listener *l;
    ms_sd_agg *agg;
    const struct sockaddr *peer;
    const char *peer_text;
} pctx;

extern uv_loop_t *ms_sd_loop;

/* Parse one datagram (or whole TCP lines) into agg, counting lines and bad ones. */
void ms_sd_listener_parse(listener *l, ms_sd_agg *agg, const char *buf, size_t len,
                          const struct sockaddr *peer, const char *peer_text);
/* The sink's bad-line callback (ud: a pctx): counts JSON ones, logs the
 * first bad_line_log per minute with the peer. */
void ms_sd_listener_bad(void *ud, const char *line, size_t len, const char *reason);
/* "1.2.3.4:5678", "[::1]:5678" or "unix socket" into out. */
void ms_sd_peer_str(const struct sockaddr *sa, char *out, size_t cap);

/* listener_stream.c: open/close the TCP listener and the unix datagram
 * socket of l->c (nothing when the address is empty or l is the JSON one).
 * Stopping reads what the unix socket holds first. */
int ms_sd_tcp_start(listener *l, ms_error *err);
void ms_sd_tcp_stop(listener *l);
int ms_sd_unix_start(listener *l, ms_error *err);
void ms_sd_unix_stop(listener *l);
/* uv_close callback for the malloc'd handles. */
void ms_sd_free_handle(uv_handle_t *h);

#endif
