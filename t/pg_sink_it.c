/*
 * t/pg_sink_it.c: pg_sink (and pg_conn under it) against a real PostgreSQL,
 * as TAP.  The program drives its own event loop; unlike the daemon it may
 * block (checks go through a plain blocking libpq connection, the server is
 * stopped and started with system()).
 *
 * Environment:
 *   COLLECTORD_PG_CONNINFO   the server (required; all tests skip without it)
 *   COLLECTORD_SQL_DIR       shared schema files (default $top_srcdir/sql, else
 *                            sql); the Holded family's are schemas/holded/sql
 *                            beside it, and its table is the one written
 *   COLLECTORD_PG_STOP_CMD   shell command stopping that server, e.g.
 *                            "pg_ctl -D DATA -w -m fast stop"
 *   COLLECTORD_PG_START_CMD  shell command starting it again, e.g.
 *                            "pg_ctl -D DATA -l LOG -w -o '-p PORT' start"
 *                            (both needed for the restart tests, else skipped)
 * The test owns the partitions events_20991231 .. events_21000103, dropped
 * at start, which hold all its rows.
 *
 * It defines getaddrinfo() to count the host names libc is asked to
 * resolve, so that it can tell that pg_conn keeps libpq from doing so.
 *
 * "pg_sink_it --bench [rows]" measures instead: rows/s of the plain
 * one-statement-per-round-trip way and of pg_sink's pipeline, for batch
 * sizes 1..1000 (500 is the enricher's default), with multi-row VALUES and with unnest() arrays;
 * then of COPY (binary and text) straight into the table and through a staging table, of
 * pg_sink with insert = copy, and of the dedup ledger's call followed by that
 * sink's COPY, one batch or three at a time (what the enricher's flushes do).
 * It uses (and truncates) the partition events_20980601.
 */
/* RTLD_NEXT, for the counting getaddrinfo() */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "config.h"
#include "dedup.h"
#include "family.h"
#include "log.h"
#include "pg_sink.h"
#include "pgsql.h"
#include "tap.h"

#define US(sec) ((int64_t)(sec)*INT64_C(1000000))
/* 2099-12-31 23:59:59.999999Z and the microsecond after, 2100-01-02 12:00Z */
#define DAY1_LAST (US(4102444799) + 999999)
#define DAY2_FIRST (US(4102444800))
#define DAY3_NOON (US(4102574400))
#define ACCOUNT "0d6f4c2a-3b8e-4f51-9a7c-2e1d5b6c7a80"
#define USER "9b1e7d3c-5a2f-4c6e-8d0b-1f3a5c7e9b24"
#define TYPE "Holded\\Wallet\\Domain\\Transaction\\Events\\WalletTransactionCreatedEvent"
#define MAXROWS 16

static struct event_base *base;
static PGconn *admin;
static const char *conninfo;
static char sql_dir[4096], family_dir[4096 + 32];
static const char *dirs[2] = {sql_dir, family_dir};
/* The Holded family's table, as the daemon hands it to the sink. */
static struct pgsql_table table;
static struct pgsql_column table_cols[CODEC_ROW_MAX];
static struct config *fam_cfg; /* owns the names TABLE borrows */

/* How the sinks of the tests insert: each test runs once per mode. */
static struct pg_sink_opts mode;

#define SINK_NEW(ci, opts, err)                                                                    \
	pg_sink_new(                                                                               \
	    base, (ci), dirs, 2, &table, 1, (opts) != NULL ? (opts) : &mode, (err), sizeof(err))

/* The index of column NAME of the table; aborts the run when it has none. */
static size_t
col(const char *name)
{
	for (size_t i = 0; i < table.ncolumns; i++)
		if (strcmp(table.columns[i].name, name) == 0)
			return i;
	printf("Bail out! the table has no column %s\n", name);
	exit(1);
}
static int name_lookups; /* getaddrinfo() calls for a name, not a literal */

/* Replaces libc's for the whole process, libpq included. */
int
getaddrinfo(
    const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	unsigned char a[sizeof(struct in6_addr)];

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
	if (real == NULL)
		return EAI_SYSTEM;
	if (node != NULL && *node != '/' && inet_pton(AF_INET, node, a) != 1 &&
	    inet_pton(AF_INET6, node, a) != 1)
		name_lookups++;
	return real(node, service, hints, res);
}

/* ---------------------------------------------------------------- rows */

struct trow {
	struct pg_row row;
	const char *v[CODEC_ROW_MAX];
	char corr[40], msg[40], data[1024];
};

static void
trow_init(struct trow *t, int64_t ts, unsigned req, uint32_t idx)
{
	char when[PGSQL_TIMESTAMP_SIZE];

	if (pgsql_timestamp(ts, when, sizeof(when)) == -1)
		snprintf(when, sizeof(when), "?");
	snprintf(t->corr, sizeof(t->corr), "0190d2c4-1f00-7abc-8def-%04x%08x", req & 0xffff, idx);
	snprintf(t->msg, sizeof(t->msg), "6c1f0e8a-2d4b-4a9c-b7e3-%04x%08x", req & 0xffff, idx);
	snprintf(t->data, sizeof(t->data),
	    "{\"data\": {\"id\": \"tx-%u-%u\", \"amount\": 149.9}, \"attributes\": {\"type\": "
	    "\"Holded\\\\Wallet\\\\Domain\\\\Transaction\\\\Events\\\\WalletTransactionCreatedEvent"
	    "\", \"targetSubscription\": \"Wallet\", \"timestampStamp\": \"%s\", "
	    "\"messageIdStamp\": \"%s\", \"newContextStamp\": {\"accountId\": \"" ACCOUNT
	    "\", \"userId\": \"" USER "\", \"requestPlatform\": \"web\"}, "
	    "\"amplitudeTrackStamp\": {\"id\": 48213, \"trackedDevice\": \"android\"}}, "
	    "\"metadata\": {\"correlationId\": \"%s\", \"publishTime\": "
	    "\"2026-11-20T09:15:02.913Z\", \"schemaId\": 1}}",
	    req, idx, when, t->msg, t->corr);
	t->v[col("message_id_stamp")] = t->msg;
	t->v[col("correlation_id")] = t->corr;
	t->v[col("type")] = TYPE;
	t->v[col("target_subscription")] = "Wallet";
	t->v[col("new_context_account_id")] = ACCOUNT;
	t->v[col("new_context_user_id")] = USER;
	t->v[col("data")] = t->data;
	t->row = (struct pg_row){.partition_us = ts, .values = t->v};
}

/* ---------------------------------------------------------------- admin */

static void
admin_connect(void)
{
	if (admin != NULL && PQstatus(admin) == CONNECTION_OK)
		return;
	PQfinish(admin);
	admin = PQconnectdb(conninfo);
	if (PQstatus(admin) != CONNECTION_OK)
		printf("# admin connection: %s", PQerrorMessage(admin));
	PQclear(PQexec(admin, "SET client_min_messages = warning; SET TimeZone = 'UTC'"));
}

static void __attribute__((format(printf, 1, 2))) exec(const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	PGresult *res;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	admin_connect();
	res = PQexec(admin, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		printf("# %s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
}

/* First column of the first row as a string (caller frees), NULL if none. */
static char *__attribute__((format(printf, 1, 2))) scalar(const char *fmt, ...)
{
	char sql[2048], *s = NULL;
	va_list ap;
	PGresult *res;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	admin_connect();
	res = PQexec(admin, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		s = strdup(PQgetvalue(res, 0, 0));
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		printf("# %s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	return s;
}

/* Rows of request REQ in the table. */
static long long
request_rows(unsigned req)
{
	char *s = scalar(
	    "SELECT count(*) FROM events WHERE correlation_id BETWEEN "
	    "'0190d2c4-1f00-7abc-8def-%04x00000000' AND '0190d2c4-1f00-7abc-8def-%04xffffffff'",
	    req, req);
	long long n = s != NULL ? atoll(s) : -1;

	free(s);
	return n;
}

/* ---------------------------------------------------------------- loop */

struct done {
	int fired;
	int order;
	bool during_write;
	enum pg_sink_outcome outcome;
	char err[512];
	bool free_sink; /* pg_sink_free from inside the callback */
};

static int done_seq;
static bool in_write;

static void
on_done(struct pg_sink *sink, void *arg, enum pg_sink_outcome outcome, const char *err)
{
	struct done *d = arg;

	d->fired++;
	d->order = ++done_seq;
	d->during_write = d->during_write || in_write;
	d->outcome = outcome;
	snprintf(d->err, sizeof(d->err), "%s", err != NULL ? err : "");
	if (d->free_sink)
		pg_sink_free(sink);
}

static int
write_rows(struct pg_sink *s, const struct trow *t, size_t n, struct done *d)
{
	struct pg_row rows[MAXROWS];
	char err[256];
	int r;

	for (size_t i = 0; i < n && i < MAXROWS; i++) {
		rows[i] = t[i].row;
		rows[i].values = t[i].v; /* the copy's own, not the original's */
	}
	in_write = true;
	r = pg_sink_write(s, 0, rows, n, on_done, d, err, sizeof(err));
	in_write = false;
	if (r == -1)
		printf("# pg_sink_write: %s\n", err);
	return r;
}

/* Run the loop until COND holds; false if the loop ran dry first. */
static bool
run_until(bool (*cond)(const void *), const void *ctx)
{
	while (!cond(ctx))
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			return false;
	return true;
}

static bool
fired(const void *ctx)
{
	return ((const struct done *)ctx)->fired > 0;
}

static bool
all_fired(const void *ctx)
{
	const struct done *const *d = ctx;

	for (; *d != NULL; d++)
		if ((*d)->fired == 0)
			return false;
	return true;
}

struct want_state {
	struct pg_sink *sink;
	enum pg_conn_state state;
	char err[512];
};

static bool
state_is(const void *ctx)
{
	struct want_state *w = (struct want_state *)ctx;

	return pg_sink_state(w->sink, w->err, sizeof(w->err)) == w->state;
}

static bool
is_ok(const struct done *d, const char *what)
{
	if (!ok(d->fired == 1 && d->outcome == PG_SINK_OK && !d->during_write,
		"%s: committed, callback once, after the write returned", what))
		printf("#   fired=%d outcome=%d during_write=%d err=%s\n", d->fired, d->outcome,
		    d->during_write, d->err);
	return d->fired == 1 && d->outcome == PG_SINK_OK;
}

/* ---------------------------------------------------------------- tests */

/* pg_conn alone: what pg_sink relies on. */
struct cres {
	int fired;
	bool failed, had_res;
	char value[64], err[512];
};

static void
on_cres(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct cres *r = arg;

	(void)conn;
	r->fired++;
	r->failed = err != NULL;
	r->had_res = res != NULL;
	snprintf(r->err, sizeof(r->err), "%s", err != NULL ? err : "");
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		snprintf(r->value, sizeof(r->value), "%s", PQgetvalue(res, 0, 0));
}

struct cstate {
	int ups, downs;
	char err[512];
};

static void
on_cstate(struct pg_conn *conn, void *arg, enum pg_conn_state state, const char *err)
{
	struct cstate *st = arg;

	(void)conn;
	if (state == PG_CONN_UP) {
		st->ups++;
	} else if (state == PG_CONN_DOWN) {
		st->downs++;
		snprintf(st->err, sizeof(st->err), "%s", err != NULL ? err : "");
	}
}

static bool
cres_fired(const void *ctx)
{
	return ((const struct cres *)ctx)->fired > 0;
}

static bool
ups_at_least(const void *ctx)
{
	const struct cstate *st = ((const struct cstate *const *)ctx)[0];
	const int *want = ((const int *const *)ctx)[1];

	return st->ups >= *want;
}

static void
test_pg_conn(void)
{
	struct pg_conn_opts opts = {.reply_timeout_ms = 2000};
	struct cstate st = {0};
	struct cres q1 = {0}, s1 = {0}, e1 = {0}, e2 = {0}, s2 = {0}, q3 = {0}, s3 = {0},
		    simple = {0}, r1 = {0}, t1 = {0}, t2 = {0};
	const char *v[1] = {"41"};
	const void *ctx[2];
	int want = 1;
	char err[256];
	struct pg_conn *c = pg_conn_new(base, conninfo, &opts, on_cstate, &st, err, sizeof(err));

	ctx[0] = &st;
	ctx[1] = &want;
	if (!ok(c != NULL, "pg_conn_new")) {
		printf("# %s\n", err);
		return;
	}
	ok(st.ups == 0 && st.downs == 0, "no state callback from inside pg_conn_new");
	ok(run_until(ups_at_least, ctx), "pg_conn comes UP");

	ok(pg_conn_query(c, "SELECT $1::int + 1", 1, v, on_cres, &q1, err, sizeof(err)) == 0 &&
		pg_conn_sync(c, on_cres, &s1, err, sizeof(err)) == 0 &&
		pg_conn_query(c, "SELECT 1/0", 0, NULL, on_cres, &e1, err, sizeof(err)) == 0 &&
		pg_conn_query(c, "SELECT 2", 0, NULL, on_cres, &e2, err, sizeof(err)) == 0 &&
		pg_conn_sync(c, on_cres, &s2, err, sizeof(err)) == 0 &&
		pg_conn_query(c, "SELECT 3", 0, NULL, on_cres, &q3, err, sizeof(err)) == 0 &&
		pg_conn_sync(c, on_cres, &s3, err, sizeof(err)) == 0,
	    "three pipeline segments queued at once");
	ok(q1.fired == 0, "no result callback from inside the send");
	ok(run_until(cres_fired, &s3), "all answered");
	ok(q1.fired == 1 && !q1.failed && strcmp(q1.value, "42") == 0 && !s1.failed,
	    "first segment: its result, then its sync");
	ok(e1.failed && strstr(e1.err, "division by zero (SQLSTATE 22012)") != NULL,
	    "failing statement reports SQLSTATE: %s", e1.err);
	ok(e2.failed && e2.had_res && strstr(e2.err, "skipped") != NULL,
	    "the statement after it is skipped");
	ok(s2.failed && s2.had_res && strstr(s2.err, "division by zero") != NULL,
	    "the sync reports the segment's first error");
	ok(!q3.failed && strcmp(q3.value, "3") == 0 && !s3.failed,
	    "the next segment runs normally");
	ok(pg_conn_idle(c), "idle once everything is answered");

	ok(pg_conn_simple(c, "SELECT 1; SELECT 'last'", on_cres, &simple, err, sizeof(err)) == 0,
	    "simple query with two statements");
	ok(pg_conn_query(c, "SELECT 1", 0, NULL, on_cres, &r1, err, sizeof(err)) == -1,
	    "pipelined query refused while a simple query runs: %s", err);
	ok(run_until(cres_fired, &simple) && !simple.failed && strcmp(simple.value, "last") == 0,
	    "simple query gives its last result");

	ok(pg_conn_query(c, "SELECT 5", 0, NULL, on_cres, &r1, err, sizeof(err)) == 0,
	    "query before a reset");
	pg_conn_reset(c, "test reset");
	ok(r1.fired == 0 && st.downs == 0, "pg_conn_reset calls nothing back by itself");
	want = 2;
	ok(run_until(ups_at_least, ctx), "a new session comes UP after the reset");
	ok(r1.fired == 1 && r1.failed && !r1.had_res && st.downs == 1 &&
		strstr(st.err, "test reset") != NULL,
	    "the in-flight query failed without a result, then DOWN with the reason");

	ok(pg_conn_query(c, "SELECT pg_sleep(60) /* pg_sink_it */", 0, NULL, on_cres, &t1, err,
	       sizeof(err)) == 0 &&
		pg_conn_sync(c, on_cres, &t2, err, sizeof(err)) == 0,
	    "a query that outlasts the reply timeout");
	want = 3;
	ok(run_until(ups_at_least, ctx), "the session is replaced");
	ok(t1.failed && t2.failed && strstr(st.err, "no reply from the server") != NULL,
	    "its callbacks failed and DOWN said: %s", st.err);
	exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	     "WHERE query LIKE 'SELECT pg_sleep(60) /* pg_sink_it */%%' AND pid <> "
	     "pg_backend_pid()");
	pg_conn_free(c);
	pg_conn_free(NULL);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* run_until, giving up after MS: what must not happen may be a session
 * that stays up, and the loop would never run dry. */
static bool
run_until_ms(bool (*cond)(const void *), const void *ctx, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	bool expired = false;
	struct event *t = evtimer_new(base, on_deadline, &expired);

	if (t == NULL || evtimer_add(t, &tv) == -1)
		expired = true;
	while (!cond(ctx) && !expired)
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			break;
	if (t != NULL)
		event_free(t);
	return cond(ctx);
}

static bool
downs_at_least(const void *ctx)
{
	const struct cstate *st = ((const struct cstate *const *)ctx)[0];
	const int *want = ((const int *const *)ctx)[1];

	return st->downs >= *want;
}

/* host=NAME: resolved by evdns, never by libpq on the loop. */
static void
test_pg_conn_names(void)
{
	struct pg_conn_opts opts = {.backoff_min_ms = 50, .backoff_max_ms = 100};
	struct cstate st = {0}, bad = {0}, second = {0}, gone = {0};
	struct cres q = {0}, sync = {0};
	const void *ctx[2];
	int want = 1, lookups;
	char ci[1024], err[256];
	/* over 63 characters, a label no DNS name may have: evdns refuses it
	 * at once, without a query, so the test needs no network */
	const char *unresolvable = "a123456789b123456789c123456789d123456789e123456789f123456789"
				   "g1234.invalid";
	struct pg_conn *c;

	if (strstr(conninfo, "://") != NULL) {
		ok(1, "# SKIP host names: COLLECTORD_PG_CONNINFO is a URI");
		return;
	}
	/* later keywords win: the same server, named, with no hostaddr */
	snprintf(ci, sizeof(ci), "%s host=localhost hostaddr=''", conninfo);
	lookups = name_lookups;
	c = pg_conn_new(base, ci, &opts, on_cstate, &st, err, sizeof(err));
	ctx[0] = &st;
	ctx[1] = &want;
	if (!ok(c != NULL, "pg_conn_new with host=localhost")) {
		printf("# %s\n", err);
		return;
	}
	ok(run_until_ms(ups_at_least, ctx, 10000), "host=localhost comes UP (%s)", st.err);
	ok(pg_conn_query(c, "SELECT 7", 0, NULL, on_cres, &q, err, sizeof(err)) == 0 &&
		pg_conn_sync(c, on_cres, &sync, err, sizeof(err)) == 0 &&
		run_until(cres_fired, &sync) && strcmp(q.value, "7") == 0,
	    "and answers a query");
	is_int(name_lookups - lookups, 0, "libpq resolved no name itself");
	pg_conn_free(c);

	snprintf(ci, sizeof(ci), "%s host=%s hostaddr=''", conninfo, unresolvable);
	c = pg_conn_new(base, ci, &opts, on_cstate, &bad, err, sizeof(err));
	ctx[0] = &bad;
	want = 2;
	ok(c != NULL && run_until_ms(downs_at_least, ctx, 10000),
	    "an unresolvable name: DOWN, and retried");
	ok(bad.ups == 0 && strncmp(bad.err, "cannot resolve ", 15) == 0 &&
		strstr(bad.err, unresolvable) != NULL,
	    "the attempt fails naming the host: %s", bad.err);
	pg_conn_free(c);

	/* one bad name fails the whole attempt, even after a good one */
	snprintf(ci, sizeof(ci), "%s host=localhost,%s hostaddr=''", conninfo, unresolvable);
	c = pg_conn_new(base, ci, &opts, on_cstate, &second, err, sizeof(err));
	ctx[0] = &second;
	want = 1;
	ok(c != NULL && run_until_ms(downs_at_least, ctx, 10000) && second.ups == 0 &&
		strstr(second.err, unresolvable) != NULL,
	    "host=localhost,UNRESOLVABLE: DOWN naming the second: %s", second.err);
	pg_conn_free(c);

	/* not in /etc/hosts: a real query goes out, and is abandoned */
	snprintf(ci, sizeof(ci), "%s host=pg-sink-it.invalid hostaddr=''", conninfo);
	c = pg_conn_new(base, ci, &opts, on_cstate, &gone, err, sizeof(err));
	if (ok(c != NULL, "pg_conn_new with a name that needs the DNS")) {
		/* one pass: the attempt's timer fires and the query leaves; a
		 * non-blocking loop would go on passing while events keep
		 * coming, the answer among them */
		event_base_loop(base, EVLOOP_ONCE);
		pg_conn_free(c);
		for (int i = 0; i < 5; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
		ok(gone.ups == 0 && gone.downs == 0,
		    "freed while its lookup is in flight: no callback after the free");
	}
	is_int(name_lookups - lookups, 0, "still no name resolved by libpq");
}

static void
test_partitions_and_replay(struct pg_sink *sink)
{
	struct trow t[8];
	struct done d1 = {0}, d2 = {0}, d3 = {0};
	char name[32], *s;

	/* request 0xe571: events 0 (day 1), 1 and ffffffff (day 2); its
	 * neighbours 0xe570 (last event) and 0xe572 around it */
	trow_init(&t[0], DAY1_LAST, 0xe571, 0);
	trow_init(&t[1], DAY2_FIRST, 0xe571, 1);
	trow_init(&t[2], DAY2_FIRST + 5, 0xe571, 0xffffffff);
	trow_init(&t[3], DAY1_LAST - 5, 0xe570, 0xffffffff);
	trow_init(&t[4], DAY1_LAST - 7, 0xe572, 0);
	trow_init(&t[5], DAY2_FIRST + 7, 0xe572, 1);

	ok(write_rows(sink, t, 6, &d1) == 0, "write six rows over two days");
	is_int((long long)pg_sink_pending(sink), 6, "six rows pending before the loop runs");
	ok(d1.fired == 0, "no callback from inside pg_sink_write");
	ok(run_until(fired, &d1), "loop delivers the callback");
	is_ok(&d1, "two-day batch");
	is_int((long long)pg_sink_pending(sink), 0, "nothing pending after the callback");

	s = scalar("SELECT count(*) FROM events_20991231");
	is_str(s, "3", "three rows in partition events_20991231");
	free(s);
	s = scalar("SELECT count(*) FROM events_21000101");
	is_str(s, "3", "three rows in partition events_21000101");
	free(s);
	s = scalar("SELECT pg_get_expr(relpartbound, oid) FROM pg_class "
		   "WHERE relname = 'events_20991231'");
	is_str(s, "FOR VALUES FROM ('2099-12-31 00:00:00+00') TO ('2100-01-01 00:00:00+00')",
	    "partition bounds are the UTC day");
	free(s);
	s = scalar("SELECT events_ensure_partition('2100-01-01 00:00:00+00')");
	ok(pgsql_partition_name("events", DAY2_FIRST, name, sizeof(name)) == 0, "C partition name");
	is_str(s, name, "SQL and C agree on the partition name");
	free(s);

	ok(write_rows(sink, t, 6, &d2) == 0, "replay the same six rows");
	ok(run_until(fired, &d2), "replay completes");
	is_ok(&d2, "replay");
	s = scalar("SELECT count(*) FROM events WHERE timestamp_stamp >= '2099-12-31' AND "
		   "timestamp_stamp < '2100-01-02'");
	is_str(s, "6", "replay inserted nothing (ON CONFLICT DO NOTHING)");
	free(s);

	/* after a restart the first batch holds stored rows and new ones */
	trow_init(&t[6], DAY2_FIRST + 9, 0xe57b, 0);
	trow_init(&t[7], DAY2_FIRST + 10, 0xe57b, 1);
	ok(write_rows(sink, t, 8, &d3) == 0 && run_until(fired, &d3),
	    "replay the six rows with two new ones");
	is_ok(&d3, "replay with new rows");
	is_int(request_rows(0xe57b), 2, "the new rows are in");
	is_int(request_rows(0xe571), 3, "the replayed ones still once");
}

static void
test_events_of_request(void)
{
	char *s;

	s = scalar("SELECT string_agg(right(correlation_id::text, 8), ',' ORDER BY correlation_id) "
		   "FROM events_of_request('0190d2c4-1f00-7abc-8def-e57100000001')");
	is_str(s, "00000000,00000001,ffffffff",
	    "events_of_request: exactly the request's three events, in order");
	free(s);
	s = scalar(
	    "SELECT count(*) FROM events_of_request('0190d2c4-1f00-7abc-8def-e570ffffffff')");
	is_str(s, "1", "events_of_request from the neighbour's last event finds only it");
	free(s);
	/* tiny test partitions would be scanned sequentially; the point is
	 * that the inlined function can use the index at all */
	exec("SET enable_seqscan = off");
	{
		PGresult *res;
		char plan[8192] = "";

		admin_connect();
		res = PQexec(admin, "EXPLAIN SELECT * FROM "
				    "events_of_request('0190d2c4-1f00-7abc-8def-e57100000001')");
		for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
			strncat(plan, PQgetvalue(res, i, 0), sizeof(plan) - strlen(plan) - 2);
			strncat(plan, "\n", sizeof(plan) - strlen(plan) - 1);
		}
		PQclear(res);
		if (!ok(strstr(plan, "on events_20991231_correlation_id_timestamp_stamp_idx") !=
				NULL &&
			    strstr(plan, "Index Cond: ((correlation_id >= ") != NULL &&
			    strstr(plan, "Seq Scan") == NULL,
			"events_of_request is an index range scan on correlation_id"))
			printf("# plan:\n%s\n", plan);
	}
	exec("RESET enable_seqscan");
}

static void
test_order_and_validation(struct pg_sink *sink)
{
	struct trow t[3];
	struct done d[4] = {{0}};
	const struct done *all[] = {&d[0], &d[1], &d[2], &d[3], NULL};
	struct pg_row bad;
	char err[256];

	for (int i = 0; i < 3; i++)
		trow_init(&t[i], DAY2_FIRST + 100 + i, 0xe573, (uint32_t)i);
	ok(write_rows(sink, &t[0], 1, &d[0]) == 0 && write_rows(sink, &t[1], 1, &d[1]) == 0 &&
		write_rows(sink, NULL, 0, &d[2]) == 0 && write_rows(sink, &t[2], 1, &d[3]) == 0,
	    "four writes queued at once (one of them empty)");
	ok(run_until(all_fired, all), "all four complete");
	ok(d[0].order < d[1].order && d[1].order < d[2].order && d[2].order < d[3].order,
	    "callbacks fire in submission order");
	ok(d[2].fired == 1 && d[2].outcome == PG_SINK_OK && !d[2].during_write,
	    "empty batch completes from the loop");
	is_int(request_rows(0xe573), 3, "their rows are in");

	ok(pg_sink_write(sink, 1, &t[0].row, 1, on_done, &d[0], err, sizeof(err)) == -1 &&
		strcmp(err, "no table 1") == 0,
	    "a table the sink was not given refused synchronously");
	bad = t[0].row;
	bad.partition_us = US(253402300800);
	ok(pg_sink_write(sink, 0, &bad, 1, on_done, &d[0], err, sizeof(err)) == -1 &&
		strstr(err, "timestamp") != NULL,
	    "timestamp past 9999 refused synchronously");
	is_int(d[0].fired, 1, "refused writes never call back");
}

static void
test_rejected(struct pg_sink *sink)
{
	struct trow t[4];
	struct done bad = {0}, good = {0}, null = {0};
	const struct done *all[] = {&bad, &good, &null, NULL};
	char *s;

	trow_init(&t[0], DAY3_NOON, 0xe574, 0);
	trow_init(&t[1], DAY3_NOON + 1, 0xe574, 1);
	t[1].v[col("message_id_stamp")] = "not-a-uuid";
	trow_init(&t[3], DAY3_NOON + 2, 0xe574, 2);
	t[3].v[col("new_context_user_id")] = NULL;
	trow_init(&t[2], DAY1_LAST - 100, 0xe575, 0);
	ok(write_rows(sink, t, 2, &bad) == 0 && write_rows(sink, &t[2], 1, &good) == 0 &&
		write_rows(sink, &t[3], 1, &null) == 0,
	    "a batch with an invalid uuid, a good one behind it, one with a NULL");
	ok(run_until(all_fired, all), "all three complete");
	ok(null.fired == 1 && null.outcome == PG_SINK_REJECTED &&
		strstr(null.err, "new_context_user_id") != NULL,
	    "a NULL in a NOT NULL column is SQL NULL, rejected as data naming it: %s", null.err);
	ok(bad.fired == 1 && bad.outcome == PG_SINK_REJECTED &&
		strstr(bad.err, "invalid input syntax for type uuid") != NULL,
	    "bad batch reported once as PG_SINK_REJECTED with the server's reason");
	printf("# rejected: %s\n", bad.err);
	is_ok(&good, "batch behind the rejected one");
	ok(bad.order < good.order, "the rejection is reported first");
	is_int(request_rows(0xe574), 0, "nothing of the rejected batch was written");
	s = scalar("SELECT count(*) FROM pg_class WHERE relname = 'events_21000102'");
	is_str(s, "0", "its partition was rolled back with it");
	free(s);
}

/* A partition dropped behind the sink's back: its day cache is stale. */
static void
test_stale_partition(struct pg_sink *sink)
{
	struct trow t[2];
	struct done d1 = {0}, d2 = {0};

	trow_init(&t[0], DAY3_NOON + US(86400), 0xe579, 0);
	trow_init(&t[1], DAY3_NOON + US(86400) + 1, 0xe579, 1);
	ok(write_rows(sink, &t[0], 1, &d1) == 0 && run_until(fired, &d1), "row on a new day");
	is_ok(&d1, "new day");
	exec("DROP TABLE events_21000103");
	ok(write_rows(sink, &t[1], 1, &d2) == 0 && run_until(fired, &d2),
	    "another row that day, after its partition was dropped");
	is_ok(&d2, "stale partition cache");
	is_int(request_rows(0xe579), 1, "the partition was created again for it");
}

static bool
run_cmd(const char *what, const char *cmd)
{
	int rc;

	char full[4096];

	/* whatever the command prints must not mix with TAP on stdout */
	snprintf(full, sizeof(full), "(%s) 1>&2", cmd);
	printf("# %s: %s\n", what, cmd);
	fflush(stdout);
	rc = system(full);
	if (rc != 0)
		printf("# %s exited %d\n", what, rc);
	return rc == 0;
}

static void
test_restart(struct pg_sink *sink, const char *stop_cmd, const char *start_cmd)
{
	struct trow b1[3], b2[3];
	struct done d1 = {0}, d2 = {0}, d3 = {0};
	const struct done *all[] = {&d1, &d2, NULL};
	struct want_state down = {sink, PG_CONN_DOWN, ""}, up = {sink, PG_CONN_UP, ""};
	struct pg_sink *doomed;
	char err[256];

	for (int i = 0; i < 3; i++) {
		trow_init(&b1[i], DAY2_FIRST + 200 + i, 0xe576, (uint32_t)i);
		trow_init(&b2[i], DAY2_FIRST + 300 + i, 0xe577, (uint32_t)i);
	}
	ok(write_rows(sink, b1, 3, &d1) == 0, "write a batch");
	/* one pass flushes it to the server, whose fate is then unknown */
	event_base_loop(base, EVLOOP_NONBLOCK);
	ok(run_cmd("stop", stop_cmd), "server stopped while the batch is in flight");
	ok(write_rows(sink, b2, 3, &d2) == 0, "write another batch while the server is down");
	ok(run_until(state_is, &down), "sink reports DOWN");
	ok(down.err[0] != '\0', "with the error: %s", down.err);
	is_int((long long)pg_sink_pending(sink), (d1.fired ? 0 : 3) + 3,
	    "rows still pending while down");

	doomed = SINK_NEW(conninfo, NULL, err);
	ok(doomed != NULL, "a sink can be created while the server is down");
	if (doomed != NULL) {
		ok(write_rows(doomed, b1, 1, &d3) == 0, "and take a write");
		pg_sink_free(doomed);
		ok(d3.fired == 1 && d3.outcome == PG_SINK_ABORTED,
		    "pg_sink_free calls the pending callback once with PG_SINK_ABORTED");
	}

	ok(run_cmd("start", start_cmd), "server started again");
	ok(run_until(all_fired, all), "both batches complete after the restart");
	is_ok(&d1, "batch in flight at the stop");
	is_ok(&d2, "batch written while down");
	ok(d1.order < d2.order, "in submission order");
	PQfinish(admin); /* its session died with the server */
	admin = NULL;
	is_int(request_rows(0xe576), 3, "in-flight batch stored exactly once");
	is_int(request_rows(0xe577), 3, "batch written while down stored exactly once");
	ok(run_until(state_is, &up), "sink reports UP again");
}

/* Enrichers starting together apply the schema one at a time. */
static void
test_concurrent_setup(void)
{
	struct pg_sink *s[4];
	struct want_state up[4];
	char err[256];
	int n = 0;

	for (int i = 0; i < 4; i++) {
		s[i] = SINK_NEW(conninfo, NULL, err);
		up[i] = (struct want_state){s[i], PG_CONN_UP, ""};
	}
	for (int i = 0; i < 4; i++)
		if (s[i] != NULL && run_until(state_is, &up[i]))
			n++;
	is_int(n, 4, "four sinks set up concurrently all come UP");
	for (int i = 0; i < 4; i++)
		pg_sink_free(s[i]);
}

/* A schema file the server refuses keeps the sink DOWN, naming the file. */
static void
test_bad_setup(void)
{
	char dir[] = "/tmp/pg_sink_it.XXXXXX", path[64], err[256];
	struct want_state down = {NULL, PG_CONN_DOWN, ""};
	struct pg_sink *bad;
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/001_bad.sql", dir);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs("SELEC 1;\n", f);
		fclose(f);
	}
	{
		const char *one[] = {dir};

		bad = pg_sink_new(base, conninfo, one, 1, &table, 1, NULL, err, sizeof(err));
	}
	ok(bad != NULL, "sink with a broken schema file is created");
	if (bad != NULL) {
		down.sink = bad;
		ok(run_until(state_is, &down) && strstr(down.err, "001_bad.sql") != NULL &&
			strstr(down.err, "syntax error") != NULL,
		    "it stays DOWN and says why: %s", down.err);
		pg_sink_free(bad);
	}
	unlink(path);
	rmdir(dir);
}

static void
test_free_from_callback(struct pg_sink *sink)
{
	struct trow t[2];
	struct done first = {.free_sink = true}, second = {0};

	trow_init(&t[0], DAY2_FIRST + 400, 0xe578, 0);
	trow_init(&t[1], DAY2_FIRST + 401, 0xe578, 1);
	ok(write_rows(sink, &t[0], 1, &first) == 0 && write_rows(sink, &t[1], 1, &second) == 0,
	    "two writes; the first callback frees the sink");
	ok(run_until(fired, &second), "the second callback still fires");
	ok(first.fired == 1 && second.fired == 1 && first.order < second.order,
	    "each once, in order");
	ok(second.outcome == PG_SINK_OK || second.outcome == PG_SINK_ABORTED,
	    "the second is OK or ABORTED (%d)", second.outcome);
}

/* ---------------------------------------------------------------- bench */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define BENCH_DAY US(4052462400) /* 2098-06-01 12:00Z */

struct bench {
	size_t nrows;
	struct trow *rows;
	PGconn *pg;
	unsigned run;
	char *ensure; /* the table's ensure-partition call */
};

static void
bench_rows(struct bench *b)
{
	b->run++;
	for (size_t i = 0; i < b->nrows; i++)
		trow_init(&b->rows[i], BENCH_DAY + (int64_t)i, b->run, (uint32_t)i);
}

/* How many rows the batch starting at row NEXT holds: BATCH, or what is left. */
static size_t
bench_batch_len(const struct bench *b, size_t next, size_t batch)
{
	return b->nrows - next < batch ? b->nrows - next : batch;
}

/* Rows AT..AT+N-1 as pg_sink_write takes them, into ROWS. */
static void
bench_pg_rows(const struct bench *b, size_t at, size_t n, struct pg_row *rows)
{
	for (size_t i = 0; i < n; i++)
		rows[i] = b->rows[at + i].row;
}

static bool
bench_ok(PGresult *res)
{
	bool good =
	    PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!good)
		printf("# bench: %s", PQresultErrorMessage(res));
	PQclear(res);
	return good;
}

/* Plain libpq, each statement waits for its answer.  FULL: BEGIN, ensure,
 * INSERT, COMMIT per batch; else the INSERT alone in autocommit. */
static double
bench_plain(struct bench *b, size_t batch, bool unnest, bool full)
{
	static const char *params[PGSQL_MAX_COLUMNS * 1000];
	char ts[PGSQL_TIMESTAMP_SIZE];
	const char *ensure[1] = {ts};
	double t0;

	bench_rows(b);
	if (pgsql_timestamp(BENCH_DAY, ts, sizeof(ts)) == -1 || batch > 1000)
		return 0;
	t0 = now_s();
	for (size_t at = 0; at < b->nrows; at += batch) {
		size_t n = b->nrows - at < batch ? b->nrows - at : batch;
		PGresult *res;

		if (full &&
		    (!bench_ok(PQexec(b->pg, "BEGIN")) ||
			!bench_ok(PQexecParams(b->pg, b->ensure, 1, NULL, ensure, NULL, NULL, 0))))
			return 0;
		if (unnest) {
			char *arrays[PGSQL_MAX_COLUMNS] = {0};

			for (size_t c = 0; c < table.ncolumns; c++) {
				struct pgsql_array *a = pgsql_array_new(n * 64);

				for (size_t i = 0; i < n; i++) {
					const struct trow *r = &b->rows[at + i];
					char rts[PGSQL_TIMESTAMP_SIZE];
					const char *v = r->v[c];

					if (c == table.partition_column &&
					    pgsql_timestamp(
						r->row.partition_us, rts, sizeof(rts)) == 0)
						v = rts;
					if (pgsql_array_add(a, v) == -1)
						break;
				}
				arrays[c] = pgsql_array_finish(a);
			}
			res = PQexecPrepared(b->pg, "bench_unnest", (int)table.ncolumns,
			    (const char *const *)arrays, NULL, NULL, 0);
			for (size_t c = 0; c < table.ncolumns; c++)
				free(arrays[c]);
		} else {
			char *sql = pgsql_insert_values_sql(&table, n);
			char(*tss)[PGSQL_TIMESTAMP_SIZE] = malloc(n * sizeof(*tss));
			size_t nc = table.ncolumns;

			for (size_t i = 0; i < n; i++) {
				const struct trow *r = &b->rows[at + i];

				if (pgsql_timestamp(r->row.partition_us, tss[i], sizeof(tss[i])) ==
				    -1)
					tss[i][0] = '\0';
				for (size_t c = 0; c < nc; c++)
					params[i * nc + c] =
					    c == table.partition_column ? tss[i] : r->v[c];
			}
			res = PQexecParams(b->pg, sql, (int)(n * nc), NULL, params, NULL, NULL, 0);
			free(sql);
			free(tss);
		}
		if (!bench_ok(res) || (full && !bench_ok(PQexec(b->pg, "COMMIT"))))
			return 0;
	}
	return (double)b->nrows / (now_s() - t0);
}

/*
 * COPY over plain libpq, one simple query per batch: the ensure call, the
 * COPY and, when STAGE, the INSERT from the session's staging table run as
 * that query's one implicit transaction (two round trips: the server must
 * say CopyIn before libpq sends data).  Straight into the table a replay
 * would fail on the unique index; via staging it is absorbed.
 */
static double
bench_copy(struct bench *b, size_t batch, bool stage, bool binary)
{
	char ts[PGSQL_TIMESTAMP_SIZE], sql[4096];
	char *copy = pgsql_copy_sql(&table, stage, binary),
	     *insert = pgsql_stage_insert_sql(&table);
	double t0, r = 0;

	bench_rows(b);
	if (copy == NULL || insert == NULL || pgsql_timestamp(BENCH_DAY, ts, sizeof(ts)) == -1)
		goto out;
	snprintf(sql, sizeof(sql), "SELECT %s_ensure_partition('%s'); %s%s%s", table.name, ts, copy,
	    stage ? "; " : "", stage ? insert : "");
	t0 = now_s();
	for (size_t at = 0; at < b->nrows; at += batch) {
		size_t n = b->nrows - at < batch ? b->nrows - at : batch, len;
		struct pgsql_copy *c = pgsql_copy_new(&table, binary, n * 900);
		const char *data;
		PGresult *res;
		bool good = c != NULL && PQsendQuery(b->pg, sql);

		for (size_t i = 0; good && i < n; i++)
			good = pgsql_copy_row(
				   c, b->rows[at + i].row.partition_us, b->rows[at + i].v) == 0;
		data = good ? pgsql_copy_finish(c, &len) : NULL;
		while (good && (res = PQgetResult(b->pg)) != NULL) {
			ExecStatusType st = PQresultStatus(res);

			if (st == PGRES_COPY_IN) {
				PQclear(res);
				good = data != NULL && PQputCopyData(b->pg, data, (int)len) == 1 &&
				       PQputCopyEnd(b->pg, NULL) == 1;
			} else {
				good = bench_ok(res);
			}
		}
		while (!good && (res = PQgetResult(b->pg)) != NULL)
			PQclear(res);
		pgsql_copy_free(c);
		if (!good)
			goto out;
	}
	r = (double)b->nrows / (now_s() - t0);
out:
	free(copy);
	free(insert);
	return r;
}

struct bench_sink {
	struct bench *b;
	struct pg_sink *sink;
	size_t batch, next, done_rows;
	int outstanding;
	bool failed;
};

static void bench_feed(struct bench_sink *bs);

static void
bench_done(struct pg_sink *sink, void *arg, enum pg_sink_outcome outcome, const char *err)
{
	struct bench_sink *bs = arg;

	(void)sink;
	if (outcome != PG_SINK_OK) {
		printf("# bench: %s\n", err);
		bs->failed = true;
	}
	bs->outstanding--;
	bs->done_rows += bs->batch;
	bench_feed(bs);
}

/* Keep 8 batches submitted, as a consumer with back-pressure would. */
static void
bench_feed(struct bench_sink *bs)
{
	struct pg_row rows[1000];
	char err[256];

	while (bs->outstanding < 8 && bs->next < bs->b->nrows && !bs->failed) {
		size_t n = bench_batch_len(bs->b, bs->next, bs->batch);

		bench_pg_rows(bs->b, bs->next, n, rows);
		if (pg_sink_write(bs->sink, 0, rows, n, bench_done, bs, err, sizeof(err)) == -1) {
			printf("# bench: %s\n", err);
			bs->failed = true;
			return;
		}
		bs->next += n;
		bs->outstanding++;
	}
}

static bool
bench_sink_finished(const void *ctx)
{
	const struct bench_sink *bs = ctx;

	return bs->failed || (bs->outstanding == 0 && bs->next >= bs->b->nrows);
}

static double
bench_sink(struct bench *b, size_t batch, unsigned window, bool copy)
{
	struct pg_sink_opts opts = {.max_in_flight = window, .copy = copy};
	struct bench_sink bs = {.b = b, .batch = batch};
	struct want_state up = {NULL, PG_CONN_UP, ""};
	char err[256];
	double t0;

	bench_rows(b);
	bs.sink = SINK_NEW(conninfo, &opts, err);
	if (bs.sink == NULL)
		return 0;
	up.sink = bs.sink;
	run_until(state_is, &up);
	t0 = now_s();
	bench_feed(&bs);
	run_until(bench_sink_finished, &bs);
	t0 = now_s() - t0;
	pg_sink_free(bs.sink);
	return bs.failed ? 0 : (double)b->nrows / t0;
}

/*
 * What the enricher's PostgreSQL side does for a flush, as a ceiling: the
 * dedup ledger's call for the batch's keys (its own session, src/dedup.c),
 * then, once answered, the batch by COPY into the table (the sink, with
 * insert = copy).  WINDOW batches go at once, as the flushes of that many
 * partitions do.  Every key is new (none is a duplicate), as in the
 * enricher's benchmark.
 */
struct bench_lb {
	struct bench_ledger *bl;
	size_t at, n;
};

struct bench_ledger {
	struct bench *b;
	struct pg_sink *sink;
	struct dedup *d;
	char topic[64];
	size_t batch, next;
	unsigned window, outstanding;
	bool failed;
};

static void bench_ledger_feed(struct bench_ledger *bl);

static void
bench_ledger_written(struct pg_sink *sink, void *arg, enum pg_sink_outcome outcome, const char *err)
{
	struct bench_lb *lb = arg;
	struct bench_ledger *bl = lb->bl;

	(void)sink;
	if (outcome != PG_SINK_OK) {
		printf("# bench: %s\n", err);
		bl->failed = true;
	}
	free(lb);
	bl->outstanding--;
	bench_ledger_feed(bl);
}

static void
bench_ledger_answered(void *arg, const char *err, const int64_t *dups, size_t ndups)
{
	struct bench_lb *lb = arg;
	struct bench_ledger *bl = lb->bl;
	struct pg_row rows[1000];
	char e[256];

	(void)dups;
	if (err != NULL || ndups > 0) {
		printf("# bench: ledger: %s\n", err != NULL ? err : "duplicates among new keys");
		goto fail;
	}
	bench_pg_rows(bl->b, lb->at, lb->n, rows);
	if (pg_sink_write(bl->sink, 0, rows, lb->n, bench_ledger_written, lb, e, sizeof(e)) == 0)
		return;
	printf("# bench: %s\n", e);
fail:
	bl->failed = true;
	free(lb);
	bl->outstanding--;
}

static void
bench_ledger_feed(struct bench_ledger *bl)
{
	struct dedup_item items[1000];
	char err[256];

	while (bl->outstanding < bl->window && bl->next < bl->b->nrows && !bl->failed) {
		size_t n = bench_batch_len(bl->b, bl->next, bl->batch);
		struct bench_lb *lb = calloc(1, sizeof(*lb));

		if (lb == NULL) {
			bl->failed = true;
			return;
		}
		*lb = (struct bench_lb){.bl = bl, .at = bl->next, .n = n};
		for (size_t i = 0; i < n; i++) {
			const struct trow *r = &bl->b->rows[bl->next + i];

			/* the row's own message id: new in every run */
			items[i] = (struct dedup_item){.offset = (int64_t)(bl->next + i),
			    .key = r->msg,
			    .correlation_id = r->corr};
		}
		if (dedup_check(bl->d, bl->topic, 0, items, n, bench_ledger_answered, lb, err,
			sizeof(err)) == -1) {
			printf("# bench: ledger: %s\n", err);
			free(lb);
			bl->failed = true;
			return;
		}
		bl->next += n;
		bl->outstanding++;
	}
}

static bool
bench_ledger_finished(const void *ctx)
{
	const struct bench_ledger *bl = ctx;

	return bl->outstanding == 0 && (bl->failed || bl->next >= bl->b->nrows);
}

static void
bench_ledger_warm(void *arg, const char *err, const int64_t *dups, size_t ndups)
{
	struct bench_lb *lb = arg;

	(void)dups;
	(void)ndups;
	if (err != NULL) {
		printf("# bench: ledger: %s\n", err);
		lb->bl->failed = true;
	}
	lb->bl->outstanding--;
	free(lb);
}

static bool
bench_never(const void *ctx)
{
	(void)ctx;
	return false;
}

static bool
bench_ledger_idle(const void *ctx)
{
	return ((const struct bench_ledger *)ctx)->outstanding == 0;
}

/* The ledger's first call of a run doubles as the wait for its session:
 * dedup_check refuses until the session is up. */
static bool
bench_ledger_up(struct bench_ledger *bl)
{
	struct dedup_item item = {
	    .offset = -1, .key = "warm", .correlation_id = bl->b->rows[0].corr};
	char err[256];

	for (int i = 0; i < 500; i++) {
		struct bench_lb *lb = calloc(1, sizeof(*lb));

		if (lb == NULL)
			return false;
		lb->bl = bl;
		if (dedup_check(bl->d, bl->topic, 1, &item, 1, bench_ledger_warm, lb, err,
			sizeof(err)) == 0) {
			bl->outstanding++;
			run_until(bench_ledger_idle, bl);
			return !bl->failed;
		}
		free(lb);
		run_until_ms(bench_never, NULL, 10);
	}
	printf("# bench: ledger: %s\n", err);
	return false;
}

static double
bench_ledger(struct bench *b, size_t batch, unsigned window)
{
	struct pg_sink_opts opts = {.max_in_flight = 1, .copy = true};
	struct bench_ledger bl = {.b = b, .batch = batch, .window = window};
	struct want_state up = {NULL, PG_CONN_UP, ""};
	char err[256], sql[160];
	double t0, r = 0;

	bench_rows(b);
	snprintf(bl.topic, sizeof(bl.topic), "bench.ledger.%d.%u", (int)getpid(), b->run);
	bl.sink = SINK_NEW(conninfo, &opts, err);
	if (bl.sink == NULL)
		return 0;
	up.sink = bl.sink;
	run_until(state_is, &up); /* the sink applied sql/, the ledger included */
	if ((bl.d = dedup_new(base, conninfo, err, sizeof(err))) == NULL || !bench_ledger_up(&bl))
		goto out;
	t0 = now_s();
	bench_ledger_feed(&bl);
	run_until(bench_ledger_finished, &bl);
	if (!bl.failed)
		r = (double)b->nrows / (now_s() - t0);
out:
	dedup_free(bl.d);
	pg_sink_free(bl.sink);
	snprintf(sql, sizeof(sql), "DELETE FROM collectord_dedup WHERE topic = '%s'", bl.topic);
	PQclear(PQexec(b->pg, sql));
	return r;
}

static int
bench_main(size_t nrows)
{
	/* 500: the enricher's, flush_events */
	static const size_t batches[] = {1, 10, 100, 500, 1000};
	struct bench b = {.nrows = nrows};

	b.rows = calloc(nrows, sizeof(*b.rows));
	b.pg = PQconnectdb(conninfo);
	if (b.rows == NULL || PQstatus(b.pg) != CONNECTION_OK) {
		printf("bench: cannot connect: %s", PQerrorMessage(b.pg));
		return 1;
	}
	PQclear(PQexec(b.pg, "SET client_min_messages = warning"));
	PQclear(PQexec(b.pg, "SELECT events_ensure_partition('2098-06-01 12:00Z')"));
	{
		char *insert = pgsql_insert_unnest_sql(&table);

		b.ensure = pgsql_ensure_partition_sql(&table);
		PQclear(PQprepare(b.pg, "bench_unnest", insert, (int)table.ncolumns, NULL));
		free(insert);
	}
	{
		char *stage = pgsql_stage_create_sql(&table);

		PQclear(PQexec(b.pg, stage));
		free(stage);
	}
	printf("# rows/s, %zu rows per run, server %d, partition events_20980601\n", nrows,
	    PQserverVersion(b.pg));
	printf("# %-6s %12s %12s %12s %12s %12s %12s\n", "batch", "plain4-vals", "plain4-unn",
	    "plain1-vals", "plain1-unn", "pipe-w1-unn", "pipe-w4-unn");
	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		double r[6];

		PQclear(PQexec(b.pg, "TRUNCATE events_20980601"));
		r[0] = bench_plain(&b, batches[i], false, true);
		r[1] = bench_plain(&b, batches[i], true, true);
		r[2] = bench_plain(&b, batches[i], false, false);
		r[3] = bench_plain(&b, batches[i], true, false);
		r[4] = bench_sink(&b, batches[i], 1, false);
		r[5] = bench_sink(&b, batches[i], 4, false);
		printf("# %-6zu %12.0f %12.0f %12.0f %12.0f %12.0f %12.0f\n", batches[i], r[0],
		    r[1], r[2], r[3], r[4], r[5]);
		fflush(stdout);
	}
	/* The same rows by COPY; "copy" straight into the table is the
	 * physical limit (a replay would conflict), "stage" what a sink that
	 * absorbs replays can do. */
	printf("# %-6s %12s %12s %12s %12s %12s %12s %12s\n", "batch", "copy-bin", "copy-txt",
	    "stage-bin", "stage-txt", "sink-copy", "ledger-w1", "ledger-w3");
	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		double r[7];

		PQclear(PQexec(b.pg, "TRUNCATE events_20980601"));
		r[0] = bench_copy(&b, batches[i], false, true);
		r[1] = bench_copy(&b, batches[i], false, false);
		r[2] = bench_copy(&b, batches[i], true, true);
		r[3] = bench_copy(&b, batches[i], true, false);
		r[4] = bench_sink(&b, batches[i], 1, true);
		r[5] = bench_ledger(&b, batches[i], 1);
		r[6] = bench_ledger(&b, batches[i], 3);
		printf("# %-6zu %12.0f %12.0f %12.0f %12.0f %12.0f %12.0f %12.0f\n", batches[i],
		    r[0], r[1], r[2], r[3], r[4], r[5], r[6]);
		fflush(stdout);
	}
	PQclear(PQexec(b.pg, "TRUNCATE events_20980601"));
	PQfinish(b.pg);
	free(b.rows);
	free(b.ensure);
	return 0;
}

/* ---------------------------------------------------------------- main */

int
main(int argc, char **argv)
{
	const char *dir = getenv("COLLECTORD_SQL_DIR"), *top = getenv("top_srcdir");
	const char *stop_cmd = getenv("COLLECTORD_PG_STOP_CMD");
	const char *start_cmd = getenv("COLLECTORD_PG_START_CMD");
	struct want_state up = {NULL, PG_CONN_UP, ""};
	struct pg_sink *sink;
	char err[256];
	int rc;

	conninfo = getenv("COLLECTORD_PG_CONNINFO");
	if (conninfo == NULL || *conninfo == '\0') {
		printf("1..0 # SKIP COLLECTORD_PG_CONNINFO is not set\n");
		return 0;
	}
	if (dir != NULL)
		snprintf(sql_dir, sizeof(sql_dir), "%s", dir);
	else if (top != NULL)
		snprintf(sql_dir, sizeof(sql_dir), "%s/sql", top);
	else
		snprintf(sql_dir, sizeof(sql_dir), "sql");
	snprintf(family_dir, sizeof(family_dir), "%s/../schemas/holded/sql", sql_dir);
	/* the table as the daemon's defaults settle it */
	fam_cfg = config_parse(NULL, "defaults", false, err, sizeof(err));
	if (fam_cfg == NULL || family_config_defaults(fam_cfg, err, sizeof(err)) == -1 ||
	    config_family(fam_cfg, "holded") == NULL) {
		printf("Bail out! the default configuration: %s\n", err);
		return 1;
	}
	family_pg_table(config_family(fam_cfg, "holded"), &table, table_cols);
	signal(SIGPIPE, SIG_IGN);
	/* a hang guard, not a timing assertion: a stuck loop fails the run */
	alarm(600);
	log_set_level(getenv("COLLECTORD_TEST_DEBUG") ? LOG_DEBUG : LOG_WARN);
	base = event_base_new();

	if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
		sink = SINK_NEW(conninfo, NULL, err);
		up.sink = sink;
		if (sink == NULL || !run_until(state_is, &up)) {
			printf("bench: schema setup failed: %s\n", sink ? up.err : err);
			return 1;
		}
		pg_sink_free(sink);
		rc = bench_main(argc > 2 ? (size_t)atol(argv[2]) : 20000);
		event_base_free(base);
		return rc;
	}

	ok(SINK_NEW("nonsense", NULL, err) == NULL, "malformed conninfo refused at creation: %s",
	    err);
	/* libpq's reason quotes what it stumbled on: here part of a password */
	ok(pg_conn_new(base, "host=db password=se cret", NULL, NULL, NULL, err, sizeof(err)) ==
		    NULL &&
		strncmp(err, "postgres conninfo: ", 19) == 0 && strstr(err, "cret") == NULL,
	    "the reason does not quote the password: %s", err);
	ok(pg_conn_new(base, "postgresql://app:hun%zzter2@db/x", NULL, NULL, NULL, err,
	       sizeof(err)) == NULL &&
		strstr(err, "hun") == NULL,
	    "nor a URI libpq cannot parse: %s", err);
	{
		const char *none[] = {sql_dir, "/nonexistent"};
		struct pgsql_table odd = table;

		ok(pg_sink_new(base, conninfo, none, 2, &table, 1, NULL, err, sizeof(err)) == NULL,
		    "unreadable sql dir refused at creation: %s", err);
		odd.name = "events; DROP TABLE events";
		ok(pg_sink_new(base, conninfo, dirs, 2, &odd, 1, NULL, err, sizeof(err)) == NULL,
		    "a table name that is not a plain SQL name refused at creation: %s", err);
	}

	test_pg_conn();
	test_pg_conn_names();

	for (int copy = 0; copy <= 1; copy++) {
		mode = (struct pg_sink_opts){.copy = copy};
		printf("# insert = %s\n", copy ? "copy" : "unnest");
		/* The server may already have these from an earlier run. */
		exec("DROP TABLE IF EXISTS events_20991231, events_21000101, events_21000102, "
		     "events_21000103");
		sink = SINK_NEW(conninfo, NULL, err);
		if (!ok(sink != NULL, "pg_sink_new")) {
			printf("# %s\n", err);
			return tap_done();
		}
		up.sink = sink;
		ok(run_until(state_is, &up), "sink comes UP after applying %s", sql_dir);

		test_partitions_and_replay(sink);
		test_events_of_request();
		test_order_and_validation(sink);
		test_rejected(sink);
		test_stale_partition(sink);
		test_bad_setup();
		test_concurrent_setup();
		if (stop_cmd != NULL && start_cmd != NULL)
			test_restart(sink, stop_cmd, start_cmd);
		else
			ok(1, "# SKIP restart: COLLECTORD_PG_STOP_CMD/COLLECTORD_PG_START_CMD not "
			      "set");
		test_free_from_callback(sink);
	}

	PQfinish(admin);
	event_base_free(base);
	config_free(fam_cfg);
	return tap_done();
}
