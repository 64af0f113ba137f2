/*
 * consumer.c: the enrich role.  A consumer-group member on [topics] raw that
 * turns each record into an enriched JSON line and a table row, writes the
 * lines to S3 and the rows to PostgreSQL, sends what it cannot decode to the
 * dead-letter topic, and stores a partition's offset only once everything
 * before it is confirmed (librdkafka's auto-commit then commits what was
 * stored).  Everything runs on the loop; nothing here waits.
 *
 * Exactly-once S3 objects without local state.  The offsets of a partition
 * are cut into aligned blocks of N = [enrich] flush_events: [k*N, (k+1)*N).
 * Each block is one S3 object, named after the block's first record (the
 * date of its publishTime, topic, partition, its offset), so the name
 * depends only on what is in Kafka.  A flush (the block complete, flush_ms
 * after the oldest unflushed record, or stop) PUTs the whole block received
 * so far, in offset order; a later flush of the same block overwrites the
 * object with a superset.  PostgreSQL gets only the rows added since the
 * previous flush.  When the PUT, the insert and the flush's dead letters
 * are all confirmed, offset last+1 is stored.
 * After a restart or a rebalance the committed offset C may fall inside a
 * block.  The first record after assignment tells us C; when C % N != 0 we
 * seek back to floor(C/N)*N (asynchronously) and drop what was fetched past
 * C until the seek lands, so the block is read whole again and its object
 * rewritten complete, never as a tail alone.  Re-inserted rows are absorbed
 * by ON CONFLICT DO NOTHING.  So each object ends up written once and
 * complete whatever was killed where; rows and dead letters are at least
 * once.  N = 1 gives one object per event.
 *
 * Per partition the records wait in one array, in offset order:
 *   [0, nconf)       confirmed, kept only for their lines: the block's next
 *                    flush rewrites them
 *   [nconf, nflush)  in the flush in flight (one at a time per partition,
 *                    so two PUTs of one key never race)
 *   [nflush, nproc)  enriched or dead-lettered, waiting for a flush
 *   [nproc, n)       not processed yet: held, in order, while the registry
 *                    is asked about a schema id
 * A partition holding more than max_pending unconfirmed records is paused
 * until it is back under half: a sink that is down stops the partitions
 * behind it, and offsets never run ahead of the sinks.
 *
 * Lifetimes.  A partition lives while it is referenced: by the assignment,
 * by a registry check in flight, by an S3 PUT in flight.  A revoked
 * partition drops its records and stores nothing more, but keeps an
 * in-flight PUT until it answers; a new owner of the same partition in this
 * process waits for that PUT before its own.  Dead letters and PostgreSQL
 * writes are tickets of their own that outlive their records, and even the
 * consumer: their reports may arrive from producer_free or pg_sink_free
 * after consumer_free, and then only free the ticket.
 */
#include "consumer.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "codec.h"
#include "config.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "pg_sink.h"
#include "producer.h"
#include "rdk_loop.h"
#include "registry.h"
#include "s3.h"

/* First retry delay of every sink; it doubles up to [enrich] retry_max_ms. */
#define RETRY_MIN_MS 100L
/* Gauges (lag, buffered, paused) refresh; while stopping, the close poll. */
#define TICK_MS 1000L
#define STOP_POLL_MS 50L
#define S3_KEY_SIZE 512
#define SCHEMA_TYPE "PROTOBUF"
#define CONTENT_TYPE "application/x-ndjson"

/* librdkafka properties only a producer reads: the consumer would warn about
 * every one of them, and [kafka] is shared with the producer. */
static const char *const producer_only[] = {
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "linger.ms",
    "message.send.max.retries",
    "retries",
    "retry.backoff.ms",
    "queue.buffering.backpressure.threshold",
    "compression.codec",
    "compression.type",
    "compression.level",
    "batch.num.messages",
    "batch.size",
    "delivery.report.only.error",
    "sticky.partitioning.linger.ms",
    "request.required.acks",
    "acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "queuing.strategy",
    "produce.offset.report",
    "partitioner",
};

/* The table's columns, all NOT NULL: a record lacking one is a dead letter
 * before it reaches a sink. */
static const char *const pg_columns[] = {
    "timestamp_stamp",
    "message_id_stamp",
    "correlation_id",
    "type",
    "target_subscription",
    "new_context_account_id",
    "new_context_user_id",
    "data",
};

struct part;
struct flush;
struct dl;

struct rec {
	struct part *part;
	int64_t offset;
	int64_t ts_ms;	    /* publishTime; -1 when the record has none */
	int64_t arrived_ms; /* monotonic: flush_ms counts from here */
	char *key;	    /* NUL-terminated copy; NULL when absent */
	size_t keylen;
	void *value;
	size_t len;
	char *line; /* the enriched JSON, without newline */
	size_t linelen;
	struct codec_row row;
	bool dead;     /* dead-lettered: no line, no row */
	char *error;   /* why (may be NULL when out of memory) */
	struct dl *dl; /* its dead letter while unacknowledged */
	bool dl_acked;
};

/* One dead-letter record on its way to Kafka. */
struct dl {
	struct producer_waiter w; /* first: the producer hands it back */
	LIST_ENTRY(dl) link;
	struct consumer *c;  /* NULL: orphaned by consumer_free */
	struct rec *r;	     /* NULL: the record went away, drop the report */
	struct event *timer; /* retry after a refusal */
	long backoff;
	bool in_producer;
};

/* One pg_sink_write: the line records of the flush with offsets [lo, hi]. */
struct pgw {
	LIST_ENTRY(pgw) link;
	struct consumer *c; /* NULL: orphaned, the report only frees it */
	struct flush *f;
	int64_t lo, hi;
	size_t nrows;
};

struct flush {
	struct part *p;
	int64_t first_off, last_off;
	bool final; /* no record of the block can follow it */
	bool have_key;
	char key[S3_KEY_SIZE];
	char *body; /* the whole block so far, kept for retries */
	size_t body_len;
	bool body_stale; /* rebuild before the next PUT */
	bool s3_need;	 /* a PUT is owed */
	bool s3_busy;	 /* a PUT is in flight */
	long s3_backoff;
	size_t pg_pending; /* writes not yet reported */
	size_t dl_wait;	   /* dead letters of the range not yet acknowledged */
	bool aborted;	   /* the PostgreSQL sink went away first */
};

struct part {
	LIST_ENTRY(part) link; /* c->parts, or c->zombies once revoked */
	struct consumer *c;
	char *topic;
	int32_t partition;
	int refs;
	bool revoked, started, seeking, paused;
	int64_t seek_from;   /* while seeking, records above this are stale */
	int64_t floor;	     /* first offset seen: storing at or below it is moot */
	int64_t next_offset; /* -1 before the first record */
	struct rec **v;	     /* records, v[vbase] first */
	size_t vbase, vcap;
	size_t n, nproc, nflush, nconf;
	bool block_has_object; /* a PUT of the current block was attempted */
	struct flush *flush;
	struct event *flush_timer, *s3_timer, *reg_timer;
	bool reg_wait; /* processing held for the registry */
	bool reg_call; /* registry_check_id in flight */
	int32_t reg_id;
	long reg_backoff;
	bool ans_valid; /* the answer for reg_id, for the held record */
	enum registry_result ans_res;
};

struct consumer {
	struct event_base *base;
	const struct config *cfg;
	const struct codec_schema *schema;
	struct producer *producer;
	struct registry *registry;
	struct s3 *s3;
	struct pg_sink *pg;
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;
	struct rdk_loop *loop;
	struct event *tick;
	LIST_HEAD(, part) parts;
	LIST_HEAD(, part) zombies;
	LIST_HEAD(, dl) dls;
	LIST_HEAD(, pgw) pgws;
	int64_t block; /* N */
	int64_t flush_ms, max_pending;
	long retry_max_ms;
	int npaused;
	bool stopping, closing, closed;
};

#define REC(p, i) ((p)->v[(p)->vbase + (i)])

static void part_schedule(struct part *p);
static void part_progress(struct part *p);
static void s3_kick(struct part *p);
static void stop_progress(struct consumer *c);

/* ---------------------------------------------------------------- pure */

int64_t
consumer_block_first(int64_t offset, int64_t n)
{
	return offset - offset % n;
}

int64_t
consumer_block_last(int64_t offset, int64_t n)
{
	return consumer_block_first(offset, n) + n - 1;
}

bool
consumer_should_pause(bool paused, size_t buffered, size_t max_pending)
{
	if (!paused)
		return buffered > max_pending;
	/* "below half", so max_pending 1 resumes at 0 */
	return buffered * 2 >= max_pending;
}

/* ---------------------------------------------------------------- helpers */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
timer_in(struct event *ev, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

static long
backoff_next(long cur, long max)
{
	long next = cur <= 0 ? RETRY_MIN_MS : cur * 2;

	return next > max ? max : next;
}

static bool
producer_only_key(const char *key)
{
	for (size_t i = 0; i < sizeof(producer_only) / sizeof(producer_only[0]); i++)
		if (strcmp(key, producer_only[i]) == 0)
			return true;
	return false;
}

/* One-element list for the per-partition librdkafka calls; NULL on OOM. */
static rd_kafka_topic_partition_list_t *
part_list(const struct part *p, int64_t offset)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

	if (l != NULL)
		rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = offset;
	return l;
}

static void
count_flush(const char *sink, bool ok)
{
	char labels[64];

	snprintf(labels, sizeof(labels), "sink=\"%s\",result=\"%s\"", sink, ok ? "ok" : "error");
	metrics_add("collectord_enrich_flushes_total", labels, 1);
}

/* ---------------------------------------------------------------- records */

static void
dl_free(struct dl *d)
{
	if (d->c != NULL)
		LIST_REMOVE(d, link);
	if (d->timer != NULL)
		event_free(d->timer);
	free(d);
}

static void
rec_free(struct rec *r)
{
	if (r->dl != NULL) {
		/* A dead letter in the producer outlives its record: its report
		 * finds r == NULL and only frees it. */
		r->dl->r = NULL;
		if (!r->dl->in_producer)
			dl_free(r->dl);
	}
	free(r->key);
	free(r->value);
	free(r->line);
	free(r->error);
	codec_row_free(&r->row);
	free(r);
}

/* A confirmed record is kept only for its line (the block's next PUT). */
static void
rec_trim(struct rec *r)
{
	free(r->key);
	free(r->value);
	free(r->error);
	codec_row_free(&r->row);
	r->key = NULL;
	r->value = NULL;
	r->error = NULL;
}

static bool
part_push(struct part *p, struct rec *r)
{
	if (p->vbase + p->n == p->vcap) {
		if (p->vbase > 0 && p->vbase >= p->vcap / 2) {
			memmove(p->v, p->v + p->vbase, p->n * sizeof(*p->v));
			p->vbase = 0;
		} else {
			size_t cap = p->vcap ? p->vcap * 2 : 64;
			struct rec **v = realloc(p->v, cap * sizeof(*v));

			if (v == NULL)
				return false;
			p->v = v;
			p->vcap = cap;
		}
	}
	p->v[p->vbase + p->n++] = r;
	return true;
}

/* Free the first K records (K <= nconf: a finished block). */
static void
part_drop_front(struct part *p, size_t k)
{
	for (size_t i = 0; i < k; i++)
		rec_free(REC(p, i));
	p->vbase += k;
	p->n -= k;
	p->nproc -= k;
	p->nflush -= k;
	p->nconf -= k;
	if (p->n == 0)
		p->vbase = 0;
	p->block_has_object = false;
}

/* Free records [FROM, n): they were never confirmed, so whoever owns the
 * partition next reads them again from the committed offset. */
static void
part_drop_tail(struct part *p, size_t from)
{
	for (size_t i = from; i < p->n; i++)
		rec_free(REC(p, i));
	p->n = from;
	if (p->nproc > from)
		p->nproc = from;
	if (p->nflush > from)
		p->nflush = from;
	if (p->nconf > from)
		p->nconf = from;
	if (p->n == 0)
		p->vbase = 0;
}

/* ---------------------------------------------------------------- partitions */

static struct part *
part_find(struct consumer *c, const char *topic, int32_t partition)
{
	struct part *p;

	LIST_FOREACH(p, &c->parts, link)
	if (p->partition == partition && strcmp(p->topic, topic) == 0)
		return p;
	return NULL;
}

static void
pgw_orphan(struct pgw *w)
{
	LIST_REMOVE(w, link);
	w->c = NULL;
	w->f = NULL;
}

/* Writes of F still out will report to nobody. */
static void
flush_orphan_writes(struct consumer *c, struct flush *f)
{
	struct pgw *w, *next;

	for (w = LIST_FIRST(&c->pgws); w != NULL; w = next) {
		next = LIST_NEXT(w, link);
		if (w->f == f)
			pgw_orphan(w);
	}
	f->pg_pending = 0;
}

static void
flush_free(struct consumer *c, struct flush *f)
{
	if (f == NULL)
		return;
	flush_orphan_writes(c, f);
	free(f->body);
	free(f);
}

/* Free P whatever its references (the caller unlinked it). */
static void
part_free(struct part *p)
{
	part_drop_tail(p, 0);
	flush_free(p->c, p->flush);
	if (p->flush_timer != NULL)
		event_free(p->flush_timer);
	if (p->s3_timer != NULL)
		event_free(p->s3_timer);
	if (p->reg_timer != NULL)
		event_free(p->reg_timer);
	free(p->v);
	free(p->topic);
	free(p);
}

static void
part_unref(struct part *p)
{
	if (--p->refs > 0)
		return;
	LIST_REMOVE(p, link);
	part_free(p);
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg);
static void on_s3_timer(evutil_socket_t fd, short what, void *arg);
static void on_reg_timer(evutil_socket_t fd, short what, void *arg);

static struct part *
part_new(struct consumer *c, const char *topic, int32_t partition)
{
	struct part *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->c = c;
	p->partition = partition;
	p->next_offset = -1;
	p->refs = 1; /* the assignment's */
	p->topic = strdup(topic);
	p->flush_timer = evtimer_new(c->base, on_flush_timer, p);
	p->s3_timer = evtimer_new(c->base, on_s3_timer, p);
	p->reg_timer = evtimer_new(c->base, on_reg_timer, p);
	if (p->topic == NULL || p->flush_timer == NULL || p->s3_timer == NULL ||
	    p->reg_timer == NULL) {
		part_free(p);
		return NULL;
	}
	LIST_INSERT_HEAD(&c->parts, p, link);
	return p;
}

/* Pause or resume P; false when librdkafka refused (tried again later). */
static bool
part_set_paused(struct part *p, bool pause)
{
	struct consumer *c = p->c;
	rd_kafka_topic_partition_list_t *l = part_list(p, RD_KAFKA_OFFSET_INVALID);
	rd_kafka_resp_err_t e;

	if (l == NULL)
		return false;
	e = pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		e = l->elems[0].err;
	rd_kafka_topic_partition_list_destroy(l);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_warn(pause ? "cannot pause partition" : "cannot resume partition",
		    "topic=%s partition=%d error=\"%s\"", p->topic, (int)p->partition,
		    rd_kafka_err2str(e));
		return false;
	}
	if (p->paused != pause)
		c->npaused += pause ? 1 : -1;
	p->paused = pause;
	metrics_set("collectord_enrich_paused_partitions", "", c->npaused);
	return true;
}

/* Back-pressure: records received but not confirmed decide. */
static void
part_pressure(struct part *p)
{
	struct consumer *c = p->c;
	size_t buffered = p->n - p->nconf;
	bool want;

	if (p->revoked || c->stopping)
		return;
	want = consumer_should_pause(p->paused, buffered, (size_t)c->max_pending);
	if (want == p->paused || !part_set_paused(p, want))
		return;
	log_info(want ? "partition paused, sinks behind" : "partition resumed",
	    "topic=%s partition=%d buffered=%zu", p->topic, (int)p->partition, buffered);
}

/* Asynchronous seek (timeout 0: the loop does not wait for the fetcher). */
static bool
part_seek(struct part *p, int64_t offset)
{
	rd_kafka_topic_partition_list_t *l = part_list(p, offset);
	rd_kafka_error_t *e;
	bool ok;

	if (l == NULL)
		return false;
	e = rd_kafka_seek_partitions(p->c->rk, l, 0);
	/* Started is all an asynchronous seek can say; its version barrier
	 * already keeps older fetches from us. */
	ok = e == NULL && (l->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR ||
			      l->elems[0].err == RD_KAFKA_RESP_ERR__IN_PROGRESS);
	if (!ok)
		log_warn("cannot seek partition", "topic=%s partition=%d offset=%lld error=\"%s\"",
		    p->topic, (int)p->partition, (long long)offset,
		    e != NULL ? rd_kafka_error_string(e) : rd_kafka_err2str(l->elems[0].err));
	if (e != NULL)
		rd_kafka_error_destroy(e);
	rd_kafka_topic_partition_list_destroy(l);
	return ok;
}

static void
part_store(struct part *p, int64_t offset)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t e;

	/* Below the offset we started from would move the commit back. */
	if (offset <= p->floor || (l = part_list(p, offset)) == NULL)
		return;
	e = rd_kafka_offsets_store(p->c->rk, l);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		e = l->elems[0].err;
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warn("cannot store offset", "topic=%s partition=%d offset=%lld error=\"%s\"",
		    p->topic, (int)p->partition, (long long)offset, rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_destroy(l);
}

/* ---------------------------------------------------------------- dead letters */

static void
dl_retry_later(struct dl *d)
{
	d->backoff = backoff_next(d->backoff, d->c->retry_max_ms);
	timer_in(d->timer, d->backoff);
}

static void
dl_try(struct dl *d)
{
	struct rec *r = d->r;
	struct part *p = r->part;
	struct consumer *c = p->c;
	rd_kafka_headers_t *h = rd_kafka_headers_new(5);
	rd_kafka_resp_err_t e;
	char part[16], off[24];

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
	    c->producer, c->cfg->topic_dead_letter, r->key, r->keylen, r->value, r->len, h, &d->w);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_headers_destroy(h);
		log_warn("cannot queue a dead letter, retrying",
		    "topic=%s partition=%d offset=%lld error=\"%s\"", p->topic, (int)p->partition,
		    (long long)r->offset, rd_kafka_err2str(e));
		dl_retry_later(d);
		return;
	}
	d->in_producer = true;
}

static void
on_dl_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dl_try(arg);
}

static bool
in_flush(const struct part *p, const struct rec *r)
{
	return p->flush != NULL && r->offset >= p->flush->first_off &&
	       r->offset <= p->flush->last_off;
}

static void
on_dl_done(struct producer_waiter *w, rd_kafka_resp_err_t err)
{
	struct dl *d = (struct dl *)w;
	struct rec *r = d->r;
	struct part *p;

	d->in_producer = false;
	if (d->c == NULL || r == NULL) {
		dl_free(d);
		return;
	}
	p = r->part;
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		/* Its offset may not be stored before Kafka has it: again. */
		log_warn("dead letter refused, retrying",
		    "topic=%s partition=%d offset=%lld error=\"%s\"", p->topic, (int)p->partition,
		    (long long)r->offset, rd_kafka_err2str(err));
		dl_retry_later(d);
		return;
	}
	r->dl = NULL;
	r->dl_acked = true;
	dl_free(d);
	if (in_flush(p, r)) {
		p->flush->dl_wait--;
		part_progress(p);
	}
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

static void
rec_dead(struct part *p, struct rec *r, const char *why)
{
	char q[600];

	r->dead = true;
	free(r->error);
	r->error = strdup(why);
	metrics_add("collectord_enrich_records_total", "outcome=\"dead_letter\"", 1);
	log_warn("dead letter", "topic=%s partition=%d offset=%lld error=%s", p->topic,
	    (int)p->partition, (long long)r->offset, log_quote(why, q, sizeof(q)));
	dl_send(p, r);
}

/* ---------------------------------------------------------------- registry */

static void part_process(struct part *p);

static void
on_reg_done(void *arg, enum registry_result res, const char *err)
{
	struct part *p = arg;
	char q[600];

	p->reg_call = false;
	if (p->revoked) {
		part_unref(p);
		return;
	}
	if (res != REGISTRY_OK && !registry_result_permanent(res)) {
		/* Transient: hold the partition and ask again later. */
		p->reg_backoff = backoff_next(p->reg_backoff, p->c->retry_max_ms);
		log_warn("registry unavailable, holding partition",
		    "topic=%s partition=%d schema_id=%d retry_ms=%ld error=%s", p->topic,
		    (int)p->partition, (int)p->reg_id, p->reg_backoff,
		    log_quote(err ? err : "", q, sizeof(q)));
		timer_in(p->reg_timer, p->reg_backoff);
	} else {
		p->reg_backoff = 0;
		p->reg_wait = false;
		p->ans_valid = true;
		p->ans_res = res;
		part_process(p);
	}
	part_unref(p); /* the check's; the assignment's remains */
}

static void
on_reg_timer(evutil_socket_t fd, short what, void *arg)
{
	struct part *p = arg;

	(void)fd;
	(void)what;
	p->reg_wait = false;
	part_process(p);
}

/* The registry's verdict on ID into *RES; false while the partition must
 * wait for it (a check or a retry is under way). */
static bool
registry_lookup(struct part *p, int32_t id, enum registry_result *res)
{
	struct consumer *c = p->c;

	if (p->ans_valid && p->reg_id == id) {
		/* Used once: later records go through the cache and its TTL. */
		p->ans_valid = false;
		*res = p->ans_res;
		return true;
	}
	p->ans_valid = false;
	if (registry_check_id_cached(c->registry, id, c->cfg->registry_subject, SCHEMA_TYPE, res) &&
	    (*res == REGISTRY_OK || registry_result_permanent(*res)))
		return true;
	if (p->reg_wait)
		return false;
	p->reg_wait = true;
	p->reg_id = id;
	if (registry_check_id(
		c->registry, id, c->cfg->registry_subject, SCHEMA_TYPE, on_reg_done, p) == -1) {
		p->reg_backoff = backoff_next(p->reg_backoff, c->retry_max_ms);
		timer_in(p->reg_timer, p->reg_backoff);
		return false;
	}
	p->reg_call = true;
	p->refs++; /* the callback will come even after a revoke */
	return false;
}

static const char *
registry_reason(enum registry_result res)
{
	switch (res) {
	case REGISTRY_UNKNOWN_ID:
		return "unknown schema id";
	case REGISTRY_WRONG_TYPE:
		return "not a " SCHEMA_TYPE " schema";
	default:
		return registry_result_name(res);
	}
}

/* ---------------------------------------------------------------- processing */

/* Decide R: enriched (line and row) or dead letter.  False when held. */
static bool
rec_process(struct part *p, struct rec *r)
{
	struct consumer *c = p->c;
	char err[512], why[700];
	const uint8_t *payload;
	size_t plen;
	int32_t sid;
	enum registry_result res;
	enum ids_form form;
	uint8_t id[16];
	char *line;

	if (r->key == NULL) {
		rec_dead(p, r, "key: missing (the correlationId)");
		return true;
	}
	if (strlen(r->key) != r->keylen || !ids_parse(r->key, id, &form) || form != IDS_FORM_UUID) {
		rec_dead(p, r, "key: not a UUID (the correlationId)");
		return true;
	}
	if (r->ts_ms < 0) {
		rec_dead(p, r, "record has no timestamp (publishTime)");
		return true;
	}
	if (!codec_frame_parse(r->value, r->len, &sid, &payload, &plen, err, sizeof(err))) {
		rec_dead(p, r, err);
		return true;
	}
	if (!registry_lookup(p, sid, &res))
		return false;
	if (res == REGISTRY_WRONG_SUBJECT) {
		snprintf(why, sizeof(why), "schema id %d: not registered under subject %s",
		    (int)sid, c->cfg->registry_subject);
		rec_dead(p, r, why);
		return true;
	}
	if (res != REGISTRY_OK) {
		snprintf(why, sizeof(why), "schema id %d: %s", (int)sid, registry_reason(res));
		rec_dead(p, r, why);
		return true;
	}
	line = codec_enrich(
	    c->schema, payload, plen, r->key, r->ts_ms, sid, &r->row, err, sizeof(err));
	if (line == NULL) {
		rec_dead(p, r, err);
		return true;
	}
	for (size_t i = 0; i < sizeof(pg_columns) / sizeof(pg_columns[0]); i++) {
		if (codec_row_value(c->schema, &r->row, pg_columns[i]) == NULL) {
			snprintf(why, sizeof(why), "row: %s: missing", pg_columns[i]);
			free(line);
			codec_row_free(&r->row);
			rec_dead(p, r, why);
			return true;
		}
	}
	r->line = line;
	r->linelen = strlen(line);
	metrics_add("collectord_enrich_records_total", "outcome=\"enriched\"", 1);
	return true;
}

static void
part_process(struct part *p)
{
	if (p->revoked || p->c->stopping)
		return;
	while (p->nproc < p->n && !p->reg_wait) {
		if (!rec_process(p, REC(p, p->nproc)))
			break;
		p->nproc++;
	}
	part_schedule(p);
}

/* ---------------------------------------------------------------- S3 */

static bool
zombie_busy(struct consumer *c, const struct part *p)
{
	struct part *z;

	LIST_FOREACH(z, &c->zombies, link)
	if (z->partition == p->partition && strcmp(z->topic, p->topic) == 0 && z->flush != NULL &&
	    z->flush->s3_busy)
		return true;
	return false;
}

/* The block's lines up to the flush's end: [0, nflush) is one block. */
static bool
build_body(struct part *p, struct flush *f)
{
	size_t len = 0, at = 0;
	char *body;

	for (size_t i = 0; i < p->nflush; i++)
		if (REC(p, i)->line != NULL)
			len += REC(p, i)->linelen + 1;
	if ((body = malloc(len + 1)) == NULL)
		return false;
	for (size_t i = 0; i < p->nflush; i++) {
		struct rec *r = REC(p, i);

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
	count_flush("s3", false);
	log_warn("S3 PUT failed, retrying", "key=%s retry_ms=%ld error=%s", f->key, f->s3_backoff,
	    log_quote(err ? err : "", q, sizeof(q)));
	timer_in(p->s3_timer, f->s3_backoff);
}

static void
on_s3_done(void *arg, bool ok, const char *err)
{
	struct part *p = arg, *live;
	struct flush *f = p->flush;
	struct consumer *c = p->c;

	f->s3_busy = false;
	if (p->revoked) {
		/* A revoked partition's last PUT: whoever owns the partition
		 * now may write the key. */
		count_flush("s3", ok);
		live = part_find(c, p->topic, p->partition);
		part_unref(p);
		if (live != NULL)
			s3_kick(live);
		return;
	}
	if (!ok) {
		s3_failed(p, err);
	} else {
		count_flush("s3", true);
		f->s3_backoff = 0;
		s3_kick(p); /* lines removed meanwhile: PUT again */
		part_progress(p);
	}
	part_unref(p); /* the PUT's; the assignment's remains */
}

static void
s3_kick(struct part *p)
{
	struct consumer *c = p->c;
	struct flush *f = p->flush;

	if (f == NULL || !f->s3_need || f->s3_busy || evtimer_pending(p->s3_timer, NULL) ||
	    zombie_busy(c, p))
		return;
	if (f->body_stale && !build_body(p, f)) {
		s3_failed(p, "out of memory");
		return;
	}
	f->s3_need = false;
	/* Nothing to say: the block has no line and no object yet. */
	if (!f->have_key || (f->body_len == 0 && !p->block_has_object))
		return;
	/* s3_put copies the body; ours stays for the retries. */
	if (s3_put(c->s3, f->key, f->body, f->body_len, CONTENT_TYPE, on_s3_done, p) == -1) {
		s3_failed(p, "cannot start the PUT");
		return;
	}
	f->s3_busy = true;
	p->block_has_object = true;
	p->refs++;
}

static void
on_s3_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	s3_kick(arg);
}

/* ---------------------------------------------------------------- PostgreSQL */

static void pg_write(struct part *p, int64_t lo, int64_t hi);

/* PostgreSQL refused R's row for good: dead-letter it and drop its line
 * from the block's object. */
static void
pg_reject_rec(struct part *p, struct rec *r, const char *err)
{
	char why[700];

	snprintf(why, sizeof(why), "postgres: %s", err ? err : "rejected");
	free(r->line);
	r->line = NULL;
	r->linelen = 0;
	codec_row_free(&r->row);
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
	for (size_t i = p->nconf; i < p->nflush; i++) {
		struct rec *r = REC(p, i);

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
		count_flush("postgres", true);
		break;
	case PG_SINK_REJECTED:
		count_flush("postgres", false);
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

	for (size_t i = p->nconf; i < p->nflush; i++) {
		struct rec *r = REC(p, i);

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
	for (size_t i = p->nconf; i < p->nflush; i++) {
		struct rec *r = REC(p, i);
		struct pg_row *row = &rows[n];
		const struct codec_schema *s = c->schema;

		if (r->line == NULL || r->offset < lo || r->offset > hi)
			continue;
		row->timestamp_us = r->row.partition_us;
		row->message_id_stamp = codec_row_value(s, &r->row, "message_id_stamp");
		row->correlation_id = codec_row_value(s, &r->row, "correlation_id");
		row->type = codec_row_value(s, &r->row, "type");
		row->target_subscription = codec_row_value(s, &r->row, "target_subscription");
		row->new_context_account_id = codec_row_value(s, &r->row, "new_context_account_id");
		row->new_context_user_id = codec_row_value(s, &r->row, "new_context_user_id");
		row->data = r->line;
		n++;
	}
	w->c = c;
	w->f = p->flush;
	w->lo = lo;
	w->hi = hi;
	w->nrows = n;
	/* pg_sink copies the rows before returning. */
	if (pg_sink_write(c->pg, rows, n, on_pg_done, w, err, sizeof(err)) == -1)
		goto refused;
	free(rows);
	LIST_INSERT_HEAD(&c->pgws, w, link);
	p->flush->pg_pending++;
	return;
refused:
	/* Unusable before any server saw it: as a rejection. */
	free(rows);
	free(w);
	count_flush("postgres", false);
	pg_rejected(p, lo, hi, n, err);
}

/* ---------------------------------------------------------------- flushes */

static void
flush_start(struct part *p)
{
	struct consumer *c = p->c;
	struct flush *f;
	struct rec *first;
	int64_t b_last;
	size_t end;

	/* The retained block ended without a final flush (a later block's
	 * record showed up after it): its object is complete already. */
	if (p->nconf > 0 && consumer_block_first(REC(p, p->nconf)->offset, c->block) !=
				consumer_block_first(REC(p, 0)->offset, c->block))
		part_drop_front(p, p->nconf);
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		log_error("out of memory for a flush", "topic=%s partition=%d", p->topic,
		    (int)p->partition);
		timer_in(p->flush_timer, RETRY_MIN_MS);
		return;
	}
	f->p = p;
	b_last = consumer_block_last(REC(p, p->nconf)->offset, c->block);
	for (end = p->nconf; end + 1 < p->nproc && REC(p, end + 1)->offset <= b_last; end++)
		;
	f->first_off = REC(p, p->nconf)->offset;
	f->last_off = REC(p, end)->offset;
	f->final = f->last_off == b_last || (end + 1 < p->n && REC(p, end + 1)->offset > b_last);
	p->nflush = end + 1;
	p->flush = f;
	first = REC(p, 0);
	f->have_key = s3_key_enriched(f->key, sizeof(f->key), first->ts_ms < 0 ? 0 : first->ts_ms,
			  p->topic, p->partition, first->offset) == 0;
	if (!f->have_key)
		log_error("no S3 key for this topic, skipping S3", "topic=%s partition=%d",
		    p->topic, (int)p->partition);
	for (size_t i = p->nconf; i < p->nflush; i++) {
		struct rec *r = REC(p, i);

		if (r->line != NULL)
			f->s3_need = f->body_stale = true;
		else if (r->dead && !r->dl_acked)
			f->dl_wait++;
	}
	evtimer_del(p->flush_timer);
	pg_write(p, f->first_off, f->last_off);
	s3_kick(p);
}

/* When every sink confirmed the flush: store, keep or drop the block. */
static bool
flush_try_complete(struct part *p)
{
	struct consumer *c = p->c;
	struct flush *f = p->flush;
	bool final;

	if (f == NULL || f->s3_need || f->s3_busy || evtimer_pending(p->s3_timer, NULL) ||
	    f->pg_pending > 0 || f->dl_wait > 0 || f->aborted)
		return false;
	part_store(p, f->last_off + 1);
	for (size_t i = p->nconf; i < p->nflush; i++)
		rec_trim(REC(p, i));
	p->nconf = p->nflush;
	p->flush = NULL;
	final = f->final;
	flush_free(c, f);
	if (final || (p->nconf < p->n && consumer_block_first(REC(p, p->nconf)->offset, c->block) !=
					     consumer_block_first(REC(p, 0)->offset, c->block)))
		part_drop_front(p, p->nconf);
	part_pressure(p);
	return true;
}

/* Start flushes while one is due; a loop, not recursion, because flushes
 * with nothing left to wait for complete at once. */
static void
part_schedule(struct part *p)
{
	struct consumer *c = p->c;

	for (;;) {
		struct rec *r;
		int64_t b_last, now, due;
		bool complete;

		if (p->revoked || p->flush != NULL)
			return;
		if (p->nflush >= p->nproc) {
			evtimer_del(p->flush_timer);
			return;
		}
		r = REC(p, p->nflush);
		b_last = consumer_block_last(r->offset, c->block);
		/* Complete once a record at or past its end was processed, or a
		 * later block's record waits behind it. */
		complete = REC(p, p->nproc - 1)->offset >= b_last ||
			   (p->nproc < p->n && REC(p, p->nproc)->offset > b_last);
		if (!complete && !c->stopping) {
			now = now_ms();
			due = r->arrived_ms + c->flush_ms;
			if (now < due) {
				if (!evtimer_pending(p->flush_timer, NULL))
					timer_in(p->flush_timer, (long)(due - now));
				return;
			}
		}
		flush_start(p);
		if (p->flush == NULL || !flush_try_complete(p))
			return;
	}
}

static void
part_progress(struct part *p)
{
	if (flush_try_complete(p)) {
		part_schedule(p);
		stop_progress(p->c);
	}
}

static void
on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	part_schedule(arg);
}

/* ---------------------------------------------------------------- Kafka events */

static void
part_revoke(struct part *p)
{
	struct consumer *c = p->c;
	struct flush *f = p->flush;

	p->revoked = true;
	LIST_REMOVE(p, link);
	LIST_INSERT_HEAD(&c->zombies, p, link);
	/* librdkafka may keep a pause across reassignment: leave none. */
	if (p->paused && !c->stopping)
		part_set_paused(p, false);
	if (p->paused)
		c->npaused--;
	p->paused = false;
	evtimer_del(p->flush_timer);
	evtimer_del(p->s3_timer);
	evtimer_del(p->reg_timer);
	if (f != NULL)
		flush_orphan_writes(c, f);
	/* Nothing of it is stored from now on: the next owner reads it all
	 * again from the committed offset. */
	part_drop_tail(p, 0);
	if (f != NULL && !f->s3_busy) {
		flush_free(c, f);
		p->flush = NULL;
	}
	part_unref(p); /* the assignment's */
}

static void
on_rebalance(struct consumer *c, rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
	rd_kafka_topic_partition_list_t *l = rd_kafka_event_topic_partition_list(ev);
	bool coop = strcmp(rd_kafka_rebalance_protocol(c->rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *err = NULL;
	rd_kafka_resp_err_t ae = RD_KAFKA_RESP_ERR_NO_ERROR;
	struct part *p;

	if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		for (int i = 0; l != NULL && i < l->cnt; i++) {
			const rd_kafka_topic_partition_t *t = &l->elems[i];

			if (part_find(c, t->topic, t->partition) != NULL)
				continue;
			if (part_new(c, t->topic, t->partition) == NULL)
				log_error("out of memory for a partition, its records are skipped "
					  "until the next rebalance",
				    "topic=%s partition=%d", t->topic, (int)t->partition);
		}
		if (coop)
			err = rd_kafka_incremental_assign(c->rk, l);
		else
			ae = rd_kafka_assign(c->rk, l);
		log_info("partitions assigned", "count=%d", l ? l->cnt : 0);
		if (c->stopping)
			LIST_FOREACH(p, &c->parts, link)
		if (!p->paused)
			part_set_paused(p, true);
	} else {
		if (e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			log_error("rebalance failed, dropping the assignment", "error=\"%s\"",
			    rd_kafka_err2str(e));
		for (int i = 0; l != NULL && i < l->cnt; i++)
			if ((p = part_find(c, l->elems[i].topic, l->elems[i].partition)) != NULL)
				part_revoke(p);
		if (e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || !coop)
			while ((p = LIST_FIRST(&c->parts)) != NULL)
				part_revoke(p);
		if (coop && e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			err = rd_kafka_incremental_unassign(c->rk, l);
		else
			ae = rd_kafka_assign(c->rk, NULL);
		log_info("partitions revoked", "count=%d lost=%d", l ? l->cnt : 0,
		    rd_kafka_assignment_lost(c->rk));
	}
	if (err != NULL) {
		log_error("assignment failed", "error=\"%s\"", rd_kafka_error_string(err));
		rd_kafka_error_destroy(err);
	} else if (ae != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_error("assignment failed", "error=\"%s\"", rd_kafka_err2str(ae));
	}
}

/* The cached log start offset (from fetch responses, no round trip) is past
 * the record the seek waits for. */
static bool
seek_target_gone(struct part *p)
{
	int64_t lo, hi;

	if (rd_kafka_get_watermark_offsets(p->c->rk, p->topic, p->partition, &lo, &hi) !=
		RD_KAFKA_RESP_ERR_NO_ERROR ||
	    lo <= p->seek_from)
		return false;
	log_warn("records before the committed offset are gone, block taken as is",
	    "topic=%s partition=%d committed=%lld log_start=%lld", p->topic, (int)p->partition,
	    (long long)p->seek_from, (long long)lo);
	return true;
}

static void
on_message(struct consumer *c, const rd_kafka_message_t *m)
{
	struct part *p;
	struct rec *r;
	int64_t off = m->offset, first;

	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warn("consume error", "topic=%s partition=%d error=\"%s\"",
			    m->rkt ? rd_kafka_topic_name(m->rkt) : "-", (int)m->partition,
			    rd_kafka_err2str(m->err));
		return;
	}
	/* Stopping, or not ours any more: whoever reads it next has it. */
	if (c->stopping || (p = part_find(c, rd_kafka_topic_name(m->rkt), m->partition)) == NULL)
		return;
	if (!p->started) {
		p->started = true;
		p->floor = off;
		first = consumer_block_first(off, c->block);
		if (first != off && part_seek(p, first)) {
			log_info("rebuilding the block from its start",
			    "topic=%s partition=%d "
			    "committed=%lld block=%lld",
			    p->topic, (int)p->partition, (long long)off, (long long)first);
			p->seeking = true;
			p->seek_from = off;
			return;
		}
	}
	if (p->seeking) {
		/* Fetched before the seek took effect; unless retention took
		 * the records up to C meanwhile and nothing at or below C can
		 * come any more. */
		if (off > p->seek_from && !seek_target_gone(p))
			return;
		p->seeking = false;
	}
	if (p->next_offset >= 0 && off < p->next_offset)
		return;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (m->key != NULL && (r->key = malloc(m->key_len + 1)) == NULL) ||
	    (m->len > 0 && (r->value = malloc(m->len)) == NULL) || !part_push(p, r)) {
		/* Never skip a record: read it again. */
		if (r != NULL)
			rec_free(r);
		log_error("out of memory for a record, fetching it again",
		    "topic=%s partition=%d offset=%lld", p->topic, (int)p->partition,
		    (long long)off);
		if (part_seek(p, off)) {
			p->seeking = true;
			p->seek_from = off;
		}
		return;
	}
	r->part = p;
	r->offset = off;
	r->ts_ms = rd_kafka_message_timestamp(m, NULL);
	r->arrived_ms = now_ms();
	if (m->key != NULL) {
		memcpy(r->key, m->key, m->key_len);
		r->key[m->key_len] = '\0';
		r->keylen = m->key_len;
	}
	if (m->len > 0)
		memcpy(r->value, m->payload, m->len);
	r->len = m->len;
	p->next_offset = off + 1;
	part_process(p);
	part_pressure(p);
}

static void
on_commit(struct consumer *c, rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
	const rd_kafka_topic_partition_list_t *l = rd_kafka_event_topic_partition_list(ev);

	(void)c;
	if (e == RD_KAFKA_RESP_ERR__NO_OFFSET)
		return; /* nothing new to commit */
	for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && l != NULL && i < l->cnt; i++)
		e = l->elems[i].err;
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	metrics_add("collectord_enrich_commit_errors_total", "", 1);
	log_warn("offset commit failed", "error=\"%s\"", rd_kafka_err2str(e));
}

static void
on_error(struct consumer *c, rd_kafka_event_t *ev)
{
	char q[600], fatal[512];

	if (rd_kafka_event_error_is_fatal(ev)) {
		rd_kafka_fatal_error(c->rk, fatal, sizeof(fatal));
		log_error("kafka consumer fatal error", "error=%s", log_quote(fatal, q, sizeof(q)));
		return;
	}
	log_warn("kafka consumer error", "error=%s",
	    log_quote(rd_kafka_event_error_string(ev), q, sizeof(q)));
}

static void
on_event(void *arg, rd_kafka_event_t *ev)
{
	struct consumer *c = arg;
	const rd_kafka_message_t *m;

	switch (rd_kafka_event_type(ev)) {
	case RD_KAFKA_EVENT_FETCH:
		while ((m = rd_kafka_event_message_next(ev)) != NULL)
			on_message(c, m);
		break;
	case RD_KAFKA_EVENT_REBALANCE:
		on_rebalance(c, ev);
		break;
	case RD_KAFKA_EVENT_OFFSET_COMMIT:
		on_commit(c, ev);
		break;
	case RD_KAFKA_EVENT_ERROR:
		on_error(c, ev);
		break;
	default:
		break;
	}
	if (c->closing)
		stop_progress(c);
}

/* ---------------------------------------------------------------- stop */

/* While stopping: once nothing is left to flush, commit and leave the
 * group; then wait for librdkafka to say it is closed. */
static void
stop_progress(struct consumer *c)
{
	struct part *p;
	rd_kafka_error_t *err;
	rd_kafka_resp_err_t e;

	if (!c->stopping || c->closed)
		return;
	if (c->closing) {
		if (rd_kafka_consumer_closed(c->rk)) {
			c->closed = true;
			log_info("enrich consumer closed", NULL);
		}
		return;
	}
	LIST_FOREACH(p, &c->parts, link)
	if (p->flush != NULL || p->nflush < p->nproc)
		return;
	LIST_FOREACH(p, &c->zombies, link)
	if (p->flush != NULL && p->flush->s3_busy)
		return;
	e = rd_kafka_commit(c->rk, NULL, 1);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warn("final commit not started", "error=\"%s\"", rd_kafka_err2str(e));
	/* The revoke of the close arrives on our queue like any other. */
	if ((err = rd_kafka_consumer_close_queue(c->rk, c->queue)) != NULL) {
		log_warn("consumer close failed", "error=\"%s\"", rd_kafka_error_string(err));
		rd_kafka_error_destroy(err);
		c->closed = true;
		return;
	}
	c->closing = true;
	rdk_loop_kick(c->loop);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct consumer *c = arg;
	struct part *p;
	size_t buffered = 0;
	char labels[300];
	int64_t lo, hi;

	(void)fd;
	(void)what;
	LIST_FOREACH(p, &c->parts, link)
	{
		buffered += p->n - p->nconf;
		/* Cached watermarks from fetch responses: no broker round trip. */
		if (p->next_offset >= 0 &&
		    rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) ==
			RD_KAFKA_RESP_ERR_NO_ERROR &&
		    hi >= 0) {
			snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"", p->topic,
			    (int)p->partition);
			metrics_set("collectord_consumer_lag", labels,
			    (double)(hi > p->next_offset ? hi - p->next_offset : 0));
		}
	}
	metrics_set("collectord_enrich_buffered_records", "", (double)buffered);
	metrics_set("collectord_enrich_paused_partitions", "", c->npaused);
	if (c->stopping) {
		/* The close's last steps may only show in librdkafka's state. */
		rdk_loop_kick(c->loop);
		stop_progress(c);
		if (c->closed)
			return;
	}
	timer_in(c->tick, c->stopping ? STOP_POLL_MS : TICK_MS);
}

void
consumer_stop(struct consumer *c)
{
	rd_kafka_topic_partition_list_t *l;
	struct part *p;
	int n = 0;

	if (c == NULL || c->stopping)
		return;
	c->stopping = true;
	/* Take nothing new: pause everything, drop what was not processed
	 * (it is not stored, so it is read again), flush the rest now. */
	if ((l = rd_kafka_topic_partition_list_new(4)) != NULL) {
		LIST_FOREACH(p, &c->parts, link)
		if (!p->paused)
			rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
		if (l->cnt > 0)
			rd_kafka_pause_partitions(c->rk, l);
		rd_kafka_topic_partition_list_destroy(l);
	}
	LIST_FOREACH(p, &c->parts, link)
	{
		n++;
		evtimer_del(p->reg_timer);
		p->reg_wait = false;
		part_drop_tail(p, p->nproc);
		part_schedule(p);
	}
	log_info("enrich stopping", "partitions=%d", n);
	stop_progress(c);
	if (!c->closed)
		timer_in(c->tick, STOP_POLL_MS);
}

bool
consumer_stopped(const struct consumer *c)
{
	return c == NULL || c->closed;
}

/* ---------------------------------------------------------------- life */

struct consumer *
consumer_new(struct event_base *base, const struct config *cfg, const struct codec_schema *schema,
    struct producer *producer, struct registry *registry, struct s3 *s3, struct pg_sink *pg,
    char *err, size_t errlen)
{
	static const char *const forced[][2] = {
	    {"enable.auto.commit", "true"},
	    /* offsets are stored by hand, once the sinks confirmed */
	    {"enable.auto.offset.store", "false"},
	    {"auto.offset.reset", "earliest"},
	};
	struct consumer *c = calloc(1, sizeof(*c));
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t e;
	char errstr[512];

	if (c == NULL || (conf = rd_kafka_conf_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->base = base;
	c->cfg = cfg;
	c->schema = schema;
	c->producer = producer;
	c->registry = registry;
	c->s3 = s3;
	c->pg = pg;
	c->block = cfg->enrich_flush_events > 0 ? cfg->enrich_flush_events : 1;
	c->flush_ms = cfg->enrich_flush_ms;
	c->max_pending = cfg->enrich_max_pending;
	c->retry_max_ms =
	    cfg->enrich_retry_max_ms > RETRY_MIN_MS ? (long)cfg->enrich_retry_max_ms : RETRY_MIN_MS;
	LIST_INIT(&c->parts);
	LIST_INIT(&c->zombies);
	LIST_INIT(&c->dls);
	LIST_INIT(&c->pgws);

	for (size_t i = 0; i < cfg->nkafka; i++) {
		if (producer_only_key(cfg->kafka[i].key))
			continue;
		if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, errstr,
			sizeof(errstr)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "[kafka] %s", errstr);
			goto fail;
		}
	}
	if (rd_kafka_conf_set(conf, "group.id", cfg->enrich_group_id, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "[enrich] group_id: %s", errstr);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(forced) / sizeof(forced[0]); i++) {
		if (rd_kafka_conf_set(conf, forced[i][0], forced[i][1], errstr, sizeof(errstr)) !=
		    RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "kafka consumer: %s", errstr);
			goto fail;
		}
	}
	rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_FETCH | RD_KAFKA_EVENT_REBALANCE |
					   RD_KAFKA_EVENT_OFFSET_COMMIT | RD_KAFKA_EVENT_ERROR);
	rd_kafka_conf_set_log_cb(conf, rdk_loop_log);
	/* rd_kafka_new owns CONF from here on, even when it fails. */
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	conf = NULL;
	if (c->rk == NULL) {
		snprintf(err, errlen, "kafka consumer: %s", errstr);
		goto fail;
	}
	/* Everything (errors, commits, rebalances, messages) on one queue. */
	rd_kafka_poll_set_consumer(c->rk);
	c->queue = rd_kafka_queue_get_consumer(c->rk);
	if (c->queue == NULL) {
		snprintf(err, errlen, "kafka consumer: no consumer queue");
		goto fail;
	}
	metrics_declare("collectord_enrich_records_total", METRIC_COUNTER,
	    "Records of the raw topic processed, by outcome.");
	metrics_declare("collectord_enrich_flushes_total", METRIC_COUNTER,
	    "Sink writes of the enrich role (S3 PUTs, PostgreSQL batches), by result.");
	metrics_declare("collectord_enrich_buffered_records", METRIC_GAUGE,
	    "Records received and not yet confirmed by the sinks.");
	metrics_declare("collectord_enrich_paused_partitions", METRIC_GAUGE,
	    "Partitions paused because their sinks are behind.");
	metrics_declare("collectord_enrich_commit_errors_total", METRIC_COUNTER,
	    "Offset commits Kafka refused.");
	metrics_declare("collectord_consumer_lag", METRIC_GAUGE,
	    "Records between the high watermark and the next record to read, per partition.");
	if ((c->tick = evtimer_new(base, on_tick, c)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->loop = rdk_loop_new(base, c->queue, on_event, c, err, errlen);
	if (c->loop == NULL)
		goto fail;
	if ((topics = rd_kafka_topic_partition_list_new(1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rd_kafka_topic_partition_list_add(topics, cfg->topic_raw, RD_KAFKA_PARTITION_UA);
	e = rd_kafka_subscribe(c->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(
		    err, errlen, "kafka subscribe %s: %s", cfg->topic_raw, rd_kafka_err2str(e));
		goto fail;
	}
	timer_in(c->tick, TICK_MS);
	log_info("enrich consumer started", "topic=%s group=%s block=%lld flush_ms=%lld",
	    cfg->topic_raw, cfg->enrich_group_id, (long long)c->block, (long long)c->flush_ms);
	return c;
fail:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	consumer_free(c);
	return NULL;
}

void
consumer_free(struct consumer *c)
{
	struct part *p;
	struct dl *d;
	struct pgw *w;

	if (c == NULL)
		return;
	/* No more queue wake-ups: nothing calls back into us from Kafka. */
	rdk_loop_free(c->loop);
	while ((p = LIST_FIRST(&c->parts)) != NULL) {
		LIST_REMOVE(p, link);
		part_free(p);
	}
	while ((p = LIST_FIRST(&c->zombies)) != NULL) {
		LIST_REMOVE(p, link);
		part_free(p);
	}
	/* Dead letters still in the producer: their reports (producer_free's
	 * flush) free them. */
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
	while ((w = LIST_FIRST(&c->pgws)) != NULL)
		pgw_orphan(w);
	if (c->tick != NULL)
		event_free(c->tick);
	if (c->queue != NULL)
		rd_kafka_queue_destroy(c->queue);
	if (c->rk != NULL) {
		if (c->closed)
			rd_kafka_destroy(c->rk);
		else
			/* Emergency: leaving the group would wait on brokers. */
			rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	free(c);
}
