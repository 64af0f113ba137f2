/* collect.c: POST /collect, from request body to Kafka acknowledgements.
 *
 * A batch goes through two stages, each fully asynchronous:
 *   1. the dead letters (invalid events, or a whole unparsable body) are
 *      written to S3; if any write fails the batch is answered 503 and
 *      nothing reaches Kafka, so a client retry duplicates nothing;
 *   2. every event is produced (valid ones framed to the raw topic, invalid
 *      ones as JSON to the dead-letter topic) and the client is answered
 *      once Kafka acknowledged all of them, or 503 if any failed.
 * The batch outlives its request when the client goes away or times out:
 * its memory is the delivery reports' opaque and is freed by the last one.
 */
#include "collect.h"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec.h"
#include "config.h"
#include "health.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "producer.h"
#include "s3.h"

struct collect {
	struct event_base *base;
	const struct config *cfg;
	struct producer *producer;
	struct s3 *s3;
	const struct codec_schema *schema;
	int32_t schema_id;
	bool draining;
	size_t inflight;
	char **api_keys;
	size_t napi_keys;
};

struct item {
	char corr[IDS_TEXT_SIZE];
	char *error;	 /* NULL: valid */
	uint8_t *record; /* framed payload, valid events only */
	size_t record_len;
	char *json; /* original event text, invalid events only */
};

struct batch {
	struct producer_waiter waiter; /* first: the producer's opaque */
	struct collect *c;
	struct evhttp_request *req; /* NULL once answered or abandoned */
	struct event *timeout;
	struct timespec started;
	uint8_t id[16];
	char id_text[IDS_TEXT_SIZE];
	int64_t received_ms;
	char received_at[32];
	cJSON *events;
	struct item *items;
	size_t n, rejected;
	unsigned s3_pending, kafka_pending;
	bool failed;
	char failure[512];
	char *parse_error; /* set for a body answered 400 */
};

static void batch_answer_error(
    struct batch *b, int status, const char *reason, const char *message, int retry_after);

static double
elapsed_s(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
count_status(int status)
{
	char labels[32];

	snprintf(labels, sizeof(labels), "status=\"%d\"", status);
	metrics_add("collectord_http_requests_total", labels, 1);
}

/* Send STATUS with a JSON body on REQ (a request that has no batch yet). */
static void
reply_json(struct evhttp_request *req, int status, const char *text, int retry_after)
{
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	static const char *const reasons[] = {
	    [200] = "OK",
	    [400] = "Bad Request",
	    [401] = "Unauthorized",
	    [404] = "Not Found",
	    [405] = "Method Not Allowed",
	    [413] = "Payload Too Large",
	    [415] = "Unsupported Media Type",
	    [500] = "Internal Server Error",
	    [503] = "Service Unavailable",
	};
	const char *reason = status < (int)(sizeof(reasons) / sizeof(reasons[0])) && reasons[status]
				 ? reasons[status]
				 : "Error";

	evhttp_add_header(h, "Content-Type", "application/json");
	if (retry_after > 0) {
		char v[16];

		snprintf(v, sizeof(v), "%d", retry_after);
		evhttp_add_header(h, "Retry-After", v);
	}
	if (out != NULL) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
	}
	evhttp_send_reply(req, status, reason, out);
	evbuffer_free(out);
	count_status(status);
}

static void
reply_error(struct evhttp_request *req, int status, const char *reason, const char *message,
    int retry_after)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	cJSON_AddStringToObject(o, "error", reason);
	cJSON_AddStringToObject(o, "message", message);
	text = cJSON_PrintUnformatted(o);
	reply_json(req, status, text ? text : "{}", retry_after);
	free(text);
	cJSON_Delete(o);
}

static void
batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->items[i].error);
		free(b->items[i].record);
		free(b->items[i].json);
	}
	free(b->items);
	free(b->parse_error);
	cJSON_Delete(b->events);
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

static void
on_connection_close(struct evhttp_connection *evcon, void *arg)
{
	struct batch *b = arg;

	(void)evcon;
	/* evhttp frees the request with its connection: forget it. */
	if (b->req != NULL) {
		b->req = NULL;
		log_info("client left before its answer", "batch=%s", b->id_text);
		batch_maybe_free(b);
	}
}

/* Detach from the request: after this the batch never touches it again. */
static struct evhttp_request *
batch_take_request(struct batch *b)
{
	struct evhttp_request *req = b->req;

	if (req == NULL)
		return NULL;
	b->req = NULL;
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
	if (b->timeout != NULL)
		event_del(b->timeout);
	metrics_observe("collectord_request_duration_seconds", "", elapsed_s(&b->started));
	return req;
}

static void
batch_answer_error(
    struct batch *b, int status, const char *reason, const char *message, int retry_after)
{
	struct evhttp_request *req = batch_take_request(b);
	cJSON *o;
	char *text;

	if (req == NULL)
		return;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "error", reason);
	cJSON_AddStringToObject(o, "message", message);
	cJSON_AddStringToObject(o, "batchId", b->id_text);
	text = cJSON_PrintUnformatted(o);
	reply_json(req, status, text ? text : "{}", retry_after);
	free(text);
	cJSON_Delete(o);
}

/* The metrics label for a rejection: its rule, without the field path. */
static void
reason_label(const char *error, char *buf, size_t size)
{
	const char *rule = strstr(error, ": ");
	size_t n = 0;

	rule = rule != NULL ? rule + 2 : error;
	n = (size_t)snprintf(buf, size, "reason=\"");
	for (; *rule != '\0' && n + 3 < size && n < 72; rule++) {
		unsigned char ch = (unsigned char)*rule;

		if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f)
			continue;
		buf[n++] = (char)ch;
	}
	buf[n++] = '"';
	buf[n] = '\0';
}

static void
batch_answer_ok(struct batch *b)
{
	struct evhttp_request *req = batch_take_request(b);
	cJSON *o, *arr;
	char *text;

	if (req == NULL)
		return;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "batchId", b->id_text);
	cJSON_AddNumberToObject(o, "accepted", (double)(b->n - b->rejected));
	cJSON_AddNumberToObject(o, "rejected", (double)b->rejected);
	arr = cJSON_AddArrayToObject(o, "events");
	for (size_t i = 0; i < b->n; i++) {
		cJSON *e = cJSON_CreateObject();

		cJSON_AddNumberToObject(e, "index", (double)i);
		cJSON_AddStringToObject(e, "correlationId", b->items[i].corr);
		cJSON_AddStringToObject(e, "status", b->items[i].error ? "rejected" : "accepted");
		if (b->items[i].error != NULL)
			cJSON_AddStringToObject(e, "error", b->items[i].error);
		cJSON_AddItemToArray(arr, e);
	}
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (text == NULL) {
		reply_error(req, 500, "internal", "out of memory", 0);
		return;
	}
	reply_json(req, 200, text, 0);
	free(text);
	metrics_add("collectord_events_accepted_total", "", (double)(b->n - b->rejected));
	for (size_t i = 0; i < b->n; i++) {
		char label[96];

		if (b->items[i].error == NULL)
			continue;
		reason_label(b->items[i].error, label, sizeof(label));
		metrics_add("collectord_events_rejected_total", label, 1);
	}
}

static void
on_delivery(struct producer_waiter *w, rd_kafka_resp_err_t err)
{
	struct batch *b = (struct batch *)w;

	if (err != RD_KAFKA_RESP_ERR_NO_ERROR && !b->failed) {
		b->failed = true;
		snprintf(b->failure, sizeof(b->failure),
		    "Kafka did not "
		    "acknowledge an event: %s",
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

static rd_kafka_resp_err_t
send_item(struct batch *b, struct item *it)
{
	struct collect *c = b->c;
	rd_kafka_headers_t *h;
	rd_kafka_resp_err_t e;

	if (it->error == NULL)
		return producer_send(c->producer, c->cfg->topic_raw, it->corr, strlen(it->corr),
		    it->record, it->record_len, NULL, &b->waiter);
	h = rd_kafka_headers_new(2);
	rd_kafka_header_add(h, "error", -1, it->error, -1);
	rd_kafka_header_add(h, "correlation-id", -1, it->corr, -1);
	e = producer_send(c->producer, c->cfg->topic_dead_letter, it->corr, strlen(it->corr),
	    it->json, strlen(it->json), h, &b->waiter);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_headers_destroy(h);
	return e;
}

/* Stage 2: every event to Kafka; the last report answers. */
static void
batch_produce(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		rd_kafka_resp_err_t e = send_item(b, &b->items[i]);

		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			b->failed = true;
			snprintf(b->failure, sizeof(b->failure), "Kafka cannot take the batch: %s",
			    rd_kafka_err2str(e));
			break;
		}
		b->kafka_pending++;
	}
	if (b->kafka_pending == 0) {
		batch_answer_error(b, 503, "kafka_unavailable", b->failure, 1);
		batch_maybe_free(b);
	}
}

static void
on_dead_letter_stored(void *arg, bool ok, const char *err)
{
	struct batch *b = arg;

	if (!ok && !b->failed) {
		b->failed = true;
		snprintf(b->failure, sizeof(b->failure), "S3 could not store a dead letter: %s",
		    err ? err : "unknown error");
	}
	if (--b->s3_pending > 0)
		return;
	if (b->req == NULL) {
		/* Timed out (answered 503) or the client left: producing now
		 * would duplicate the events the client will send again. */
	} else if (b->failed)
		batch_answer_error(b, 503, "s3_unavailable", b->failure, 5);
	else if (b->parse_error != NULL)
		batch_answer_error(b, 400, "invalid_body", b->parse_error, 0);
	else
		batch_produce(b);
	batch_maybe_free(b);
}

static bool
store_dead_letter(struct batch *b, const cJSON *event, const char *raw, size_t rawlen,
    const char *error, const char *corr)
{
	char key[256], *doc;
	int r;

	doc = codec_dead_letter_json(event, raw, rawlen, error, corr, b->received_at);
	if (doc == NULL)
		return false;
	if (s3_key_dead_letter(key, sizeof(key), b->received_ms, corr) == -1) {
		free(doc);
		return false;
	}
	r = s3_put(b->c->s3, key, doc, strlen(doc), "application/json", on_dead_letter_stored, b);
	free(doc);
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
				 : "timed out waiting for S3",
	    5);
	batch_maybe_free(b);
}

static bool
authorized(struct collect *c, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *key = evhttp_find_header(h, "X-API-Key");
	const char *auth = evhttp_find_header(h, "Authorization");

	if (c->napi_keys == 0)
		return true;
	if (key == NULL && auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
		key = auth + 7;
	if (key == NULL)
		return false;
	for (size_t i = 0; i < c->napi_keys; i++) {
		const char *k = c->api_keys[i];
		size_t kl = strlen(k), gl = strlen(key);
		unsigned char diff = kl != gl;

		/* Compare in time independent of where the keys differ. */
		for (size_t j = 0; j < kl; j++)
			diff |= (unsigned char)(k[j] ^ (j < gl ? key[j] : 0));
		if (diff == 0)
			return true;
	}
	return false;
}

/* The body as one contiguous string, inflated if gzip; NULL after replying. */
static char *
read_body(struct collect *c, struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *enc =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Encoding");
	size_t n = evbuffer_get_length(in);
	char *body, *out = NULL, err[256];
	size_t outlen = 0;
	enum codec_status st;

	if ((body = malloc(n + 1)) == NULL) {
		reply_error(req, 500, "internal", "out of memory", 0);
		return NULL;
	}
	evbuffer_remove(in, body, n);
	body[n] = '\0';
	if (enc == NULL || strcasecmp(enc, "identity") == 0) {
		*len = n;
		return body;
	}
	if (strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "x-gzip") != 0) {
		free(body);
		reply_error(req, 415, "unsupported_encoding",
		    "Content-Encoding must be gzip or identity", 0);
		return NULL;
	}
	st = codec_gunzip(
	    body, n, (size_t)c->cfg->max_decompressed_bytes, &out, &outlen, err, sizeof(err));
	free(body);
	if (st == CODEC_TOO_LARGE) {
		reply_error(req, 413, "too_large", err, 0);
		return NULL;
	}
	if (st != CODEC_OK) {
		reply_error(req, 400, "invalid_gzip", err, 0);
		return NULL;
	}
	*len = outlen;
	return out;
}

static struct batch *
batch_new(struct collect *c, struct evhttp_request *req)
{
	struct batch *b = calloc(1, sizeof(*b));
	struct timeval tv;
	struct tm tm;
	time_t secs;

	if (b == NULL)
		return NULL;
	b->waiter.done = on_delivery;
	b->c = c;
	b->req = req;
	clock_gettime(CLOCK_MONOTONIC, &b->started);
	ids_batch_new(b->id);
	ids_format(b->id, b->id_text);
	b->received_ms = (int64_t)ids_time_ms(b->id);
	secs = (time_t)(b->received_ms / 1000);
	gmtime_r(&secs, &tm);
	strftime(b->received_at, sizeof(b->received_at), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(b->received_at + strlen(b->received_at),
	    sizeof(b->received_at) - strlen(b->received_at), ".%03dZ",
	    (int)(b->received_ms % 1000));
	b->timeout = evtimer_new(c->base, on_timeout, b);
	tv.tv_sec = c->cfg->request_timeout_ms / 1000;
	tv.tv_usec = (c->cfg->request_timeout_ms % 1000) * 1000;
	if (b->timeout == NULL || evtimer_add(b->timeout, &tv) == -1) {
		if (b->timeout != NULL)
			event_free(b->timeout);
		free(b);
		return NULL;
	}
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_connection_close, b);
	c->inflight++;
	metrics_set("collectord_inflight_batches", "", (double)c->inflight);
	return b;
}

/* Validate every event; fill the items.  False only for out of memory. */
static bool
batch_validate(struct batch *b)
{
	uint8_t hdr[CODEC_FRAME_MAX];
	size_t hlen = codec_frame_header(hdr, b->c->schema_id);

	b->n = (size_t)cJSON_GetArraySize(b->events);
	if ((b->items = calloc(b->n ? b->n : 1, sizeof(*b->items))) == NULL)
		return false;
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		const cJSON *ev = cJSON_GetArrayItem(b->events, (int)i);
		uint8_t corr[16], *payload = NULL;
		size_t plen = 0;
		char err[512];

		ids_correlation(corr, b->id, (uint32_t)i);
		ids_format(corr, it->corr);
		if (!codec_event_encode(b->c->schema, ev, &payload, &plen, err, sizeof(err))) {
			if ((it->error = strdup(err)) == NULL ||
			    (it->json = cJSON_PrintUnformatted(ev)) == NULL)
				return false;
			b->rejected++;
			continue;
		}
		if ((it->record = malloc(hlen + plen)) == NULL) {
			free(payload);
			return false;
		}
		memcpy(it->record, hdr, hlen);
		memcpy(it->record + hlen, payload, plen);
		it->record_len = hlen + plen;
		free(payload);
	}
	return true;
}

void
collect_handle(struct evhttp_request *req, void *arg)
{
	struct collect *c = arg;
	struct batch *b;
	char err[512], msg[600];
	char *body;
	size_t len = 0;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		reply_error(req, 405, "method_not_allowed", "use POST", 0);
		return;
	}
	if (!authorized(c, req)) {
		evhttp_add_header(
		    evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
		reply_error(req, 401, "unauthorized",
		    "missing or wrong API key (X-API-Key or Authorization: Bearer)", 0);
		return;
	}
	if (c->draining) {
		reply_error(req, 503, "shutting_down", "collectord is stopping", 1);
		return;
	}
	if (c->schema_id <= 0) {
		reply_error(
		    req, 503, "not_ready", "the schema is not registered yet: see /readyz", 5);
		return;
	}
	if (!health_up(HEALTH_KAFKA)) {
		/* Known down: say so now rather than after message.timeout.ms. */
		reply_error(req, 503, "kafka_unavailable", "no Kafka broker is reachable", 5);
		return;
	}
	if ((int64_t)c->inflight >= c->cfg->max_inflight_batches) {
		reply_error(req, 503, "busy", "too many batches in flight", 1);
		return;
	}
	if ((body = read_body(c, req, &len)) == NULL)
		return;
	if ((b = batch_new(c, req)) == NULL) {
		free(body);
		reply_error(req, 500, "internal", "out of memory", 0);
		return;
	}
	if (codec_body_parse(body, len, NULL, &b->events, err, sizeof(err)) != CODEC_OK) {
		/* The raw body is kept: the client is told 400 once it is in S3. */
		b->parse_error = strdup(err);
		if (b->parse_error == NULL ||
		    !store_dead_letter(b, NULL, body, len, err, b->id_text)) {
			batch_answer_error(
			    b, 503, "s3_unavailable", "cannot store the rejected body", 5);
		}
		free(body);
		batch_maybe_free(b);
		return;
	}
	free(body);
	if (cJSON_GetArraySize(b->events) > c->cfg->max_events) {
		snprintf(msg, sizeof(msg), "the batch has %d events; the limit is %lld",
		    cJSON_GetArraySize(b->events), (long long)c->cfg->max_events);
		batch_answer_error(b, 413, "too_many_events", msg, 0);
		batch_maybe_free(b);
		return;
	}
	if (!batch_validate(b)) {
		batch_answer_error(b, 500, "internal", "out of memory", 0);
		batch_maybe_free(b);
		return;
	}
	/* All or nothing: refuse before producing what we could not finish. */
	if (producer_room(c->producer) < b->n) {
		batch_answer_error(
		    b, 503, "kafka_queue_full", "the Kafka producer queue is full", 1);
		batch_maybe_free(b);
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];

		if (it->error != NULL &&
		    !store_dead_letter(
			b, cJSON_GetArrayItem(b->events, (int)i), NULL, 0, it->error, it->corr)) {
			b->failed = true;
			snprintf(b->failure, sizeof(b->failure),
			    "cannot start a dead-letter write to S3");
			break;
		}
	}
	if (b->s3_pending > 0)
		return; /* on_dead_letter_stored goes on */
	if (b->failed)
		batch_answer_error(b, 503, "s3_unavailable", b->failure, 5);
	else
		batch_produce(b);
	batch_maybe_free(b);
}

struct collect *
collect_new(struct event_base *base, const struct config *cfg, struct producer *producer,
    struct s3 *s3, const struct codec_schema *schema)
{
	struct collect *c = calloc(1, sizeof(*c));
	char *keys, *tok, *save = NULL;

	if (c == NULL)
		return NULL;
	c->base = base;
	c->cfg = cfg;
	c->producer = producer;
	c->s3 = s3;
	c->schema = schema;
	if ((keys = strdup(cfg->api_keys)) == NULL) {
		free(c);
		return NULL;
	}
	for (tok = strtok_r(keys, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		char **k = realloc(c->api_keys, (c->napi_keys + 1) * sizeof(*k));

		if (k == NULL || (k[c->napi_keys] = strdup(tok)) == NULL) {
			if (k != NULL)
				c->api_keys = k;
			free(keys);
			collect_free(c);
			return NULL;
		}
		c->api_keys = k;
		c->napi_keys++;
	}
	free(keys);
	metrics_declare("collectord_http_requests_total", METRIC_COUNTER,
	    "POST /collect requests by HTTP status.");
	metrics_declare("collectord_events_accepted_total", METRIC_COUNTER,
	    "Valid events acknowledged by Kafka on events.raw.");
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
	for (size_t i = 0; i < c->napi_keys; i++)
		free(c->api_keys[i]);
	free(c->api_keys);
	free(c);
}

void
collect_set_schema_id(struct collect *c, int32_t id)
{
	c->schema_id = id;
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
