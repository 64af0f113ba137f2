/*
 * t/producer.c: the producer against librdkafka's mock cluster: the record
 * size librdkafka compares with message.max.bytes, refusals counted, and a
 * fatal idempotence error survived by rebuilding the librdkafka handle.
 */
#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "health.h"
#include "metrics.h"
#include "producer.h"
#include "tap.h"

#define TOPIC "t.producer"
#define MAX_BYTES 2000
#define NREC 50

struct tw {
	struct producer_waiter w; /* first: the producer hands it back */
	int calls;
	rd_kafka_resp_err_t err;
};

static struct event_base *base;

static void
tw_done(struct producer_waiter *w, rd_kafka_resp_err_t err)
{
	struct tw *t = (struct tw *)w;

	t->calls++;
	t->err = err;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop until *FLAG-like condition COND holds or MS pass. */
#define RUN_UNTIL(cond, ms)                                                                        \
	do {                                                                                       \
		for (int run_i_ = 0; run_i_ < (ms) / 10 && !(cond); run_i_++)                      \
			event_base_loop(base, EVLOOP_ONCE);                                        \
	} while (0)

static double
metric(const char *name)
{
	size_t len, nlen = strlen(name);
	char *text = metrics_render(&len), *line;
	double v = -1;

	for (line = text; line != NULL && *line != '\0'; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, name, nlen) == 0 && line[nlen] == ' ') {
			v = strtod(line + nlen + 1, NULL);
			break;
		}
	}
	free(text);
	return v;
}

static bool
all_reported(const struct tw *t, int n)
{
	for (int i = 0; i < n; i++)
		if (t[i].calls == 0)
			return false;
	return true;
}

static void
test_sizes(void)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(2);
	char big[200];

	is_int((long long)producer_record_size(0, 0, NULL), PRODUCER_RECORD_OVERHEAD,
	    "an empty record is the overhead alone");
	is_int((long long)producer_record_size(36, 100, NULL), PRODUCER_RECORD_OVERHEAD + 136,
	    "key and value bytes add up");
	rd_kafka_header_add(h, "error", -1, "x", 1);
	/* name 5 + value 1 + one varint byte for each length */
	is_int((long long)producer_record_size(0, 0, h), PRODUCER_RECORD_OVERHEAD + 8,
	    "a small header: its bytes and two one-byte varints");
	memset(big, 'v', sizeof(big));
	rd_kafka_header_add(h, "b", -1, big, sizeof(big));
	/* zig-zag 200 = 400 needs two varint bytes */
	is_int((long long)producer_record_size(0, 0, h), PRODUCER_RECORD_OVERHEAD + 8 + 204,
	    "a 200-byte header value takes a two-byte length");
	rd_kafka_header_add(h, "n", -1, NULL, 0);
	is_int((long long)producer_record_size(0, 0, h), PRODUCER_RECORD_OVERHEAD + 8 + 204 + 3,
	    "a null header value counts as empty");
	rd_kafka_headers_destroy(h);
}

/* The boundary is exactly where librdkafka draws it, headers included. */
static void
test_limit(struct producer *p)
{
	static struct tw at_limit, headed;
	char value[MAX_BYTES];
	const char *key = "k-limit";
	size_t klen = strlen(key), vlen;
	rd_kafka_headers_t *h;
	double before;
	rd_kafka_resp_err_t e;

	memset(value, 'a', sizeof(value));
	is_int((long long)producer_max_record_bytes(p), MAX_BYTES,
	    "the limit is the configured message.max.bytes");
	vlen = MAX_BYTES - producer_record_size(klen, 0, NULL);
	before = metric("collectord_produce_errors_total");
	if (before < 0)
		before = 0;
	at_limit.w.done = tw_done;
	e = producer_send(p, TOPIC, key, klen, value, vlen + 1, NULL, &at_limit.w);
	is_int(e, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
	    "one byte over the limit: refused on the spot");
	is_int((long long)metric("collectord_produce_errors_total"), (long long)before + 1,
	    "the refusal counts as a produce error");
	e = producer_send(p, TOPIC, key, klen, value, vlen, NULL, &at_limit.w);
	is_int(e, RD_KAFKA_RESP_ERR_NO_ERROR, "exactly at the limit: queued");

	h = rd_kafka_headers_new(3);
	rd_kafka_header_add(h, "error", -1, "unknown schema id 999999", -1);
	rd_kafka_header_add(h, "source-topic", -1, "events.raw", -1);
	vlen = MAX_BYTES - producer_record_size(klen, 0, h);
	headed.w.done = tw_done;
	e = producer_send(p, TOPIC, key, klen, value, vlen + 1, h, &headed.w);
	is_int(e, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
	    "with headers, one byte over: refused on the spot");
	e = producer_send(p, TOPIC, key, klen, value, vlen, h, &headed.w);
	is_int(e, RD_KAFKA_RESP_ERR_NO_ERROR, "with headers, exactly at the limit: queued");
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_headers_destroy(h);
	RUN_UNTIL(at_limit.calls > 0 && headed.calls > 0, 10000);
	ok(at_limit.calls == 1 && at_limit.err == RD_KAFKA_RESP_ERR_NO_ERROR && headed.calls == 1 &&
		headed.err == RD_KAFKA_RESP_ERR_NO_ERROR,
	    "both records at the limit acknowledged");
}

static void
test_fatal(struct producer *p, rd_kafka_mock_cluster_t *mc)
{
	static struct tw t[NREC], after;
	char key[32], value[64];
	int sent = 0, once = 0, failed = 0;
	bool down_at_rebuild = false;
	rd_kafka_resp_err_t e;

	RUN_UNTIL(health_up(HEALTH_KAFKA), 10000);
	ok(health_up(HEALTH_KAFKA), "Kafka up before the fatal error");
	/* Slow acknowledgements keep the records in flight when the fatal
	 * error comes. */
	rd_kafka_mock_broker_set_rtt(mc, 1, 2000);
	for (int i = 0; i < NREC; i++) {
		t[i].w.done = tw_done;
		snprintf(key, sizeof(key), "k-%d", i);
		snprintf(value, sizeof(value), "record %d", i);
		if (producer_send(p, TOPIC, key, strlen(key), value, strlen(value), NULL,
			&t[i].w) == RD_KAFKA_RESP_ERR_NO_ERROR)
			sent++;
	}
	is_int(sent, NREC, "records queued before the fatal error");
	RUN_UNTIL(false, 200);
	e = producer_inject_fatal(p, "injected by t/producer");
	is_int(e, RD_KAFKA_RESP_ERR_NO_ERROR, "fatal error injected");
	RUN_UNTIL(producer_rebuilds(p) > 0, 10000);
	down_at_rebuild = !health_up(HEALTH_KAFKA);
	is_int((long long)producer_rebuilds(p), 1, "the producer was rebuilt once");
	ok(down_at_rebuild, "Kafka reported down at the fatal error");
	RUN_UNTIL(all_reported(t, NREC), 15000);
	/* A second report would show up now if there were one. */
	RUN_UNTIL(false, 500);
	for (int i = 0; i < NREC; i++) {
		once += t[i].calls == 1;
		failed += t[i].calls == 1 && t[i].err != RD_KAFKA_RESP_ERR_NO_ERROR;
	}
	is_int(once, NREC, "every waiter got exactly one report");
	is_int(failed, NREC, "every record caught in flight was reported failed");
	is_int((long long)metric("collectord_producer_rebuilds_total"), 1,
	    "collectord_producer_rebuilds_total counts the rebuild");

	rd_kafka_mock_broker_set_rtt(mc, 1, 0);
	RUN_UNTIL(health_up(HEALTH_KAFKA), 15000);
	ok(health_up(HEALTH_KAFKA), "Kafka up again once the new handle has a broker");
	after.w.done = tw_done;
	e = producer_send(p, TOPIC, "k-after", 7, "after", 5, NULL, &after.w);
	is_int(e, RD_KAFKA_RESP_ERR_NO_ERROR, "a record after the rebuild is queued");
	RUN_UNTIL(after.calls > 0, 15000);
	ok(after.calls == 1 && after.err == RD_KAFKA_RESP_ERR_NO_ERROR,
	    "a record after the rebuild is acknowledged (%s)", rd_kafka_err2str(after.err));
	RUN_UNTIL(producer_outstanding(p) == 0, 5000);
	is_int((long long)producer_outstanding(p), 0, "nothing left in the old handle or the new");
}

/* producer_send_together(): each batch on one partition, in its order;
 * batches spread over the partitions.  Read back with a consumer. */
#define TOGETHER "t.together"
#define TBATCHES 12
#define TRECS 10

static void
test_together(struct producer *p, rd_kafka_mock_cluster_t *mc)
{
	static struct tw tws[TBATCHES];
	char keys[TBATCHES][TRECS][16], errstr[512];
	int where[TBATCHES][TRECS], next[TBATCHES] = {0}, got = 0, inorder = 1, placed = 1,
				    used = 0;
	bool seen[3] = {false};
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(3);
	rd_kafka_conf_t *cc = rd_kafka_conf_new();
	rd_kafka_t *c;
	size_t queued = 0;

	rd_kafka_mock_topic_create(mc, TOGETHER, 3, 1);
	for (int j = 0; j < TBATCHES; j++) {
		rd_kafka_message_t msgs[TRECS];

		memset(msgs, 0, sizeof(msgs));
		for (int i = 0; i < TRECS; i++) {
			snprintf(keys[j][i], sizeof(keys[j][i]), "b%02d-%02d", j, i);
			where[j][i] = -1;
			msgs[i].key = keys[j][i];
			msgs[i].key_len = strlen(keys[j][i]);
			msgs[i].payload = keys[j][i];
			msgs[i].len = strlen(keys[j][i]);
			msgs[i]._private = &tws[j].w;
		}
		tws[j].w.done = tw_done;
		queued += producer_send_together(p, TOGETHER, msgs, TRECS, &tws[j].w);
	}
	is_int((long long)queued, TBATCHES * TRECS, "together: every record queued");
	RUN_UNTIL(producer_outstanding(p) == 0, 10000);
	for (int j = 0; j < TBATCHES; j++)
		got += tws[j].calls;
	is_int(got, TBATCHES * TRECS, "together: every record reported");

	rd_kafka_conf_set(
	    cc, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), errstr, sizeof(errstr));
	rd_kafka_conf_set(cc, "group.id", "t.together", errstr, sizeof(errstr));
	c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof(errstr));
	for (int32_t part = 0; part < 3; part++)
		rd_kafka_topic_partition_list_add(parts, TOGETHER, part)->offset =
		    RD_KAFKA_OFFSET_BEGINNING;
	if (c == NULL || rd_kafka_assign(c, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		printf("Bail out! consumer: %s\n", errstr);
		exit(1);
	}
	got = 0;
	for (int tries = 0; tries < 200 && got < TBATCHES * TRECS; tries++) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 50);
		int j, i;

		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->key_len == 6 &&
		    sscanf((const char *)m->key, "b%2d-%2d", &j, &i) == 2 && j >= 0 &&
		    j < TBATCHES && i >= 0 && i < TRECS) {
			where[j][i] = (int)m->partition;
			inorder &= next[j]++ == i; /* a partition keeps its order */
			got++;
		}
		rd_kafka_message_destroy(m);
	}
	is_int(got, TBATCHES * TRECS, "together: every record read back");
	ok(inorder, "together: a batch's records come back in their order");
	for (int j = 0; j < TBATCHES; j++) {
		for (int i = 1; i < TRECS; i++)
			placed &= where[j][i] == where[j][0];
		placed &= where[j][0] == tws[j].w.placed - 1;
		if (where[j][0] >= 0 && where[j][0] < 3 && !seen[where[j][0]])
			seen[where[j][0]] = true, used++;
	}
	ok(placed, "together: each batch on one partition, the one its waiter names");
	ok(used > 1, "together: the batches spread over %d of 3 partitions", used);
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
}

int
main(void)
{
	char errstr[512], err[512], text[1024];
	rd_kafka_conf_t *mconf = rd_kafka_conf_new();
	rd_kafka_t *mrk;
	rd_kafka_mock_cluster_t *mc;
	struct config *cfg;
	struct producer *p;
	struct event *tick;
	struct timeval tv = {0, 10000};

	test_sizes();

	/* The mock cluster lives in a handle of its own, which never
	 * connects anywhere: silence its complaint about that. */
	rd_kafka_conf_set(mconf, "log_level", "0", errstr, sizeof(errstr));
	mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, errstr, sizeof(errstr));
	if (mrk == NULL || (mc = rd_kafka_mock_cluster_new(mrk, 1)) == NULL) {
		printf("Bail out! no mock cluster: %s\n", errstr);
		return 1;
	}
	rd_kafka_mock_topic_create(mc, TOPIC, 1, 1);
	snprintf(text, sizeof(text),
	    "[kafka]\nbootstrap.servers = %s\nmessage.max.bytes = %d\n"
	    "statistics.interval.ms = 100\n",
	    rd_kafka_mock_cluster_bootstraps(mc), MAX_BYTES);
	if ((cfg = config_parse(text, "t/producer", false, err, sizeof(err))) == NULL) {
		printf("Bail out! config: %s\n", err);
		return 1;
	}
	base = event_base_new();
	/* Wakes EVLOOP_ONCE at least every 10 ms. */
	tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(tick, &tv);
	health_require(HEALTH_KAFKA, true);
	if ((p = producer_new(base, cfg, err, sizeof(err))) == NULL) {
		printf("Bail out! producer: %s\n", err);
		return 1;
	}
	test_limit(p);
	test_together(p, mc);
	test_fatal(p, mc);
	producer_free(p, 2000);
	event_free(tick);
	event_base_free(base);
	config_free(cfg);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(mrk);
	metrics_reset();
	return tap_done();
}
