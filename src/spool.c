/*
 * spool.c - a forwarder's disk spool (see ms_spool.h): append-only segment
 * files of checksummed records, a read cursor (what is in memory already), a
 * delivery cursor kept in the `ack` file, size-bounded with drop-oldest or
 * drop-newest, and a scan on open that stops each segment at its first bad
 * record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ms_buf.h"
#include "ms_log.h"
#include "ms_spool.h"

#define REC_MAGIC 0x3152534du /* "MSR1" read as little-endian */
#define ACK_MAGIC 0x3141534du /* "MSA1" */
#define HDR       32u
#define ACK_LEN   24u
#define MAX_DATA  (1u << 30)
#define MAX_EP    4096u

typedef struct seg {
    uint64_t id;
    uint64_t size;       /* bytes in the file */
    uint64_t valid;      /* end of the last good record */
    uint64_t unread_rec; /* records of this segment not yet read */
    uint64_t unread_samples, unread_bytes;
} seg;

typedef struct lrec {
    uint64_t id, end; /* segment and the offset after the record */
    double t;
    uint32_t nsamples;
} lrec;

struct ms_spool {
    ms_spool *next_open; /* the process's list of open spools */
    int refs;
    char *dir, *owner;
    ms_spool_opts o;
    int lock_fd, ack_fd;
    seg *segs;
    size_t nseg, capseg;
    uint64_t next_id;
    int wfd;         /* open on segs[nseg-1] when >= 0 */
    int wfd_dsync;   /* wfd was opened O_DSYNC (fsync: batch) */
    size_t rd;       /* read cursor: segment index ... */
    uint64_t rd_off; /* ... and offset */
    int rfd;
    uint64_t rfd_id;
    lrec *ring; /* loaded records, oldest first */
    size_t rhead, rcount, rcap;
    uint64_t unread_rec, unread_samples, unread_bytes, disk;
    uint64_t loaded_samples; /* samples of the records in ring */
    int dirty;
    double dirty_since;
    ms_spool_stats st; /* the counters (totals are filled in on demand) */
    ms_buf scratch;
};

static ms_spool *open_spools;

/* ---- CRC-32C, slicing by 8 ---- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_HW_CRC 1
/* The same CRC with SSE 4.2's crc32 instruction (8 bytes a step). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *b,
                                                            size_t n)
{
    uint64_t c = ~crc;
    for (; n >= 8; b += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        c = _mm_crc32_u64(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = _mm_crc32_u8(c32, *b++);
    return ~c32;
}
#endif

uint32_t ms_crc32c(uint32_t crc, const void *p, size_t n)
{
#ifdef HAVE_HW_CRC
    static int hw = -1;
    if (hw < 0) hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (hw) return crc32c_hw(crc, p, n);
#endif
    return ms_crc32c_portable(crc, p, n);
}

uint32_t ms_crc32c_portable(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                             (uint32_t)b[3] << 24);
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
              crc_tab[4][lo >> 24] ^ crc_tab[3][b[4]] ^ crc_tab[2][b[5]] ^ crc_tab[1][b[6]] ^
              crc_tab[0][b[7]];
        b += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc_tab[0][(crc ^ *b++) & 0xff];
    return ~crc;
}

/* ---- little helpers ---- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void seg_path(const ms_spool *s, uint64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016llx.seg", s->dir, (unsigned long long)id);
}

/* pread exactly n bytes; 0 on success. */
static int read_full(int fd, void *p, size_t n, uint64_t off)
{
    char *c = p;
    while (n) {
        ssize_t r = pread(fd, c, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0750) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0750) < 0 && errno != EEXIST ? -1 : 0;
}

static void fsync_dir(const ms_spool *s)
{
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Header checks that need no data: magic and lengths. NULL when fine. */
static const char *check_header(const unsigned char *h, ms_spool_rec *rec)
{
    if (get32(h) != REC_MAGIC) return "bad magic";
    rec->len = get32(h + 8);
    rec->nsamples = get32(h + 12);
    rec->eplen = get32(h + 16);
    rec->t = (double)(int64_t)get64(h + 24) / 1000;
    if (rec->len > MAX_DATA || rec->eplen > MAX_EP) return "bad length";
    return NULL;
}

static uint32_t record_crc(const unsigned char *h, const void *body, size_t n)
{
    return ms_crc32c(ms_crc32c(0, h + 8, HDR - 8), body, n);
}

/* ---- segments ---- */

static void close_read(ms_spool *s)
{
    if (s->rfd >= 0) close(s->rfd);
    s->rfd = -1;
}

static void close_write(ms_spool *s)
{
    if (s->wfd < 0) return;
    if (s->dirty && s->o.fsync >= 0) fdatasync(s->wfd);
    s->dirty = 0;
    close(s->wfd);
    s->wfd = -1;
}

/* Remove segs[0] and its file; unread records in it count as dropped. */
static void remove_front(ms_spool *s)
{
    seg *g = &s->segs[0];
    char path[4200];
    if (s->nseg == 1) close_write(s);
    if (s->rfd >= 0 && s->rfd_id == g->id) close_read(s);
    seg_path(s, g->id, path, sizeof path);
    unlink(path);
    s->st.dropped_records += g->unread_rec;
    s->st.dropped_samples += g->unread_samples;
    s->unread_rec -= g->unread_rec;
    s->unread_samples -= g->unread_samples;
    s->unread_bytes -= g->unread_bytes;
    s->disk -= g->size;
    memmove(s->segs, s->segs + 1, (s->nseg - 1) * sizeof *s->segs);
    s->nseg--;
    if (s->rd > 0)
        s->rd--;
    else
        s->rd_off = 0;
}

/* Delete leading segments that are read through and hold no record still
 * waiting for its ack. */
static void gc(ms_spool *s)
{
    while (s->nseg > 0) {
        seg *g = &s->segs[0];
        int writing = s->wfd >= 0 && s->nseg == 1;
        int read_through = s->rd > 0 || (s->rd_off >= g->valid && !writing);
        int referenced = s->rcount && s->ring[s->rhead].id <= g->id;
        if (writing || !read_through || referenced) break;
        remove_front(s);
    }
}

/* The record at offset `off` of segs[i] is bad: skip the rest of the
 * segment, log and count it. `reading`: the read cursor is at `off`, so the
 * segment's unread records are all behind it and are lost with it. */
static void cut_segment(ms_spool *s, size_t i, uint64_t off, const char *why, int reading)
{
    seg *g = &s->segs[i];
    char path[4200];
    seg_path(s, g->id, path, sizeof path);
    ms_log_warn("%s: spool %s: %s at offset %llu: skipping the rest of the segment (%llu bytes)",
                s->owner, path, why, (unsigned long long)off, (unsigned long long)(g->size - off));
    s->st.corrupt_records++;
    s->st.corrupt_bytes += g->size - off;
    if (reading) {
        s->unread_rec -= g->unread_rec;
        s->unread_samples -= g->unread_samples;
        s->unread_bytes -= g->unread_bytes;
        g->unread_rec = g->unread_samples = g->unread_bytes = 0;
    }
    g->valid = off;
    if (i == s->nseg - 1) close_write(s); /* never append behind a bad record */
}

/* Scan segs[i] from `from` (records before it are delivered), counting the
 * good records as unread, stopping at the first bad one. */
static void scan_segment(ms_spool *s, size_t i, uint64_t from)
{
    seg *g = &s->segs[i];
    char path[4200];
    seg_path(s, g->id, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t off = from;
    g->valid = g->size;
    if (fd < 0) {
        cut_segment(s, i, 0, strerror(errno), 0);
        return;
    }
    while (off < g->size) {
        unsigned char h[HDR];
        ms_spool_rec rec;
        const char *why = NULL;
        if (g->size - off < HDR || read_full(fd, h, HDR, off) != 0) {
            why = "truncated record header";
        } else if (!(why = check_header(h, &rec))) {
            size_t body = (size_t)rec.len + rec.eplen;
            if (g->size - off - HDR < body) {
                why = "truncated record";
            } else {
                s->scratch.len = 0;
                if (ms_buf_reserve(&s->scratch, body) != MS_OK ||
                    read_full(fd, s->scratch.data, body, off + HDR) != 0)
                    why = "unreadable record";
                else if (record_crc(h, s->scratch.data, body) != get32(h + 4))
                    why = "bad checksum";
            }
        }
        if (why) { /* the records before it stay readable */
            cut_segment(s, i, off, why, 0);
            break;
        }
        g->unread_rec++;
        g->unread_samples += rec.nsamples;
        g->unread_bytes += rec.len;
        s->unread_rec++;
        s->unread_samples += rec.nsamples;
        s->unread_bytes += rec.len;
        off += HDR + rec.len + rec.eplen;
    }
    close(fd);
    if (s->scratch.cap > (4u << 20)) ms_buf_free(&s->scratch);
}

static int add_seg(ms_spool *s, uint64_t id, uint64_t size)
{
    if (s->nseg == s->capseg) {
        size_t cap = s->capseg ? s->capseg * 2 : 16;
        seg *n = realloc(s->segs, cap * sizeof *n);
        if (!n) return MS_ENOMEM;
        s->segs = n;
        s->capseg = cap;
    }
    seg *g = &s->segs[s->nseg++];
    memset(g, 0, sizeof *g);
    g->id = id;
    g->size = g->valid = size;
    s->disk += size;
    if (id >= s->next_id) s->next_id = id + 1;
    return MS_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void write_ack(ms_spool *s, uint64_t id, uint64_t off)
{
    unsigned char a[ACK_LEN];
    put32(a, ACK_MAGIC);
    put64(a + 8, id);
    put64(a + 16, off);
    put32(a + 4, ms_crc32c(0, a + 8, 16));
    if (s->ack_fd >= 0 && pwrite(s->ack_fd, a, ACK_LEN, 0) != (ssize_t)ACK_LEN)
        ms_log_warn("%s: spool %s/ack: %s", s->owner, s->dir, strerror(errno));
}

/* Find the segments, apply the ack file, scan what is left to deliver. */
static int load(ms_spool *s, ms_error *err)
{
    DIR *d = opendir(s->dir);
    if (!d) return ms_error_set(err, MS_EIO, "spool %s: %s", s->dir, strerror(errno));
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strlen(nm) != 20 || strcmp(nm + 16, ".seg") || strspn(nm, "0123456789abcdef") != 16)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *x = realloc(ids, cap * sizeof *x);
            if (!x) {
                free(ids);
                closedir(d);
                return ms_error_set(err, MS_ENOMEM, "out of memory");
            }
            ids = x;
        }
        ids[n++] = strtoull(nm, NULL, 16);
    }
    closedir(d);
    if (n) qsort(ids, n, sizeof *ids, cmp_u64);
    uint64_t ack_id = 0, ack_off = 0;
    unsigned char a[ACK_LEN];
    if (read_full(s->ack_fd, a, ACK_LEN, 0) == 0 && get32(a) == ACK_MAGIC &&
        get32(a + 4) == ms_crc32c(0, a + 8, 16)) {
        ack_id = get64(a + 8);
        ack_off = get64(a + 16);
        if (ack_id >= s->next_id) s->next_id = ack_id + 1;
    }
    int rc = MS_OK;
    for (size_t i = 0; i < n && rc == MS_OK; i++) {
        char path[4200];
        seg_path(s, ids[i], path, sizeof path);
        struct stat st;
        if (ids[i] < ack_id || stat(path, &st) != 0) { /* delivered: its deletion was cut short */
            unlink(path);
            continue;
        }
        if ((rc = add_seg(s, ids[i], (uint64_t)st.st_size)) != MS_OK) break;
        uint64_t from = ids[i] == ack_id && ack_off <= (uint64_t)st.st_size ? ack_off : 0;
        scan_segment(s, s->nseg - 1, from);
        if (s->nseg == 1) s->rd_off = from;
    }
    free(ids);
    if (rc != MS_OK) return ms_error_set(err, rc, "out of memory");
    gc(s);
    return MS_OK;
}

/* ---- open / close ---- */

static void spool_free(ms_spool *s)
{
    close_write(s);
    close_read(s);
    if (s->ack_fd >= 0) {
        if (s->o.fsync >= 0) fdatasync(s->ack_fd);
        close(s->ack_fd);
    }
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the flock */
    ms_buf_free(&s->scratch);
    free(s->segs);
    free(s->ring);
    free(s->dir);
    free(s->owner);
    free(s);
}

int ms_spool_open(const char *dir, const ms_spool_opts *o, const char *owner, ms_spool **out,
                  ms_error *err)
{
    *out = NULL;
    if (mkdir_p(dir) < 0)
        return ms_error_set(err, MS_EIO, "spool %s: cannot create: %s", dir, strerror(errno));
    char *real = realpath(dir, NULL);
    if (!real) return ms_error_set(err, MS_EIO, "spool %s: %s", dir, strerror(errno));
    for (ms_spool *s = open_spools; s; s = s->next_open) {
        if (!strcmp(s->dir, real)) {
            free(real);
            s->refs++;
            s->o = *o;
            *out = s;
            return MS_OK;
        }
    }
    ms_spool *s = calloc(1, sizeof *s);
    if (!s) {
        free(real);
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    s->dir = real;
    s->owner = strdup(owner ? owner : "spool");
    s->o = *o;
    s->wfd = s->rfd = s->ack_fd = -1;
    s->refs = 1;
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    int rc;
    if (s->lock_fd < 0) {
        rc = ms_error_set(err, MS_EIO, "spool %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = ms_error_set(err, MS_EIO, "spool %s: in use by another process", s->dir);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/ack", s->dir);
    s->ack_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (s->ack_fd < 0) {
        rc = ms_error_set(err, MS_EIO, "spool %s: %s", path, strerror(errno));
        goto fail;
    }
    if ((rc = load(s, err)) != MS_OK) goto fail;
    if (s->unread_rec || s->st.corrupt_records)
        ms_log_info("%s: spool %s: %llu records (%llu samples) to deliver in %zu segments%s",
                    s->owner, s->dir, (unsigned long long)s->unread_rec,
                    (unsigned long long)s->unread_samples, s->nseg,
                    s->st.corrupt_records ? ", bad records skipped" : "");
    s->next_open = open_spools;
    open_spools = s;
    *out = s;
    return MS_OK;
fail:
    spool_free(s);
    return rc;
}

void ms_spool_close(ms_spool *s)
{
    if (!s || --s->refs > 0) return;
    for (ms_spool **pp = &open_spools; *pp; pp = &(*pp)->next_open) {
        if (*pp == s) {
            *pp = s->next_open;
            break;
        }
    }
    spool_free(s);
}

int ms_spool_refs(const ms_spool *s)
{
    return s->refs;
}

void ms_spool_set_opts(ms_spool *s, const ms_spool_opts *o)
{
    s->o = *o;
}

const char *ms_spool_dir(const ms_spool *s)
{
    return s->dir;
}

/* ---- writing ---- */

/* Remember a loaded record (oldest first) until its ack. */
static int push_loaded(ms_spool *s, lrec l)
{
    if (s->rcount == s->rcap) {
        size_t cap = s->rcap ? s->rcap * 2 : 64;
        lrec *r = malloc(cap * sizeof *r);
        if (!r) return MS_ENOMEM;
        for (size_t i = 0; i < s->rcount; i++) r[i] = s->ring[(s->rhead + i) % s->rcap];
        free(s->ring);
        s->ring = r;
        s->rhead = 0;
        s->rcap = cap;
    }
    s->ring[(s->rhead + s->rcount++) % s->rcap] = l;
    s->loaded_samples += l.nsamples;
    return MS_OK;
}

/* Make room for `need` bytes under max_size; MS_EFULL when it cannot be. */
static int make_room(ms_spool *s, uint64_t need)
{
    if (!s->o.max_size) return MS_OK;
    if (need > s->o.max_size) return MS_EFULL;
    gc(s);
    if (s->disk + need <= s->o.max_size) return MS_OK;
    if (s->o.on_full == MS_SPOOL_DROP_NEWEST) return MS_EFULL;
    while (s->nseg > 0 && s->disk + need > s->o.max_size) remove_front(s);
    return MS_OK;
}

static int new_segment(ms_spool *s, ms_error *err)
{
    close_write(s);
    char path[4200];
    uint64_t id = s->next_id;
    seg_path(s, id, path, sizeof path);
    /* fsync: batch opens O_DSYNC: each write returns once it is on disk,
     * which costs less than a write then an fdatasync */
    int dsync = s->o.fsync == 0 ? O_DSYNC : 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | dsync, 0640);
    if (fd < 0) return ms_error_set(err, MS_EIO, "spool %s: %s", path, strerror(errno));
    if (add_seg(s, id, 0) != MS_OK) {
        close(fd);
        unlink(path);
        return ms_error_set(err, MS_ENOMEM, "out of memory");
    }
    s->wfd = fd;
    s->wfd_dsync = dsync != 0;
    if (s->o.fsync == 0) fsync_dir(s);
    return MS_OK;
}

int ms_spool_append(ms_spool *s, const void *data, size_t len, const char *endpoint,
                    uint32_t nsamples, double t, int loaded, int *kept, ms_error *err)
{
    size_t eplen = endpoint ? strlen(endpoint) : 0;
    if (kept) *kept = 0;
    if (len > MAX_DATA || eplen > MAX_EP)
        return ms_error_set(err, MS_EFULL, "record of %zu bytes is too large for the spool", len);
    uint64_t need = HDR + len + eplen;
    if (make_room(s, need) != MS_OK)
        return ms_error_set(err, MS_EFULL, "spool %s is full (max_size %llu bytes)", s->dir,
                            (unsigned long long)s->o.max_size);
    seg *g = s->wfd >= 0 ? &s->segs[s->nseg - 1] : NULL;
    if (!g || (g->size > 0 && g->size + need > s->o.segment_size)) {
        int rc = new_segment(s, err);
        if (rc != MS_OK) return rc;
        g = &s->segs[s->nseg - 1];
    }
    unsigned char h[HDR];
    memset(h, 0, sizeof h);
    put32(h, REC_MAGIC);
    put32(h + 8, (uint32_t)len);
    put32(h + 12, nsamples);
    put32(h + 16, (uint32_t)eplen);
    put64(h + 24, (uint64_t)(int64_t)(t * 1000));
    put32(h + 4, ms_crc32c(ms_crc32c(ms_crc32c(0, h + 8, HDR - 8), data, len), endpoint, eplen));
    struct iovec iov[3] = {{h, HDR}, {(void *)data, len}, {(void *)endpoint, eplen}};
    size_t done = 0;
    int vi = 0;
    while (done < need) {
        ssize_t w = writev(s->wfd, iov + vi, 3 - vi);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            if (ftruncate(s->wfd, (off_t)g->size) != 0) close_write(s);
            return ms_error_set(err, MS_EIO, "spool %s/%016llx.seg: %s", s->dir,
                                (unsigned long long)g->id, strerror(e));
        }
        done += (size_t)w;
        while (vi < 3 && (size_t)w >= iov[vi].iov_len) w -= (ssize_t)iov[vi++].iov_len;
        if (vi < 3) {
            iov[vi].iov_base = (char *)iov[vi].iov_base + w;
            iov[vi].iov_len -= (size_t)w;
        }
    }
    g->size += need;
    g->valid = g->size;
    s->disk += need;
    s->st.appended_records++;
    s->st.appended_bytes += need;
    if (loaded && s->unread_rec == 0 &&
        push_loaded(s, (lrec){g->id, g->size, t, nsamples}) == MS_OK) {
        s->rd = s->nseg - 1;
        s->rd_off = g->size;
        if (kept) *kept = 1;
    } else {
        g->unread_rec++;
        g->unread_samples += nsamples;
        g->unread_bytes += len;
        s->unread_rec++;
        s->unread_samples += nsamples;
        s->unread_bytes += len;
    }
    if (s->o.fsync == 0) {
        if (!s->wfd_dsync) fdatasync(s->wfd); /* the policy changed on reload */
    } else if (s->o.fsync > 0 && !s->dirty) {
        s->dirty = 1;
        s->dirty_since = mono_now();
    } else if (s->o.fsync > 0) {
        s->dirty = 1;
    }
    return MS_OK;
}

void ms_spool_sync(ms_spool *s, int force)
{
    if (!s->dirty || s->wfd < 0) return;
    if (!force && (s->o.fsync <= 0 || mono_now() - s->dirty_since < s->o.fsync)) return;
    fdatasync(s->wfd);
    s->dirty = 0;
}

/* ---- reading ---- */

/* Point rfd at segs[rd]. */
static int open_read(ms_spool *s)
{
    uint64_t id = s->segs[s->rd].id;
    if (s->rfd >= 0 && s->rfd_id == id) return 0;
    close_read(s);
    char path[4200];
    seg_path(s, id, path, sizeof path);
    s->rfd = open(path, O_RDONLY | O_CLOEXEC);
    s->rfd_id = id;
    return s->rfd < 0 ? -1 : 0;
}

int ms_spool_next(ms_spool *s, ms_spool_rec *rec)
{
    while (s->unread_rec && s->rd < s->nseg) {
        seg *g = &s->segs[s->rd];
        if (s->rd_off >= g->valid) {
            if (s->rd + 1 >= s->nseg) return MS_ENOENT;
            s->rd++;
            s->rd_off = 0;
            continue;
        }
        unsigned char h[HDR];
        const char *why = NULL;
        if (open_read(s) < 0)
            why = strerror(errno);
        else if (g->valid - s->rd_off < HDR || read_full(s->rfd, h, HDR, s->rd_off) != 0)
            why = "truncated record header";
        else if (!(why = check_header(h, rec)) &&
                 g->valid - s->rd_off - HDR < (uint64_t)rec->len + rec->eplen)
            why = "truncated record";
        if (!why) return MS_OK;
        cut_segment(s, s->rd, s->rd_off, why, 1);
    }
    return MS_ENOENT;
}

int ms_spool_take(ms_spool *s, void *dst)
{
    ms_spool_rec rec;
    if (ms_spool_next(s, &rec) != MS_OK) return MS_ENOENT;
    seg *g = &s->segs[s->rd];
    unsigned char h[HDR];
    size_t body = (size_t)rec.len + rec.eplen;
    if (read_full(s->rfd, h, HDR, s->rd_off) != 0 ||
        read_full(s->rfd, dst, body, s->rd_off + HDR) != 0) {
        cut_segment(s, s->rd, s->rd_off, "unreadable record", 1);
        return MS_EIO;
    }
    if (record_crc(h, dst, body) != get32(h + 4)) {
        cut_segment(s, s->rd, s->rd_off, "bad checksum", 1);
        return MS_EIO;
    }
    if (push_loaded(s, (lrec){g->id, s->rd_off + HDR + body, rec.t, rec.nsamples}) != MS_OK)
        return MS_ENOMEM;
    s->rd_off += HDR + body;
    g->unread_rec--;
    g->unread_samples -= rec.nsamples;
    g->unread_bytes -= rec.len;
    s->unread_rec--;
    s->unread_samples -= rec.nsamples;
    s->unread_bytes -= rec.len;
    return MS_OK;
}

void ms_spool_ack(ms_spool *s)
{
    if (!s->rcount) return;
    lrec l = s->ring[s->rhead];
    s->rhead = (s->rhead + 1) % s->rcap;
    s->rcount--;
    s->loaded_samples -= l.nsamples;
    /* segments before the acked one were read through: they go */
    while (s->nseg > 1 && s->segs[0].id < l.id) remove_front(s);
    if (s->nseg > 0 && s->segs[0].id == l.id) write_ack(s, l.id, l.end);
    gc(s);
}

uint64_t ms_spool_unread(const ms_spool *s)
{
    return s->unread_rec;
}

void ms_spool_get_stats(ms_spool *s, ms_spool_stats *st)
{
    *st = s->st;
    st->disk_bytes = s->disk;
    st->unread_records = s->unread_rec;
    st->unread_samples = s->unread_samples;
    st->unread_bytes = s->unread_bytes;
    st->loaded_records = s->rcount;
    st->loaded_samples = s->loaded_samples;
    st->segments = s->nseg;
    st->oldest = 0;
    ms_spool_rec rec;
    if (s->rcount)
        st->oldest = s->ring[s->rhead].t;
    else if (ms_spool_next(s, &rec) == MS_OK)
        st->oldest = rec.t;
}
