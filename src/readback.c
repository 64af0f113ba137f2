/*
 * readback.c: the read-back API on its own PostgreSQL sessions.
 *
 * A request becomes a job: one or two statements built by readback_sql.c
 * and a pipeline sync, run on one free session of the pool, or queued
 * (bounded) until one is free.  Results are turned into the JSON answer as
 * they arrive; the sync answers the client.  A job is owned by the
 * session it runs on from its first queued statement until its last
 * callback (pg_conn reports every queued item exactly once, with
 * res == NULL when the session is lost), whatever happened to its client
 * in between; a queued job is owned by the queue.
 */
#include "readback.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "apikeys.h"
#include "config.h"
#include "family.h"
#include "httpd.h"
#include "ids.h"
#include "log.h"
#include "pg_conn.h"
#include "pgsql.h"
#include "readback_sql.h"
#include "timefmt.h"

/* Bytes of stored events and refusals one answer carries at most: a page
 * is cut there (its "next" goes on from the cut), a request's list too
 * ("truncated"). */
#define ANSWER_MAX_BYTES (8u << 20)
/* After the statement timeout, how long a session may stay silent before
 * its job is answered 503 and the session dropped. */
#define DEADLINE_GRACE_MS 1000

enum job_kind { JOB_EVENT, JOB_REQUEST, JOB_EVENTS, JOB_REJECTIONS, JOB_DAILY };

struct readback;
struct job;

struct rbconn {
	struct readback *rb;
	struct pg_conn *pg;
	bool ready;	 /* up, and its session settings applied */
	struct job *job; /* the job it runs, or NULL */
};

struct job {
	struct readback *rb;
	struct httpd_req *req; /* NULL once answered or gone */
	enum job_kind kind;
	struct rb_query q[2];
	size_t nq;
	size_t results;	  /* query results seen so far */
	unsigned pending; /* callbacks still to come from the session */
	struct rbconn *conn;
	struct event *deadline;
	long limit;
	char corr[37];
	const struct rb_table *table; /* JOB_EVENTS, JOB_DAILY */
	int64_t day;		      /* JOB_DAILY: the newest day, and how many */
	long days;
	/* the answer, built as results arrive */
	cJSON *rows[2];
	size_t bytes;
	bool cut; /* a list stopped at ANSWER_MAX_BYTES or its limit */
	char next[RB_CURSOR_MAX + 1];
	bool failed;
	bool timed_out;
	TAILQ_ENTRY(job) link;
};

TAILQ_HEAD(jobq, job);

struct readback {
	struct event_base *base;
	const struct config *cfg;
	struct apikeys *keys;
	struct rb_table *tables;
	size_t ntables;
	struct rbconn *conns;
	size_t nconns;
	struct jobq queue;
	size_t njobs; /* queued and running */
	struct event *kick;
	bool dying;
};

static void job_free(struct job *j);

/* ------------------------------------------------------------ answers */

static void
reply_json(struct httpd_req *r, int status, cJSON *doc)
{
	char *text = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;

	if (text == NULL) {
		httpd_reply_error(r, 500, "internal", "out of memory", NULL, 0);
		return;
	}
	httpd_reply(r, status, "application/json", text, strlen(text));
	cJSON_free(text);
}

static const char *
val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* A PostgreSQL int8 text as a JSON number (exact below 2^53, as every
 * offset and partition is). */
static cJSON *
num(const char *text)
{
	return text != NULL ? cJSON_CreateNumber(strtod(text, NULL)) : cJSON_CreateNull();
}

static cJSON *
str_or_null(const char *text)
{
	return text != NULL ? cJSON_CreateString(text) : cJSON_CreateNull();
}

static cJSON *
time_us(const char *text)
{
	char out[TIMEFMT_SIZE];

	if (text == NULL)
		return cJSON_CreateNull();
	timefmt_us(strtoll(text, NULL, 10), out);
	return cJSON_CreateString(out);
}

/* Row ROW of an events result: {family, correlationId, time, event}.
 * jsonb's own text is JSON: it goes in raw, without a parse. */
static cJSON *
event_item(const PGresult *res, int row)
{
	cJSON *o = cJSON_CreateObject();
	const char *ev = val(res, row, 3);

	cJSON_AddItemToObject(o, "family", str_or_null(val(res, row, 0)));
	cJSON_AddItemToObject(o, "correlationId", str_or_null(val(res, row, 1)));
	cJSON_AddItemToObject(o, "time", time_us(val(res, row, 2)));
	cJSON_AddItemToObject(o, "event", ev != NULL ? cJSON_CreateRaw(ev) : cJSON_CreateNull());
	return o;
}

static cJSON *
rejection_item(const PGresult *res, int row)
{
	cJSON *o = cJSON_CreateObject(), *k;
	const char *ev = val(res, row, RB_REJ_EVENT);

	cJSON_AddItemToObject(o, "receivedAt", time_us(val(res, row, RB_REJ_US)));
	cJSON_AddItemToObject(o, "family", str_or_null(val(res, row, RB_REJ_FAMILY)));
	cJSON_AddItemToObject(o, "stage", str_or_null(val(res, row, RB_REJ_STAGE)));
	cJSON_AddItemToObject(o, "correlationId", str_or_null(val(res, row, RB_REJ_CORR)));
	cJSON_AddItemToObject(o, "path", str_or_null(val(res, row, RB_REJ_PATH)));
	cJSON_AddItemToObject(o, "rule", str_or_null(val(res, row, RB_REJ_RULE)));
	cJSON_AddItemToObject(o, "message", str_or_null(val(res, row, RB_REJ_MESSAGE)));
	cJSON_AddItemToObject(o, "event", ev != NULL ? cJSON_CreateRaw(ev) : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "eventBase64", str_or_null(val(res, row, RB_REJ_BYTES)));
	k = cJSON_AddObjectToObject(o, "kafka");
	cJSON_AddItemToObject(k, "topic", str_or_null(val(res, row, RB_REJ_TOPIC)));
	cJSON_AddItemToObject(k, "partition", num(val(res, row, RB_REJ_PARTITION)));
	cJSON_AddItemToObject(k, "offset", num(val(res, row, RB_REJ_OFFSET)));
	if (val(res, row, RB_REJ_ORIGIN_TOPIC) == NULL) {
		cJSON_AddNullToObject(o, "origin");
	} else {
		k = cJSON_AddObjectToObject(o, "origin");
		cJSON_AddItemToObject(k, "topic", str_or_null(val(res, row, RB_REJ_ORIGIN_TOPIC)));
		cJSON_AddItemToObject(k, "partition", num(val(res, row, RB_REJ_ORIGIN_PARTITION)));
		cJSON_AddItemToObject(k, "offset", num(val(res, row, RB_REJ_ORIGIN_OFFSET)));
	}
	return o;
}

/* The cursor after row ROW of an events (EVENTS) or rejections result. */
static void
cursor_after(struct job *j, const PGresult *res, int row, bool events)
{
	struct rb_cursor c = {
	    .us = strtoll(PQgetvalue(res, row, events ? 2 : RB_REJ_US), NULL, 10)};

	if (events) {
		snprintf(c.corr, sizeof(c.corr), "%s", PQgetvalue(res, row, 1));
	} else {
		snprintf(c.topic, sizeof(c.topic), "%s", PQgetvalue(res, row, RB_REJ_TOPIC));
		c.partition = (int32_t)strtol(PQgetvalue(res, row, RB_REJ_PARTITION), NULL, 10);
		c.offset = strtoll(PQgetvalue(res, row, RB_REJ_OFFSET), NULL, 10);
	}
	if (rb_cursor_encode(&c, events, j->next, sizeof(j->next)) == -1)
		j->failed = true;
}

/* A daily count's rows (newest first, a day without a row left out)
 * as one item per day of the window, newest first, 0 for a missing one. */
static void
take_daily(struct job *j, const PGresult *res)
{
	cJSON *rows = cJSON_CreateArray();
	int n = PQntuples(res), i = 0;

	if (rows == NULL || PQnfields(res) != 2) {
		cJSON_Delete(rows);
		j->failed = true;
		return;
	}
	for (int64_t d = j->day; d > j->day - j->days; d--) {
		cJSON *o = cJSON_CreateObject();
		char day[11];
		double count = 0;

		if (i < n && strtoll(PQgetvalue(res, i, 0), NULL, 10) == d)
			count = strtod(PQgetvalue(res, i++, 1), NULL);
		rb_day_format(d, day);
		cJSON_AddStringToObject(o, "day", day);
		cJSON_AddNumberToObject(o, "count", count);
		cJSON_AddItemToArray(rows, o);
	}
	j->rows[j->results] = rows;
}

/* Result number J->results of job J into its rows. */
static void
take_result(struct job *j, const PGresult *res)
{
	bool events = j->kind == JOB_EVENT || j->kind == JOB_EVENTS ||
		      (j->kind == JOB_REQUEST && j->results == 0);
	int n = PQntuples(res);
	long max = j->kind == JOB_EVENTS || j->kind == JOB_REJECTIONS ? j->limit : RB_REQUEST_MAX;
	cJSON *rows;

	if (j->kind == JOB_DAILY) {
		take_daily(j, res);
		return;
	}
	rows = cJSON_CreateArray();
	if (rows == NULL || PQnfields(res) != (events ? 4 : RB_REJ_NCOLUMNS)) {
		cJSON_Delete(rows);
		j->failed = true;
		return;
	}
	for (int i = 0; i < n; i++) {
		size_t len = (size_t)PQgetlength(res, i, events ? 3 : RB_REJ_EVENT) +
			     (size_t)(events ? 0 : PQgetlength(res, i, RB_REJ_BYTES));

		/* One row more than asked, or the byte budget: a next page. */
		if (i == max || (i > 0 && j->bytes + len > ANSWER_MAX_BYTES)) {
			j->cut = true;
			if (j->kind == JOB_EVENTS || j->kind == JOB_REJECTIONS)
				cursor_after(j, res, i - 1, events);
			break;
		}
		j->bytes += len;
		cJSON_AddItemToArray(rows, events ? event_item(res, i) : rejection_item(res, i));
	}
	j->rows[j->results] = rows;
}

/* The index of a correlation id's text within its request. */
static long
index_of(const cJSON *item)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(item, "correlationId");
	uint8_t id[16];

	return cJSON_IsString(c) && ids_parse(c->valuestring, id, NULL)
		   ? (long)ids_correlation_index(id)
		   : -1;
}

/* /requests: the events and the refusals, merged by index (both come in
 * correlation id order), each with its index and status. */
static cJSON *
request_doc(struct job *j)
{
	cJSON *doc = cJSON_CreateObject(), *all = cJSON_CreateArray();
	cJSON *ev = j->rows[0]->child, *rej = j->rows[1]->child;
	uint8_t id[16], first[16], last[16];
	char a[IDS_TEXT_SIZE], z[IDS_TEXT_SIZE], when[TIMEFMT_SIZE];
	int accepted = 0, rejected = 0;

	if (!ids_parse(j->corr, id, NULL))
		memset(id, 0, sizeof(id));
	ids_batch_range(id, first, last);
	ids_format(first, a);
	ids_format(last, z);
	timefmt_ms((int64_t)ids_time_ms(id), when);
	cJSON_AddStringToObject(doc, "first", a);
	cJSON_AddStringToObject(doc, "last", z);
	cJSON_AddStringToObject(doc, "receivedAt", when);
	while (ev != NULL || rej != NULL) {
		bool take_ev = rej == NULL || (ev != NULL && index_of(ev) <= index_of(rej));
		cJSON *item = take_ev ? ev : rej, *o = cJSON_CreateObject();

		if (take_ev)
			ev = ev->next;
		else
			rej = rej->next;
		cJSON_AddNumberToObject(o, "index", (double)index_of(item));
		cJSON_AddStringToObject(o, "status", take_ev ? "accepted" : "rejected");
		/* the item's own fields after index and status */
		for (cJSON *f = item->child; f != NULL; f = f->next)
			cJSON_AddItemReferenceToObject(o, f->string, f);
		cJSON_AddItemToArray(all, o);
		accepted += take_ev;
		rejected += !take_ev;
	}
	cJSON_AddNumberToObject(doc, "accepted", accepted);
	cJSON_AddNumberToObject(doc, "rejected", rejected);
	cJSON_AddBoolToObject(doc, "truncated", j->cut);
	cJSON_AddItemToObject(doc, "events", all);
	return doc;
}

static void
job_answer(struct job *j)
{
	struct httpd_req *r = j->req;
	cJSON *doc = NULL;

	if (r == NULL)
		return;
	httpd_req_on_gone(r, NULL, NULL);
	j->req = NULL;
	if (j->failed || j->results != j->nq) {
		httpd_reply_error(r, 503,
		    j->timed_out ? "postgres_timeout" : "postgres_unavailable",
		    j->timed_out ? "PostgreSQL did not answer in time"
				 : "the query failed in PostgreSQL (the log says why)",
		    NULL, 1);
		return;
	}
	switch (j->kind) {
	case JOB_EVENT:
		if (j->rows[0]->child == NULL) {
			httpd_reply_error(
			    r, 404, "not_found", "no stored event has that correlationId", NULL, 0);
			return;
		}
		reply_json(r, 200, j->rows[0]->child);
		return;
	case JOB_REQUEST:
		if (j->rows[0]->child == NULL && j->rows[1]->child == NULL) {
			httpd_reply_error(r, 404, "not_found",
			    "no stored event or refusal belongs to that request", NULL, 0);
			return;
		}
		doc = request_doc(j);
		break;
	case JOB_EVENTS:
	case JOB_REJECTIONS:
		doc = cJSON_CreateObject();
		cJSON_AddItemReferenceToObject(
		    doc, j->kind == JOB_EVENTS ? "events" : "rejections", j->rows[0]);
		if (j->cut)
			cJSON_AddStringToObject(doc, "next", j->next);
		else
			cJSON_AddNullToObject(doc, "next");
		break;
	case JOB_DAILY:
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "family", j->table->family);
		cJSON_AddStringToObject(doc, "name", j->table->daily->name);
		cJSON_AddStringToObject(doc, "field", j->table->daily->field);
		cJSON_AddStringToObject(doc, "window", j->table->daily->window);
		cJSON_AddItemReferenceToObject(doc, "days", j->rows[0]);
		break;
	}
	reply_json(r, 200, doc);
	cJSON_Delete(doc);
}

/* ------------------------------------------------------------ the pool */

static void
kick(struct readback *rb)
{
	if (!rb->dying)
		event_active(rb->kick, EV_TIMEOUT, 0);
}

/* Every callback of the job's session has come: answer and free it. */
static void
job_done(struct job *j)
{
	struct readback *rb = j->rb;

	if (j->conn != NULL)
		j->conn->job = NULL;
	job_answer(j);
	job_free(j);
	kick(rb);
}

/* One of the job's callbacks came; the last one ends it (normally the
 * sync's, but a segment whose sync could not be sent ends with its
 * last statement's). */
static void
job_reported(struct job *j)
{
	if (--j->pending == 0)
		job_done(j);
}

static void
on_result(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct job *j = arg;
	char q[600];

	(void)conn;
	if (err != NULL) {
		const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

		if (!j->failed)
			log_warn("read-back query failed", "error=%s sqlstate=%s",
			    log_quote(err, q, sizeof(q)), state ? state : "none");
		j->failed = true;
		/* 57014: our statement_timeout cancelled it */
		if (state != NULL && strcmp(state, "57014") == 0)
			j->timed_out = true;
	} else if (!j->failed && j->results < j->nq) {
		take_result(j, res);
		j->results++;
	}
	job_reported(j);
}

static void
on_sync(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct job *j = arg;

	(void)conn;
	(void)res;
	if (err != NULL)
		j->failed = true;
	job_reported(j);
}

/* Queue J's statements and its sync on C.  False when nothing could be
 * queued (J is not C's then); else C owns J until its callbacks came. */
static bool
job_start(struct job *j, struct rbconn *c)
{
	char err[256];

	j->conn = c;
	c->job = j;
	for (size_t i = 0; i < j->nq; i++) {
		if (pg_conn_query(c->pg, j->q[i].sql, j->q[i].nparams,
			(const char *const *)j->q[i].values, on_result, j, err, sizeof(err)) == -1)
			goto fail;
		j->pending++;
	}
	if (pg_conn_sync(c->pg, on_sync, j, err, sizeof(err)) == -1)
		goto fail;
	j->pending++;
	return true;
fail:
	log_warn("read-back query not sent", "error=\"%s\"", err);
	j->failed = true;
	if (j->pending > 0)
		return true; /* the reset reports them; on_result counts down */
	c->job = NULL;
	j->conn = NULL;
	return false;
}

static struct rbconn *
free_conn(struct readback *rb, bool *any_ready)
{
	*any_ready = false;
	for (size_t i = 0; i < rb->nconns; i++) {
		*any_ready |= rb->conns[i].ready;
		if (rb->conns[i].ready && rb->conns[i].job == NULL)
			return &rb->conns[i];
	}
	return NULL;
}

/* Start what waits on the sessions that are free; fail it all when none
 * is up. */
static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct readback *rb = arg;
	struct job *j;
	struct rbconn *c;
	bool any;

	(void)fd;
	(void)what;
	while ((j = TAILQ_FIRST(&rb->queue)) != NULL) {
		c = free_conn(rb, &any);
		if (c == NULL && any)
			return;
		TAILQ_REMOVE(&rb->queue, j, link);
		if (c == NULL || !job_start(j, c)) {
			j->failed = true;
			job_answer(j);
			job_free(j);
		}
	}
}

static void
on_setup(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct rbconn *c = arg;
	char q[600];

	(void)conn;
	(void)res;
	if (err != NULL) {
		log_warn(
		    "read-back session setup failed", "error=%s", log_quote(err, q, sizeof(q)));
		pg_conn_reset(c->pg, "read-back session setup failed");
		return;
	}
	c->ready = true;
	kick(c->rb);
}

static void
on_conn_state(struct pg_conn *conn, void *arg, enum pg_conn_state state, const char *err)
{
	struct rbconn *c = arg;
	char timeout[32], e[256];
	const char *values[1] = {timeout};
	char q[600];

	c->ready = false;
	if (state == PG_CONN_DOWN) {
		log_debug(
		    "read-back session down", "error=%s", log_quote(err ? err : "", q, sizeof(q)));
		kick(c->rb); /* fail the waiting jobs if no session is left */
		return;
	}
	if (state != PG_CONN_UP)
		return;
	/* A read-only session whose every statement the server cancels after
	 * the timeout: nothing a client asks can write or run long. */
	snprintf(
	    timeout, sizeof(timeout), "%lld", (long long)c->rb->cfg->readback_statement_timeout_ms);
	if (pg_conn_query(conn,
		"SELECT set_config('statement_timeout', $1, false), "
		"set_config('default_transaction_read_only', 'on', false), "
		"set_config('application_name', 'collectord read-back', false)",
		1, values, NULL, NULL, e, sizeof(e)) == -1 ||
	    pg_conn_sync(conn, on_setup, c, e, sizeof(e)) == -1)
		log_warn("read-back session setup not sent", "error=\"%s\"", e);
}

/* ------------------------------------------------------------ jobs */

static void
job_free(struct job *j)
{
	j->rb->njobs--;
	for (size_t i = 0; i < j->nq; i++)
		rb_query_free(&j->q[i]);
	cJSON_Delete(j->rows[0]);
	cJSON_Delete(j->rows[1]);
	if (j->deadline != NULL)
		event_free(j->deadline);
	free(j);
}

static void
on_gone(void *arg)
{
	struct job *j = arg;

	j->req = NULL;
	if (j->conn == NULL) {
		TAILQ_REMOVE(&j->rb->queue, j, link);
		job_free(j);
	}
}

/* No answer within the statement timeout and a grace: answer 503 now;
 * a session that went silent is dropped (its callbacks free the job). */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)fd;
	(void)what;
	j->failed = true;
	j->timed_out = true;
	job_answer(j);
	if (j->conn == NULL) {
		TAILQ_REMOVE(&j->rb->queue, j, link);
		job_free(j);
		return;
	}
	pg_conn_reset(j->conn->pg, "read-back query: no answer within the statement timeout");
}

static struct job *
job_new(struct readback *rb, struct httpd_req *r, enum job_kind kind)
{
	struct job *j = calloc(1, sizeof(*j));
	long ms = (long)rb->cfg->readback_statement_timeout_ms + DEADLINE_GRACE_MS;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (j == NULL)
		return NULL;
	j->rb = rb;
	j->req = r;
	j->kind = kind;
	if ((j->deadline = evtimer_new(rb->base, on_deadline, j)) == NULL ||
	    evtimer_add(j->deadline, &tv) == -1) {
		if (j->deadline != NULL)
			event_free(j->deadline);
		free(j);
		return NULL;
	}
	rb->njobs++;
	return j;
}

/* Queue J (its queries built) and have it started from the loop. */
static void
job_submit(struct job *j)
{
	httpd_req_on_gone(j->req, on_gone, j);
	TAILQ_INSERT_TAIL(&j->rb->queue, j, link);
	kick(j->rb);
}

/* ------------------------------------------------------------ routes */

static const struct rb_table *
served_table(const struct readback *rb, const char *family)
{
	for (size_t i = 0; i < rb->ntables; i++)
		if (strcmp(rb->tables[i].family, family) == 0)
			return &rb->tables[i];
	return NULL;
}

bool
readback_route(const char *path)
{
	return strcmp(path, "/events") == 0 || strncmp(path, "/events/", 8) == 0 ||
	       strncmp(path, "/requests/", 10) == 0 || strcmp(path, "/rejections") == 0 ||
	       strncmp(path, "/families/", 10) == 0;
}

/* GET /families/{name}/daily: the job, or NULL when R was answered (400,
 * 404, 500). */
static struct job *
daily_job(struct readback *rb, struct httpd_req *r, const char *path)
{
	const char *name = path + 10, *slash = strchr(name, '/');
	const struct rb_table *t = NULL;
	struct rb_params p;
	struct job *j;
	char family[64], err[300];

	if (slash == NULL || strcmp(slash, "/daily") != 0 || slash == name ||
	    (size_t)(slash - name) >= sizeof(family)) {
		httpd_reply_error(
		    r, 404, "not_found", "no such path: see GET /openapi.json", NULL, 0);
		return NULL;
	}
	snprintf(family, sizeof(family), "%.*s", (int)(slash - name), name);
	if (family_find(family) == NULL || (t = served_table(rb, family)) == NULL ||
	    t->daily == NULL) {
		httpd_reply_error(r, 404, "not_found",
		    family_find(family) == NULL ? "no such event family"
		    : t == NULL ? "family not served by this process ([server] families)"
				: "the family keeps no daily count",
		    NULL, 0);
		return NULL;
	}
	if (rb_params_parse(httpd_req_query(r), RB_P_DAY | RB_P_DAYS, true, &p, err, sizeof(err)) ==
	    -1) {
		httpd_reply_error(r, 400, "bad_request", err, NULL, 0);
		return NULL;
	}
	if (!(p.given & RB_P_DAY)) {
		struct timespec now;

		/* Today, UTC: the window's newest day. */
		clock_gettime(CLOCK_REALTIME, &now);
		p.day = pgsql_day((int64_t)now.tv_sec * 1000000);
	}
	if ((j = job_new(rb, r, JOB_DAILY)) == NULL)
		goto oom;
	j->nq = 1;
	j->table = t;
	j->day = p.day;
	j->days = p.days;
	if (rb_query_daily(t, p.day, p.days, &j->q[0]) == 0)
		return j;
	job_free(j);
oom:
	httpd_reply_error(r, 500, "internal", "out of memory", NULL, 0);
	return NULL;
}

/* The job of request R on PATH, its queries built; NULL when R was
 * answered (400, 500). */
static struct job *
job_of(struct readback *rb, struct httpd_req *r, const char *path)
{
	const char *query = httpd_req_query(r);
	struct rb_params p;
	struct job *j = NULL;
	char err[300], corr[37], msg[400];
	int rc = 0;

	if (strncmp(path, "/families/", 10) == 0)
		return daily_job(rb, r, path);
	if (strncmp(path, "/events/", 8) == 0 || strncmp(path, "/requests/", 10) == 0) {
		bool event = path[1] == 'e';

		if (!rb_correlation_id(path + (event ? 8 : 10), corr, err, sizeof(err))) {
			httpd_reply_error(r, 400, "bad_request", err, NULL, 0);
			return NULL;
		}
		if (rb_params_parse(query, 0, true, &p, err, sizeof(err)) == -1) {
			httpd_reply_error(r, 400, "bad_request", err, NULL, 0);
			return NULL;
		}
		if ((j = job_new(rb, r, event ? JOB_EVENT : JOB_REQUEST)) == NULL)
			goto oom;
		memcpy(j->corr, corr, sizeof(corr));
		j->nq = event ? 1 : 2;
		rc = event ? rb_query_event(rb->tables, rb->ntables, corr, &j->q[0])
			   : rb_query_request(rb->tables, rb->ntables, corr, &j->q[0]);
		if (rc == 0 && !event)
			rc = rb_query_request_rejections(corr, &j->q[1]);
	} else if (strcmp(path, "/events") == 0) {
		const struct rb_table *t;

		if (rb_params_parse(query,
			RB_P_FAMILY | RB_P_SINCE | RB_P_UNTIL | RB_P_TYPE | RB_P_LIMIT |
			    RB_P_CURSOR,
			true, &p, err, sizeof(err)) == -1) {
			httpd_reply_error(r, 400, "bad_request", err, NULL, 0);
			return NULL;
		}
		if (!(p.given & RB_P_FAMILY))
			snprintf(p.family, sizeof(p.family), "%s", rb->cfg->default_family);
		if ((t = served_table(rb, p.family)) == NULL) {
			snprintf(msg, sizeof(msg),
			    family_find(p.family) == NULL
				? "family: no such event family"
				: "family: not served by this process ([server] families)");
			httpd_reply_error(r, 400, "bad_request", msg, NULL, 0);
			return NULL;
		}
		if ((p.given & RB_P_TYPE) && t->type == NULL) {
			snprintf(msg, sizeof(msg), "type: family %s has no event type", t->family);
			httpd_reply_error(r, 400, "bad_request", msg, NULL, 0);
			return NULL;
		}
		if ((j = job_new(rb, r, JOB_EVENTS)) == NULL)
			goto oom;
		j->nq = 1;
		j->table = t;
		j->limit = p.limit;
		rc = rb_query_events(t, &p, &j->q[0]);
	} else {
		if (rb_params_parse(query,
			RB_P_FAMILY | RB_P_RULE | RB_P_SINCE | RB_P_UNTIL | RB_P_LIMIT |
			    RB_P_CURSOR,
			false, &p, err, sizeof(err)) == -1) {
			httpd_reply_error(r, 400, "bad_request", err, NULL, 0);
			return NULL;
		}
		if ((p.given & RB_P_FAMILY) && family_find(p.family) == NULL) {
			httpd_reply_error(
			    r, 400, "bad_request", "family: no such event family", NULL, 0);
			return NULL;
		}
		if ((p.given & RB_P_RULE) && !(p.given & RB_P_FAMILY)) {
			httpd_reply_error(r, 400, "bad_request",
			    "rule: needs family= (a rule is a word of one family's list)", NULL, 0);
			return NULL;
		}
		if ((j = job_new(rb, r, JOB_REJECTIONS)) == NULL)
			goto oom;
		j->nq = 1;
		j->limit = p.limit;
		rc = rb_query_rejections(&p, &j->q[0]);
	}
	if (rc == 0)
		return j;
	job_free(j);
oom:
	httpd_reply_error(r, 500, "internal", "out of memory", NULL, 0);
	return NULL;
}

static void
on_request(struct httpd_req *r, void *arg)
{
	struct readback *rb = arg;
	const char *path = httpd_req_path(r);
	struct job *j;
	bool any;

	if ((j = job_of(rb, r, path)) == NULL)
		return;
	/* Refused before any query: nothing to ask, or too much asked. */
	(void)free_conn(rb, &any);
	if (!any) {
		job_free(j);
		httpd_reply_error(r, 503, "postgres_unavailable",
		    "PostgreSQL is not reachable for reading (the log says why)", NULL, 5);
		return;
	}
	if ((int64_t)rb->njobs > rb->cfg->readback_max_queries) {
		job_free(j);
		httpd_reply_error(r, 503, "busy", "too many read-back queries at once", NULL, 1);
		return;
	}
	job_submit(j);
}

void
readback_head(struct readback *rb, struct httpd_req *r)
{
	if (!apikeys_check(rb->keys, r))
		return;
	/* A GET has no body; one sent anyway is read and ignored. */
	httpd_req_read_body(r, on_request, rb);
}

/* ------------------------------------------------------------ life */

struct readback *
readback_new(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
{
	struct readback *rb = calloc(1, sizeof(*rb));
	const struct config_family *fc;
	const char *conninfo = *cfg->readback_conninfo ? cfg->readback_conninfo : cfg->pg_conninfo;
	struct pg_conn_opts opts = {
	    .reply_timeout_ms = (unsigned)cfg->readback_statement_timeout_ms + DEADLINE_GRACE_MS,
	    .connect_timeout_ms = 5000,
	    .backoff_max_ms = 5000,
	};

	if (rb == NULL)
		goto oom;
	rb->base = base;
	rb->cfg = cfg;
	TAILQ_INIT(&rb->queue);
	while (family_served(cfg, rb->ntables) != NULL)
		rb->ntables++;
	rb->nconns = (size_t)cfg->readback_connections;
	if ((rb->keys = apikeys_new(cfg->api_keys)) == NULL ||
	    (rb->tables = calloc(rb->ntables ? rb->ntables : 1, sizeof(*rb->tables))) == NULL ||
	    (rb->conns = calloc(rb->nconns, sizeof(*rb->conns))) == NULL ||
	    (rb->kick = event_new(base, -1, 0, on_kick, rb)) == NULL)
		goto oom;
	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++)
		if (rb_table_of(fc, &rb->tables[i], err, errlen) == -1)
			goto fail;
	for (size_t i = 0; i < rb->nconns; i++) {
		rb->conns[i].rb = rb;
		rb->conns[i].pg =
		    pg_conn_new(base, conninfo, &opts, on_conn_state, &rb->conns[i], err, errlen);
		if (rb->conns[i].pg == NULL)
			goto fail;
	}
	return rb;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	readback_free(rb);
	return NULL;
}

void
readback_free(struct readback *rb)
{
	struct job *j;

	if (rb == NULL)
		return;
	rb->dying = true;
	while ((j = TAILQ_FIRST(&rb->queue)) != NULL) {
		TAILQ_REMOVE(&rb->queue, j, link);
		j->req = NULL; /* the server is closing its connections */
		job_free(j);
	}
	for (size_t i = 0; i < rb->nconns; i++) {
		/* Queries in flight are dropped without their callbacks. */
		j = rb->conns[i].job;
		pg_conn_free(rb->conns[i].pg);
		if (j != NULL)
			job_free(j);
	}
	if (rb->kick != NULL)
		event_free(rb->kick);
	free(rb->conns);
	free(rb->tables);
	apikeys_free(rb->keys);
	free(rb);
}
