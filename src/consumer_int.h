/*
 * consumer_int.h: private to the consumer roles that write offset blocks
 * to S3 (enrich, archive): the structs consumer.c and consumer_flush.c
 * share, the one-way seam between them, and the role hooks.
 *
 * Who calls whom (an arrow is a call; the sink side answers only through
 * the hooks consumer.c sets in struct consumer, a role only through its
 * struct consumer_role):
 *
 *   archive.c (the archive role) --- consumer_open(), registry lookups --+
 *        ^                                                                |
 *        +----- c->role->process, c->role->s3_key ---------+              |
 *                                                          |              v
 *   consumer.c ----------------------> consumer_flush.c    consumer.c
 *     Kafka: subscribe, rebalance,       sinks: a flush's S3 PUT and its
 *     poll, registry, the enrich         PostgreSQL writes, dead letters,
 *     role's decode/enrich, when to      whether a flush has settled
 *     flush, offsets, pause
 *      |    ^                              |      |
 *      |    +---- c->hooks.settled --------+      |
 *      |          c->hooks.unref                  |
 *      v                                          v
 *   cursor.c: one partition's record window, pure (no I/O); changed by
 *   consumer.c only, read by consumer_flush.c
 *
 * Below the .c files: codec, s3, pg_sink, producer, registry, log,
 * metrics (and archive_line for the archive).
 * The functions of consumer.h are each used in the file defining them
 * (and by the tests), never across.
 *
 * consumer.c owns the partitions, their cursors, their records and their
 * references; consumer_flush.c reads the cursor (never changes it) and
 * owns struct flush and what a flush has out: struct dl (dead letters),
 * struct dq (a question to the dedup ledger), struct pgw (a PostgreSQL
 * write) and struct lw (enriched records on their way to Kafka); each is
 * orphaned with its flush and freed by the answer still due (at once when
 * none is).  A role's process hook fills a record's line (and, for
 * enrich, its row and dedup key) and may hold it for the registry; it
 * never touches the cursor.
 */
#ifndef COLLECTORD_CONSUMER_INT_H
#define COLLECTORD_CONSUMER_INT_H

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "clock.h"
#include "codec.h"
#include "config.h"
#include "cursor.h"
#include "producer.h"
#include "registry.h"
#include "s3.h"

/* First retry delay of every sink; it doubles up to the role's
 * retry_max_ms ([enrich] or [archive]). */
#define RETRY_MIN_MS 100L
#define S3_KEY_SIZE 512

struct part;
struct flush;
struct dl;
struct dedup;

struct rec {
	struct part *part;
	int64_t offset;
	int64_t ts_ms; /* publishTime; -1 when the record has none */
	rd_kafka_timestamp_type_t ts_type;
	int64_t arrived_ms; /* monotonic: flush_ms counts from here */
	char *key;	    /* NUL-terminated copy; NULL when absent */
	size_t keylen;
	rd_kafka_headers_t *headers; /* copy of the record's; NULL when none */
	void *value;
	size_t len;
	bool null_value; /* a tombstone: no value at all (VALUE NULL, LEN 0) */
	char *line;	 /* the record's JSON line (enriched, archived), no newline */
	size_t linelen;
	uint8_t *ev; /* its enriched topic's value, while not yet confirmed; or NULL */
	size_t evlen;
	struct codec_row row;
	char *dkey;    /* its family's dedup key, or NULL for none */
	bool dup;      /* the ledger names another record for dkey: no line, no row */
	bool dead;     /* dead-lettered: no line, no row */
	char *error;   /* why (may be NULL when out of memory) */
	struct dl *dl; /* its dead letter while unacknowledged */
	bool dl_acked;
};

/* One dead-letter record on its way to Kafka, or to S3 once Kafka refused
 * it for good. */
struct dl {
	struct producer_waiter w; /* first: the producer hands it back */
	LIST_ENTRY(dl) link;
	struct consumer *c;  /* NULL: orphaned by consumer_free */
	struct rec *r;	     /* NULL: the record went away, drop the report */
	struct event *timer; /* retry after a refusal */
	long backoff;
	int refusals;		     /* by Kafka so far */
	rd_kafka_resp_err_t refused; /* Kafka's refusal for good, when to_s3 */
	bool to_s3;		     /* Kafka will never take it: S3 instead */
	bool want_alone;	     /* refused in a batch for its size: next time on its own */
	bool sent_alone;	     /* the only dead letter of ours in the producer */
	bool in_producer;
	bool in_s3; /* a PUT in flight: its answer frees a dl whose r is gone */
};

/* One pg_sink_write: the line records of the flush with offsets [lo, hi]. */
struct pgw {
	LIST_ENTRY(pgw) link;
	struct consumer *c; /* NULL: orphaned, the report only frees it */
	struct flush *f;
	int64_t lo, hi;
	size_t nrows;
};

/* One question to the dedup ledger, for the line records of a flush. */
struct dq {
	LIST_ENTRY(dq) link;
	struct consumer *c; /* NULL: orphaned, the answer only frees it */
	struct flush *f;
};

/* One record of a struct lw. */
struct lmsg {
	struct producer_waiter w; /* first: the producer hands it back */
	struct lw *lw;
	int64_t offset;
	rd_kafka_resp_err_t err; /* its delivery report's, or the refusal */
};

/* The enriched records of a confirmed PostgreSQL write on their way to the
 * family's enriched topic; those Kafka refused go again after a backoff. */
struct lw {
	LIST_ENTRY(lw) link;
	struct consumer *c; /* NULL: orphaned, the last report frees it */
	struct flush *f;
	struct event *timer; /* the retry */
	long backoff;
	size_t n;	/* records in m */
	size_t pending; /* delivery reports still due */
	struct lmsg m[];
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
	size_t pg_pending;    /* writes not yet reported */
	size_t kafka_pending; /* enriched-topic batches not yet all acknowledged */
	bool dedup_wait;      /* the ledger's answer is due before any sink */
	long dedup_backoff;
	size_t dl_wait; /* dead letters of the range not yet acknowledged */
	bool aborted;	/* the PostgreSQL sink went away first */
	/* monotonic ms: started, last S3 PUT and last PostgreSQL write
	 * confirmed (the debug log of each confirmed flush says where the
	 * time went) */
	int64_t started_ms, s3_ms, pg_ms;
};

/* One served family as the enricher sees it. */
struct fam {
	const struct config_family *fc; /* topics, subject */
	const struct codec_schema *schema;
	size_t table; /* its index among the PostgreSQL sink's tables */
	char s3_prefix[72];
	/* The enriched topic (fc's; "" for none) and the registry id its
	 * records are framed with, 0 until consumer_set_enriched_id(). */
	const char *enriched_topic;
	int32_t enriched_id;
	/* Its dedup key's path (the descriptor's), or NULL: no dedup. */
	const char *dedup_path;
	char dup_labels[80]; /* family="NAME", of the duplicates metric */
};

struct part {
	LIST_ENTRY(part) link; /* c->parts, or c->zombies once revoked */
	struct consumer *c;
	const struct fam *fam; /* the family whose raw topic this is */
	char *topic;
	int32_t partition;
	int refs;
	bool revoked, started, seeking, paused;
	int64_t seek_from;    /* while seeking, records above this are stale */
	int64_t next_offset;  /* -1 before the first record */
	struct cursor *cur;   /* its records (struct rec *), in offset order */
	int64_t object_block; /* first offset of the block a PUT was tried for */
	/* The ETag of object_block's object as this partition last wrote or
	 * read it ("": none there, as far as it knows), which its next PUT
	 * requires (If-Match, or If-None-Match: * for ""); a 412 says
	 * another writer changed it: etag_stale, HEAD it, then PUT. */
	char etag[S3_ETAG_SIZE];
	bool etag_stale;
	struct flush *flush; /* the one in flight, consumer_flush.c's */
	struct event *flush_timer, *s3_timer, *reg_timer, *dedup_timer;
	bool reg_wait; /* processing held for the registry */
	bool reg_call; /* registry_check_id in flight */
	int32_t reg_id;
	const char *reg_subject; /* what reg_id is being checked against */
	long reg_backoff;
	bool ans_valid; /* the answer for reg_id, for the held record */
	enum registry_result ans_res;
	/* The process hook's own progress on the record it holds, valid
	 * while hold_offset is that record's (-1: none): the archive's
	 * families already asked about its schema id.  One answer is kept
	 * (ans_*), so a hook asking several questions must not ask again
	 * what it was told. */
	int64_t hold_offset;
	size_t hold_step;
};

/* How consumer_flush.c reports to consumer.c without calling into it. */
struct flush_hooks {
	/* Every sink confirmed P's flush in flight (flush_settled(P)). */
	void (*settled)(struct part *p);
	/* Drop a reference taken on P with p->refs++ (an S3 PUT's); may free
	 * P, so P is not touched after it. */
	void (*unref)(struct part *p);
};

/* The metrics of a role, by what they count. */
enum consumer_metric {
	CONSUMER_M_RECORDS,	  /* counter: records processed, by outcome */
	CONSUMER_M_FLUSHES,	  /* counter: sink writes, by sink and result */
	CONSUMER_M_BUFFERED,	  /* gauge: received, not yet confirmed */
	CONSUMER_M_PAUSED,	  /* gauge: partitions paused */
	CONSUMER_M_COMMIT_ERRORS, /* counter: commits Kafka refused */
	CONSUMER_M_LAG,		  /* gauge: per topic and partition */
	CONSUMER_NMETRICS
};

/*
 * What makes a consumer one role or another: how a record becomes its
 * line, what its block's S3 object is called, and the names it reports
 * under.  Static, never freed.
 */
struct consumer_role {
	const char *name; /* "enrich", "archive": logs */
	/* Decide R, P's first record not processed yet: fill its line (for
	 * enrich also its row), or dead-letter it (rec_dead).  False while
	 * R is held: a registry answer is awaited (consumer_registry_lookup)
	 * or a retry is set (consumer_hold); the partition calls again. */
	bool (*process)(struct part *p, struct rec *r);
	/* The S3 key of P's block whose first record held is FIRST, into
	 * BUF (SIZE bytes); -1 when there is none (that block skips S3). */
	int (*s3_key)(const struct part *p, const struct rec *first, char *buf, size_t size);
	/* Every subscribed topic is a served family's raw topic, so every
	 * partition has its family (p->fam); else p->fam is NULL. */
	bool family_topics;
	/* Each record whose row landed goes to its family's enriched topic
	 * too, when it has one (the enrich role). */
	bool enriched;
	/* Records repeating their family's dedup key land nowhere (enrich). */
	bool dedup;
	struct {
		const char *name, *help;
	} metrics[CONSUMER_NMETRICS];
};

/* What consumer_open() subscribes to and how it cuts and paces blocks. */
struct consumer_settings {
	const char *group_id;
	const char *const *topics; /* subscribed, as librdkafka takes them */
	size_t ntopics;
	int64_t block;	      /* N: offsets per S3 object */
	int64_t flush_ms;     /* a partial block waits at most this long */
	int64_t max_pending;  /* unconfirmed records before a pause */
	int64_t retry_max_ms; /* longest backoff of a failing sink */
	/* > 0: topic.metadata.refresh.interval.ms, unless [kafka] gives it:
	 * how soon a subscribed topic created later is found. */
	int64_t metadata_refresh_ms;
};

struct consumer {
	struct event_base *base;
	const struct consumer_role *role;
	struct flush_hooks hooks;
	const struct config *cfg;
	struct fam *fams; /* one per served family, in served order */
	size_t nfams;
	struct producer *producer;
	struct registry *registry;
	struct s3 *s3;
	struct pg_sink *pg;
	struct dedup *dedup; /* the ledger's session, or NULL: no family has a key */
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;
	struct rdk_loop *loop;
	struct event *tick;
	LIST_HEAD(, part) parts;
	LIST_HEAD(, part) zombies;
	LIST_HEAD(, dl) dls;
	int dl_in_producer;  /* dead letters of ours in the producer */
	struct dl *dl_alone; /* the one sent (or waiting to go) on its own */
	LIST_HEAD(, pgw) pgws;
	LIST_HEAD(, lw) lws;
	LIST_HEAD(, dq) dqs;
	int64_t block; /* N */
	int64_t flush_ms, max_pending;
	long retry_max_ms;
	int npaused;
	bool stopping, closing, closed;
};

/* Record I of P's window (0: the oldest held). */
static inline struct rec *
part_rec(const struct part *p, size_t i)
{
	return cursor_item(p->cur, i);
}

/* The live (assigned) partition TOPIC/PARTITION, or NULL. */
static inline struct part *
part_find(struct consumer *c, const char *topic, int32_t partition)
{
	struct part *p;

	LIST_FOREACH(p, &c->parts, link)
	if (p->partition == partition && strcmp(p->topic, topic) == 0)
		return p;
	return NULL;
}

/* Retry helpers of both sides (the clock is clock.h's). */
static inline void
timer_in(struct event *ev, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

static inline long
backoff_next(long cur, long max)
{
	long next = cur <= 0 ? RETRY_MIN_MS : cur * 2;

	return next > max ? max : next;
}

/* The name of role metric M of C. */
#define CONSUMER_METRIC(c, m) ((c)->role->metrics[(m)].name)

/* consumer.c, for the roles. */

/*
 * Join consumer group SET->group_id on SET->topics as ROLE: the engine
 * under consumer_new() (enrich) and archive_new().  The served families
 * of CFG are c->fams whatever the role (the enricher's tables, the
 * archive's decoders).  PRODUCER and PG may be NULL for a role that never
 * dead-letters (no rec_dead) and writes no rows; everything passed is
 * borrowed, as for consumer_new().  NULL with ERR on failure.
 */
struct consumer *consumer_open(struct event_base *base, const struct config *cfg,
    const struct consumer_role *role, const struct consumer_settings *set,
    struct producer *producer, struct registry *registry, struct s3 *s3, struct pg_sink *pg,
    char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * The registry's verdict on whether schema ID is registered under SUBJECT
 * (type PROTOBUF) into *RES; false while P must wait for it (a check or a
 * retry is under way: the partition processes again when it ends, and the
 * process hook calls again with the same arguments).  Cached answers come
 * at once.
 */
bool consumer_registry_lookup(struct part *p, int32_t id, const char *subject,
    enum registry_result *res) __attribute__((warn_unused_result));
/* Hold P's processing for MS (out of memory, say): the process hook then
 * returns false and is called again after it. */
void consumer_hold(struct part *p, long ms);

/* consumer_flush.c, called by consumer.c only. */

/* R is a dead letter for WHY: send it to the dead-letter topic. */
void rec_dead(struct part *p, struct rec *r, const char *why);
/* R goes away: its dead letter, if any, is freed or left to its report. */
void dl_orphan(struct rec *r);
/* A new flush for P, NULL when out of memory; flush_start() installs it. */
struct flush *flush_new(struct part *p) __attribute__((warn_unused_result));
/* Write F, the block B cursor_flush_begin() just marked flushed, to the
 * sinks; F becomes P's flush in flight.  Reports come through
 * c->hooks.settled once flush_settled(P) turns true, unless it is at once:
 * the caller checks. */
void flush_start(struct part *p, struct flush *f, const struct cursor_block *b);
/* Whether P has a flush in flight that every sink confirmed. */
bool flush_settled(const struct part *p);
/* Whether P's flush has an S3 PUT in flight. */
bool flush_put_busy(const struct part *p);
/* Free P's flush (NULL-safe): writes still out report to nobody. */
void flush_free(struct part *p);
/* P was revoked: stop its retries and orphan its writes; its flush stays
 * only while its PUT is in flight (that PUT's reference keeps P). */
void flush_revoke(struct part *p);
/* consumer_free: every dead letter and write still out reports to nobody. */
void flush_orphan_all(struct consumer *c);
/* The S3 retry timer of a partition (ARG: the part). */
void on_s3_timer(evutil_socket_t fd, short what, void *arg);
/* The dedup ledger's retry timer of a partition (ARG: the part). */
void on_dedup_timer(evutil_socket_t fd, short what, void *arg);

#endif
