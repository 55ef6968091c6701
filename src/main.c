/*
 * main.c - the moonstat daemon: command line, config, signals, reload.
 *
 *   moonstat [-c config.yaml] [-v] [--pid-file F]   run in the foreground
 *   moonstat --config-test                          validate the config
 *   moonstat --test | --check NAME                  run checks once, print samples
 *   moonstat --script FILE [ARGS]                   run a Lua file (tests, tools)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <luajit.h>
#include <uv.h>

#include "ms_check.h"
#include "ms_collectd.h"
#include "ms_config.h"
#include "ms_exec.h"
#include "ms_log.h"
#include "ms_lua.h"
#include "ms_pipeline.h"
#include "ms_rate.h"
#include "ms_series.h"
#include "ms_stats.h"
#include "ms_statsd.h"

#ifndef MS_VERSION
#define MS_VERSION "dev"
#endif

static uv_loop_t *loop;
static ms_config *cfg;
static const char *config_path = "config.yaml";
static const char *pid_file;
static int verbose;
static uv_signal_t sig_hup, sig_term, sig_int;
static uv_timer_t stop_timer;
static int stopping;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: moonstat [options]\n"
            "  -c, --config FILE   config file (default: config.yaml)\n"
            "  -v, --verbose       log debug messages (overrides agent.log_level)\n"
            "      --config-test   validate the config and exit (0 ok, 1 error)\n"
            "      --test          run every enabled check once, print its samples, exit\n"
            "      --check NAME    run check NAME once, print its samples, exit\n"
            "      --script FILE   run a Lua file with the moonstat modules (tests, tools)\n"
            "      --pid-file FILE write the process id to FILE\n"
            "      --version       print the version\n"
            "  -h, --help          this text\n"
            "signals: SIGHUP reloads config and scripts; SIGTERM/SIGINT stop after flushing.\n");
}

/* Apply the parts of the config that live in globals (log level, tags, bounds). */
static int apply_globals(const ms_config *c)
{
    ms_log_level lvl = MS_LOG_INFO;
    ms_log_parse_level(c->agent.log_level, &lvl);
    ms_log_set_level(verbose ? MS_LOG_DEBUG : lvl);
    ms_series_set_limit((uint32_t)c->agent.max_series);
    ms_rate_set_limit((uint32_t)c->agent.max_series);
    ms_tag tags[65];
    size_t n = 0;
    tags[n++] = (ms_tag){"host", c->agent.hostname, 4, (uint32_t)strlen(c->agent.hostname)};
    for (size_t i = 0; i < c->agent.tags.n && n < 65; i++)
        tags[n++] =
            (ms_tag){c->agent.tags.k[i], c->agent.tags.v[i], (uint32_t)strlen(c->agent.tags.k[i]),
                     (uint32_t)strlen(c->agent.tags.v[i])};
    return ms_series_set_base_tags(tags, n);
}

static void reload(void)
{
    ms_config *nc = NULL;
    ms_error err = {0};
    ms_log_info("SIGHUP: reloading %s", config_path);
    if (ms_config_load(config_path, &nc, &err) != MS_OK) {
        ms_log_error("reload: %s (keeping the running config)", err.msg);
        return;
    }
    apply_globals(nc);
    if (ms_pipeline_reload(nc, &err) != MS_OK || err.code) ms_log_error("reload: %s", err.msg);
    ms_checks_reload(nc);
    ms_statsd_listeners_reload(nc, NULL);
    ms_collectd_listener_reload(nc);
    ms_exec_reload(nc);
    ms_config_free(cfg);
    cfg = nc;
    ms_log_info("reload done: %d checks", ms_checks_count());
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void all_stopped(void)
{
    uv_walk(loop, walk_close, NULL);
}

static void stop_timeout(uv_timer_t *t)
{
    (void)t;
    ms_log_warn("forwarders did not stop in time; exiting");
    all_stopped();
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (stopping) return; /* a second SIGTERM, or a SIGHUP, while we stop */
    if (signum == SIGHUP) {
        reload();
        return;
    }
    stopping = 1;
    ms_log_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    ms_checks_stop();
    ms_statsd_listeners_stop(); /* flushes what is aggregated */
    ms_collectd_listener_stop();
    ms_exec_stop();
    ms_stats_stop();
    /* keep the handlers (a repeated SIGTERM must not kill us while we flush),
     * but let the loop end without them */
    uv_unref((uv_handle_t *)&sig_hup);
    uv_unref((uv_handle_t *)&sig_term);
    uv_unref((uv_handle_t *)&sig_int);
    /* a hard bound on the whole stop, beyond the forwarders' own drain time */
    uv_timer_init(loop, &stop_timer);
    uv_timer_start(&stop_timer, stop_timeout, (uint64_t)(cfg->agent.shutdown_timeout * 1000) + 2000,
                   0);
    uv_unref((uv_handle_t *)&stop_timer);
    ms_pipeline_stop(cfg->agent.shutdown_timeout, all_stopped);
}

static int write_pid(void)
{
    if (!pid_file) return 0;
    FILE *f = fopen(pid_file, "w");
    if (!f) {
        ms_log_error("--pid-file %s: %s", pid_file, strerror(errno));
        return -1;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
    return 0;
}

static int run_daemon(void)
{
    ms_error err = {0};
    if (ms_pipeline_start(loop, cfg, &err) != MS_OK) {
        ms_log_error("%s", err.msg);
        return 1;
    }
    ms_checks_start(loop, cfg, &err);
    if (ms_statsd_listeners_start(loop, cfg, &err) != MS_OK) {
        ms_log_error("%s", err.msg);
        return 1;
    }
    if (ms_collectd_listener_start(loop, cfg, &err) != MS_OK) {
        ms_log_error("%s", err.msg);
        return 1;
    }
    ms_exec_start(loop, cfg, &err);
    ms_stats_start(loop, cfg->agent.stats_interval);
    uv_signal_init(loop, &sig_hup);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN); /* a backend that went away is a write error, not our end */
    if (write_pid() != 0) return 1;
    ms_log_info("moonstat %s started (config %s, host %s)", MS_VERSION, cfg->path,
                cfg->agent.hostname);
    uv_run(loop, UV_RUN_DEFAULT);
    if (pid_file) unlink(pid_file);
    ms_log_info("stopped");
    return 0;
}

/* --script FILE [ARGS]: a JIT-enabled state like the pipeline's, with `arg`. */
static int run_script(const char *file, int argc, char **argv)
{
    ms_error err = {0};
    ms_lua_opts o = {1, 0, &cfg->paths.lua};
    ms_lua *l = ms_lua_new(&o, &err);
    if (!l) {
        fprintf(stderr, "moonstat: %s\n", err.msg);
        return 1;
    }
    lua_State *L = ms_lua_state(l);
    ms_checks_lua_open(L, loop, cfg);
    lua_newtable(L);
    lua_pushstring(L, file);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");
    int rc = ms_lua_dofile(L, file, 0, &err);
    if (rc != MS_OK) fprintf(stderr, "moonstat: %s\n", err.msg);
    ms_lua_free(l);
    uv_run(loop, UV_RUN_NOWAIT);
    return rc == MS_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    enum { O_CONFIG_TEST = 256, O_TEST, O_CHECK, O_SCRIPT, O_PID, O_VERSION };
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"config-test", no_argument, NULL, O_CONFIG_TEST},
                                         {"test", no_argument, NULL, O_TEST},
                                         {"check", required_argument, NULL, O_CHECK},
                                         {"script", required_argument, NULL, O_SCRIPT},
                                         {"pid-file", required_argument, NULL, O_PID},
                                         {"version", no_argument, NULL, O_VERSION},
                                         {NULL, 0, NULL, 0}};
    int mode = 0, c;
    const char *check_name = NULL, *script = NULL;
    while (!script && (c = getopt_long(argc, argv, "+c:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case O_CONFIG_TEST:
            mode = O_CONFIG_TEST;
            break;
        case O_TEST:
            mode = O_TEST;
            break;
        case O_CHECK:
            mode = O_CHECK;
            check_name = optarg;
            break;
        case O_SCRIPT:
            mode = O_SCRIPT;
            script = optarg;
            break;
        case O_PID:
            pid_file = optarg;
            break;
        case O_VERSION:
            printf("moonstat %s (%s)\n", MS_VERSION, LUAJIT_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!script && optind < argc) {
        fprintf(stderr, "moonstat: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (verbose) ms_log_set_level(MS_LOG_DEBUG);
    ms_error err = {0};
    if (ms_config_load(config_path, &cfg, &err) != MS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    apply_globals(cfg);
    loop = uv_default_loop();
    if (mode == O_CONFIG_TEST) {
        /* the schema is checked; now the forwarders' options and the checks */
        int bad = ms_pipeline_validate(cfg, &err) != MS_OK;
        if (bad) fprintf(stderr, "%s\n", err.msg);
        bad |= ms_checks_validate(loop, cfg) > 0;
        if (ms_statsd_listeners_validate(cfg, &err) != MS_OK) {
            fprintf(stderr, "%s\n", err.msg);
            bad = 1;
        }
        if (ms_collectd_listener_validate(cfg, &err) != MS_OK) {
            fprintf(stderr, "%s\n", err.msg);
            bad = 1;
        }
        if (ms_exec_validate(cfg, &err) != MS_OK) {
            fprintf(stderr, "%s\n", err.msg);
            bad = 1;
        }
        if (!bad) printf("%s: ok\n", cfg->path);
        ms_config_free(cfg);
        ms_series_reset();
        return bad;
    }
    int rc;
    if (mode == O_TEST || mode == O_CHECK) {
        rc = ms_checks_run_once(loop, cfg, check_name, stdout, &err) == MS_OK ? 0 : 1;
        if (rc) fprintf(stderr, "moonstat: %s\n", err.msg);
    } else if (mode == O_SCRIPT) {
        rc = run_script(script, argc - optind, argv + optind);
    } else {
        rc = run_daemon();
        ms_pipeline_free();
        ms_statsd_listeners_free();
        ms_collectd_listener_free();
    }
    uv_walk(loop, walk_close, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    ms_config_free(cfg);
    ms_series_reset();
    ms_rate_reset();
    return rc;
}
