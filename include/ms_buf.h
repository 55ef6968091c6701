/*
 * ms_buf.h - a growable byte buffer (always NUL-terminated after len).
 *
 * The buffer owns `data`; ms_buf_free releases it. ms_buf_detach hands the
 * bytes to the caller (who then frees them) and leaves the buffer empty.
 */
#ifndef MS_BUF_H
#define MS_BUF_H

#include <stddef.h>

typedef struct ms_buf {
    char *data;
    size_t len, cap;
} ms_buf;

#define MS_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

int ms_buf_reserve(ms_buf *b, size_t extra); /* MS_OK / MS_ENOMEM */
int ms_buf_append(ms_buf *b, const void *p, size_t n);
int ms_buf_puts(ms_buf *b, const char *s);
int ms_buf_printf(ms_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as the body of a JSON string (no quotes), escaping as JSON requires. */
int ms_buf_json_str(ms_buf *b, const char *s, size_t n);
void ms_buf_reset(ms_buf *b); /* len = 0, keeps memory */
void ms_buf_free(ms_buf *b);
char *ms_buf_detach(ms_buf *b, size_t *len);

#endif
