/*
 * config.c - scalar conversions (durations, sizes, addresses), declarative
 * schemas, and the moonstat config (see ms_config.h). The YAML node tree is
 * built in config_yaml.c.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ms_buf.h"
#include "ms_config.h"
#include "ms_err.h"
#include "ms_log.h"

/* ---- scalar conversions ---- */

/* Scan an unsigned decimal "123", "1.5" or ".5" at s into *out; returns the
 * length consumed or 0 when there is no number. No signs, exponents, hex. */
static size_t scan_number(const char *s, double *out)
{
    size_t i = 0, digits = 0;
    while (isdigit((unsigned char)s[i])) i++, digits++;
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i])) i++, digits++;
    }
    if (!digits || i >= 64) return 0;
    char tmp[64];
    memcpy(tmp, s, i);
    tmp[i] = '\0';
    *out = strtod(tmp, NULL);
    return i;
}

int ms_parse_duration(const char *s, double *out)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"", 1},      {"s", 1},  {"ms", 1e-3}, {"us", 1e-6},
                 {"ns", 1e-9}, {"m", 60}, {"h", 3600},  {"d", 86400}};
    double v;
    size_t n;
    if (!s || !(n = scan_number(s, &v))) return MS_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s + n, units[i].unit) == 0) {
            v *= units[i].mult;
            if (!isfinite(v)) return MS_EINVAL;
            *out = v;
            return MS_OK;
        }
    }
    return MS_EINVAL;
}

/* Units: "" or B; k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (of 1024),
 * each optionally followed by B; any case. */
int ms_parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s)) return MS_EINVAL;
    uint64_t ip = 0;
    const char *p = s;
    for (; isdigit((unsigned char)*p); p++) {
        if (ip > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) return MS_EINVAL;
        ip = ip * 10 + (uint64_t)(*p - '0');
    }
    double frac = 0;
    if (*p == '.') {
        size_t n = scan_number(p, &frac);
        if (n < 2) return MS_EINVAL; /* "1." */
        p += n;
    }
    static const char prefixes[] = "kmgt";
    uint64_t m = 1;
    const char *px = *p ? strchr(prefixes, tolower((unsigned char)*p)) : NULL;
    if (px) {
        int binary = tolower((unsigned char)p[1]) == 'i';
        for (long e = px - prefixes; e >= 0; e--) m *= binary ? 1024 : 1000;
        p += 1 + binary;
    }
    if (tolower((unsigned char)*p) == 'b') p++;
    if (*p || (m == 1 && frac != 0)) return MS_EINVAL; /* garbage, fractional bytes */
    uint64_t fpart = (uint64_t)(frac * (double)m);
    if (ip > UINT64_MAX / m || ip * m > UINT64_MAX - fpart) return MS_EINVAL;
    *out = ip * m + fpart;
    return MS_OK;
}

int ms_parse_address(const char *s, char *host, size_t hostcap, int *port)
{
    if (!s || !host || !hostcap) return MS_EINVAL;
    const char *h = s, *colon;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') return MS_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (!hlen) return MS_EINVAL;
    } else {
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':')) return MS_EINVAL; /* v6 needs [] */
        hlen = (size_t)(colon - s);
        if (!hlen) h = "127.0.0.1", hlen = strlen(h);
    }
    for (size_t i = 0; i < hlen; i++)
        if (isspace((unsigned char)h[i]) || h[i] == '/') return MS_EINVAL;
    const char *ps = colon + 1;
    long v = 0;
    if (!*ps || strlen(ps) > 5) return MS_EINVAL;
    for (const char *q = ps; *q; q++) {
        if (!isdigit((unsigned char)*q)) return MS_EINVAL;
        v = v * 10 + (*q - '0');
    }
    if (v < 1 || v > 65535 || hlen >= hostcap) return MS_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)v;
    return MS_OK;
}

int ms_parse_bool(const char *s, int *out)
{
    static const char *names[] = {"false", "true", "no", "yes", "off", "on"};
    if (!s) return MS_EINVAL;
    for (int i = 0; i < 6; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = i & 1;
            return MS_OK;
        }
    }
    return MS_EINVAL;
}

/* ---- schemas ---- */

static void strlist_free(ms_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->n = 0;
    l->v = NULL;
}

static void tags_free(ms_tags *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->k[i]), free(t->v[i]);
    free(t->k);
    free(t->v);
    t->n = 0;
    t->k = t->v = NULL;
}

static const char *node_kind(const ms_node *n)
{
    return n->type == MS_NODE_MAP ? "a map" : n->type == MS_NODE_SEQ ? "a list" : "a scalar";
}

/* Where a conversion failed, for messages: "file:line:col: section.key". */
typedef struct where {
    const char *file, *section, *key;
} where;

/* "file:line:col: section.key<sfx>: expected <what>, got 'value' | a map | a list". */
static int field_error(const where *w, const ms_node *n, const char *what, const char *sfx,
                       ms_error *err)
{
    char got[100];
    if (n->type == MS_NODE_SCALAR)
        snprintf(got, sizeof got, "'%.80s'", n->value);
    else
        snprintf(got, sizeof got, "%s", node_kind(n));
    return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s%s%s%s: expected %s, got %s", w->file, n->line,
                        n->col, w->section ? w->section : "", w->section ? "." : "", w->key,
                        sfx ? sfx : "", what, got);
}

static int set_field(const ms_field *f, const ms_node *n, char *dst, const where *w, ms_error *err)
{
    int null = ms_node_is_null(n);
    const char *v = n->type == MS_NODE_SCALAR ? n->value : NULL;
    switch (f->type) {
    case MS_T_STRING: {
        if (!v) return field_error(w, n, "a string", NULL, err);
        char *s = strdup(null ? "" : v);
        if (!s) return ms_error_set(err, MS_ENOMEM, "out of memory");
        free(*(char **)dst);
        *(char **)dst = s;
        return MS_OK;
    }
    case MS_T_BOOL:
        if (!v || ms_parse_bool(v, (int *)dst))
            return field_error(w, n, "true or false", NULL, err);
        return MS_OK;
    case MS_T_INT: {
        char *end;
        errno = 0;
        long long x = v ? strtoll(v, &end, 10) : 0;
        if (!v || !*v || *end || errno || isspace((unsigned char)*v))
            return field_error(w, n, "an integer", NULL, err);
        *(int64_t *)dst = x;
        return MS_OK;
    }
    case MS_T_NUMBER: {
        char *end = NULL;
        double x = NAN;
        if (v && *v && !v[strspn(v, "0123456789+-.eE")]) x = strtod(v, &end);
        if (!end || *end || !isfinite(x)) return field_error(w, n, "a number", NULL, err);
        *(double *)dst = x;
        return MS_OK;
    }
    case MS_T_DURATION: {
        int has_auto = f->def && strcmp(f->def, "auto") == 0; /* "auto" means -1 */
        if (has_auto && v && strcmp(v, "auto") == 0) {
            *(double *)dst = -1;
            return MS_OK;
        }
        if (!v || ms_parse_duration(v, (double *)dst))
            return field_error(w, n,
                               has_auto ? "auto or a duration like 10s or 500ms"
                                        : "a duration like 10s or 500ms",
                               NULL, err);
        return MS_OK;
    }
    case MS_T_SIZE:
        if (!v || ms_parse_size(v, (uint64_t *)dst))
            return field_error(w, n, "a size like 64MiB or 512kB", NULL, err);
        return MS_OK;
    case MS_T_ADDRESS: {
        ms_address *a = (ms_address *)dst;
        if (!v || ms_parse_address(v, a->host, sizeof a->host, &a->port))
            return field_error(w, n, "an address like host:port", NULL, err);
        return MS_OK;
    }
    case MS_T_STRLIST: {
        ms_strlist l = {0, NULL};
        size_t cnt = null ? 0 : n->type == MS_NODE_SEQ ? n->n : n->type == MS_NODE_SCALAR ? 1 : 0;
        if (n->type == MS_NODE_MAP) return field_error(w, n, "a list of strings", NULL, err);
        if (cnt && !(l.v = calloc(cnt, sizeof *l.v)))
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        for (; l.n < cnt; l.n++) {
            const ms_node *it = n->type == MS_NODE_SEQ ? n->items[l.n] : n;
            char sfx[32];
            snprintf(sfx, sizeof sfx, "[%zu]", l.n);
            int rc = it->type != MS_NODE_SCALAR ? field_error(w, it, "a string", sfx, err)
                     : !(l.v[l.n] = strdup(it->value))
                         ? ms_error_set(err, MS_ENOMEM, "out of memory")
                         : MS_OK;
            if (rc) {
                strlist_free(&l);
                return rc;
            }
        }
        strlist_free((ms_strlist *)dst);
        *(ms_strlist *)dst = l;
        return MS_OK;
    }
    case MS_T_TAGS: {
        ms_tags t = {0, NULL, NULL};
        if (!null && n->type != MS_NODE_MAP)
            return field_error(w, n, "a map of names to values", NULL, err);
        size_t cnt = null ? 0 : n->n;
        if (cnt && (!(t.k = calloc(cnt, sizeof *t.k)) || !(t.v = calloc(cnt, sizeof *t.v)))) {
            free(t.k);
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        }
        for (; t.n < cnt; t.n++) {
            const ms_node *it = n->items[t.n];
            char sfx[80];
            snprintf(sfx, sizeof sfx, ".%.60s", it->key);
            int rc = it->type != MS_NODE_SCALAR ? field_error(w, it, "a string", sfx, err)
                     : (!(t.k[t.n] = strdup(it->key)) || !(t.v[t.n] = strdup(it->value)))
                         ? ms_error_set(err, MS_ENOMEM, "out of memory")
                         : MS_OK;
            if (rc) {
                t.n++; /* free a half-filled pair too */
                tags_free(&t);
                return rc;
            }
        }
        tags_free((ms_tags *)dst);
        *(ms_tags *)dst = t;
        return MS_OK;
    }
    case MS_T_NODE:
        *(const ms_node **)dst = n;
        return MS_OK;
    }
    return ms_error_set(err, MS_EINVAL, "%s: %s: unknown field type", w->file, w->key);
}

/* "unknown key 'x' in section 's' (known: a, b)" at the key's position. The
 * known names are the strings at `names`, `names + stride`, ... up to NULL
 * (a field table's keys, or a plain NULL-terminated array). */
static int unknown_key(const char *file, const ms_node *item, const char *section,
                       const char *const *names, size_t stride, ms_error *err)
{
    ms_buf known = MS_BUF_INIT;
    for (const char *const *k = names; *k; k = (const char *const *)((const char *)k + stride))
        ms_buf_printf(&known, "%s%s", known.len ? ", " : "", *k);
    int rc = ms_error_set(err, MS_EINVAL, "%s:%d:%d: unknown key '%s' in section '%s' (known: %s)",
                          file, item->key_line, item->key_col, item->key, section,
                          known.data ? known.data : "");
    ms_buf_free(&known);
    return rc;
}

/* Apply the default text of `f` (YAML syntax) to dst. */
static int apply_default(const ms_field *f, char *dst, const where *w, ms_error *err)
{
    ms_node tmp = {.type = MS_NODE_SCALAR, .line = 0, .col = 0, .plain = 1};
    ms_node *parsed = NULL;
    const ms_node *n = &tmp;
    if (!f->def) {
        if (f->type != MS_T_STRING) return MS_OK; /* zero/empty */
        tmp.value = "";
    } else if (f->def[0] && strchr("[{\"'", f->def[0])) { /* a flow list, map or quoted */
        int rc = ms_node_parse_string("<schema default>", f->def, strlen(f->def), &parsed, err);
        if (rc) return rc;
        n = parsed;
    } else {
        tmp.value = (char *)f->def;
    }
    where dw = {"<schema default>", w->section, f->key};
    int rc = set_field(f, n, dst, &dw, err);
    ms_node_free(parsed);
    return rc;
}

int ms_schema_apply(const ms_field *fields, const ms_node *map, void *out, int allow_extra,
                    const char *file, ms_error *err)
{
    const char *section = map && map->key ? map->key : "top level";
    where w = {file, map && map->key ? map->key : NULL, NULL};
    for (const ms_field *f = fields; f->key; f++) {
        w.key = f->key;
        int rc = apply_default(f, (char *)out + f->offset, &w, err);
        if (rc) return rc;
    }
    if (ms_node_is_null(map)) return MS_OK;
    if (map->type != MS_NODE_MAP)
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s: expected a map, got %s", file, map->line,
                            map->col, section, node_kind(map));
    for (size_t i = 0; i < map->n; i++) {
        const ms_node *it = map->items[i];
        const ms_field *f = fields;
        while (f->key && strcmp(f->key, it->key) != 0) f++;
        if (!f->key) {
            if (allow_extra) continue;
            return unknown_key(file, it, section, &fields[0].key, sizeof *fields, err);
        }
        w.key = f->key;
        int rc = set_field(f, it, (char *)out + f->offset, &w, err);
        if (rc) return rc;
    }
    return MS_OK;
}

void ms_schema_free(const ms_field *fields, void *out)
{
    for (const ms_field *f = fields; f->key; f++) {
        char *dst = (char *)out + f->offset;
        if (f->type == MS_T_STRING) {
            free(*(char **)dst);
            *(char **)dst = NULL;
        } else if (f->type == MS_T_STRLIST) {
            strlist_free((ms_strlist *)dst);
        } else if (f->type == MS_T_TAGS) {
            tags_free((ms_tags *)dst);
        }
    }
}

/* Write `s` escaping the Markdown table separator. */
static void md_cell(FILE *fp, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputc('\\', fp);
        fputc(*s, fp);
    }
}

void ms_schema_write_doc(const ms_field *fields, const char *section, void *stream)
{
    static const char *tnames[] = {"string",         "bool",   "integer", "number",
                                   "duration",       "size",   "address", "list of strings",
                                   "map of strings", "section"};
    static const char *zero[] = {"\"\"", "false", "0", "0", "0", "0", "", "[]", "{}", ""};
    FILE *fp = stream;
    fprintf(fp, "| key | type | default | help |\n|---|---|---|---|\n");
    for (const ms_field *f = fields; f->key; f++) {
        const char *def = f->def ? f->def : zero[f->type];
        fprintf(fp, "| `%s.%s` | %s | %s%s%s | ", section, f->key, tnames[f->type], *def ? "`" : "",
                def, *def ? "`" : "");
        md_cell(fp, f->help ? f->help : "");
        fprintf(fp, " |\n");
    }
}

/* ---- the moonstat config ---- */

/* clang-format off */
#define AF(k, t, d, h) {#k, t, d, offsetof(ms_agent_config, k), h}
/* clang-format on */
const ms_field ms_config_agent_fields[] = {
    AF(hostname, MS_T_STRING, NULL, "host name added to every sample; empty: the system's"),
    AF(interval, MS_T_DURATION, "10s", "default interval of every check"),
    AF(tags, MS_T_TAGS, "{}", "tags added to every sample, e.g. { cluster: prod }"),
    AF(log_level, MS_T_STRING, "info", "debug, info, warn or error"),
    AF(max_series, MS_T_INT, "100000",
       "most distinct series kept; past it new series are dropped and counted"),
    AF(shutdown_timeout, MS_T_DURATION, "5s", "how long SIGTERM waits for forwarders to flush"),
    AF(check_timeout, MS_T_DURATION, "10s", "default longest run of one check collection"),
    AF(check_jitter, MS_T_DURATION, "auto",
       "default random delay before each check run; auto: 10% of the check's interval"),
    AF(check_memory, MS_T_SIZE, "16MiB", "default Lua heap limit of one check"),
    AF(check_slice, MS_T_DURATION, "10ms", "longest a check runs before it yields the event loop"),
    AF(check_turn_budget, MS_T_DURATION, "1ms",
       "time one loop turn spends starting and resuming checks; the rest wait for the next turn"),
    AF(stats_interval, MS_T_DURATION, "10s", "how often moonstat_* self metrics are emitted"),
    AF(flush_interval, MS_T_DURATION, "200ms",
       "how often the pipeline hands gathered samples to the forwarders"),
    AF(pipeline_batch, MS_T_INT, "10000",
       "samples gathered before an early flush; past twice this, new samples are dropped "
       "(moonstat_pipeline_dropped_samples_total)"),
    AF(processor_drop_on_error, MS_T_BOOL, "false",
       "a sample whose processor raises: true drops it, false passes it on unchanged (each "
       "processor may set its own drop_on_error)"),
    AF(state_dir, MS_T_STRING, "/var/lib/moonstat",
       "where moonstat keeps state: a forwarder's spool defaults to <state_dir>/spool/<name>"),
    {NULL, 0, NULL, 0, NULL}};

/* clang-format off */
#define PF(k, d, h) {#k, MS_T_STRLIST, d, offsetof(ms_paths_config, k), h}
/* clang-format on */
const ms_field ms_config_paths_fields[] = {
    PF(checks, "[checks]", "directories of check scripts"),
    PF(scripts, "[scripts]", "directories of exec bridge scripts"),
    PF(lua, "[lua]", "directories of Lua modules, processors and converters"),
    PF(forwarders, "[forwarders]", "directories of forwarder encoders"),
    {NULL, 0, NULL, 0, NULL}};

static const char *const top_keys[] = {"agent",     "paths",      "checks",     "scripts",
                                       "listeners", "processors", "forwarders", NULL};

char *ms_config_resolve(const ms_config *c, const char *p)
{
    while (p[0] == '.' && p[1] == '/') p += 2;
    if (p[0] == '/' || !c->dir) return strdup(p);
    if (!strcmp(p, ".") || !*p) return strdup(c->dir);
    ms_buf b = MS_BUF_INIT;
    if (ms_buf_printf(&b, "%s/%s", c->dir, p) != MS_OK) {
        ms_buf_free(&b);
        return NULL;
    }
    return ms_buf_detach(&b, NULL);
}

/* The absolute directory of `path` (malloc'd), or NULL when out of memory. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    ms_buf b = MS_BUF_INIT;
    int rc = MS_OK;
    if (path[0] != '/') {
        char *cwd = getcwd(NULL, 0);
        if (!cwd) return NULL;
        rc = ms_buf_puts(&b, cwd);
        free(cwd);
        if (slash) {
            const char *rel = path;
            while (rel[0] == '.' && rel[1] == '/') rel += 2;
            if (rel < slash) rc |= ms_buf_printf(&b, "/%.*s", (int)(slash - rel), rel);
        }
    } else {
        rc = ms_buf_append(&b, path, slash == path ? 1 : (size_t)(slash - path));
    }
    if (rc != MS_OK) {
        ms_buf_free(&b);
        return NULL;
    }
    return ms_buf_detach(&b, NULL);
}

/* The section `key` of the root: NULL when absent or null; an error when it is
 * not of `type`. */
static int get_section(ms_config *c, const char *key, ms_node_type type, const ms_node **out,
                       ms_error *err)
{
    const ms_node *n = ms_node_get(c->root, key);
    *out = NULL;
    if (ms_node_is_null(n)) return MS_OK;
    if (n->type != type)
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s: expected %s, got %s", c->path, n->line,
                            n->col, key, type == MS_NODE_MAP ? "a map" : "a list", node_kind(n));
    *out = n;
    return MS_OK;
}

/* Check the agent values that a schema cannot express. */
static int validate_agent(ms_config *c, ms_error *err)
{
    ms_agent_config *a = &c->agent;
    const ms_node *an = ms_node_get(c->root, "agent");
    static const struct {
        const char *key;
        size_t off;
        int allow_zero;
    } pos[] = {{"interval", offsetof(ms_agent_config, interval), 0},
               {"shutdown_timeout", offsetof(ms_agent_config, shutdown_timeout), 1},
               {"check_timeout", offsetof(ms_agent_config, check_timeout), 0},
               {"check_slice", offsetof(ms_agent_config, check_slice), 0},
               {"check_turn_budget", offsetof(ms_agent_config, check_turn_budget), 0},
               {"stats_interval", offsetof(ms_agent_config, stats_interval), 0},
               {"flush_interval", offsetof(ms_agent_config, flush_interval), 0}};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
        double v = *(double *)((char *)a + pos[i].off);
        if (v > 0 || (pos[i].allow_zero && v == 0)) continue;
        const ms_node *n = ms_node_get(an, pos[i].key);
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: agent.%s: must be greater than 0", c->path,
                            n ? n->line : 0, n ? n->col : 0, pos[i].key);
    }
    /* max_series is filled as MS_T_INT (int64_t); the series table takes a uint32 */
    int64_t ms = (int64_t)a->max_series;
    if (ms <= 0 || ms > UINT32_MAX) {
        const ms_node *n = ms_node_get(an, "max_series");
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: agent.max_series: must be between 1 and %u, got %lld",
                            c->path, n ? n->line : 0, n ? n->col : 0, UINT32_MAX, (long long)ms);
    }
    if (a->pipeline_batch < 1 || a->pipeline_batch > 10000000) {
        const ms_node *n = ms_node_get(an, "pipeline_batch");
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: agent.pipeline_batch: must be between 1 and 10000000",
                            c->path, n ? n->line : 0, n ? n->col : 0);
    }
    if (!a->check_memory) {
        const ms_node *n = ms_node_get(an, "check_memory");
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: agent.check_memory: must be greater than 0",
                            c->path, n ? n->line : 0, n ? n->col : 0);
    }
    ms_log_level lvl;
    if (ms_log_parse_level(a->log_level, &lvl) != MS_OK) {
        const ms_node *n = ms_node_get(an, "log_level");
        return ms_error_set(err, MS_EINVAL,
                            "%s:%d:%d: agent.log_level: expected debug, info, warn or error, got "
                            "'%s'",
                            c->path, n ? n->line : 0, n ? n->col : 0, a->log_level);
    }
    if (!a->hostname[0]) {
        char h[256] = "";
        if (gethostname(h, sizeof h - 1) != 0 || !h[0]) snprintf(h, sizeof h, "localhost");
        char *s = strdup(h);
        if (!s) return ms_error_set(err, MS_ENOMEM, "out of memory");
        free(a->hostname);
        a->hostname = s;
    }
    return MS_OK;
}

/* Each entry of a name -> section map must be a map or null. */
static int check_entries(ms_config *c, const ms_node *sec, ms_error *err)
{
    for (size_t i = 0; sec && i < sec->n; i++) {
        const ms_node *e = sec->items[i];
        if (!ms_node_is_null(e) && e->type != MS_NODE_MAP)
            return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s.%s: expected a map, got %s", c->path,
                                e->line, e->col, sec->key, e->key, node_kind(e));
    }
    return MS_OK;
}

/* Parse, apply the schemas and check the sections of config `c` (path set). */
static int config_fill(ms_config *c, ms_error *err)
{
    int rc = ms_node_parse_file(c->path, &c->root, err);
    if (rc) return rc;
    if (c->root->type != MS_NODE_MAP)
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: the top level must be a map, got %s",
                            c->path, c->root->line, c->root->col, node_kind(c->root));
    for (size_t i = 0; i < c->root->n; i++) {
        const ms_node *it = c->root->items[i];
        size_t k = 0;
        while (top_keys[k] && strcmp(top_keys[k], it->key) != 0) k++;
        if (!top_keys[k])
            return unknown_key(c->path, it, "top level", top_keys, sizeof top_keys[0], err);
    }
    if ((rc = ms_schema_apply(ms_config_agent_fields, ms_node_get(c->root, "agent"), &c->agent, 0,
                              c->path, err)))
        return rc;
    if ((rc = ms_schema_apply(ms_config_paths_fields, ms_node_get(c->root, "paths"), &c->paths, 0,
                              c->path, err)))
        return rc;
    if ((rc = validate_agent(c, err))) return rc;
    ms_strlist *lists[] = {&c->paths.checks, &c->paths.scripts, &c->paths.lua,
                           &c->paths.forwarders};
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < lists[i]->n; j++) {
            char *abs = ms_config_resolve(c, lists[i]->v[j]);
            if (!abs) return ms_error_set(err, MS_ENOMEM, "out of memory");
            free(lists[i]->v[j]);
            lists[i]->v[j] = abs;
        }
    }
    if ((rc = get_section(c, "checks", MS_NODE_MAP, &c->checks, err)) ||
        (rc = get_section(c, "forwarders", MS_NODE_MAP, &c->forwarders, err)) ||
        (rc = get_section(c, "listeners", MS_NODE_MAP, &c->listeners, err)) ||
        (rc = get_section(c, "scripts", MS_NODE_MAP, &c->scripts, err)) ||
        (rc = get_section(c, "processors", MS_NODE_SEQ, &c->processors, err)))
        return rc;
    if ((rc = check_entries(c, c->checks, err)) || (rc = check_entries(c, c->forwarders, err)))
        return rc;
    return MS_OK;
}

int ms_config_load(const char *path, ms_config **out, ms_error *err)
{
    *out = NULL;
    ms_config *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path)) || !(c->dir = dir_of(path))) {
        ms_config_free(c);
        return ms_error_set(err, MS_ENOMEM, "%s: out of memory", path);
    }
    int rc = config_fill(c, err);
    if (rc) {
        ms_config_free(c);
        return rc;
    }
    *out = c;
    return MS_OK;
}

void ms_config_free(ms_config *c)
{
    if (!c) return;
    ms_schema_free(ms_config_agent_fields, &c->agent);
    ms_schema_free(ms_config_paths_fields, &c->paths);
    ms_node_free(c->root);
    free(c->path);
    free(c->dir);
    free(c);
}
