/* err.c - the one error scheme (see ms_err.h). */
#include <stdarg.h>
#include <stdio.h>

#include "ms_err.h"

int ms_error_set(ms_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

const char *ms_err_str(int code)
{
    switch (code) {
    case MS_OK:
        return "ok";
    case MS_ENOMEM:
        return "out of memory";
    case MS_EINVAL:
        return "invalid value";
    case MS_EIO:
        return "i/o error";
    case MS_ENOENT:
        return "not found";
    case MS_EFULL:
        return "limit reached";
    case MS_ELUA:
        return "lua error";
    case MS_ETIMEOUT:
        return "timed out";
    default:
        return "unknown error";
    }
}
