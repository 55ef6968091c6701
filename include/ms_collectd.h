/*
 * ms_collectd.h - collectd's binary network protocol (docs/collectd.md):
 * the packet parser with the Sign and Encrypt security levels
 * (collectd_parse.c) and the `listeners.collectd` UDP listener
 * (listener_collectd.c).
 *
 * Parsing is pure apart from libcrypto: a packet in, one callback per value
 * list or notification out. Strings handed to the callbacks live in the
 * parser's state and are valid only during the call.
 */
#ifndef MS_COLLECTD_H
#define MS_COLLECTD_H

#include <stddef.h>
#include <stdint.h>

#include "ms_config.h"
#include "ms_err.h"

/* Part types (collectd's src/network.c). */
enum {
    MS_CD_HOST = 0x0000,
    MS_CD_TIME = 0x0001,
    MS_CD_PLUGIN = 0x0002,
    MS_CD_PLUGIN_INSTANCE = 0x0003,
    MS_CD_TYPE = 0x0004,
    MS_CD_TYPE_INSTANCE = 0x0005,
    MS_CD_VALUES = 0x0006,
    MS_CD_INTERVAL = 0x0007,
    MS_CD_TIME_HR = 0x0008,
    MS_CD_INTERVAL_HR = 0x0009,
    MS_CD_MESSAGE = 0x0100,
    MS_CD_SEVERITY = 0x0101,
    MS_CD_SIGN_SHA256 = 0x0200,
    MS_CD_ENCR_AES256 = 0x0210
};

/* Data source types of a values part. */
enum { MS_CD_COUNTER = 0, MS_CD_GAUGE = 1, MS_CD_DERIVE = 2, MS_CD_ABSOLUTE = 3 };

/* Security levels (collectd's SecurityLevel None/Sign/Encrypt). */
enum { MS_CD_SEC_NONE = 0, MS_CD_SEC_SIGN = 1, MS_CD_SEC_ENCRYPT = 2 };

#define MS_CD_NAME_MAX   128 /* collectd's DATA_MAX_NAME_LEN, NUL included */
#define MS_CD_VALUES_MAX 64

typedef struct ms_cd_value {
    int type;     /* MS_CD_COUNTER ... */
    uint64_t u;   /* COUNTER, ABSOLUTE */
    int64_t i;    /* DERIVE */
    double gauge; /* GAUGE */
} ms_cd_value;

/* One value list, or one notification (n == 0, message set). */
typedef struct ms_cd_vl {
    const char *host, *plugin, *plugin_instance, *type, *type_instance;
    double time;     /* unix seconds; 0 when the packet had none */
    double interval; /* seconds; 0 when the packet had none */
    size_t n;
    const ms_cd_value *values;
    int security;        /* MS_CD_SEC_* the data arrived under */
    int severity;        /* notifications: 1 FAILURE, 2 WARNING, 4 OKAY */
    const char *message; /* notifications */
} ms_cd_vl;

typedef struct ms_cd_sink {
    void (*values)(void *ud, const ms_cd_vl *vl);
    void (*notification)(void *ud, const ms_cd_vl *vl); /* may be NULL */
    /* The password of `user`, or NULL when unknown (NULL callback: no users). */
    const char *(*password)(void *ud, const char *user);
    void *ud;
    int level; /* the least MS_CD_SEC_* data must have to be handed over */
} ms_cd_sink;

typedef struct ms_cd_stats {
    uint64_t values, notifications;
    uint64_t insecure; /* value lists / notifications below the level, ignored */
    uint64_t auth;     /* bad signatures, unknown users, bad checksums */
} ms_cd_stats;

/* Parse one packet. Returns MS_OK, or MS_EINVAL with *reason (static text)
 * for a malformed packet (what came before the bad part was already handed
 * over, as collectd does), or MS_EFULL for a packet dropped by security
 * (reason says why). st (may be NULL) is added to. */
int ms_cd_parse(const uint8_t *buf, size_t len, const ms_cd_sink *sink, ms_cd_stats *st,
                const char **reason);

/* Build the signed form of `payload` (for tests and tools): out gets the
 * signature part then the payload; returns the length or -1 when cap is short. */
long ms_cd_sign(const uint8_t *payload, size_t len, const char *user, const char *password,
                uint8_t *out, size_t cap);
/* Build the encrypted form of `payload` with the given 16-byte IV. */
long ms_cd_encrypt(const uint8_t *payload, size_t len, const char *user, const char *password,
                   const uint8_t iv[16], uint8_t *out, size_t cap);

/* ---- types.db ---- */

typedef struct ms_cd_types ms_cd_types;

/* Parse types.db text into t (created when *t is NULL); lines that do not
 * parse are errors "file:line:col: ..." (the rest is still loaded). */
int ms_cd_types_load_text(ms_cd_types **t, const char *text, size_t len, const char *file,
                          ms_error *err);
int ms_cd_types_load_file(ms_cd_types **t, const char *path, ms_error *err);
/* The data source names of `type` (*n of them), or NULL when unknown. */
const char *const *ms_cd_types_get(const ms_cd_types *t, const char *type, size_t *n);
void ms_cd_types_free(ms_cd_types *t);

/* ---- Lua converters (collectd_conv.c) ---- */

typedef struct ms_cd_conv ms_cd_conv;

/* Directories scanned at most (defaults plus configured). */
#define MS_CD_CONV_MAXDIRS 64

/* Load every *.lua file of <each lua_paths entry>/converters (when it is a
 * directory) and then of dirs (each directory once, files sorted by name)
 * into a new Lua state (package.path from lua_paths). *out is NULL when there
 * is no directory at all. A file that
 * fails is reported through warn ("file:line: message") and skipped; the
 * first such error is also returned (the others still load). */
int ms_cd_conv_load(ms_cd_conv **out, const ms_strlist *dirs, const ms_strlist *lua_paths,
                    void (*warn)(const char *msg), ms_error *err);
/* Run the converter of vl->plugin (or _default) for one value: 1 with
 * *nparts NUL-separated name parts in buf, 0 when no converter applies, -1
 * when it returned nil (drop), or an MS_E* code with err ("file:line: ..."). */
int ms_cd_conv_apply(ms_cd_conv *c, const ms_cd_vl *vl, const char *ds, double value, char *buf,
                     size_t cap, size_t *nparts, ms_error *err);
void ms_cd_conv_free(ms_cd_conv *c);

/* ---- listener (listeners.collectd) ---- */

struct uv_loop_s;
int ms_collectd_listener_validate(const ms_config *cfg, ms_error *err);
int ms_collectd_listener_start(struct uv_loop_s *loop, const ms_config *cfg, ms_error *err);
/* SIGHUP: re-read the auth file and types.db; reopen the socket only when
 * the address changed. */
void ms_collectd_listener_reload(const ms_config *cfg);
void ms_collectd_listener_stop(void);
void ms_collectd_listener_free(void);

#endif
