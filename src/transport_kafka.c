/*
 * transport_kafka.c - produce each queued chunk to a Kafka topic as one
 * message per record, with librdkafka (loaded on first use: kafka_lazy.c).
 *
 * Chunk format (what forwarders/kafka.lua writes; host byte order, the
 * chunk never leaves the process): a sequence of records, each
 *     key | value | uint32 key_len | uint32 value_len | int64 timestamp_ms
 * with no padding (key_len + value_len bytes, then a 16-byte trailer). The
 * lengths come last so that the encoder can write a value straight into its
 * buffer and measure it afterwards; the transport walks a chunk from its
 * end. A record becomes one message: the key (the series, so one series
 * always lands on one partition), the value (a JSON object or an Influx
 * line) and the timestamp (the sample's time in ms; 0 lets the producer
 * stamp it). There is no chunk header, so chunks can be concatenated. A
 * chunk that does not parse (an encoder bug) is dropped whole and counted as
 * failed.
 *
 * Delivery: librdkafka runs its own threads (brokers, batching, retries
 * within `message_timeout`). Its events (delivery reports, logs, errors)
 * go to the main queue, whose I/O event fd wakes a uv_poll on the loop;
 * the loop then serves them with rd_kafka_poll(rk, 0), which never blocks,
 * so every callback runs on the loop thread. A 1 s timer polls as well.
 *
 * One chunk is in flight at a time (it stays the queue head, so the queue
 * bound never drops a partly delivered chunk; newer chunks are dropped
 * instead). All its records are produced at once (without copying: the
 * chunk outlives the messages); when every delivery report is in:
 *   - all delivered, or failed for good (message too large, invalid record,
 *     authorization): the chunk is popped; its samples count as sent minus
 *     the failed messages, which count as failed;
 *   - some failed with a retriable error (timeout, broker down, no leader):
 *     after the forwarder's `retry` backoff (base doubling to cap, with
 *     jitter; 1 s to 30 s by default) only those records are produced
 *     again (moonstat_forwarder_kafka_retried_messages_total), up to
 *     `max_retries` rounds (-1: forever), after which they count as failed.
 *
 * Options (ms_forwarder_opt_str; forwarders/kafka.lua declares them):
 *   brokers, topic, client_id, acks, idempotence, compression, linger,
 *   producer_batch_size, batch_messages, message_timeout, max_retries,
 *   apikey + tenant_id + apikey_as (pystatsd's credentials; "sasl" or
 *   "both" maps them onto SASL PLAIN: username tenant_id, password apikey),
 *   properties (a map of librdkafka configuration keys, applied last).
 * Secrets (apikey, sasl.password, any property whose key holds "password",
 * "secret" or "key") are never logged, not even in configuration errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "ms_forwarder.h"
#include "ms_log.h"
#include "ms_retry.h"
#include "ms_stats.h"

#define REC_TRAILER 16

enum { REC_TODO, REC_SENT, REC_DONE, REC_RETRY, REC_FAILED };

typedef struct kafka_state {
    ms_forwarder *f;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    int evfd[2];       /* pipe: librdkafka writes [1] when its main queue gets events */
    uv_poll_t poll;    /* on evfd[0] */
    uv_timer_t tick;   /* backup poll, 1 s */
    uv_timer_t retry;  /* backoff before producing failed records again */
    uv_work_t destroy; /* rd_kafka_destroy off the loop thread */
    char *topic;
    /* the chunk in flight */
    ms_chunk *c;
    uint32_t nrec, cap;
    uint32_t *off;      /* offset of each record's trailer in c->data */
    uint8_t *st;        /* REC_* of each record */
    uint32_t next;      /* first record not produced yet in this round */
    uint32_t pending;   /* produced, report not in yet */
    int rounds;         /* retry rounds of this chunk */
    int max_retries;    /* -1: forever */
    unsigned attempt;   /* retry rounds in a row, for the backoff */
    char last_err[256]; /* the last retriable error, for the retry message */
    char perm_err[256]; /* the last permanent one, logged once a round */
    /* counters */
    uint64_t delivered, retried, errors, failed_msgs;
    int stopping, handles;
} kafka_state;

static void produce_more(kafka_state *k);
static void stats_provider(ms_batch *b, double now, void *ud);

/* Keys whose values are never printed. */
static int secret_key(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "key") ||
           strstr(key, "apikey") || strstr(key, "token");
}

/* Errors that retrying cannot fix: the record counts as failed at once. */
static int permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        return 1;
    default:
        return 0;
    }
}

/* ---- the chunk in flight ---- */

/* Split chunk c into records, walking back from its end (k->off: their
 * trailers, in chunk order). 0 when it does not parse. */
static int parse_chunk(kafka_state *k, const ms_chunk *c)
{
    k->nrec = 0;
    size_t pos = c->len; /* end of the record before */
    while (pos > 0) {
        if (pos < REC_TRAILER) return 0;
        uint32_t kl, vl;
        memcpy(&kl, c->data + pos - REC_TRAILER, 4);
        memcpy(&vl, c->data + pos - REC_TRAILER + 4, 4);
        if ((uint64_t)kl + vl > pos - REC_TRAILER) return 0;
        if (k->nrec == k->cap) {
            uint32_t ncap = k->cap ? k->cap * 2 : 1024;
            uint32_t *no = realloc(k->off, ncap * sizeof *no);
            if (!no) return 0;
            k->off = no;
            uint8_t *ns = realloc(k->st, ncap);
            if (!ns) return 0;
            k->st = ns;
            k->cap = ncap;
        }
        k->off[k->nrec] = (uint32_t)(pos - REC_TRAILER);
        k->st[k->nrec] = REC_TODO;
        k->nrec++;
        pos -= REC_TRAILER + (size_t)kl + vl;
    }
    for (uint32_t i = 0, j = k->nrec ? k->nrec - 1 : 0; i < j; i++, j--) { /* to chunk order */
        uint32_t t = k->off[i];
        k->off[i] = k->off[j];
        k->off[j] = t;
    }
    return 1;
}

/* Take the head chunk and start producing it, unless one is in flight, a
 * backoff runs or we are stopping. */
static void take_next(kafka_state *k)
{
    while (!k->c && !k->stopping && !uv_is_active((uv_handle_t *)&k->retry)) {
        ms_chunk *c = ms_forwarder_head(k->f);
        if (!c) return;
        if (c->len > UINT32_MAX || !parse_chunk(k, c)) {
            ms_forwarder_log(k->f, MS_LOG_ERROR,
                             "dropping a chunk of %u samples (%zu bytes) that is not a sequence of "
                             "kafka records (encoder bug?)",
                             c->nsamples, c->len);
            ms_forwarder_pop(k->f, 0);
            continue;
        }
        k->c = c;
        k->next = k->pending = 0;
        k->rounds = 0;
        produce_more(k);
    }
}

static void retry_cb(uv_timer_t *t)
{
    produce_more(t->data);
}

/* Every report of the chunk is in: pop it, or schedule a retry round. */
static void round_done(kafka_state *k)
{
    uint32_t retry = 0, failed = 0;
    for (uint32_t i = 0; i < k->nrec; i++) {
        if (k->st[i] == REC_RETRY) retry++;
        if (k->st[i] == REC_FAILED) failed++;
    }
    if (failed)
        ms_forwarder_log(k->f, MS_LOG_WARN, "%u of %u messages to topic %s failed for good: %s",
                         failed, k->nrec, k->topic, k->perm_err);
    if (retry && (k->max_retries < 0 || k->rounds < k->max_retries)) {
        k->rounds++;
        k->retried += retry;
        double delay = ms_retry_delay(ms_forwarder_retry(k->f), ++k->attempt);
        ms_forwarder_log(k->f, MS_LOG_WARN, "%u of %u messages not delivered: %s (retry in %.1fs)",
                         retry, k->nrec, k->last_err, delay);
        for (uint32_t i = 0; i < k->nrec; i++)
            if (k->st[i] == REC_RETRY) k->st[i] = REC_TODO;
        k->next = 0;
        uv_timer_start(&k->retry, retry_cb, (uint64_t)(delay * 1000), 0);
        return;
    }
    if (retry) {
        ms_forwarder_log(k->f, MS_LOG_WARN,
                         "%u of %u messages not delivered after %d retries, giving up: %s", retry,
                         k->nrec, k->rounds, k->last_err);
        failed += retry;
    }
    if (!retry) k->attempt = 0;
    ms_chunk *c = k->c;
    k->c = NULL;
    k->failed_msgs += failed;
    /* sent: the chunk's samples less the messages that failed (samples the
     * encoder skipped, NaN for one, count as sent, as in other transports) */
    c->nsamples = c->nsamples > failed ? c->nsamples - failed : 0;
    ms_forwarder_pop(k->f, 1);
    ms_forwarder_count_failed(k->f, failed);
    take_next(k);
}

/* Record i failed with err: to be retried, or failed for good. */
static void record_error(kafka_state *k, uint32_t i, rd_kafka_resp_err_t err)
{
    int perm = permanent(err);
    k->errors++;
    k->st[i] = perm ? REC_FAILED : REC_RETRY;
    char *to = perm ? k->perm_err : k->last_err;
    snprintf(to, sizeof k->last_err, "%s", rd_kafka_err2str(err));
}

/* Produce the records of the chunk in flight still to do, from k->next.
 * Stops at a full local queue (resumed as reports come in). */
static void produce_more(kafka_state *k)
{
    if (!k->c || k->stopping) return;
    uv_timer_stop(&k->retry);
    for (; k->next < k->nrec; k->next++) {
        uint32_t i = k->next;
        if (k->st[i] != REC_TODO) continue;
        const char *t = k->c->data + k->off[i]; /* the trailer */
        uint32_t kl, vl;
        int64_t ts;
        memcpy(&kl, t, 4);
        memcpy(&vl, t + 4, 4);
        memcpy(&ts, t + 8, 8);
        const char *key = t - vl - kl;
        rd_kafka_vu_t vu[6];
        size_t n = 0;
        vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
        vu[n++].u.cstr = k->topic;
        vu[n].vtype = RD_KAFKA_VTYPE_KEY;
        vu[n].u.mem.ptr = (void *)key;
        vu[n++].u.mem.size = kl;
        vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
        vu[n].u.mem.ptr = (void *)(key + kl);
        vu[n++].u.mem.size = vl;
        vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
        vu[n++].u.ptr = (void *)(uintptr_t)(i + 1);
        if (ts > 0) {
            vu[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
            vu[n++].u.i64 = ts;
        }
        rd_kafka_error_t *e = rd_kafka_produceva(k->rk, vu, n);
        if (!e) {
            k->st[i] = REC_SENT;
            k->pending++;
            continue;
        }
        rd_kafka_resp_err_t err = rd_kafka_error_code(e);
        rd_kafka_error_destroy(e);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && k->pending) return; /* resumed by reports */
        record_error(k, i, err);
    }
    if (!k->pending) round_done(k);
}

/* ---- librdkafka callbacks (all from rd_kafka_poll on the loop thread) ---- */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    kafka_state *k = opaque;
    uintptr_t i = (uintptr_t)m->_private;
    if (k->stopping || !k->c || i == 0 || i > k->nrec || k->st[i - 1] != REC_SENT) return;
    i--;
    k->pending--;
    if (!m->err) {
        k->st[i] = REC_DONE;
        k->delivered++;
        return;
    }
    record_error(k, (uint32_t)i, m->err);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kafka_state *k = rd_kafka_opaque(rk);
    if (!k) return;
    /* syslog levels: 0-2 errors, 3-4 warnings (a broker's connection
     * failed), 5-6 info, 7 debug */
    int lv = level <= 2   ? MS_LOG_ERROR
             : level <= 4 ? MS_LOG_WARN
             : level <= 6 ? MS_LOG_INFO
                          : MS_LOG_DEBUG;
    ms_forwarder_log(k->f, lv, "librdkafka %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_state *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        ms_forwarder_log(k->f, MS_LOG_ERROR, "fatal producer error: %s", why);
    } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        ms_forwarder_log(k->f, MS_LOG_WARN, "%s", reason);
    } /* other errors (a broker's connection failed...) are in librdkafka's log */
}

/* Serve queued events (never blocks), then go on with the chunk. */
static void service(kafka_state *k)
{
    if (!k->rk) return;
    rd_kafka_poll(k->rk, 0);
    if (k->stopping) return;
    if (k->c && k->next < k->nrec && !uv_is_active((uv_handle_t *)&k->retry))
        produce_more(k); /* a full local queue has room again */
    else if (k->c && !k->pending && k->next >= k->nrec && !uv_is_active((uv_handle_t *)&k->retry))
        round_done(k);
    else if (!k->c)
        take_next(k);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    kafka_state *k = p->data;
    char buf[256];
    while (read(k->evfd[0], buf, sizeof buf) > 0) {
    }
    service(k);
}

static void tick_cb(uv_timer_t *t)
{
    service(t->data);
}

/* ---- configuration ---- */

/* Set one librdkafka property; errors name the key (and the value only
 * when it is no secret). */
static int set_prop(ms_forwarder *f, rd_kafka_conf_t *conf, const char *key, const char *val,
                    ms_error *err)
{
    char why[512];
    if (rd_kafka_conf_set(conf, key, val, why, sizeof why) == RD_KAFKA_CONF_OK) return MS_OK;
    if (secret_key(key))
        return ms_error_set(err, MS_EINVAL, "forwarder %s: kafka property %s: invalid value",
                            ms_forwarder_name(f), key);
    return ms_error_set(err, MS_EINVAL, "forwarder %s: kafka property %s: %s", ms_forwarder_name(f),
                        key, why);
}

static const char *opt(ms_forwarder *f, const char *key, const char *def)
{
    const char *v = ms_forwarder_opt_str(f, key);
    return v && *v ? v : def;
}

/* Milliseconds of a duration option (seconds as text) into buf. */
static const char *opt_ms(ms_forwarder *f, const char *key, double def_s, char *buf, size_t n)
{
    double s = def_s;
    ms_forwarder_opt_num(f, key, &s);
    snprintf(buf, n, "%.0f", s * 1000);
    return buf;
}

/* The librdkafka configuration from the forwarder's options. */
static int build_conf(kafka_state *k, rd_kafka_conf_t *conf, ms_error *err)
{
    ms_forwarder *f = k->f;
    char b1[64], b2[64];
    const char *acks = opt(f, "acks", "all");
    struct {
        const char *key, *val;
    } base[] = {
        {"bootstrap.servers", opt(f, "brokers", "127.0.0.1:9092")},
        {"client.id", opt(f, "client_id", "moonstat")},
        {"acks", !strcmp(acks, "all") ? "-1" : acks},
        {"enable.idempotence", opt(f, "idempotence", "true")},
        {"compression.codec", opt(f, "compression", "none")},
        {"linger.ms", opt_ms(f, "linger", 0.005, b1, sizeof b1)},
        {"message.timeout.ms", opt_ms(f, "message_timeout", 60, b2, sizeof b2)},
        {"batch.size", opt(f, "producer_batch_size", "1000000")},
        {"batch.num.messages", opt(f, "batch_messages", "10000")},
        {"log.queue", "true"},
        {"socket.keepalive.enable", "true"},
    };
    int rc = MS_OK;
    for (size_t i = 0; rc == MS_OK && i < sizeof base / sizeof *base; i++)
        rc = set_prop(f, conf, base[i].key, base[i].val, err);
    /* pystatsd's credentials as SASL PLAIN (see docs/forwarders/kafka.md) */
    const char *as = opt(f, "apikey_as", "message");
    const char *apikey = opt(f, "apikey", ""), *tenant = opt(f, "tenant_id", "");
    if (rc == MS_OK && (!strcmp(as, "sasl") || !strcmp(as, "both"))) {
        if (!*apikey || !*tenant)
            return ms_error_set(err, MS_EINVAL,
                                "forwarder %s: apikey_as %s needs both apikey and tenant_id",
                                ms_forwarder_name(f), as);
        rc = set_prop(f, conf, "security.protocol", "sasl_ssl", err);
        if (rc == MS_OK) rc = set_prop(f, conf, "sasl.mechanisms", "PLAIN", err);
        if (rc == MS_OK) rc = set_prop(f, conf, "sasl.username", tenant, err);
        if (rc == MS_OK) rc = set_prop(f, conf, "sasl.password", apikey, err);
    }
    /* properties: "key: value" lines, applied last */
    const char *pl = ms_forwarder_opt_str(f, "properties");
    while (rc == MS_OK && pl && *pl) {
        size_t n = strcspn(pl, "\n");
        const char *colon = memchr(pl, ':', n);
        if (colon) {
            char key[256], val[4096];
            snprintf(key, sizeof key, "%.*s", (int)(colon - pl), pl);
            const char *v = colon + 1;
            while (*v == ' ') v++;
            snprintf(val, sizeof val, "%.*s", (int)(pl + n - v), v);
            rc = set_prop(f, conf, key, val, err);
        }
        pl += n + (pl[n] == '\n');
    }
    return rc;
}

/* ---- start / stop ---- */

static void free_state(kafka_state *k)
{
    if (k->evfd[0] >= 0) close(k->evfd[0]);
    if (k->evfd[1] >= 0) close(k->evfd[1]);
    free(k->off);
    free(k->st);
    free(k->topic);
    free(k);
}

static int kafka_start(ms_forwarder *f, ms_error *err)
{
    kafka_state *k = calloc(1, sizeof *k);
    if (!k) return ms_error_set(err, MS_ENOMEM, "out of memory");
    k->f = f;
    k->evfd[0] = k->evfd[1] = -1;
    k->max_retries = -1;
    double mr;
    if (ms_forwarder_opt_num(f, "max_retries", &mr) == MS_OK) k->max_retries = (int)mr;
    k->topic = strdup(opt(f, "topic", "moonstat"));
    if (!k->topic) {
        free_state(k);
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    if (pipe2(k->evfd, O_NONBLOCK | O_CLOEXEC) < 0) {
        int e = errno;
        free_state(k);
        return ms_error_set(err, MS_EIO, "forwarder %s: pipe: %s", ms_forwarder_name(f),
                            strerror(e));
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        free_state(k);
        return ms_error_set(err, MS_EINVAL, "forwarder %s: librdkafka could not be loaded",
                            ms_forwarder_name(f));
    }
    int rc = build_conf(k, conf, err);
    if (rc != MS_OK) {
        rd_kafka_conf_destroy(conf);
        free_state(k);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    char why[512];
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why); /* takes conf on success */
    if (!k->rk) {
        rd_kafka_conf_destroy(conf);
        free_state(k);
        return ms_error_set(err, MS_EINVAL, "forwarder %s: kafka producer: %s",
                            ms_forwarder_name(f), why);
    }
    k->mainq = rd_kafka_queue_get_main(k->rk);
    rd_kafka_set_log_queue(k->rk, NULL); /* logs, too, are served by rd_kafka_poll */
    rd_kafka_queue_io_event_enable(k->mainq, k->evfd[1], "1", 1);
    uv_loop_t *loop = ms_forwarder_loop(f);
    uv_poll_init(loop, &k->poll, k->evfd[0]);
    uv_timer_init(loop, &k->tick);
    uv_timer_init(loop, &k->retry);
    k->poll.data = k->tick.data = k->retry.data = k;
    k->handles = 3;
    uv_poll_start(&k->poll, UV_READABLE, poll_cb);
    uv_timer_start(&k->tick, tick_cb, 1000, 1000);
    ms_forwarder_set_data(f, k);
    ms_stats_register(stats_provider, k);
    ms_forwarder_log(f, MS_LOG_INFO, "producing to topic %s at %s (librdkafka %s)", k->topic,
                     opt(f, "brokers", "127.0.0.1:9092"), rd_kafka_version_str());
    return MS_OK;
}

static void kafka_kick(ms_forwarder *f)
{
    kafka_state *k = ms_forwarder_data(f);
    if (k) take_next(k);
}

/* Off the loop: rd_kafka_destroy joins librdkafka's threads. */
static void destroy_work(uv_work_t *w)
{
    kafka_state *k = w->data;
    rd_kafka_destroy(k->rk);
}

static void destroy_done(uv_work_t *w, int status)
{
    (void)status;
    kafka_state *k = w->data;
    ms_forwarder *f = k->f;
    k->rk = NULL;
    free_state(k);
    ms_forwarder_set_data(f, NULL);
    ms_forwarder_closed(f);
}

static void handle_closed(uv_handle_t *h)
{
    kafka_state *k = h->data;
    if (--k->handles) return;
    k->destroy.data = k;
    if (uv_queue_work(ms_forwarder_loop(k->f), &k->destroy, destroy_work, destroy_done) < 0) {
        destroy_work(&k->destroy);
        destroy_done(&k->destroy, 0);
    }
}

/* Give up what is still in librdkafka's queues (the core already waited
 * for the queue to drain, up to the shutdown timeout), close the handles,
 * then destroy the producer on a worker thread. */
static void kafka_stop(ms_forwarder *f)
{
    kafka_state *k = ms_forwarder_data(f);
    k->stopping = 1;
    ms_stats_unregister(stats_provider, k);
    rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(k->rk, 0); /* reports of purged messages, if any */
    if (k->c) {
        uint32_t left = 0;
        for (uint32_t i = 0; i < k->nrec; i++) left += k->st[i] != REC_DONE;
        if (left)
            ms_forwarder_log(f, MS_LOG_WARN, "stopping with %u of %u messages undelivered", left,
                             k->nrec);
        k->c = NULL;
        ms_forwarder_release(f);
    }
    rd_kafka_queue_io_event_enable(k->mainq, -1, NULL, 0);
    rd_kafka_queue_destroy(k->mainq);
    k->mainq = NULL;
    uv_close((uv_handle_t *)&k->poll, handle_closed);
    uv_close((uv_handle_t *)&k->tick, handle_closed);
    uv_close((uv_handle_t *)&k->retry, handle_closed);
}

static void stats_provider(ms_batch *b, double now, void *ud)
{
    kafka_state *k = ud;
    const char *kv[] = {"forwarder", ms_forwarder_name(k->f), NULL};
    ms_stats_add(b, "moonstat_forwarder_kafka_delivered_messages_total", MS_KIND_COUNTER,
                 (double)k->delivered, now, kv);
    ms_stats_add(b, "moonstat_forwarder_kafka_retried_messages_total", MS_KIND_COUNTER,
                 (double)k->retried, now, kv);
    ms_stats_add(b, "moonstat_forwarder_kafka_failed_messages_total", MS_KIND_COUNTER,
                 (double)k->failed_msgs, now, kv);
    ms_stats_add(b, "moonstat_forwarder_kafka_delivery_errors_total", MS_KIND_COUNTER,
                 (double)k->errors, now, kv);
    ms_stats_add(b, "moonstat_forwarder_kafka_inflight_messages", MS_KIND_GAUGE, (double)k->pending,
                 now, kv);
}

const ms_transport ms_transport_kafka = {
    .name = "kafka",
    .pull = 0,
    .start = kafka_start,
    .kick = kafka_kick,
    .stop = kafka_stop,
};
