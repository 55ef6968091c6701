/*
 * ms_exec.h - the exec bridge: run the executables of the script directories
 * (paths.scripts) and turn what they print into samples.
 *
 * Each executable file is one script, named by its file name. It runs on its
 * interval (plus jitter, like checks) as a child process spawned directly (no
 * shell) in a process group of its own, with stdin on /dev/null, stdout and
 * stderr on capped pipes, MOONSTAT_INTERVAL / MOONSTAT_HOSTNAME (and the
 * COLLECTD_* equivalents) in its environment, and - when moonstat runs as
 * root - as the configured unprivileged user. Past its timeout the whole
 * group gets SIGTERM, then SIGKILL after a grace period. A run that would
 * overlap the previous one is skipped and counted. In long-running mode the
 * script keeps running and its lines are used as they arrive; it is restarted
 * with backoff when it exits.
 *
 * Output formats (see docs/exec.md), detected per line or set per script:
 * PuyPuy `name value check_type stack|rate`, Nagios plugin output (exit code
 * + perfdata), collectd PUTVAL/PUTNOTIF, Influx line protocol and Graphite
 * plaintext.
 */
#ifndef MS_EXEC_H
#define MS_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "ms_buf.h"
#include "ms_config.h"
#include "ms_err.h"
#include "ms_sample.h"
#include "ms_series.h"

struct uv_loop_s;

/* ---- the scheduler (exec.c) ---- */

/* Discover the scripts of cfg->paths.scripts and schedule them. A bad
 * `scripts:` section is logged and leaves the bridge idle. */
int ms_exec_start(struct uv_loop_s *loop, const ms_config *cfg, ms_error *err);

/* Re-scan with a new config: new scripts start, removed ones stop once their
 * current run ends (long-running ones are terminated), changed ones take the
 * new settings from their next run (long-running ones restart); running ones
 * are not disturbed. A bad `scripts:` section keeps the previous settings. */
int ms_exec_reload(const ms_config *cfg);

/* Stop everything: running scripts' groups get SIGTERM, then SIGKILL after
 * their grace period (this call waits for that, bounded by the grace). */
void ms_exec_stop(void);

/* --config-test: check the `scripts:` section (file:line:col errors). */
int ms_exec_validate(const ms_config *cfg, ms_error *err);

/* JSON object for /health's "scripts" key: {"name":{"file":..,"status":..,
 * "runs":..,...},...}. */
void ms_exec_health_json(ms_buf *out);

/* Number of scripts scheduled. */
int ms_exec_count(void);

/* The keys of `scripts:` and `scripts.NAME:` (docs/config.md, tests). */
extern const ms_field ms_exec_fields[];

/* ---- output parsing (exec_parse.c) ---- */

typedef enum {
    MS_EXEC_FMT_AUTO = 0,
    MS_EXEC_FMT_PUYPUY,
    MS_EXEC_FMT_NAGIOS,
    MS_EXEC_FMT_COLLECTD,
    MS_EXEC_FMT_INFLUX,
    MS_EXEC_FMT_GRAPHITE,
    MS_EXEC_FMT_COUNT_
} ms_exec_format;

/* "auto", "puypuy", ... -> format; -1 when unknown. */
int ms_exec_format_parse(const char *s);
const char *ms_exec_format_name(int fmt);

/* One run's parsing state. Fill the settings, call ms_exec_parser_begin, feed
 * lines, then ms_exec_parser_end. Samples go into `out` (not owned). */
typedef struct ms_exec_parser {
    /* settings (strings not owned, must outlive the parser) */
    const char *script; /* script name, for messages */
    const char *stem;   /* Nagios metric prefix, PUTNOTIF fallback name */
    const char *prefix; /* prepended with "." to every name; "" or NULL: none */
    const ms_tag *tags; /* added to every series */
    size_t ntags;
    int format; /* ms_exec_format */
    double now; /* time of samples that carry none */
    ms_batch *out;
    /* state of the run */
    uint32_t line_no;
    int nagios;       /* the output is Nagios plugin output */
    int nagios_perf;  /* past the first '|' of the long output: perfdata */
    char status[256]; /* Nagios: the first line's text */
    uint64_t samples, bad_lines;
} ms_exec_parser;

/* Reset the run state (line numbers, Nagios state, counters). */
void ms_exec_parser_begin(ms_exec_parser *p, double now);

/* Parse one line (without its newline; a trailing \r is ignored). `line`
 * must be writable with line[len] == 0: it is tokenised in place. Returns
 * MS_OK (also for blank lines and comments), or MS_EINVAL with err =
 * "script NAME line N: why" for a line that parses as no format. */
int ms_exec_parse_line(ms_exec_parser *p, char *line, size_t len, ms_error *err);

/* End of a run. For Nagios output, add the health sample: exit code 0..3 ->
 * OK/WARNING/CRITICAL/UNKNOWN (0/8/16/16) with the first line as message;
 * another code or a signal (`why` says what happened) -> UNKNOWN. */
void ms_exec_parser_end(ms_exec_parser *p, int exit_status, int term_signal, const char *why);

#endif
