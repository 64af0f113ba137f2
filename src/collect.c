/* collect.c: POST /collect, from request body to Kafka acknowledgements.
 *
 * The head of a request is checked before its body is read (API key,
 * readiness, load), so a refused client costs no body memory.  A batch then
 * goes through two stages, each fully asynchronous:
 *   1. the dead letters (invalid events, or a whole unparsable body) are
 *      written to S3, one object per request; if that fails the batch is
 *      answered 503 and nothing reaches Kafka, so a client retry duplicates
 *      nothing;
 *   2. every event is produced (valid ones framed to the raw topic, invalid
 *      ones as JSON to the dead-letter topic) and the client is answered
 *      once Kafka acknowledged all of them, or 503 if any failed.
 * Everything that could make Kafka refuse a record on the spot (its size,
 * the queue's room) is checked for every record before the first is
 * produced: a batch goes to Kafka whole or not at all.
 * The batch outlives its request when the client goes away or times out:
 * its memory is the delivery reports' opaque and is freed by the last one.
 */
#include "collect.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "apikeys.h"
#include "codec.h"
#include "config.h"
#include "family.h"
#include "health.h"
#include "httpd.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "producer.h"
#include "s3.h"
#include "stats.h"

struct collect;

/* One family this process serves: its settled settings and schema id. */
struct run {
	struct collect *c;
	const struct config_family *fc;
	const struct family *f;
	int32_t schema_id; /* 0 until registered */
	char s3_prefix[72];
	char label[48]; /* family="NAME", for its metric series */
	int stats;	/* its slot in stats.c */
};

struct collect {
	struct event_base *base;
	const struct config *cfg;
	struct producer *producer;
	struct s3 *s3;
	struct run *runs;
	size_t nruns;
	bool draining;
	size_t inflight;
	struct apikeys *keys;
};

struct item {
	char corr[IDS_TEXT_SIZE];
	char *error;	  /* NULL: valid */
	const char *rule; /* the rule it broke: a listed word (codec_rule()) */
	uint8_t *record;  /* framed payload, valid events only */
	size_t record_len;
	char *json;		     /* original event text, invalid events only */
	rd_kafka_headers_t *headers; /* invalid events; librdkafka's once sent */
};

struct batch {
	struct producer_waiter waiter; /* first: the producer's opaque */
	struct collect *c;
	const struct run *run;
	struct httpd_req *req; /* NULL once answered or abandoned */
	struct event *timeout;
	struct timespec started;
	uint8_t id[16];
	char id_text[IDS_TEXT_SIZE];
	int64_t received_ms;
	char received_at[CODEC_TIME_SIZE];
	cJSON *events;
	struct item *items;
	size_t n, rejected;
	unsigned s3_pending, kafka_pending;
	bool failed;
	char failure[256]; /* what the client is told: nothing internal */
	char *parse_error; /* set for a body answered 400 */
};

static double
elapsed_s(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The second of the status page's rings (stats.c). */
static int64_t
mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec;
}

static void
batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->items[i].error);
		free(b->items[i].record);
		free(b->items[i].json);
		if (b->items[i].headers != NULL)
			rd_kafka_headers_destroy(b->items[i].headers);
	}
	free(b->items);
	free(b->parse_error);
	json_tree_free(b->events);
	if (b->timeout != NULL)
		event_free(b->timeout);
	b->c->inflight--;
	metrics_set("collectord_inflight_batches", "", (double)b->c->inflight);
	free(b);
}

/* The batch goes when it is answered and no report can reach it anymore. */
static void
batch_maybe_free(struct batch *b)
{
	if (b->req == NULL && b->s3_pending == 0 && b->kafka_pending == 0)
		batch_free(b);
}

/* The client closed its connection: its request is being freed. */
static void
on_client_gone(void *arg)
{
	struct batch *b = arg;

	b->req = NULL;
	log_info("client left before its answer", "batch=%s s3_pending=%u kafka_pending=%u",
	    b->id_text, b->s3_pending, b->kafka_pending);
	batch_maybe_free(b);
}

/* Detach from the request: after this the batch never touches it again. */
static struct httpd_req *
batch_take_request(struct batch *b)
{
	struct httpd_req *r = b->req;

	if (r == NULL)
		return NULL;
	b->req = NULL;
	httpd_req_on_gone(r, NULL, NULL);
	if (b->timeout != NULL)
		event_del(b->timeout);
	metrics_observe("collectord_request_duration_seconds", "", elapsed_s(&b->started));
	return r;
}

static void
batch_answer_error(
    struct batch *b, int status, const char *code, const char *message, int retry_after)
{
	struct httpd_req *r = batch_take_request(b);

	if (r != NULL)
		httpd_reply_error(r, status, code, message, b->id_text, retry_after);
}

/* A growing text; out of memory is sticky (P goes NULL). */
struct text {
	char *p;
	size_t len, cap;
};

/* Room for N more bytes and the NUL; false once out of memory. */
static bool
text_room(struct text *t, size_t n)
{
	if (t->p == NULL)
		return false;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap * 2 > t->len + n + 1 ? t->cap * 2 : t->len + n + 1;
		char *p = realloc(t->p, cap);

		if (p == NULL) {
			free(t->p);
			t->p = NULL;
			return false;
		}
		t->p = p;
		t->cap = cap;
	}
	return true;
}

static void
text_add(struct text *t, const char *s, size_t n)
{
	if (!text_room(t, n))
		return;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

#define TEXT_LIT(t, lit) text_add((t), (lit), sizeof(lit) - 1)

/* V in decimal at O; how many bytes.  Once an event in the answer, where
 * snprintf() cost more than the rest of the event's entry. */
static size_t
put_size(char *o, size_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	memcpy(o, p, (size_t)(buf + sizeof(buf) - p));
	return (size_t)(buf + sizeof(buf) - p);
}

#define PUT_LIT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) += sizeof(lit) - 1)

/* LINE and a newline; false once out of memory. */
static bool
doc_line(struct text *t, const char *line)
{
	text_add(t, line, strlen(line));
	TEXT_LIT(t, "\n");
	return t->p != NULL;
}

/* S as a JSON string, quotes included: '"', '\\' and control characters
 * escaped; S is valid UTF-8 (the codec's messages are). */
static void
text_add_json(struct text *t, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	TEXT_LIT(t, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		text_add(t, run, (size_t)(s - run));
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			text_add(t, esc, 2);
		} else {
			text_add(t, esc, 6);
		}
		run = s + 1;
	}
	text_add(t, run, (size_t)(s - run));
	TEXT_LIT(t, "\"");
}

/* The 200 answer, written straight into one buffer: on every batch, and
 * building it as a cJSON tree cost more than the rest of the answer. */
static char *
answer_ok_text(const struct batch *b, size_t *len)
{
	struct text t = {malloc(128 + b->n * 100), 0, 128 + b->n * 100};
	char num[64];

	if (t.p != NULL)
		t.p[0] = '\0';
	TEXT_LIT(&t, "{\"batchId\":\"");
	text_add(&t, b->id_text, strlen(b->id_text));
	TEXT_LIT(&t, "\",\"accepted\":");
	text_add(&t, num, put_size(num, b->n - b->rejected));
	TEXT_LIT(&t, ",\"rejected\":");
	text_add(&t, num, put_size(num, b->rejected));
	TEXT_LIT(&t, ",\"events\":[");
	/* An entry up to its status is written in place, in room made once
	 * for its longest form. */
	const size_t most = sizeof(",{\"index\":,\"correlationId\":\"") - 1 + 20 + IDS_TEXT_SIZE -
			    1 + sizeof("\",\"status\":\"rejected\",\"error\":") - 1;

	for (size_t i = 0; i < b->n; i++) {
		const struct item *it = &b->items[i];
		char *o;

		if (!text_room(&t, most))
			break;
		o = t.p + t.len;
		if (i > 0)
			*o++ = ',';
		PUT_LIT(o, "{\"index\":");
		o += put_size(o, i);
		PUT_LIT(o, ",\"correlationId\":\"");
		memcpy(o, it->corr, IDS_TEXT_SIZE - 1);
		o += IDS_TEXT_SIZE - 1;
		if (it->error == NULL)
			PUT_LIT(o, "\",\"status\":\"accepted\"}");
		else
			PUT_LIT(o, "\",\"status\":\"rejected\",\"error\":");
		t.len = (size_t)(o - t.p);
		t.p[t.len] = '\0';
		if (it->error != NULL) {
			text_add_json(&t, it->error);
			TEXT_LIT(&t, "}");
		}
	}
	TEXT_LIT(&t, "]}");
	*len = t.len;
	return t.p;
}

static void
batch_answer_ok(struct batch *b)
{
	struct httpd_req *r = batch_take_request(b);
	size_t len = 0;
	char *text;

	if (r == NULL)
		return;
	if ((text = answer_ok_text(b, &len)) == NULL) {
		httpd_reply_error(r, 500, "internal", "out of memory", b->id_text, 0);
		return;
	}
	httpd_reply(r, 200, "application/json", text, len);
	free(text);
	metrics_add(
	    "collectord_events_accepted_total", b->run->label, (double)(b->n - b->rejected));
	stats_count(b->run->stats, mono_s(), (uint32_t)(b->n - b->rejected), (uint32_t)b->rejected);
	for (size_t i = 0; i < b->n; i++) {
		char label[96];

		if (b->items[i].error == NULL)
			continue;
		stats_rule(b->run->stats, b->items[i].rule);
		snprintf(label, sizeof(label), "%s,reason=\"%s\"", b->run->label,
		    b->items[i].rule != NULL ? b->items[i].rule : "other");
		metrics_add("collectord_events_rejected_total", label, 1);
	}
}

static void
on_delivery(struct producer_waiter *w, rd_kafka_resp_err_t err)
{
	struct batch *b = (struct batch *)w;

	if (err != RD_KAFKA_RESP_ERR_NO_ERROR && !b->failed) {
		b->failed = true;
		snprintf(b->failure, sizeof(b->failure), "Kafka did not acknowledge an event: %s",
		    rd_kafka_err2str(err));
	}
	if (--b->kafka_pending > 0)
		return;
	if (b->failed)
		batch_answer_error(b, 503, "kafka_unavailable", b->failure, 5);
	else
		batch_answer_ok(b);
	batch_maybe_free(b);
}

/* Stage 2: every event to Kafka; the last report answers.  The valid
 * events go in one call, the invalid ones (with their headers) one by one.
 * Never frees the batch: the caller does, once (batch_maybe_free). */
static void
batch_produce(struct batch *b)
{
	struct collect *c = b->c;
	rd_kafka_message_t *msgs = calloc(b->n ? b->n : 1, sizeof(*msgs));
	size_t nvalid = 0, queued;

	if (msgs == NULL) {
		snprintf(b->failure, sizeof(b->failure), "out of memory");
		batch_answer_error(b, 503, "kafka_unavailable", b->failure, 1);
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];

		if (it->error != NULL)
			continue;
		msgs[nvalid].key = it->corr;
		msgs[nvalid].key_len = IDS_TEXT_SIZE - 1;
		msgs[nvalid].payload = it->record;
		msgs[nvalid].len = it->record_len;
		msgs[nvalid++]._private = &b->waiter;
	}
	queued =
	    producer_send_together(c->producer, b->run->fc->raw_topic, msgs, nvalid, &b->waiter);
	b->kafka_pending += (unsigned)queued;
	if (queued < nvalid) {
		/* Sizes and room were checked for the whole batch, so this is
		 * Kafka going away under us; the records queued so far still
		 * report, and the last answers 503. */
		rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FAIL;

		for (size_t i = 0; e == RD_KAFKA_RESP_ERR__FAIL && i < nvalid; i++)
			if (msgs[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
				e = msgs[i].err;
		b->failed = true;
		snprintf(b->failure, sizeof(b->failure), "Kafka cannot take the batch: %s",
		    rd_kafka_err2str(e));
	}
	free(msgs);
	for (size_t i = 0; !b->failed && i < b->n; i++) {
		struct item *it = &b->items[i];
		rd_kafka_resp_err_t e;

		if (it->error == NULL)
			continue;
		e = producer_send(c->producer, b->run->fc->invalid_topic, it->corr,
		    IDS_TEXT_SIZE - 1, it->json, strlen(it->json), it->headers, &b->waiter);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			b->failed = true;
			snprintf(b->failure, sizeof(b->failure), "Kafka cannot take the batch: %s",
			    rd_kafka_err2str(e));
			break;
		}
		it->headers = NULL; /* librdkafka's now */
		b->kafka_pending++;
	}
	if (b->kafka_pending == 0)
		batch_answer_error(b, 503, "kafka_unavailable", b->failure, 1);
}

/* Whether the producer's queue has room for every record of B now.  The
 * check and batch_produce() must run in one turn of the loop: nothing
 * else of ours queues in between, and librdkafka only makes more room. */
static bool
batch_fits(const struct batch *b)
{
	return producer_room(b->c->producer) >= b->n;
}

static void
on_dead_letters_stored(void *arg, bool ok, const char *err)
{
	struct batch *b = arg;
	char q[300];

	b->s3_pending--;
	if (!ok) {
		/* The client learns that S3 failed, the log learns how. */
		log_warn("cannot store dead letters", "batch=%s error=%s", b->id_text,
		    log_quote(err ? err : "unknown", q, sizeof(q)));
		b->failed = true;
		snprintf(b->failure, sizeof(b->failure), "cannot store the rejected events");
	}
	if (b->req == NULL) {
		/* Timed out (answered 503) or the client left: producing now
		 * would duplicate the events the client will send again. */
	} else if (b->failed)
		batch_answer_error(b, 503, "s3_unavailable", b->failure, 5);
	else if (b->parse_error != NULL)
		batch_answer_error(b, 400, "invalid_body", b->parse_error, 0);
	else if (!batch_fits(b))
		/* Other batches filled the queue while the PUT was out: the
		 * room is checked again, here, right before producing, so that
		 * a batch is queued whole or not at all. */
		batch_answer_error(
		    b, 503, "kafka_queue_full", "the Kafka producer queue is full", 1);
	else
		batch_produce(b);
	batch_maybe_free(b);
}

/* A dead letter that did not fit in the request's object: who, why, how
 * big, not what (the Kafka dead-letter record still carries it whole). */
static char *
stub_line(const struct batch *b, const char *error, const char *corr, size_t bytes)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	cJSON_AddStringToObject(o, "error", error);
	cJSON_AddNullToObject(o, "event");
	cJSON_AddStringToObject(o, "correlationId", corr);
	cJSON_AddStringToObject(o, "receivedAt", b->received_at);
	cJSON_AddTrueToObject(o, "truncated");
	cJSON_AddNumberToObject(o, "eventBytes", (double)bytes);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

/*
 * Stage 1: the request's dead letters as one S3 object, a JSON line each
 * ({error, event, correlationId, receivedAt}), at most max_dead_letter_bytes:
 * lines past it keep only their error and size.  RAW (LEN bytes) is an
 * unparsable body, stored instead of events.  False when the write could
 * not start.
 */
static bool
store_dead_letters(struct batch *b, const char *raw, size_t rawlen)
{
	size_t max = (size_t)b->c->cfg->max_dead_letter_bytes;
	struct text doc = {malloc(4096), 0, 4096};
	char key[256], *line;
	bool ok = doc.p != NULL;
	int r;

	if (ok)
		doc.p[0] = '\0';
	if (raw != NULL) {
		/* Escaping may grow a text body six times: keep a prefix. */
		size_t keep = rawlen;

		line = codec_dead_letter_json(
		    NULL, raw, keep, b->parse_error, b->id_text, b->received_at);
		if (line != NULL && strlen(line) > max) {
			free(line);
			keep = (max - 1024) / 6;
			line = codec_dead_letter_json(
			    NULL, raw, keep, b->parse_error, b->id_text, b->received_at);
		}
		if (line != NULL && keep < rawlen) {
			/* Say it was cut: our own JSON ends with its '}'. */
			char tail[64];
			size_t n = strlen(line);
			char *l2 = malloc(n + sizeof(tail));

			if (l2 != NULL) {
				snprintf(tail, sizeof(tail),
				    ",\"truncated\":true,\"bodyBytes\":%zu}", rawlen);
				memcpy(l2, line, n - 1);
				strcpy(l2 + n - 1, tail);
			}
			free(line);
			line = l2;
		}
		ok = line != NULL && doc_line(&doc, line);
		free(line);
	}
	/* Events and items in step: cJSON_GetArrayItem() would walk the list
	 * from its head for each one. */
	const cJSON *ev = raw == NULL ? b->events->child : NULL;

	for (size_t i = 0; ok && ev != NULL && i < b->n; i++, ev = ev->next) {
		struct item *it = &b->items[i];

		if (it->error == NULL)
			continue;
		line = codec_dead_letter_json(ev, NULL, 0, it->error, it->corr, b->received_at);
		if (line != NULL && doc.len + strlen(line) + 1 > max) {
			size_t bytes = strlen(it->json);

			free(line);
			line = stub_line(b, it->error, it->corr, bytes);
		}
		ok = line != NULL && doc_line(&doc, line);
		free(line);
	}
	if (!ok || s3_key_dead_letters(
		       key, sizeof(key), b->run->s3_prefix, b->received_ms, b->id_text) == -1) {
		free(doc.p);
		return false;
	}
	r = s3_put(
	    b->c->s3, key, doc.p, doc.len, "application/x-ndjson", on_dead_letters_stored, b);
	free(doc.p);
	if (r == -1)
		return false;
	b->s3_pending++;
	return true;
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct batch *b = arg;

	(void)fd;
	(void)what;
	log_warn("batch timed out", "batch=%s s3_pending=%u kafka_pending=%u", b->id_text,
	    b->s3_pending, b->kafka_pending);
	batch_answer_error(b, 503, "timeout",
	    b->kafka_pending > 0 ? "timed out waiting for Kafka acknowledgements"
				 : "timed out storing the rejected events",
	    5);
	batch_maybe_free(b);
}

static bool
is_gzip(struct httpd_req *r)
{
	const char *enc = httpd_req_header(r, "Content-Encoding");

	return enc != NULL && (strcasecmp(enc, "gzip") == 0 || strcasecmp(enc, "x-gzip") == 0);
}

static struct batch *
batch_new(const struct run *run, struct httpd_req *r)
{
	struct collect *c = run->c;
	struct batch *b = calloc(1, sizeof(*b));
	struct timeval tv;
	char ms[CODEC_TIME_SIZE];

	if (b == NULL)
		return NULL;
	b->waiter.done = on_delivery;
	b->c = c;
	b->run = run;
	b->req = r;
	clock_gettime(CLOCK_MONOTONIC, &b->started);
	ids_batch_new(b->id);
	ids_format(b->id, b->id_text);
	b->received_ms = (int64_t)ids_time_ms(b->id);
	codec_format_ms(b->received_ms, ms);
	memcpy(b->received_at, ms, sizeof(b->received_at));
	b->timeout = evtimer_new(c->base, on_timeout, b);
	tv.tv_sec = c->cfg->request_timeout_ms / 1000;
	tv.tv_usec = (c->cfg->request_timeout_ms % 1000) * 1000;
	if (b->timeout == NULL || evtimer_add(b->timeout, &tv) == -1) {
		if (b->timeout != NULL)
			event_free(b->timeout);
		free(b);
		return NULL;
	}
	httpd_req_on_gone(r, on_client_gone, b);
	c->inflight++;
	metrics_set("collectord_inflight_batches", "", (double)c->inflight);
	return b;
}

/* Validate every event; fill the items.  False only for out of memory. */
static bool
batch_validate(struct batch *b)
{
	static const char hex[] = "0123456789abcdef";
	char first[IDS_TEXT_SIZE];
	uint8_t corr[16];
	const cJSON *ev;
	size_t i = 0;

	b->n = (size_t)cJSON_GetArraySize(b->events);
	if ((b->items = calloc(b->n ? b->n : 1, sizeof(*b->items))) == NULL)
		return false;
	/* An event's correlation id is the batch's with the index in bytes
	 * 12-15 (ids_correlation()), the last eight hex digits of its text:
	 * the text of the first, and those digits for each. */
	ids_correlation(corr, b->id, 0);
	ids_format(corr, first);
	cJSON_ArrayForEach(ev, b->events)
	{
		struct item *it = &b->items[i];
		uint32_t index = (uint32_t)i++;
		struct codec_error err;

		memcpy(it->corr, first, IDS_TEXT_SIZE);
		for (int d = 0; d < 8; d++)
			it->corr[IDS_TEXT_SIZE - 2 - d] = hex[(index >> (4 * d)) & 0xf];
		/* valid: the framed record, ready for Kafka */
		if (codec_event_record(&b->run->f->codec, ev, b->run->schema_id, &it->record,
			&it->record_len, &err))
			continue;
		if ((it->error = strdup(err.message)) == NULL ||
		    (it->json = cJSON_PrintUnformatted(ev)) == NULL ||
		    (it->headers = rd_kafka_headers_new(4)) == NULL)
			return false;
		it->rule = err.rule;
		/* the parts as well as the text: the rejections table and
		 * other consumers take them without parsing the message */
		rd_kafka_header_add(it->headers, "error", -1, it->error, -1);
		rd_kafka_header_add(
		    it->headers, "error-path", -1, it->error, (ssize_t)err.path_len);
		rd_kafka_header_add(
		    it->headers, "error-rule", -1, err.rule != NULL ? err.rule : "other", -1);
		rd_kafka_header_add(it->headers, "correlation-id", -1, it->corr, -1);
		b->rejected++;
	}
	return true;
}

/* The first record Kafka would refuse for its size, or -1.  *SIZE is its
 * size as librdkafka counts it. */
static long
batch_oversize(const struct batch *b, size_t *size)
{
	size_t max = producer_max_record_bytes(b->c->producer);

	for (size_t i = 0; i < b->n; i++) {
		const struct item *it = &b->items[i];
		size_t keylen = IDS_TEXT_SIZE - 1; /* the key: its correlation id */

		*size = it->error == NULL
			    ? producer_record_size(keylen, it->record_len, NULL)
			    : producer_record_size(keylen, strlen(it->json), it->headers);
		if (*size > max)
			return (long)i;
	}
	return -1;
}

/* Stage 0, in one pass of the loop: body → events → records, checked
 * whole before anything is stored or produced. */
static void
collect_body(struct httpd_req *r, void *arg)
{
	const struct run *run = arg;
	struct collect *c = run->c;
	struct codec_limits lim = {
	    .max_events = (size_t)c->cfg->max_events,
	    .max_values = (size_t)c->cfg->max_json_nodes,
	};
	struct batch *b;
	const char *body;
	char *inflated = NULL, err[512], msg[600];
	size_t len = 0, size = 0;
	enum codec_status st;
	long big;

	body = httpd_req_body(r, &len);
	if (is_gzip(r)) {
		st = codec_gunzip(body, len, (size_t)c->cfg->max_decompressed_bytes, &inflated,
		    &len, err, sizeof(err));
		if (st != CODEC_OK) {
			httpd_reply_error(r, st == CODEC_TOO_LARGE ? 413 : 400,
			    st == CODEC_TOO_LARGE ? "too_large" : "invalid_gzip", err, NULL, 0);
			return;
		}
		body = inflated;
	}
	if ((b = batch_new(run, r)) == NULL) {
		free(inflated);
		httpd_reply_error(r, 500, "internal", "out of memory", NULL, 0);
		return;
	}
	st = codec_body_parse(body, len, &lim, &b->events, err, sizeof(err));
	if (st == CODEC_TOO_LARGE) {
		free(inflated);
		batch_answer_error(b, 413,
		    strstr(err, " events") != NULL ? "too_many_events" : "too_many_values", err, 0);
		batch_maybe_free(b);
		return;
	}
	if (st != CODEC_OK) {
		/* The raw body is kept: the client is told 400 once it is in S3. */
		b->parse_error = strdup(err);
		if (b->parse_error == NULL || !store_dead_letters(b, body, len))
			batch_answer_error(
			    b, 503, "s3_unavailable", "cannot store the rejected body", 5);
		free(inflated);
		batch_maybe_free(b);
		return;
	}
	free(inflated);
	if (!batch_validate(b)) {
		batch_answer_error(b, 500, "internal", "out of memory", 0);
		batch_maybe_free(b);
		return;
	}
	if ((big = batch_oversize(b, &size)) >= 0) {
		snprintf(msg, sizeof(msg),
		    "event %ld is %zu bytes as a Kafka record; the limit is %zu: nothing of the "
		    "batch was stored",
		    big, size, producer_max_record_bytes(c->producer));
		batch_answer_error(b, 413, "record_too_large", msg, 0);
		batch_maybe_free(b);
		return;
	}
	/* All or nothing: refuse before producing what we could not finish
	 * (and again after the dead letters' PUT, on_dead_letters_stored). */
	if (!batch_fits(b)) {
		batch_answer_error(
		    b, 503, "kafka_queue_full", "the Kafka producer queue is full", 1);
		batch_maybe_free(b);
		return;
	}
	if (b->rejected > 0) {
		if (store_dead_letters(b, NULL, 0))
			return; /* on_dead_letters_stored goes on */
		batch_answer_error(b, 503, "s3_unavailable", "cannot store the rejected events", 5);
	} else {
		batch_produce(b);
	}
	batch_maybe_free(b);
}

void
collect_head(struct httpd_req *r, struct collect *c, const struct family *f)
{
	struct run *run;
	const char *enc = httpd_req_header(r, "Content-Encoding");

	if (!apikeys_check(c->keys, r))
		return;
	if (enc != NULL && strcasecmp(enc, "identity") != 0 && !is_gzip(r)) {
		httpd_reply_error(r, 415, "unsupported_encoding",
		    "Content-Encoding must be gzip or identity", NULL, 0);
		return;
	}
	for (run = c->runs; run < c->runs + c->nruns && run->f != f; run++)
		;
	if (run == c->runs + c->nruns) {
		httpd_reply_error(r, 404, "not_found",
		    "this process does not collect that family ([server] families)", NULL, 0);
		return;
	}
	if (c->draining) {
		httpd_reply_error(r, 503, "shutting_down", "collectord is stopping", NULL, 1);
		return;
	}
	if (run->schema_id <= 0) {
		httpd_reply_error(
		    r, 503, "not_ready", "the schema is not registered yet: see /readyz", NULL, 5);
		return;
	}
	if (!health_up(HEALTH_KAFKA)) {
		/* Known down: say so now rather than after message.timeout.ms. */
		httpd_reply_error(
		    r, 503, "kafka_unavailable", "no Kafka broker is reachable", NULL, 5);
		return;
	}
	if ((int64_t)c->inflight >= c->cfg->max_inflight_batches) {
		httpd_reply_error(r, 503, "busy", "too many batches in flight", NULL, 1);
		return;
	}
	httpd_req_read_body(r, collect_body, run);
}

struct collect *
collect_new(
    struct event_base *base, const struct config *cfg, struct producer *producer, struct s3 *s3)
{
	struct collect *c = calloc(1, sizeof(*c));
	const struct config_family *fc;

	if (c == NULL)
		return NULL;
	c->base = base;
	c->cfg = cfg;
	c->producer = producer;
	c->s3 = s3;
	while (family_served(cfg, c->nruns) != NULL)
		c->nruns++;
	if ((c->runs = calloc(c->nruns ? c->nruns : 1, sizeof(*c->runs))) == NULL) {
		free(c);
		return NULL;
	}
	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++) {
		struct run *run = &c->runs[i];
		char buf[sizeof(run->s3_prefix)];

		run->c = c;
		run->fc = fc;
		run->f = fc->family;
		snprintf(run->s3_prefix, sizeof(run->s3_prefix), "%s",
		    family_s3_prefix(run->f, buf, sizeof(buf)));
		snprintf(run->label, sizeof(run->label), "family=\"%s\"", run->f->name);
		run->stats = stats_family(run->f->name);
	}
	if ((c->keys = apikeys_new(cfg->api_keys)) == NULL) {
		free(c->runs);
		free(c);
		return NULL;
	}
	metrics_declare("collectord_events_accepted_total", METRIC_COUNTER,
	    "Valid events acknowledged by Kafka on their family's raw topic.");
	metrics_declare("collectord_events_rejected_total", METRIC_COUNTER,
	    "Invalid events dead-lettered, by rule broken.");
	metrics_declare(
	    "collectord_inflight_batches", METRIC_GAUGE, "Batches waiting for S3 or Kafka.");
	metrics_declare("collectord_request_duration_seconds", METRIC_HISTOGRAM,
	    "Time from a /collect request to its answer.");
	metrics_set("collectord_inflight_batches", "", 0);
	return c;
}

void
collect_free(struct collect *c)
{
	if (c == NULL)
		return;
	apikeys_free(c->keys);
	free(c->runs);
	free(c);
}

void
collect_set_schema_id(struct collect *c, const struct family *f, int32_t id)
{
	for (size_t i = 0; i < c->nruns; i++)
		if (c->runs[i].f == f)
			c->runs[i].schema_id = id;
}

void
collect_drain(struct collect *c)
{
	c->draining = true;
}

size_t
collect_inflight(const struct collect *c)
{
	return c->inflight;
}
