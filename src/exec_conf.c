/*
 * exec_conf.c - the `scripts:` section of config.yaml (see docs/exec.md):
 * top-level keys are defaults for every script, a map under a script's file
 * name overrides them for that script. Builds each script's exec_conf:
 * format, mode, the user it runs as, its environment and tags.
 */
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec_int.h"
#include "ms_buf.h"

extern char **environ;

/* clang-format off */
#define SF(k, t, d, h) {#k, t, d, offsetof(exec_settings, k), h}
/* clang-format on */
const ms_field ms_exec_fields[] = {
    SF(enabled, MS_T_BOOL, "true", "run this script"),
    SF(interval, MS_T_DURATION, "0", "time between runs; 0: agent.interval"),
    SF(timeout, MS_T_DURATION, "10s",
       "longest run; then the script's process group gets SIGTERM, SIGKILL after `grace`"),
    SF(jitter, MS_T_DURATION, "auto", "random delay before each run; auto: 10% of the interval"),
    SF(grace, MS_T_DURATION, "2s", "time between SIGTERM and SIGKILL"),
    SF(format, MS_T_STRING, "auto",
       "auto (per line), puypuy, nagios, collectd, influx or graphite"),
    SF(mode, MS_T_STRING, "periodic",
       "periodic (run on the interval) or long-running (kept running, lines used as they come)"),
    SF(user, MS_T_STRING, "nobody",
       "user scripts run as when moonstat runs as root; \"\": moonstat's own user"),
    SF(allow_root, MS_T_BOOL, "false", "allow scripts to run as root"),
    SF(max_output, MS_T_SIZE, "1MiB",
       "stdout (and stderr) read per run; the rest is discarded and counted"),
    SF(max_line, MS_T_SIZE, "64KiB", "longest output line; longer ones are counted as bad"),
    SF(restart_delay, MS_T_DURATION, "1s", "long-running: first restart delay (doubles)"),
    SF(restart_max, MS_T_DURATION, "60s", "long-running: longest restart delay"),
    SF(prefix, MS_T_STRING, "", "prepended (with a dot) to every metric name the script prints"),
    SF(args, MS_T_STRLIST, "[]", "arguments"),
    SF(env, MS_T_TAGS, "{}", "extra environment variables"),
    SF(tags, MS_T_TAGS, "{}", "tags added to every sample of the script"),
    {NULL, 0, NULL, 0, NULL}};

static int is_field(const char *key)
{
    for (const ms_field *f = ms_exec_fields; f->key; f++)
        if (!strcmp(f->key, key)) return 1;
    return 0;
}

/* Settings of one script: a map node made of the defaults of `scripts:`
 * with the script's section laid over them, through the schema. */
static int apply(const ms_config *cfg, const char *name, const ms_node *section, exec_settings *s,
                 ms_error *err)
{
    const ms_node *top = cfg->scripts;
    size_t cap = (top ? top->n : 0) + (section && section->type == MS_NODE_MAP ? section->n : 0);
    ms_node **items = calloc(cap ? cap : 1, sizeof *items);
    if (!items) return ms_error_set(err, MS_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; top && i < top->n; i++)
        if (is_field(top->items[i]->key) && !ms_node_get(section, top->items[i]->key))
            items[n++] = top->items[i];
    for (size_t i = 0; section && section->type == MS_NODE_MAP && i < section->n; i++)
        items[n++] = section->items[i];
    char key[300];
    snprintf(key, sizeof key, name ? "scripts.%s" : "scripts", name);
    ms_node merged = {.type = MS_NODE_MAP, .key = key, .n = n, .items = items};
    if (section && section->type != MS_NODE_MAP) {
        free(items);
        return ms_error_set(err, MS_EINVAL, "%s:%d:%d: %s: expected a map of settings", cfg->path,
                            section->line, section->col, key);
    }
    int rc = ms_schema_apply(ms_exec_fields, &merged, s, 0, cfg->path, err);
    free(items);
    return rc;
}

/* Position of `key` as the script sees it: its section, else the defaults. */
static const ms_node *where(const ms_config *cfg, const ms_node *section, const char *key)
{
    const ms_node *n = ms_node_get(section, key);
    return n ? n : ms_node_get(cfg->scripts, key);
}

static int fail_at(const ms_config *cfg, const ms_node *section, const char *key, const char *name,
                   ms_error *err, const char *msg)
{
    const ms_node *n = where(cfg, section, key);
    return ms_error_set(err, MS_EINVAL, "%s:%d:%d: scripts%s%s.%s: %s", cfg->path, n ? n->line : 0,
                        n ? n->col : 0, name ? "." : "", name ? name : "", key, msg);
}

/* The environment: moonstat's own, minus what is set here, plus the
 * MOONSTAT_* / COLLECTD_* variables, the user's HOME/USER/LOGNAME when
 * switching, and the script's env. */
static char **build_env(const ms_config *cfg, const exec_conf *c, const struct passwd *pw)
{
    ms_buf b = MS_BUF_INIT;
    char iv[64];
    double interval = c->set.interval > 0 ? c->set.interval : cfg->agent.interval;
    snprintf(iv, sizeof iv, "%g", interval);
    const char *host = cfg->agent.hostname;
    ms_buf_printf(&b, "MOONSTAT_INTERVAL=%s%cMOONSTAT_HOSTNAME=%s%c", iv, 0, host, 0);
    ms_buf_printf(&b, "COLLECTD_INTERVAL=%s%cCOLLECTD_HOSTNAME=%s%c", iv, 0, host, 0);
    if (pw && c->setid)
        ms_buf_printf(&b, "HOME=%s%cUSER=%s%cLOGNAME=%s%c", pw->pw_dir, 0, pw->pw_name, 0,
                      pw->pw_name, 0);
    for (size_t i = 0; i < c->set.env.n; i++)
        ms_buf_printf(&b, "%s=%s%c", c->set.env.k[i], c->set.env.v[i], 0);
    size_t ours = b.len, n = 0;
    for (char **e = environ; e && *e; e++) {
        size_t kl = strcspn(*e, "=");
        int skip = 0;
        for (size_t o = 0; o < ours && !skip; o += strlen(b.data + o) + 1)
            skip = !strncmp(b.data + o, *e, kl + 1);
        if (!skip) ms_buf_printf(&b, "%s%c", *e, 0);
    }
    for (size_t o = 0; o < b.len; o += strlen(b.data + o) + 1) n++;
    char **env = malloc((n + 1) * sizeof *env + b.len);
    if (!env) {
        ms_buf_free(&b);
        return NULL;
    }
    char *text = (char *)(env + n + 1);
    if (b.len) memcpy(text, b.data, b.len);
    size_t i = 0;
    for (size_t o = 0; o < b.len; o += strlen(text + o) + 1) env[i++] = text + o;
    env[i] = NULL;
    ms_buf_free(&b);
    return env;
}

int ms_exec_conf_build(const ms_config *cfg, const char *name, exec_conf **out, ms_error *err)
{
    const ms_node *section = name ? ms_node_get(cfg->scripts, name) : NULL;
    exec_conf *c = calloc(1, sizeof *c);
    if (!c) return ms_error_set(err, MS_ENOMEM, "out of memory");
    int rc = apply(cfg, name, section, &c->set, err);
    exec_settings *s = &c->set;
    if (rc) goto fail;
    rc = MS_EINVAL;
    if ((c->fmt = ms_exec_format_parse(s->format)) < 0) {
        fail_at(cfg, section, "format", name, err,
                "expected auto, puypuy, nagios, collectd, influx or graphite");
        goto fail;
    }
    if (strcmp(s->mode, "periodic") != 0 && strcmp(s->mode, "long-running") != 0) {
        fail_at(cfg, section, "mode", name, err, "expected periodic or long-running");
        goto fail;
    }
    c->long_running = !strcmp(s->mode, "long-running");
    if (c->long_running && c->fmt == MS_EXEC_FMT_NAGIOS) {
        fail_at(cfg, section, "format", name, err,
                "nagios output needs the exit code: use mode: periodic");
        goto fail;
    }
    if (s->timeout <= 0 || s->grace <= 0 || s->restart_delay <= 0 ||
        s->restart_max < s->restart_delay) {
        const char *k = s->timeout <= 0 ? "timeout" : s->grace <= 0 ? "grace" : "restart_delay";
        fail_at(cfg, section, k, name, err, "must be positive (restart_max >= restart_delay)");
        goto fail;
    }
    if (s->max_line < 64 || s->max_line > 16u << 20) {
        fail_at(cfg, section, "max_line", name, err, "must be between 64 and 16MiB");
        goto fail;
    }
    if (s->max_output < s->max_line) {
        fail_at(cfg, section, "max_output", name, err, "must be at least max_line");
        goto fail;
    }
    struct passwd *pw = NULL;
    if (*s->user) {
        pw = getpwnam(s->user);
        if (!pw) {
            fail_at(cfg, section, "user", name, err, "no such user");
            goto fail;
        }
    }
    if (geteuid() == 0) {
        uid_t uid = pw ? pw->pw_uid : 0;
        if (uid == 0 && !s->allow_root) {
            fail_at(cfg, section, "user", name, err,
                    "scripts would run as root: name an unprivileged user, or set allow_root: "
                    "true");
            goto fail;
        }
        if (pw) {
            c->setid = 1;
            c->uid = pw->pw_uid;
            c->gid = pw->pw_gid;
        }
    }
    if (s->tags.n) {
        if (!(c->tags = calloc(s->tags.n, sizeof *c->tags))) goto oom;
        for (; c->ntags < s->tags.n; c->ntags++)
            c->tags[c->ntags] = (ms_tag){s->tags.k[c->ntags], s->tags.v[c->ntags],
                                         (uint32_t)strlen(s->tags.k[c->ntags]),
                                         (uint32_t)strlen(s->tags.v[c->ntags])};
    }
    if (!(c->env = build_env(cfg, c, pw))) goto oom;
    if (!s->enabled) {
        ms_exec_conf_free(c);
        return MS_ENOENT;
    }
    *out = c;
    return MS_OK;
oom:
    rc = ms_error_set(err, MS_ENOMEM, "out of memory");
fail:
    ms_exec_conf_free(c);
    return rc;
}

void ms_exec_conf_free(exec_conf *c)
{
    if (!c) return;
    ms_schema_free(ms_exec_fields, &c->set);
    free(c->env);
    free(c->tags);
    free(c);
}

int ms_exec_conf_check(const ms_config *cfg, int sections, ms_error *err)
{
    const ms_node *top = cfg->scripts;
    if (ms_node_is_null(top)) return MS_OK;
    for (size_t i = 0; i < top->n; i++) {
        const ms_node *it = top->items[i];
        if (!is_field(it->key) && it->type != MS_NODE_MAP) {
            ms_buf known = MS_BUF_INIT;
            for (const ms_field *f = ms_exec_fields; f->key; f++)
                ms_buf_printf(&known, "%s%s", known.len ? ", " : "", f->key);
            int rc = ms_error_set(err, MS_EINVAL,
                                  "%s:%d:%d: scripts.%s: unknown key (known: %s); a script's "
                                  "section is a map under its file name",
                                  cfg->path, it->key_line, it->key_col, it->key, known.data);
            ms_buf_free(&known);
            return rc;
        }
    }
    exec_conf *c = NULL;
    int rc = ms_exec_conf_build(cfg, NULL, &c, err);
    ms_exec_conf_free(c);
    if (rc && rc != MS_ENOENT) return rc;
    for (size_t i = 0; sections && i < top->n; i++) {
        if (is_field(top->items[i]->key)) continue;
        c = NULL;
        rc = ms_exec_conf_build(cfg, top->items[i]->key, &c, err);
        ms_exec_conf_free(c);
        if (rc && rc != MS_ENOENT) return rc;
    }
    return MS_OK;
}

static int strlist_eq(const ms_strlist *a, const ms_strlist *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0) return 0;
    return 1;
}

static int tags_eq(const ms_tags *a, const ms_tags *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->k[i], b->k[i]) != 0 || strcmp(a->v[i], b->v[i]) != 0) return 0;
    return 1;
}

int ms_exec_conf_equal(const exec_conf *a, const exec_conf *b)
{
    const exec_settings *x = &a->set, *y = &b->set;
    return x->enabled == y->enabled && x->interval == y->interval && x->timeout == y->timeout &&
           x->jitter == y->jitter && x->grace == y->grace && x->restart_delay == y->restart_delay &&
           x->restart_max == y->restart_max && x->max_output == y->max_output &&
           x->max_line == y->max_line && !strcmp(x->format, y->format) &&
           !strcmp(x->mode, y->mode) && !strcmp(x->user, y->user) &&
           !strcmp(x->prefix, y->prefix) && x->allow_root == y->allow_root &&
           strlist_eq(&x->args, &y->args) && tags_eq(&x->env, &y->env) &&
           tags_eq(&x->tags, &y->tags);
}
