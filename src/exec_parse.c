/*
 * exec_parse.c - the line formats of the exec bridge (see ms_exec.h and
 * docs/exec.md): PuyPuy, Nagios plugin output with perfdata, collectd
 * PUTVAL/PUTNOTIF, Influx line protocol and Graphite plaintext. Lines are
 * tokenised in place; samples are interned and added to the parser's batch.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_exec.h"
#include "ms_rate.h"

#define MAX_TAGS 64
#define MAX_NAME 1024

static const char *const fmt_names[] = {"auto",     "puypuy", "nagios",
                                        "collectd", "influx", "graphite"};

int ms_exec_format_parse(const char *s)
{
    for (int i = 0; i < MS_EXEC_FMT_COUNT_; i++)
        if (s && !strcmp(s, fmt_names[i])) return i;
    return -1;
}

const char *ms_exec_format_name(int fmt)
{
    return fmt >= 0 && fmt < MS_EXEC_FMT_COUNT_ ? fmt_names[fmt] : "?";
}

void ms_exec_parser_begin(ms_exec_parser *p, double now)
{
    p->now = now;
    p->line_no = 0;
    p->nagios = p->format == MS_EXEC_FMT_NAGIOS;
    p->nagios_perf = 0;
    p->status[0] = 0;
    p->samples = p->bad_lines = 0;
}

/* ---- helpers ---- */

/* A whole-token finite number ("12", "-1.5e3"); 0 on success. */
static int num(const char *s, double *out)
{
    if (!s || !*s || !strchr("0123456789+-.", *s)) return -1;
    if (strpbrk(s, "xXnN")) return -1; /* hex, nan, inf */
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Split off the next whitespace-separated token of *s (NUL-terminated in
 * place); NULL when none is left. */
static char *token(char **s)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) {
        *s = p;
        return NULL;
    }
    char *t = p;
    while (*p && *p != ' ' && *p != '\t') p++;
    if (*p) *p++ = 0;
    *s = p;
    return t;
}

static int bad(ms_exec_parser *p, ms_error *err, const char *fmt, const char *why)
{
    return ms_error_set(err, MS_EINVAL, "script %s line %u: %s%s%s", p->script, p->line_no,
                        fmt ? fmt : "", fmt ? ": " : "", why);
}

/* Intern prefix.name + the script's tags + tags[0..nt) and add one sample;
 * rate samples go through the shared rate state first (the first reading
 * gives none). A full series table drops the sample (counted there). */
static void emit(ms_exec_parser *p, const char *name, size_t nlen, ms_tag *tags, size_t nt,
                 ms_kind kind, double value, double ts, const char *msg, const char *level)
{
    char full[MAX_NAME + 256];
    size_t plen = p->prefix ? strlen(p->prefix) : 0;
    if (nlen > MAX_NAME) return;
    if (plen > 250) plen = 250;
    if (plen) {
        memcpy(full, p->prefix, plen);
        full[plen++] = '.';
    }
    memcpy(full + plen, name, nlen);
    ms_tag all[MAX_TAGS + 16];
    size_t n = 0;
    for (size_t i = 0; i < p->ntags && n < 16; i++) all[n++] = p->tags[i];
    for (size_t i = 0; i < nt && n < MAX_TAGS + 16; i++) all[n++] = tags[i];
    uint32_t id = ms_series_intern(full, plen + nlen, all, n);
    if (!id) return;
    if (kind == MS_KIND_RATE && !ms_rate_update(id, value, ts, &value)) return;
    if (ms_batch_add(p->out, id, kind, value, ts, msg, msg ? strlen(msg) : 0, level,
                     level ? strlen(level) : 0) == MS_OK)
        p->samples++;
}

static ms_tag tag(const char *k, const char *v)
{
    return (ms_tag){k, v, (uint32_t)strlen(k), (uint32_t)strlen(v)};
}

/* ---- PuyPuy: name value check_type stack|rate ---- */

static int puypuy(ms_exec_parser *p, char *line, ms_error *err)
{
    char *s = line, *name = token(&s), *val = token(&s), *type = token(&s), *how = token(&s);
    double v;
    if (!how || token(&s))
        return bad(p, err, "puypuy", "expected 'name value check_type stack|rate'");
    if (num(val, &v)) return bad(p, err, "puypuy", "value is not a number");
    int rate = !strcmp(how, "rate");
    if (!rate && strcmp(how, "stack") != 0)
        return bad(p, err, "puypuy", "the fourth field must be 'stack' or 'rate'");
    ms_tag t = tag("type", type);
    emit(p, name, strlen(name), &t, 1, rate ? MS_KIND_RATE : MS_KIND_GAUGE, v, p->now, NULL, NULL);
    return MS_OK;
}

static int is_puypuy(char *line)
{
    char copy[256];
    size_t n = strlen(line);
    if (n >= sizeof copy) return 0;
    memcpy(copy, line, n + 1);
    char *s = copy, *a = token(&s), *b = token(&s), *c = token(&s), *d = token(&s);
    double v;
    (void)a;
    return c && d && !token(&s) && !num(b, &v) && (!strcmp(d, "stack") || !strcmp(d, "rate"));
}

/* ---- Graphite: path[;tag=v...] value [ts] ---- */

static int graphite(ms_exec_parser *p, char *line, ms_error *err)
{
    char *s = line, *path = token(&s), *val = token(&s), *tsf = token(&s);
    double v, ts = p->now;
    if (!val || token(&s)) return bad(p, err, "graphite", "expected 'path value [timestamp]'");
    if (num(val, &v)) return bad(p, err, "graphite", "value is not a number");
    if (tsf && (num(tsf, &ts) || ts < 0)) return bad(p, err, "graphite", "bad timestamp");
    ms_tag tags[MAX_TAGS];
    size_t nt = 0;
    char *semi = strchr(path, ';');
    if (semi) *semi++ = 0;
    while (semi) { /* Graphite 1.1 tags: path;k=v;k2=v2 */
        char *next = strchr(semi, ';');
        if (next) *next++ = 0;
        char *eq = strchr(semi, '=');
        if (!eq || eq == semi || !eq[1] || nt == MAX_TAGS)
            return bad(p, err, "graphite", "bad tag (expected ;key=value)");
        *eq = 0;
        tags[nt++] = tag(semi, eq + 1);
        semi = next;
    }
    if (!*path) return bad(p, err, "graphite", "empty path");
    emit(p, path, strlen(path), tags, nt, MS_KIND_GAUGE, v, ts, NULL, NULL);
    return MS_OK;
}

static int is_graphite(const char *line)
{
    char copy[1100];
    size_t n = strlen(line);
    if (n >= sizeof copy) return 0;
    memcpy(copy, line, n + 1);
    char *s = copy, *a = token(&s), *b = token(&s), *c = token(&s);
    double v;
    if (!b || token(&s) || num(b, &v) || (c && num(c, &v))) return 0;
    char *semi = strchr(a, ';');
    return !memchr(a, '=', semi ? (size_t)(semi - a) : strlen(a)) && !strchr(a, ',');
}

/* ---- Influx line protocol ---- */

/* Scan an escaped identifier from *s up to an unescaped char of `stop` (or
 * the end), unescaping in place; returns its start and sets *stopc to the
 * char that ended it. */
static char *ident(char **s, const char *stop, char *stopc)
{
    char *r = *s, *w = *s, *start = *s;
    while (*r && !strchr(stop, *r)) {
        if (*r == '\\' && r[1]) r++;
        *w++ = *r++;
    }
    *stopc = *r;
    *s = *r ? r + 1 : r;
    *w = 0;
    return start;
}

static int influx(ms_exec_parser *p, char *line, ms_error *err)
{
    char *s = line, stop;
    char *meas = ident(&s, ", ", &stop);
    if (!*meas) return bad(p, err, "influx", "empty measurement");
    ms_tag tags[MAX_TAGS];
    size_t nt = 0;
    while (stop == ',') {
        char *k = ident(&s, "=", &stop);
        if (stop != '=' || !*k) return bad(p, err, "influx", "bad tag (expected key=value)");
        char *v = ident(&s, ", ", &stop);
        if (!*v) return bad(p, err, "influx", "empty tag value");
        if (nt == MAX_TAGS) return bad(p, err, "influx", "too many tags");
        tags[nt++] = tag(k, v);
    }
    if (stop != ' ') return bad(p, err, "influx", "no fields");
    while (*s == ' ') s++;
    /* fields: k=v[,k=v...]; string values may hold anything, quoted */
    struct field {
        char *k;
        double v;
    } fields[64];
    size_t nf = 0;
    int more = 1;
    while (more) {
        char *k = ident(&s, "=", &stop);
        if (stop != '=' || !*k) return bad(p, err, "influx", "bad field (expected key=value)");
        if (*s == '"') { /* a string field: skipped */
            s++;
            while (*s && *s != '"') s += (*s == '\\' && s[1]) ? 2 : 1;
            if (*s != '"') return bad(p, err, "influx", "unterminated string field");
            s++;
            if (*s && *s != ',' && *s != ' ') return bad(p, err, "influx", "junk after string");
            more = *s == ',';
            if (*s) s++;
            continue;
        }
        char *v = s;
        while (*s && *s != ',' && *s != ' ') s++;
        more = *s == ',';
        if (*s) *s++ = 0;
        double x;
        size_t vl = strlen(v);
        if (!strcmp(v, "t") || !strcmp(v, "T") || !strcmp(v, "true") || !strcmp(v, "True") ||
            !strcmp(v, "TRUE"))
            x = 1;
        else if (!strcmp(v, "f") || !strcmp(v, "F") || !strcmp(v, "false") || !strcmp(v, "False") ||
                 !strcmp(v, "FALSE"))
            x = 0;
        else {
            if (vl > 1 && (v[vl - 1] == 'i' || v[vl - 1] == 'u')) v[vl - 1] = 0;
            if (num(v, &x)) return bad(p, err, "influx", "field value is not a number");
        }
        if (nf == 64) return bad(p, err, "influx", "too many fields");
        fields[nf++] = (struct field){k, x};
    }
    double ts = p->now;
    char *tsf = token(&s);
    if (tsf) {
        double ns;
        if (num(tsf, &ns) || strpbrk(tsf, ".eE")) return bad(p, err, "influx", "bad timestamp");
        ts = ns / 1e9;
    }
    if (token(&s)) return bad(p, err, "influx", "junk after the timestamp");
    size_t ml = strlen(meas);
    for (size_t i = 0; i < nf; i++) {
        if (!strcmp(fields[i].k, "value")) {
            emit(p, meas, ml, tags, nt, MS_KIND_GAUGE, fields[i].v, ts, NULL, NULL);
            continue;
        }
        char name[MAX_NAME + 2];
        int n = snprintf(name, sizeof name, "%s.%s", meas, fields[i].k);
        if (n < 0 || (size_t)n >= sizeof name) return bad(p, err, "influx", "name too long");
        emit(p, name, (size_t)n, tags, nt, MS_KIND_GAUGE, fields[i].v, ts, NULL, NULL);
    }
    return MS_OK;
}

/* ---- collectd PUTVAL / PUTNOTIF ---- */

/* Next option `key=value` (value may be "quoted" with \ escapes); NULL when
 * the line is done, *bad set on a malformed one. */
static char *option(char **s, char **val, int *badp)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) return NULL;
    char *k = p;
    while (*p && *p != '=' && *p != ' ') p++;
    if (*p != '=' || p == k) {
        *badp = 1;
        return NULL;
    }
    *p++ = 0;
    char *w = p;
    *val = p;
    if (*p == '"') {
        *val = w = ++p;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1]) p++;
            *w++ = *p++;
        }
        if (*p != '"') {
            *badp = 1;
            return NULL;
        }
        p++;
        if (*p && *p != ' ') {
            *badp = 1;
            return NULL;
        }
    } else {
        while (*p && *p != ' ') p++;
        w = p;
    }
    if (*p) p++;
    *w = 0;
    *s = p;
    return k;
}

/* Data source names of a few multi-value collectd types (types.db). */
static const char *ds_name(const char *type, size_t i, size_t n)
{
    static const struct {
        const char *type, *ds[3];
    } t[] = {{"load", {"shortterm", "midterm", "longterm"}},
             {"if_octets", {"rx", "tx"}},
             {"if_packets", {"rx", "tx"}},
             {"if_errors", {"rx", "tx"}},
             {"if_dropped", {"rx", "tx"}},
             {"disk_octets", {"read", "write"}},
             {"disk_ops", {"read", "write"}},
             {"disk_time", {"read", "write"}},
             {"disk_merged", {"read", "write"}},
             {"io_octets", {"rx", "tx"}},
             {"io_packets", {"rx", "tx"}},
             {"ps_cputime", {"user", "syst"}}};
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
        if (!strcmp(type, t[k].type) && i < n && n <= 3 && t[k].ds[n - 1]) /* has n sources */
            return t[k].ds[i];
    return NULL;
}

static int collectd_counter_type(const char *type)
{
    static const char *const c[] = {"counter",    "derive",     "absolute",    "if_octets",
                                    "if_packets", "if_errors",  "if_dropped",  "disk_octets",
                                    "disk_ops",   "disk_time",  "disk_merged", "io_octets",
                                    "io_packets", "ps_cputime", "cpu",         NULL};
    for (int i = 0; c[i]; i++)
        if (!strcmp(type, c[i])) return 1;
    return 0;
}

static int putval(ms_exec_parser *p, char *s, ms_error *err)
{
    while (*s == ' ') s++;
    char *id = s;
    if (*s == '"') { /* quoted identifier */
        id = ++s;
        while (*s && *s != '"') s++;
        if (*s != '"') return bad(p, err, "collectd", "unterminated identifier");
        *s++ = 0;
    } else {
        while (*s && *s != ' ') s++;
        if (*s) *s++ = 0;
    }
    char *host = id, *plugin = strchr(id, '/'), *type = plugin ? strchr(plugin + 1, '/') : NULL;
    if (!type || strchr(type + 1, '/'))
        return bad(p, err, "collectd", "identifier must be host/plugin[-instance]/type[-instance]");
    *plugin++ = 0;
    *type++ = 0;
    char *pinst = strchr(plugin, '-'), *tinst = strchr(type, '-');
    if (pinst) *pinst++ = 0;
    if (tinst) *tinst++ = 0;
    if (!*host || !*plugin || !*type) return bad(p, err, "collectd", "empty part in identifier");
    ms_tag tags[3];
    size_t nt = 0;
    tags[nt++] = tag("host", host);
    if (pinst && *pinst) tags[nt++] = tag("plugin_instance", pinst);
    if (tinst && *tinst) tags[nt++] = tag("type_instance", tinst);
    ms_kind kind = collectd_counter_type(type) ? MS_KIND_COUNTER : MS_KIND_GAUGE;
    int lists = 0;
    char *t;
    while ((t = token(&s))) {
        char *eq = strchr(t, '=');
        if (eq) { /* option: interval=N */
            double iv;
            *eq = 0;
            if (strcmp(t, "interval") != 0 || num(eq + 1, &iv) || iv <= 0)
                return bad(p, err, "collectd", "unknown option or bad interval=");
            continue;
        }
        char *vals[16];
        size_t nv = 0;
        for (char *c = t, *f; c; c = f) { /* time:v1[:v2...] */
            f = strchr(c, ':');
            if (f) *f++ = 0;
            if (nv == 16) return bad(p, err, "collectd", "too many values");
            vals[nv++] = c;
        }
        double ts;
        if (nv < 2) return bad(p, err, "collectd", "expected time:value[:value...]");
        if (!strcmp(vals[0], "N"))
            ts = p->now;
        else if (num(vals[0], &ts) || ts < 0)
            return bad(p, err, "collectd", "time must be N or a unix time");
        size_t nval = nv - 1;
        for (size_t i = 0; i < nval; i++) {
            double v;
            if (!strcmp(vals[i + 1], "U")) continue; /* unknown value */
            if (num(vals[i + 1], &v)) return bad(p, err, "collectd", "value is not a number");
            char name[MAX_NAME + 32];
            const char *ds = ds_name(type, i, nval);
            int n = nval == 1 ? snprintf(name, sizeof name, "%s.%s", plugin, type)
                    : ds      ? snprintf(name, sizeof name, "%s.%s.%s", plugin, type, ds)
                              : snprintf(name, sizeof name, "%s.%s.%zu", plugin, type, i);
            if (n < 0 || (size_t)n >= sizeof name) return bad(p, err, "collectd", "name too long");
            emit(p, name, (size_t)n, tags, nt, kind, v, ts, NULL, NULL);
        }
        lists++;
    }
    if (!lists) return bad(p, err, "collectd", "PUTVAL without values");
    return MS_OK;
}

static int putnotif(ms_exec_parser *p, char *s, ms_error *err)
{
    char *k, *v = NULL, *sev = NULL, *msg = "", *host = NULL, *plugin = NULL, *type = NULL;
    char *pinst = NULL, *tinst = NULL;
    double ts = p->now;
    int b = 0;
    while ((k = option(&s, &v, &b))) {
        if (!strcmp(k, "severity"))
            sev = v;
        else if (!strcmp(k, "message"))
            msg = v;
        else if (!strcmp(k, "time")) {
            if (num(v, &ts) || ts < 0) return bad(p, err, "collectd", "bad time= in PUTNOTIF");
        } else if (!strcmp(k, "host"))
            host = v;
        else if (!strcmp(k, "plugin"))
            plugin = v;
        else if (!strcmp(k, "plugin_instance"))
            pinst = v;
        else if (!strcmp(k, "type"))
            type = v;
        else if (!strcmp(k, "type_instance"))
            tinst = v;
        else
            return bad(p, err, "collectd", "unknown PUTNOTIF option");
    }
    if (b) return bad(p, err, "collectd", "malformed option (expected key=value)");
    double h;
    const char *level;
    if (sev && !strcmp(sev, "okay"))
        h = 0, level = "OK";
    else if (sev && !strcmp(sev, "warning"))
        h = 8, level = "WARNING";
    else if (sev && !strcmp(sev, "failure"))
        h = 16, level = "FAILURE";
    else
        return bad(p, err, "collectd", "PUTNOTIF needs severity=okay|warning|failure");
    ms_tag tags[3];
    size_t nt = 0;
    if (host && *host) tags[nt++] = tag("host", host);
    if (pinst && *pinst) tags[nt++] = tag("plugin_instance", pinst);
    if (tinst && *tinst) tags[nt++] = tag("type_instance", tinst);
    char name[MAX_NAME + 32];
    int n = plugin && *plugin ? snprintf(name, sizeof name, "%s%s%s.notification", plugin,
                                         type && *type ? "." : "", type && *type ? type : "")
                              : snprintf(name, sizeof name, "%s.notification", p->stem);
    if (n < 0 || (size_t)n >= sizeof name) return bad(p, err, "collectd", "name too long");
    emit(p, name, (size_t)n, tags, nt, MS_KIND_HEALTH, h, ts, msg, level);
    return MS_OK;
}

/* ---- Nagios ---- */

/* Normalise a Nagios threshold or range ("10", "@10:20", "~:5", "10:") by
 * factor into out; 0 on success. */
static int norm_range(const char *r, double factor, char *out, size_t cap)
{
    size_t w = 0;
    const char *s = r;
    if (*s == '@') out[w++] = *s++;
    for (int part = 0; part < 2; part++) {
        const char *end = part == 0 ? strchr(s, ':') : s + strlen(s);
        if (!end) end = s + strlen(s);
        size_t n = (size_t)(end - s);
        char numb[64];
        double v;
        if (n == 1 && *s == '~' && part == 0) {
            if (w + 1 >= cap) return -1;
            out[w++] = '~';
        } else if (n) {
            if (n >= sizeof numb) return -1;
            memcpy(numb, s, n);
            numb[n] = 0;
            if (num(numb, &v)) return -1;
            int k = snprintf(out + w, cap - w, "%.15g", v * factor);
            if (k < 0 || (size_t)k >= cap - w) return -1;
            w += (size_t)k;
        }
        if (part == 0 && *end == ':') {
            if (w + 1 >= cap) return -1;
            out[w++] = ':';
            s = end + 1;
        } else {
            if (part == 0 && *end) return -1;
            break;
        }
    }
    out[w] = 0;
    return 0;
}

/* Unit of measurement -> factor to the base unit and its tag text. */
static int uom(const char *u, double *factor, const char **unit, int *counter)
{
    static const struct {
        const char *u;
        double f;
        const char *unit;
    } t[] = {{"s", 1, "s"},
             {"ms", 1e-3, "s"},
             {"us", 1e-6, "s"},
             {"ns", 1e-9, "s"},
             {"%", 1, "percent"},
             {"B", 1, "bytes"},
             {"KB", 1024.0, "bytes"},
             {"MB", 1048576.0, "bytes"},
             {"GB", 1073741824.0, "bytes"},
             {"TB", 1099511627776.0, "bytes"},
             {"KiB", 1024.0, "bytes"},
             {"MiB", 1048576.0, "bytes"},
             {"GiB", 1073741824.0, "bytes"},
             {"TiB", 1099511627776.0, "bytes"}};
    *factor = 1;
    *unit = NULL;
    *counter = 0;
    if (!*u) return 0;
    if (!strcmp(u, "c")) {
        *counter = 1;
        return 0;
    }
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!strcmp(u, t[i].u)) {
            *factor = t[i].f;
            *unit = t[i].unit;
            return 0;
        }
    }
    for (const char *c = u; *c; c++)
        if (!isalpha((unsigned char)*c)) return -1;
    *unit = u; /* an unknown unit: kept as it is */
    return 0;
}

/* Parse perfdata items `'label'=value[UOM];warn;crit;min;max ...`. */
static int perfdata(ms_exec_parser *p, char *s, ms_error *err)
{
    for (;;) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) return MS_OK;
        char *label = s, *w = s;
        if (*s == '\'') { /* quoted; '' is a quote */
            label = w = ++s;
            for (;;) {
                if (!*s) return bad(p, err, "nagios", "unterminated quoted label");
                if (*s == '\'' && s[1] == '\'') {
                    *w++ = '\'';
                    s += 2;
                } else if (*s == '\'') {
                    s++;
                    break;
                } else {
                    *w++ = *s++;
                }
            }
            if (*s != '=') return bad(p, err, "nagios", "expected '=' after the label");
        } else {
            while (*s && *s != '=' && *s != ' ') s++;
            w = s;
            if (*s != '=') return bad(p, err, "nagios", "perfdata item without '='");
        }
        *w = 0;
        s++;
        char *item = s;
        while (*s && *s != ' ' && *s != '\t') s++;
        if (*s) *s++ = 0;
        if (!*label) return bad(p, err, "nagios", "empty perfdata label");
        char *parts[5] = {0};
        int np = 0;
        for (char *c = item, *f; c && np < 5; c = f) {
            f = strchr(c, ';');
            if (f) *f++ = 0;
            parts[np++] = c;
        }
        char *val = parts[0];
        if (!strcmp(val, "U")) continue; /* undetermined */
        char *u = val;
        while (*u && strchr("0123456789+-.eE", *u)) u++;
        char unit_txt[16];
        snprintf(unit_txt, sizeof unit_txt, "%s", u);
        *u = 0;
        double v, factor;
        const char *unit;
        int counter;
        if (num(val, &v)) return bad(p, err, "nagios", "perfdata value is not a number");
        if (uom(unit_txt, &factor, &unit, &counter))
            return bad(p, err, "nagios", "bad unit of measurement");
        ms_tag tags[5];
        size_t nt = 0;
        char rng[4][64];
        static const char *const rk[] = {"warn", "crit", "min", "max"};
        if (unit) tags[nt++] = tag("unit", unit);
        for (int i = 1; i < np; i++) {
            if (!*parts[i]) continue;
            if (norm_range(parts[i], factor, rng[i - 1], sizeof rng[i - 1]))
                return bad(p, err, "nagios", "bad threshold or range");
            tags[nt++] = tag(rk[i - 1], rng[i - 1]);
        }
        for (char *c = label; *c; c++)
            if (*c == ' ' || *c == '\t') *c = '_';
        char name[MAX_NAME + 2];
        int n = snprintf(name, sizeof name, "%s.%s", p->stem, label);
        if (n < 0 || (size_t)n >= sizeof name) return bad(p, err, "nagios", "name too long");
        emit(p, name, (size_t)n, tags, nt, counter ? MS_KIND_COUNTER : MS_KIND_GAUGE, v * factor,
             p->now, NULL, NULL);
    }
}

/* The first line of Nagios output: status text [| perfdata]. */
static int nagios_first(ms_exec_parser *p, char *line, ms_error *err)
{
    char *bar = strchr(line, '|');
    if (bar) *bar = 0;
    size_t n = strlen(line);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
    if (n >= sizeof p->status) n = sizeof p->status - 1;
    memcpy(p->status, line, n);
    p->status[n] = 0;
    return bar ? perfdata(p, bar + 1, err) : MS_OK;
}

/* Does the text after the first '|' parse as perfdata? (auto-detection) */
static int looks_nagios(const char *line)
{
    const char *bar = strchr(line, '|');
    if (!bar) return 0;
    const char *eq = strchr(bar, '=');
    return eq && eq > bar + 1 && bar[1 + strspn(bar + 1, " ")] != '=';
}

/* ---- dispatch ---- */

int ms_exec_parse_line(ms_exec_parser *p, char *line, size_t len, ms_error *err)
{
    p->line_no++;
    if (len && line[len - 1] == '\r') line[--len] = 0;
    if (strlen(line) != len) {
        p->bad_lines++;
        return bad(p, err, NULL, "NUL byte in line");
    }
    int first = p->line_no == 1;
    size_t lead = strspn(line, " \t");
    int blank = !line[lead];
    int rc = MS_OK;
    if (p->nagios || (first && p->format == MS_EXEC_FMT_AUTO &&
                      (!strncmp(p->stem, "check_", 6) ||
                       (looks_nagios(line) && strncmp(line + lead, "PUT", 3) != 0)))) {
        if (first) {
            p->nagios = 1;
            rc = nagios_first(p, line, err);
        } else if (p->nagios_perf) {
            rc = perfdata(p, line, err);
        } else if (strchr(line, '|')) { /* long text | perfdata, more perfdata lines follow */
            p->nagios_perf = 1;
            rc = perfdata(p, strchr(line, '|') + 1, err);
        }
        if (rc) p->bad_lines++;
        return rc;
    }
    if (blank || line[lead] == '#') return MS_OK;
    line += lead;
    int fmt = p->format;
    if (fmt == MS_EXEC_FMT_AUTO) {
        if (!strncmp(line, "PUTVAL ", 7) || !strncmp(line, "PUTNOTIF ", 9))
            fmt = MS_EXEC_FMT_COLLECTD;
        else if (is_puypuy(line))
            fmt = MS_EXEC_FMT_PUYPUY;
        else if (is_graphite(line))
            fmt = MS_EXEC_FMT_GRAPHITE;
        else if (strchr(line, '=') && strchr(line, ' '))
            fmt = MS_EXEC_FMT_INFLUX;
        else {
            p->bad_lines++;
            return bad(p, err, NULL, "not PuyPuy, Nagios, collectd, Influx or Graphite output");
        }
    }
    switch (fmt) {
    case MS_EXEC_FMT_PUYPUY:
        rc = puypuy(p, line, err);
        break;
    case MS_EXEC_FMT_GRAPHITE:
        rc = graphite(p, line, err);
        break;
    case MS_EXEC_FMT_INFLUX:
        rc = influx(p, line, err);
        break;
    default: /* collectd */
        if (!strncmp(line, "PUTVAL ", 7))
            rc = putval(p, line + 7, err);
        else if (!strncmp(line, "PUTNOTIF ", 9))
            rc = putnotif(p, line + 9, err);
        else
            rc = bad(p, err, "collectd", "expected PUTVAL or PUTNOTIF");
    }
    if (rc) p->bad_lines++;
    return rc;
}

void ms_exec_parser_end(ms_exec_parser *p, int exit_status, int term_signal, const char *why)
{
    if (!p->nagios) return;
    static const char *const levels[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
    static const double health[] = {0, 8, 16, 16};
    int code = term_signal || exit_status < 0 || exit_status > 3 ? 3 : exit_status;
    char msg[512];
    if (why && *why)
        snprintf(msg, sizeof msg, "%s%s%s", why, p->status[0] ? ": " : "", p->status);
    else if (code == 3 && exit_status != 3)
        snprintf(msg, sizeof msg, "exit status %d%s%s", exit_status, p->status[0] ? ": " : "",
                 p->status);
    else
        snprintf(msg, sizeof msg, "%s", p->status);
    char name[MAX_NAME];
    int n = snprintf(name, sizeof name, "%s.health", p->stem);
    if (n > 0 && (size_t)n < sizeof name)
        emit(p, name, (size_t)n, NULL, 0, MS_KIND_HEALTH, health[code], p->now, msg, levels[code]);
}
