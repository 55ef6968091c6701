/*
 * compress.c - request body compression (see ms_compress.h).
 *
 * gzip: one deflate stream per body (zlib's gzip wrapper, default level), so
 * nothing stays allocated between requests. snappy: the raw block format
 * (what Prometheus remote write and others call Content-Encoding: snappy),
 * through libsnappy's C API, which is dlopen()ed on first use.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <snappy-c.h>
#include <zlib.h>

#include "ms_compress.h"

#define LIBSNAPPY "libsnappy.so.1"

static struct {
    int tried, ok;
    char why[256];
    snappy_status (*compress)(const char *, size_t, char *, size_t *);
    size_t (*max_len)(size_t);
} S;

/* Load libsnappy and resolve its two functions, once. 1 when usable. */
static int snappy_load(void)
{
    if (S.tried) return S.ok;
    S.tried = 1;
    void *h = dlopen(LIBSNAPPY, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(S.why, sizeof S.why, "cannot load %s: %s (Debian: apt-get install libsnappy1v5)",
                 LIBSNAPPY, dlerror());
        return 0;
    }
    *(void **)&S.compress = dlsym(h, "snappy_compress");
    *(void **)&S.max_len = dlsym(h, "snappy_max_compressed_length");
    if (!S.compress || !S.max_len) {
        snprintf(S.why, sizeof S.why, "%s lacks the snappy C API", LIBSNAPPY);
        return 0;
    }
    S.ok = 1;
    return 1;
}

int ms_compress_parse(const char *name, ms_compress_kind *out)
{
    if (!name || !*name)
        *out = MS_COMPRESS_NONE;
    else if (!strcmp(name, "gzip"))
        *out = MS_COMPRESS_GZIP;
    else if (!strcmp(name, "snappy"))
        *out = MS_COMPRESS_SNAPPY;
    else
        return MS_EINVAL;
    return MS_OK;
}

const char *ms_compress_name(ms_compress_kind k)
{
    return k == MS_COMPRESS_GZIP ? "gzip" : k == MS_COMPRESS_SNAPPY ? "snappy" : "";
}

int ms_compress_ready(ms_compress_kind k, ms_error *err)
{
    if (k == MS_COMPRESS_SNAPPY && !snappy_load())
        return ms_error_set(err, MS_ENOENT, "snappy: %s", S.why);
    return MS_OK;
}

/* gzip: a whole body in one deflate call into a buffer of deflateBound. */
static int gzip_body(const void *in, size_t len, ms_buf *out, ms_error *err)
{
    if (len > UINT_MAX) return ms_error_set(err, MS_EINVAL, "gzip: body of %zu bytes too big", len);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return ms_error_set(err, MS_ENOMEM, "gzip: deflateInit2 failed");
    uLong bound = deflateBound(&z, (uLong)len);
    int rc = ms_buf_reserve(out, bound);
    if (rc != MS_OK || bound > UINT_MAX) {
        deflateEnd(&z);
        return ms_error_set(err, MS_ENOMEM, "gzip: out of memory");
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)bound;
    int zr = deflate(&z, Z_FINISH);
    out->len = bound - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        out->len = 0;
        return ms_error_set(err, MS_EIO, "gzip: deflate failed (%d)", zr);
    }
    out->data[out->len] = 0;
    return MS_OK;
}

static int snappy_body(const void *in, size_t len, ms_buf *out, ms_error *err)
{
    int rc = ms_compress_ready(MS_COMPRESS_SNAPPY, err);
    if (rc != MS_OK) return rc;
    size_t cap = S.max_len(len);
    if (ms_buf_reserve(out, cap) != MS_OK)
        return ms_error_set(err, MS_ENOMEM, "snappy: out of memory");
    size_t n = cap;
    if (S.compress(in, len, out->data, &n) != SNAPPY_OK)
        return ms_error_set(err, MS_EIO, "snappy: compression failed");
    out->len = n;
    out->data[n] = 0;
    return MS_OK;
}

int ms_compress(ms_compress_kind k, const void *in, size_t len, ms_buf *out, ms_error *err)
{
    ms_buf_reset(out);
    switch (k) {
    case MS_COMPRESS_GZIP:
        return gzip_body(in, len, out, err);
    case MS_COMPRESS_SNAPPY:
        return snappy_body(in, len, out, err);
    default:
        if (ms_buf_append(out, in, len) != MS_OK)
            return ms_error_set(err, MS_ENOMEM, "out of memory");
        return MS_OK;
    }
}
