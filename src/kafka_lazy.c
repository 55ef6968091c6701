/*
 * kafka_lazy.c - librdkafka, loaded when first used.
 *
 * Linking librdkafka maps it and its dependency chain (libssl, libsasl2,
 * libzstd, liblz4) into every moonstat process: about 1.1 MiB more resident
 * memory at idle with the default config, although most hosts never
 * configure a kafka forwarder. So moonstat is not linked with librdkafka:
 * this file defines the librdkafka functions src/transport_kafka.c uses, and
 * the first call dlopen()s librdkafka.so.1 and forwards to it (the way
 * src/curl_lazy.c does for libcurl). When librdkafka cannot be loaded every
 * call fails the way librdkafka reports a failure (NULL, an error code) and
 * the reason is logged once.
 */
#include <dlfcn.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "ms_log.h"

#define LIBRDKAFKA "librdkafka.so.1"

static struct {
    int tried, ok;
    const char *(*version_str)(void);
    rd_kafka_conf_t *(*conf_new)(void);
    rd_kafka_conf_res_t (*conf_set)(rd_kafka_conf_t *, const char *, const char *, char *, size_t);
    void (*conf_destroy)(rd_kafka_conf_t *);
    void (*conf_set_dr_msg_cb)(rd_kafka_conf_t *,
                               void (*)(rd_kafka_t *, const rd_kafka_message_t *, void *));
    void (*conf_set_log_cb)(rd_kafka_conf_t *,
                            void (*)(const rd_kafka_t *, int, const char *, const char *));
    void (*conf_set_error_cb)(rd_kafka_conf_t *, void (*)(rd_kafka_t *, int, const char *, void *));
    void (*conf_set_opaque)(rd_kafka_conf_t *, void *);
    rd_kafka_t *(*new_)(rd_kafka_type_t, rd_kafka_conf_t *, char *, size_t);
    void (*destroy)(rd_kafka_t *);
    int (*poll)(rd_kafka_t *, int);
    rd_kafka_error_t *(*produceva)(rd_kafka_t *, const rd_kafka_vu_t *, size_t);
    rd_kafka_resp_err_t (*error_code)(const rd_kafka_error_t *);
    void (*error_destroy)(rd_kafka_error_t *);
    const char *(*err2str)(rd_kafka_resp_err_t);
    rd_kafka_resp_err_t (*fatal_error)(rd_kafka_t *, char *, size_t);
    rd_kafka_queue_t *(*queue_get_main)(rd_kafka_t *);
    void (*queue_io_event_enable)(rd_kafka_queue_t *, int, const void *, size_t);
    void (*queue_destroy)(rd_kafka_queue_t *);
    rd_kafka_resp_err_t (*set_log_queue)(rd_kafka_t *, rd_kafka_queue_t *);
    rd_kafka_resp_err_t (*purge)(rd_kafka_t *, int);
    int (*outq_len)(rd_kafka_t *);
    void *(*opaque)(const rd_kafka_t *);
} L;

/* Load librdkafka and resolve every function, once. 1 when usable. */
static int load(void)
{
    if (L.tried) return L.ok;
    L.tried = 1;
    void *h = dlopen(LIBRDKAFKA, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        ms_log_error("Kafka is unavailable: cannot load %s: %s (Debian: apt-get install "
                     "librdkafka1)",
                     LIBRDKAFKA, dlerror());
        return 0;
    }
    struct {
        void **slot;
        const char *name;
    } syms[] = {
        {(void **)&L.version_str, "rd_kafka_version_str"},
        {(void **)&L.conf_new, "rd_kafka_conf_new"},
        {(void **)&L.conf_set, "rd_kafka_conf_set"},
        {(void **)&L.conf_destroy, "rd_kafka_conf_destroy"},
        {(void **)&L.conf_set_dr_msg_cb, "rd_kafka_conf_set_dr_msg_cb"},
        {(void **)&L.conf_set_log_cb, "rd_kafka_conf_set_log_cb"},
        {(void **)&L.conf_set_error_cb, "rd_kafka_conf_set_error_cb"},
        {(void **)&L.conf_set_opaque, "rd_kafka_conf_set_opaque"},
        {(void **)&L.new_, "rd_kafka_new"},
        {(void **)&L.destroy, "rd_kafka_destroy"},
        {(void **)&L.poll, "rd_kafka_poll"},
        {(void **)&L.produceva, "rd_kafka_produceva"},
        {(void **)&L.error_code, "rd_kafka_error_code"},
        {(void **)&L.error_destroy, "rd_kafka_error_destroy"},
        {(void **)&L.err2str, "rd_kafka_err2str"},
        {(void **)&L.fatal_error, "rd_kafka_fatal_error"},
        {(void **)&L.queue_get_main, "rd_kafka_queue_get_main"},
        {(void **)&L.queue_io_event_enable, "rd_kafka_queue_io_event_enable"},
        {(void **)&L.queue_destroy, "rd_kafka_queue_destroy"},
        {(void **)&L.set_log_queue, "rd_kafka_set_log_queue"},
        {(void **)&L.purge, "rd_kafka_purge"},
        {(void **)&L.outq_len, "rd_kafka_outq_len"},
        {(void **)&L.opaque, "rd_kafka_opaque"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            ms_log_error("Kafka is unavailable: %s has no %s (librdkafka 1.6 or later is needed)",
                         LIBRDKAFKA, syms[i].name);
            return 0;
        }
    }
    L.ok = 1;
    return 1;
}

const char *rd_kafka_version_str(void)
{
    return load() ? L.version_str() : "(not loaded)";
}

rd_kafka_conf_t *rd_kafka_conf_new(void)
{
    return load() ? L.conf_new() : NULL;
}

rd_kafka_conf_res_t rd_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                                      char *errstr, size_t errstr_size)
{
    if (load()) return L.conf_set(conf, name, value, errstr, errstr_size);
    snprintf(errstr, errstr_size, "librdkafka could not be loaded");
    return RD_KAFKA_CONF_INVALID;
}

void rd_kafka_conf_destroy(rd_kafka_conf_t *conf)
{
    if (load()) L.conf_destroy(conf);
}

void rd_kafka_conf_set_dr_msg_cb(rd_kafka_conf_t *conf,
                                 void (*cb)(rd_kafka_t *, const rd_kafka_message_t *, void *))
{
    if (load()) L.conf_set_dr_msg_cb(conf, cb);
}

void rd_kafka_conf_set_log_cb(rd_kafka_conf_t *conf,
                              void (*cb)(const rd_kafka_t *, int, const char *, const char *))
{
    if (load()) L.conf_set_log_cb(conf, cb);
}

void rd_kafka_conf_set_error_cb(rd_kafka_conf_t *conf,
                                void (*cb)(rd_kafka_t *, int, const char *, void *))
{
    if (load()) L.conf_set_error_cb(conf, cb);
}

void rd_kafka_conf_set_opaque(rd_kafka_conf_t *conf, void *opaque)
{
    if (load()) L.conf_set_opaque(conf, opaque);
}

rd_kafka_t *rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
    if (load()) return L.new_(type, conf, errstr, errstr_size);
    snprintf(errstr, errstr_size, "librdkafka could not be loaded");
    return NULL;
}

void rd_kafka_destroy(rd_kafka_t *rk)
{
    if (load()) L.destroy(rk);
}

int rd_kafka_poll(rd_kafka_t *rk, int timeout_ms)
{
    return load() ? L.poll(rk, timeout_ms) : 0;
}

/* Returns NULL on success; without librdkafka there is no rk to produce on. */
rd_kafka_error_t *rd_kafka_produceva(rd_kafka_t *rk, const rd_kafka_vu_t *vus, size_t cnt)
{
    return load() ? L.produceva(rk, vus, cnt) : NULL;
}

rd_kafka_resp_err_t rd_kafka_error_code(const rd_kafka_error_t *error)
{
    return load() ? L.error_code(error) : RD_KAFKA_RESP_ERR__FAIL;
}

void rd_kafka_error_destroy(rd_kafka_error_t *error)
{
    if (load()) L.error_destroy(error);
}

const char *rd_kafka_err2str(rd_kafka_resp_err_t err)
{
    return load() ? L.err2str(err) : "librdkafka could not be loaded";
}

rd_kafka_resp_err_t rd_kafka_fatal_error(rd_kafka_t *rk, char *errstr, size_t errstr_size)
{
    if (load()) return L.fatal_error(rk, errstr, errstr_size);
    snprintf(errstr, errstr_size, "librdkafka could not be loaded");
    return RD_KAFKA_RESP_ERR__FAIL;
}

rd_kafka_queue_t *rd_kafka_queue_get_main(rd_kafka_t *rk)
{
    return load() ? L.queue_get_main(rk) : NULL;
}

void rd_kafka_queue_io_event_enable(rd_kafka_queue_t *rkqu, int fd, const void *payload,
                                    size_t size)
{
    if (load()) L.queue_io_event_enable(rkqu, fd, payload, size);
}

void rd_kafka_queue_destroy(rd_kafka_queue_t *rkqu)
{
    if (load()) L.queue_destroy(rkqu);
}

rd_kafka_resp_err_t rd_kafka_set_log_queue(rd_kafka_t *rk, rd_kafka_queue_t *rkqu)
{
    return load() ? L.set_log_queue(rk, rkqu) : RD_KAFKA_RESP_ERR__FAIL;
}

rd_kafka_resp_err_t rd_kafka_purge(rd_kafka_t *rk, int purge_flags)
{
    return load() ? L.purge(rk, purge_flags) : RD_KAFKA_RESP_ERR__FAIL;
}

int rd_kafka_outq_len(rd_kafka_t *rk)
{
    return load() ? L.outq_len(rk) : 0;
}

void *rd_kafka_opaque(const rd_kafka_t *rk)
{
    return load() ? L.opaque(rk) : NULL;
}
