/*
 * ms_log.h - logging to stderr with levels.
 *
 * Lines look like `2026-01-02T03:04:05Z warn  checks/cpu.lua:12: message`.
 * The level is set from config (agent.log_level) or -v on the command line.
 */
#ifndef MS_LOG_H
#define MS_LOG_H

typedef enum { MS_LOG_DEBUG = 0, MS_LOG_INFO, MS_LOG_WARN, MS_LOG_ERROR } ms_log_level;

void ms_log_set_level(ms_log_level level);
ms_log_level ms_log_get_level(void);

/* Parse "debug" | "info" | "warn" | "error"; returns MS_OK or MS_EINVAL. */
int ms_log_parse_level(const char *s, ms_log_level *out);

/* Write one line at `level` if it passes the current level. */
void ms_log_write(ms_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ms_log_debug(...) ms_log_write(MS_LOG_DEBUG, __VA_ARGS__)
#define ms_log_info(...)  ms_log_write(MS_LOG_INFO, __VA_ARGS__)
#define ms_log_warn(...)  ms_log_write(MS_LOG_WARN, __VA_ARGS__)
#define ms_log_error(...) ms_log_write(MS_LOG_ERROR, __VA_ARGS__)

#endif
