/*
 * collectd_parse.c - collectd's binary network protocol: the packet parser
 * (parts, strict bounds), the Sign (HMAC-SHA256) and Encrypt (AES-256-OFB,
 * SHA-1 check) levels through OpenSSL's libcrypto, and types.db files.
 *
 * A packet is a sequence of parts: type (u16 BE), length (u16 BE, header
 * included), body. String parts end in NUL; number parts are 8 bytes (BE);
 * a values part is a count n (u16 BE), n type bytes and n 8-byte values
 * (GAUGE little-endian, the others BE). State (host, plugin, time, ...)
 * carries from part to part; a values part hands over one value list, a
 * message part one notification. A signature part covers the rest of the
 * packet; an encrypted part holds a whole packet of its own. Both start a
 * fresh state, as in collectd's src/network.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "ms_collectd.h"

#define PART_HDR     4
#define SIG_PART_MIN (PART_HDR + 32) /* header + HMAC-SHA256; the user follows */
#define MAX_DEPTH    3

typedef struct pstate {
    char host[MS_CD_NAME_MAX], plugin[MS_CD_NAME_MAX], plugin_instance[MS_CD_NAME_MAX],
        type[MS_CD_NAME_MAX], type_instance[MS_CD_NAME_MAX];
    double time, interval;
    int severity;
} pstate;

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static double rd_gauge(const uint8_t *p) /* little-endian IEEE double */
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* A string part body into out; 0, or -1 when it has no NUL at its end, a
 * NUL inside, or does not fit. */
static int get_string(const uint8_t *body, size_t n, char *out)
{
    if (n < 1 || body[n - 1] != 0 || n > MS_CD_NAME_MAX) return -1;
    if (memchr(body, 0, n - 1)) return -1;
    memcpy(out, body, n);
    return 0;
}

static void vl_from(const pstate *s, ms_cd_vl *vl, int sec)
{
    memset(vl, 0, sizeof *vl);
    vl->host = s->host;
    vl->plugin = s->plugin;
    vl->plugin_instance = s->plugin_instance;
    vl->type = s->type;
    vl->type_instance = s->type_instance;
    vl->time = s->time;
    vl->interval = s->interval;
    vl->security = sec;
    vl->severity = s->severity;
}

static int parse_buf(const uint8_t *buf, size_t len, const ms_cd_sink *k, ms_cd_stats *st,
                     const char **reason, int sec, int depth);

/* A signature part at buf (the packet's rest is len bytes, the part plen):
 * verify the HMAC over the user and the rest, then parse the rest as signed.
 * Returns the parse result; *consumed is len (the rest is used up). */
static int do_signed(const uint8_t *buf, size_t len, size_t plen, const ms_cd_sink *k,
                     ms_cd_stats *st, const char **reason, int depth)
{
    if (plen < SIG_PART_MIN + 1) {
        *reason = "signature part too short";
        return MS_EINVAL;
    }
    char user[MS_CD_NAME_MAX];
    size_t ulen = plen - SIG_PART_MIN;
    if (ulen >= sizeof user || memchr(buf + SIG_PART_MIN, 0, ulen)) {
        *reason = "bad user name in signature part";
        return MS_EINVAL;
    }
    memcpy(user, buf + SIG_PART_MIN, ulen);
    user[ulen] = 0;
    const char *pw = k->password ? k->password(k->ud, user) : NULL;
    if (!pw) {
        if (k->level == MS_CD_SEC_NONE && !k->password) /* no auth: take the data unsigned */
            return parse_buf(buf + plen, len - plen, k, st, reason, MS_CD_SEC_NONE, depth + 1);
        if (st) st->auth++;
        *reason = "signed by an unknown user";
        return MS_EFULL;
    }
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mlen = 0;
    if (!HMAC(EVP_sha256(), pw, (int)strlen(pw), buf + SIG_PART_MIN, len - SIG_PART_MIN, mac,
              &mlen) ||
        mlen != 32 || CRYPTO_memcmp(mac, buf + PART_HDR, 32) != 0) {
        if (st) st->auth++;
        *reason = "bad signature";
        return MS_EFULL;
    }
    return parse_buf(buf + plen, len - plen, k, st, reason, MS_CD_SEC_SIGN, depth + 1);
}

/* AES-256-OFB with key SHA-256(password); in and out may not overlap. */
static int ofb(const char *pw, const uint8_t iv[16], const uint8_t *in, size_t n, uint8_t *out)
{
    uint8_t key[32];
    SHA256((const unsigned char *)pw, strlen(pw), key);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ol = 0, fl = 0,
        ok = c && n <= 0x7fffffff && EVP_DecryptInit_ex(c, EVP_aes_256_ofb(), NULL, key, iv) == 1 &&
             EVP_DecryptUpdate(c, out, &ol, in, (int)n) == 1 &&
             EVP_DecryptFinal_ex(c, out + ol, &fl) == 1 && (size_t)(ol + fl) == n;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(key, sizeof key);
    return ok ? 0 : -1;
}

/* An encrypted part (whole, plen bytes): decrypt, check the SHA-1 of the
 * plaintext, parse it as encrypted. */
static int do_encrypted(const uint8_t *p, size_t plen, const ms_cd_sink *k, ms_cd_stats *st,
                        const char **reason, int depth)
{
    if (plen < PART_HDR + 2) {
        *reason = "encrypted part too short";
        return MS_EINVAL;
    }
    size_t ulen = rd16(p + PART_HDR);
    size_t off = PART_HDR + 2 + ulen;
    if (ulen == 0 || ulen >= MS_CD_NAME_MAX || off + 16 + 20 > plen ||
        memchr(p + PART_HDR + 2, 0, ulen)) {
        *reason = "bad user name or length in encrypted part";
        return MS_EINVAL;
    }
    char user[MS_CD_NAME_MAX];
    memcpy(user, p + PART_HDR + 2, ulen);
    user[ulen] = 0;
    const char *pw = k->password ? k->password(k->ud, user) : NULL;
    if (!pw) {
        if (st) st->auth++;
        *reason = k->password ? "encrypted by an unknown user" : "encrypted data but no auth_file";
        return MS_EFULL;
    }
    const uint8_t *iv = p + off;
    size_t n = plen - off - 16;
    uint8_t *plain = malloc(n);
    if (!plain) {
        *reason = "out of memory";
        return MS_ENOMEM;
    }
    uint8_t sum[20];
    int rc;
    if (ofb(pw, iv, p + off + 16, n, plain) != 0) {
        *reason = "decryption failed";
        rc = MS_EFULL;
    } else if (SHA1(plain + 20, n - 20, sum), CRYPTO_memcmp(sum, plain, 20) != 0) {
        if (st) st->auth++;
        *reason = "bad checksum in encrypted part (wrong password?)";
        rc = MS_EFULL;
    } else {
        rc = parse_buf(plain + 20, n - 20, k, st, reason, MS_CD_SEC_ENCRYPT, depth + 1);
    }
    free(plain);
    return rc;
}

/* Parse parts from buf[0..len) with a fresh state at security level sec. */
static int parse_buf(const uint8_t *buf, size_t len, const ms_cd_sink *k, ms_cd_stats *st,
                     const char **reason, int sec, int depth)
{
    pstate s;
    memset(&s, 0, sizeof s);
    if (depth > MAX_DEPTH) {
        *reason = "security parts nested too deep";
        return MS_EINVAL;
    }
    int result = MS_OK;
    size_t off = 0;
    while (off < len) {
        if (len - off < PART_HDR) {
            *reason = "truncated part header";
            return MS_EINVAL;
        }
        const uint8_t *p = buf + off;
        uint16_t type = rd16(p);
        size_t plen = rd16(p + 2);
        if (plen < PART_HDR) {
            *reason = "part length below 4";
            return MS_EINVAL;
        }
        if (plen > len - off) {
            *reason = "part runs past the end of the packet";
            return MS_EINVAL;
        }
        const uint8_t *body = p + PART_HDR;
        size_t blen = plen - PART_HDR;
        char *str = NULL;
        switch (type) {
        case MS_CD_HOST:
            str = s.host;
            break;
        case MS_CD_PLUGIN:
            str = s.plugin;
            break;
        case MS_CD_PLUGIN_INSTANCE:
            str = s.plugin_instance;
            break;
        case MS_CD_TYPE:
            str = s.type;
            break;
        case MS_CD_TYPE_INSTANCE:
            str = s.type_instance;
            break;
        case MS_CD_TIME:
        case MS_CD_TIME_HR:
        case MS_CD_INTERVAL:
        case MS_CD_INTERVAL_HR:
        case MS_CD_SEVERITY: {
            if (blen != 8) {
                *reason = "number part length is not 12";
                return MS_EINVAL;
            }
            uint64_t v = rd64(body);
            double hr = (double)v / 1073741824.0; /* 2^-30 s units */
            if (type == MS_CD_TIME) s.time = (double)v;
            if (type == MS_CD_TIME_HR) s.time = hr;
            if (type == MS_CD_INTERVAL) s.interval = (double)v;
            if (type == MS_CD_INTERVAL_HR) s.interval = hr;
            if (type == MS_CD_SEVERITY) s.severity = (int)(v & 0xff);
            break;
        }
        case MS_CD_VALUES: {
            if (blen < 2) {
                *reason = "values part too short";
                return MS_EINVAL;
            }
            size_t n = rd16(body);
            if (n == 0 || blen != 2 + 9 * n) {
                *reason = "values part length is not 6+9n";
                return MS_EINVAL;
            }
            if (n > MS_CD_VALUES_MAX) {
                *reason = "more than 64 values in a values part";
                return MS_EINVAL;
            }
            if (!*s.plugin || !*s.type) {
                *reason = "values part before plugin and type";
                return MS_EINVAL;
            }
            ms_cd_value v[MS_CD_VALUES_MAX];
            for (size_t i = 0; i < n; i++) {
                const uint8_t *d = body + 2 + n + 8 * i;
                v[i] = (ms_cd_value){.type = body[2 + i]};
                switch (body[2 + i]) {
                case MS_CD_COUNTER:
                case MS_CD_ABSOLUTE:
                    v[i].u = rd64(d);
                    break;
                case MS_CD_DERIVE:
                    v[i].i = (int64_t)rd64(d);
                    break;
                case MS_CD_GAUGE:
                    v[i].gauge = rd_gauge(d);
                    break;
                default:
                    *reason = "unknown data source type in values part";
                    return MS_EINVAL;
                }
            }
            if (sec < k->level) {
                if (st) st->insecure++;
                break;
            }
            ms_cd_vl vl;
            vl_from(&s, &vl, sec);
            vl.n = n;
            vl.values = v;
            if (st) st->values++;
            if (k->values) k->values(k->ud, &vl);
            break;
        }
        case MS_CD_MESSAGE: {
            char msg[1025];
            if (blen < 1 || blen > sizeof msg || body[blen - 1] != 0) {
                *reason = "bad message part (no NUL at its end, or over 1024 bytes)";
                return MS_EINVAL;
            }
            memcpy(msg, body, blen);
            if (sec < k->level) {
                if (st) st->insecure++;
                break;
            }
            ms_cd_vl vl;
            vl_from(&s, &vl, sec);
            vl.message = msg;
            if (st) st->notifications++;
            if (k->notification) k->notification(k->ud, &vl);
            break;
        }
        case MS_CD_SIGN_SHA256:
            return do_signed(p, len - off, plen, k, st, reason, depth);
        case MS_CD_ENCR_AES256: {
            int rc = do_encrypted(p, plen, k, st, reason, depth);
            if (rc == MS_EINVAL || rc == MS_ENOMEM) return rc;
            if (rc != MS_OK) result = rc; /* a dropped part; go on with the rest */
            break;
        }
        default:
            break; /* unknown parts are skipped by length */
        }
        if (str && get_string(body, blen, str) != 0) {
            *reason = "bad string part (no NUL at its end, a NUL inside, or over 127 bytes)";
            return MS_EINVAL;
        }
        off += plen;
    }
    return result;
}

int ms_cd_parse(const uint8_t *buf, size_t len, const ms_cd_sink *sink, ms_cd_stats *st,
                const char **reason)
{
    const char *r = NULL;
    int rc = parse_buf(buf, len, sink, st, &r, MS_CD_SEC_NONE, 0);
    if (reason) *reason = r;
    return rc;
}

long ms_cd_sign(const uint8_t *payload, size_t len, const char *user, const char *password,
                uint8_t *out, size_t cap)
{
    size_t ulen = strlen(user), plen = SIG_PART_MIN + ulen;
    if (plen > 0xffff || plen + len > cap) return -1;
    out[0] = MS_CD_SIGN_SHA256 >> 8;
    out[1] = MS_CD_SIGN_SHA256 & 0xff;
    out[2] = (uint8_t)(plen >> 8);
    out[3] = (uint8_t)plen;
    memcpy(out + SIG_PART_MIN, user, ulen);
    memcpy(out + plen, payload, len);
    unsigned mlen = 0;
    if (!HMAC(EVP_sha256(), password, (int)strlen(password), out + SIG_PART_MIN, ulen + len,
              out + PART_HDR, &mlen))
        return -1;
    return (long)(plen + len);
}

long ms_cd_encrypt(const uint8_t *payload, size_t len, const char *user, const char *password,
                   const uint8_t iv[16], uint8_t *out, size_t cap)
{
    size_t ulen = strlen(user), off = PART_HDR + 2 + ulen, plen = off + 16 + 20 + len;
    if (plen > 0xffff || plen > cap) return -1;
    uint8_t *plain = malloc(20 + len);
    if (!plain) return -1;
    SHA1(payload, len, plain);
    memcpy(plain + 20, payload, len);
    out[0] = MS_CD_ENCR_AES256 >> 8;
    out[1] = MS_CD_ENCR_AES256 & 0xff;
    out[2] = (uint8_t)(plen >> 8);
    out[3] = (uint8_t)plen;
    out[4] = (uint8_t)(ulen >> 8);
    out[5] = (uint8_t)ulen;
    memcpy(out + 6, user, ulen);
    memcpy(out + off, iv, 16);
    int rc = ofb(password, iv, plain, 20 + len, out + off + 16); /* OFB: same both ways */
    free(plain);
    return rc ? -1 : (long)plen;
}

/* ---- types.db ---- */

typedef struct cd_type {
    char *name;
    size_t n;
    char **ds;
} cd_type;

struct ms_cd_types {
    cd_type *v;
    size_t n, cap;
};

static void type_free(cd_type *t)
{
    free(t->name);
    for (size_t i = 0; i < t->n; i++) free(t->ds[i]);
    free(t->ds);
}

static int is_name(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* One line "name ds:TYPE:min:max, ..." into t (replacing an earlier type of
 * the same name, as collectd does); 0 or -1 with *col set. */
static int types_line(ms_cd_types *t, const char *s, size_t n, int *col)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i == n || s[i] == '#') return 0;
    size_t b = i;
    while (i < n && is_name((unsigned char)s[i])) i++;
    if (i == b || i == n || (s[i] != ' ' && s[i] != '\t')) {
        *col = (int)i + 1;
        return -1;
    }
    cd_type nt = {strndup(s + b, i - b), 0, NULL};
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
        if (i == n || s[i] == '#') break;
        size_t db = i;
        while (i < n && is_name((unsigned char)s[i])) i++;
        size_t de = i;
        if (de == db || i == n || s[i] != ':') goto bad;
        i++;
        const char *ty = s + i;
        if (strncmp(ty, "GAUGE:", 6) && strncmp(ty, "COUNTER:", 8) && strncmp(ty, "DERIVE:", 7) &&
            strncmp(ty, "ABSOLUTE:", 9))
            goto bad;
        while (i < n && s[i] != ',' && s[i] != ' ' && s[i] != '\t') i++;
        char **nds = realloc(nt.ds, (nt.n + 1) * sizeof *nds);
        if (!nds) goto bad;
        nt.ds = nds;
        nt.ds[nt.n++] = strndup(s + db, de - db);
        if (nt.n > MS_CD_VALUES_MAX) goto bad;
    }
    if (!nt.n) goto bad;
    for (size_t k = 0; k < t->n; k++)
        if (!strcmp(t->v[k].name, nt.name)) {
            type_free(&t->v[k]);
            t->v[k] = nt;
            return 0;
        }
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        cd_type *nv = realloc(t->v, nc * sizeof *nv);
        if (!nv) goto bad;
        t->v = nv;
        t->cap = nc;
    }
    t->v[t->n++] = nt;
    return 0;
bad:
    *col = (int)i + 1;
    type_free(&nt);
    return -1;
}

static int type_cmp(const void *a, const void *b)
{
    return strcmp(((const cd_type *)a)->name, ((const cd_type *)b)->name);
}

/* Load types.db text; the table is kept sorted by name for ms_cd_types_get. */
int ms_cd_types_load_text(ms_cd_types **t, const char *text, size_t len, const char *file,
                          ms_error *err)
{
    if (!*t && !(*t = calloc(1, sizeof **t))) return ms_error_set(err, MS_ENOMEM, "out of memory");
    int rc = MS_OK, line = 0;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        line++;
        int col = 1;
        if (types_line(*t, text + i, e - i, &col) != 0 && rc == MS_OK)
            rc = ms_error_set(err, MS_EINVAL, "%s:%d:%d: expected \"type ds:TYPE:min:max, ...\"",
                              file, line, col);
        i = e + 1;
    }
    if ((*t)->n) qsort((*t)->v, (*t)->n, sizeof *(*t)->v, type_cmp);
    return rc;
}

int ms_cd_types_load_file(ms_cd_types **t, const char *path, ms_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ms_error_set(err, MS_EIO, "%s: cannot open", path);
    char *buf = NULL;
    size_t len = 0, cap = 0, r;
    char chunk[8192];
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + r > cap) {
            cap = (len + r) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return ms_error_set(err, MS_ENOMEM, "out of memory");
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, r);
        len += r;
    }
    fclose(f);
    int rc = ms_cd_types_load_text(t, buf ? buf : "", len, path, err);
    free(buf);
    return rc;
}

const char *const *ms_cd_types_get(const ms_cd_types *t, const char *type, size_t *n)
{
    if (!t || !t->n) return NULL;
    cd_type key = {(char *)type, 0, NULL};
    const cd_type *f = bsearch(&key, t->v, t->n, sizeof *t->v, type_cmp);
    if (!f) return NULL;
    *n = f->n;
    return (const char *const *)f->ds;
}

void ms_cd_types_free(ms_cd_types *t)
{
    for (size_t i = 0; t && i < t->n; i++) type_free(&t->v[i]);
    if (t) free(t->v);
    free(t);
}
