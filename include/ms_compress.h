/*
 * ms_compress.h - compression of request bodies for the transports:
 * gzip (zlib, linked) and snappy's raw block format (libsnappy, loaded with
 * dlopen on first use: it brings libstdc++, about 1 MiB of resident pages
 * that hosts without a snappy forwarder should not carry).
 */
#ifndef MS_COMPRESS_H
#define MS_COMPRESS_H

#include <stddef.h>

#include "ms_buf.h"
#include "ms_err.h"

typedef enum ms_compress_kind {
    MS_COMPRESS_NONE = 0,
    MS_COMPRESS_GZIP,
    MS_COMPRESS_SNAPPY
} ms_compress_kind;

/* "" (none), "gzip" or "snappy" -> *out; MS_EINVAL for anything else. */
int ms_compress_parse(const char *name, ms_compress_kind *out);
/* The Content-Encoding token of k ("gzip", "snappy"), or "" for none. */
const char *ms_compress_name(ms_compress_kind k);
/* MS_OK when k can be used here (for snappy: libsnappy loads), else an error
 * saying what is missing. */
int ms_compress_ready(ms_compress_kind k, ms_error *err);
/* Compress len bytes at in with k into out (its old contents are replaced;
 * the caller owns out). With MS_COMPRESS_NONE the bytes are copied. */
int ms_compress(ms_compress_kind k, const void *in, size_t len, ms_buf *out, ms_error *err);

#endif
