/* test_config.c - config.yaml: node tree, conversions, schemas, ms_config_load. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ms_config.h"
#include "ms_err.h"
#include "t.h"

static char tmpdir[256];

/* Write `text` to tmpdir/name; returns the path in a static buffer. */
static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f) return path;
    fputs(text, f);
    fclose(f);
    return path;
}

static ms_node *parse(const char *text, ms_error *err)
{
    ms_node *n = NULL;
    if (ms_node_parse_string("t.yaml", text, strlen(text), &n, err) != MS_OK) return NULL;
    return n;
}

/* Message of the error that parsing `text` gives ("" when it parses). */
static const char *parse_err(const char *text)
{
    static ms_error err;
    err.msg[0] = '\0';
    ms_node *n = parse(text, &err);
    if (n) {
        ms_node_free(n);
        return "";
    }
    return err.msg;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_durations(void)
{
    static const struct {
        const char *s;
        double v;
    } good[] = {{"10s", 10},   {"500ms", 0.5}, {"2m", 120},        {"1h", 3600}, {"1d", 86400},
                {"1.5s", 1.5}, {"30", 30},     {"250us", 0.00025}, {"0", 0},     {".5s", 0.5}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -99;
        int rc = ms_parse_duration(good[i].s, &v);
        T_OK(rc == MS_OK && fabs(v - good[i].v) <= 1e-9 * (1 + good[i].v), "duration %s = %g",
             good[i].s, v);
    }
    static const char *bad[] = {"-1s", "", "10x", "s", "1.2.3s", "10 s", "1e3s", "inf", "10sec"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v = 0;
        T_EQ_INT(ms_parse_duration(bad[i], &v), MS_EINVAL, bad[i]);
    }
}

static void test_sizes(void)
{
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {{"100", 100},           {"100B", 100},
                {"4kB", 4000},          {"4k", 4000},
                {"4KB", 4000},          {"512KiB", 524288},
                {"64MiB", 64ULL << 20}, {"10MB", 10000000},
                {"1GiB", 1ULL << 30},   {"2GB", 2000000000ULL},
                {"1TiB", 1ULL << 40},   {"3TB", 3000000000000ULL},
                {"1.5KiB", 1536},       {"18446744073709551615", UINT64_MAX}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 7;
        int rc = ms_parse_size(good[i].s, &v);
        T_OK(rc == MS_OK && v == good[i].v, "size %s = %llu", good[i].s, (unsigned long long)v);
    }
    static const char *bad[] = {
        "", "MiB", "-1", "10XB", "1.5", "1.MiB", "1 MB", "18446744073709551616", "99999999TiB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 0;
        T_EQ_INT(ms_parse_size(bad[i], &v), MS_EINVAL, bad[i]);
    }
}

static void test_addresses(void)
{
    char host[64];
    int port = 0;
    T_EQ_INT(ms_parse_address("localhost:8125", host, sizeof host, &port), MS_OK, "host:port");
    T_EQ_STR(host, "localhost", "host of host:port");
    T_EQ_INT(port, 8125, "port of host:port");
    T_EQ_INT(ms_parse_address("[::1]:9000", host, sizeof host, &port), MS_OK, "[v6]:port");
    T_EQ_STR(host, "::1", "host of [::1]:9000");
    T_EQ_INT(port, 9000, "port of [::1]:9000");
    T_EQ_INT(ms_parse_address(":2003", host, sizeof host, &port), MS_OK, ":port");
    T_EQ_STR(host, "127.0.0.1", ":port defaults the host");
    T_EQ_INT(port, 2003, "port of :2003");
    T_EQ_INT(ms_parse_address("h:65535", host, sizeof host, &port), MS_OK, "port 65535");
    static const char *bad[] = {"host",  "host:",   "host:0", "host:65536", "::1:80",
                                "h:80x", "[::1]80", "[]:80",  "h:-1",       "a b:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        T_EQ_INT(ms_parse_address(bad[i], host, sizeof host, &port), MS_EINVAL, bad[i]);
    char small[4];
    T_EQ_INT(ms_parse_address("longhost:80", small, sizeof small, &port), MS_EINVAL,
             "host longer than the buffer");
}

static void test_bools(void)
{
    static const struct {
        const char *s;
        int v;
    } good[] = {{"true", 1}, {"False", 0}, {"YES", 1}, {"no", 0}, {"on", 1}, {"Off", 0}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int v = -1;
        int rc = ms_parse_bool(good[i].s, &v);
        T_OK(rc == MS_OK && v == good[i].v, "bool %s = %d", good[i].s, v);
    }
    int v;
    T_EQ_INT(ms_parse_bool("maybe", &v), MS_EINVAL, "bool maybe");
    T_EQ_INT(ms_parse_bool("", &v), MS_EINVAL, "bool empty");
    T_EQ_INT(ms_parse_bool("truex", &v), MS_EINVAL, "bool truex");
}

static void test_tree(void)
{
    ms_error err = {0, ""};
    ms_node *root = parse("a: 1\n"
                          "b: \"x\"\n"
                          "c:\n"
                          "  d: [1, two]\n"
                          "  e: {f: g}\n",
                          &err);
    T_OK(root != NULL, "tree parses (%s)", err.msg);
    if (!root) return;
    T_EQ_INT(root->type, MS_NODE_MAP, "root is a map");
    T_EQ_INT(root->n, 3, "root has 3 keys");
    const ms_node *a = ms_node_get(root, "a"), *b = ms_node_get(root, "b");
    const ms_node *c = ms_node_get(root, "c");
    T_OK(a && a->type == MS_NODE_SCALAR && !strcmp(a->value, "1") && a->plain, "a is plain 1");
    T_OK(a && a->line == 1 && a->col == 4 && a->key_line == 1 && a->key_col == 1,
         "a at 1:4, key at 1:1");
    T_OK(b && !strcmp(b->value, "x") && b->plain == 0, "b is quoted x");
    T_OK(b && b->line == 2 && b->col == 4, "b at 2:4");
    T_OK(c && c->type == MS_NODE_MAP && c->key_line == 3 && c->line == 4 && c->col == 3,
         "c is a map whose key is at 3:1 and content at 4:3");
    const ms_node *d = ms_node_get(c, "d");
    T_OK(d && d->type == MS_NODE_SEQ && d->n == 2 && d->line == 4 && d->col == 6,
         "c.d is a list of 2 at 4:6");
    T_OK(d && d->n == 2 && !strcmp(d->items[1]->value, "two") && d->items[1]->col == 10 &&
             d->items[1]->key == NULL,
         "c.d[1] is 'two' at col 10 with no key");
    const ms_node *f = ms_node_get(ms_node_get(c, "e"), "f");
    T_OK(f && !strcmp(f->value, "g") && !strcmp(f->key, "f"), "c.e.f = g");
    T_OK(ms_node_get(root, "zz") == NULL, "missing key gives NULL");
    T_OK(ms_node_get(a, "x") == NULL, "get on a scalar gives NULL");
    T_OK(ms_node_get(NULL, "x") == NULL, "get on NULL gives NULL");
    ms_node_free(root);

    ms_node *tagged = parse("a: !!str 10\n", &err);
    T_OK(tagged && ms_node_get(tagged, "a")->plain == 0, "!!str counts as quoted");
    ms_node_free(tagged);

    static const char *empties[] = {"", "# only a comment\n", "---\n", "~\n"};
    for (size_t i = 0; i < 4; i++) {
        ms_node *e = parse(empties[i], &err);
        T_OK(e && e->type == MS_NODE_MAP && e->n == 0, "empty document %zu is an empty map", i);
        ms_node_free(e);
    }

    T_EQ_STR(parse_err("a: 1\nb: 2\na: 3\n"), "t.yaml:3:1: duplicate key 'a' (first at line 1)",
             "duplicate key names both lines");
    T_EQ_STR(parse_err("x:\n  a: &anc 1\n"), "t.yaml:2:6: anchors are not supported (&anc)",
             "anchor rejected with position");
    T_EQ_STR(parse_err("a: 1\nb: *anc\n"), "t.yaml:2:4: aliases are not supported (*anc)",
             "alias rejected with position");
    T_EQ_STR(parse_err("a: 1\n*anc : 2\n"), "t.yaml:2:1: aliases are not supported (*anc)",
             "alias as a key rejected");
    T_EQ_STR(parse_err("? [a]\n: 1\n"), "t.yaml:1:3: map keys must be scalars",
             "non-scalar key rejected");
    T_EQ_STR(parse_err("a: 1\n---\nb: 2\n"), "t.yaml:2:1: only one YAML document is allowed",
             "second document rejected");
    const char *m = parse_err("a: b: c\n");
    T_EQ_STR(m, "t.yaml:1:5: mapping values are not allowed in this context",
             "libyaml scanner error has file:line:col");
    m = parse_err("a:\n  - 1\n  b: 2\n");
    T_OK(starts_with(m, "t.yaml:3:3: did not find expected '-' indicator") &&
             strstr(m, "while parsing a block collection"),
         "libyaml parser error has position and context: %s", m);
    m = parse_err("a: \"unterminated\n");
    T_OK(starts_with(m, "t.yaml:2:1: found unexpected end of stream") &&
             strstr(m, "while scanning a quoted scalar"),
         "unterminated quote: %s", m);
    char deep[401] = "";
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    deep[400] = '\0';
    T_OK(strstr(parse_err(deep), "nesting is too deep") != NULL, "deep nesting rejected");
}

static void test_parse_file(void)
{
    ms_error err = {0, ""};
    ms_node *n = NULL;
    T_EQ_INT(ms_node_parse_file("/nonexistent/x.yaml", &n, &err), MS_ENOENT, "missing file");
    T_OK(starts_with(err.msg, "/nonexistent/x.yaml: "), "missing file names it: %s", err.msg);
    const char *p = write_file("tree.yaml", "k:\n  - v\n");
    T_EQ_INT(ms_node_parse_file(p, &n, &err), MS_OK, "parse a file");
    const ms_node *k = ms_node_get(n, "k");
    T_OK(k && k->type == MS_NODE_SEQ && k->n == 1 && k->items[0]->line == 2, "file tree k[0]");
    ms_node_free(n);
}

static int equal_texts(const char *x, const char *y)
{
    ms_node *a = parse(x, NULL), *b = parse(y, NULL);
    int eq = a && b && ms_node_equal(a, b);
    ms_node_free(a);
    ms_node_free(b);
    return eq;
}

static void test_equal(void)
{
    T_OK(equal_texts("a: {b: [1, 2]}\n", "\n\na:\n  b:\n    - 1\n    - 2\n"),
         "same tree at other positions is equal");
    T_OK(equal_texts("a: 1\nb: 2\n", "b: 2\na: 1\n"), "map key order does not matter");
    T_OK(!equal_texts("a: [1, 2]\n", "a: [2, 1]\n"), "list order matters");
    T_OK(!equal_texts("a: 10\n", "a: \"10\"\n"), "plain 10 differs from quoted \"10\"");
    T_OK(!equal_texts("a: 1\n", "a: 2\n"), "changed value differs");
    T_OK(!equal_texts("a: 1\n", "a: 1\nb: 1\n"), "added key differs");
    T_OK(!equal_texts("a: 1\n", "b: 1\n"), "renamed key differs");
    T_OK(!equal_texts("a: [1]\n", "a: {x: 1}\n"), "list vs map differs");
    T_OK(ms_node_equal(NULL, NULL) && !ms_node_equal(NULL, (const ms_node *)&tmpdir),
         "NULL equals only NULL");
}

typedef struct tcfg {
    char *name;
    int on;
    int64_t count;
    double ratio;
    double wait;
    double jitter;
    uint64_t mem;
    ms_address addr;
    ms_strlist list;
    ms_tags tags;
    const ms_node *extra;
} tcfg;

#define TF(k, t, d)                                                                                \
    {                                                                                              \
#k, t, d, offsetof(tcfg, k), "help of " #k                                                 \
    }
static const ms_field tfields[] = {
    TF(name, MS_T_STRING, "anon"),    TF(on, MS_T_BOOL, "true"),
    TF(count, MS_T_INT, "-3"),        TF(ratio, MS_T_NUMBER, "0.25"),
    TF(wait, MS_T_DURATION, "10s"),   TF(jitter, MS_T_DURATION, "auto"),
    TF(mem, MS_T_SIZE, "1KiB"),       TF(addr, MS_T_ADDRESS, ":8125"),
    TF(list, MS_T_STRLIST, "[a, b]"), TF(tags, MS_T_TAGS, "{x: y}"),
    TF(extra, MS_T_NODE, NULL),       {NULL, 0, NULL, 0, NULL}};

/* Apply tfields to section `sec` of `text`; returns the rc, err filled. */
static int apply(const char *text, tcfg *c, ms_error *err)
{
    ms_node *root = parse(text, err);
    memset(c, 0, sizeof *c);
    if (!root) return -100;
    int rc = ms_schema_apply(tfields, ms_node_get(root, "sec"), c, 0, "t.yaml", err);
    ms_schema_free(tfields, c);
    ms_node_free(root);
    return rc;
}

static void test_schema(void)
{
    ms_error err = {0, ""};
    tcfg c;
    memset(&c, 0, sizeof c);
    T_EQ_INT(ms_schema_apply(tfields, NULL, &c, 0, "t.yaml", &err), MS_OK, "defaults apply");
    T_EQ_STR(c.name, "anon", "string default");
    T_OK(c.on == 1 && c.count == -3 && c.ratio == 0.25 && c.wait == 10 && c.mem == 1024,
         "bool/int/number/duration/size defaults");
    T_EQ_DBL(c.jitter, -1, 0, "auto default is -1");
    T_OK(!strcmp(c.addr.host, "127.0.0.1") && c.addr.port == 8125, "address default");
    T_OK(c.list.n == 2 && !strcmp(c.list.v[0], "a") && !strcmp(c.list.v[1], "b"),
         "list default [a, b]");
    T_OK(c.tags.n == 1 && !strcmp(c.tags.k[0], "x") && !strcmp(c.tags.v[0], "y"),
         "tags default {x: y}");
    T_OK(c.extra == NULL, "node default NULL");
    ms_schema_free(tfields, &c);
    T_OK(c.name == NULL && c.list.v == NULL && c.tags.n == 0, "schema_free clears");

    ms_node *root = parse("sec:\n"
                          "  name: bob\n"
                          "  on: no\n"
                          "  count: 42\n"
                          "  ratio: 1.5e2\n"
                          "  wait: 250ms\n"
                          "  jitter: 2s\n"
                          "  mem: 2MiB\n"
                          "  addr: \"[::1]:99\"\n"
                          "  list: single\n"
                          "  tags: {dc: eu, rack: \"7\"}\n"
                          "  extra: {deep: [1]}\n",
                          &err);
    memset(&c, 0, sizeof c);
    int rc = ms_schema_apply(tfields, ms_node_get(root, "sec"), &c, 0, "t.yaml", &err);
    T_EQ_INT(rc, MS_OK, "overrides apply");
    T_EQ_STR(c.name, "bob", "string override");
    T_OK(c.on == 0 && c.count == 42 && c.ratio == 150 && c.wait == 0.25 && c.jitter == 2 &&
             c.mem == 2u << 20,
         "scalar overrides");
    T_OK(!strcmp(c.addr.host, "::1") && c.addr.port == 99, "address override");
    T_OK(c.list.n == 1 && !strcmp(c.list.v[0], "single"), "one scalar is a list of one");
    T_OK(c.tags.n == 2 && !strcmp(c.tags.k[1], "rack") && !strcmp(c.tags.v[1], "7"),
         "tags in document order");
    T_OK(c.extra && c.extra == ms_node_get(ms_node_get(root, "sec"), "extra"),
         "node field points into the tree");
    ms_schema_free(tfields, &c);
    ms_node_free(root);

    T_EQ_INT(apply("sec:\n  list: [p, q, r]\n  jitter: auto\n", &c, &err), MS_OK, "list form");
    T_EQ_INT(apply("sec:\n  name: x\n  bogus: 1\n", &c, &err), MS_EINVAL, "unknown key");
    T_EQ_STR(err.msg,
             "t.yaml:3:3: unknown key 'bogus' in section 'sec' (known: name, on, count, ratio, "
             "wait, jitter, mem, addr, list, tags, extra)",
             "unknown key message");
    apply("sec:\n  wait: abc\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:9: sec.wait: expected a duration like 10s or 500ms, got 'abc'",
             "bad duration message");
    apply("sec:\n  jitter: soon\n", &c, &err);
    T_EQ_STR(err.msg,
             "t.yaml:2:11: sec.jitter: expected auto or a duration like 10s or 500ms, got 'soon'",
             "bad auto duration message");
    T_EQ_INT(apply("sec:\n  wait: auto\n", &c, &err), MS_EINVAL, "auto only where default");
    apply("sec:\n  on: maybe\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:7: sec.on: expected true or false, got 'maybe'", "bad bool");
    apply("sec:\n  count: 1.5\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:10: sec.count: expected an integer, got '1.5'", "bad int");
    apply("sec:\n  ratio: nan\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:10: sec.ratio: expected a number, got 'nan'", "bad number");
    apply("sec:\n  mem: lots\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:8: sec.mem: expected a size like 64MiB or 512kB, got 'lots'",
             "bad size");
    apply("sec:\n  addr: nope\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:9: sec.addr: expected an address like host:port, got 'nope'",
             "bad address");
    apply("sec:\n  name: [1]\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:9: sec.name: expected a string, got a list", "string not list");
    apply("sec:\n  list: [a, {b: 1}]\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:13: sec.list[1]: expected a string, got a map", "bad list item");
    apply("sec:\n  tags: {a: [1]}\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:13: sec.tags.a: expected a string, got a list", "bad tag value");
    apply("sec:\n  tags: [a]\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:2:9: sec.tags: expected a map of names to values, got a list",
             "tags not a map");
    apply("sec: [1]\n", &c, &err);
    T_EQ_STR(err.msg, "t.yaml:1:6: sec: expected a map, got a list", "section not a map");

    root = parse("name: top\nwho: 1\n", &err);
    memset(&c, 0, sizeof c);
    rc = ms_schema_apply(tfields, root, &c, 0, "t.yaml", &err);
    T_EQ_INT(rc, MS_EINVAL, "unknown key at top level");
    T_OK(starts_with(err.msg, "t.yaml:2:1: unknown key 'who' in section 'top level'"),
         "top level section name: %s", err.msg);
    T_EQ_STR(c.name, "top", "fields set before the error stay owned by out");
    ms_schema_free(tfields, &c);
    memset(&c, 0, sizeof c);
    T_EQ_INT(ms_schema_apply(tfields, root, &c, 1, "t.yaml", &err), MS_OK, "allow_extra");
    ms_schema_free(tfields, &c);
    ms_node_free(root);

    char *doc = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&doc, &len);
    ms_schema_write_doc(tfields, "sec", f);
    fclose(f);
    T_OK(doc && strstr(doc, "| key | type | default | help |\n"), "doc table header");
    T_OK(doc && strstr(doc, "| `sec.wait` | duration | `10s` | help of wait |\n"), "doc row");
    T_OK(doc && strstr(doc, "| `sec.extra` | section |  | help of extra |\n"), "doc row no def");
    free(doc);
}

/* Load `text` as tmpdir/name; returns rc and leaves the message in err. */
static int load_text(const char *name, const char *text, ms_error *err)
{
    ms_config *c = NULL;
    int rc = ms_config_load(write_file(name, text), &c, err);
    ms_config_free(c);
    return rc;
}

static void test_load(void)
{
    ms_error err = {0, ""};
    ms_config *c = NULL;
    const char *p = write_file("good.yaml", "agent:\n"
                                            "  hostname: web1\n"
                                            "  interval: 5s\n"
                                            "  tags: { cluster: prod }\n"
                                            "  log_level: warn\n"
                                            "  check_memory: 8MiB\n"
                                            "paths:\n"
                                            "  checks: [checks, /opt/checks, ../shared]\n"
                                            "  lua: ./mylua\n"
                                            "checks:\n"
                                            "  load: { interval: 5s, load_high: 80 }\n"
                                            "  cpu:\n"
                                            "processors: [drop_stale]\n"
                                            "listeners:\n"
                                            "  json: { udp: \"127.0.0.1:5090\" }\n"
                                            "forwarders:\n"
                                            "  prom: { type: prometheus }\n"
                                            "scripts:\n");
    int rc = ms_config_load(p, &c, &err);
    T_EQ_INT(rc, MS_OK, "good config loads");
    if (rc != MS_OK) {
        printf("# %s\n", err.msg);
        return;
    }
    T_EQ_STR(c->path, p, "path kept");
    T_EQ_STR(c->dir, tmpdir, "dir is the file's directory");
    T_EQ_STR(c->agent.hostname, "web1", "hostname");
    T_EQ_DBL(c->agent.interval, 5, 0, "interval");
    T_OK(c->agent.tags.n == 1 && !strcmp(c->agent.tags.v[0], "prod"), "agent tags");
    T_EQ_STR(c->agent.log_level, "warn", "log_level");
    T_EQ_INT(c->agent.check_memory, 8u << 20, "check_memory");
    T_EQ_INT(c->agent.max_series, 100000, "max_series default");
    T_EQ_DBL(c->agent.shutdown_timeout, 5, 0, "shutdown_timeout default");
    T_EQ_DBL(c->agent.check_timeout, 10, 0, "check_timeout default");
    T_EQ_DBL(c->agent.check_jitter, -1, 0, "check_jitter default auto");
    T_EQ_DBL(c->agent.check_slice, 0.01, 1e-12, "check_slice default");
    T_EQ_DBL(c->agent.stats_interval, 10, 0, "stats_interval default");
    char want[600];
    T_EQ_INT(c->paths.checks.n, 3, "three check dirs");
    snprintf(want, sizeof want, "%s/checks", tmpdir);
    T_EQ_STR(c->paths.checks.v[0], want, "relative check dir resolved");
    T_EQ_STR(c->paths.checks.v[1], "/opt/checks", "absolute dir kept");
    snprintf(want, sizeof want, "%s/../shared", tmpdir);
    T_EQ_STR(c->paths.checks.v[2], want, "../ dir resolved against the file's dir");
    snprintf(want, sizeof want, "%s/mylua", tmpdir);
    T_OK(c->paths.lua.n == 1 && !strcmp(c->paths.lua.v[0], want), "scalar lua path, ./ dropped");
    snprintf(want, sizeof want, "%s/forwarders", tmpdir);
    T_OK(c->paths.forwarders.n == 1 && !strcmp(c->paths.forwarders.v[0], want),
         "default forwarders path resolved");
    T_OK(c->checks && c->checks->n == 2 && ms_node_get(c->checks, "load"), "checks node");
    T_OK(c->processors && c->processors->type == MS_NODE_SEQ && c->processors->n == 1,
         "processors node");
    T_OK(c->listeners && ms_node_get(c->listeners, "json"), "listeners node");
    T_OK(c->forwarders && ms_node_get(c->forwarders, "prom"), "forwarders node");
    T_OK(c->scripts == NULL, "null scripts section is NULL");
    char *r = ms_config_resolve(c, "x/y.lua");
    snprintf(want, sizeof want, "%s/x/y.lua", tmpdir);
    T_EQ_STR(r, want, "ms_config_resolve relative");
    free(r);
    ms_config_free(c);

    rc = ms_config_load(write_file("empty.yaml", ""), &c, &err);
    T_EQ_INT(rc, MS_OK, "empty config loads");
    if (rc == MS_OK) {
        char h[256] = "";
        gethostname(h, sizeof h);
        T_OK(c->agent.hostname[0] && !strcmp(c->agent.hostname, h), "hostname from the system");
        T_EQ_DBL(c->agent.interval, 10, 0, "interval default");
        T_EQ_STR(c->agent.log_level, "info", "log_level default");
        T_OK(c->checks == NULL && c->forwarders == NULL && c->processors == NULL,
             "absent sections are NULL");
        ms_config_free(c);
    }

    /* relative config path: dir becomes absolute */
    char cwd[512];
    if (getcwd(cwd, sizeof cwd) && chdir(tmpdir) == 0) {
        rc = ms_config_load("empty.yaml", &c, &err);
        T_OK(rc == MS_OK && !strcmp(c->dir, tmpdir), "relative path gets an absolute dir");
        ms_config_free(c);
        if (chdir(cwd) != 0) perror("chdir");
    }

    char expect[700];
    T_EQ_INT(load_text("b1.yaml", "agent: {}\nbogus: 1\n", &err), MS_EINVAL, "unknown top key");
    snprintf(expect, sizeof expect,
             "%s/b1.yaml:2:1: unknown key 'bogus' in section 'top level' (known: agent, paths, "
             "checks, scripts, listeners, processors, forwarders)",
             tmpdir);
    T_EQ_STR(err.msg, expect, "unknown top key message");
    load_text("b2.yaml", "agent:\n  interval: 10x\n", &err);
    snprintf(expect, sizeof expect,
             "%s/b2.yaml:2:13: agent.interval: expected a duration like 10s or 500ms, got '10x'",
             tmpdir);
    T_EQ_STR(err.msg, expect, "bad duration in agent");
    load_text("b3.yaml", "agent:\n  log_level: loud\n", &err);
    snprintf(expect, sizeof expect,
             "%s/b3.yaml:2:14: agent.log_level: expected debug, info, warn or error, got 'loud'",
             tmpdir);
    T_EQ_STR(err.msg, expect, "bad log level");
    load_text("b4.yaml", "checks: [cpu]\n", &err);
    snprintf(expect, sizeof expect, "%s/b4.yaml:1:9: checks: expected a map, got a list", tmpdir);
    T_EQ_STR(err.msg, expect, "checks not a map");
    load_text("b5.yaml", "checks:\n  cpu: 5\n", &err);
    snprintf(expect, sizeof expect, "%s/b5.yaml:2:8: checks.cpu: expected a map, got a scalar",
             tmpdir);
    T_EQ_STR(err.msg, expect, "check section not a map");
    T_EQ_INT(load_text("b6.yaml", "agent:\n  interval: [\n", &err), MS_EINVAL, "malformed YAML");
    snprintf(expect, sizeof expect, "%s/b6.yaml:3:1: ", tmpdir);
    T_OK(starts_with(err.msg, expect), "malformed YAML position: %s", err.msg);
    load_text("b7.yaml", "agent:\n  interval: 0s\n", &err);
    snprintf(expect, sizeof expect, "%s/b7.yaml:2:13: agent.interval: must be greater than 0",
             tmpdir);
    T_EQ_STR(err.msg, expect, "zero interval");
    load_text("b8.yaml", "processors: {a: 1}\n", &err);
    T_OK(strstr(err.msg, "b8.yaml:1:13: processors: expected a list, got a map") != NULL,
         "processors not a list: %s", err.msg);
    load_text("b9.yaml", "- a\n", &err);
    T_OK(strstr(err.msg, "b9.yaml:1:1: the top level must be a map, got a list") != NULL,
         "top level not a map: %s", err.msg);
    load_text("b10.yaml", "agent:\n  max_series: -5\n", &err);
    T_OK(strstr(err.msg, "b10.yaml:2:15: agent.max_series: must be between 1 and 4294967295, "
                         "got -5") != NULL,
         "negative max_series: %s", err.msg);
    load_text("b13.yaml", "agent:\n  max_series: 4294967296\n", &err);
    T_OK(strstr(err.msg, "b13.yaml:2:15: agent.max_series: must be between") != NULL,
         "max_series past uint32: %s", err.msg);
    load_text("b14.yaml", "agent:\n  check_memory: 0\n", &err);
    T_OK(strstr(err.msg, "b14.yaml:2:17: agent.check_memory: must be greater than 0") != NULL,
         "zero check_memory: %s", err.msg);
    load_text("b11.yaml", "paths:\n  checks: {a: 1}\n", &err);
    T_OK(strstr(err.msg, "b11.yaml:2:11: paths.checks: expected a list of strings, got a map") !=
             NULL,
         "paths entry not a list: %s", err.msg);
    T_EQ_INT(load_text("b12.yaml", "agent:\n  check_jitter: auto\n", &err), MS_OK,
             "check_jitter: auto accepted");
    T_EQ_INT(ms_config_load("/nonexistent/c.yaml", &c, &err), MS_ENOENT, "missing config file");
    T_OK(c == NULL, "out is NULL on failure");
}

/* docs/config.md documents every schema key (written by ms_schema_write_doc). */
static void test_docs(void)
{
    FILE *f = fopen("docs/config.md", "r");
    T_OK(f != NULL, "docs/config.md exists (run from the repo root)");
    if (!f) return;
    char *doc = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&doc, &cap, '\0', f);
    fclose(f);
    int missing = 0;
    const ms_field *tables[] = {ms_config_agent_fields, ms_config_paths_fields};
    const char *names[] = {"agent", "paths"};
    for (int t = 0; t < 2; t++) {
        for (const ms_field *fl = tables[t]; fl->key; fl++) {
            char row[256];
            snprintf(row, sizeof row, "| `%s.%s` |", names[t], fl->key);
            if (n <= 0 || !strstr(doc, row)) {
                printf("# docs/config.md lacks %s\n", row);
                missing++;
            }
        }
    }
    T_EQ_INT(missing, 0, "every agent and paths key is in docs/config.md");
    free(doc);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ms_test_config.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_durations();
    test_sizes();
    test_addresses();
    test_bools();
    test_tree();
    test_parse_file();
    test_equal();
    test_schema();
    test_load();
    test_docs();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) perror("rm");
    return t_done();
}
