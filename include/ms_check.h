/*
 * ms_check.h - scheduled Lua checks.
 *
 * A check is one Lua file in a checks directory; its name is the file name
 * without ".lua". The file returns a table
 *   { interval = 10, type = "system", timeout = 5, defaults = {...},
 *     collect = function() ... end }
 * (or just the collect function). Each check runs in its own lua_State with
 * the JIT off and a capped heap, as a coroutine on its interval plus jitter.
 * An instruction-count hook makes a long run yield the loop after each slice
 * and stops it at its timeout; the allocator stops it at its memory limit.
 * A check that fails, times out or runs out of memory is logged, counted and
 * its state rebuilt; the others run on. A run that would overlap the previous
 * one is skipped and counted.
 */
#ifndef MS_CHECK_H
#define MS_CHECK_H

#include <stdio.h>

#include "ms_buf.h"
#include "ms_config.h"
#include "ms_err.h"

struct uv_loop_s;

/* Load and schedule every enabled check of cfg. Scripts that fail to load are
 * logged (file:line) and counted, not fatal. */
int ms_checks_start(struct uv_loop_s *loop, const ms_config *cfg, ms_error *err);

/* Re-scan the directories with the new config: added checks start, removed
 * ones stop, changed ones (file or section) restart; a changed file that fails
 * to load keeps its previous version. */
int ms_checks_reload(const ms_config *cfg);

/* --config-test: load every enabled check once (nothing runs on a schedule)
 * and report load errors. Returns the number of checks that failed to load. */
int ms_checks_validate(struct uv_loop_s *loop, const ms_config *cfg);

/* Stop all checks (a running one is abandoned) and free them. */
void ms_checks_stop(void);

/* --test / --check NAME: run each enabled check (or only `only`) once, to
 * completion, printing the samples it produced, one per line:
 *   name{k=v,...} value kind [message]
 * Returns MS_OK when every check ran without error, else the first error. */
int ms_checks_run_once(struct uv_loop_s *loop, const ms_config *cfg, const char *only, FILE *out,
                       ms_error *err);

/* JSON object for /health: {"checks":{"cpu":{"last_run":..,"status":"ok",
 * "error":null,"runs":..,"errors":..,"duration":..}, ...}}. */
void ms_checks_health_json(ms_buf *out);

/* `moonstat --script`: give state L the global __moonstat_test with
 * run_check(file, config_table, ts) -> samples | nil, err (see
 * lua/moonstat/testing.lua). cfg supplies paths.lua and defaults. */
struct lua_State;
void ms_checks_lua_open(struct lua_State *L, struct uv_loop_s *loop, const ms_config *cfg);

/* Number of checks loaded (tests, stats). */
int ms_checks_count(void);

#endif
