/*
 * exec_run.c - one run of a script (see ms_exec.h): spawn without a shell in
 * a new session/process group (as the configured user), read stdout and
 * stderr through capped line buffers, parse stdout lines into a batch, log
 * stderr lines, and at the timeout SIGTERM the whole group, then SIGKILL it
 * after the grace period. libuv reaps the child; the run ends when the child
 * has exited and both pipes are closed (or were given up after the kill).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"
#include "ms_log.h"
#include "ms_pipeline.h"

/* A stream's partial line: at most max_line bytes, then skipped to '\n'. */
typedef struct linebuf {
    char *buf;
    size_t len;
    uint64_t total; /* bytes received */
    int skipping;   /* the current line is too long: drop it to its newline */
    int open;       /* the pipe is still being read */
} linebuf;

struct exec_run {
    exec_script *s;
    exec_conf *cf;
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t timer;
    int handles, pid;
    int exited, status, sig;
    int stage; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
    int timed_out, ended, truncated_logged, err_truncated;
    linebuf ob, eb;
    ms_exec_parser parser;
    ms_batch *batch;
    uint64_t start_ns;
};

static char readbuf[65536]; /* read callbacks use it in turn, one at a time */

static void run_free(exec_run *r)
{
    free(r->ob.buf);
    free(r->eb.buf);
    ms_batch_unref(r->batch);
    free(r);
}

static void on_close(uv_handle_t *h)
{
    exec_run *r = h->data;
    if (--r->handles == 0) run_free(r);
}

static void close_handle(exec_run *r, uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, on_close);
    (void)r;
}

/* Hand what the run parsed so far to the pipeline; keep a fresh batch. */
static void submit(exec_run *r)
{
    r->s->samples += r->parser.samples;
    r->parser.samples = 0;
    if (!r->batch->n) return;
    ms_batch *next = ms_batch_new(64);
    if (!next) return; /* out of memory: keep filling this one */
    ms_pipeline_submit(r->batch);
    r->batch = r->parser.out = next;
}

/* One complete stdout line: parse it; a bad one is logged and counted. */
static void stdout_line(exec_run *r, char *line, size_t len)
{
    ms_error err = {0};
    char head[81]; /* the parser tokenises in place: keep the start for the log */
    size_t hl = len < sizeof head - 1 ? len : sizeof head - 1;
    memcpy(head, line, hl);
    head[hl] = 0;
    line[len] = 0;
    if (ms_exec_parse_line(&r->parser, line, len, &err) != MS_OK) {
        r->s->bad_lines++;
        for (char *c = head; *c; c++)
            if ((unsigned char)*c < 0x20) *c = ' ';
        ms_log_warn("%s: \"%s%s\"", err.msg, head, len > hl ? "..." : "");
    }
}

static void stderr_line(exec_run *r, char *line, size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ')) len--;
    if (len) ms_log_warn("script %s: stderr: %.*s", r->s->name, (int)len, line);
}

/* Feed n bytes of stream `lb` through its line buffer to `fn`. */
static void feed(exec_run *r, linebuf *lb, const char *p, size_t n, int is_out)
{
    size_t max = (size_t)r->cf->set.max_line;
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (!lb->skipping) {
            if (lb->len + take > max) {
                lb->skipping = 1;
                lb->len = 0;
                if (is_out) {
                    r->s->bad_lines++;
                    r->parser.line_no++;
                    ms_log_warn("script %s line %u: longer than max_line (%llu bytes), dropped",
                                r->s->name, r->parser.line_no,
                                (unsigned long long)r->cf->set.max_line);
                }
            } else {
                memcpy(lb->buf + lb->len, p, take);
                lb->len += take;
            }
        }
        if (!nl) return;
        if (!lb->skipping) {
            if (is_out)
                stdout_line(r, lb->buf, lb->len);
            else
                stderr_line(r, lb->buf, lb->len);
        }
        lb->skipping = 0;
        lb->len = 0;
        p = nl + 1;
        n -= take + 1;
    }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(readbuf, sizeof readbuf);
}

static void maybe_end(exec_run *r);

/* Data from stdout or stderr: the cap counts every byte; past it the bytes
 * are read and dropped so the script never blocks on a full pipe. */
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    exec_run *r = st->data;
    int is_out = st == (uv_stream_t *)&r->out;
    linebuf *lb = is_out ? &r->ob : &r->eb;
    if (nread < 0) {
        uv_read_stop(st);
        lb->open = 0;
        maybe_end(r);
        return;
    }
    size_t n = (size_t)nread, cap = (size_t)r->cf->set.max_output;
    uint64_t before = lb->total;
    lb->total += n;
    if (!r->cf->long_running || !is_out) {
        if (before >= cap)
            n = 0;
        else if (before + n > cap)
            n = cap - (size_t)before;
        if (n < (size_t)nread) {
            int *logged = is_out ? &r->truncated_logged : &r->err_truncated;
            if (!*logged) {
                *logged = 1;
                if (is_out) r->s->truncated++;
                ms_log_warn("script %s: %s beyond max_output (%llu bytes) discarded", r->s->name,
                            is_out ? "stdout" : "stderr", (unsigned long long)cap);
            }
        }
    }
    if (is_out && r->cf->long_running) r->parser.now = ms_now();
    feed(r, lb, buf->base, n, is_out);
    if (n < (size_t)nread) { /* at the cap: a partial line must not pass for a whole one */
        lb->len = 0;
        lb->skipping = 1;
    }
    if (is_out && r->cf->long_running) submit(r);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    exec_run *r = p->data;
    r->exited = 1;
    r->status = (int)status;
    r->sig = sig;
    maybe_end(r);
}

/* Timeout, then grace steps: SIGTERM the group, SIGKILL it, give up on
 * pipes that a process outside the group still holds. */
static void on_timer(uv_timer_t *t)
{
    exec_run *r = t->data;
    uint64_t grace = (uint64_t)(r->cf->set.grace * 1000);
    if (r->stage == 0) {
        if (!r->cf->long_running) {
            r->timed_out = 1;
            r->s->timeouts++;
            ms_log_warn("script %s: timed out after %gs, terminating its process group", r->s->name,
                        r->cf->set.timeout);
        }
        kill(-r->pid, SIGTERM);
        r->stage = 1;
        uv_timer_start(&r->timer, on_timer, grace, 0);
    } else if (r->stage == 1) {
        if (kill(-r->pid, SIGKILL) == 0)
            ms_log_warn("script %s: still running %gs after SIGTERM, sent SIGKILL", r->s->name,
                        r->cf->set.grace);
        r->stage = 2;
        uv_timer_start(&r->timer, on_timer, grace, 0);
    } else {
        kill(-r->pid, SIGKILL);
        if (r->ob.open || r->eb.open)
            ms_log_warn("script %s: output still open after SIGKILL (a process left the group); "
                        "closing it",
                        r->s->name);
        r->ob.open = r->eb.open = 0;
        uv_read_stop((uv_stream_t *)&r->out);
        uv_read_stop((uv_stream_t *)&r->err);
        maybe_end(r);
        if (!r->ended) uv_timer_start(&r->timer, on_timer, grace, 0);
    }
}

/* The run is over once the child has exited and both pipes are done: use
 * the last line (it may lack a newline), add the Nagios health, submit,
 * count, close the handles. */
static void maybe_end(exec_run *r)
{
    if (r->ended || !r->exited || r->ob.open || r->eb.open) return;
    r->ended = 1;
    exec_script *s = r->s;
    if (r->ob.len && !r->ob.skipping) stdout_line(r, r->ob.buf, r->ob.len);
    if (r->eb.len && !r->eb.skipping) stderr_line(r, r->eb.buf, r->eb.len);
    r->ob.len = r->eb.len = 0;
    char why[96] = "";
    if (r->timed_out)
        snprintf(why, sizeof why, "timed out after %gs", r->cf->set.timeout);
    else if (r->sig)
        snprintf(why, sizeof why, "killed by signal %d", r->sig);
    ms_exec_parser_end(&r->parser, r->status, r->sig, why);
    submit(r);
    s->last_duration = (double)(uv_hrtime() - r->start_ns) / 1e9;
    s->last_status = r->sig ? 128 + r->sig : r->status;
    int failed = r->sig || (r->parser.nagios ? r->status > 3 || r->status < 0 : r->status != 0);
    if (failed || r->timed_out) {
        s->errors++;
        if (r->timed_out)
            snprintf(s->last_error, sizeof s->last_error, "%s", why);
        else if (r->sig)
            snprintf(s->last_error, sizeof s->last_error, "killed by signal %d", r->sig);
        else
            snprintf(s->last_error, sizeof s->last_error, "exited with status %d", r->status);
        if (!r->timed_out && !(r->cf->long_running && s->removed))
            ms_log_warn("script %s: %s", s->name, s->last_error);
    } else {
        s->last_error[0] = 0;
    }
    if (r->cf->long_running && !s->removed)
        ms_log_warn("script %s: long-running script ended (%s)", s->name,
                    failed ? s->last_error : "exit status 0");
    close_handle(r, (uv_handle_t *)&r->timer);
    close_handle(r, (uv_handle_t *)&r->out);
    close_handle(r, (uv_handle_t *)&r->err);
    close_handle(r, (uv_handle_t *)&r->proc);
    s->cur = NULL;
    ms_exec_run_ended(s);
}

/* Mark every descriptor above stderr close-on-exec, so a script inherits
 * none of moonstat's files or sockets (some are opened without O_CLOEXEC,
 * or were inherited that way); libuv sets up 0-2 itself. */
static void cloexec_all(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (fd <= 2) continue;
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
    closedir(d);
}

int ms_exec_run_start(exec_script *s)
{
    exec_conf *cf = s->cf;
    exec_run *r = calloc(1, sizeof *r);
    char **argv = calloc(cf->set.args.n + 2, sizeof *argv);
    if (!r || !argv || !(r->ob.buf = malloc(cf->set.max_line + 1)) ||
        !(r->eb.buf = malloc(cf->set.max_line + 1)) || !(r->batch = ms_batch_new(64))) {
        if (r) run_free(r);
        free(argv);
        return MS_ENOMEM;
    }
    r->s = s;
    r->cf = cf;
    r->parser = (ms_exec_parser){.script = s->name,
                                 .stem = s->stem,
                                 .prefix = cf->set.prefix,
                                 .tags = cf->tags,
                                 .ntags = cf->ntags,
                                 .format = cf->fmt,
                                 .out = r->batch};
    ms_exec_parser_begin(&r->parser, ms_now());
    argv[0] = s->file;
    for (size_t i = 0; i < cf->set.args.n; i++) argv[i + 1] = cf->set.args.v[i];
    uv_pipe_init(ms_exec_loop, &r->out, 0);
    uv_pipe_init(ms_exec_loop, &r->err, 0);
    uv_timer_init(ms_exec_loop, &r->timer);
    r->out.data = r->err.data = r->timer.data = r->proc.data = r;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->err}};
    uv_process_options_t o = {.exit_cb = on_exit_cb,
                              .file = s->file,
                              .args = argv,
                              .env = cf->env,
                              .cwd = s->dir,
                              .flags = UV_PROCESS_DETACHED,
                              .stdio_count = 3,
                              .stdio = stdio};
    if (cf->setid) {
        o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        o.uid = cf->uid;
        o.gid = cf->gid;
    }
    cloexec_all();
    r->start_ns = uv_hrtime();
    int rc = uv_spawn(ms_exec_loop, &r->proc, &o);
    free(argv);
    r->handles = 4;
    s->runs++;
    s->last_run = r->parser.now;
    if (rc != 0) { /* the handle is initialised even so: close all four */
        s->errors++;
        snprintf(s->last_error, sizeof s->last_error, "cannot run %s: %s%s", s->file,
                 uv_strerror(rc),
                 rc == UV_EACCES && cf->setid
                     ? " (it runs as scripts.user: that user must be able to enter every "
                       "directory above it and execute it)"
                     : "");
        ms_log_error("script %s: %s", s->name, s->last_error);
        r->ended = 1;
        close_handle(r, (uv_handle_t *)&r->timer);
        close_handle(r, (uv_handle_t *)&r->out);
        close_handle(r, (uv_handle_t *)&r->err);
        close_handle(r, (uv_handle_t *)&r->proc);
        return MS_EIO;
    }
    r->pid = r->proc.pid;
    r->ob.open = r->eb.open = 1;
    uv_read_start((uv_stream_t *)&r->out, alloc_cb, on_read);
    uv_read_start((uv_stream_t *)&r->err, alloc_cb, on_read);
    if (!cf->long_running)
        uv_timer_start(&r->timer, on_timer, (uint64_t)(cf->set.timeout * 1000), 0);
    s->cur = r;
    return MS_OK;
}

void ms_exec_run_terminate(exec_script *s, const char *why)
{
    exec_run *r = s->cur;
    if (!r || r->stage) return;
    ms_log_info("script %s: %s: terminating its process group", s->name, why);
    uv_timer_stop(&r->timer);
    r->stage = 0;
    on_timer(&r->timer); /* stage 0 -> SIGTERM; long-running runs are not timeouts */
}

int ms_exec_run_abandon(exec_script *s)
{
    exec_run *r = s->cur;
    if (!r) return 0;
    int pid = r->exited ? -r->pid : r->pid; /* negative: already reaped by libuv */
    kill(-r->pid, SIGTERM);
    r->ended = 1;
    close_handle(r, (uv_handle_t *)&r->timer);
    close_handle(r, (uv_handle_t *)&r->out);
    close_handle(r, (uv_handle_t *)&r->err);
    close_handle(r, (uv_handle_t *)&r->proc);
    s->cur = NULL;
    return pid;
}
