/*
 * pg_sink.c: batches of event rows into PostgreSQL, one transaction each,
 * retried until committed, reported in submission order.
 *
 * A batch is built once, at pg_sink_write: one array literal per column of
 * its table, for that table's prepared unnest() INSERT (pgsql.h), plus the
 * distinct UTC days it touches.  Sending it queues, in one pipeline
 * segment, a <table>_ensure_partition() call for each day of that table
 * this session has not ensured yet, the INSERT, and a sync; everything up to a sync runs as one
 * transaction, so a failed batch leaves nothing behind, not even a
 * partition.  Explicit BEGIN/COMMIT is avoided on purpose: an explicit block
 * that fails stays open (aborted) after the sync and would fail every batch
 * pipelined behind it until a ROLLBACK.
 *
 * With opts.copy a batch is instead one binary COPY, sent as one simple
 * query after the ensure calls it needs (libpq cannot COPY in pipeline
 * mode, so one batch is in flight at a time).  COPY has no ON CONFLICT: a
 * batch that meets a row already stored (unique violation: a replay after
 * a restart or a rebalance) is sent again the replay-safe way, COPY into
 * the session's staging table <table>_stage (ON COMMIT DELETE ROWS) and
 * INSERT ... SELECT ... ON CONFLICT DO NOTHING from it, in the same
 * transaction.  A batch with a value the binary encoding does not take
 * goes by the INSERT, so that the server judges it as before.
 *
 * Up to max_in_flight batches are pipelined.  A batch fails either for its
 * data (reported as PG_SINK_REJECTED, the sink moves on) or for anything
 * else (requeued: resent in queue order after a backoff, on a new session
 * when the error says the session is suspect).  Callbacks are handed out
 * from a deferred event, only from the head of the queue, so they stay in
 * submission order whatever order commits happen in, and a callback may
 * free the sink (it is destroyed when the delivery loop returns).
 */
#include "pg_sink.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "pgsql.h"

#define ERR_SIZE 512
/* Prepared statement of table I: INSERT_NAME followed by I. */
#define INSERT_NAME "collectord_insert_"
/*
 * Put in front of every schema file: a file sent as one simple query runs
 * as one transaction, so enrichers starting together apply files one at a
 * time, each file applies whole or not at all, and the lock goes with the
 * transaction even when the file fails.  ('COLL' and 1.)
 */
#define SETUP_LOCK "SELECT pg_advisory_xact_lock(1129270348, 1);\n"
#define US_PER_DAY INT64_C(86400000000)
/* Forget ensured days past this many; they are re-ensured cheaply. */
#define DAYS_MAX 64

enum batch_state { B_QUEUED, B_SENT, B_DONE };

struct batch {
	struct batch *next;
	struct pg_sink *sink;
	enum batch_state state;
	enum pg_sink_outcome outcome;
	char *err; /* why it was rejected */
	pg_sink_done_cb *cb;
	void *arg;
	size_t table; /* index into the sink's tables */
	size_t nrows;
	char *params[PGSQL_MAX_COLUMNS]; /* the INSERT's arrays, or NULL */
	struct pgsql_copy *copy;	 /* or the COPY's data */
	bool stage;			 /* COPY it through the staging table */
	int64_t *days;
	size_t ndays;
	bool skipped_days; /* last attempt relied on days ensured earlier */
	unsigned attempts;
	long long inserted; /* rows new to the table, from the last INSERT */
};

struct sql_file {
	char *name; /* DIR/FILE, for logs */
	char *text;
};

/* A table and the statements built for it once. */
struct table {
	struct pgsql_table t;
	struct pgsql_column columns[PGSQL_MAX_COLUMNS];
	char *insert; /* prepared as INSERT_NAME<i> */
	char *ensure; /* <table>_ensure_partition($1) */
	/* opts.copy: COPY into the table, into its staging table, the move
	 * from there, and the staging table's creation (at setup) */
	char *copy, *stage_copy, *stage_insert, *stage_create;
};

/* A partition ensured (or being ensured) on this session. */
struct day {
	size_t table;
	int64_t day;
};

struct pg_sink {
	struct event_base *base;
	struct pg_conn *conn;
	struct pg_sink_opts opts;
	struct sql_file *files;
	size_t nfiles;
	struct table *tables;
	size_t ntables;

	size_t setup_step; /* 0..nfiles-1 files, nfiles prepare */
	bool ready;	   /* setup done on the current session */

	struct batch *head, *tail;
	size_t pending_rows;
	unsigned in_flight;

	struct day days[DAYS_MAX];
	size_t ndays;

	struct event *ev_hold; /* backoff after a failure */
	bool holding;
	bool reset_after_hold;
	unsigned retries; /* failures since the last commit */

	struct event *ev_deliver;
	char err[ERR_SIZE + 128]; /* last failure, for pg_sink_state */
	int depth;
	bool free_requested;
	bool dying;
};

static void pump(struct pg_sink *s);
static void free_tables(struct table *t, size_t n);

/* event_free() does not accept NULL. */
static void
ev_free(struct event *ev)
{
	if (ev != NULL)
		event_free(ev);
}

/* ---------------------------------------------------------------- files */

static int
cmp_files(const void *a, const void *b)
{
	return strcmp(((const struct sql_file *)a)->name, ((const struct sql_file *)b)->name);
}

/* PATH's text after SETUP_LOCK, NUL-terminated. */
static char *
read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *t = realloc(text, cap = cap * 2 + 8192);

			if (t == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto fail;
			}
			if (text == NULL) {
				memcpy(t, SETUP_LOCK, sizeof(SETUP_LOCK) - 1);
				len = sizeof(SETUP_LOCK) - 1;
			}
			text = t;
		}
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	text[len] = '\0';
	return text;
fail:
	fclose(f);
	free(text);
	return NULL;
}

static void
free_files(struct sql_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(files[i].name);
		free(files[i].text);
	}
	free(files);
}

/* All DIR/ *.sql, sorted by name, read into memory after the files of
 * the directories loaded before. */
static int
load_files(struct pg_sink *s, const char *dir, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t first = s->nfiles, cap = s->nfiles;

	if (d == NULL) {
		snprintf(err, errlen, "sql dir %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char path[4096];

		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".sql") != 0)
			continue;
		if (s->nfiles == cap) {
			struct sql_file *f = realloc(s->files, (cap = cap * 2 + 8) * sizeof(*f));

			if (f == NULL)
				goto oom;
			s->files = f;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    sizeof(path)) {
			snprintf(err, errlen, "sql dir %s: path too long", dir);
			closedir(d);
			return -1;
		}
		s->files[s->nfiles].name = strdup(path);
		if (s->files[s->nfiles].name == NULL)
			goto oom;
		s->files[s->nfiles].text = read_file(path, err, errlen);
		if (s->files[s->nfiles].text == NULL) {
			free(s->files[s->nfiles].name);
			closedir(d);
			return -1;
		}
		s->nfiles++;
	}
	closedir(d);
	if (s->nfiles > first)
		qsort(s->files + first, s->nfiles - first, sizeof(*s->files), cmp_files);
	return 0;
oom:
	closedir(d);
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* ---------------------------------------------------------------- batches */

static void
batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	for (int i = 0; i < PGSQL_MAX_COLUMNS; i++)
		free(b->params[i]);
	pgsql_copy_free(b->copy);
	free(b->days);
	free(b->err);
	free(b);
}

/* ROWS as COPY data into B->copy; false, leaving none, when a value is
 * one the binary encoding does not take (or out of memory: the INSERT's
 * arrays then say so). */
static bool
batch_copy(
    struct batch *b, const struct pgsql_table *t, const struct pg_row *rows, size_t n, size_t bytes)
{
	b->copy = pgsql_copy_new(t, true, bytes + n * (4 + 2 + 4 * t->ncolumns + 16 * 3));
	for (size_t i = 0; i < n && b->copy != NULL; i++) {
		if (pgsql_copy_row(b->copy, rows[i].partition_us, rows[i].values) != 0) {
			pgsql_copy_free(b->copy);
			b->copy = NULL;
		}
	}
	return b->copy != NULL;
}

/* Copy ROWS of table T (index TI) into a new batch: COPY data when COPY,
 * else (or when the encoding refuses a value) the INSERT's parameters;
 * NULL with ERR on a bad row or OOM. */
static struct batch *
batch_build(const struct pgsql_table *t, size_t ti, const struct pg_row *rows, size_t n, bool copy,
    char *err, size_t errlen)
{
	struct batch *b = calloc(1, sizeof(*b));
	size_t sizes[PGSQL_MAX_COLUMNS] = {0};
	struct pgsql_array *a = NULL;
	char ts[PGSQL_TIMESTAMP_SIZE];
	size_t pc = t->partition_column, bytes = 0;

	if (b == NULL || (n > 0 && (b->days = malloc(n * sizeof(*b->days))) == NULL))
		goto oom;
	b->table = ti;
	b->nrows = n;
	for (size_t i = 0; i < n; i++) {
		int64_t day = pgsql_day(rows[i].partition_us);
		size_t d;

		if (!pgsql_timestamp_valid(rows[i].partition_us)) {
			snprintf(err, errlen, "row %zu: %s out of range", i, t->columns[pc].name);
			goto fail;
		}
		for (size_t c = 0; c < t->ncolumns; c++)
			if (c != pc && rows[i].values[c] != NULL)
				sizes[c] += strlen(rows[i].values[c]) + 3;
		for (d = 0; d < b->ndays && b->days[d] != day; d++)
			;
		if (d == b->ndays)
			b->days[b->ndays++] = day;
	}
	if (n == 0)
		return b;
	for (size_t c = 0; c < t->ncolumns; c++)
		bytes += sizes[c];
	if (copy && batch_copy(b, t, rows, n, bytes))
		return b;
	for (size_t c = 0; c < t->ncolumns; c++) {
		a = pgsql_array_new(c == pc ? n * PGSQL_TIMESTAMP_SIZE : sizes[c] + n * 5);
		if (a == NULL)
			goto oom;
		for (size_t i = 0; i < n; i++) {
			const char *v = ts;

			if (c == pc) {
				if (pgsql_timestamp(rows[i].partition_us, ts, sizeof(ts)) == -1)
					goto oom; /* checked above */
			} else {
				v = rows[i].values[c];
			}
			if (pgsql_array_add(a, v) == -1)
				goto oom;
		}
		b->params[c] = pgsql_array_finish(a);
		a = NULL;
		if (b->params[c] == NULL)
			goto oom;
	}
	return b;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	pgsql_array_free(a);
	batch_free(b);
	return NULL;
}

/* ---------------------------------------------------------------- days */

static bool
day_known(const struct pg_sink *s, size_t table, int64_t day)
{
	for (size_t i = 0; i < s->ndays; i++)
		if (s->days[i].day == day && s->days[i].table == table)
			return true;
	return false;
}

static void
day_add(struct pg_sink *s, size_t table, int64_t day)
{
	if (s->ndays == DAYS_MAX)
		s->ndays = 0;
	s->days[s->ndays++] = (struct day){table, day};
}

/* ---------------------------------------------------------------- delivery */

static const char *
outcome_err(const struct batch *b)
{
	if (b->outcome == PG_SINK_OK)
		return NULL;
	return b->err != NULL ? b->err : "rejected by postgres";
}

static void
schedule_delivery(struct pg_sink *s)
{
	if (s->head != NULL && s->head->state == B_DONE)
		event_active(s->ev_deliver, 0, 0);
}

static void
destroy(struct pg_sink *s)
{
	struct batch *b;

	s->dying = true;
	s->depth++;
	/* No pg_conn callback can reach a batch from here on. */
	pg_conn_free(s->conn);
	s->conn = NULL;
	while ((b = s->head) != NULL) {
		s->head = b->next;
		s->pending_rows -= b->nrows;
		if (b->state == B_DONE)
			b->cb(s, b->arg, b->outcome, outcome_err(b));
		else
			b->cb(s, b->arg, PG_SINK_ABORTED,
			    "postgres sink shut down before the commit was confirmed");
		batch_free(b);
	}
	ev_free(s->ev_hold);
	ev_free(s->ev_deliver);
	free_files(s->files, s->nfiles);
	free_tables(s->tables, s->ntables);
	free(s);
}

static void
on_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct pg_sink *s = arg;
	struct batch *b;

	(void)fd;
	(void)what;
	s->depth++;
	while (!s->free_requested && (b = s->head) != NULL && b->state == B_DONE) {
		s->head = b->next;
		if (s->head == NULL)
			s->tail = NULL;
		s->pending_rows -= b->nrows;
		/* b is ours alone now: its pg_conn work finished with its sync. */
		b->cb(s, b->arg, b->outcome, outcome_err(b));
		batch_free(b);
	}
	if (--s->depth == 0 && s->free_requested)
		destroy(s);
}

/* ---------------------------------------------------------------- retry */

static void
hold(struct pg_sink *s, bool reset)
{
	uint64_t ms = s->opts.backoff_min_ms;
	struct timeval tv;

	if (reset)
		s->reset_after_hold = true;
	if (s->holding)
		return;
	for (unsigned i = 0; i < s->retries && ms < s->opts.backoff_max_ms; i++)
		ms *= 2;
	if (ms > s->opts.backoff_max_ms)
		ms = s->opts.backoff_max_ms;
	if (s->retries < 64)
		s->retries++;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	s->holding = true;
	evtimer_add(s->ev_hold, &tv);
}

static void
on_hold(evutil_socket_t fd, short what, void *arg)
{
	struct pg_sink *s = arg;

	(void)fd;
	(void)what;
	s->holding = false;
	if (s->reset_after_hold) {
		/* the error said the session is suspect: setup runs again on UP */
		s->reset_after_hold = false;
		s->ready = false;
		pg_conn_reset(s->conn, s->err);
		return;
	}
	pump(s);
}

/* ---------------------------------------------------------------- sending */

static void
on_insert(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct batch *b = arg;

	(void)conn;
	if (err == NULL && res != NULL)
		b->inserted = strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
}

static void
on_batch(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct batch *b = arg;
	struct pg_sink *s = b->sink;
	const char *sqlstate;
	enum pgsql_errclass cls;
	char q[ERR_SIZE];

	(void)conn;
	s->in_flight--;
	if (err == NULL && b->copy != NULL && res != NULL)
		b->inserted = strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
	if (err == NULL) {
		b->state = B_DONE;
		b->outcome = PG_SINK_OK;
		s->retries = 0;
		if (!s->holding)
			s->err[0] = '\0';
		log_debug("postgres batch committed", "rows=%zu inserted=%lld attempts=%u",
		    b->nrows, b->inserted, b->attempts);
		schedule_delivery(s);
		pump(s);
		return;
	}
	/* Whatever failed, the ensures of this segment were rolled back. */
	s->ndays = 0;
	b->state = B_QUEUED;
	if (res == NULL) {
		snprintf(s->err, sizeof(s->err), "%s", err);
		/* session lost: resent, in order, once a new one is set up */
		hold(s, false);
		return;
	}
	sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	cls = pgsql_classify(sqlstate);
	if (b->copy != NULL && !b->stage && sqlstate != NULL &&
	    (strcmp(sqlstate, "23505") == 0 || strcmp(sqlstate, "23P01") == 0)) {
		/* rows already stored: a replay, absorbed the INSERT's way */
		log_info("postgres rows already present, copying through the staging table",
		    "rows=%zu", b->nrows);
		b->stage = true;
		pump(s);
		return;
	}
	if (cls == PGSQL_ERR_DATA && b->skipped_days && sqlstate != NULL &&
	    strcmp(sqlstate, "23514") == 0) {
		/* no partition for a row: the day cache was stale (an earlier
		 * batch's ensure rolled back, or a partition was dropped) */
		log_info("postgres partition missing, ensuring again", "error=%s",
		    log_quote(err, q, sizeof(q)));
		pump(s);
		return;
	}
	if (cls == PGSQL_ERR_DATA) {
		b->state = B_DONE;
		b->outcome = PG_SINK_REJECTED;
		b->err = strdup(err); /* NULL on OOM: outcome_err() stands in */
		log_warn("postgres batch rejected", "rows=%zu error=%s", b->nrows,
		    log_quote(err, q, sizeof(q)));
		schedule_delivery(s);
		pump(s);
		return;
	}
	snprintf(s->err, sizeof(s->err), "%s", err);
	log_warn("postgres batch failed, will retry", "rows=%zu attempt=%u error=%s", b->nrows,
	    b->attempts, log_quote(err, q, sizeof(q)));
	hold(s, cls == PGSQL_ERR_RESET);
}

/* B as one simple query: the ensure calls of the days this session has
 * not ensured, the COPY, and from the staging table the INSERT. */
static int
send_copy(struct pg_sink *s, struct batch *b)
{
	const struct table *t = &s->tables[b->table];
	const char *copy = b->stage ? t->stage_copy : t->copy;
	size_t cap = strlen(copy) + strlen(t->stage_insert) + 8, at = 0, len;
	char err[ERR_SIZE], ts[PGSQL_TIMESTAMP_SIZE], *sql;
	const char *data;

	for (size_t i = 0; i < b->ndays; i++)
		if (!day_known(s, b->table, b->days[i]))
			cap += strlen(t->t.name) + 32 + PGSQL_TIMESTAMP_SIZE;
	if ((sql = malloc(cap)) == NULL || (data = pgsql_copy_finish(b->copy, &len)) == NULL) {
		free(sql);
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	b->skipped_days = false;
	for (size_t i = 0; i < b->ndays; i++) {
		if (day_known(s, b->table, b->days[i])) {
			b->skipped_days = true;
			continue;
		}
		/* digits and punctuation only: safe in a literal */
		if (pgsql_timestamp(b->days[i] * US_PER_DAY, ts, sizeof(ts)) == -1)
			snprintf(ts, sizeof(ts), "infinity"); /* cannot happen: rows were checked */
		at += (size_t)snprintf(
		    sql + at, cap - at, "SELECT %s_ensure_partition('%s'); ", t->t.name, ts);
		day_add(s, b->table, b->days[i]);
	}
	snprintf(sql + at, cap - at, "%s%s%s", copy, b->stage ? "; " : "",
	    b->stage ? t->stage_insert : "");
	/* the data stays in the batch until on_batch */
	if (pg_conn_copy(s->conn, sql, data, len, on_batch, b, err, sizeof(err)) == -1) {
		free(sql);
		goto fail;
	}
	free(sql);
	b->state = B_SENT;
	b->attempts++;
	s->in_flight++;
	return 0;
fail:
	s->ndays = 0;
	s->ready = false;
	snprintf(s->err, sizeof(s->err), "%s", err);
	pg_conn_reset(s->conn, err);
	return -1;
}

static int
send_batch(struct pg_sink *s, struct batch *b)
{
	char err[ERR_SIZE], ts[PGSQL_TIMESTAMP_SIZE], name[sizeof(INSERT_NAME) + 24];
	const char *param[1] = {ts};
	const struct table *t = &s->tables[b->table];

	if (b->copy != NULL)
		return send_copy(s, b);
	b->skipped_days = false;
	for (size_t i = 0; i < b->ndays; i++) {
		if (day_known(s, b->table, b->days[i])) {
			b->skipped_days = true;
			continue;
		}
		if (pgsql_timestamp(b->days[i] * US_PER_DAY, ts, sizeof(ts)) == -1)
			snprintf(ts, sizeof(ts), "infinity"); /* cannot happen: rows were checked */
		if (pg_conn_query(s->conn, t->ensure, 1, param, NULL, NULL, err, sizeof(err)) == -1)
			goto fail;
		day_add(s, b->table, b->days[i]);
	}
	snprintf(name, sizeof(name), INSERT_NAME "%zu", b->table);
	if (pg_conn_query_prepared(s->conn, name, (int)t->t.ncolumns,
		(const char *const *)b->params, on_insert, b, err, sizeof(err)) == -1 ||
	    pg_conn_sync(s->conn, on_batch, b, err, sizeof(err)) == -1)
		goto fail;
	b->state = B_SENT;
	b->attempts++;
	s->in_flight++;
	return 0;
fail:
	/* The half-queued segment dies with the session being reset. */
	s->ndays = 0;
	s->ready = false;
	snprintf(s->err, sizeof(s->err), "%s", err);
	pg_conn_reset(s->conn, err);
	return -1;
}

static void
pump(struct pg_sink *s)
{
	/* a COPY needs the connection to itself */
	unsigned max = s->opts.copy ? 1 : s->opts.max_in_flight;

	if (!s->ready || s->holding || s->dying || s->free_requested)
		return;
	for (struct batch *b = s->head; b != NULL && s->in_flight < max; b = b->next) {
		if (b->state == B_QUEUED && send_batch(s, b) == -1)
			return;
	}
}

/* ---------------------------------------------------------------- setup */

/* Setup on each new session: the files (steps 0 .. nfiles-1), then one
 * step preparing every table's INSERT. */
static void setup_next(struct pg_sink *s);

static const char *
setup_step_name(const struct pg_sink *s)
{
	return s->setup_step < s->nfiles ? s->files[s->setup_step].name
					 : "prepare inserts and staging tables";
}

static void
on_setup(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct pg_sink *s = arg;
	char q[ERR_SIZE];

	(void)conn;
	if (err != NULL) {
		snprintf(s->err, sizeof(s->err), "setup %s: %s", setup_step_name(s), err);
		if (res != NULL) {
			/* the server refused: retry the whole setup on a new
			 * session after a backoff */
			log_error(
			    "postgres setup failed", "error=%s", log_quote(s->err, q, sizeof(q)));
			hold(s, true);
		}
		return;
	}
	s->setup_step++;
	if (s->setup_step <= s->nfiles) {
		setup_next(s);
		return;
	}
	s->ready = true;
	s->err[0] = '\0';
	log_info("postgres sink ready", "sql_files=%zu", s->nfiles);
	pump(s);
}

static void
setup_next(struct pg_sink *s)
{
	char err[ERR_SIZE];
	int r;

	if (s->setup_step < s->nfiles)
		r = pg_conn_simple(
		    s->conn, s->files[s->setup_step].text, on_setup, s, err, sizeof(err));
	else {
		r = 0;
		for (size_t i = 0; i < s->ntables && r == 0; i++) {
			char name[sizeof(INSERT_NAME) + 24];

			snprintf(name, sizeof(name), INSERT_NAME "%zu", i);
			r = pg_conn_prepare(s->conn, name, s->tables[i].insert,
			    (int)s->tables[i].t.ncolumns, NULL, NULL, err, sizeof(err));
			if (r == 0 && s->opts.copy)
				r = pg_conn_query(s->conn, s->tables[i].stage_create, 0, NULL, NULL,
				    NULL, err, sizeof(err));
		}
		if (r == 0)
			r = pg_conn_sync(s->conn, on_setup, s, err, sizeof(err));
	}
	if (r == -1) {
		snprintf(s->err, sizeof(s->err), "setup %s: %s", setup_step_name(s), err);
		pg_conn_reset(s->conn, s->err);
	}
}

static void
on_conn_state(struct pg_conn *conn, void *arg, enum pg_conn_state state, const char *err)
{
	struct pg_sink *s = arg;

	(void)conn;
	s->ready = false;
	s->ndays = 0;
	if (state == PG_CONN_UP) {
		s->setup_step = 0;
		setup_next(s);
	} else if (state == PG_CONN_DOWN) {
		snprintf(s->err, sizeof(s->err), "%s", err != NULL ? err : "connection lost");
	}
}

/* ---------------------------------------------------------------- API */

static void
free_tables(struct table *t, size_t n)
{
	for (size_t i = 0; i < n && t != NULL; i++) {
		free(t[i].insert);
		free(t[i].ensure);
		free(t[i].copy);
		free(t[i].stage_copy);
		free(t[i].stage_insert);
		free(t[i].stage_create);
	}
	free(t);
}

/* Check and copy TABLES (names are borrowed: static descriptors) and build
 * their statements. */
static int
load_tables(struct pg_sink *s, const struct pgsql_table *tables, size_t n, char *err, size_t errlen)
{
	if (n > 0 && (s->tables = calloc(n, sizeof(*s->tables))) == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		struct table *t = &s->tables[i];

		if (pgsql_table_check(&tables[i], err, errlen) == -1)
			return -1;
		t->t = tables[i];
		memcpy(t->columns, tables[i].columns, tables[i].ncolumns * sizeof(*t->columns));
		t->t.columns = t->columns;
		s->ntables++;
		t->insert = pgsql_insert_unnest_sql(&t->t);
		t->ensure = pgsql_ensure_partition_sql(&t->t);
		t->copy = pgsql_copy_sql(&t->t, false, true);
		t->stage_copy = pgsql_copy_sql(&t->t, true, true);
		t->stage_insert = pgsql_stage_insert_sql(&t->t);
		t->stage_create = pgsql_stage_create_sql(&t->t);
		if (t->insert == NULL || t->ensure == NULL || t->copy == NULL ||
		    t->stage_copy == NULL || t->stage_insert == NULL || t->stage_create == NULL)
			goto oom;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

struct pg_sink *
pg_sink_new(struct event_base *base, const char *conninfo, const char *const *sql_dirs,
    size_t nsql_dirs, const struct pgsql_table *tables, size_t ntables,
    const struct pg_sink_opts *opts, char *err, size_t errlen)
{
	struct pg_sink *s = calloc(1, sizeof(*s));
	struct pg_conn_opts copts = {0};

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	if (opts != NULL)
		s->opts = *opts;
	if (s->opts.max_in_flight == 0)
		s->opts.max_in_flight = 4;
	if (s->opts.backoff_min_ms == 0)
		s->opts.backoff_min_ms = 100;
	if (s->opts.backoff_max_ms == 0)
		s->opts.backoff_max_ms = 10000;
	if (s->opts.backoff_max_ms < s->opts.backoff_min_ms)
		s->opts.backoff_max_ms = s->opts.backoff_min_ms;
	for (size_t i = 0; i < nsql_dirs; i++)
		if (load_files(s, sql_dirs[i], err, errlen) == -1)
			goto fail;
	if (load_tables(s, tables, ntables, err, errlen) == -1)
		goto fail;
	s->ev_hold = evtimer_new(base, on_hold, s);
	s->ev_deliver = event_new(base, -1, 0, on_deliver, s);
	if (s->ev_hold == NULL || s->ev_deliver == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	copts.backoff_min_ms = s->opts.backoff_min_ms;
	copts.backoff_max_ms = s->opts.backoff_max_ms;
	copts.connect_timeout_ms = s->opts.connect_timeout_ms;
	copts.reply_timeout_ms = s->opts.reply_timeout_ms;
	s->conn = pg_conn_new(base, conninfo, &copts, on_conn_state, s, err, errlen);
	if (s->conn == NULL)
		goto fail;
	return s;
fail:
	ev_free(s->ev_hold);
	ev_free(s->ev_deliver);
	free_files(s->files, s->nfiles);
	free_tables(s->tables, s->ntables);
	free(s);
	return NULL;
}

void
pg_sink_free(struct pg_sink *s)
{
	if (s == NULL || s->dying || s->free_requested)
		return;
	if (s->depth > 0) {
		s->free_requested = true;
		return;
	}
	destroy(s);
}

int
pg_sink_write(struct pg_sink *s, size_t table, const struct pg_row *rows, size_t n,
    pg_sink_done_cb *cb, void *arg, char *err, size_t errlen)
{
	struct batch *b;

	if (s->dying || s->free_requested) {
		snprintf(err, errlen, "postgres sink is shutting down");
		return -1;
	}
	if (table >= s->ntables) {
		snprintf(err, errlen, "no table %zu", table);
		return -1;
	}
	b = batch_build(&s->tables[table].t, table, rows, n, s->opts.copy, err, errlen);
	if (b == NULL)
		return -1;
	/* From here the batch is the sink's; the caller's rows are not used. */
	b->sink = s;
	b->cb = cb;
	b->arg = arg;
	b->state = n == 0 ? B_DONE : B_QUEUED;
	b->outcome = PG_SINK_OK;
	if (s->tail != NULL)
		s->tail->next = b;
	else
		s->head = b;
	s->tail = b;
	s->pending_rows += n;
	schedule_delivery(s);
	pump(s);
	return 0;
}

size_t
pg_sink_pending(const struct pg_sink *s)
{
	return s->pending_rows;
}

enum pg_conn_state
pg_sink_state(const struct pg_sink *s, char *err, size_t errlen)
{
	char cerr[ERR_SIZE];
	enum pg_conn_state cs;
	const char *why;

	if (s->conn == NULL || s->dying) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "postgres sink is shutting down");
		return PG_CONN_DOWN;
	}
	cs = pg_conn_state(s->conn, cerr, sizeof(cerr));
	why = s->err[0] != '\0' ? s->err : cerr;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", s->ready && !s->holding ? "" : why);
	if (s->ready && !s->holding)
		return PG_CONN_UP;
	if (cs == PG_CONN_DOWN || s->holding || *why != '\0')
		return PG_CONN_DOWN;
	return PG_CONN_CONNECTING;
}
