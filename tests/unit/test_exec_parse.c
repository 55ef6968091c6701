/*
 * test_exec_parse.c - the exec bridge's line formats: PuyPuy (stack and rate
 * through the shared rate state), Nagios status + perfdata with units and
 * thresholds and exit codes, collectd PUTVAL/PUTNOTIF, Influx line protocol,
 * Graphite plaintext, auto-detection and bad lines with script:line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_exec.h"
#include "ms_rate.h"
#include "ms_series.h"
#include "t.h"

static ms_exec_parser P;
static ms_error E;

static void begin(const char *stem, int fmt, double now)
{
    ms_batch_unref(P.out);
    P = (ms_exec_parser){.script = "demo.sh", .stem = stem, .format = fmt, .out = ms_batch_new(16)};
    ms_exec_parser_begin(&P, now);
}

/* Feed one line (copied: the parser writes into it); returns the rc. */
static int feed(const char *line)
{
    size_t n = strlen(line);
    char *b = malloc(n + 1);
    memcpy(b, line, n + 1);
    memset(&E, 0, sizeof E);
    int rc = ms_exec_parse_line(&P, b, n, &E);
    free(b);
    return rc;
}

/* The i-th sample's series key, or "" */
static const char *key(uint32_t i)
{
    if (i >= P.out->n) return "";
    const ms_series *s = ms_series_get(P.out->s[i].series);
    return s ? s->key : "";
}

static double val(uint32_t i)
{
    return i < P.out->n ? P.out->s[i].value : -12345;
}

/* Find the sample of series `k`; -1 when absent. */
static int find(const char *k)
{
    for (uint32_t i = 0; i < P.out->n; i++)
        if (!strcmp(key(i), k)) return (int)i;
    return -1;
}

static void test_puypuy(void)
{
    begin("puypuy", MS_EXEC_FMT_AUTO, 1000);
    T_EQ_INT(feed("app.users 42 myapp stack"), MS_OK, "puypuy stack line");
    T_EQ_STR(key(0), "app.users{type=myapp}", "check_type becomes the type tag");
    T_EQ_DBL(val(0), 42, 0, "stack value");
    T_EQ_INT(P.out->s[0].kind, MS_KIND_GAUGE, "stack is a gauge");
    T_EQ_INT(feed("app.requests 100 myapp rate"), MS_OK, "puypuy rate line");
    T_EQ_INT(P.out->n, 1, "first rate reading gives no sample");
    begin("puypuy", MS_EXEC_FMT_PUYPUY, 1010);
    T_EQ_INT(feed("app.requests 150 myapp rate"), MS_OK, "second rate reading");
    T_EQ_INT(P.out->n, 1, "a rate sample now");
    T_EQ_DBL(val(0), 5, 1e-9, "rate = 50 / 10 s");
    T_EQ_INT(P.out->s[0].kind, MS_KIND_RATE, "kind rate");
    T_EQ_INT(feed("app.x 1 t stack extra"), MS_EINVAL, "five fields is not puypuy");
    T_OK(strstr(E.msg, "script demo.sh line 2: puypuy:") != NULL, "error names script and line: %s",
         E.msg);
    T_EQ_INT(feed("app.x abc t stack"), MS_EINVAL, "non-numeric value");
    T_EQ_INT(feed("app.x 1 t sum"), MS_EINVAL, "unknown stack|rate word");
    T_EQ_INT((int)P.bad_lines, 3, "bad lines counted");
}

static void test_nagios(void)
{
    begin("check_load", MS_EXEC_FMT_AUTO, 1000);
    T_EQ_INT(feed("LOAD OK - total load average: 0.23, 0.11, 0.14|load1=0.230;50.000;100.000;0; "
                  "load5=0.110;50.000;100.000;0; load15=0.140;50.000;100.000;0; "),
             MS_OK, "check_load line");
    T_EQ_INT(P.nagios, 1, "detected as Nagios");
    int i = find("check_load.load1{crit=100,min=0,warn=50}");
    T_OK(i >= 0, "load1 with thresholds as tags (%s)", key(0));
    T_EQ_DBL(val((uint32_t)i), 0.23, 1e-12, "load1 value");
    T_OK(find("check_load.load15{crit=100,min=0,warn=50}") >= 0, "load15 too");
    ms_exec_parser_end(&P, 0, 0, NULL);
    i = find("check_load.health");
    T_OK(i >= 0, "health sample");
    T_EQ_DBL(val((uint32_t)i), 0, 0, "exit 0 -> health 0");
    T_EQ_STR(ms_batch_text(P.out, P.out->s[i].level), "OK", "level OK");
    T_EQ_STR(ms_batch_text(P.out, P.out->s[i].msg),
             "LOAD OK - total load average: 0.23, 0.11, 0.14", "first line is the message");

    begin("check_disk", MS_EXEC_FMT_NAGIOS, 1000);
    T_EQ_INT(feed("DISK WARNING - free space: / 81268MiB (82% inode=97%);| "
                  "/=17527996416B;267847005634;267847005634;0;270552530944"),
             MS_OK, "check_disk line");
    T_OK(find("check_disk./{crit=267847005634,max=270552530944,min=0,unit=bytes,"
              "warn=267847005634}") >= 0,
         "bytes with unit tag: %s", key(0));
    ms_exec_parser_end(&P, 1, 0, NULL);
    i = find("check_disk.health");
    T_EQ_DBL(val((uint32_t)i), 8, 0, "exit 1 -> WARNING 8");
    T_EQ_STR(ms_batch_text(P.out, P.out->s[i].level), "WARNING", "level WARNING");

    begin("mine", MS_EXEC_FMT_NAGIOS, 1000);
    T_EQ_INT(feed("CRITICAL: slow | 'resp time'=250ms;100;@200:300;0; size=2KB hits=10c "
                  "pct=55%;~:80 other=3xyz blank=U"),
             MS_OK, "units");
    T_OK(find("mine.resp_time{crit=@0.2:0.3,min=0,unit=s,warn=0.1}") >= 0,
         "ms -> s, quoted label with a space, range normalised: %s", key(0));
    T_EQ_DBL(val(0), 0.25, 1e-12, "250ms = 0.25 s");
    i = find("mine.size{unit=bytes}");
    T_EQ_DBL(val((uint32_t)i), 2048, 0, "2KB = 2048 bytes");
    i = find("mine.hits");
    T_EQ_INT(P.out->s[i].kind, MS_KIND_COUNTER, "c is a counter");
    T_OK(find("mine.pct{unit=percent,warn=~:80}") >= 0, "percent, open range");
    T_OK(find("mine.other{unit=xyz}") >= 0, "unknown unit kept as a tag");
    T_EQ_INT(P.out->n, 5, "U (undetermined) gives no sample");
    T_EQ_INT(feed("long text line"), MS_OK, "long output text is ignored");
    T_EQ_INT(feed("more text | extra=1"), MS_OK, "perfdata after | in the long output");
    T_EQ_INT(feed("extra2=2s"), MS_OK, "perfdata lines follow");
    T_OK(find("mine.extra2{unit=s}") >= 0, "perfdata line used");
    T_EQ_INT(feed("broken=;;"), MS_EINVAL, "bad perfdata counted");
    ms_exec_parser_end(&P, 2, 0, NULL);
    i = find("mine.health");
    T_EQ_DBL(val((uint32_t)i), 16, 0, "exit 2 -> CRITICAL 16");
    T_EQ_STR(ms_batch_text(P.out, P.out->s[i].level), "CRITICAL", "level CRITICAL");
    T_EQ_STR(ms_batch_text(P.out, P.out->s[i].msg), "CRITICAL: slow", "message before |");

    begin("u", MS_EXEC_FMT_NAGIOS, 1000);
    feed("UNKNOWN - what");
    ms_exec_parser_end(&P, 3, 0, NULL);
    T_EQ_STR(ms_batch_text(P.out, P.out->s[0].level), "UNKNOWN", "exit 3 -> UNKNOWN");
    begin("u", MS_EXEC_FMT_NAGIOS, 1000);
    feed("OK so far");
    ms_exec_parser_end(&P, 0, 15, "timed out after 1s");
    T_EQ_STR(ms_batch_text(P.out, P.out->s[0].level), "UNKNOWN", "killed -> UNKNOWN");
    T_EQ_STR(ms_batch_text(P.out, P.out->s[0].msg), "timed out after 1s: OK so far", "says why");
    begin("u", MS_EXEC_FMT_NAGIOS, 1000);
    ms_exec_parser_end(&P, 7, 0, NULL);
    T_EQ_STR(ms_batch_text(P.out, P.out->s[0].msg), "exit status 7", "odd exit code, no output");
    begin("plain", MS_EXEC_FMT_AUTO, 1000);
    feed("x.y 1");
    ms_exec_parser_end(&P, 2, 0, NULL);
    T_EQ_INT(P.out->n, 1, "no health sample for non-Nagios output");
}

static void test_collectd(void)
{
    begin("c", MS_EXEC_FMT_AUTO, 1000);
    T_EQ_INT(feed("PUTVAL \"web1/exec-magic/gauge-answer\" interval=10 N:42"), MS_OK, "PUTVAL");
    T_EQ_STR(key(0), "exec.gauge{host=web1,plugin_instance=magic,type_instance=answer}",
             "plugin.type with instance tags");
    T_EQ_DBL(P.out->s[0].ts, 1000, 0, "N is now");
    T_EQ_INT(feed("PUTVAL web1/load/load 1700000000:0.5:0.25:U"), MS_OK, "multi-value PUTVAL");
    T_OK(find("load.load.shortterm{host=web1}") >= 0, "load data source names");
    int i = find("load.load.midterm{host=web1}");
    T_EQ_DBL(P.out->s[i].ts, 1700000000, 0, "explicit time");
    T_OK(find("load.load.longterm{host=web1}") < 0, "U skipped");
    T_EQ_INT(feed("PUTVAL web1/if/if_octets-eth0 N:10:20 N:11:21"), MS_OK, "two value lists");
    i = find("if.if_octets.rx{host=web1,type_instance=eth0}");
    T_EQ_INT(P.out->s[i].kind, MS_KIND_COUNTER, "if_octets is a counter");
    T_EQ_INT(feed("PUTVAL web1/only N:1"), MS_EINVAL, "identifier needs three parts");
    T_EQ_INT(feed("PUTVAL a/b/c bogus=1 N:1"), MS_EINVAL, "unknown option");
    T_EQ_INT(feed("PUTVAL a/b/c N:x"), MS_EINVAL, "bad value");
    T_EQ_INT(feed("PUTNOTIF severity=warning time=1700000000 plugin=disk type=df "
                  "message=\"almost full \\\"/\\\"\""),
             MS_OK, "PUTNOTIF");
    i = find("disk.df.notification");
    T_OK(i >= 0, "notification series");
    T_EQ_INT(P.out->s[i].kind, MS_KIND_HEALTH, "health kind");
    T_EQ_DBL(val((uint32_t)i), 8, 0, "warning -> 8");
    T_EQ_STR(ms_batch_text(P.out, P.out->s[i].msg), "almost full \"/\"", "quoted message");
    T_EQ_INT(feed("PUTNOTIF message=hi"), MS_EINVAL, "severity required");
}

static void test_influx_graphite(void)
{
    begin("i", MS_EXEC_FMT_AUTO, 1000);
    T_EQ_INT(feed("cpu,host=h1,core=0 usage=0.5,idle=99i,up=true,note=\"a b, c\" "
                  "1700000000000000000"),
             MS_OK, "influx line");
    T_OK(find("cpu.usage{core=0,host=h1}") >= 0, "measurement.field with tags");
    int i = find("cpu.idle{core=0,host=h1}");
    T_EQ_DBL(val((uint32_t)i), 99, 0, "integer field");
    T_EQ_DBL(P.out->s[i].ts, 1700000000, 1e-6, "ns timestamp");
    T_EQ_DBL(val((uint32_t)find("cpu.up{core=0,host=h1}")), 1, 0, "boolean field");
    T_EQ_INT(P.out->n, 3, "string field skipped");
    T_EQ_INT(feed("my\\ meas,t\\=k=v\\,w value=3"), MS_OK, "escapes");
    T_OK(find("my meas{t=k=v,w}") >= 0, "field 'value' is the measurement itself: %s",
         key(P.out->n - 1));
    T_EQ_INT(feed("cpu,host=h1 usage=abc"), MS_EINVAL, "bad field value");
    T_EQ_INT(feed("cpu,host usage=1"), MS_EINVAL, "tag without value");

    begin("g", MS_EXEC_FMT_AUTO, 1000);
    T_EQ_INT(feed("servers.web1.cpu 12.5 1700000000"), MS_OK, "graphite with ts");
    T_EQ_STR(key(0), "servers.web1.cpu", "graphite path");
    T_EQ_DBL(P.out->s[0].ts, 1700000000, 0, "graphite ts");
    T_EQ_INT(feed("disk.used;mount=/var 3"), MS_OK, "graphite tags, no ts");
    T_EQ_STR(key(1), "disk.used{mount=/var}", "graphite tags");
    T_EQ_DBL(P.out->s[1].ts, 1000, 0, "no ts: now");
    T_EQ_INT(feed("a.b 1 notatime"), MS_EINVAL, "bad graphite timestamp");
    T_EQ_INT(feed("just words here"), MS_EINVAL, "nothing matches");
    T_OK(strstr(E.msg, "line 4") && strstr(E.msg, "not PuyPuy, Nagios"), "message: %s", E.msg);
    T_EQ_INT(feed(""), MS_OK, "blank line is fine");
    T_EQ_INT(feed("# comment"), MS_OK, "comment is fine");
    T_EQ_INT(feed("x.y 2\r"), MS_OK, "CRLF");
    begin("g", MS_EXEC_FMT_GRAPHITE, 1000);
    T_EQ_INT(feed("a.b 1 2 3"), MS_EINVAL, "explicit graphite rejects four fields");
    begin("pre", MS_EXEC_FMT_AUTO, 1000);
    P.prefix = "team";
    ms_tag t = {"env", "prod", 3, 4};
    P.tags = &t;
    P.ntags = 1;
    feed("x.y 1");
    T_EQ_STR(key(0), "team.x.y{env=prod}", "prefix and script tags");
}

/* docs/config.md documents every key of scripts: (ms_schema_write_doc rows). */
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
    for (const ms_field *fl = ms_exec_fields; fl->key; fl++) {
        char row[256];
        snprintf(row, sizeof row, "| `scripts.%s` |", fl->key);
        if (n <= 0 || !strstr(doc, row)) {
            printf("# docs/config.md lacks %s\n", row);
            missing++;
        }
    }
    T_EQ_INT(missing, 0, "every scripts key is in docs/config.md");
    free(doc);
}

int main(void)
{
    ms_series_set_limit(100000);
    T_EQ_INT(ms_exec_format_parse("nagios"), MS_EXEC_FMT_NAGIOS, "format names");
    T_EQ_INT(ms_exec_format_parse("xml"), -1, "unknown format");
    test_puypuy();
    test_nagios();
    test_collectd();
    test_influx_graphite();
    test_docs();
    ms_batch_unref(P.out);
    ms_series_reset();
    ms_rate_reset();
    return t_done();
}
