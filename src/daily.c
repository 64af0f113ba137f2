/*
 * daily.c: publish each family's per-day distinct count to its compacted
 * topic.
 *
 * The count itself is not ours: the family's SQL keeps it exact in
 * PostgreSQL, in the transaction of the rows (a trigger of its SQL under
 * schemas/), and it only grows.  The daily table has a column
 * published, the count the topic last got for the day; a day whose count
 * differs from it is dirty, and a partial index holds exactly those.
 * Every [enrich] flush_ms the leader reads at most DAILY_BATCH_MAX dirty
 * days, produces one record each (key the day), and once every report of
 * that batch is in, raises published to each delivered count in one
 * UPDATE (never lowers it).  One batch at a time: a day is never in flight
 * twice, and memory is bounded by the batch.  Whatever fails (the query,
 * a record, the update) leaves published behind the count, so the day is
 * dirty still and published again later: a record may repeat, none is
 * lost.
 *
 * Leadership.  Each publisher holds a PostgreSQL session of its own and
 * publishes only while that session holds pg_try_advisory_lock(key),
 * key = daily_lock_key(table): one publisher per family across every
 * process sharing the database.  The others ask again every
 * DAILY_LOCK_RETRY_MS.  Losing the session loses the lock, and the
 * publisher stops producing at once (it produces only from the answer of
 * a query on the session that holds it).
 *
 * Why two processes cannot leave an older count as a day's last record.
 * The records of this producer have message.timeout.ms T =
 * DAILY_MESSAGE_TIMEOUT_MS: one queued at time q is written by the broker
 * before q + T or never (the margin M = DAILY_FENCE_MARGIN_MS also covers
 * a produce request already on the wire when librdkafka gives up on it).
 * A leader A produces a count only from a dirty-days answer that came back
 * within R = DAILY_MAX_ROUNDTRIP_MS of the query's sending, and queues its
 * records in the same loop pass; the query ran while A's session held the
 * lock, so before any other session could take it.  A new leader B gets
 * the lock at some time g after that query ran, and waits until g + T + M
 * before its first query.  A's records were queued before g + R, so they
 * are written before g + R + T < g + T + M, that is before any of B's.
 * B's counts are read after g, and a count never decreases, so each of
 * B's records for a day is at least A's last one.  Within one leader, a
 * day's next record is produced only after the previous one's report; a
 * record reported failed may still be written until q + T + M, so the
 * publisher waits until then before its next query.  Hence the last
 * record of every day is the largest count published, and since the
 * leader publishes until no day is dirty, it is the exact count once the
 * stream quiesces.  The same holds when A and B are one process that lost
 * its session and got the lock again: every new lead waits.  (Clocks: each
 * process measures only its own intervals, on CLOCK_MONOTONIC; the
 * argument needs their rates to agree over T + M, not their times.)
 *
 * A delivered record whose UPDATE fails, or whose session is gone, only
 * leaves published low: the next leader publishes the day once more, with
 * a count no smaller.
 */
#include "daily.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "clock.h"
#include "config.h"
#include "family.h"
#include "log.h"
#include "metrics.h"
#include "pg_conn.h"
#include "pgsql.h"
#include "producer.h"
#include "timefmt.h"

/* After a failure, the next try waits this long, doubling up to the max. */
#define BACKOFF_MIN_MS 500L
#define BACKOFF_MAX_MS 10000L
/* daily_free: how long records still in flight may take to be reported. */
#define FREE_DRAIN_MS 1000
#define DAY_LEN 10 /* "YYYY-MM-DD" */

struct dbatch;
struct dpub;

/* One record of a batch, from its queueing to its delivery report. */
struct drec {
	struct producer_waiter w; /* first: the report's waiter is the record */
	struct dbatch *b;
	char day[DAY_LEN + 1];
	int64_t count;
	int64_t queued_ms;
	bool acked;
};

/* The records of one dirty-days answer.  Owned by its publisher
 * (pub->batch) until it ends; daily_free orphans one whose reports are
 * still due (pub NULL, on dl->orphans) and the last report frees it. */
struct dbatch {
	struct dpub *pub;
	struct daily *dl;
	size_t n;	/* records queued */
	size_t pending; /* reports still due */
	bool full;	/* the answer had DAILY_BATCH_MAX rows: more may wait */
	LIST_ENTRY(dbatch) link;
	struct drec recs[];
};

struct dpub {
	struct daily *dl;
	const struct config_family *fc;
	const struct family_daily *fd;
	char select_sql[512], update_sql[512];
	char key[24];	    /* daily_lock_key(table), as text */
	char appname[96];   /* the session's application_name */
	char labels[96];    /* family="NAME" */
	struct pg_conn *pg; /* its own session: the lock lives on it */
	struct event *timer;
	bool up;	      /* the session is UP */
	bool leader;	      /* it holds the lock */
	bool lock_busy;	      /* a lock query is in flight */
	bool querying;	      /* a dirty-days query is in flight */
	struct dbatch *batch; /* at most one */
	int64_t fence_ms;     /* no query before (now_ms) */
	int64_t sent_ms;      /* when the dirty-days query went */
	long backoff_ms;
	char error[300]; /* the last failure, logged once; "" after a success */
};

struct daily {
	struct event_base *base;
	const struct config *cfg;
	struct producer *producer; /* ours, not the daemon's: its own timeout */
	struct dpub *pubs;
	size_t npubs;
	bool stopping;
	LIST_HEAD(, dbatch) orphans;
};

/* ---------------------------------------------------------------- pure */

int64_t
daily_lock_key(const char *table)
{
	static const char prefix[] = "collectord.daily:";
	uint64_t h = 14695981039346656037ULL;

	for (const char *s = prefix; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	for (const char *s = table; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (int64_t)(h & (uint64_t)INT64_MAX);
}

static bool
is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool
is_day(const char *s)
{
	return strlen(s) == DAY_LEN && is_digits(s, 4) && s[4] == '-' && is_digits(s + 5, 2) &&
	       s[7] == '-' && is_digits(s + 8, 2);
}

static bool
is_json_name(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
			(s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	return n > 0 && n <= 64;
}

/* A plain lower-case SQL name, which needs no quoting. */
static bool
is_sql_name(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return false;
	for (; s[n] != '\0'; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	return n <= 63;
}

int
daily_value(
    const char *name, const char *day, int64_t count, int64_t updated_ms, char *buf, size_t size)
{
	char at[TIMEFMT_SIZE];
	int n;

	if (!is_json_name(name) || !is_day(day) || count < 0)
		return -1;
	timefmt_ms(updated_ms, at);
	n = snprintf(buf, size, "{\"day\":\"%s\",\"%s\":%lld,\"updatedAt\":\"%s\"}", day, name,
	    (long long)count, at);
	return n < 0 || (size_t)n >= size ? -1 : n;
}

int
daily_sql(const struct family_daily *d, unsigned limit, char *select, size_t select_size,
    char *update, size_t update_size, char *err, size_t errlen)
{
	int n;

	if (!is_sql_name(d->table) || !is_sql_name(d->count_column)) {
		snprintf(err, errlen, "daily count %s.%s: not lower-case SQL names", d->table,
		    d->count_column);
		return -1;
	}
	/* The predicate is the partial index's, word for word: the planner
	 * proves the index usable only from the same expression. */
	n = snprintf(select, select_size,
	    "SELECT to_char(day, 'YYYY-MM-DD'), %s, "
	    "(extract(epoch FROM updated_at) * 1000)::bigint "
	    "FROM %s WHERE published IS DISTINCT FROM %s ORDER BY day LIMIT %u",
	    d->count_column, d->table, d->count_column, limit);
	if (n < 0 || (size_t)n >= select_size)
		goto small;
	n = snprintf(update, update_size,
	    "UPDATE %s AS d SET published = v.n "
	    "FROM unnest($1::date[], $2::bigint[]) AS v(day, n) "
	    "WHERE d.day = v.day AND (d.published IS NULL OR d.published < v.n)",
	    d->table);
	if (n < 0 || (size_t)n >= update_size)
		goto small;
	return 0;
small:
	snprintf(err, errlen, "daily count %s: statement too long", d->table);
	return -1;
}

/* ---------------------------------------------------------------- state */

static void on_tick(evutil_socket_t fd, short what, void *arg);

static void
schedule(struct dpub *p, int64_t ms)
{
	struct timeval tv;

	if (p->dl->stopping)
		return;
	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(p->timer, &tv);
}

static void
count_failure(struct dpub *p, const char *stage)
{
	char labels[160];

	snprintf(labels, sizeof(labels), "%s,stage=\"%s\"", p->labels, stage);
	metrics_add("collectord_daily_failures_total", labels, 1);
}

/* A failure at STAGE: counted, logged when it says something new, and
 * the next try backs off.  Returns the delay. */
static long
fail(struct dpub *p, const char *stage, const char *err)
{
	char what[300], q[400];

	count_failure(p, stage);
	snprintf(what, sizeof(what), "%s: %s", stage, err);
	if (strcmp(what, p->error) != 0)
		log_warn("daily count publisher failed, retrying", "family=%s topic=%s error=%s",
		    p->fc->name, p->fc->daily_topic, log_quote(what, q, sizeof(q)));
	snprintf(p->error, sizeof(p->error), "%s", what);
	p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (p->backoff_ms > BACKOFF_MAX_MS)
		p->backoff_ms = BACKOFF_MAX_MS;
	return p->backoff_ms;
}

static void
recovered(struct dpub *p)
{
	if (p->error[0] != '\0')
		log_info("daily count publisher recovered", "family=%s topic=%s", p->fc->name,
		    p->fc->daily_topic);
	p->error[0] = '\0';
	p->backoff_ms = 0;
}

/* The one place leadership changes. */
static void
set_leader(struct dpub *p, bool leader, const char *why)
{
	char q[300];

	if (p->leader == leader)
		return;
	p->leader = leader;
	metrics_set("collectord_daily_leader", p->labels, leader ? 1 : 0);
	if (leader) {
		/* Whatever an earlier leader queued is written before this. */
		p->fence_ms = now_ms() + DAILY_MESSAGE_TIMEOUT_MS + DAILY_FENCE_MARGIN_MS;
		log_info("daily count publisher leads", "family=%s topic=%s first_publish_in_ms=%d",
		    p->fc->name, p->fc->daily_topic,
		    DAILY_MESSAGE_TIMEOUT_MS + DAILY_FENCE_MARGIN_MS);
	} else {
		log_warn("daily count publisher lost the lead", "family=%s topic=%s why=%s",
		    p->fc->name, p->fc->daily_topic, log_quote(why, q, sizeof(q)));
	}
}

static void
on_sync_ignored(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	/* The statement's own callback has said everything. */
	(void)conn;
	(void)arg;
	(void)res;
	(void)err;
}

/* ---------------------------------------------------------------- batch */

static void
batch_free(struct dbatch *b)
{
	if (b->pub == NULL)
		LIST_REMOVE(b, link);
	else if (b->pub->batch == b)
		b->pub->batch = NULL;
	free(b);
}

static void
on_updated(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct dbatch *b = arg;
	struct dpub *p = b->pub;
	bool full = b->full;

	(void)conn;
	(void)res;
	batch_free(b);
	if (err != NULL) {
		schedule(p, fail(p, "update", err));
		return;
	}
	recovered(p);
	schedule(p, full ? 0 : p->dl->cfg->enrich_flush_ms);
}

/* Every report of B is in: raise published to what Kafka took. */
static void
batch_settle(struct dbatch *b)
{
	struct dpub *p = b->pub;
	struct pgsql_array *days = NULL, *counts = NULL;
	char *dayv = NULL, *countv = NULL, num[24], err[256];
	const char *values[2];
	size_t acked = 0;

	if (p == NULL) {
		batch_free(b);
		return;
	}
	for (size_t i = 0; i < b->n; i++)
		acked += b->recs[i].acked;
	if (acked > 0)
		metrics_add("collectord_daily_published_total", p->labels, (double)acked);
	if (acked == 0 || !p->up) {
		/* Nothing to record, or no session to record it on: published
		 * stays behind and the days are published again. */
		batch_free(b);
		if (p->up)
			schedule(p, p->backoff_ms);
		return;
	}
	days = pgsql_array_new(acked * (DAY_LEN + 3));
	counts = pgsql_array_new(acked * 8);
	for (size_t i = 0; days != NULL && counts != NULL && i < b->n; i++) {
		if (!b->recs[i].acked)
			continue;
		snprintf(num, sizeof(num), "%lld", (long long)b->recs[i].count);
		if (pgsql_array_add(days, b->recs[i].day) == -1 ||
		    pgsql_array_add(counts, num) == -1)
			break;
	}
	if (days != NULL && counts != NULL) {
		dayv = pgsql_array_finish(days);
		countv = pgsql_array_finish(counts);
	} else {
		pgsql_array_free(days);
		pgsql_array_free(counts);
	}
	values[0] = dayv;
	values[1] = countv;
	if (dayv == NULL || countv == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	/* libpq copies the parameters: the arrays go right after. */
	if (pg_conn_query(p->pg, p->update_sql, 2, values, NULL, NULL, err, sizeof(err)) == -1 ||
	    pg_conn_sync(p->pg, on_updated, b, err, sizeof(err)) == -1)
		goto fail;
	free(dayv);
	free(countv);
	return; /* on_updated frees B */
fail:
	free(dayv);
	free(countv);
	batch_free(b);
	schedule(p, fail(p, "update", err));
}

static void
on_delivered(struct producer_waiter *w, rd_kafka_resp_err_t e)
{
	struct drec *r = (struct drec *)w;
	struct dbatch *b = r->b;
	struct dpub *p = b->pub;
	int64_t hold;

	if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
		r->acked = true;
	} else if (p != NULL) {
		(void)fail(p, "produce", rd_kafka_err2str(e));
		/* It may still be written until then: nothing of this day
		 * may be queued before. */
		hold = r->queued_ms + DAILY_MESSAGE_TIMEOUT_MS + DAILY_FENCE_MARGIN_MS;
		if (hold > p->fence_ms)
			p->fence_ms = hold;
	}
	if (--b->pending == 0)
		batch_settle(b);
}

/* Queue a record for each row of RES (a dirty-days answer). */
static void
publish(struct dpub *p, const PGresult *res)
{
	int rows = PQntuples(res);
	struct dbatch *b = calloc(1, sizeof(*b) + (size_t)rows * sizeof(struct drec));
	char value[256], q[300];
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (b == NULL) {
		schedule(p, fail(p, "produce", "out of memory"));
		return;
	}
	b->pub = p;
	b->dl = p->dl;
	b->full = rows >= DAILY_BATCH_MAX;
	for (int i = 0; i < rows; i++) {
		struct drec *r = &b->recs[b->n];
		const char *day = PQgetvalue(res, i, 0);
		int64_t count = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		int64_t at = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		int len = daily_value(p->fd->name, day, count, at, value, sizeof(value));

		if (len < 0) {
			/* A day PostgreSQL writes otherwise (a year past 9999,
			 * BC): no key of ours can name it. */
			count_failure(p, "value");
			log_warn("daily count not publishable, skipped", "family=%s day=%s",
			    p->fc->name, log_quote(day, q, sizeof(q)));
			continue;
		}
		*r = (struct drec){.w = {.done = on_delivered}, .b = b, .count = count};
		memcpy(r->day, day, DAY_LEN + 1);
		r->queued_ms = now_ms();
		e = producer_send(p->dl->producer, p->fc->daily_topic, r->day, DAY_LEN, value,
		    (size_t)len, NULL, &r->w);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
			break; /* the queue is full or the producer rebuilding */
		b->n++;
		b->pending++;
	}
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		(void)fail(p, "produce", rd_kafka_err2str(e));
	if (b->pending == 0) {
		free(b);
		schedule(p,
		    e != RD_KAFKA_RESP_ERR_NO_ERROR ? p->backoff_ms : p->dl->cfg->enrich_flush_ms);
		return;
	}
	p->batch = b; /* the reports settle it */
}

/* ---------------------------------------------------------------- queries */

static void
on_dirty(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct dpub *p = arg;
	int64_t took = now_ms() - p->sent_ms;
	char why[96];

	(void)conn;
	p->querying = false;
	if (p->dl->stopping || !p->leader)
		return;
	if (err != NULL) {
		schedule(p, fail(p, "query", err));
		return;
	}
	if (took > DAILY_MAX_ROUNDTRIP_MS) {
		/* Too old to be sure the lock is still ours by the time its
		 * records are written: ask again. */
		snprintf(why, sizeof(why), "the answer took %lld ms, more than %d", (long long)took,
		    DAILY_MAX_ROUNDTRIP_MS);
		schedule(p, fail(p, "query", why));
		return;
	}
	metrics_set("collectord_daily_dirty_days", p->labels, (double)PQntuples(res));
	if (PQntuples(res) == 0) {
		recovered(p);
		schedule(p, p->dl->cfg->enrich_flush_ms);
		return;
	}
	publish(p, res);
}

static void
on_lock(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct dpub *p = arg;

	(void)conn;
	p->lock_busy = false;
	if (p->dl->stopping)
		return; /* a lock got now goes with the session */
	if (err != NULL) {
		schedule(p, fail(p, "lock", err));
		return;
	}
	recovered(p); /* the session answers, whoever leads */
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		set_leader(p, true, NULL);
		schedule(p, p->fence_ms - now_ms());
		return;
	}
	schedule(p, DAILY_LOCK_RETRY_MS);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dpub *p = arg;
	const char *values[2] = {p->key, p->appname};
	char err[256];
	int64_t now = now_ms();

	(void)fd;
	(void)what;
	if (p->dl->stopping || !p->up)
		return; /* the next UP starts again */
	if (!p->leader) {
		if (p->lock_busy)
			return;
		if (pg_conn_query(p->pg,
			"SELECT pg_try_advisory_lock($1::bigint), "
			"set_config('application_name', $2, false)",
			2, values, on_lock, p, err, sizeof(err)) == -1 ||
		    pg_conn_sync(p->pg, on_sync_ignored, NULL, err, sizeof(err)) == -1) {
			/* A query half sent is reported by the reset. */
			schedule(p, fail(p, "lock", err));
			return;
		}
		p->lock_busy = true;
		return;
	}
	if (p->querying || p->batch != NULL)
		return; /* their end schedules the next tick */
	if (now < p->fence_ms) {
		schedule(p, p->fence_ms - now);
		return;
	}
	p->sent_ms = now;
	if (pg_conn_query(p->pg, p->select_sql, 0, NULL, on_dirty, p, err, sizeof(err)) == -1 ||
	    pg_conn_sync(p->pg, on_sync_ignored, NULL, err, sizeof(err)) == -1) {
		schedule(p, fail(p, "query", err));
		return;
	}
	p->querying = true;
}

static void
on_state(struct pg_conn *conn, void *arg, enum pg_conn_state state, const char *err)
{
	struct dpub *p = arg;

	(void)conn;
	if (state == PG_CONN_UP) {
		p->up = true;
		schedule(p, 0);
		return;
	}
	if (state != PG_CONN_DOWN)
		return;
	/* Every query of the lost session has had its callback. */
	p->up = false;
	p->lock_busy = false;
	p->querying = false;
	set_leader(p, false, err != NULL ? err : "session lost");
	if (err != NULL && *err != '\0')
		(void)fail(p, "session", err);
}

/* ---------------------------------------------------------------- life */

struct daily *
daily_new(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
{
	struct daily *dl = calloc(1, sizeof(*dl));
	const struct config_family *fc;
	struct pg_conn_opts opts = {
	    .connect_timeout_ms = 5000,
	    .backoff_max_ms = 5000,
	    .reply_timeout_ms = 10000,
	};
	struct producer_opts popts = {
	    .message_timeout_ms = DAILY_MESSAGE_TIMEOUT_MS,
	    .quiet = true,
	};
	char probe[256];
	size_t n = 0;

	if (dl == NULL)
		goto oom;
	dl->base = base;
	dl->cfg = cfg;
	LIST_INIT(&dl->orphans);
	metrics_declare("collectord_daily_leader", METRIC_GAUGE,
	    "1 while this process publishes the family's daily count (holds its lock).");
	metrics_declare("collectord_daily_published_total", METRIC_COUNTER,
	    "Daily count records Kafka acknowledged.");
	metrics_declare("collectord_daily_dirty_days", METRIC_GAUGE,
	    "Days whose count the topic had not got yet at the leader's last query "
	    "(at most the batch).");
	metrics_declare("collectord_daily_failures_total", METRIC_COUNTER,
	    "Daily count publisher failures by stage (session, lock, query, produce, "
	    "value, update).");
	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++)
		n += *fc->daily_topic != '\0' && fc->family->daily != NULL;
	if (n == 0)
		return dl;
	if ((dl->pubs = calloc(n, sizeof(*dl->pubs))) == NULL)
		goto oom;
	dl->producer = producer_new_opts(base, cfg, &popts, err, errlen);
	if (dl->producer == NULL)
		goto fail;
	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++) {
		struct dpub *p = &dl->pubs[dl->npubs];

		if (*fc->daily_topic == '\0' || fc->family->daily == NULL)
			continue;
		dl->npubs++;
		p->dl = dl;
		p->fc = fc;
		p->fd = fc->family->daily;
		if (daily_sql(p->fd, DAILY_BATCH_MAX, p->select_sql, sizeof(p->select_sql),
			p->update_sql, sizeof(p->update_sql), err, errlen) == -1)
			goto fail;
		if (daily_value(p->fd->name, "2000-01-01", 0, 0, probe, sizeof(probe)) < 0) {
			snprintf(err, errlen, "daily count of %s: \"%s\" is not a plain JSON key",
			    fc->name, p->fd->name);
			goto fail;
		}
		snprintf(p->key, sizeof(p->key), "%lld", (long long)daily_lock_key(p->fd->table));
		snprintf(p->appname, sizeof(p->appname), "collectord daily %s", fc->name);
		snprintf(p->labels, sizeof(p->labels), "family=\"%s\"", fc->name);
		metrics_set("collectord_daily_leader", p->labels, 0);
		metrics_add("collectord_daily_published_total", p->labels, 0);
		if ((p->timer = evtimer_new(base, on_tick, p)) == NULL)
			goto oom;
		p->pg = pg_conn_new(base, cfg->pg_conninfo, &opts, on_state, p, err, errlen);
		if (p->pg == NULL)
			goto fail;
		log_info("daily count publisher started", "family=%s topic=%s table=%s lock_key=%s",
		    fc->name, fc->daily_topic, p->fd->table, p->key);
	}
	return dl;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	daily_free(dl);
	return NULL;
}

void
daily_stop(struct daily *dl)
{
	if (dl == NULL || dl->stopping)
		return;
	dl->stopping = true;
	for (size_t i = 0; i < dl->npubs; i++)
		if (dl->pubs[i].timer != NULL)
			evtimer_del(dl->pubs[i].timer);
}

bool
daily_stopped(const struct daily *dl)
{
	if (dl == NULL)
		return true;
	for (size_t i = 0; i < dl->npubs; i++)
		if (dl->pubs[i].batch != NULL)
			return false;
	return dl->stopping;
}

void
daily_free(struct daily *dl)
{
	struct dbatch *b;

	if (dl == NULL)
		return;
	dl->stopping = true;
	for (size_t i = 0; i < dl->npubs; i++) {
		struct dpub *p = &dl->pubs[i];

		/* The session goes first: its callbacks are dropped, so a
		 * batch waiting for its update is ours to free. */
		pg_conn_free(p->pg);
		if ((b = p->batch) != NULL) {
			p->batch = NULL;
			if (b->pending == 0) {
				free(b);
			} else {
				/* The producer's reports still point at it. */
				b->pub = NULL;
				LIST_INSERT_HEAD(&dl->orphans, b, link);
			}
		}
		if (p->timer != NULL)
			event_free(p->timer);
		if (p->leader)
			metrics_set("collectord_daily_leader", p->labels, 0);
	}
	producer_free(dl->producer, FREE_DRAIN_MS);
	/* Reports that did not come in time never will. */
	while ((b = LIST_FIRST(&dl->orphans)) != NULL) {
		LIST_REMOVE(b, link);
		free(b);
	}
	free(dl->pubs);
	free(dl);
}
