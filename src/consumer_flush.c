/*
 * consumer_flush.c: the sink side of the consumer roles: a flush's block to
 * S3 and (enrich) its rows to PostgreSQL, dead letters to Kafka (or to S3
 * when Kafka refuses them for good), and when a flush has settled.  Called
 * by consumer.c only; it reads the partition's cursor and reports through
 * c->hooks (see consumer_int.h), so it never calls into consumer.c.
 */
#include "consumer.h"
#include "consumer_int.h"

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "archive_line.h"
#include "codec.h"
#include "config.h"
#include "dedup.h"
#include "log.h"
#include "metrics.h"
#include "pg_sink.h"
#include "producer.h"
#include "s3.h"

#define CONTENT_TYPE "application/x-ndjson"
#define DL_CONTENT_TYPE "application/json"

static void part_progress(struct part *p);
static void s3_kick(struct part *p);
static void flush_sinks(struct part *p);
static void dedup_ask(struct part *p);

/* ---------------------------------------------------------------- helpers */

static void
count_flush(const struct consumer *c, const char *sink, bool ok)
{
	char labels[64];

	snprintf(labels, sizeof(labels), "sink=\"%s\",result=\"%s\"", sink, ok ? "ok" : "error");
	metrics_add(CONSUMER_METRIC(c, CONSUMER_M_FLUSHES), labels, 1);
}

/* ---------------------------------------------------------------- refused dead letters, pure */

bool
consumer_dl_refused_for_good(rd_kafka_resp_err_t err, bool alone, int tries)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		return alone;
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
		return true;
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
		return tries >= CONSUMER_DL_MISSING_TOPIC_TRIES;
	default:
		return false;
	}
}

char *
consumer_refused_json(const struct consumer_refused *r, size_t *len)
{
	cJSON *doc = cJSON_CreateObject();
	char when[CODEC_TIME_SIZE], *out = NULL;
	bool ok;

	if (doc == NULL)
		return NULL;
	if (r->publish_ms >= 0)
		codec_format_ms(r->publish_ms, when);
	/* Each step runs only when the ones before it succeeded. */
	ok = codec_json_add(
	    doc, "error", cJSON_CreateString(r->error != NULL ? r->error : "unknown"));
	ok = ok &&
	     codec_json_add(doc, "kafkaError", cJSON_CreateString(rd_kafka_err2str(r->kafka_err)));
	ok = ok && codec_json_add(
		       doc, "kafkaErrorCode", cJSON_CreateString(rd_kafka_err2name(r->kafka_err)));
	ok = ok && codec_json_add(doc, "deadLetterTopic",
		       r->dead_letter_topic != NULL ? cJSON_CreateString(r->dead_letter_topic)
						    : cJSON_CreateNull());
	ok = ok && codec_json_add(doc, "sourceTopic", cJSON_CreateString(r->topic));
	ok = ok && codec_json_add(doc, "sourcePartition", cJSON_CreateNumber(r->partition));
	ok = ok && codec_json_add(doc, "sourceOffset", cJSON_CreateNumber((double)r->offset));
	ok = ok && codec_json_add(doc, "publishTime",
		       r->publish_ms >= 0 ? cJSON_CreateString(when) : cJSON_CreateNull());
	if (r->key != NULL)
		ok = ok && archive_json_bytes(doc, "key", r->key, r->keylen);
	else
		ok = ok && codec_json_add(doc, "key", cJSON_CreateNull());
	ok = ok && archive_json_headers(doc, r->headers);
	ok = ok && archive_json_bytes(doc, "value", r->value, r->len);
	if (ok && (out = cJSON_PrintUnformatted(doc)) != NULL)
		*len = strlen(out);
	cJSON_Delete(doc);
	return out;
}

/* P's flush may have settled: tell the Kafka side. */
static void
part_progress(struct part *p)
{
	if (flush_settled(p))
		p->c->hooks.settled(p);
}

/* ---------------------------------------------------------------- dead letters */

static void
dl_free(struct dl *d)
{
	if (d->c != NULL && d->c->dl_alone == d)
		d->c->dl_alone = NULL;
	if (d->c != NULL)
		LIST_REMOVE(d, link);
	if (d->timer != NULL)
		event_free(d->timer);
	free(d);
}

void
dl_orphan(struct rec *r)
{
	if (r->dl == NULL)
		return;
	/* A dead letter in the producer or in an S3 PUT outlives its record:
	 * its report finds r == NULL and only frees it. */
	r->dl->r = NULL;
	if (!r->dl->in_producer && !r->dl->in_s3)
		dl_free(r->dl);
	r->dl = NULL;
}

static void
dl_retry_later(struct dl *d)
{
	d->backoff = backoff_next(d->backoff, d->c->retry_max_ms);
	timer_in(d->timer, d->backoff);
}

static bool
in_flush(const struct part *p, const struct rec *r)
{
	return p->flush != NULL && r->offset >= p->flush->first_off &&
	       r->offset <= p->flush->last_off;
}

/* D's record is safe (in Kafka, or in S3 when Kafka refused it for good):
 * its offset may be stored. */
static void
dl_landed(struct dl *d)
{
	struct rec *r = d->r;
	struct part *p = r->part;

	r->dl = NULL;
	r->dl_acked = true;
	dl_free(d);
	if (in_flush(p, r)) {
		p->flush->dl_wait--;
		part_progress(p);
	}
}

static void
on_dl_s3_done(void *arg, bool ok, const char *err)
{
	struct dl *d = arg;
	struct rec *r = d->r;
	char q[600];

	d->in_s3 = false;
	if (d->c == NULL || r == NULL) {
		dl_free(d);
		return;
	}
	if (!ok) {
		d->backoff = backoff_next(d->backoff, d->c->retry_max_ms);
		log_warn("S3 PUT of a dead letter Kafka refused failed, retrying",
		    "topic=%s partition=%d offset=%lld retry_ms=%ld error=%s", r->part->topic,
		    (int)r->part->partition, (long long)r->offset, d->backoff,
		    log_quote(err ? err : "", q, sizeof(q)));
		timer_in(d->timer, d->backoff);
		return;
	}
	metrics_add("collectord_dead_letters_to_s3_total", "", 1);
	log_info("dead letter stored in S3", "topic=%s partition=%d offset=%lld kafka_error=%s",
	    r->part->topic, (int)r->part->partition, (long long)r->offset,
	    rd_kafka_err2name(d->refused));
	dl_landed(d);
}

/* PUT D's record, its reason and Kafka's refusal to S3. */
static void
dl_s3_try(struct dl *d)
{
	struct rec *r = d->r;
	struct part *p = r->part;
	struct consumer *c = p->c;
	struct consumer_refused doc = {
	    .error = r->error,
	    .kafka_err = d->refused,
	    .dead_letter_topic = p->fam->fc->invalid_topic,
	    .topic = p->topic,
	    .partition = p->partition,
	    .offset = r->offset,
	    .publish_ms = r->ts_ms,
	    .key = r->key,
	    .keylen = r->keylen,
	    .headers = r->headers,
	    .value = r->value,
	    .len = r->len,
	};
	char key[S3_KEY_SIZE], *body;
	size_t len = 0;

	if (s3_key_kafka_refused(key, sizeof(key), p->fam->s3_prefix, r->ts_ms < 0 ? 0 : r->ts_ms,
		p->topic, p->partition, r->offset) == -1) {
		/* Kafka topic names always fit: not reached in practice. */
		log_error("no S3 key for a dead letter Kafka refused",
		    "topic=%s partition=%d offset=%lld", p->topic, (int)p->partition,
		    (long long)r->offset);
		dl_retry_later(d);
		return;
	}
	if ((body = consumer_refused_json(&doc, &len)) == NULL) {
		log_error("out of memory for a dead letter's S3 document", "key=%s", key);
		dl_retry_later(d);
		return;
	}
	/* s3_put copies the body. */
	if (s3_put(c->s3, key, body, len, DL_CONTENT_TYPE, on_dl_s3_done, d) == -1) {
		free(body);
		log_warn("cannot start the S3 PUT of a dead letter, retrying", "key=%s", key);
		dl_retry_later(d);
		return;
	}
	free(body);
	d->in_s3 = true;
}

/* Kafka refused D for good with ERR: it goes to S3 from now on. */
static void
dl_refused(struct dl *d, rd_kafka_resp_err_t err)
{
	struct rec *r = d->r;

	d->to_s3 = true;
	d->refused = err;
	d->backoff = 0;
	if (d->c->dl_alone == d)
		d->c->dl_alone = NULL;
	log_warn("Kafka refused a dead letter for good, storing it in S3",
	    "topic=%s partition=%d offset=%lld bytes=%zu refusals=%d error=\"%s\"", r->part->topic,
	    (int)r->part->partition, (long long)r->offset, r->len, d->refusals,
	    rd_kafka_err2str(err));
	dl_s3_try(d);
}

static void
dl_try(struct dl *d)
{
	struct rec *r = d->r;
	struct part *p = r->part;
	struct consumer *c = p->c;
	rd_kafka_headers_t *h;
	rd_kafka_resp_err_t e;
	char part[16], off[24];

	/* A dead letter to be judged on its own claims the slot, then waits
	 * until no other of ours is in the producer; the others wait for it. */
	if (d->want_alone && c->dl_alone == NULL)
		c->dl_alone = d;
	if ((c->dl_alone != NULL && c->dl_alone != d) ||
	    (c->dl_alone == d && c->dl_in_producer > 0)) {
		timer_in(d->timer, RETRY_MIN_MS);
		return;
	}
	h = rd_kafka_headers_new(5);
	snprintf(part, sizeof(part), "%d", (int)p->partition);
	snprintf(off, sizeof(off), "%lld", (long long)r->offset);
	rd_kafka_header_add(h, "error", -1, r->error ? r->error : "unknown error", -1);
	if (r->key != NULL)
		rd_kafka_header_add(h, "correlation-id", -1, r->key, (ssize_t)r->keylen);
	rd_kafka_header_add(h, "source-topic", -1, p->topic, -1);
	rd_kafka_header_add(h, "source-partition", -1, part, -1);
	rd_kafka_header_add(h, "source-offset", -1, off, -1);
	/* On success the producer owns H; on failure it stays ours. */
	e = producer_send(
	    c->producer, p->fam->fc->invalid_topic, r->key, r->keylen, r->value, r->len, h, &d->w);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_headers_destroy(h);
		/* Judged on its own, whatever else is queued. */
		if (consumer_dl_refused_for_good(e, true, ++d->refusals)) {
			dl_refused(d, e);
			return;
		}
		log_warn("cannot queue a dead letter, retrying",
		    "topic=%s partition=%d offset=%lld error=\"%s\"", p->topic, (int)p->partition,
		    (long long)r->offset, rd_kafka_err2str(e));
		dl_retry_later(d);
		return;
	}
	d->in_producer = true;
	d->sent_alone = c->dl_alone == d;
	c->dl_in_producer++;
}

static void
on_dl_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dl *d = arg;

	(void)fd;
	(void)what;
	if (d->to_s3)
		dl_s3_try(d);
	else
		dl_try(d);
}

static void
on_dl_done(struct producer_waiter *w, rd_kafka_resp_err_t err)
{
	struct dl *d = (struct dl *)w;
	struct rec *r = d->r;
	struct part *p;

	d->in_producer = false;
	if (d->c != NULL) {
		d->c->dl_in_producer--;
		if (d->c->dl_alone == d)
			d->c->dl_alone = NULL;
	}
	if (d->c == NULL || r == NULL) {
		dl_free(d);
		return;
	}
	p = r->part;
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (consumer_dl_refused_for_good(err, d->sent_alone, ++d->refusals)) {
			dl_refused(d, err);
			return;
		}
		if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
		    err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE)
			d->want_alone = true;
		/* Its offset may not be stored before Kafka has it: again. */
		log_warn("dead letter refused, retrying",
		    "topic=%s partition=%d offset=%lld error=\"%s\"", p->topic, (int)p->partition,
		    (long long)r->offset, rd_kafka_err2str(err));
		dl_retry_later(d);
		return;
	}
	dl_landed(d);
}

/* Send R to the dead-letter topic: value = the original bytes. */
static void
dl_send(struct part *p, struct rec *r)
{
	struct consumer *c = p->c;
	struct dl *d = calloc(1, sizeof(*d));

	if (d == NULL || (d->timer = evtimer_new(c->base, on_dl_timer, d)) == NULL) {
		/* The record stays unacknowledged: its partition wedges rather
		 * than store an offset past a lost record. */
		log_error("out of memory for a dead letter", "topic=%s partition=%d offset=%lld",
		    p->topic, (int)p->partition, (long long)r->offset);
		free(d);
		return;
	}
	d->w.done = on_dl_done;
	d->c = c;
	d->r = r;
	LIST_INSERT_HEAD(&c->dls, d, link);
	r->dl = d;
	if (in_flush(p, r))
		p->flush->dl_wait++;
	dl_try(d);
}

void
rec_dead(struct part *p, struct rec *r, const char *why)
{
	char q[600];

	r->dead = true;
	free(r->error);
	r->error = strdup(why);
	metrics_add(CONSUMER_METRIC(p->c, CONSUMER_M_RECORDS), "outcome=\"dead_letter\"", 1);
	log_warn("dead letter", "topic=%s partition=%d offset=%lld error=%s", p->topic,
	    (int)p->partition, (long long)r->offset, log_quote(why, q, sizeof(q)));
	dl_send(p, r);
}

/* ---------------------------------------------------------------- S3 */

static bool
zombie_busy(struct consumer *c, const struct part *p)
{
	struct part *z;

	LIST_FOREACH(z, &c->zombies, link)
	if (z->partition == p->partition && strcmp(z->topic, p->topic) == 0 && flush_put_busy(z))
		return true;
	return false;
}

/* The block's lines up to the flush's end: [0, flushed) is one block. */
static bool
build_body(struct part *p, struct flush *f)
{
	size_t len = 0, at = 0, end = cursor_flushed(p->cur);
	char *body;

	for (size_t i = 0; i < end; i++)
		if (part_rec(p, i)->line != NULL)
			len += part_rec(p, i)->linelen + 1;
	if ((body = malloc(len + 1)) == NULL)
		return false;
	for (size_t i = 0; i < end; i++) {
		struct rec *r = part_rec(p, i);

		if (r->line == NULL)
			continue;
		memcpy(body + at, r->line, r->linelen);
		at += r->linelen;
		body[at++] = '\n';
	}
	free(f->body);
	f->body = body;
	f->body_len = len;
	f->body_stale = false;
	return true;
}

static void
s3_failed(struct part *p, const char *err)
{
	struct flush *f = p->flush;
	char q[600];

	f->s3_need = true;
	f->s3_backoff = backoff_next(f->s3_backoff, p->c->retry_max_ms);
	count_flush(p->c, "s3", false);
	log_warn("S3 PUT failed, retrying", "key=%s retry_ms=%ld error=%s", f->key, f->s3_backoff,
	    log_quote(err ? err : "", q, sizeof(q)));
	timer_in(p->s3_timer, f->s3_backoff);
}

static void
on_s3_done(void *arg, long status, const char *err, const char *etag, int64_t last_offset)
{
	struct part *p = arg, *live;
	struct flush *f = p->flush;
	struct consumer *c = p->c;
	bool ok = status >= 200 && status <= 299;

	(void)last_offset;
	f->s3_busy = false;
	if (ok)
		snprintf(p->etag, sizeof(p->etag), "%s", etag);
	if (status == 412 && !p->revoked) {
		/* Another writer changed the object since we saw it (a
		 * previous owner of the partition, or our own write before a
		 * restart): HEAD it, and on_s3_head decides whether ours
		 * still has to go in. */
		log_info("S3 object changed by another writer, reading it again", "key=%s", f->key);
		metrics_add("collectord_s3_conflicts_total", "", 1);
		p->etag_stale = true;
		f->s3_need = true;
		s3_kick(p);
		c->hooks.unref(p);
		return;
	}
	if (p->revoked) {
		/* A revoked partition's last PUT (a 412: its new owner wrote
		 * the object since, and nothing of ours was written, which is
		 * right): whoever owns the partition now may write the key. */
		count_flush(c, "s3", ok);
		live = part_find(c, p->topic, p->partition);
		c->hooks.unref(p);
		if (live != NULL)
			s3_kick(live);
		return;
	}
	if (!ok) {
		/* a write of ours that was not confirmed may have landed: the
		 * ETag we hold may be stale, so ask before the next PUT */
		p->etag_stale = true;
		s3_failed(p, err);
	} else {
		count_flush(c, "s3", true);
		f->s3_backoff = 0;
		f->s3_ms = now_ms();
		s3_kick(p); /* lines removed meanwhile: PUT again */
		part_progress(p);
	}
	c->hooks.unref(p); /* the PUT's; the assignment's remains */
}

/* A request of P's block could not start: as a failed PUT. */
static void
s3_start_failed(struct part *p, const char *why)
{
	p->flush->s3_busy = false;
	s3_failed(p, why);
	p->c->hooks.unref(p);
}

static void s3_put_block(struct part *p);

/*
 * The state of P's block's object, before a PUT that must not undo
 * another writer's.  An object's last offset never goes down: when the
 * object already holds our block up to our flush's last offset (a new
 * owner of the partition wrote it, or our own write that seemed to fail
 * landed), our PUT is done, since a block's lines are a function of its
 * records; else ours holds more, and goes in if nobody wrote since.
 */
static void
on_s3_head(void *arg, long status, const char *err, const char *etag, int64_t last_offset)
{
	struct part *p = arg;

	if (p->revoked || (status != 200 && status != 404)) {
		/* as an answer to the PUT: on_s3_done retries or lets go */
		on_s3_done(p, status == 404 || status == 200 ? 0 : status,
		    err ? err : "HEAD failed", "", -1);
		return;
	}
	snprintf(p->etag, sizeof(p->etag), "%s", status == 200 ? etag : "");
	p->etag_stale = false;
	if (status == 200 && last_offset >= p->flush->last_off) {
		log_info("S3 object already holds the block", "key=%s last_offset=%lld",
		    p->flush->key, (long long)last_offset);
		on_s3_done(p, 200, NULL, etag, last_offset);
		return;
	}
	s3_put_block(p);
}

static void
s3_kick(struct part *p)
{
	struct consumer *c = p->c;
	struct flush *f = p->flush;
	int64_t block;

	if (f == NULL || !f->s3_need || f->s3_busy || evtimer_pending(p->s3_timer, NULL) ||
	    zombie_busy(c, p))
		return;
	if (f->body_stale && !build_body(p, f)) {
		s3_failed(p, "out of memory");
		return;
	}
	f->s3_need = false;
	block = cursor_block_first(f->first_off, c->block);
	/* Nothing to say: the block has no line and no object yet. */
	if (!f->have_key || (f->body_len == 0 && p->object_block != block))
		return;
	if (p->object_block != block) {
		/* A block new to this partition: most likely no object yet; a
		 * 412 says otherwise. */
		p->object_block = block;
		p->etag[0] = '\0';
		p->etag_stale = false;
	}
	f->s3_busy = true;
	p->refs++; /* the request's: on_s3_done drops it through c->hooks.unref */
	if (p->etag_stale) {
		if (s3_head(c->s3, f->key, on_s3_head, p) == -1)
			s3_start_failed(p, "cannot start the HEAD");
		return;
	}
	s3_put_block(p);
}

/* The PUT of P's block, conditional on the ETag P holds. */
static void
s3_put_block(struct part *p)
{
	struct flush *f = p->flush;

	/* s3_put_if copies the body; ours stays for the retries. */
	if (s3_put_if(p->c->s3, f->key, f->body, f->body_len, CONTENT_TYPE,
		p->etag[0] != '\0' ? p->etag : NULL, f->last_off, on_s3_done, p) == -1)
		s3_start_failed(p, "cannot start the PUT");
}

void
on_s3_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	s3_kick(arg);
}

/* ---------------------------------------------------------------- PostgreSQL */

static void
pgw_orphan(struct pgw *w)
{
	LIST_REMOVE(w, link);
	w->c = NULL;
	w->f = NULL;
}

static void lw_orphan(struct lw *w);

static void
dq_orphan(struct dq *q)
{
	LIST_REMOVE(q, link);
	q->c = NULL;
	q->f = NULL;
}

/* Writes of F still out will report to nobody. */
static void
flush_orphan_writes(struct consumer *c, struct flush *f)
{
	struct pgw *w, *next;
	struct lw *l, *lnext;
	struct dq *q, *qnext;

	for (q = LIST_FIRST(&c->dqs); q != NULL; q = qnext) {
		qnext = LIST_NEXT(q, link);
		if (q->f == f)
			dq_orphan(q);
	}
	f->dedup_wait = false;
	evtimer_del(f->p->dedup_timer);

	for (w = LIST_FIRST(&c->pgws); w != NULL; w = next) {
		next = LIST_NEXT(w, link);
		if (w->f == f)
			pgw_orphan(w);
	}
	f->pg_pending = 0;
	for (l = LIST_FIRST(&c->lws); l != NULL; l = lnext) {
		lnext = LIST_NEXT(l, link);
		if (l->f == f)
			lw_orphan(l);
	}
	f->kafka_pending = 0;
}

void
flush_free(struct part *p)
{
	struct flush *f = p->flush;

	if (f == NULL)
		return;
	flush_orphan_writes(p->c, f);
	free(f->body);
	free(f);
	p->flush = NULL;
}

bool
flush_put_busy(const struct part *p)
{
	return p->flush != NULL && p->flush->s3_busy;
}

void
flush_revoke(struct part *p)
{
	evtimer_del(p->s3_timer);
	if (p->flush == NULL)
		return;
	flush_orphan_writes(p->c, p->flush);
	if (!p->flush->s3_busy)
		flush_free(p);
}

void
flush_orphan_all(struct consumer *c)
{
	struct dl *d;

	/* Dead letters still in the producer: their reports (producer_free's
	 * flush) free them.  Those with an S3 PUT in flight go now: s3_free
	 * cancels the PUT before the loop runs again. */
	while ((d = LIST_FIRST(&c->dls)) != NULL) {
		LIST_REMOVE(d, link);
		d->c = NULL;
		d->r = NULL;
		if (d->timer != NULL)
			event_free(d->timer);
		d->timer = NULL;
		if (!d->in_producer)
			free(d);
	}
	while (!LIST_EMPTY(&c->pgws))
		pgw_orphan(LIST_FIRST(&c->pgws));
	while (!LIST_EMPTY(&c->lws))
		lw_orphan(LIST_FIRST(&c->lws));
	while (!LIST_EMPTY(&c->dqs))
		dq_orphan(LIST_FIRST(&c->dqs));
}

/* ---------------------------------------------------------------- the enriched topic */

/*
 * A record goes to its family's enriched topic once PostgreSQL confirmed
 * its row, so a row refused for good (a dead letter) is never published;
 * the flush settles, and the offsets move, only once Kafka acknowledged
 * every one.  A replay after a crash produces again: the topic is
 * at-least-once, with the correlationId (the key) to tell repeats.
 */

static void lw_send(struct lw *w);

static void
lw_free(struct lw *w)
{
	if (w->timer != NULL)
		event_free(w->timer);
	free(w);
}

/* W will report to nobody: its last delivery report frees it. */
static void
lw_orphan(struct lw *w)
{
	LIST_REMOVE(w, link);
	w->c = NULL;
	w->f = NULL;
	if (w->timer != NULL)
		evtimer_del(w->timer);
	if (w->pending == 0)
		lw_free(w);
}

/* Every report of W's round is in: done, or again for those refused. */
static void
lw_round_over(struct lw *w)
{
	struct part *p = w->f->p;
	size_t left = 0;

	for (size_t i = 0; i < w->n; i++)
		if (w->m[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
			w->m[left++] = w->m[i];
	if (left == 0) {
		count_flush(w->c, "kafka", true);
		LIST_REMOVE(w, link);
		w->f->kafka_pending--;
		lw_free(w);
		part_progress(p);
		return;
	}
	count_flush(w->c, "kafka", false);
	w->backoff = backoff_next(w->backoff, w->c->retry_max_ms);
	log_warn("enriched records refused by Kafka, retrying",
	    "topic=%s partition=%d records=%zu retry_ms=%ld error=\"%s\"", p->fam->enriched_topic,
	    (int)p->partition, left, w->backoff, rd_kafka_err2str(w->m[0].err));
	w->n = left;
	timer_in(w->timer, w->backoff);
}

static void
on_lw_done(struct producer_waiter *pw, rd_kafka_resp_err_t err)
{
	struct lmsg *m = (struct lmsg *)pw;
	struct lw *w = m->lw;

	m->err = err;
	if (--w->pending > 0)
		return;
	if (w->c == NULL)
		lw_free(w);
	else
		lw_round_over(w);
}

static void
on_lw_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lw_send(arg);
}

/* Queue W's records (their values are their records' r->ev). */
static void
lw_send(struct lw *w)
{
	struct part *p = w->f->p;
	rd_kafka_message_t msgs[64];
	size_t i = 0;

	while (i < w->n) {
		size_t n = 0, first = i, queued;

		for (size_t k = cursor_confirmed(p->cur); k < cursor_flushed(p->cur) && i < w->n;
		     k++) {
			struct rec *r = part_rec(p, k);

			if (r->offset != w->m[i].offset)
				continue;
			msgs[n] = (rd_kafka_message_t){.key = r->key,
			    .key_len = r->keylen,
			    .payload = r->ev,
			    .len = r->evlen,
			    ._private = &w->m[i].w};
			w->m[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
			i++;
			if (++n == sizeof(msgs) / sizeof(msgs[0]))
				break;
		}
		if (n == 0) {
			/* Not reached: a flush's records stay until it settles. */
			log_error("enriched record missing from its window",
			    "topic=%s partition=%d offset=%lld", p->topic, (int)p->partition,
			    (long long)w->m[i].offset);
			w->m[i++].err = RD_KAFKA_RESP_ERR__STATE;
			continue;
		}
		queued = producer_send_batch(p->c->producer, p->fam->enriched_topic, msgs, n);
		w->pending += queued;
		for (size_t k = 0; k < n; k++)
			if (msgs[k].err != RD_KAFKA_RESP_ERR_NO_ERROR)
				w->m[first + k].err = msgs[k].err;
	}
	if (w->pending == 0)
		lw_round_over(w);
}

/* PostgreSQL confirmed the rows of [LO, HI]: their records to the
 * enriched topic, when the family has one. */
static void
latest_write(struct part *p, int64_t lo, int64_t hi)
{
	struct consumer *c = p->c;
	struct lw *w;
	size_t n = 0;

	if (*p->fam->enriched_topic == '\0')
		return;
	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++) {
		struct rec *r = part_rec(p, i);

		if (r->line != NULL && r->ev != NULL && r->offset >= lo && r->offset <= hi)
			n++;
	}
	if (n == 0)
		return;
	if ((w = calloc(1, sizeof(*w) + n * sizeof(w->m[0]))) == NULL ||
	    (w->timer = evtimer_new(c->base, on_lw_timer, w)) == NULL) {
		/* The flush cannot settle without them: its partition wedges
		 * rather than store offsets past records never published. */
		log_error("out of memory for enriched records", "topic=%s partition=%d", p->topic,
		    (int)p->partition);
		free(w);
		p->flush->kafka_pending++;
		return;
	}
	w->c = c;
	w->f = p->flush;
	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++) {
		struct rec *r = part_rec(p, i);

		if (r->line != NULL && r->ev != NULL && r->offset >= lo && r->offset <= hi) {
			w->m[w->n].lw = w;
			w->m[w->n].w.done = on_lw_done;
			w->m[w->n++].offset = r->offset;
		}
	}
	LIST_INSERT_HEAD(&c->lws, w, link);
	p->flush->kafka_pending++;
	lw_send(w);
}

/* R's line, enriched record and row go: it lands in no sink. */
static void
rec_drop_line(struct rec *r)
{
	free(r->line);
	r->line = NULL;
	r->linelen = 0;
	free(r->ev);
	r->ev = NULL;
	codec_row_free(&r->row);
}

static void pg_write(struct part *p, int64_t lo, int64_t hi);

/* PostgreSQL refused R's row for good: dead-letter it and drop its line
 * from the block's object. */
static void
pg_reject_rec(struct part *p, struct rec *r, const char *err)
{
	char why[700];

	snprintf(why, sizeof(why), "postgres: %s", err ? err : "rejected");
	rec_drop_line(r);
	rec_dead(p, r, why);
	p->flush->body_stale = true;
	p->flush->s3_need = true;
	s3_kick(p);
}

/* A write of the line records in [LO, HI] was refused: one row is the
 * culprit, several are retried one per batch to find the culprits. */
static void
pg_rejected(struct part *p, int64_t lo, int64_t hi, size_t nrows, const char *err)
{
	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++) {
		struct rec *r = part_rec(p, i);

		if (r->line == NULL || r->offset < lo || r->offset > hi)
			continue;
		if (nrows == 1)
			pg_reject_rec(p, r, err);
		else
			pg_write(p, r->offset, r->offset);
	}
}

static void
on_pg_done(struct pg_sink *sink, void *arg, enum pg_sink_outcome outcome, const char *err)
{
	struct pgw *w = arg;
	struct flush *f = w->f;
	struct part *p;
	int64_t lo = w->lo, hi = w->hi;
	size_t nrows = w->nrows;
	char q[600];

	(void)sink;
	if (w->c == NULL) {
		free(w);
		return;
	}
	LIST_REMOVE(w, link);
	free(w);
	p = f->p;
	f->pg_pending--;
	switch (outcome) {
	case PG_SINK_OK:
		count_flush(p->c, "postgres", true);
		f->pg_ms = now_ms();
		latest_write(p, lo, hi);
		break;
	case PG_SINK_REJECTED:
		count_flush(p->c, "postgres", false);
		log_warn("PostgreSQL rejected rows",
		    "topic=%s partition=%d first=%lld last=%lld "
		    "rows=%zu error=%s",
		    p->topic, (int)p->partition, (long long)lo, (long long)hi, nrows,
		    log_quote(err ? err : "", q, sizeof(q)));
		pg_rejected(p, lo, hi, nrows, err);
		break;
	case PG_SINK_ABORTED:
	default:
		/* The sink is going away: the flush never completes, nothing
		 * is stored, a replay will insert it. */
		f->aborted = true;
		return;
	}
	part_progress(p);
}

static void
pg_write(struct part *p, int64_t lo, int64_t hi)
{
	struct consumer *c = p->c;
	struct pg_row *rows;
	struct pgw *w;
	size_t n = 0;
	char err[512];

	/* A role without rows (archive) has no sink for them. */
	if (c->pg == NULL)
		return;
	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++) {
		struct rec *r = part_rec(p, i);

		if (r->line != NULL && r->offset >= lo && r->offset <= hi)
			n++;
	}
	if (n == 0)
		return;
	rows = calloc(n, sizeof(*rows));
	w = calloc(1, sizeof(*w));
	if (rows == NULL || w == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto refused;
	}
	n = 0;
	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++) {
		struct rec *r = part_rec(p, i);
		struct pg_row *row = &rows[n];

		if (r->line == NULL || r->offset < lo || r->offset > hi)
			continue;
		/* the sink's table has the family's columns, in their order */
		row->partition_us = r->row.partition_us;
		row->values = (const char *const *)r->row.values;
		n++;
	}
	w->c = c;
	w->f = p->flush;
	w->lo = lo;
	w->hi = hi;
	w->nrows = n;
	/* pg_sink copies the rows before returning. */
	if (pg_sink_write(c->pg, p->fam->table, rows, n, on_pg_done, w, err, sizeof(err)) == -1)
		goto refused;
	free(rows);
	LIST_INSERT_HEAD(&c->pgws, w, link);
	p->flush->pg_pending++;
	return;
refused:
	/* Unusable before any server saw it: as a rejection. */
	free(rows);
	free(w);
	count_flush(p->c, "postgres", false);
	pg_rejected(p, lo, hi, n, err);
}

/* ---------------------------------------------------------------- dedup */

/*
 * Before any sink sees a flush's line records, the ledger (sql/003_dedup.sql)
 * says which repeat a dedup key another record carried first; those drop
 * their line, row and enriched record and land nowhere.  The answer is a
 * function of the ledger, which never changes its mind about a key, so a
 * flush asked again after a crash drops the same records, and the block's
 * object comes out the same.
 */

/* The line records of P's flush go to their sinks. */
static void
flush_sinks(struct part *p)
{
	struct flush *f = p->flush;

	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++)
		if (part_rec(p, i)->line != NULL)
			f->s3_need = f->body_stale = true;
	pg_write(p, f->first_off, f->last_off);
	s3_kick(p);
}

static void
dedup_retry(struct part *p, const char *why)
{
	struct flush *f = p->flush;
	char q[600];

	f->dedup_backoff = backoff_next(f->dedup_backoff, p->c->retry_max_ms);
	count_flush(p->c, "dedup", false);
	log_warn("dedup ledger did not answer, retrying",
	    "topic=%s partition=%d first=%lld last=%lld retry_ms=%ld error=%s", p->topic,
	    (int)p->partition, (long long)f->first_off, (long long)f->last_off, f->dedup_backoff,
	    log_quote(why ? why : "", q, sizeof(q)));
	timer_in(p->dedup_timer, f->dedup_backoff);
}

/* R repeats its key: it lands in no sink. */
static void
rec_dup(struct part *p, struct rec *r)
{
	rec_drop_line(r);
	r->dup = true;
	metrics_add("collectord_enrich_duplicates_total", p->fam->dup_labels, 1);
	log_debug("duplicate", "topic=%s partition=%d offset=%lld key=%s", p->topic,
	    (int)p->partition, (long long)r->offset, r->dkey);
}

static void
on_dedup(void *arg, const char *err, const int64_t *dups, size_t ndups)
{
	struct dq *q = arg;
	struct part *p;
	size_t d = 0;

	if (q->c == NULL) {
		free(q);
		return;
	}
	p = q->f->p;
	LIST_REMOVE(q, link);
	free(q);
	if (err != NULL) {
		dedup_retry(p, err);
		return;
	}
	count_flush(p->c, "dedup", true);
	/* Both in offset order. */
	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur) && d < ndups; i++) {
		struct rec *r = part_rec(p, i);

		while (d < ndups && dups[d] < r->offset)
			d++;
		if (d < ndups && dups[d] == r->offset && r->line != NULL && r->dkey != NULL)
			rec_dup(p, r);
	}
	p->flush->dedup_wait = false;
	p->flush->dedup_backoff = 0;
	flush_sinks(p);
	part_progress(p);
}

/* Ask the ledger about the keyed line records of P's flush. */
static void
dedup_ask(struct part *p)
{
	struct consumer *c = p->c;
	struct dedup_item *items;
	struct dq *q;
	size_t n = 0;
	char err[256];

	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++)
		n += part_rec(p, i)->line != NULL && part_rec(p, i)->dkey != NULL;
	if (n == 0) {
		p->flush->dedup_wait = false;
		flush_sinks(p);
		return;
	}
	items = calloc(n, sizeof(*items));
	q = calloc(1, sizeof(*q));
	if (items == NULL || q == NULL) {
		free(items);
		free(q);
		dedup_retry(p, "out of memory");
		return;
	}
	n = 0;
	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++) {
		struct rec *r = part_rec(p, i);

		/* the key of the record is its correlationId, checked a UUID */
		if (r->line != NULL && r->dkey != NULL)
			items[n++] = (struct dedup_item){r->offset, r->dkey, r->key};
	}
	q->c = c;
	q->f = p->flush;
	if (dedup_check(
		c->dedup, p->topic, p->partition, items, n, on_dedup, q, err, sizeof(err)) == -1) {
		free(items);
		free(q);
		dedup_retry(p, err);
		return;
	}
	free(items);
	LIST_INSERT_HEAD(&c->dqs, q, link);
}

void
on_dedup_timer(evutil_socket_t fd, short what, void *arg)
{
	struct part *p = arg;

	(void)fd;
	(void)what;
	if (p->flush != NULL && p->flush->dedup_wait)
		dedup_ask(p);
}

/* ---------------------------------------------------------------- flushes */

struct flush *
flush_new(struct part *p)
{
	struct flush *f = calloc(1, sizeof(*f));

	if (f != NULL)
		f->p = p;
	return f;
}

void
flush_start(struct part *p, struct flush *f, const struct cursor_block *b)
{
	struct rec *first = part_rec(p, 0);

	f->first_off = b->first_off;
	f->last_off = b->last_off;
	f->final = b->final;
	f->started_ms = now_ms();
	p->flush = f;
	/* Named after the block's first record held, whichever flush this is. */
	f->have_key = p->c->role->s3_key(p, first, f->key, sizeof(f->key)) == 0;
	if (!f->have_key)
		log_error("no S3 key for this topic, skipping S3", "topic=%s partition=%d",
		    p->topic, (int)p->partition);
	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++) {
		struct rec *r = part_rec(p, i);

		if (r->dead && !r->dl_acked)
			f->dl_wait++;
	}
	if (p->c->dedup != NULL && p->fam != NULL && p->fam->dedup_path != NULL) {
		f->dedup_wait = true;
		dedup_ask(p);
		return;
	}
	flush_sinks(p);
}

bool
flush_settled(const struct part *p)
{
	const struct flush *f = p->flush;

	return f != NULL && !f->s3_need && !f->s3_busy && !evtimer_pending(p->s3_timer, NULL) &&
	       f->pg_pending == 0 && f->kafka_pending == 0 && f->dl_wait == 0 && !f->aborted &&
	       !f->dedup_wait;
}
