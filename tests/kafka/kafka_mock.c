/*
 * kafka_mock.c - a Kafka cluster for tests/integration/test_kafka.sh:
 * librdkafka's mock cluster (rd_kafka_mock_cluster_new) with 3 brokers
 * listening on loopback ports, plus a consumer that reads back what was
 * produced to it.
 *
 *   kafka_mock TOPIC PARTITIONS [OTHER_TOPIC...]
 *
 * Creates TOPIC with PARTITIONS partitions (replication factor 3), partition
 * p led by broker p % 3 + 1, and each OTHER_TOPIC with one partition (they
 * take messages the test does not read back), prints "bootstrap <host:port,...>" and then
 * reads commands from stdin, one a line, answering each on stdout:
 *   down N    broker N stops (connections closed, new ones refused)  -> "ok down N"
 *   up N      broker N is back                                       -> "ok up N"
 *   consume   read every partition of TOPIC from the start to its end:
 *             one line "msg<TAB>partition<TAB>offset<TAB>timestamp_ms<TAB>key<TAB>value"
 *             per message, then "end <count>"
 *   quit      exit 0 (as does the end of stdin)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static const char *topic;
static int partitions;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "kafka_mock: %s: %s\n", what, why);
    exit(1);
}

/* Read every partition from its beginning until each reports its end (or
 * 20 s pass); print the messages and their count. */
static void consume(const char *bootstrap)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", "kafka-mock-reader", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", err, sizeof err))
        die("consumer config", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("consumer", err);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, list);
    if (e) die("assign", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(list);
    char *at_end = calloc((size_t)partitions, 1);
    int ends = 0, count = 0, idle = 0;
    while (ends < partitions && idle < 200) { /* 200 polls of 100 ms without a message */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle++;
            continue;
        }
        idle = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < partitions && !at_end[m->partition]) {
                at_end[m->partition] = 1;
                ends++;
            }
        } else if (m->err) {
            fprintf(stderr, "kafka_mock: consume: %s\n", rd_kafka_message_errstr(m));
        } else {
            int64_t ts = rd_kafka_message_timestamp(m, NULL);
            printf("msg\t%" PRId32 "\t%" PRId64 "\t%" PRId64 "\t%.*s\t%.*s\n", m->partition,
                   m->offset, ts, (int)m->key_len, m->key ? (const char *)m->key : "", (int)m->len,
                   m->payload ? (const char *)m->payload : "");
            count++;
        }
        rd_kafka_message_destroy(m);
    }
    printf("end %d\n", count);
    fflush(stdout);
    free(at_end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: kafka_mock TOPIC PARTITIONS [OTHER_TOPIC...]\n");
        return 2;
    }
    topic = argv[1];
    partitions = atoi(argv[2]);
    if (partitions < 1) die("partitions", "must be at least 1");
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* this handle only hosts the cluster: quiet its "no bootstrap.servers" warning */
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die("handle", err);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 3);
    if (!mc) die("mock cluster", "rd_kafka_mock_cluster_new failed");
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topic, partitions, 3);
    if (e) die("topic", rd_kafka_err2str(e));
    for (int p = 0; p < partitions; p++)
        rd_kafka_mock_partition_set_leader(mc, topic, p, p % 3 + 1);
    for (int i = 3; i < argc; i++)
        if ((e = rd_kafka_mock_topic_create(mc, argv[i], 1, 3))) die(argv[i], rd_kafka_err2str(e));
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    printf("bootstrap %s\n", bootstrap);
    fflush(stdout);
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        int id;
        if (sscanf(line, "down %d", &id) == 1) {
            e = rd_kafka_mock_broker_set_down(mc, id);
            printf(e ? "error down %d\n" : "ok down %d\n", id);
        } else if (sscanf(line, "up %d", &id) == 1) {
            e = rd_kafka_mock_broker_set_up(mc, id);
            printf(e ? "error up %d\n" : "ok up %d\n", id);
        } else if (!strncmp(line, "consume", 7)) {
            consume(bootstrap);
        } else if (!strncmp(line, "quit", 4)) {
            break;
        } else {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
