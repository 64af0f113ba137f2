/* producer.c: librdkafka producer on the loop; Kafka health from its stats. */
#include "producer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "rdk_loop.h"

struct producer {
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;
	struct rdk_loop *loop;
	size_t max_messages;
	char last_error[256];
};

/* Defaults we want where the [kafka] section says nothing. */
static const char *const soft_defaults[][2] = {
    {"linger.ms", "5"},
    {"message.timeout.ms", "10000"},
    {"statistics.interval.ms", "1000"},
    {"queue.buffering.max.messages", "100000"},
};

/* Kafka is up when librdkafka holds at least one broker connection UP. */
static void
on_stats(struct producer *p, const char *json)
{
	cJSON *root = cJSON_Parse(json), *brokers, *b;
	bool up = false;

	if (root == NULL)
		return;
	brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers");
	cJSON_ArrayForEach(b, brokers)
	{
		cJSON *state = cJSON_GetObjectItemCaseSensitive(b, "state");

		if (cJSON_IsString(state) && strcmp(state->valuestring, "UP") == 0)
			up = true;
	}
	metrics_set("collectord_kafka_outstanding_records", "", (double)rd_kafka_outq_len(p->rk));
	cJSON_Delete(root);
	health_set(HEALTH_KAFKA, up,
	    up		       ? NULL
	    : p->last_error[0] ? p->last_error
			       : "no broker connection is up");
}

static void
on_event(void *arg, rd_kafka_event_t *ev)
{
	struct producer *p = arg;
	const rd_kafka_message_t *m;

	switch (rd_kafka_event_type(ev)) {
	case RD_KAFKA_EVENT_DR:
		while ((m = rd_kafka_event_message_next(ev)) != NULL) {
			if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
				metrics_add("collectord_produce_errors_total", "", 1);
			struct producer_waiter *w = m->_private;

			w->done(w, m->err);
		}
		break;
	case RD_KAFKA_EVENT_ERROR: {
		rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
		char q[300];

		snprintf(
		    p->last_error, sizeof(p->last_error), "%s", rd_kafka_event_error_string(ev));
		if (rd_kafka_event_error_is_fatal(ev)) {
			char fatal[200];

			rd_kafka_fatal_error(p->rk, fatal, sizeof(fatal));
			snprintf(p->last_error, sizeof(p->last_error), "fatal: %s", fatal);
			health_set(HEALTH_KAFKA, false, p->last_error);
		} else if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
			health_set(HEALTH_KAFKA, false, p->last_error);
		}
		log_warn("kafka error", "error=%s", log_quote(p->last_error, q, sizeof(q)));
		break;
	}
	case RD_KAFKA_EVENT_STATS:
		on_stats(p, rd_kafka_event_stats(ev));
		break;
	default:
		break;
	}
}

struct producer *
producer_new(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
{
	struct producer *p = calloc(1, sizeof(*p));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512], value[64];
	size_t vlen;

	if (p == NULL || conf == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < sizeof(soft_defaults) / sizeof(soft_defaults[0]); i++)
		if (rd_kafka_conf_set(conf, soft_defaults[i][0], soft_defaults[i][1], errstr,
			sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto conf_fail;
	for (size_t i = 0; i < cfg->nkafka; i++) {
		if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, errstr,
			sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto conf_fail;
	}
	/* Not overridable: a 200 means every record is on all in-sync
	 * replicas, written once. */
	if (rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) !=
		RD_KAFKA_CONF_OK)
		goto conf_fail;
	vlen = sizeof(value);
	if (rd_kafka_conf_get(conf, "queue.buffering.max.messages", value, &vlen) ==
	    RD_KAFKA_CONF_OK)
		p->max_messages = (size_t)strtoul(value, NULL, 10);
	rd_kafka_conf_set_events(
	    conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_STATS);
	rd_kafka_conf_set_log_cb(conf, rdk_loop_log);
	/* rd_kafka_new owns CONF from here on, even when it fails. */
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	conf = NULL;
	if (p->rk == NULL) {
		snprintf(err, errlen, "kafka producer: %s", errstr);
		goto fail;
	}
	p->queue = rd_kafka_queue_get_main(p->rk);
	p->loop = rdk_loop_new(base, p->queue, on_event, p, err, errlen);
	if (p->loop == NULL)
		goto fail;
	metrics_declare("collectord_produce_errors_total", METRIC_COUNTER,
	    "Records Kafka did not acknowledge.");
	metrics_declare("collectord_kafka_outstanding_records", METRIC_GAUGE,
	    "Records queued in the producer or in flight to Kafka.");
	return p;
conf_fail:
	snprintf(err, errlen, "[kafka] %s", errstr);
fail:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	producer_free(p, 0);
	return NULL;
}

rd_kafka_resp_err_t
producer_send(struct producer *p, const char *topic, const void *key, size_t keylen,
    const void *value, size_t len, rd_kafka_headers_t *headers, struct producer_waiter *w)
{
	return rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
	    RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
}

size_t
producer_outstanding(const struct producer *p)
{
	return (size_t)rd_kafka_outq_len(p->rk);
}

size_t
producer_room(const struct producer *p)
{
	size_t out = producer_outstanding(p);

	return out >= p->max_messages ? 0 : p->max_messages - out;
}

void
producer_free(struct producer *p, int timeout_ms)
{
	if (p == NULL)
		return;
	if (p->rk != NULL && timeout_ms > 0) {
		rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, timeout_ms);

		if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_warn("producer flush incomplete", "outstanding=%d",
			    rd_kafka_outq_len(p->rk));
		/* Deliver the reports the flush produced before we go. */
		if (p->loop != NULL) {
			rd_kafka_event_t *ev;

			while ((ev = rd_kafka_queue_poll(p->queue, 0)) != NULL) {
				on_event(p, ev);
				rd_kafka_event_destroy(ev);
			}
		}
	}
	rdk_loop_free(p->loop);
	if (p->queue != NULL)
		rd_kafka_queue_destroy(p->queue);
	if (p->rk != NULL)
		rd_kafka_destroy(p->rk);
	free(p);
}
