/*
 * consumer.c: the consumer roles that write offset blocks to S3, and the
 * enrich role itself.  A consumer-group member whose role
 * (struct consumer_role) turns each record into a JSON line: for enrich,
 * on every served family's raw topic, an enriched line and a table row,
 * the lines to S3 and the rows to PostgreSQL, what it cannot decode to
 * the dead-letter topic (or, when Kafka refuses that dead letter for good,
 * to S3 dead-letter/kafka-refused/); for archive (archive.c), on every
 * topic, the record as it is, to S3 only.  A partition's offset is stored
 * only once everything before it is confirmed (librdkafka's auto-commit
 * then commits what was stored).  Everything runs on the loop; nothing
 * here waits.
 *
 * Exactly-once S3 objects without local state.  The offsets of a partition
 * are cut into aligned blocks of N = [enrich] flush_events ([archive]
 * flush_events for the archive): [k*N, (k+1)*N).
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
 * Per partition the records wait in one cursor (cursor.h), in offset order:
 *   confirmed        kept only for their lines: the block's next flush
 *                    rewrites them
 *   flushed          in the flush in flight (one at a time per partition,
 *                    so two PUTs of one key never race)
 *   processed        enriched or dead-lettered, waiting for a flush
 *   received         not processed yet: held, in order, while the registry
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
 *
 * This file is the Kafka side: partitions and their cursors, records,
 * the registry, when to flush, stored offsets and back-pressure.  It calls
 * consumer_flush.c (the sinks), which answers through c->hooks only; see
 * consumer_int.h for the graph.
 */
#include "consumer.h"
#include "consumer_int.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "codec.h"
#include "config.h"
#include "dedup.h"
#include "ids.h"
#include "family.h"
#include "kafka_conf.h"
#include "log.h"
#include "metrics.h"
#include "rdk_loop.h"
#include "registry.h"
#include "s3.h"

/* Gauges (lag, buffered, paused) refresh; while stopping, the close poll. */
#define TICK_MS 1000L
#define STOP_POLL_MS 50L
#define SCHEMA_TYPE "PROTOBUF"

static void part_process(struct part *p);
static void on_reg_timer(evutil_socket_t fd, short what, void *arg);
static void stop_progress(struct consumer *c);
static void on_flush_timer(evutil_socket_t fd, short what, void *arg);

/* ---------------------------------------------------------------- pure */

int64_t
consumer_block_first(int64_t offset, int64_t n)
{
	return cursor_block_first(offset, n);
}

int64_t
consumer_block_last(int64_t offset, int64_t n)
{
	return cursor_block_last(offset, n);
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

/* One-element list for the per-partition librdkafka calls; NULL on OOM. */
static rd_kafka_topic_partition_list_t *
part_list(const struct part *p, int64_t offset)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

	if (l != NULL)
		rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = offset;
	return l;
}

/* ---------------------------------------------------------------- records */

/* The cursor's release: ITEM (a struct rec) leaves its window. */
static void
rec_free(void *item)
{
	struct rec *r = item;

	dl_orphan(r);
	if (r->headers != NULL)
		rd_kafka_headers_destroy(r->headers);
	free(r->key);
	free(r->value);
	free(r->line);
	free(r->ev);
	free(r->dkey);
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
	free(r->ev);
	free(r->dkey);
	free(r->error);
	codec_row_free(&r->row);
	if (r->headers != NULL)
		rd_kafka_headers_destroy(r->headers);
	r->key = NULL;
	r->value = NULL;
	r->ev = NULL;
	r->dkey = NULL;
	r->error = NULL;
	r->headers = NULL;
}

/* ---------------------------------------------------------------- partitions */

/* Free P whatever its references (the caller unlinked it). */
static void
part_free(struct part *p)
{
	cursor_free(p->cur);
	flush_free(p);
	if (p->flush_timer != NULL)
		event_free(p->flush_timer);
	if (p->s3_timer != NULL)
		event_free(p->s3_timer);
	if (p->reg_timer != NULL)
		event_free(p->reg_timer);
	if (p->dedup_timer != NULL)
		event_free(p->dedup_timer);
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

static struct part *
part_new(struct consumer *c, const char *topic, int32_t partition)
{
	struct part *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->c = c;
	for (size_t i = 0; i < c->nfams && p->fam == NULL; i++)
		if (strcmp(c->fams[i].fc->raw_topic, topic) == 0)
			p->fam = &c->fams[i];
	p->partition = partition;
	p->next_offset = -1;
	p->object_block = -1;
	p->hold_offset = -1;
	p->refs = 1; /* the assignment's */
	p->topic = strdup(topic);
	p->cur = cursor_new(c->block, rec_free);
	p->flush_timer = evtimer_new(c->base, on_flush_timer, p);
	p->s3_timer = evtimer_new(c->base, on_s3_timer, p);
	p->reg_timer = evtimer_new(c->base, on_reg_timer, p);
	p->dedup_timer = evtimer_new(c->base, on_dedup_timer, p);
	if (p->fam == NULL && c->role->family_topics) {
		/* subscribed to the raw topics only: cannot happen */
		log_error("assigned a partition of no served family", "topic=%s", topic);
		part_free(p);
		return NULL;
	}
	if (p->topic == NULL || p->cur == NULL || p->flush_timer == NULL || p->s3_timer == NULL ||
	    p->reg_timer == NULL || p->dedup_timer == NULL) {
		part_free(p);
		return NULL;
	}
	LIST_INSERT_HEAD(&c->parts, p, link);
	return p;
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
	metrics_set(CONSUMER_METRIC(c, CONSUMER_M_PAUSED), "", c->npaused);
	return true;
}

/* Back-pressure: records received but not confirmed decide. */
static void
part_pressure(struct part *p)
{
	struct consumer *c = p->c;
	size_t buffered = cursor_received(p->cur) - cursor_confirmed(p->cur);
	bool want;

	if (p->revoked || c->stopping)
		return;
	want = consumer_should_pause(p->paused, buffered, (size_t)c->max_pending);
	if (want == p->paused || !part_set_paused(p, want))
		return;
	log_info(want ? "partition paused, sinks behind" : "partition resumed",
	    "role=%s topic=%s partition=%d buffered=%zu", c->role->name, p->topic,
	    (int)p->partition, buffered);
}

/* ---------------------------------------------------------------- flushes */

static void
part_store(struct part *p, int64_t offset)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t e;

	if (offset < 0 || (l = part_list(p, offset)) == NULL)
		return;
	e = rd_kafka_offsets_store(p->c->rk, l);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		e = l->elems[0].err;
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warn("cannot store offset", "topic=%s partition=%d offset=%lld error=\"%s\"",
		    p->topic, (int)p->partition, (long long)offset, rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_destroy(l);
}

/* When every sink confirmed the flush: store, keep or drop the block. */
static bool
part_confirm(struct part *p)
{
	struct flush *f = p->flush;

	if (!flush_settled(p))
		return false;
	for (size_t i = cursor_confirmed(p->cur); i < cursor_flushed(p->cur); i++)
		rec_trim(part_rec(p, i));
	if (!cursor_confirm(p->cur, f->first_off, f->last_off)) {
		/* Not reached: the flush in flight is the cursor's. */
		log_error("flush does not match its partition's window, dropped",
		    "topic=%s partition=%d first=%lld last=%lld", p->topic, (int)p->partition,
		    (long long)f->first_off, (long long)f->last_off);
		flush_free(p);
		return false;
	}
	log_debug("flush confirmed",
	    "topic=%s partition=%d first=%lld last=%lld s3_ms=%lld pg_ms=%lld total_ms=%lld",
	    p->topic, (int)p->partition, (long long)f->first_off, (long long)f->last_off,
	    (long long)(f->s3_ms > 0 ? f->s3_ms - f->started_ms : -1),
	    (long long)(f->pg_ms > 0 ? f->pg_ms - f->started_ms : -1),
	    (long long)(now_ms() - f->started_ms));
	/* Below the offset we started from would move the commit back: the
	 * cursor answers -1 then. */
	part_store(p, cursor_store_offset(p->cur));
	flush_free(p);
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
		struct cursor_block b;
		struct flush *f;
		int64_t now, due;

		if (p->revoked || p->flush != NULL)
			return;
		if (cursor_flushed(p->cur) >= cursor_processed(p->cur)) {
			evtimer_del(p->flush_timer);
			return;
		}
		if (!cursor_block_closed(p->cur) && !c->stopping) {
			now = now_ms();
			due = part_rec(p, cursor_flushed(p->cur))->arrived_ms + c->flush_ms;
			if (now < due) {
				if (!evtimer_pending(p->flush_timer, NULL))
					timer_in(p->flush_timer, (long)(due - now));
				return;
			}
		}
		if ((f = flush_new(p)) == NULL) {
			log_error("out of memory for a flush", "topic=%s partition=%d", p->topic,
			    (int)p->partition);
			timer_in(p->flush_timer, RETRY_MIN_MS);
			return;
		}
		if (!cursor_flush_begin(p->cur, &b)) {
			/* Not reached: nothing is in flight and records wait. */
			free(f);
			return;
		}
		evtimer_del(p->flush_timer);
		flush_start(p, f, &b);
		if (!part_confirm(p))
			return;
	}
}

static void
on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	part_schedule(arg);
}

/* c->hooks.settled: the sinks confirmed P's flush after it started. */
static void
on_flush_settled(struct part *p)
{
	if (part_confirm(p)) {
		part_schedule(p);
		stop_progress(p->c);
	}
}

/* c->hooks.unref */
static void
on_flush_unref(struct part *p)
{
	part_unref(p);
}

/* ---------------------------------------------------------------- registry */

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

bool
consumer_registry_lookup(struct part *p, int32_t id, const char *subject, enum registry_result *res)
{
	struct consumer *c = p->c;

	if (p->ans_valid && p->reg_id == id && p->reg_subject != NULL &&
	    strcmp(p->reg_subject, subject) == 0) {
		/* Used once: later records go through the cache and its TTL. */
		p->ans_valid = false;
		*res = p->ans_res;
		return true;
	}
	p->ans_valid = false;
	if (registry_check_id_cached(c->registry, id, subject, SCHEMA_TYPE, res) &&
	    (*res == REGISTRY_OK || registry_result_permanent(*res)))
		return true;
	if (p->reg_wait)
		return false;
	p->reg_wait = true;
	p->reg_id = id;
	p->reg_subject = subject; /* borrowed: the role's, from the configuration */
	if (registry_check_id(c->registry, id, subject, SCHEMA_TYPE, on_reg_done, p) == -1) {
		p->reg_backoff = backoff_next(p->reg_backoff, c->retry_max_ms);
		timer_in(p->reg_timer, p->reg_backoff);
		return false;
	}
	p->reg_call = true;
	p->refs++; /* the callback will come even after a revoke */
	return false;
}

void
consumer_hold(struct part *p, long ms)
{
	p->reg_wait = true;
	timer_in(p->reg_timer, ms);
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

/* The enrich role's process hook: R enriched (line and row) or a dead
 * letter.  False when held. */
static bool
enrich_process(struct part *p, struct rec *r)
{
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
	/* Its enriched record needs the id of the enriched subject: the
	 * daemon registers it, /readyz says so until then. */
	if (*p->fam->enriched_topic != '\0' && p->fam->enriched_id == 0) {
		consumer_hold(p, 200);
		return false;
	}
	if (!codec_frame_parse(r->value, r->len, &sid, &payload, &plen, err, sizeof(err))) {
		rec_dead(p, r, err);
		return true;
	}
	if (!consumer_registry_lookup(p, sid, p->fam->fc->subject, &res))
		return false;
	if (res == REGISTRY_WRONG_SUBJECT) {
		snprintf(why, sizeof(why), "schema id %d: not registered under subject %s",
		    (int)sid, p->fam->fc->subject);
		rec_dead(p, r, why);
		return true;
	}
	if (res != REGISTRY_OK) {
		snprintf(why, sizeof(why), "schema id %d: %s", (int)sid, registry_reason(res));
		rec_dead(p, r, why);
		return true;
	}
	line = codec_enrich(
	    p->fam->schema, payload, plen, r->key, r->ts_ms, sid, &r->row, err, sizeof(err));
	if (line == NULL) {
		rec_dead(p, r, err);
		return true;
	}
	/* Without its partition column a row has no table to go to: a dead
	 * letter before it reaches a sink.  Other columns may be NULL where the
	 * family's table allows it; where it does not, PostgreSQL refuses the
	 * row as data and it is dead-lettered alone. */
	if (codec_row_value(p->fam->schema, &r->row, p->fam->schema->partition_column) == NULL) {
		snprintf(why, sizeof(why), "row: %s: missing", p->fam->schema->partition_column);
		free(line);
		codec_row_free(&r->row);
		rec_dead(p, r, why);
		return true;
	}
	if (*p->fam->enriched_topic != '\0' &&
	    !codec_enriched_record(p->fam->enriched_id, p->fam->fc->family->enriched_index, payload,
		plen, r->key, r->ts_ms, sid, &r->ev, &r->evlen, err, sizeof(err))) {
		free(line);
		codec_row_free(&r->row);
		rec_dead(p, r, err);
		return true;
	}
	r->line = line;
	r->linelen = strlen(line);
	/* Without a key (a producer of its own left it out, or it is too
	 * long for the ledger) the record lands as it would without dedup. */
	if (p->fam->dedup_path != NULL &&
	    (r->dkey = codec_line_text(line, r->linelen, p->fam->dedup_path)) != NULL &&
	    strlen(r->dkey) > DEDUP_KEY_MAX) {
		free(r->dkey);
		r->dkey = NULL;
	}
	metrics_add(CONSUMER_METRIC(p->c, CONSUMER_M_RECORDS), "outcome=\"enriched\"", 1);
	return true;
}

/* The enrich role's S3 key hook: enriched/ under the family's prefix. */
static int
enrich_s3_key(const struct part *p, const struct rec *first, char *buf, size_t size)
{
	return s3_key_enriched(buf, size, p->fam->s3_prefix, first->ts_ms < 0 ? 0 : first->ts_ms,
	    p->topic, p->partition, first->offset);
}

static const struct consumer_role enrich_role = {
    .name = "enrich",
    .process = enrich_process,
    .s3_key = enrich_s3_key,
    .family_topics = true,
    .enriched = true,
    .dedup = true,
    .metrics =
	{
	    [CONSUMER_M_RECORDS] = {"collectord_enrich_records_total",
		"Records of the raw topic processed, by outcome."},
	    [CONSUMER_M_FLUSHES] = {"collectord_enrich_flushes_total",
		"Sink writes of the enrich role (S3 PUTs, PostgreSQL batches), by result."},
	    [CONSUMER_M_BUFFERED] = {"collectord_enrich_buffered_records",
		"Records received and not yet confirmed by the sinks."},
	    [CONSUMER_M_PAUSED] = {"collectord_enrich_paused_partitions",
		"Partitions paused because their sinks are behind."},
	    [CONSUMER_M_COMMIT_ERRORS] = {"collectord_enrich_commit_errors_total",
		"Offset commits Kafka refused."},
	    [CONSUMER_M_LAG] = {"collectord_consumer_lag",
		"Records between the high watermark and the next record to read, per "
		"partition."},
	},
};

static void
part_process(struct part *p)
{
	if (p->revoked || p->c->stopping)
		return;
	while (cursor_processed(p->cur) < cursor_received(p->cur) && !p->reg_wait) {
		if (!p->c->role->process(p, part_rec(p, cursor_processed(p->cur))) ||
		    !cursor_process(p->cur))
			break;
	}
	part_schedule(p);
}

/* ---------------------------------------------------------------- Kafka events */

static void
part_revoke(struct part *p)
{
	struct consumer *c = p->c;

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
	evtimer_del(p->reg_timer);
	flush_revoke(p);
	/* Nothing of it is stored from now on: the next owner reads it all
	 * again from the committed offset. */
	cursor_drop_all(p->cur);
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
		log_info("partitions assigned", "role=%s count=%d", c->role->name, l ? l->cnt : 0);
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
		log_info("partitions revoked", "role=%s count=%d lost=%d", c->role->name,
		    l ? l->cnt : 0, rd_kafka_assignment_lost(c->rk));
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
	rd_kafka_headers_t *hdrs = NULL;
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
		if (!cursor_set_floor(p->cur, off))
			log_error("partition started twice", "topic=%s partition=%d offset=%lld",
			    p->topic, (int)p->partition, (long long)off);
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
	/* Kept for a dead letter that may have to go to S3 with them. */
	if (rd_kafka_message_headers((rd_kafka_message_t *)m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		hdrs = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (m->key != NULL && (r->key = malloc(m->key_len + 1)) == NULL) ||
	    (m->len > 0 && (r->value = malloc(m->len)) == NULL) ||
	    (hdrs != NULL && (r->headers = rd_kafka_headers_copy(hdrs)) == NULL) ||
	    !cursor_push(p->cur, off, r)) {
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
	r->ts_ms = rd_kafka_message_timestamp(m, &r->ts_type);
	r->arrived_ms = now_ms();
	if (m->key != NULL) {
		memcpy(r->key, m->key, m->key_len);
		r->key[m->key_len] = '\0';
		r->keylen = m->key_len;
	}
	if (m->len > 0)
		memcpy(r->value, m->payload, m->len);
	r->len = m->len;
	r->null_value = m->payload == NULL;
	p->next_offset = off + 1;
	part_process(p);
	part_pressure(p);
}

static void
on_commit(struct consumer *c, rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
	const rd_kafka_topic_partition_list_t *l = rd_kafka_event_topic_partition_list(ev);

	if (e == RD_KAFKA_RESP_ERR__NO_OFFSET)
		return; /* nothing new to commit */
	for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && l != NULL && i < l->cnt; i++)
		e = l->elems[i].err;
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	metrics_add(CONSUMER_METRIC(c, CONSUMER_M_COMMIT_ERRORS), "", 1);
	log_warn(
	    "offset commit failed", "role=%s error=\"%s\"", c->role->name, rd_kafka_err2str(e));
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
	log_warn("kafka consumer error", "role=%s error=%s", c->role->name,
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
			log_info("consumer closed", "role=%s", c->role->name);
		}
		return;
	}
	LIST_FOREACH(p, &c->parts, link)
	if (p->flush != NULL || cursor_flushed(p->cur) < cursor_processed(p->cur))
		return;
	LIST_FOREACH(p, &c->zombies, link)
	if (flush_put_busy(p))
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
		buffered += cursor_received(p->cur) - cursor_confirmed(p->cur);
		/* Cached watermarks from fetch responses: no broker round trip. */
		if (p->next_offset >= 0 &&
		    rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) ==
			RD_KAFKA_RESP_ERR_NO_ERROR &&
		    hi >= 0) {
			snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"", p->topic,
			    (int)p->partition);
			metrics_set(CONSUMER_METRIC(c, CONSUMER_M_LAG), labels,
			    (double)(hi > p->next_offset ? hi - p->next_offset : 0));
		}
	}
	metrics_set(CONSUMER_METRIC(c, CONSUMER_M_BUFFERED), "", (double)buffered);
	metrics_set(CONSUMER_METRIC(c, CONSUMER_M_PAUSED), "", c->npaused);
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
		cursor_drop_unprocessed(p->cur);
		part_schedule(p);
	}
	log_info("consumer stopping", "role=%s partitions=%d", c->role->name, n);
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
consumer_open(struct event_base *base, const struct config *cfg, const struct consumer_role *role,
    const struct consumer_settings *set, struct producer *producer, struct registry *registry,
    struct s3 *s3, struct pg_sink *pg, char *err, size_t errlen)
{
	const struct config_family *fc;
	struct consumer *c = calloc(1, sizeof(*c));
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t e;
	char errstr[512];

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->base = base;
	c->role = role;
	c->hooks.settled = on_flush_settled;
	c->hooks.unref = on_flush_unref;
	c->cfg = cfg;
	while (family_served(cfg, c->nfams) != NULL)
		c->nfams++;
	if ((c->fams = calloc(c->nfams ? c->nfams : 1, sizeof(*c->fams))) == NULL) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++) {
		struct fam *f = &c->fams[i];
		char buf[sizeof(f->s3_prefix)];

		f->fc = fc;
		f->schema = &fc->family->codec;
		f->table = i; /* the daemon gives the sink the served families' tables first */
		snprintf(f->s3_prefix, sizeof(f->s3_prefix), "%s",
		    family_s3_prefix(fc->family, buf, sizeof(buf)));
		f->enriched_topic = role->enriched ? fc->enriched_topic : "";
		f->dedup_path = role->dedup && pg != NULL ? fc->family->dedup_path : NULL;
		snprintf(f->dup_labels, sizeof(f->dup_labels), "family=\"%s\"", fc->name);
	}
	c->producer = producer;
	c->registry = registry;
	c->s3 = s3;
	c->pg = pg;
	c->block = set->block > 0 ? set->block : 1;
	c->flush_ms = set->flush_ms;
	c->max_pending = set->max_pending;
	c->retry_max_ms = set->retry_max_ms > RETRY_MIN_MS ? (long)set->retry_max_ms : RETRY_MIN_MS;
	LIST_INIT(&c->parts);
	LIST_INIT(&c->zombies);
	LIST_INIT(&c->dls);
	LIST_INIT(&c->pgws);
	LIST_INIT(&c->lws);
	LIST_INIT(&c->dqs);
	for (size_t i = 0; i < c->nfams; i++) {
		if (c->fams[i].dedup_path == NULL)
			continue;
		if (c->dedup == NULL &&
		    (c->dedup = dedup_new(base, cfg->pg_conninfo, err, errlen)) == NULL)
			goto fail;
		metrics_declare("collectord_enrich_duplicates_total", METRIC_COUNTER,
		    "Records dropped because an earlier record carried their dedup key "
		    "(a replayed record counts again).");
		metrics_add("collectord_enrich_duplicates_total", c->fams[i].dup_labels, 0);
	}

	/* [kafka]'s consumer settings, then the role's own group: its
	 * offsets are its own. */
	if ((conf = kafka_conf_new(cfg, KAFKA_CONSUMER, err, errlen)) == NULL)
		goto fail;
	if (rd_kafka_conf_set(conf, "group.id", set->group_id, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "%s consumer: group.id: %s", role->name, errstr);
		goto fail;
	}
	if (set->metadata_refresh_ms > 0 &&
	    config_kafka_get(cfg, "topic.metadata.refresh.interval.ms") == NULL) {
		char ms[24];

		snprintf(ms, sizeof(ms), "%lld", (long long)set->metadata_refresh_ms);
		if (rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", ms, errstr,
			sizeof(errstr)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "%s consumer: %s", role->name, errstr);
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
	for (size_t i = 0; i < CONSUMER_NMETRICS; i++)
		metrics_declare(role->metrics[i].name,
		    i == CONSUMER_M_BUFFERED || i == CONSUMER_M_PAUSED || i == CONSUMER_M_LAG
			? METRIC_GAUGE
			: METRIC_COUNTER,
		    role->metrics[i].help);
	if (producer != NULL)
		metrics_declare("collectord_dead_letters_to_s3_total", METRIC_COUNTER,
		    "Dead letters Kafka refused for good, stored in S3 instead.");
	if ((c->tick = evtimer_new(base, on_tick, c)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->loop = rdk_loop_new(base, c->queue, on_event, c, err, errlen);
	if (c->loop == NULL)
		goto fail;
	if ((topics = rd_kafka_topic_partition_list_new((int)set->ntopics)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* One group over every topic: the partitions of all of them are
	 * shared out among the group's processes. */
	for (size_t i = 0; i < set->ntopics; i++)
		rd_kafka_topic_partition_list_add(topics, set->topics[i], RD_KAFKA_PARTITION_UA);
	e = rd_kafka_subscribe(c->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(e));
		goto fail;
	}
	timer_in(c->tick, TICK_MS);
	return c;
fail:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	consumer_free(c);
	return NULL;
}

struct consumer *
consumer_new(struct event_base *base, const struct config *cfg, struct producer *producer,
    struct registry *registry, struct s3 *s3, struct pg_sink *pg, char *err, size_t errlen)
{
	const struct config_family *fc;
	const char **topics;
	size_t n = 0;
	struct consumer *c;

	while (family_served(cfg, n) != NULL)
		n++;
	if ((topics = calloc(n ? n : 1, sizeof(*topics))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		topics[i] = family_served(cfg, i)->raw_topic;
	c = consumer_open(base, cfg, &enrich_role,
	    &(struct consumer_settings){
		.group_id = cfg->enrich_group_id,
		.topics = topics,
		.ntopics = n,
		.block = cfg->enrich_flush_events,
		.flush_ms = cfg->enrich_flush_ms,
		.max_pending = cfg->enrich_max_pending,
		.retry_max_ms = cfg->enrich_retry_max_ms,
	    },
	    producer, registry, s3, pg, err, errlen);
	free(topics);
	for (size_t i = 0; c != NULL && (fc = family_served(cfg, i)) != NULL; i++)
		log_info("enrich consumer started",
		    "family=%s topic=%s group=%s block=%lld flush_ms=%lld", fc->name, fc->raw_topic,
		    cfg->enrich_group_id, (long long)c->block, (long long)c->flush_ms);
	return c;
}

void
consumer_free(struct consumer *c)
{
	struct part *p;

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
	flush_orphan_all(c);
	dedup_free(c->dedup); /* the orphaned questions' answers free them */
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
	free(c->fams);
	free(c);
}

void
consumer_set_enriched_id(struct consumer *c, const struct family *f, int32_t id)
{
	for (size_t i = 0; c != NULL && i < c->nfams; i++)
		if (c->fams[i].fc->family == f)
			c->fams[i].enriched_id = id;
}
