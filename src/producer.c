/*
 * producer.c: librdkafka producer on the loop; Kafka health from its stats.
 *
 * The producer is one or more librdkafka handles: the current one, which
 * takes every new record, and those retired after a fatal error.  A retired
 * handle is purged at once, so its records come back as failed delivery
 * reports; its queue stays on the loop until librdkafka holds nothing more
 * for it (rd_kafka_outq_len 0), and only then is it destroyed, because
 * rd_kafka_destroy waits for whatever is still outstanding.
 */
#include "producer.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "config.h"
#include "health.h"
#include "kafka_conf.h"
#include "log.h"
#include "metrics.h"
#include "rdk_loop.h"

/* How often retired handles are looked at, and after how many looks one
 * still holding records is worth a warning; how long a failed rebuild waits
 * first (doubling up to REBUILD_MAX_MS). */
#define REAP_MS 100L
#define REAP_WARN_CHECKS 600
#define REBUILD_MIN_MS 200L
#define REBUILD_MAX_MS 10000L
/* Shutdown: longest single wait for a report while draining. */
#define DRAIN_SLICE_MS 100

/* One librdkafka handle with its event queue on the loop. */
/* Topic handles a handle keeps: a daemon sends to a few topics. */
#define PRK_TOPICS 16

struct prk {
	struct producer *p;
	rd_kafka_t *rk;
	struct {
		char *name;
		rd_kafka_topic_t *rkt;
		bool together; /* made with together_partition() */
	} topics[PRK_TOPICS];
	size_t ntopics;
	rd_kafka_queue_t *queue;
	struct rdk_loop *loop;
	bool retired;
	int reap_checks;      /* reaper passes that found it still holding records */
	LIST_ENTRY(prk) link; /* p->retired */
};

struct producer {
	struct event_base *base;
	rd_kafka_conf_t *conf; /* every handle is made from a copy of it */
	struct prk *cur;       /* NULL while a rebuild keeps failing */
	LIST_HEAD(, prk) retired;
	struct event *reap_timer, *rebuild_timer;
	long rebuild_backoff;
	uint64_t rebuilds;
	bool closing; /* producer_free: no more rebuilds */
	bool quiet;   /* producer_opts.quiet */
	size_t max_messages;
	size_t max_record_bytes;
	char last_error[256];
};

static void on_event(void *arg, rd_kafka_event_t *ev);

/* ---------------------------------------------------------------- sizes */

/* Bytes of the zig-zag varint librdkafka writes for the length N. */
static size_t
varint_size(size_t n)
{
	uint64_t v = (uint64_t)n << 1;
	size_t bytes = 1;

	while (v > 0x7f) {
		v >>= 7;
		bytes++;
	}
	return bytes;
}

size_t
producer_record_size(size_t keylen, size_t len, const rd_kafka_headers_t *headers)
{
	size_t n = PRODUCER_RECORD_OVERHEAD + keylen + len;
	const char *name;
	const void *value;
	size_t size;

	for (size_t i = 0; headers != NULL && rd_kafka_header_get_all(headers, i, &name, &value,
						  &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
	     i++) {
		size_t nlen = strlen(name);

		n += nlen + size + varint_size(nlen) + varint_size(size);
	}
	return n;
}

size_t
producer_max_record_bytes(const struct producer *p)
{
	return p->max_record_bytes;
}

/* ---------------------------------------------------------------- handles */

static size_t
prk_outstanding(const struct prk *h)
{
	int n = rd_kafka_outq_len(h->rk);

	return n > 0 ? (size_t)n : 0;
}

/* Stop watching H's queue and destroy it; nothing may be outstanding in it
 * (or the daemon is going away), since rd_kafka_destroy waits for that. */
static void
prk_free(struct prk *h)
{
	if (h == NULL)
		return;
	rdk_loop_free(h->loop);
	for (size_t i = 0; i < h->ntopics; i++) {
		rd_kafka_topic_destroy(h->topics[i].rkt);
		free(h->topics[i].name);
	}
	if (h->queue != NULL)
		rd_kafka_queue_destroy(h->queue);
	if (h->rk != NULL)
		rd_kafka_destroy(h->rk);
	free(h);
}

/* A new handle from a copy of P's configuration, its queue on the loop. */
static struct prk *
prk_new(struct producer *p, char *err, size_t errlen)
{
	struct prk *h = calloc(1, sizeof(*h));
	rd_kafka_conf_t *conf;
	char errstr[512];

	if (h == NULL || (conf = rd_kafka_conf_dup(p->conf)) == NULL) {
		snprintf(err, errlen, "kafka producer: out of memory");
		free(h);
		return NULL;
	}
	h->p = p;
	/* rd_kafka_new owns CONF from here on, even when it fails. */
	h->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (h->rk == NULL) {
		snprintf(err, errlen, "kafka producer: %s", errstr);
		free(h);
		return NULL;
	}
	h->queue = rd_kafka_queue_get_main(h->rk);
	if ((h->loop = rdk_loop_new(p->base, h->queue, on_event, h, err, errlen)) == NULL) {
		prk_free(h);
		return NULL;
	}
	return h;
}

/* Destroy the retired handles that have nothing left. */
static void
on_reap_timer(evutil_socket_t fd, short what, void *arg)
{
	struct producer *p = arg;
	struct prk *h, *next;
	struct timespec t0, t1;
	char name[128];

	(void)fd;
	(void)what;
	for (h = LIST_FIRST(&p->retired); h != NULL; h = next) {
		next = LIST_NEXT(h, link);
		if (prk_outstanding(h) > 0) {
			if (++h->reap_checks == REAP_WARN_CHECKS)
				log_warn("retired kafka producer still holds records",
				    "client=%s outstanding=%zu waited_ms=%ld", rd_kafka_name(h->rk),
				    prk_outstanding(h), REAP_MS * REAP_WARN_CHECKS);
			continue;
		}
		LIST_REMOVE(h, link);
		snprintf(name, sizeof(name), "%s", rd_kafka_name(h->rk));
		clock_gettime(CLOCK_MONOTONIC, &t0);
		prk_free(h);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		log_info("retired kafka producer freed", "client=%s destroy_ms=%ld", name,
		    (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	}
	if (!LIST_EMPTY(&p->retired)) {
		struct timeval tv = {0, REAP_MS * 1000};

		evtimer_add(p->reap_timer, &tv);
	}
}

/* Make a new current handle; on failure try again later. */
static void
rebuild_try(struct producer *p)
{
	char err[600], q[700];
	struct timeval tv;

	if (p->closing || p->cur != NULL)
		return;
	if ((p->cur = prk_new(p, err, sizeof(err))) != NULL) {
		p->rebuild_backoff = 0;
		p->rebuilds++;
		metrics_add("collectord_producer_rebuilds_total", "", 1);
		log_info("kafka producer rebuilt after a fatal error", "client=%s rebuilds=%llu",
		    rd_kafka_name(p->cur->rk), (unsigned long long)p->rebuilds);
		return;
	}
	p->rebuild_backoff = p->rebuild_backoff <= 0 ? REBUILD_MIN_MS : p->rebuild_backoff * 2;
	if (p->rebuild_backoff > REBUILD_MAX_MS)
		p->rebuild_backoff = REBUILD_MAX_MS;
	log_error("cannot rebuild the kafka producer, retrying", "retry_ms=%ld error=%s",
	    p->rebuild_backoff, log_quote(err, q, sizeof(q)));
	tv.tv_sec = p->rebuild_backoff / 1000;
	tv.tv_usec = (p->rebuild_backoff % 1000) * 1000;
	evtimer_add(p->rebuild_timer, &tv);
}

static void
on_rebuild_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rebuild_try(arg);
}

/*
 * The current handle hit a fatal error: it refuses every record from now
 * on.  Retire it and send through a new one.  Purging the queue and what
 * is in flight (the non-blocking purge is allowed after a fatal error)
 * answers every waiter with an error now rather than at message.timeout.ms;
 * a record purged in flight may still have been written, which is the
 * at-least-once case the callers already handle (a 503 makes the client
 * send it again, the sinks absorb the copy).
 */
static void
retire_current(struct producer *p)
{
	struct prk *h = p->cur;
	struct timeval tv = {0, REAP_MS * 1000};
	rd_kafka_resp_err_t e;

	if (h == NULL)
		return;
	p->cur = NULL;
	h->retired = true;
	LIST_INSERT_HEAD(&p->retired, h, link);
	e = rd_kafka_purge(h->rk,
	    RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warn("cannot purge the retired kafka producer", "client=%s error=\"%s\"",
		    rd_kafka_name(h->rk), rd_kafka_err2str(e));
	log_warn("kafka producer retired", "client=%s outstanding=%zu", rd_kafka_name(h->rk),
	    prk_outstanding(h));
	if (!evtimer_pending(p->reap_timer, NULL))
		evtimer_add(p->reap_timer, &tv);
}

/* ---------------------------------------------------------------- events */

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
	metrics_set("collectord_kafka_outstanding_records", "", (double)producer_outstanding(p));
	cJSON_Delete(root);
	health_set(HEALTH_KAFKA, up,
	    up		       ? NULL
	    : p->last_error[0] ? p->last_error
			       : "no broker connection is up");
}

static void
on_error(struct prk *h, rd_kafka_event_t *ev)
{
	struct producer *p = h->p;
	rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
	char q[300], fatal[200];

	if (h->retired) {
		/* Its fate is settled; only what it says is of interest. */
		log_warn("retired kafka producer error", "client=%s error=%s", rd_kafka_name(h->rk),
		    log_quote(rd_kafka_event_error_string(ev), q, sizeof(q)));
		return;
	}
	snprintf(p->last_error, sizeof(p->last_error), "%s", rd_kafka_event_error_string(ev));
	if (rd_kafka_event_error_is_fatal(ev)) {
		rd_kafka_fatal_error(h->rk, fatal, sizeof(fatal));
		snprintf(p->last_error, sizeof(p->last_error), "fatal: %s", fatal);
		if (!p->quiet)
			health_set(HEALTH_KAFKA, false, p->last_error);
		log_error("kafka producer fatal error, rebuilding the producer",
		    "client=%s error=%s", rd_kafka_name(h->rk),
		    log_quote(p->last_error, q, sizeof(q)));
		if (!p->closing) {
			retire_current(p);
			rebuild_try(p);
		}
		return;
	}
	if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && !p->quiet)
		health_set(HEALTH_KAFKA, false, p->last_error);
	log_warn("kafka error", "error=%s", log_quote(p->last_error, q, sizeof(q)));
}

static void
on_event(void *arg, rd_kafka_event_t *ev)
{
	struct prk *h = arg;
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
	case RD_KAFKA_EVENT_ERROR:
		on_error(h, ev);
		break;
	case RD_KAFKA_EVENT_STATS:
		/* A retired handle's brokers say nothing about the new one's. */
		if (!h->retired && !h->p->quiet)
			on_stats(h->p, rd_kafka_event_stats(ev));
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------- life */

struct producer *
producer_new(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
{
	return producer_new_opts(base, cfg, NULL, err, errlen);
}

struct producer *
producer_new_opts(struct event_base *base, const struct config *cfg,
    const struct producer_opts *opts, char *err, size_t errlen)
{
	struct producer *p = calloc(1, sizeof(*p));
	rd_kafka_conf_t *conf = NULL;
	char value[64], errstr[256];
	size_t vlen;

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	p->base = base;
	p->quiet = opts != NULL && opts->quiet;
	LIST_INIT(&p->retired);
	if ((conf = kafka_conf_new(cfg, KAFKA_PRODUCER, err, errlen)) == NULL)
		goto fail;
	if (opts != NULL && opts->message_timeout_ms > 0) {
		snprintf(value, sizeof(value), "%d", opts->message_timeout_ms);
		if (rd_kafka_conf_set(conf, "message.timeout.ms", value, errstr, sizeof(errstr)) !=
		    RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "kafka producer: %s", errstr);
			goto fail;
		}
	}
	vlen = sizeof(value);
	if (rd_kafka_conf_get(conf, "queue.buffering.max.messages", value, &vlen) ==
	    RD_KAFKA_CONF_OK)
		p->max_messages = (size_t)strtoul(value, NULL, 10);
	vlen = sizeof(value);
	if (rd_kafka_conf_get(conf, "message.max.bytes", value, &vlen) == RD_KAFKA_CONF_OK)
		p->max_record_bytes = (size_t)strtoul(value, NULL, 10);
	rd_kafka_conf_set_events(
	    conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_STATS);
	rd_kafka_conf_set_log_cb(conf, rdk_loop_log);
	p->conf = conf;
	conf = NULL;
	if ((p->reap_timer = evtimer_new(base, on_reap_timer, p)) == NULL ||
	    (p->rebuild_timer = evtimer_new(base, on_rebuild_timer, p)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	metrics_declare("collectord_produce_errors_total", METRIC_COUNTER,
	    "Records Kafka did not acknowledge or the producer refused to queue.");
	metrics_declare("collectord_kafka_outstanding_records", METRIC_GAUGE,
	    "Records queued in the producer or in flight to Kafka.");
	metrics_declare("collectord_producer_rebuilds_total", METRIC_COUNTER,
	    "Kafka producers replaced after a fatal error.");
	if ((p->cur = prk_new(p, err, errlen)) == NULL)
		goto fail;
	return p;
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
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FATAL;

	if (p->cur != NULL)
		e = rd_kafka_producev(p->cur->rk, RD_KAFKA_V_TOPIC(topic),
		    RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)value, len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
		    RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		metrics_add("collectord_produce_errors_total", "", 1);
	return e;
}

/* The partitioner of the topics producer_send_together() sends to: the
 * first record of a waiter is placed by librdkafka's consistent_random,
 * the others follow it, available or not (records queued before the
 * topic's leaders are known are placed when none is available yet).  Runs
 * on the thread that partitions the record: the loop's, inside
 * rd_kafka_produce_batch(), or librdkafka's once the topic's partitions
 * are known; one waiter's records are partitioned on one of them. */
static int32_t
together_partition(const rd_kafka_topic_t *rkt, const void *key, size_t keylen, int32_t cnt,
    void *rkt_opaque, void *msg_opaque)
{
	struct producer_waiter *w = msg_opaque;
	int32_t part;

	if (w != NULL && w->placed > 0 && w->placed <= cnt)
		return w->placed - 1;
	part = rd_kafka_msg_partitioner_consistent_random(
	    rkt, key, keylen, cnt, rkt_opaque, msg_opaque);
	if (w != NULL && part >= 0)
		w->placed = part + 1;
	return part;
}

/* H's handle of TOPIC, kept once made, TOGETHER or not; NULL when out of
 * room or memory, or made the other way (the caller then sends record by
 * record). */
static rd_kafka_topic_t *
prk_topic(struct prk *h, const char *topic, bool together)
{
	rd_kafka_topic_conf_t *tc = NULL;
	rd_kafka_topic_t *rkt;
	char *name;

	for (size_t i = 0; i < h->ntopics; i++)
		if (strcmp(h->topics[i].name, topic) == 0)
			return h->topics[i].together == together ? h->topics[i].rkt : NULL;
	if (h->ntopics == PRK_TOPICS || (name = strdup(topic)) == NULL)
		return NULL;
	if (together) {
		if ((tc = rd_kafka_default_topic_conf_dup(h->rk)) == NULL) {
			free(name);
			return NULL;
		}
		rd_kafka_topic_conf_set_partitioner_cb(tc, together_partition);
	}
	/* TC is freed by rd_kafka_topic_new(), whatever it returns. */
	if ((rkt = rd_kafka_topic_new(h->rk, topic, tc)) == NULL) {
		free(name);
		return NULL;
	}
	h->topics[h->ntopics].name = name;
	h->topics[h->ntopics].together = together;
	h->topics[h->ntopics++].rkt = rkt;
	return rkt;
}

static size_t
send_batch(struct producer *p, const char *topic, rd_kafka_message_t *msgs, size_t n, bool together)
{
	rd_kafka_topic_t *rkt = p->cur != NULL ? prk_topic(p->cur, topic, together) : NULL;
	size_t queued = 0;
	int r;

	if (rkt == NULL || n > INT_MAX) {
		for (size_t i = 0; i < n; i++) {
			msgs[i].err = producer_send(p, topic, msgs[i].key, msgs[i].key_len,
			    msgs[i].payload, msgs[i].len, NULL, msgs[i]._private);
			queued += msgs[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
		}
		return queued;
	}
	for (size_t i = 0; i < n; i++)
		msgs[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
	r = rd_kafka_produce_batch(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, msgs, (int)n);
	queued = r > 0 ? (size_t)r : 0;
	if (queued < n)
		metrics_add("collectord_produce_errors_total", "", (double)(n - queued));
	return queued;
}

size_t
producer_send_batch(struct producer *p, const char *topic, rd_kafka_message_t *msgs, size_t n)
{
	return send_batch(p, topic, msgs, n, false);
}

size_t
producer_send_together(struct producer *p, const char *topic, rd_kafka_message_t *msgs, size_t n,
    struct producer_waiter *w)
{
	w->placed = 0;
	return send_batch(p, topic, msgs, n, true);
}

size_t
producer_outstanding(const struct producer *p)
{
	const struct prk *h;
	size_t n = p->cur != NULL ? prk_outstanding(p->cur) : 0;

	LIST_FOREACH(h, &p->retired, link)
	n += prk_outstanding(h);
	return n;
}

size_t
producer_room(const struct producer *p)
{
	size_t out;

	if (p->cur == NULL)
		return 0;
	out = prk_outstanding(p->cur);
	return out >= p->max_messages ? 0 : p->max_messages - out;
}

uint64_t
producer_rebuilds(const struct producer *p)
{
	return p->rebuilds;
}

rd_kafka_resp_err_t
producer_inject_fatal(struct producer *p, const char *why)
{
	if (p->cur == NULL)
		return RD_KAFKA_RESP_ERR__STATE;
	return rd_kafka_test_fatal_error(
	    p->cur->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, why);
}

/* Serve H's queue until nothing is outstanding or DEADLINE_MS passed
 * (rd_kafka_flush would only wait: with event delivery reports, the
 * records count as outstanding until their events are served). */
static void
prk_drain(struct prk *h, struct timespec *deadline)
{
	struct timespec now;
	rd_kafka_event_t *ev;
	long left;

	if (h == NULL || h->rk == NULL || h->queue == NULL)
		return;
	for (;;) {
		if (prk_outstanding(h) == 0)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (deadline->tv_sec - now.tv_sec) * 1000 +
		       (deadline->tv_nsec - now.tv_nsec) / 1000000;
		if (left <= 0)
			break;
		ev = rd_kafka_queue_poll(
		    h->queue, left < DRAIN_SLICE_MS ? (int)left : DRAIN_SLICE_MS);
		if (ev != NULL) {
			on_event(h, ev);
			rd_kafka_event_destroy(ev);
		}
	}
	log_warn("producer flush incomplete", "client=%s outstanding=%zu", rd_kafka_name(h->rk),
	    prk_outstanding(h));
}

void
producer_free(struct producer *p, int timeout_ms)
{
	struct timespec deadline;
	struct prk *h;

	if (p == NULL)
		return;
	p->closing = true;
	if (timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		if (p->cur != NULL)
			rd_kafka_flush(p->cur->rk, 0); /* linger.ms ends now */
		prk_drain(p->cur, &deadline);
		LIST_FOREACH(h, &p->retired, link)
		prk_drain(h, &deadline);
	}
	prk_free(p->cur);
	while ((h = LIST_FIRST(&p->retired)) != NULL) {
		LIST_REMOVE(h, link);
		prk_free(h);
	}
	if (p->reap_timer != NULL)
		event_free(p->reap_timer);
	if (p->rebuild_timer != NULL)
		event_free(p->rebuild_timer);
	if (p->conf != NULL)
		rd_kafka_conf_destroy(p->conf);
	free(p);
}
