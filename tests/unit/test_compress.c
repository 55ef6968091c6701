/*
 * test_compress.c - ms_compress: gzip bodies inflate back with zlib; snappy
 * bodies decode back with a decoder of snappy's block format written here
 * (varint length, literals, copies with 1/2/4-byte offsets), independent
 * of libsnappy; option names; an empty body.
 */
#include <stdint.h>
#include <stdlib.h>

#include <zlib.h>

#include "ms_compress.h"
#include "t.h"

/* Decode snappy's raw block format into out (cap bytes). Returns the
 * decoded length, or -1 on malformed input. */
static long unsnappy(const unsigned char *p, size_t n, unsigned char *out, size_t cap)
{
    size_t i = 0, want = 0, o = 0;
    int shift = 0;
    for (;;) { /* preamble: the uncompressed length as a varint */
        if (i >= n || shift > 35) return -1;
        want |= (size_t)(p[i] & 127) << shift;
        shift += 7;
        if (!(p[i++] & 128)) break;
    }
    if (want > cap) return -1;
    while (i < n) {
        unsigned tag = p[i++];
        size_t len, off;
        if ((tag & 3) == 0) { /* literal */
            len = (tag >> 2) + 1;
            if (len > 60) {
                size_t nb = len - 60; /* 1..4 bytes of length-1 follow */
                if (i + nb > n) return -1;
                len = 0;
                for (size_t k = 0; k < nb; k++) len |= (size_t)p[i + k] << (8 * k);
                len += 1;
                i += nb;
            }
            if (i + len > n || o + len > want) return -1;
            memcpy(out + o, p + i, len);
            i += len;
            o += len;
            continue;
        }
        if ((tag & 3) == 1) { /* copy, 1-byte offset */
            if (i + 1 > n) return -1;
            len = 4 + ((tag >> 2) & 7);
            off = ((size_t)(tag >> 5) << 8) | p[i];
            i += 1;
        } else if ((tag & 3) == 2) { /* copy, 2-byte offset */
            if (i + 2 > n) return -1;
            len = (tag >> 2) + 1;
            off = p[i] | (size_t)p[i + 1] << 8;
            i += 2;
        } else { /* copy, 4-byte offset */
            if (i + 4 > n) return -1;
            len = (tag >> 2) + 1;
            off = p[i] | (size_t)p[i + 1] << 8 | (size_t)p[i + 2] << 16 | (size_t)p[i + 3] << 24;
            i += 4;
        }
        if (off == 0 || off > o || o + len > want) return -1;
        for (size_t k = 0; k < len; k++, o++) out[o] = out[o - off]; /* may overlap */
    }
    return o == want ? (long)o : -1;
}

/* gunzip with zlib into out (cap bytes): the decoded length or -1. */
static long gunzip(const char *p, size_t n, char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK) return -1;
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    long got = rc == Z_STREAM_END ? (long)(cap - z.avail_out) : -1;
    inflateEnd(&z);
    return got;
}

int main(void)
{
    /* a body like the encoders write: repetitive lines and some noise */
    size_t n = 0, cap = 1 << 20;
    char *body = malloc(cap), *back = malloc(cap + 1);
    uint32_t x = 12345;
    for (int i = 0; n < 300000; i++) {
        x = x * 1103515245u + 12345u;
        n += (size_t)snprintf(body + n, cap - n,
                              "cpu.user,host=web%d.example.com,cpu=%d value=%u.%u 1700000000%09u\n",
                              i % 7, i % 16, x % 100, (x >> 8) % 1000, (unsigned)i);
    }

    ms_compress_kind k;
    T_OK(ms_compress_parse("", &k) == MS_OK && k == MS_COMPRESS_NONE, "'' is no compression");
    T_OK(ms_compress_parse(NULL, &k) == MS_OK && k == MS_COMPRESS_NONE, "NULL is no compression");
    T_OK(ms_compress_parse("gzip", &k) == MS_OK && k == MS_COMPRESS_GZIP, "gzip");
    T_OK(ms_compress_parse("snappy", &k) == MS_OK && k == MS_COMPRESS_SNAPPY, "snappy");
    T_EQ_INT(ms_compress_parse("zstd", &k), MS_EINVAL, "zstd is refused");
    T_EQ_STR(ms_compress_name(MS_COMPRESS_GZIP), "gzip", "gzip's Content-Encoding");
    T_EQ_STR(ms_compress_name(MS_COMPRESS_SNAPPY), "snappy", "snappy's Content-Encoding");
    T_EQ_STR(ms_compress_name(MS_COMPRESS_NONE), "", "no Content-Encoding");

    ms_buf out = MS_BUF_INIT;
    ms_error err = {0};
    T_EQ_INT(ms_compress(MS_COMPRESS_GZIP, body, n, &out, &err), MS_OK, "gzip compresses");
    T_OK(out.len > 18 && (unsigned char)out.data[0] == 0x1f && (unsigned char)out.data[1] == 0x8b,
         "gzip magic bytes");
    T_OK(out.len < n / 3, "gzip shrinks the body (%zu -> %zu bytes)", n, out.len);
    long got = gunzip(out.data, out.len, back, cap);
    T_OK(got == (long)n && memcmp(back, body, n) == 0, "gzip body inflates back to the original");

    T_EQ_INT(ms_compress_ready(MS_COMPRESS_SNAPPY, &err), MS_OK, "libsnappy loads");
    T_EQ_INT(ms_compress(MS_COMPRESS_SNAPPY, body, n, &out, &err), MS_OK, "snappy compresses");
    T_OK(out.len < n / 2, "snappy shrinks the body (%zu -> %zu bytes)", n, out.len);
    got = unsnappy((unsigned char *)out.data, out.len, (unsigned char *)back, cap);
    T_OK(got == (long)n && memcmp(back, body, n) == 0,
         "snappy body decodes back with an independent decoder");

    /* the buffer's old contents are replaced, not appended to */
    T_EQ_INT(ms_compress(MS_COMPRESS_SNAPPY, "abcabcabcabcabcabc", 18, &out, &err), MS_OK,
             "snappy again into the same buffer");
    got = unsnappy((unsigned char *)out.data, out.len, (unsigned char *)back, cap);
    T_OK(got == 18 && memcmp(back, "abcabcabcabcabcabc", 18) == 0, "small body with a copy");

    T_EQ_INT(ms_compress(MS_COMPRESS_GZIP, "", 0, &out, &err), MS_OK, "gzip of nothing");
    T_EQ_INT(gunzip(out.data, out.len, back, cap), 0, "inflates to nothing");
    T_EQ_INT(ms_compress(MS_COMPRESS_SNAPPY, "", 0, &out, &err), MS_OK, "snappy of nothing");
    T_EQ_INT(unsnappy((unsigned char *)out.data, out.len, (unsigned char *)back, cap), 0,
             "decodes to nothing");
    T_EQ_INT(ms_compress(MS_COMPRESS_NONE, "plain", 5, &out, &err), MS_OK, "none copies");
    T_OK(out.len == 5 && !memcmp(out.data, "plain", 5), "the bytes as they were");

    ms_buf_free(&out);
    free(body);
    free(back);
    return t_done();
}
