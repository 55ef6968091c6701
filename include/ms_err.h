/*
 * ms_err.h - the one error scheme of moonstat.
 *
 * Every fallible function returns an int: MS_OK (0) on success, a negative
 * MS_E* code on failure. Functions that can say more take an optional
 * `ms_error *err` (may be NULL) and fill it with a message that names where the
 * problem came from ("config.yaml:12:3: ...", "checks/cpu.lua:40: ...").
 */
#ifndef MS_ERR_H
#define MS_ERR_H

#include <stddef.h>

enum {
    MS_OK = 0,
    MS_ENOMEM = -1,  /* allocation failed */
    MS_EINVAL = -2,  /* bad value: config, argument, input */
    MS_EIO = -3,     /* file or socket error */
    MS_ENOENT = -4,  /* no such file, key, series */
    MS_EFULL = -5,   /* a bound was reached; the item was dropped and counted */
    MS_ELUA = -6,    /* a Lua script failed to load or run */
    MS_ETIMEOUT = -7 /* a deadline passed */
};

#define MS_ERROR_MAX 512

typedef struct ms_error {
    int code;
    char msg[MS_ERROR_MAX];
} ms_error;

/* Fill *err (when not NULL) with code and a printf-style message; returns code
 * so callers can write `return ms_error_set(err, MS_EINVAL, "...")`. */
int ms_error_set(ms_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Static text for a code ("out of memory", ...). Never NULL. */
const char *ms_err_str(int code);

#endif
