/* log.c - leveled logging to stderr (see ms_log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "ms_err.h"
#include "ms_log.h"

static ms_log_level cur_level = MS_LOG_INFO;

void ms_log_set_level(ms_log_level level)
{
    cur_level = level;
}

ms_log_level ms_log_get_level(void)
{
    return cur_level;
}

int ms_log_parse_level(const char *s, ms_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (ms_log_level)i;
            return MS_OK;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = MS_LOG_WARN;
        return MS_OK;
    }
    return MS_EINVAL;
}

void ms_log_write(ms_log_level level, const char *fmt, ...)
{
    static const char *tags[] = {"debug", "info ", "warn ", "error"};
    if (level < cur_level) return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[2048];
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s ", tags[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
