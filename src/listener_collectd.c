/*
 * listener_collectd.c - the collectd network listener, config under
 * `listeners: { collectd: {...} }` (docs/collectd.md).
 *
 * One UDP socket (IPv4 or IPv6) read on the main loop: a uv_poll wakes us,
 * recvmmsg reads up to recv_batch packets (64 KiB each) at a time, every
 * packet is parsed (collectd_parse.c), its value lists become samples in one
 * batch per read, which is submitted to the pipeline. GAUGE passes through;
 * COUNTER and DERIVE become per-second rates through ms_rate_update (the
 * state ms.rate uses, wraps handled there); ABSOLUTE is divided by the
 * interval. Data-source names come from types.db. Notifications become
 * health samples. Bad packets are counted and logged (bad_packet_log per
 * minute) with the peer's address.
 */
#include <errno.h>
#include <math.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <uv.h>

#include "ms_collectd.h"
#include "ms_log.h"
#include "ms_pipeline.h"
#include "ms_rate.h"
#include "ms_series.h"
#include "ms_stats.h"

#define PKT_MAX          65536
#define CTRL_SZ          64 /* >= CMSG_SPACE(sizeof(uint32_t)) */
#define DEFAULT_TYPES_DB "/usr/share/collectd/types.db"

typedef struct cd_conf {
    int enabled;
    char *udp;
    uint64_t recv_buffer;
    int64_t recv_batch;
    char *security_level, *auth_file;
    ms_strlist types_db;
    int default_types_db;
    char *naming, *prefix, *postfix, *dot_replacement;
    int raw_counters;
    int64_t bad_packet_log;
    ms_strlist converters, host_trim;
    int strip_duplicates, host_reverse;
    char *multicast, *multicast_interface;
} cd_conf;

/* clang-format off */
#define F(k, t, d, h) {#k, t, d, offsetof(cd_conf, k), h}
static const ms_field cd_fields[] = {
    F(enabled, MS_T_BOOL, "true", "false turns the listener off"),
    F(udp, MS_T_STRING, "127.0.0.1:25826", "host:port of the UDP socket ([v6]:port for IPv6)"),
    F(recv_buffer, MS_T_SIZE, "8MiB", "SO_RCVBUF of the socket (the kernel may cap it: net.core.rmem_max)"),
    F(recv_batch, MS_T_INT, "64", "packets (up to 64 KiB each) read per recvmmsg call"),
    F(security_level, MS_T_STRING, "none", "none, sign or encrypt: the least data must have to be used"),
    F(auth_file, MS_T_STRING, "", "file of `user: password` lines (collectd's AuthFile); re-read on SIGHUP"),
    F(types_db, MS_T_STRLIST, "[]", "types.db files read after the default one (later definitions win)"),
    F(default_types_db, MS_T_BOOL, "true", "read " DEFAULT_TYPES_DB " first when it exists"),
    F(naming, MS_T_STRING, "path", "path: host.plugin[-instance].type[-instance][.ds]; tagged: prefix.plugin.type[.ds] with tags"),
    F(prefix, MS_T_STRING, "", "first name component (e.g. collectd); tagged naming: default collectd"),
    F(postfix, MS_T_STRING, "", "last name component; empty: none"),
    F(dot_replacement, MS_T_STRING, "_", "what replaces '.' and whitespace inside name components"),
    F(raw_counters, MS_T_BOOL, "false", "true: COUNTER/DERIVE/ABSOLUTE are sent as counters, not rates"),
    F(bad_packet_log, MS_T_INT, "5", "bad packets logged per minute (all are counted)"),
    F(converters, MS_T_STRLIST, "[]", "more directories of Lua converters (every *.lua), read after <paths.lua>/converters (docs/collectd.md)"),
    F(strip_duplicates, MS_T_BOOL, "false", "path naming: leave out a component equal to the one before (load.load -> load)"),
    F(host_reverse, MS_T_BOOL, "false", "path naming: the host's labels as components in reverse order (com.example.web1)"),
    F(host_trim, MS_T_STRLIST, "[]", "path naming: domain suffixes removed from hosts (example.com: web1.example.com -> web1)"),
    F(multicast, MS_T_STRING, "", "multicast group to join (IPv4 or IPv6, the family of udp; e.g. 239.192.74.66 or ff18::efc0:4a42); empty: none"),
    F(multicast_interface, MS_T_STRING, "", "interface of the group: a name (eth0) or, for IPv4, a local address; empty: the kernel's choice"),
    {NULL, 0, NULL, 0, NULL}};
/* clang-format on */

typedef struct user {
    char *name, *pw;
} user;

static struct {
    cd_conf c;
    int have_conf, level, tagged;
    uv_loop_t *loop;
    uv_poll_t *poll;
    int fd;
    char *bound; /* the address fd is bound to */
    ms_cd_types *types;
    user *users;
    size_t nusers;
    int auth; /* an auth_file is configured */
    struct mmsghdr *msgs;
    struct iovec *iov;
    struct sockaddr_storage *peers;
    uint8_t *bufs;
    char *ctrl; /* per packet: room for the SO_RXQ_OVFL control message */
    int batch;
    ms_batch *out; /* the batch being filled */
    ms_cd_conv *conv;
    const struct sockaddr *peer;
    double log_window;
    int logged, stats_on;
    uint64_t packets, bad, values, samples, notifications, insecure, auth_failed, unknown_types,
        dropped, conv_errors, conv_dropped;
    uint64_t kdrops_base; /* kernel drops of the sockets closed before */
    uint32_t kdrops;      /* SO_RXQ_OVFL of the open socket (cumulative) */
} S = {.fd = -1};

static void peer_str(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)sa;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%d", ip, ntohs(s->sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%d", ip, ntohs(s->sin6_port));
    } else {
        snprintf(out, cap, "?");
    }
}

/* Log a bad or dropped packet: at most bad_packet_log per minute. */
static void log_bad(const char *what, const char *reason)
{
    double now = ms_now();
    if (now - S.log_window >= 60) {
        S.log_window = now;
        S.logged = 0;
    }
    if (S.logged >= S.c.bad_packet_log) return;
    S.logged++;
    char peer[96];
    peer_str(S.peer, peer, sizeof peer);
    ms_log_warn("listeners.collectd: %s packet from %s: %s", what, peer, reason ? reason : "?");
}

/* ---- naming ---- */

/* Name parts being built: each a NUL-terminated string in mem. */
typedef struct parts {
    const char *p[80];
    size_t n;
    char mem[2048];
    size_t used;
} parts;

/* Add s (len bytes; joined to the last part with `glue` when glue is not 0). */
static void part_add(parts *ps, const char *s, size_t len, char glue)
{
    if (!len) return;
    if (glue && ps->n) {
        if (ps->used + len + 1 > sizeof ps->mem) return;
        ps->mem[ps->used - 1] = glue; /* over the last part's NUL */
        memcpy(ps->mem + ps->used, s, len);
        ps->used += len;
        ps->mem[ps->used++] = 0;
        return;
    }
    if (ps->n == 80 || ps->used + len + 1 > sizeof ps->mem) return;
    ps->p[ps->n++] = ps->mem + ps->used;
    memcpy(ps->mem + ps->used, s, len);
    ps->used += len;
    ps->mem[ps->used++] = 0;
}

static void part_str(parts *ps, const char *s, char glue)
{
    part_add(ps, s, strlen(s), glue);
}

/* The host as parts: host_trim suffixes removed, then either one part or,
 * with host_reverse, one part per label in reverse order. */
static void host_parts(parts *ps, const char *host)
{
    size_t len = strlen(host);
    for (size_t i = 0; i < S.c.host_trim.n; i++) {
        const char *t = S.c.host_trim.v[i];
        if (*t == '.') t++;
        size_t tl = strlen(t);
        if (tl && len > tl + 1 && host[len - tl - 1] == '.' && !memcmp(host + len - tl, t, tl)) {
            len -= tl + 1;
            break;
        }
    }
    if (!S.c.host_reverse) {
        part_add(ps, host, len, 0);
        return;
    }
    size_t end = len;
    for (size_t i = len; i-- > 0;)
        if (host[i] == '.') {
            part_add(ps, host + i + 1, end - i - 1, 0);
            end = i;
        }
    part_add(ps, host, end, 0);
}

/* Join the parts into name (each part's '.' and whitespace replaced by
 * dot_replacement; with strip_duplicates a part equal to the one before is
 * left out); returns the length. */
static size_t join(const parts *ps, char *name, size_t cap)
{
    size_t n = 0;
    const char *rep = S.c.dot_replacement;
    for (size_t i = 0; i < ps->n; i++) {
        if (S.c.strip_duplicates && i && !strcmp(ps->p[i], ps->p[i - 1])) continue;
        if (n && n + 1 < cap) name[n++] = '.';
        for (const char *s = ps->p[i]; *s && n + 8 < cap; s++) {
            if (*s == '.' || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
                for (const char *r = rep; *r && n + 8 < cap; r++) name[n++] = *r;
            } else {
                name[n++] = *s;
            }
        }
    }
    name[n] = 0;
    return n;
}

static void conv_warn(const char *msg)
{
    ms_log_warn("listeners.collectd: converter: %s", msg);
}

/* The series of one value (ds NULL: a notification); 0 when the table is
 * full, UINT32_MAX when a converter dropped the value. */
static uint32_t series_of(const ms_cd_vl *vl, const char *ds, double value)
{
    parts ps;
    ps.n = ps.used = 0;
    ms_tag tags[6];
    size_t nt = 0;
#define TAG(k, v)                                                                                  \
    if (*(v)) tags[nt++] = (ms_tag)                                                                \
        {                                                                                          \
            k, v, (uint32_t)strlen(k), (uint32_t)strlen(v)                                         \
        }
    const char *host = *vl->host ? vl->host : "unknown";
    TAG("host", host);
    const char *d = ds && strcmp(ds, "value") ? ds : "";
    char cbuf[1024];
    size_t nc = 0;
    ms_error err = {0};
    int conv = (S.conv && ds && !S.tagged)
                   ? ms_cd_conv_apply(S.conv, vl, ds, value, cbuf, sizeof cbuf, &nc, &err)
                   : 0;
    if (conv == -1) return UINT32_MAX;
    if (conv < 0) {
        S.conv_errors++;
        log_bad("converter failed on a", err.msg);
    }
    part_str(&ps, S.tagged && !*S.c.prefix ? "collectd" : S.c.prefix, 0);
    if (conv == 1) {
        for (size_t i = 0, off = 0; i < nc; i++, off += strlen(cbuf + off) + 1)
            part_str(&ps, cbuf + off, 0);
    } else if (S.tagged) {
        part_str(&ps, vl->plugin, 0);
        part_str(&ps, vl->type, 0);
        part_str(&ps, d, 0);
        TAG("plugin", vl->plugin);
        TAG("plugin_instance", vl->plugin_instance);
        TAG("type", vl->type);
        TAG("type_instance", vl->type_instance);
        if (ds) TAG("ds", ds);
    } else {
        host_parts(&ps, host);
        part_str(&ps, vl->plugin, 0);
        if (*vl->plugin) part_str(&ps, vl->plugin_instance, '-');
        part_str(&ps, vl->type, 0);
        if (*vl->type) part_str(&ps, vl->type_instance, '-');
        part_str(&ps, d, 0);
    }
    if (!ds) part_str(&ps, "notification", 0);
    part_str(&ps, S.c.postfix, 0);
#undef TAG
    char name[1024];
    size_t n = join(&ps, name, sizeof name);
    return ms_series_intern(name, n, tags, nt);
}

/* ---- parser callbacks ---- */

static void add(uint32_t id, ms_kind kind, double v, double ts, const char *msg, const char *lvl)
{
    if (!S.out) S.out = ms_batch_new(256);
    if (!S.out || ms_batch_add(S.out, id, kind, v, ts, msg, msg ? strlen(msg) : 0, lvl,
                               lvl ? strlen(lvl) : 0) != MS_OK)
        S.dropped++;
}

static double value_of(const ms_cd_value *v)
{
    return v->type == MS_CD_GAUGE    ? v->gauge
           : v->type == MS_CD_DERIVE ? (double)v->i
                                     : (double)v->u;
}

static void on_values(void *ud, const ms_cd_vl *vl)
{
    (void)ud;
    S.values++;
    size_t nds = 0;
    const char *const *ds = ms_cd_types_get(S.types, vl->type, &nds);
    char idx[32];
    if (ds && nds != vl->n) {
        S.unknown_types++;
        log_bad("ignored a value list in a", "the number of values does not match types.db");
        return;
    }
    if (!ds) S.unknown_types++;
    double ts = vl->time > 0 ? vl->time : ms_now();
    double interval = vl->interval > 0 ? vl->interval : 10;
    for (size_t i = 0; i < vl->n; i++) {
        const char *name = ds ? ds[i] : vl->n == 1 ? "value" : idx;
        if (!ds) snprintf(idx, sizeof idx, "%zu", i);
        const ms_cd_value *v = &vl->values[i];
        uint32_t id = series_of(vl, name, value_of(v));
        if (id == UINT32_MAX) { /* a converter dropped it */
            S.conv_dropped++;
            continue;
        }
        if (id == 0) { /* series table full: counted by ms_series_dropped */
            S.dropped++;
            continue;
        }
        double r;
        switch (v->type) {
        case MS_CD_GAUGE:
            add(id, MS_KIND_GAUGE, v->gauge, ts, NULL, NULL);
            break;
        case MS_CD_ABSOLUTE:
            if (S.c.raw_counters)
                add(id, MS_KIND_COUNTER, (double)v->u, ts, NULL, NULL);
            else
                add(id, MS_KIND_RATE, (double)v->u / interval, ts, NULL, NULL);
            break;
        default: {
            double x = v->type == MS_CD_DERIVE ? (double)v->i : (double)v->u;
            if (S.c.raw_counters)
                add(id, MS_KIND_COUNTER, x, ts, NULL, NULL);
            else if (ms_rate_update(id, x, ts, &r))
                add(id, MS_KIND_RATE, r, ts, NULL, NULL);
        }
        }
    }
}

static void on_notification(void *ud, const ms_cd_vl *vl)
{
    (void)ud;
    S.notifications++;
    uint32_t id = series_of(vl, NULL, 0);
    if (id == 0) {
        S.dropped++;
        return;
    }
    double v = vl->severity == 4 ? 0 : vl->severity == 2 ? 8 : 16;
    const char *lvl = vl->severity == 4 ? "OK" : vl->severity == 2 ? "WARNING" : "ERROR";
    add(id, MS_KIND_HEALTH, v, vl->time > 0 ? vl->time : ms_now(), vl->message, lvl);
}

static const char *password_of(void *ud, const char *name)
{
    (void)ud;
    for (size_t i = 0; i < S.nusers; i++)
        if (!strcmp(S.users[i].name, name)) return S.users[i].pw;
    return NULL;
}

/* ---- config ---- */

static int level_of(const char *s)
{
    return !strcmp(s, "none")      ? MS_CD_SEC_NONE
           : !strcmp(s, "sign")    ? MS_CD_SEC_SIGN
           : !strcmp(s, "encrypt") ? MS_CD_SEC_ENCRYPT
                                   : -1;
}

static void users_free(user *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(u[i].name);
        free(u[i].pw);
    }
    free(u);
}

/* Read `user: password` lines into *out (owned by the caller). */
static int load_users(const char *path, user **out, size_t *nout, ms_error *err)
{
    *out = NULL;
    *nout = 0;
    FILE *f = fopen(path, "r");
    if (!f) return ms_error_set(err, MS_EIO, "%s: %s", path, strerror(errno));
    char line[1024];
    int ln = 0, rc = MS_OK;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *e = line + strlen(line);
        while (e > line && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            *--e = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || *s == '#') continue;
        char *colon = strchr(s, ':');
        if (!colon || colon == s) {
            rc = ms_error_set(err, MS_EINVAL, "%s:%d:1: expected \"user: password\"", path, ln);
            break;
        }
        *colon = 0;
        char *pw = colon + 1;
        while (*pw == ' ' || *pw == '\t') pw++;
        user *nu = realloc(*out, (*nout + 1) * sizeof *nu);
        if (!nu) {
            rc = ms_error_set(err, MS_ENOMEM, "out of memory");
            break;
        }
        *out = nu;
        nu[*nout].name = strdup(s);
        nu[*nout].pw = strdup(pw);
        (*nout)++;
    }
    fclose(f);
    if (rc) {
        users_free(*out, *nout);
        *out = NULL;
        *nout = 0;
    }
    return rc;
}

static int conf_error(const ms_config *cfg, const ms_node *sec, const char *key, ms_error *err,
                      const char *what)
{
    const ms_node *n = ms_node_get(sec, key);
    if (!n) n = sec;
    return ms_error_set(err, MS_EINVAL, "%s:%d:%d: listeners.collectd.%s: %s", cfg->path,
                        n ? n->line : 1, n ? n->col : 1, key, what);
}

/* Parse and check the section into *c (owned by the caller: ms_schema_free),
 * loading the types and users into *types, *users when they are not NULL. */
/* NULL when group is a multicast address whose family suits the udp host
 * (a literal address; a name or an empty host is not checked), else why not
 * (a static string). */
static const char *mcast_check(const char *group, const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    int fam = 0;
    if (inet_pton(AF_INET, group, &a4) == 1) {
        if (!IN_MULTICAST(ntohl(a4.s_addr))) return "not an IPv4 multicast address (224.0.0.0/4)";
        fam = AF_INET;
    } else if (inet_pton(AF_INET6, group, &a6) == 1) {
        if (!IN6_IS_ADDR_MULTICAST(&a6)) return "not an IPv6 multicast address (ff00::/8)";
        fam = AF_INET6;
    } else {
        return "expected an IPv4 or IPv6 multicast group address";
    }
    if (inet_pton(AF_INET, host, &a4) == 1 && fam != AF_INET)
        return "an IPv6 group needs an IPv6 udp address";
    if (inet_pton(AF_INET6, host, &a6) == 1 && fam != AF_INET6)
        return "an IPv4 group needs an IPv4 udp address";
    return NULL;
}

/* Join the group on fd (family fam) on iface (a name, an IPv4 address or
 * ""), like uv_udp_set_membership does on its own sockets; MS_OK, or
 * MS_EIO with the kernel's reason in err. */
static int mcast_join(int fd, int fam, const char *group, const char *iface, ms_error *err)
{
    int r = -1;
    if (fam == AF_INET) {
        struct ip_mreqn m;
        memset(&m, 0, sizeof m);
        if (inet_pton(AF_INET, group, &m.imr_multiaddr) != 1)
            errno = EAFNOSUPPORT;
        else if (*iface && inet_pton(AF_INET, iface, &m.imr_address) != 1 &&
                 !(m.imr_ifindex = (int)if_nametoindex(iface)))
            errno = ENODEV;
        else
            r = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
    } else {
        struct ipv6_mreq m;
        memset(&m, 0, sizeof m);
        if (inet_pton(AF_INET6, group, &m.ipv6mr_multiaddr) != 1)
            errno = EAFNOSUPPORT;
        else if (*iface && !(m.ipv6mr_interface = if_nametoindex(iface)))
            errno = ENODEV;
        else
            r = setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m);
    }
    if (r == 0) return MS_OK;
    return ms_error_set(err, MS_EIO, "listeners.collectd: cannot join multicast group %s%s%s: %s",
                        group, *iface ? " on " : "", iface, strerror(errno));
}

static int load_conf(const ms_config *cfg, const ms_node *sec, cd_conf *c, ms_cd_types **types,
                     user **users, size_t *nusers, ms_error *err)
{
    int rc = ms_schema_apply(cd_fields, sec, c, 0, cfg->path, err);
    if (rc) return rc;
    char host[256];
    int port;
    if (ms_parse_address(c->udp, host, sizeof host, &port) != MS_OK)
        return conf_error(cfg, sec, "udp", err, "expected host:port or [v6]:port");
    if (c->recv_batch < 1 || c->recv_batch > 1024)
        return conf_error(cfg, sec, "recv_batch", err, "expected 1 to 1024");
    if (c->recv_buffer > 0x7fffffff)
        return conf_error(cfg, sec, "recv_buffer", err, "at most 2GiB");
    if (level_of(c->security_level) < 0)
        return conf_error(cfg, sec, "security_level", err, "expected none, sign or encrypt");
    if (level_of(c->security_level) > 0 && !*c->auth_file)
        return conf_error(cfg, sec, "auth_file", err, "sign and encrypt need an auth_file");
    if (strcmp(c->naming, "path") && strcmp(c->naming, "tagged"))
        return conf_error(cfg, sec, "naming", err, "expected path or tagged");
    if (c->bad_packet_log < 0)
        return conf_error(cfg, sec, "bad_packet_log", err, "expected 0 or more");
    if (*c->multicast) {
        const char *why = mcast_check(c->multicast, host);
        if (why) return conf_error(cfg, sec, "multicast", err, why);
    }
    if (*c->multicast_interface) {
        if (!*c->multicast)
            return conf_error(cfg, sec, "multicast_interface", err, "needs multicast");
        struct in_addr a4;
        if (inet_pton(AF_INET, c->multicast_interface, &a4) != 1 &&
            if_nametoindex(c->multicast_interface) == 0)
            return conf_error(
                cfg, sec, "multicast_interface", err,
                "no such interface (expected a name such as eth0, or an IPv4 address)");
    }
    user *u = NULL;
    size_t nu = 0;
    if (*c->auth_file) {
        ms_error e2 = {0};
        if (load_users(c->auth_file, &u, &nu, &e2) != MS_OK)
            return conf_error(cfg, sec, "auth_file", err, e2.msg);
    }
    if (users) {
        *users = u;
        *nusers = nu;
    } else {
        users_free(u, nu);
    }
    ms_cd_types *t = NULL;
    if (c->default_types_db && access(DEFAULT_TYPES_DB, R_OK) == 0 &&
        (rc = ms_cd_types_load_file(&t, DEFAULT_TYPES_DB, err)) != MS_OK) {
        ms_cd_types_free(t);
        return rc;
    }
    for (size_t i = 0; i < c->types_db.n; i++) {
        ms_error e2 = {0};
        if (ms_cd_types_load_file(&t, c->types_db.v[i], &e2) != MS_OK) {
            ms_cd_types_free(t);
            return conf_error(cfg, sec, "types_db", err, e2.msg);
        }
    }
    if (types)
        *types = t;
    else
        ms_cd_types_free(t);
    return MS_OK;
}

int ms_collectd_listener_validate(const ms_config *cfg, ms_error *err)
{
    const ms_node *sec = ms_node_get(cfg->listeners, "collectd");
    if (!sec) return MS_OK;
    cd_conf c;
    memset(&c, 0, sizeof c);
    int rc = load_conf(cfg, sec, &c, NULL, NULL, NULL, err);
    if (rc == MS_OK && c.enabled) {
        ms_cd_conv *cv = NULL;
        rc = ms_cd_conv_load(&cv, &c.converters, &cfg->paths.lua, NULL, err);
        ms_cd_conv_free(cv);
    }
    ms_schema_free(cd_fields, &c);
    return rc;
}

/* ---- socket ---- */

static void submit(void)
{
    if (S.out && S.out->n) {
        S.samples += S.out->n;
        ms_pipeline_submit(S.out);
    } else if (S.out) {
        ms_batch_unref(S.out);
    }
    S.out = NULL;
}

/* Parse one packet into S.out, counting what goes wrong. */
static void handle_packet(const uint8_t *buf, size_t len, const struct sockaddr *peer)
{
    S.packets++;
    S.peer = peer;
    ms_cd_sink k = {on_values, on_notification, S.auth ? password_of : NULL, NULL, S.level};
    ms_cd_stats st = {0};
    const char *reason = NULL;
    int rc = ms_cd_parse(buf, len, &k, &st, &reason);
    S.insecure += st.insecure;
    S.auth_failed += st.auth;
    if (rc == MS_EINVAL || rc == MS_ENOMEM) {
        S.bad++;
        log_bad("bad", reason);
    } else if (rc != MS_OK) {
        log_bad("dropped", reason);
    }
}

/* Readable: recvmmsg batches until the socket is empty (at most 64 rounds,
 * then the loop gets a turn), one pipeline batch per round. */
static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)events;
    if (status < 0) return;
    for (int round = 0; round < 64; round++) {
        for (int i = 0; i < S.batch; i++) {
            S.iov[i] = (struct iovec){S.bufs + (size_t)i * PKT_MAX, PKT_MAX};
            S.msgs[i].msg_hdr = (struct msghdr){.msg_name = &S.peers[i],
                                                .msg_namelen = sizeof S.peers[i],
                                                .msg_iov = &S.iov[i],
                                                .msg_iovlen = 1,
                                                .msg_control = S.ctrl + (size_t)i * CTRL_SZ,
                                                .msg_controllen = CTRL_SZ};
        }
        int n = recvmmsg(S.fd, S.msgs, (unsigned)S.batch, MSG_DONTWAIT, NULL);
        if (n <= 0) break;
        for (int i = 0; i < n; i++) {
            struct msghdr *mh = &S.msgs[i].msg_hdr;
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL)
                    memcpy(&S.kdrops, CMSG_DATA(cm), sizeof S.kdrops);
            handle_packet(S.bufs + (size_t)i * PKT_MAX, S.msgs[i].msg_len,
                          (struct sockaddr *)&S.peers[i]);
        }
        submit();
        if (n < S.batch) break;
    }
}

/* Open and bind the UDP socket of addr; the fd or -1 with err. */
static int open_udp(const char *addr, uint64_t rcvbuf, const char *group, const char *iface,
                    ms_error *err)
{
    char host[256], ps[16];
    int port;
    ms_parse_address(addr, host, sizeof host, &port);
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int g = getaddrinfo(*host ? host : NULL, ps, &hints, &ai);
    if (g) {
        ms_error_set(err, MS_EINVAL, "listeners.collectd: udp %s: %s", addr, gai_strerror(g));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int one = 1, rb = (int)rcvbuf;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one); /* kernel drop count */
        if (rb > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) ms_error_set(err, MS_EIO, "listeners.collectd: udp %s: %s", addr, strerror(errno));
    if (fd >= 0 && *group && mcast_join(fd, ai->ai_family, group, iface, err) != MS_OK) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void close_socket(void)
{
    if (S.poll) {
        uv_poll_stop(S.poll);
        uv_close((uv_handle_t *)S.poll, (uv_close_cb)free);
        S.poll = NULL;
    }
    if (S.fd >= 0) close(S.fd);
    S.fd = -1;
    S.kdrops_base += S.kdrops;
    S.kdrops = 0;
    free(S.bound);
    S.bound = NULL;
}

static int alloc_bufs(int batch)
{
    free(S.msgs);
    free(S.iov);
    free(S.peers);
    free(S.bufs);
    free(S.ctrl);
    S.ctrl = calloc((size_t)batch, CTRL_SZ);
    S.msgs = calloc((size_t)batch, sizeof *S.msgs);
    S.iov = calloc((size_t)batch, sizeof *S.iov);
    S.peers = calloc((size_t)batch, sizeof *S.peers);
    S.bufs = malloc((size_t)batch * PKT_MAX);
    S.batch = batch;
    return S.msgs && S.iov && S.peers && S.bufs && S.ctrl ? 0 : -1;
}

static void stats_provider(ms_batch *b, double now, void *ud)
{
    (void)ud;
    static const char *const kv[] = {"listener", "collectd", NULL};
    struct {
        const char *name;
        uint64_t v;
    } c[] = {{"moonstat_collectd_packets_total", S.packets},
             {"moonstat_collectd_bad_packets_total", S.bad},
             {"moonstat_collectd_value_lists_total", S.values},
             {"moonstat_collectd_samples_total", S.samples},
             {"moonstat_collectd_notifications_total", S.notifications},
             {"moonstat_collectd_insecure_ignored_total", S.insecure},
             {"moonstat_collectd_auth_failures_total", S.auth_failed},
             {"moonstat_collectd_unknown_types_total", S.unknown_types},
             {"moonstat_collectd_dropped_total", S.dropped},
             {"moonstat_collectd_converter_errors_total", S.conv_errors},
             {"moonstat_collectd_converter_dropped_total", S.conv_dropped},
             {"moonstat_collectd_kernel_drops_total", S.kdrops_base + S.kdrops}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        ms_stats_add(b, c[i].name, MS_KIND_COUNTER, (double)c[i].v, now, kv);
}

/* (Re)apply the section: new users and types replace the old ones; the
 * socket is reopened only when its address changed. */
static int apply(const ms_config *cfg, ms_error *err)
{
    const ms_node *sec = ms_node_get(cfg->listeners, "collectd");
    cd_conf c;
    memset(&c, 0, sizeof c);
    ms_cd_types *t = NULL;
    user *u = NULL;
    size_t nu = 0;
    int rc = sec ? load_conf(cfg, sec, &c, &t, &u, &nu, err) : MS_OK;
    ms_cd_conv *cv = NULL;
    if (!rc && sec && c.enabled) {
        ms_error e2 = {0};
        if (ms_cd_conv_load(&cv, &c.converters, &cfg->paths.lua, conv_warn, &e2) != MS_OK && !cv)
            ms_log_error("listeners.collectd: converters: %s", e2.msg);
    }
    if (rc || !sec || !c.enabled) {
        ms_schema_free(cd_fields, &c);
        ms_cd_types_free(t);
        users_free(u, nu);
        ms_cd_conv_free(cv);
        if (rc) return rc;
        ms_collectd_listener_stop();
        return MS_OK;
    }
    char key[1024]; /* what the socket depends on */
    snprintf(key, sizeof key, "%s|%s|%s", c.udp, c.multicast, c.multicast_interface);
    if (S.fd < 0 || strcmp(S.bound, key)) {
        int fd = open_udp(c.udp, c.recv_buffer, c.multicast, c.multicast_interface, err);
        if (fd < 0) {
            ms_schema_free(cd_fields, &c);
            ms_cd_types_free(t);
            users_free(u, nu);
            ms_cd_conv_free(cv);
            return MS_EIO;
        }
        close_socket();
        S.fd = fd;
        S.bound = strdup(key);
        S.poll = malloc(sizeof *S.poll);
        uv_poll_init(S.loop, S.poll, fd);
        uv_poll_start(S.poll, UV_READABLE, on_readable);
    }
    if (S.batch != c.recv_batch && alloc_bufs((int)c.recv_batch) != 0) {
        ms_schema_free(cd_fields, &c);
        ms_cd_types_free(t);
        users_free(u, nu);
        ms_cd_conv_free(cv);
        return ms_error_set(err, MS_ENOMEM, "listeners.collectd: out of memory");
    }
    if (S.have_conf) ms_schema_free(cd_fields, &S.c);
    S.c = c;
    S.have_conf = 1;
    ms_cd_types_free(S.types);
    S.types = t;
    users_free(S.users, S.nusers);
    S.users = u;
    S.nusers = nu;
    ms_cd_conv_free(S.conv);
    S.conv = cv;
    S.auth = *c.auth_file != 0;
    S.level = level_of(c.security_level);
    S.tagged = !strcmp(c.naming, "tagged");
    if (!S.stats_on) S.stats_on = ms_stats_register(stats_provider, NULL) == MS_OK;
    ms_log_info("listeners.collectd: listening (udp %s%s%s%s%s, security %s, %zu users)", c.udp,
                *c.multicast ? ", multicast " : "", c.multicast,
                *c.multicast_interface ? " on " : "", c.multicast_interface, c.security_level, nu);
    return MS_OK;
}

int ms_collectd_listener_start(uv_loop_t *loop, const ms_config *cfg, ms_error *err)
{
    S.loop = loop;
    return apply(cfg, err);
}

void ms_collectd_listener_reload(const ms_config *cfg)
{
    ms_error err = {0};
    if (!S.loop) return;
    if (apply(cfg, &err) != MS_OK)
        ms_log_error("reload: %s (keeping the collectd listener)", err.msg);
}

void ms_collectd_listener_stop(void)
{
    if (S.fd >= 0 && S.poll) on_readable(S.poll, 0, UV_READABLE); /* what the kernel holds */
    close_socket();
}

void ms_collectd_listener_free(void)
{
    close_socket();
    if (S.stats_on) ms_stats_unregister(stats_provider, NULL);
    S.stats_on = 0;
    if (S.have_conf) ms_schema_free(cd_fields, &S.c);
    S.have_conf = 0;
    ms_cd_types_free(S.types);
    S.types = NULL;
    users_free(S.users, S.nusers);
    S.users = NULL;
    S.nusers = 0;
    ms_cd_conv_free(S.conv);
    S.conv = NULL;
    free(S.msgs);
    free(S.iov);
    free(S.peers);
    free(S.bufs);
    free(S.ctrl);
    S.ctrl = NULL;
    S.msgs = NULL;
    S.iov = NULL;
    S.peers = NULL;
    S.bufs = NULL;
    S.batch = 0;
    if (S.out) ms_batch_unref(S.out);
    S.out = NULL;
}
