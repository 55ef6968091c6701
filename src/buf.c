/* buf.c - growable byte buffer (see ms_buf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_buf.h"
#include "ms_err.h"

/* Make room for `extra` more bytes plus the NUL terminator. */
int ms_buf_reserve(ms_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return MS_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return MS_ENOMEM;
    b->data = p;
    b->cap = cap;
    return MS_OK;
}

int ms_buf_append(ms_buf *b, const void *p, size_t n)
{
    if (ms_buf_reserve(b, n) != MS_OK) return MS_ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return MS_OK;
}

int ms_buf_puts(ms_buf *b, const char *s)
{
    return ms_buf_append(b, s, strlen(s));
}

int ms_buf_printf(ms_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return MS_EINVAL;
    if (ms_buf_reserve(b, (size_t)n) != MS_OK) return MS_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MS_OK;
}

int ms_buf_json_str(ms_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)c;
        } else if (c == '\n') {
            esc[k++] = '\\';
            esc[k++] = 'n';
        } else if (c == '\t') {
            esc[k++] = '\\';
            esc[k++] = 't';
        } else if (c == '\r') {
            esc[k++] = '\\';
            esc[k++] = 'r';
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        } else {
            esc[k++] = (char)c;
        }
        if (ms_buf_append(b, esc, k) != MS_OK) return MS_ENOMEM;
    }
    return MS_OK;
}

void ms_buf_reset(ms_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void ms_buf_free(ms_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Hand the bytes to the caller (who frees them); the buffer is left empty. */
char *ms_buf_detach(ms_buf *b, size_t *len)
{
    char *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
