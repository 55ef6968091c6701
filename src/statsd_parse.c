/*
 * statsd_parse.c - StatsD (Etsy statsd 0.9 exactly) and DogStatsD line
 * parsing (see ms_statsd.h and docs/statsd.md); the JSON parser is in
 * statsd_json.c. Pure functions: no allocation, no globals; scratch space
 * lives on the stack.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_sample.h"
#include "ms_statsd.h"
#include "statsd_int.h"

/* ---- JavaScript Number() ---- */

static int js_ws(unsigned char c)
{
    return c == ' ' || (c >= 9 && c <= 13);
}

static int all_digits(const char *s, size_t n, int base)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        if (d >= base) return 0;
    }
    return 1;
}

/* Is s[0..n) a StrDecimalLiteral without sign (digits, dot, exponent)? */
static int js_decimal(const char *s, size_t n)
{
    size_t i = 0, d = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, d++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, d++;
    }
    if (!d) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t e = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, e++;
        if (!e) return 0;
    }
    return i == n;
}

int ms_statsd_js_number(const char *s, size_t len, double *out)
{
    while (len && js_ws((unsigned char)*s)) s++, len--;
    while (len && js_ws((unsigned char)s[len - 1])) len--;
    if (!len) {
        *out = 0;
        return 0;
    }
    if (len > 2 && s[0] == '0') {
        int base = 0;
        char c = s[1];
        if (c == 'x' || c == 'X') base = 16;
        if (c == 'o' || c == 'O') base = 8;
        if (c == 'b' || c == 'B') base = 2;
        if (base) {
            if (!all_digits(s + 2, len - 2, base)) return -1;
            double v = 0;
            for (size_t i = 2; i < len; i++) {
                int ch = (unsigned char)s[i];
                int d = ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
                v = v * base + d;
            }
            *out = v;
            return 0;
        }
    }
    /* fast path: an integer of up to 15 digits is exact without strtod */
    {
        size_t i = (*s == '-' || *s == '+') ? 1 : 0;
        if (len > i && len - i <= 15) {
            double v = 0;
            size_t j = i;
            while (j < len && s[j] >= '0' && s[j] <= '9') v = v * 10 + (s[j++] - '0');
            if (j == len) {
                *out = *s == '-' ? -v : v;
                return 0;
            }
        }
    }
    const char *b = s;
    size_t n = len;
    int neg = 0;
    if (*b == '+' || *b == '-') neg = *b == '-', b++, n--;
    if (n == 8 && !memcmp(b, "Infinity", 8)) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (!js_decimal(b, n)) return -1;
    char tmp[512];
    char *t = len < sizeof tmp ? tmp : malloc(len + 1);
    if (!t) return -1;
    memcpy(t, s, len);
    t[len] = 0;
    *out = strtod(t, NULL);
    if (t != tmp) free(t);
    return 0;
}

/* ---- key sanitizing (Etsy 0.9: \s+ -> _, / -> -, keep [A-Za-z0-9_.;=-]) ---- */

/* Bytes of the JavaScript whitespace character at p (ASCII or the UTF-8 of
 * U+00A0, U+1680, U+2000-200A, U+2028/9, U+202F, U+205F, U+3000, U+FEFF), or 0. */
static size_t ws_len(const unsigned char *p, const unsigned char *e)
{
    if (js_ws(*p)) return 1;
    size_t n = (size_t)(e - p);
    if (n >= 2 && p[0] == 0xC2 && p[1] == 0xA0) return 2;
    if (n < 3) return 0;
    if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return 3;
    if (p[0] == 0xE2 && p[1] == 0x80 &&
        ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF))
        return 3;
    if (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return 3;
    if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 3;
    if (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) return 3;
    return 0;
}

static int key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == ';' || c == '=';
}

/* key_char as a table: the sanitizer's fast path */
static unsigned char key_ok[256];

static void key_table(void)
{
    if (key_ok['a']) return;
    for (int c = 0; c < 256; c++) key_ok[c] = (unsigned char)key_char((unsigned char)c);
}

/* Sanitize s[0..n) into out (at least n bytes); returns the new length. */
size_t ms_sd_sanitize(const char *s, size_t n, char *out)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    size_t o = 0;
    key_table();
    while (p < e) {
        if (key_ok[*p]) { /* the common case */
            out[o++] = (char)*p++;
            continue;
        }
        size_t w = ws_len(p, e);
        if (w) {
            while (p < e && (w = ws_len(p, e))) p += w;
            out[o++] = '_';
            continue;
        }
        if (*p == '/')
            out[o++] = '-';
        else if (key_char(*p))
            out[o++] = (char)*p;
        p++;
    }
    return o;
}

/* ---- lines ---- */

typedef struct span {
    const char *p;
    size_t n;
} span;

static int span_is(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && !memcmp(s.p, lit, n);
}

static span trim(span s)
{
    while (s.n && js_ws((unsigned char)*s.p)) s.p++, s.n--;
    while (s.n && js_ws((unsigned char)s.p[s.n - 1])) s.n--;
    return s;
}

static int is_number(span s, double *v)
{
    double tmp;
    return s.n && ms_statsd_js_number(s.p, s.n, v ? v : &tmp) == 0;
}

/* Etsy's isValidSampleRate plus the value it then reads (/^@([\d\.]+)/). */
static int sample_rate(span f, double *rate)
{
    if (f.n < 2 || f.p[0] != '@') return -1;
    span r = {f.p + 1, f.n - 1};
    if (!is_number(r, NULL) || r.p[0] == '-') return -1;
    size_t k = 0;
    while (k < r.n && ((r.p[k] >= '0' && r.p[k] <= '9') || r.p[k] == '.')) k++;
    if (!k) return -1; /* Etsy throws here ("@+1", "@ 1"); we count a bad line */
    char tmp[64];
    if (k >= sizeof tmp) k = sizeof tmp - 1;
    memcpy(tmp, r.p, k);
    tmp[k] = 0;
    *rate = strtod(tmp, NULL);
    return 0;
}

#define MAX_FIELDS 16
#define MAX_BITS   1024

typedef struct bit {
    const char *p;
    size_t n;
    span f[MAX_FIELDS];
    int nf;
} bit;

/* Split one bit into '|' fields; in DogStatsD mode a field from the third on
 * that starts with "c:" (container) may hold ':' - the caller found its end. */
static void split_fields(bit *b)
{
    b->nf = 0;
    const char *p = b->p, *e = b->p + b->n;
    while (b->nf < MAX_FIELDS) {
        const char *q = memchr(p, '|', (size_t)(e - p));
        if (!q) q = e;
        b->f[b->nf++] = (span){p, (size_t)(q - p)};
        if (q == e) break;
        p = q + 1;
    }
}

/* Split the metric part after the key into ':'-separated bits. */
static int split_bits(const char *p, const char *e, int dog, bit *bits, int cap)
{
    int n = 0;
    const char *start = p;
    int field = 0, in_container = 0;
    for (const char *c = p;; c++) {
        if (c == e || (*c == ':' && !in_container)) {
            if (n == cap) return -1;
            bits[n].p = start;
            bits[n].n = (size_t)(c - start);
            n++;
            if (c == e) break;
            start = c + 1;
            field = 0;
            continue;
        }
        if (*c == '|') {
            field++;
            in_container = dog && field >= 2 && e - c > 2 && c[1] == 'c' && c[2] == ':';
        }
    }
    return n;
}

typedef struct line_ctx {
    const ms_sd_sink *sink;
    ms_sd_parse_stats *st;
    const char *line;
    size_t line_len;
} line_ctx;

static void bad(line_ctx *c, const char *reason)
{
    c->st->bad++;
    if (c->sink->bad) c->sink->bad(c->sink->ud, c->line, c->line_len, reason);
}

/* Apply the value `v` with the type and options of `tb` (its fields 1..). */
static void one_value(line_ctx *c, ms_sd_metric *m, span v, const bit *tb, int dog)
{
    span type = tb->f[1];
    double rate = 1;
    m->ts = 0;
    m->container = NULL;
    m->container_len = 0;
    for (int i = 2; i < tb->nf; i++) {
        span f = tb->f[i];
        if (!dog) {
            if (i == 2 && sample_rate(f, &rate) != 0) return bad(c, "bad sample rate");
            continue;
        }
        if (f.n && f.p[0] == '@') {
            if (sample_rate(f, &rate) != 0) return bad(c, "bad sample rate");
        } else if (f.n > 1 && f.p[0] == 'T') {
            double ts;
            if (!is_number((span){f.p + 1, f.n - 1}, &ts) || !(ts > 0)) return bad(c, "bad |T");
            m->ts = ts;
        } else if (f.n >= 2 && f.p[0] == 'c' && f.p[1] == ':') {
            m->container = f.p + 2;
            m->container_len = f.n - 2;
        } else if (i == 2) {
            return bad(c, "bad sample rate");
        }
    }
    /* Etsy's is_valid_packet switches on the type as written ... */
    double num = 0;
    if (span_is(type, "s")) {
    } else if (span_is(type, "ms")) {
        if (!is_number(v, &num) || !(num >= 0)) return bad(c, "bad timer value");
    } else if (!is_number(v, &num)) {
        return bad(c, "bad value");
    }
    /* ... and then on the type trimmed */
    span t = trim(type);
    m->rate = rate;
    m->delta = 0;
    m->member = NULL;
    m->member_len = 0;
    if (span_is(t, "ms") || (dog && (span_is(t, "h") || span_is(t, "d")))) {
        m->type = MS_SD_TIMER;
        m->value = num;
    } else if (span_is(t, "g")) {
        m->type = MS_SD_GAUGE;
        m->value = num;
        m->delta = v.n && (v.p[0] == '+' || v.p[0] == '-');
    } else if (span_is(t, "s")) {
        m->type = MS_SD_SET;
        m->member = v.n ? v.p : "0";
        m->member_len = v.n ? v.n : 1;
        m->value = 0;
    } else {
        m->type = MS_SD_COUNTER;
        m->value = num;
    }
    c->st->metrics++;
    c->sink->metric(c->sink->ud, m);
}

/* One optional field of an event or service check: d:<ts>, h:<host> or
 * #<tags> go into ev. Returns -1 for a d: that is not a number, else 0. */
static int event_field(span f, ms_sd_event *ev)
{
    if (f.n > 2 && f.p[0] == 'd' && f.p[1] == ':') {
        if (!is_number((span){f.p + 2, f.n - 2}, &ev->ts)) return -1;
    } else if (f.n > 2 && f.p[0] == 'h' && f.p[1] == ':') {
        ev->host = f.p + 2;
        ev->host_len = f.n - 2;
    } else if (f.n > 1 && f.p[0] == '#') {
        ev->tags = f.p + 1;
        ev->tags_len = f.n - 1;
    }
    return 0;
}

/* _e{tl,xl}:title|text|d:ts|h:host|p:prio|t:type|#tags */
static void parse_event(line_ctx *c, const char *s, size_t n)
{
    const char *e = s + n, *p = s + 3;
    char *end;
    unsigned long tl = strtoul(p, &end, 10);
    if (end == p || end >= e || *end != ',') return bad(c, "bad event header");
    p = end + 1;
    unsigned long xl = strtoul(p, &end, 10);
    if (end == p || end + 1 >= e || end[0] != '}' || end[1] != ':')
        return bad(c, "bad event header");
    p = end + 2;
    size_t avail = (size_t)(e - p);
    if (tl == 0 || tl >= avail || xl > avail - tl - 1 || p[tl] != '|')
        return bad(c, "event lengths do not match");
    ms_sd_event ev = {0};
    ev.kind = MS_KIND_EVENT;
    ev.name = "event";
    ev.name_len = 5;
    ev.value = 1;
    const char *title = p, *text = p + tl + 1;
    char msg[MS_SD_MAX_LINE];
    size_t ml = 0;
    memcpy(msg, title, tl);
    ml = tl;
    if (xl) {
        msg[ml++] = '\n';
        memcpy(msg + ml, text, xl);
        ml += xl;
    }
    ev.msg = msg;
    ev.msg_len = ml;
    p = text + xl;
    while (p < e) {
        if (*p != '|') return bad(c, "bad event field");
        p++;
        const char *q = memchr(p, '|', (size_t)(e - p));
        if (!q) q = e;
        /* p:, t:, s:, k: are accepted and not kept */
        if (event_field((span){p, (size_t)(q - p)}, &ev) < 0) return bad(c, "bad event d:");
        p = q;
    }
    c->st->events++;
    if (c->sink->event) c->sink->event(c->sink->ud, &ev);
}

/* _sc|name|status|d:ts|h:host|#tags|m:message */
static void parse_check(line_ctx *c, const char *s, size_t n)
{
    static const char *levels[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
    static const double values[] = {0, 8, 16, 16};
    const char *e = s + n, *p = s + 4;
    const char *q = memchr(p, '|', (size_t)(e - p));
    if (!q || q == p) return bad(c, "service check without a name");
    ms_sd_event ev = {0};
    ev.kind = MS_KIND_HEALTH;
    ev.name = p;
    ev.name_len = (size_t)(q - p);
    p = q + 1;
    if (p >= e || *p < '0' || *p > '3' || (p + 1 < e && p[1] != '|'))
        return bad(c, "service check status must be 0, 1, 2 or 3");
    ev.value = values[*p - '0'];
    ev.level = levels[*p - '0'];
    p++;
    while (p < e) {
        p++; /* the '|' */
        if (e - p >= 2 && p[0] == 'm' && p[1] == ':') {
            ev.msg = p + 2;
            ev.msg_len = (size_t)(e - p - 2);
            break;
        }
        q = memchr(p, '|', (size_t)(e - p));
        if (!q) q = e;
        if (event_field((span){p, (size_t)(q - p)}, &ev) < 0) return bad(c, "bad check d:");
        p = q;
    }
    c->st->events++;
    if (c->sink->event) c->sink->event(c->sink->ud, &ev);
}

/* One line (no newline in it). */
static void parse_line(const char *s, size_t n, int dog, const ms_sd_sink *sink,
                       ms_sd_parse_stats *st)
{
    line_ctx c = {sink, st, s, n};
    st->lines++;
    if (n > MS_SD_MAX_LINE) return bad(&c, "line too long");
    if (dog && n >= 3 && !memcmp(s, "_e{", 3)) return parse_event(&c, s, n);
    if (dog && n >= 4 && !memcmp(s, "_sc|", 4)) return parse_check(&c, s, n);
    ms_sd_metric m = {0};
    /* tags: Etsy splits on "|#" first; DogStatsD tags end at the next '|' */
    char part[MS_SD_MAX_LINE];
    const char *mp = s;
    size_t mn = n;
    const char *h = memmem(s, n, "|#", 2);
    if (h) {
        const char *ts = h + 2, *te = s + n;
        const char *rest = te;
        if (dog) {
            const char *q = memchr(ts, '|', (size_t)(te - ts));
            if (q) te = rest = q;
        } else {
            for (const char *q = ts; q + 1 < te; q++)
                if (q[0] == '|' && q[1] == '#') {
                    te = q;
                    break;
                }
        }
        if (te > ts) {
            m.tags = ts;
            m.tags_len = (size_t)(te - ts);
        }
        size_t a = (size_t)(h - s), b = (size_t)(s + n - rest);
        memcpy(part, s, a);
        memcpy(part + a, rest, b);
        mp = part;
        mn = a + b;
    }
    const char *colon = memchr(mp, ':', mn);
    if (!colon) return bad(&c, "no value");
    char key[MS_SD_MAX_LINE];
    m.key = key;
    m.key_len = ms_sd_sanitize(mp, (size_t)(colon - mp), key);
    if (!m.key_len) return bad(&c, "empty key");
    /* bits on the stack for the usual line, on the heap for one packing
     * many values (a ':' count bounds them); never thread-local arrays,
     * which every thread would carry whole */
    bit small[8], *bits = small;
    int cap = 0;
    for (const char *q = colon + 1; q && cap < MAX_BITS; cap++)
        q = memchr(q, ':', (size_t)(mp + mn - q)), q = q ? q + 1 : NULL;
    if (cap > (int)(sizeof small / sizeof *small) && !(bits = malloc((size_t)cap * sizeof *bits)))
        return bad(&c, "out of memory");
    if (bits == small) cap = (int)(sizeof small / sizeof *small);
    int nb = split_bits(colon + 1, mp + mn, dog, bits, cap);
    if (nb < 0) {
        if (bits != small) free(bits);
        return bad(&c, "too many values in one line");
    }
    for (int i = 0; i < nb; i++) split_fields(&bits[i]);
    for (int i = 0; i < nb; i++) {
        const bit *tb = &bits[i];
        if (tb->nf < 2 && dog) { /* value packing: k:1:2:3|d */
            int j = i + 1;
            while (j < nb && bits[j].nf < 2) j++;
            if (j < nb) tb = &bits[j];
        }
        if (tb->nf < 2) {
            bad(&c, "no type");
            continue;
        }
        one_value(&c, &m, bits[i].f[0], tb, dog);
    }
    if (bits != small) free(bits);
}

void ms_statsd_parse(const char *buf, size_t len, int dogstatsd, const ms_sd_sink *sink,
                     ms_sd_parse_stats *st)
{
    const char *p = buf, *e = buf + len;
    while (p < e) {
        const char *q = memchr(p, '\n', (size_t)(e - p));
        if (!q) q = e;
        if (q > p) parse_line(p, (size_t)(q - p), dogstatsd, sink, st);
        p = q + 1;
    }
}
