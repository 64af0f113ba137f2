/*
 * rejections.c: the dead-letter topics → PostgreSQL table rejections.
 *
 * Exactly once without local state.  Each assigned partition keeps its
 * received offsets in order, each marked done once its row is confirmed
 * (PG_SINK_OK, or given up on for good); the offset committed is the one
 * after the longest done prefix, so a commit never passes a row the sink
 * has not confirmed, even when a refused batch's rows come back one by one
 * after later batches.  Whatever is read again after a crash or a
 * rebalance carries the same coordinates and timestamp, so the primary key
 * absorbs it (ON CONFLICT DO NOTHING).
 *
 * Lifetimes.  A partition is referenced by its assignment and by each of
 * its records waiting in the batch or in a write; a revoked partition
 * commits nothing more and goes when its last record does.  A write in the
 * sink outlives the reader: rejections_free orphans it and the sink's
 * report (PG_SINK_ABORTED from pg_sink_free) only frees it.
 */
#include "rejections.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "codec.h"
#include "config.h"
#include "family.h"
#include "ids.h"
#include "kafka_conf.h"
#include "log.h"
#include "metrics.h"
#include "pg_sink.h"
#include "pgsql.h"
#include "rdk_loop.h"

/* Rows per PostgreSQL batch, and the longest a record waits for one. */
#define BATCH_MAX 500
#define BATCH_MS 1000L
/* Rows of ours batched or in the sink beyond which consumption pauses
 * (resuming below half). */
#define OURS_MAX (10 * BATCH_MAX)
/* Commit retries and back-pressure checks; while stopping, the close poll. */
#define TICK_MS 1000L
#define STOP_POLL_MS 50L

static const struct pgsql_column columns[REJECTIONS_NCOLUMNS] = {
    [REJECTIONS_COL_RECEIVED_AT] = {"received_at", "timestamptz"},
    [REJECTIONS_COL_FAMILY] = {"family", "text"},
    [REJECTIONS_COL_STAGE] = {"stage", "text"},
    [REJECTIONS_COL_CORRELATION_ID] = {"correlation_id", "uuid"},
    [REJECTIONS_COL_PATH] = {"path", "text"},
    [REJECTIONS_COL_RULE] = {"rule", "text"},
    [REJECTIONS_COL_MESSAGE] = {"message", "text"},
    [REJECTIONS_COL_EVENT] = {"event", "jsonb"},
    [REJECTIONS_COL_EVENT_BYTES] = {"event_bytes", "bytea"},
    [REJECTIONS_COL_KAFKA_TOPIC] = {"kafka_topic", "text"},
    [REJECTIONS_COL_KAFKA_PARTITION] = {"kafka_partition", "integer"},
    [REJECTIONS_COL_KAFKA_OFFSET] = {"kafka_offset", "bigint"},
    [REJECTIONS_COL_ORIGIN_TOPIC] = {"origin_topic", "text"},
    [REJECTIONS_COL_ORIGIN_PARTITION] = {"origin_partition", "integer"},
    [REJECTIONS_COL_ORIGIN_OFFSET] = {"origin_offset", "bigint"},
};

static const struct pgsql_table table = {
    .name = "rejections",
    .columns = columns,
    .ncolumns = REJECTIONS_NCOLUMNS,
    .partition_column = REJECTIONS_COL_RECEIVED_AT,
};

const struct pgsql_table *
rejections_table(void)
{
	return &table;
}

/* ---------------------------------------------------------------- pure */

/* The value of header NAME of H (its last), false when absent or null. */
static bool
header(const rd_kafka_headers_t *h, const char *name, const char **v, size_t *n)
{
	const void *p = NULL;
	size_t len = 0;

	if (h == NULL ||
	    rd_kafka_header_get_last(h, name, &p, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || p == NULL)
		return false;
	*v = p;
	*n = len;
	return true;
}

/* S (N bytes) as a NUL-terminated string PostgreSQL takes as text: valid
 * UTF-8 kept, every other byte (NUL included) U+FFFD.  Malloc'd. */
static char *
text_clean(const char *s, size_t n)
{
	static const char fffd[] = "\xef\xbf\xbd";
	char *out;
	size_t o = 0;

	if (memchr(s, '\0', n) == NULL && json_strict_utf8_valid(s, n)) {
		if ((out = malloc(n + 1)) == NULL)
			return NULL;
		memcpy(out, s, n);
		out[n] = '\0';
		return out;
	}
	if ((out = malloc(n * 3 + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < n;) {
		unsigned char b = (unsigned char)s[i];
		size_t len = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;

		if (b != 0 && len > 0 && i + len <= n &&
		    (len == 1 || json_strict_utf8_valid(s + i, len))) {
			memcpy(out + o, s + i, len);
			o += len;
			i += len;
		} else {
			memcpy(out + o, fffd, 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

static char *
dup_n(const char *s, size_t n)
{
	char *out = malloc(n + 1);

	if (out != NULL) {
		memcpy(out, s, n);
		out[n] = '\0';
	}
	return out;
}

/* The canonical text of S (N bytes) when it is a UUID (not a ULID or an
 * ObjectId: the key is the correlationId, always a UUID), into OUT. */
static bool
uuid_text(const char *s, size_t n, char out[IDS_TEXT_SIZE])
{
	char buf[64];
	uint8_t id[16];
	enum ids_form form;

	if (n >= sizeof(buf) || memchr(s, '\0', n) != NULL)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!ids_parse(buf, id, &form) || form != IDS_FORM_UUID)
		return false;
	ids_format(id, out);
	return true;
}

/* A header's non-negative decimal number no larger than MAX, canonical. */
static char *
number_text(const char *s, size_t n, int64_t max)
{
	int64_t v = 0;
	char buf[24];

	if (n == 0 || n > 19)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (max - (s[i] - '0')) / 10)
			return NULL;
		v = v * 10 + (s[i] - '0');
	}
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return strdup(buf);
}

/* RULE without a trailing " (detail)", parentheses balanced. */
static char *
strip_detail(const char *rule)
{
	size_t n = strlen(rule);
	int depth = 0;

	if (n == 0 || rule[n - 1] != ')')
		return strdup(rule);
	for (size_t j = n; j-- > 0;) {
		if (rule[j] == ')')
			depth++;
		else if (rule[j] == '(' && --depth == 0) {
			if (j >= 2 && rule[j - 1] == ' ')
				return dup_n(rule, j - 1);
			break;
		}
	}
	return strdup(rule);
}

const char *
rejections_enrich_rule(const char *error)
{
	static const struct {
		const char *prefix, *rule;
	} map[] = {
	    {"key:", REJECTIONS_RULE_KEY},
	    {"metadata.correlationId:", REJECTIONS_RULE_KEY},
	    {"record has no timestamp", REJECTIONS_RULE_TIMESTAMP},
	    {"metadata.publishTime:", REJECTIONS_RULE_TIMESTAMP},
	    {"frame:", REJECTIONS_RULE_FRAME},
	    {"schema id ", REJECTIONS_RULE_SCHEMA},
	    {"payload:", REJECTIONS_RULE_PAYLOAD},
	    {"row:", REJECTIONS_RULE_ROW},
	    {"postgres:", REJECTIONS_RULE_POSTGRES},
	};

	for (size_t i = 0; error != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(error, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].rule;
	return REJECTIONS_RULE_OTHER;
}

char *
rejections_bytea_hex(const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = data;
	char *out = malloc(2 + len * 2 + 1);

	if (out == NULL)
		return NULL;
	out[0] = '\\';
	out[1] = 'x';
	for (size_t i = 0; i < len; i++) {
		out[2 + i * 2] = digits[b[i] >> 4];
		out[3 + i * 2] = digits[b[i] & 15];
	}
	out[2 + len * 2] = '\0';
	return out;
}

void
rejections_row_free(struct rejections_row *row)
{
	if (row == NULL)
		return;
	for (size_t i = 0; i < REJECTIONS_NCOLUMNS; i++)
		free(row->values[i]);
	memset(row, 0, sizeof(*row));
}

/* The path of a refusal of the whole record, which has none. */
static bool
whole_record(const char *path, size_t n)
{
	return n == strlen("payload") && strncmp(path, "payload", n) == 0;
}

/* Path and rule of a collector's refusal ERROR (already clean text). */
static bool
collect_path_rule(const struct rejections_record *r, const char *error, char **path, char **rule)
{
	const char *hp, *hr, *sep = error != NULL ? strstr(error, ": ") : NULL;
	size_t np, nr;

	if (header(r->headers, "error-path", &hp, &np)) {
		if (np > 0 && (*path = text_clean(hp, np)) == NULL)
			return false;
	} else if (sep != NULL && sep > error && !whole_record(error, (size_t)(sep - error))) {
		if ((*path = dup_n(error, (size_t)(sep - error))) == NULL)
			return false;
	}
	if (header(r->headers, "error-rule", &hr, &nr))
		*rule = text_clean(hr, nr);
	else if (error == NULL)
		*rule = strdup("unknown");
	else
		*rule = strip_detail(sep != NULL ? sep + 2 : error);
	return *rule != NULL;
}

int
rejections_row_build(
    const struct rejections_record *r, struct rejections_row *row, char *err, size_t errlen)
{
	char **v = row->values, ts[PGSQL_TIMESTAMP_SIZE], id[IDS_TEXT_SIZE], num[24];
	const char *h;
	size_t hn;
	bool enrich = header(r->headers, "source-topic", &h, &hn);
	cJSON *json;
	size_t where;
	const char *why;

	memset(row, 0, sizeof(*row));
	if (r->ts_ms < 0 || pgsql_timestamp(r->ts_ms * 1000, ts, sizeof(ts)) == -1) {
		snprintf(err, errlen, "record has no usable timestamp (received_at)");
		return -1;
	}
	row->partition_us = r->ts_ms * 1000;
	if ((v[REJECTIONS_COL_RECEIVED_AT] = strdup(ts)) == NULL ||
	    (v[REJECTIONS_COL_FAMILY] = strdup(r->family)) == NULL ||
	    (v[REJECTIONS_COL_STAGE] = strdup(enrich ? "enrich" : "collect")) == NULL)
		goto oom;
	if (enrich && (v[REJECTIONS_COL_ORIGIN_TOPIC] = text_clean(h, hn)) == NULL)
		goto oom;
	if ((r->key != NULL && uuid_text(r->key, r->keylen, id)) ||
	    (header(r->headers, "correlation-id", &h, &hn) && uuid_text(h, hn, id)))
		if ((v[REJECTIONS_COL_CORRELATION_ID] = strdup(id)) == NULL)
			goto oom;
	if (header(r->headers, "error", &h, &hn)) {
		if ((v[REJECTIONS_COL_MESSAGE] = text_clean(h, hn)) == NULL)
			goto oom;
	} else if ((v[REJECTIONS_COL_MESSAGE] = strdup("")) == NULL) {
		goto oom;
	}
	if (enrich) {
		if ((v[REJECTIONS_COL_RULE] =
			    strdup(rejections_enrich_rule(v[REJECTIONS_COL_MESSAGE]))) == NULL)
			goto oom;
	} else if (!collect_path_rule(r,
		       header(r->headers, "error", &h, &hn) ? v[REJECTIONS_COL_MESSAGE] : NULL,
		       &v[REJECTIONS_COL_PATH], &v[REJECTIONS_COL_RULE])) {
		goto oom;
	}
	json = r->len > 0 ? json_strict_parse(r->value, r->len, &where, &why) : NULL;
	if (json != NULL) {
		cJSON_Delete(json);
		if ((v[REJECTIONS_COL_EVENT] = dup_n(r->value, r->len)) == NULL)
			goto oom;
	} else if ((v[REJECTIONS_COL_EVENT_BYTES] = rejections_bytea_hex(r->value, r->len)) ==
		   NULL) {
		goto oom;
	}
	if ((v[REJECTIONS_COL_KAFKA_TOPIC] = strdup(r->topic)) == NULL)
		goto oom;
	snprintf(num, sizeof(num), "%d", (int)r->partition);
	if ((v[REJECTIONS_COL_KAFKA_PARTITION] = strdup(num)) == NULL)
		goto oom;
	snprintf(num, sizeof(num), "%lld", (long long)r->offset);
	if ((v[REJECTIONS_COL_KAFKA_OFFSET] = strdup(num)) == NULL)
		goto oom;
	/* A number that is not one is left NULL rather than refuse the row. */
	if (enrich && header(r->headers, "source-partition", &h, &hn))
		v[REJECTIONS_COL_ORIGIN_PARTITION] = number_text(h, hn, INT32_MAX);
	if (enrich && header(r->headers, "source-offset", &h, &hn))
		v[REJECTIONS_COL_ORIGIN_OFFSET] = number_text(h, hn, INT64_MAX);
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* ---------------------------------------------------------------- state */

struct tk {
	int64_t off;
	bool done;
};

struct rpart {
	LIST_ENTRY(rpart) link;
	struct rejections *rj;
	char *topic;
	int32_t partition;
	const char *family;
	int refs; /* the assignment's, and one per record in the batch or a write */
	bool revoked;
	int64_t next;	 /* the offset expected next; -1 before the first */
	int64_t seek_to; /* after a record was dropped for memory: skip until it; -1 */
	int64_t commit;	 /* every offset below is confirmed; -1 before the first */
	bool dirty;	 /* COMMIT moved since it was last sent */
	struct tk *tks;	 /* received, unconfirmed first, in offset order */
	size_t thead, tn, tcap;
};

struct item {
	struct rpart *p;
	int64_t off;
	bool bytes_tried; /* refused alone with event JSON: tried as event_bytes */
	struct rejections_row row;
};

struct rwrite {
	LIST_ENTRY(rwrite) link;
	struct rejections *rj; /* NULL: orphaned by rejections_free */
	size_t n;
	struct item items[];
};

struct rejections {
	struct event_base *base;
	const struct config *cfg;
	struct pg_sink *pg;
	size_t table;
	size_t max_pending;
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;
	struct rdk_loop *loop;
	struct event *batch_timer, *tick;
	LIST_HEAD(, rpart) parts;   /* assigned */
	LIST_HEAD(, rpart) zombies; /* revoked, records still out */
	LIST_HEAD(, rwrite) writes; /* in the sink */
	struct item batch[BATCH_MAX];
	size_t nbatch;
	size_t inflight_rows;
	int commits_inflight;
	bool paused, stopping, closing, closed;
};

static void stop_progress(struct rejections *rj);
static void write_submit(struct rejections *rj, struct rwrite *w);

static void
timer_at(struct event *ev, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

static void
count(const char *metric, const char *family)
{
	char labels[200];

	snprintf(labels, sizeof(labels), "family=\"%s\"", family);
	metrics_add(metric, labels, 1);
}

/* ---------------------------------------------------------------- partitions */

static struct rpart *
part_find(struct rejections *rj, const char *topic, int32_t partition)
{
	struct rpart *p;

	LIST_FOREACH(p, &rj->parts, link)
	if (p->partition == partition && strcmp(p->topic, topic) == 0)
		return p;
	return NULL;
}

static void
part_free(struct rpart *p)
{
	free(p->tks);
	free(p->topic);
	free(p);
}

static void
part_unref(struct rpart *p)
{
	if (--p->refs > 0)
		return;
	LIST_REMOVE(p, link);
	part_free(p);
}

/* The family whose invalid topic TOPIC is (the first, should two share). */
static const char *
family_of(const struct config *cfg, const char *topic)
{
	const struct config_family *fc;

	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++)
		if (strcmp(fc->invalid_topic, topic) == 0)
			return fc->name;
	return NULL;
}

static struct rpart *
part_new(struct rejections *rj, const char *topic, int32_t partition)
{
	struct rpart *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->topic = strdup(topic)) == NULL) {
		free(p);
		return NULL;
	}
	p->rj = rj;
	p->partition = partition;
	p->family = family_of(rj->cfg, topic);
	p->refs = 1;
	p->next = p->seek_to = p->commit = -1;
	if (p->family == NULL) {
		/* Subscribed topics only: cannot happen, but a row needs one. */
		p->family = "unknown";
	}
	LIST_INSERT_HEAD(&rj->parts, p, link);
	return p;
}

static bool
tk_push(struct rpart *p, int64_t off, bool done)
{
	if (p->thead + p->tn == p->tcap) {
		if (p->thead > 0) {
			memmove(p->tks, p->tks + p->thead, p->tn * sizeof(*p->tks));
			p->thead = 0;
		} else {
			size_t cap = p->tcap ? p->tcap * 2 : 256;
			struct tk *t = realloc(p->tks, cap * sizeof(*t));

			if (t == NULL)
				return false;
			p->tks = t;
			p->tcap = cap;
		}
	}
	p->tks[p->thead + p->tn++] = (struct tk){off, done};
	return true;
}

/* Confirmed up to the first unconfirmed record: that is what may be
 * committed. */
static void
tk_advance(struct rpart *p)
{
	while (p->tn > 0 && p->tks[p->thead].done) {
		p->commit = p->tks[p->thead].off + 1;
		p->dirty = true;
		p->thead++;
		p->tn--;
	}
	if (p->tn == 0)
		p->thead = 0;
}

static void
tk_done(struct rpart *p, int64_t off)
{
	size_t lo = 0, hi = p->tn;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->tks[p->thead + mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->tn && p->tks[p->thead + lo].off == off)
		p->tks[p->thead + lo].done = true;
	tk_advance(p);
}

/* Commit every partition whose confirmed offset moved, asynchronously:
 * the result comes back on our queue. */
static void
commit_dirty(struct rejections *rj)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t e;
	struct rpart *p;

	if (rj->closing || (l = rd_kafka_topic_partition_list_new(4)) == NULL)
		return;
	LIST_FOREACH(p, &rj->parts, link)
	if (p->dirty && p->commit >= 0) {
		rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->commit;
		p->dirty = false;
	}
	if (l->cnt > 0) {
		e = rd_kafka_commit_queue(rj->rk, l, rj->queue, NULL, NULL);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			rj->commits_inflight++;
		} else {
			log_warn("rejections commit not started, retrying", "error=\"%s\"",
			    rd_kafka_err2str(e));
			LIST_FOREACH(p, &rj->parts, link)
			if (p->commit >= 0)
				p->dirty = true;
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* Pause or resume every assigned partition. */
static void
pause_all(struct rejections *rj, bool pause)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
	struct rpart *p;

	if (l == NULL)
		return;
	LIST_FOREACH(p, &rj->parts, link)
	rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
	if (l->cnt > 0) {
		if (pause)
			rd_kafka_pause_partitions(rj->rk, l);
		else
			rd_kafka_resume_partitions(rj->rk, l);
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* Memory stays bounded: no more fetching while the sink is behind. */
static void
pressure(struct rejections *rj)
{
	size_t ours = rj->nbatch + rj->inflight_rows, sink = pg_sink_pending(rj->pg);

	if (rj->stopping)
		return;
	if (!rj->paused && (ours >= OURS_MAX || sink > rj->max_pending)) {
		rj->paused = true;
		pause_all(rj, true);
		log_info("rejections paused, PostgreSQL is behind", "ours=%zu sink_pending=%zu",
		    ours, sink);
	} else if (rj->paused && ours < OURS_MAX / 2 && sink <= rj->max_pending / 2) {
		rj->paused = false;
		pause_all(rj, false);
		log_info("rejections resumed", "ours=%zu sink_pending=%zu", ours, sink);
	}
}

/* ---------------------------------------------------------------- writes */

/* IT is settled (confirmed, or given up on for good): free its row, let
 * its offset be committed. */
static void
item_done(struct item *it)
{
	struct rpart *p = it->p;

	rejections_row_free(&it->row);
	if (!p->revoked)
		tk_done(p, it->off);
	part_unref(p);
}

static struct rwrite *
write_new(size_t n)
{
	struct rwrite *w = calloc(1, sizeof(*w) + n * sizeof(w->items[0]));

	if (w != NULL)
		w->n = n;
	return w;
}

/* The sink refused W's rows as data (ERR, its reason): several are written
 * again one per batch, to find the culprit; one alone is given up on. */
static void
write_rejected(struct rejections *rj, struct rwrite *w, const char *err)
{
	struct item *it = &w->items[0];
	char q[600];

	if (w->n > 1) {
		log_warn("PostgreSQL refused a batch of rejections, writing its rows one by one",
		    "rows=%zu error=%s", w->n, log_quote(err ? err : "", q, sizeof(q)));
		for (size_t i = 0; i < w->n; i++) {
			struct rwrite *one = write_new(1);

			if (one == NULL) {
				/* Never commit past it: the partition waits for
				 * the next assignment to read it again. */
				log_error("out of memory for a rejections row",
				    "topic=%s partition=%d offset=%lld", w->items[i].p->topic,
				    (int)w->items[i].p->partition, (long long)w->items[i].off);
				rejections_row_free(&w->items[i].row);
				part_unref(w->items[i].p);
				continue;
			}
			one->items[0] = w->items[i];
			write_submit(rj, one);
		}
		free(w);
		return;
	}
	if (!it->bytes_tried && it->row.values[REJECTIONS_COL_EVENT] != NULL) {
		/* JSON that PostgreSQL's jsonb will not take (a number past
		 * numeric's range): the bytes still say what was sent. */
		char *json = it->row.values[REJECTIONS_COL_EVENT];
		char *hex = rejections_bytea_hex(json, strlen(json));

		if (hex != NULL) {
			it->bytes_tried = true;
			it->row.values[REJECTIONS_COL_EVENT] = NULL;
			it->row.values[REJECTIONS_COL_EVENT_BYTES] = hex;
			free(json);
			write_submit(rj, w);
			return;
		}
	}
	log_warn("PostgreSQL refused a rejections row, skipping it",
	    "topic=%s partition=%d offset=%lld error=%s", it->p->topic, (int)it->p->partition,
	    (long long)it->off, log_quote(err ? err : "", q, sizeof(q)));
	count("collectord_rejections_refused_total", it->p->family);
	item_done(it);
	free(w);
}

static void
on_write_done(struct pg_sink *sink, void *arg, enum pg_sink_outcome outcome, const char *err)
{
	struct rwrite *w = arg;
	struct rejections *rj = w->rj;

	(void)sink;
	if (rj == NULL) {
		for (size_t i = 0; i < w->n; i++)
			rejections_row_free(&w->items[i].row);
		free(w);
		return;
	}
	LIST_REMOVE(w, link);
	rj->inflight_rows -= w->n;
	switch (outcome) {
	case PG_SINK_OK:
		for (size_t i = 0; i < w->n; i++) {
			count("collectord_rejections_rows_total", w->items[i].p->family);
			item_done(&w->items[i]);
		}
		free(w);
		break;
	case PG_SINK_REJECTED:
		write_rejected(rj, w, err);
		break;
	case PG_SINK_ABORTED:
	default:
		/* Not known to be written: nothing is committed, a replay
		 * writes it. */
		for (size_t i = 0; i < w->n; i++) {
			rejections_row_free(&w->items[i].row);
			part_unref(w->items[i].p);
		}
		free(w);
		return;
	}
	commit_dirty(rj);
	pressure(rj);
	stop_progress(rj);
}

/* Hand W to the sink; W is the sink's callback's from then on. */
static void
write_submit(struct rejections *rj, struct rwrite *w)
{
	struct pg_row rows[BATCH_MAX];
	char err[512];

	for (size_t i = 0; i < w->n; i++) {
		rows[i].partition_us = w->items[i].row.partition_us;
		rows[i].values = (const char *const *)w->items[i].row.values;
	}
	w->rj = rj;
	/* pg_sink copies the rows before returning. */
	if (pg_sink_write(rj->pg, rj->table, rows, w->n, on_write_done, w, err, sizeof(err)) ==
	    -1) {
		/* Unusable before any server saw it: as a refusal. */
		write_rejected(rj, w, err);
		return;
	}
	LIST_INSERT_HEAD(&rj->writes, w, link);
	rj->inflight_rows += w->n;
}

static void
batch_flush(struct rejections *rj)
{
	struct rwrite *w;

	evtimer_del(rj->batch_timer);
	if (rj->nbatch == 0)
		return;
	if ((w = write_new(rj->nbatch)) == NULL) {
		log_warn("out of memory for a rejections batch, retrying", "rows=%zu", rj->nbatch);
		timer_at(rj->batch_timer, BATCH_MS);
		return;
	}
	memcpy(w->items, rj->batch, rj->nbatch * sizeof(rj->batch[0]));
	rj->nbatch = 0;
	write_submit(rj, w);
}

static void
on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rejections *rj = arg;

	(void)fd;
	(void)what;
	batch_flush(rj);
	stop_progress(rj);
}

/* ---------------------------------------------------------------- Kafka */

/* Asynchronous seek back to OFF after a record was dropped for memory:
 * what was fetched past it is skipped until it comes again. */
static void
part_refetch(struct rpart *p, int64_t off)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_error_t *e;

	if (l == NULL)
		return;
	rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = off;
	e = rd_kafka_seek_partitions(p->rj->rk, l, 0);
	if (e != NULL) {
		log_warn("cannot seek a rejections partition", "topic=%s partition=%d error=\"%s\"",
		    p->topic, (int)p->partition, rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
	p->seek_to = off;
	rd_kafka_topic_partition_list_destroy(l);
}

static void
on_message(struct rejections *rj, rd_kafka_message_t *m)
{
	struct rejections_record rec;
	struct rejections_row row;
	rd_kafka_headers_t *hdrs = NULL;
	struct rpart *p;
	char err[256];
	bool refused;

	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warn("rejections consume error", "topic=%s partition=%d error=\"%s\"",
			    m->rkt ? rd_kafka_topic_name(m->rkt) : "-", (int)m->partition,
			    rd_kafka_err2str(m->err));
		return;
	}
	/* Stopping, or not ours any more: it is read again from the
	 * committed offset. */
	if (rj->stopping || (p = part_find(rj, rd_kafka_topic_name(m->rkt), m->partition)) == NULL)
		return;
	if (p->seek_to >= 0) {
		if (m->offset != p->seek_to)
			return;
		p->seek_to = -1;
	}
	if (p->next >= 0 && m->offset < p->next)
		return;
	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		hdrs = NULL;
	rec = (struct rejections_record){
	    .family = p->family,
	    .topic = p->topic,
	    .partition = p->partition,
	    .offset = m->offset,
	    .ts_ms = rd_kafka_message_timestamp(m, NULL),
	    .key = m->key,
	    .keylen = m->key_len,
	    .headers = hdrs,
	    .value = m->payload,
	    .len = m->len,
	};
	refused = rec.ts_ms < 0;
	if (refused) {
		snprintf(err, sizeof(err), "record has no timestamp (received_at)");
		memset(&row, 0, sizeof(row));
	}
	if ((!refused && rejections_row_build(&rec, &row, err, sizeof(err)) == -1) ||
	    !tk_push(p, m->offset, refused)) {
		rejections_row_free(&row);
		log_error("out of memory for a rejections record, fetching it again",
		    "topic=%s partition=%d offset=%lld", p->topic, (int)p->partition,
		    (long long)m->offset);
		part_refetch(p, m->offset);
		return;
	}
	p->next = m->offset + 1;
	if (refused) {
		/* No timestamp, no row: it would fail the same forever. */
		log_warn("dead letter without a timestamp, not stored in rejections",
		    "topic=%s partition=%d offset=%lld", p->topic, (int)p->partition,
		    (long long)m->offset);
		count("collectord_rejections_refused_total", p->family);
		tk_advance(p);
		commit_dirty(rj);
		return;
	}
	rj->batch[rj->nbatch++] = (struct item){.p = p, .off = m->offset, .row = row};
	p->refs++;
	if (rj->nbatch == BATCH_MAX)
		batch_flush(rj);
	else if (rj->nbatch == 1)
		timer_at(rj->batch_timer, BATCH_MS);
	pressure(rj);
}

static void
part_revoke(struct rpart *p)
{
	p->revoked = true;
	LIST_REMOVE(p, link);
	LIST_INSERT_HEAD(&p->rj->zombies, p, link);
	part_unref(p); /* the assignment's */
}

static void
on_rebalance(struct rejections *rj, rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
	rd_kafka_topic_partition_list_t *l = rd_kafka_event_topic_partition_list(ev);
	bool coop = strcmp(rd_kafka_rebalance_protocol(rj->rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *err = NULL;
	rd_kafka_resp_err_t ae = RD_KAFKA_RESP_ERR_NO_ERROR;
	struct rpart *p;

	if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		for (int i = 0; l != NULL && i < l->cnt; i++) {
			const rd_kafka_topic_partition_t *t = &l->elems[i];

			if (part_find(rj, t->topic, t->partition) == NULL &&
			    part_new(rj, t->topic, t->partition) == NULL)
				log_error("out of memory for a rejections partition, its records "
					  "are skipped until the next rebalance",
				    "topic=%s partition=%d", t->topic, (int)t->partition);
		}
		if (coop)
			err = rd_kafka_incremental_assign(rj->rk, l);
		else
			ae = rd_kafka_assign(rj->rk, l);
		if ((rj->paused || rj->stopping) && l != NULL && l->cnt > 0)
			rd_kafka_pause_partitions(rj->rk, l);
		log_info("rejections partitions assigned", "count=%d", l ? l->cnt : 0);
	} else {
		if (e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			log_error("rejections rebalance failed, dropping the assignment",
			    "error=\"%s\"", rd_kafka_err2str(e));
		/* What is confirmed is worth committing while still ours. */
		commit_dirty(rj);
		for (int i = 0; l != NULL && i < l->cnt; i++)
			if ((p = part_find(rj, l->elems[i].topic, l->elems[i].partition)) != NULL)
				part_revoke(p);
		if (e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || !coop)
			while ((p = LIST_FIRST(&rj->parts)) != NULL)
				part_revoke(p);
		if (coop && e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			err = rd_kafka_incremental_unassign(rj->rk, l);
		else
			ae = rd_kafka_assign(rj->rk, NULL);
		log_info("rejections partitions revoked", "count=%d", l ? l->cnt : 0);
	}
	if (err != NULL) {
		log_error(
		    "rejections assignment failed", "error=\"%s\"", rd_kafka_error_string(err));
		rd_kafka_error_destroy(err);
	} else if (ae != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_error("rejections assignment failed", "error=\"%s\"", rd_kafka_err2str(ae));
	}
}

static void
on_commit(struct rejections *rj, rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
	const rd_kafka_topic_partition_list_t *l = rd_kafka_event_topic_partition_list(ev);
	struct rpart *p;

	if (rj->commits_inflight > 0)
		rj->commits_inflight--;
	for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && l != NULL && i < l->cnt; i++)
		e = l->elems[i].err;
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR__NO_OFFSET)
		return;
	/* Sent again on the next tick: the offsets only ever grow. */
	metrics_add("collectord_rejections_commit_errors_total", "", 1);
	log_warn("rejections offset commit failed", "error=\"%s\"", rd_kafka_err2str(e));
	LIST_FOREACH(p, &rj->parts, link)
	if (p->commit >= 0)
		p->dirty = true;
}

static void
on_event(void *arg, rd_kafka_event_t *ev)
{
	struct rejections *rj = arg;
	const rd_kafka_message_t *m;
	char q[600];

	switch (rd_kafka_event_type(ev)) {
	case RD_KAFKA_EVENT_FETCH:
		while ((m = rd_kafka_event_message_next(ev)) != NULL)
			on_message(rj, (rd_kafka_message_t *)m);
		break;
	case RD_KAFKA_EVENT_REBALANCE:
		on_rebalance(rj, ev);
		break;
	case RD_KAFKA_EVENT_OFFSET_COMMIT:
		on_commit(rj, ev);
		break;
	case RD_KAFKA_EVENT_ERROR:
		log_warn("rejections consumer error", "fatal=%d error=%s",
		    rd_kafka_event_error_is_fatal(ev),
		    log_quote(rd_kafka_event_error_string(ev), q, sizeof(q)));
		break;
	default:
		break;
	}
	stop_progress(rj);
}

/* ---------------------------------------------------------------- stop */

/* Once nothing is batched, in the sink or being committed, leave the
 * group; then wait for librdkafka to say it is closed. */
static void
stop_progress(struct rejections *rj)
{
	rd_kafka_error_t *err;

	if (!rj->stopping || rj->closed)
		return;
	if (rj->closing) {
		if (rd_kafka_consumer_closed(rj->rk)) {
			rj->closed = true;
			log_info("rejections consumer closed", NULL);
		}
		return;
	}
	if (rj->nbatch > 0 || !LIST_EMPTY(&rj->writes))
		return;
	commit_dirty(rj);
	if (rj->commits_inflight > 0)
		return;
	/* The revoke of the close arrives on our queue like any other. */
	if ((err = rd_kafka_consumer_close_queue(rj->rk, rj->queue)) != NULL) {
		log_warn(
		    "rejections consumer close failed", "error=\"%s\"", rd_kafka_error_string(err));
		rd_kafka_error_destroy(err);
		rj->closed = true;
		return;
	}
	rj->closing = true;
	rdk_loop_kick(rj->loop);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct rejections *rj = arg;

	(void)fd;
	(void)what;
	commit_dirty(rj);
	pressure(rj);
	if (rj->stopping) {
		/* The close's last steps may only show in librdkafka's state. */
		rdk_loop_kick(rj->loop);
		stop_progress(rj);
		if (rj->closed)
			return;
	}
	timer_at(rj->tick, rj->stopping ? STOP_POLL_MS : TICK_MS);
}

void
rejections_stop(struct rejections *rj)
{
	if (rj == NULL || rj->stopping)
		return;
	rj->stopping = true;
	pause_all(rj, true);
	batch_flush(rj);
	log_info("rejections stopping", "rows_in_flight=%zu", rj->inflight_rows);
	stop_progress(rj);
	if (!rj->closed)
		timer_at(rj->tick, STOP_POLL_MS);
}

bool
rejections_stopped(const struct rejections *rj)
{
	return rj == NULL || rj->closed;
}

/* ---------------------------------------------------------------- life */

struct rejections *
rejections_new(struct event_base *base, const struct config *cfg, struct pg_sink *pg, size_t tbl,
    char *err, size_t errlen)
{
	struct rejections *rj = calloc(1, sizeof(*rj));
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_topic_partition_list_t *topics = NULL;
	const struct config_family *fc;
	rd_kafka_resp_err_t e;
	char errstr[512], group[512];

	if (rj == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rj->base = base;
	rj->cfg = cfg;
	rj->pg = pg;
	rj->table = tbl;
	rj->max_pending = cfg->enrich_max_pending > 0 ? (size_t)cfg->enrich_max_pending : 20000;
	LIST_INIT(&rj->parts);
	LIST_INIT(&rj->zombies);
	LIST_INIT(&rj->writes);

	/* The enricher's settings, then what makes this reader its own: its
	 * group (its offsets are not the raw topic's) and commits by hand. */
	snprintf(group, sizeof(group), "%s-rejections", cfg->enrich_group_id);
	if ((conf = kafka_conf_new(cfg, KAFKA_CONSUMER, err, errlen)) == NULL)
		goto fail;
	if (rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) !=
		RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) !=
		RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)) !=
		RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "rejections consumer: %s", errstr);
		goto fail;
	}
	rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_FETCH | RD_KAFKA_EVENT_REBALANCE |
					   RD_KAFKA_EVENT_OFFSET_COMMIT | RD_KAFKA_EVENT_ERROR);
	rd_kafka_conf_set_log_cb(conf, rdk_loop_log);
	/* rd_kafka_new owns CONF from here on, even when it fails. */
	rj->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	conf = NULL;
	if (rj->rk == NULL) {
		snprintf(err, errlen, "rejections consumer: %s", errstr);
		goto fail;
	}
	rd_kafka_poll_set_consumer(rj->rk);
	if ((rj->queue = rd_kafka_queue_get_consumer(rj->rk)) == NULL) {
		snprintf(err, errlen, "rejections consumer: no consumer queue");
		goto fail;
	}
	metrics_declare("collectord_rejections_rows_total", METRIC_COUNTER,
	    "Dead-letter records PostgreSQL confirmed as rows of table rejections, per family.");
	metrics_declare("collectord_rejections_refused_total", METRIC_COUNTER,
	    "Dead-letter records given up on (no timestamp, or a row PostgreSQL refused "
	    "alone), per family; their offsets are committed.");
	metrics_declare("collectord_rejections_commit_errors_total", METRIC_COUNTER,
	    "Offset commits of the rejections reader Kafka refused.");
	rj->batch_timer = evtimer_new(base, on_batch_timer, rj);
	rj->tick = evtimer_new(base, on_tick, rj);
	if (rj->batch_timer == NULL || rj->tick == NULL ||
	    (topics = rd_kafka_topic_partition_list_new(4)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rj->loop = rdk_loop_new(base, rj->queue, on_event, rj, err, errlen)) == NULL)
		goto fail;
	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++)
		if (rd_kafka_topic_partition_list_find(
			topics, fc->invalid_topic, RD_KAFKA_PARTITION_UA) == NULL)
			rd_kafka_topic_partition_list_add(
			    topics, fc->invalid_topic, RD_KAFKA_PARTITION_UA);
	if (topics->cnt == 0) {
		snprintf(err, errlen, "rejections consumer: no family served");
		goto fail;
	}
	e = rd_kafka_subscribe(rj->rk, topics);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "rejections consumer: subscribe: %s", rd_kafka_err2str(e));
		goto fail;
	}
	log_info("rejections consumer started", "topics=%d first=%s group=%s", topics->cnt,
	    topics->elems[0].topic, group);
	rd_kafka_topic_partition_list_destroy(topics);
	timer_at(rj->tick, TICK_MS);
	return rj;
fail:
	if (topics != NULL)
		rd_kafka_topic_partition_list_destroy(topics);
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	rejections_free(rj);
	return NULL;
}

void
rejections_free(struct rejections *rj)
{
	struct rpart *p;
	struct rwrite *w;

	if (rj == NULL)
		return;
	/* No more queue wake-ups: nothing calls back into us from Kafka. */
	rdk_loop_free(rj->loop);
	/* Writes still in the sink: its report (PG_SINK_ABORTED from
	 * pg_sink_free, or the real outcome) frees them, touching nothing of
	 * ours. */
	while ((w = LIST_FIRST(&rj->writes)) != NULL) {
		LIST_REMOVE(w, link);
		w->rj = NULL;
	}
	for (size_t i = 0; i < rj->nbatch; i++)
		rejections_row_free(&rj->batch[i].row);
	while ((p = LIST_FIRST(&rj->parts)) != NULL) {
		LIST_REMOVE(p, link);
		part_free(p);
	}
	while ((p = LIST_FIRST(&rj->zombies)) != NULL) {
		LIST_REMOVE(p, link);
		part_free(p);
	}
	if (rj->batch_timer != NULL)
		event_free(rj->batch_timer);
	if (rj->tick != NULL)
		event_free(rj->tick);
	if (rj->queue != NULL)
		rd_kafka_queue_destroy(rj->queue);
	if (rj->rk != NULL) {
		if (rj->closed)
			rd_kafka_destroy(rj->rk);
		else
			/* Emergency: leaving the group would wait on brokers. */
			rd_kafka_destroy_flags(rj->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	free(rj);
}
