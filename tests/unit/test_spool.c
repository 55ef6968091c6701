/*
 * test_spool.c - the disk spool: append/read/ack, restart, rotation, both
 * max_size policies, a corrupt and a truncated segment, the ack file, the
 * directory lock.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ms_log.h"
#include "ms_spool.h"
#include "t.h"

static char base[512];

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static const char *fresh(const char *name)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", base, name);
    rm_rf(dir);
    return dir;
}

static int count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".seg")) n++;
    if (d) closedir(d);
    return n;
}

static ms_spool_opts opts(uint64_t max, uint64_t segsz, ms_spool_on_full pol)
{
    ms_spool_opts o = {max, segsz, pol, -1};
    return o;
}

/* Record i: "record <i>" padded with 'x' to `size` bytes, i samples. */
static void put(ms_spool *s, int i, size_t size, const char *ep, int *rc)
{
    char buf[4096];
    memset(buf, 'x', size);
    int n = snprintf(buf, sizeof buf, "record %d", i);
    buf[n] = ' ';
    *rc = ms_spool_append(s, buf, size, ep, (uint32_t)i, 1000.0 + i, 0, NULL, NULL);
}

/* Read the next record; returns its index (-1 none, -2 bad) and checks the
 * endpoint when ep is not NULL. */
static int get(ms_spool *s, size_t *len, char *ep_out)
{
    ms_spool_rec r;
    if (ms_spool_next(s, &r) != MS_OK) return -1;
    char *buf = malloc(r.len + r.eplen + 1);
    int rc = ms_spool_take(s, buf);
    if (rc != MS_OK) {
        free(buf);
        return -2;
    }
    buf[r.len + r.eplen] = 0;
    if (ep_out) snprintf(ep_out, 256, "%s", buf + r.len);
    if (len) *len = r.len;
    int i = -3;
    sscanf(buf, "record %d", &i);
    if ((uint32_t)i != r.nsamples) i = -4;
    free(buf);
    return i;
}

static void test_crc(void)
{
    T_EQ_INT(ms_crc32c(0, "123456789", 9), 0xe3069283u, "CRC-32C check value");
    T_EQ_INT(ms_crc32c(ms_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u, "CRC-32C in two parts");
    char big[1000];
    for (int i = 0; i < 1000; i++) big[i] = (char)(i * 7);
    uint32_t whole = ms_crc32c(0, big, 1000);
    T_EQ_INT(ms_crc32c(ms_crc32c(0, big, 333), big + 333, 667), whole, "in two uneven parts");
    T_EQ_INT(ms_crc32c_portable(0, "123456789", 9), 0xe3069283u, "portable: check value");
    int same = 1;
    for (size_t n = 0; n + 3 <= 1000; n += 37)
        same &= ms_crc32c_portable(7, big + 3, n) == ms_crc32c(7, big + 3, n);
    T_OK(same, "portable and default agree on every length and alignment");
}

static void test_basic(void)
{
    const char *dir = fresh("basic");
    ms_spool_opts o = opts(0, 1 << 20, MS_SPOOL_DROP_OLDEST);
    ms_spool *s;
    ms_error err = {0};
    T_EQ_INT(ms_spool_open(dir, &o, "test", &s, &err), MS_OK, "open creates the directory");
    int rc;
    for (int i = 1; i <= 3; i++) put(s, i, 100, i == 2 ? "/api/v1/series" : NULL, &rc);
    T_EQ_INT(ms_spool_unread(s), 3, "three unread");
    ms_spool_stats st;
    ms_spool_get_stats(s, &st);
    T_EQ_INT(st.unread_samples, 6, "samples counted");
    T_EQ_DBL(st.oldest, 1001, 1e-3, "oldest pending time");
    char ep[256];
    T_EQ_INT(get(s, NULL, ep), 1, "first record read back");
    T_EQ_STR(ep, "", "no endpoint");
    T_EQ_INT(get(s, NULL, ep), 2, "second record");
    T_EQ_STR(ep, "/api/v1/series", "endpoint kept");
    ms_spool_ack(s);
    T_EQ_INT(get(s, NULL, NULL), 3, "third record");
    T_EQ_INT(get(s, NULL, NULL), -1, "then nothing");
    ms_spool_get_stats(s, &st);
    T_EQ_INT(st.loaded_records, 2, "two loaded, not acked");
    ms_spool_ack(s);
    ms_spool_ack(s);
    ms_spool_get_stats(s, &st);
    T_EQ_INT(st.loaded_records + st.unread_records, 0, "all delivered");
    int kept = 0;
    T_EQ_INT(ms_spool_append(s, "abc", 3, NULL, 1, 5, 1, &kept, NULL), MS_OK, "append loaded");
    T_EQ_INT(kept, 1, "kept in memory (nothing unread)");
    T_EQ_INT(ms_spool_unread(s), 0, "not unread");
    ms_spool_ack(s);
    ms_spool *s2;
    T_EQ_INT(ms_spool_open(dir, &o, "test", &s2, &err), MS_OK, "second open in process");
    T_OK(s2 == s, "shares the open spool");
    ms_spool_close(s2);
    pid_t pid = fork();
    if (pid == 0) { /* another process: its own open of the lock file */
        char lp[1100];
        snprintf(lp, sizeof lp, "%s/lock", dir);
        int fd = open(lp, O_RDWR);
        _exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 ? 3 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    T_EQ_INT(WEXITSTATUS(status), 3, "another process cannot open it (lock)");
    ms_spool_close(s);
}

static void test_restart(void)
{
    const char *dir = fresh("restart");
    ms_spool_opts o = opts(0, 1 << 20, MS_SPOOL_DROP_OLDEST);
    ms_spool *s;
    int rc;
    ms_spool_open(dir, &o, "test", &s, NULL);
    for (int i = 1; i <= 5; i++) put(s, i, 50, i == 4 ? "/ep" : NULL, &rc);
    T_EQ_INT(get(s, NULL, NULL), 1, "read 1");
    T_EQ_INT(get(s, NULL, NULL), 2, "read 2");
    T_EQ_INT(get(s, NULL, NULL), 3, "read 3 (not acked)");
    ms_spool_ack(s);
    ms_spool_ack(s);
    ms_spool_close(s);
    T_EQ_INT(ms_spool_open(dir, &o, "test", &s, NULL), MS_OK, "reopen");
    T_EQ_INT(ms_spool_unread(s), 3, "3, 4 and 5 left (3 was read but not acked)");
    char ep[256];
    T_EQ_INT(get(s, NULL, NULL), 3, "3 again");
    T_EQ_INT(get(s, NULL, ep), 4, "then 4");
    T_EQ_STR(ep, "/ep", "with its endpoint");
    put(s, 6, 50, NULL, &rc);
    T_EQ_INT(get(s, NULL, NULL), 5, "then 5");
    T_EQ_INT(get(s, NULL, NULL), 6, "then 6 (appended after the reopen)");
    for (int i = 0; i < 4; i++) ms_spool_ack(s);
    ms_spool_close(s);
    ms_spool_open(dir, &o, "test", &s, NULL);
    T_EQ_INT(ms_spool_unread(s), 0, "everything acked stays delivered");
    ms_spool_close(s);
    T_EQ_INT(count_segments(dir), 0, "delivered segments deleted");
}

static void test_rotation(void)
{
    const char *dir = fresh("rotation");
    ms_spool_opts o = opts(0, 300, MS_SPOOL_DROP_OLDEST);
    ms_spool *s;
    int rc;
    ms_spool_open(dir, &o, "test", &s, NULL);
    for (int i = 1; i <= 10; i++) put(s, i, 100, NULL, &rc);
    T_EQ_INT(count_segments(dir), 5, "two 132-byte records per 300-byte segment");
    int ok = 1;
    for (int i = 1; i <= 4; i++) ok &= get(s, NULL, NULL) == i;
    for (int i = 1; i <= 4; i++) ms_spool_ack(s);
    T_OK(ok, "records 1-4 in order");
    T_EQ_INT(count_segments(dir), 3, "two delivered segments deleted");
    ms_spool_close(s);
    ms_spool_open(dir, &o, "test", &s, NULL);
    ok = 1;
    for (int i = 5; i <= 10; i++) ok &= get(s, NULL, NULL) == i;
    T_OK(ok, "5-10 after a restart");
    for (int i = 5; i <= 10; i++) ms_spool_ack(s);
    ms_spool_stats st;
    ms_spool_get_stats(s, &st);
    T_EQ_INT(st.disk_bytes, 0, "nothing left on disk");
    ms_spool_close(s);
}

static void test_full(void)
{
    const char *dir = fresh("oldest");
    ms_spool_opts o = opts(1000, 300, MS_SPOOL_DROP_OLDEST);
    ms_spool *s;
    int rc, all_ok = 1;
    ms_spool_open(dir, &o, "test", &s, NULL);
    for (int i = 1; i <= 20; i++) {
        put(s, i, 100, NULL, &rc);
        all_ok &= rc == MS_OK;
    }
    ms_spool_stats st;
    ms_spool_get_stats(s, &st);
    T_OK(all_ok, "drop_oldest: every append succeeds");
    T_OK(st.disk_bytes <= 1000, "disk bytes %llu <= max_size", (unsigned long long)st.disk_bytes);
    T_EQ_INT(st.dropped_records + st.unread_records, 20, "dropped + kept = appended");
    T_OK(st.dropped_samples > 0, "dropped samples counted (%llu)",
         (unsigned long long)st.dropped_samples);
    int first = get(s, NULL, NULL), last = first, n = 1, i;
    while ((i = get(s, NULL, NULL)) > 0) last = i, n++;
    T_EQ_INT(last, 20, "the newest is kept");
    T_EQ_INT(last - first + 1, n, "the oldest went, the rest is contiguous");
    T_EQ_INT(first, (int)st.dropped_records + 1, "what went is the oldest");
    ms_spool_close(s);

    dir = fresh("newest");
    o.on_full = MS_SPOOL_DROP_NEWEST;
    ms_spool_open(dir, &o, "test", &s, NULL);
    int accepted = 0, refused = 0;
    for (int j = 1; j <= 20; j++) {
        put(s, j, 100, NULL, &rc);
        if (rc == MS_OK) accepted++;
        if (rc == MS_EFULL) refused++;
    }
    ms_spool_get_stats(s, &st);
    T_OK(refused > 0 && accepted + refused == 20, "drop_newest: %d refused with MS_EFULL", refused);
    T_OK(st.disk_bytes <= 1000, "disk bytes %llu <= max_size", (unsigned long long)st.disk_bytes);
    T_EQ_INT(get(s, NULL, NULL), 1, "the oldest is kept");
    T_EQ_INT(st.dropped_records, 0, "nothing deleted");
    int big_rc = ms_spool_append(s, "x", 2000, NULL, 1, 1, 0, NULL, NULL);
    T_EQ_INT(big_rc, MS_EFULL, "a record larger than max_size is refused");
    ms_spool_close(s);
}

/* Flip byte `at` of the first segment file of dir. */
static void poke(const char *dir, uint64_t seg, long at, long truncate_by)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%016llx.seg", dir, (unsigned long long)seg);
    int fd = open(p, O_RDWR);
    if (truncate_by) {
        struct stat st;
        fstat(fd, &st);
        if (ftruncate(fd, st.st_size - truncate_by) != 0) perror("ftruncate");
    } else {
        unsigned char c;
        if (pread(fd, &c, 1, at) != 1) perror("pread");
        c ^= 0x55;
        if (pwrite(fd, &c, 1, at) != 1) perror("pwrite");
    }
    close(fd);
}

static void test_corrupt(void)
{
    const char *dir = fresh("corrupt");
    ms_spool_opts o = opts(0, 400, MS_SPOOL_DROP_OLDEST);
    ms_spool *s;
    int rc;
    ms_spool_open(dir, &o, "test", &s, NULL);
    for (int i = 1; i <= 6; i++) put(s, i, 100, NULL, &rc); /* 3 per segment */
    ms_spool_close(s);
    T_EQ_INT(count_segments(dir), 2, "two segments");
    poke(dir, 0, 132 + 32 + 50, 0); /* a data byte of record 2 */
    ms_log_set_level(MS_LOG_ERROR);
    T_EQ_INT(ms_spool_open(dir, &o, "test", &s, NULL), MS_OK, "opens despite a bad checksum");
    ms_spool_stats st;
    ms_spool_get_stats(s, &st);
    T_EQ_INT(st.corrupt_records, 1, "bad record counted");
    T_EQ_INT(st.corrupt_bytes, 264, "the rest of its segment skipped");
    T_EQ_INT(st.unread_records, 4, "record 1 and the next segment remain");
    int seq[5], ok = 1;
    for (int i = 0; i < 5; i++) seq[i] = get(s, NULL, NULL);
    ok = seq[0] == 1 && seq[1] == 4 && seq[2] == 5 && seq[3] == 6 && seq[4] == -1;
    T_OK(ok, "read 1, 4, 5, 6 (got %d %d %d %d %d)", seq[0], seq[1], seq[2], seq[3], seq[4]);
    for (int i = 0; i < 4; i++) ms_spool_ack(s);
    T_EQ_INT(count_segments(dir), 0, "the corrupt segment is deleted once delivered");
    ms_spool_close(s);

    dir = fresh("truncated");
    ms_spool_open(dir, &o, "test", &s, NULL);
    for (int i = 1; i <= 3; i++) put(s, i, 100, NULL, &rc);
    ms_spool_close(s);
    poke(dir, 0, 0, 10); /* a torn last write */
    T_EQ_INT(ms_spool_open(dir, &o, "test", &s, NULL), MS_OK, "opens with a torn tail");
    ms_spool_get_stats(s, &st);
    T_EQ_INT(st.corrupt_records, 1, "torn record counted");
    T_EQ_INT(st.unread_records, 2, "the two whole records remain");
    put(s, 4, 100, NULL, &rc);
    int a = get(s, NULL, NULL), b = get(s, NULL, NULL), c = get(s, NULL, NULL);
    T_OK(a == 1 && b == 2 && c == 4, "1, 2, then 4 appended in a new segment (%d %d %d)", a, b, c);
    ms_spool_close(s);

    dir = fresh("garbage");
    mkdir(dir, 0755);
    char p[1024];
    snprintf(p, sizeof p, "%s/00000000000000a0.seg", dir);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < 5000; i++) fputc((i * 131) & 0xff, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/ack", dir);
    f = fopen(p, "w");
    fputs("not an ack file at all", f);
    fclose(f);
    T_EQ_INT(ms_spool_open(dir, &o, "test", &s, NULL), MS_OK, "a garbage segment and ack file");
    ms_spool_get_stats(s, &st);
    T_OK(st.corrupt_records == 1 && st.unread_records == 0, "garbage skipped, nothing to read");
    put(s, 1, 10, NULL, &rc);
    T_EQ_INT(get(s, NULL, NULL), 1, "new records go to a new segment");
    ms_spool_ack(s);
    ms_spool_close(s);
    ms_log_set_level(MS_LOG_WARN);
}

/* A record changed on disk after the open scan is caught by take. */
static void test_corrupt_late(void)
{
    const char *dir = fresh("late");
    ms_spool_opts o = opts(0, 1 << 20, MS_SPOOL_DROP_OLDEST);
    ms_spool *s;
    int rc;
    ms_spool_open(dir, &o, "test", &s, NULL);
    for (int i = 1; i <= 3; i++) put(s, i, 100, NULL, &rc);
    poke(dir, 0, 132 + 40, 0);
    ms_log_set_level(MS_LOG_ERROR);
    T_EQ_INT(get(s, NULL, NULL), 1, "record 1");
    T_EQ_INT(get(s, NULL, NULL), -2, "record 2 fails its checksum at read");
    T_EQ_INT(get(s, NULL, NULL), -1, "the rest of the segment is skipped");
    ms_spool_stats st;
    ms_spool_get_stats(s, &st);
    T_EQ_INT(st.corrupt_records, 1, "counted");
    T_EQ_INT(st.unread_records, 0, "nothing unread left");
    ms_log_set_level(MS_LOG_WARN);
    ms_spool_ack(s);
    ms_spool_close(s);
}

int main(void)
{
    ms_log_set_level(MS_LOG_WARN);
    snprintf(base, sizeof base, "tests/tmp/unit_spool.%d", (int)getpid());
    mkdir("tests", 0755);
    mkdir("tests/tmp", 0755);
    mkdir(base, 0755);
    test_crc();
    test_basic();
    test_restart();
    test_rotation();
    test_full();
    test_corrupt();
    test_corrupt_late();
    const char *names[] = {"basic",   "restart",   "rotation", "oldest", "newest",
                           "corrupt", "truncated", "garbage",  "late"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) rm_rf(fresh(names[i]));
    rmdir(base);
    return t_done();
}
