/*
 * transport_file.c - append chunks to a file, or to stdout for path "-".
 *
 * Writes go through the libuv thread pool (uv_fs_write), one chunk at a time,
 * so a slow disk never blocks the loop. The file is opened with O_APPEND and
 * reopened when the forwarder restarts (SIGHUP after a log rotation).
 * Options: path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "ms_forwarder.h"
#include "ms_log.h"

typedef struct file_state {
    ms_forwarder *f;
    uv_fs_t req;
    uv_file fd;
    int own_fd, writing, stopping;
} file_state;

static void try_write(file_state *s);

static void finish_stop(file_state *s)
{
    ms_forwarder *f = s->f;
    if (s->own_fd) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, s->fd, NULL);
        uv_fs_req_cleanup(&req);
    }
    ms_forwarder_set_data(f, NULL);
    free(s);
    ms_forwarder_closed(f);
}

static void write_cb(uv_fs_t *req)
{
    file_state *s = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    s->writing = 0;
    ms_chunk *c = ms_forwarder_head(s->f);
    if (r < 0) {
        ms_forwarder_log(s->f, MS_LOG_ERROR, "write: %s", uv_strerror((int)r));
        ms_forwarder_pop(s->f, 0);
    } else if (c) {
        c->off += (size_t)r;
        if (c->off >= c->len)
            ms_forwarder_pop(s->f, 1);
        else
            ms_forwarder_release(s->f);
    }
    if (s->stopping && !ms_forwarder_head(s->f)) {
        finish_stop(s);
        return;
    }
    ms_forwarder_release(s->f);
    try_write(s);
}

static void try_write(file_state *s)
{
    if (s->writing) return;
    ms_chunk *c = ms_forwarder_head(s->f);
    if (!c) return;
    uv_buf_t buf = uv_buf_init(c->data + c->off, (unsigned)(c->len - c->off));
    s->req.data = s;
    int rc = uv_fs_write(ms_forwarder_loop(s->f), &s->req, s->fd, &buf, 1, -1, write_cb);
    if (rc < 0) {
        ms_forwarder_log(s->f, MS_LOG_ERROR, "write: %s", uv_strerror(rc));
        ms_forwarder_pop(s->f, 0);
        return;
    }
    s->writing = 1;
}

static int file_start(ms_forwarder *f, ms_error *err)
{
    const char *path = ms_forwarder_opt_str(f, "path");
    if (!path || !*path) path = "-";
    file_state *s = calloc(1, sizeof *s);
    if (!s) return ms_error_set(err, MS_ENOMEM, "out of memory");
    s->f = f;
    if (!strcmp(path, "-")) {
        s->fd = STDOUT_FILENO;
    } else {
        s->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (s->fd < 0) {
            free(s);
            return ms_error_set(err, MS_EIO, "forwarder %s: cannot open %s: %s",
                                ms_forwarder_name(f), path, strerror(errno));
        }
        s->own_fd = 1;
    }
    ms_forwarder_set_data(f, s);
    return MS_OK;
}

static void file_kick(ms_forwarder *f)
{
    file_state *s = ms_forwarder_data(f);
    if (s) try_write(s);
}

static void file_stop(ms_forwarder *f)
{
    file_state *s = ms_forwarder_data(f);
    s->stopping = 1;
    if (!s->writing) finish_stop(s);
}

const ms_transport ms_transport_file = {
    .name = "file",
    .pull = 0,
    .start = file_start,
    .kick = file_kick,
    .stop = file_stop,
};
