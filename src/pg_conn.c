/*
 * pg_conn.c: a non-blocking libpq session on a libevent base: connect and
 * reconnect with backoff, pipeline queries, hand results back in order.
 *
 * Every callback fires from an event handler of this file, never from the
 * API calls, so an owner can queue work from anywhere.  Handlers count
 * themselves in `depth`; pg_conn_free inside a callback only marks the
 * object dead and the outermost handler frees it on the way out.  `gen`
 * changes whenever a session is torn down, so a loop that called out can
 * tell the session it was working on is gone.
 */
#include "pg_conn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

#define ERR_SIZE 512

enum item_kind { ITEM_QUERY, ITEM_SYNC, ITEM_SIMPLE };

/* One thing sent that awaits its result(s), in send order. */
struct pg_item {
	struct pg_item *next;
	enum item_kind kind;
	pg_conn_result_cb *cb;
	void *arg;
	PGresult *res; /* collected so far (query: its result; simple: see pick) */
};

struct pg_conn {
	struct event_base *base;
	char *conninfo;
	struct pg_conn_opts opts;
	pg_conn_state_cb *state_cb;
	void *arg;

	PGconn *pg;
	enum pg_conn_state state;
	struct event *ev_io;	/* while connecting: one-shot, follows PQconnectPoll */
	struct event *ev_read;	/* while up: persistent */
	struct event *ev_write; /* while up: added only while output is pending */
	bool flushing;
	struct event *ev_timer; /* backoff, connect timeout, deferred reset */
	struct event *ev_reply; /* armed while items await results */
	unsigned attempts;	/* failures since the last success, for backoff */
	uint32_t rng;

	struct pg_item *head, *tail;
	PGresult *seg_error; /* first error of the current pipeline segment */

	bool reset_pending;
	char reset_why[ERR_SIZE];
	char err[ERR_SIZE];

	unsigned gen;
	int depth;
	bool dead;
};

/* libpq messages span lines ("...failed: Connection refused\n\tIs the
 * server running..."); logs and /readyz want one line. */
static void
flatten(const char *msg, char *buf, size_t size)
{
	size_t n = 0;
	bool space = false;

	if (size == 0)
		return;
	for (; msg != NULL && *msg != '\0' && n + 1 < size; msg++) {
		if (*msg == '\n' || *msg == '\t' || *msg == '\r' || *msg == ' ') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < size)
			buf[n++] = ' ';
		space = false;
		buf[n++] = *msg;
	}
	buf[n] = '\0';
}

/* event_free() does not accept NULL. */
static void
ev_free(struct event *ev)
{
	if (ev != NULL)
		event_free(ev);
}

static bool
result_failed(const PGresult *res)
{
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY:
	case PGRES_PIPELINE_SYNC:
		return false;
	default:
		return true;
	}
}

static void
result_error(const PGresult *res, char *buf, size_t size)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char line[ERR_SIZE - 32]; /* leaves room for the SQLSTATE */

	if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED) {
		snprintf(buf, size, "skipped: an earlier statement of the pipeline failed");
	} else if (primary != NULL) {
		flatten(primary, line, sizeof(line));
		snprintf(buf, size, "%s (SQLSTATE %s)", line, sqlstate ? sqlstate : "?");
	} else {
		flatten(PQresultErrorMessage(res), line, sizeof(line));
		snprintf(buf, size, "%s", *line ? line : PQresStatus(PQresultStatus(res)));
	}
}

static void
notice_cb(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char line[ERR_SIZE], q[ERR_SIZE];

	(void)arg;
	flatten(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), line, sizeof(line));
	log_write(sev != NULL && strcmp(sev, "WARNING") == 0 ? LOG_WARN : LOG_DEBUG,
	    "postgres notice", "severity=%s message=%s", sev ? sev : "?",
	    log_quote(line, q, sizeof(q)));
}

static uint32_t
next_rand(struct pg_conn *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 17;
	c->rng ^= c->rng << 5;
	return c->rng;
}

/* Doubling delay from backoff_min_ms to backoff_max_ms, jittered down to
 * half so a fleet that lost the same server does not return in step. */
static unsigned
backoff_ms(struct pg_conn *c)
{
	uint64_t d = c->opts.backoff_min_ms;

	for (unsigned i = 0; i < c->attempts && d < c->opts.backoff_max_ms; i++)
		d *= 2;
	if (d > c->opts.backoff_max_ms)
		d = c->opts.backoff_max_ms;
	if (c->attempts < 64)
		c->attempts++;
	return (unsigned)(d / 2 + next_rand(c) % (d / 2 + 1));
}

static void
arm(struct event *timer, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(timer, &tv);
}

static void
call(struct pg_conn *c, pg_conn_result_cb *cb, void *arg, const PGresult *res, const char *err)
{
	if (cb == NULL || c->dead)
		return;
	cb(c, arg, res, err);
}

static void
free_items(struct pg_item *it)
{
	while (it != NULL) {
		struct pg_item *next = it->next;

		PQclear(it->res);
		free(it);
		it = next;
	}
}

/* Forget the session: fail what was in flight, schedule the next attempt,
 * report DOWN.  MSG may point into c->reset_why or libpq's buffer. */
static void
teardown(struct pg_conn *c, const char *msg)
{
	struct pg_item *items = c->head;
	bool was_up = c->state == PG_CONN_UP;
	char err[ERR_SIZE], q[ERR_SIZE];
	unsigned delay;

	flatten(msg != NULL && *msg != '\0' ? msg : "connection failed", err, sizeof(err));
	memcpy(c->err, err, sizeof(err));
	c->head = c->tail = NULL;
	ev_free(c->ev_io);
	ev_free(c->ev_read);
	ev_free(c->ev_write);
	c->ev_io = c->ev_read = c->ev_write = NULL;
	c->flushing = false;
	evtimer_del(c->ev_reply);
	PQfinish(c->pg);
	c->pg = NULL;
	PQclear(c->seg_error);
	c->seg_error = NULL;
	c->reset_pending = false;
	c->state = PG_CONN_DOWN;
	c->gen++;
	delay = backoff_ms(c);
	arm(c->ev_timer, delay);
	log_warn(was_up ? "postgres session lost" : "postgres connect failed",
	    "error=%s retry_ms=%u", log_quote(err, q, sizeof(q)), delay);

	/* Report only after our own state is consistent: these callbacks may
	 * queue (refused), reset (no-op) or free (deferred) the connection. */
	for (struct pg_item *it = items; it != NULL; it = it->next)
		call(c, it->cb, it->arg, NULL, err);
	free_items(items);
	if (c->state_cb != NULL && !c->dead)
		c->state_cb(c, c->arg, PG_CONN_DOWN, err);
}

static void
destroy(struct pg_conn *c)
{
	ev_free(c->ev_io);
	ev_free(c->ev_read);
	ev_free(c->ev_write);
	ev_free(c->ev_timer);
	ev_free(c->ev_reply);
	PQfinish(c->pg);
	free_items(c->head);
	PQclear(c->seg_error);
	free(c->conninfo);
	free(c);
}

/* Every handler ends here: the owner may have freed us from a callback. */
static void
leave(struct pg_conn *c)
{
	if (--c->depth == 0 && c->dead)
		destroy(c);
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg);
static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

/* Wait for what PQconnectPoll asked for; the socket may change between
 * polls (libpq tries the next host or address), so read it every time. */
static void
poll_wait(struct pg_conn *c, PostgresPollingStatusType how)
{
	int fd = PQsocket(c->pg);

	ev_free(c->ev_io);
	c->ev_io = NULL;
	if (fd < 0) {
		teardown(c, PQerrorMessage(c->pg));
		return;
	}
	c->ev_io = event_new(
	    c->base, fd, how == PGRES_POLLING_READING ? EV_READ : EV_WRITE, on_connect_io, c);
	if (c->ev_io == NULL || event_add(c->ev_io, NULL) == -1)
		teardown(c, "cannot watch the connection's socket");
}

static void
start(struct pg_conn *c)
{
	c->pg = PQconnectStart(c->conninfo);
	if (c->pg == NULL) {
		teardown(c, "out of memory");
		return;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		teardown(c, PQerrorMessage(c->pg));
		return;
	}
	PQsetNoticeReceiver(c->pg, notice_cb, c);
	c->state = PG_CONN_CONNECTING;
	arm(c->ev_timer, c->opts.connect_timeout_ms);
	/* libpq: begin as if PQconnectPoll had returned PGRES_POLLING_WRITING */
	poll_wait(c, PGRES_POLLING_WRITING);
}

static void
connected(struct pg_conn *c)
{
	char host[256];
	int fd;

	ev_free(c->ev_io);
	c->ev_io = NULL;
	evtimer_del(c->ev_timer);
	if (PQsetnonblocking(c->pg, 1) != 0) {
		teardown(c, PQerrorMessage(c->pg));
		return;
	}
	fd = PQsocket(c->pg);
	c->ev_read = event_new(c->base, fd, EV_READ | EV_PERSIST, on_read, c);
	c->ev_write = event_new(c->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
	if (c->ev_read == NULL || c->ev_write == NULL || event_add(c->ev_read, NULL) == -1) {
		teardown(c, "cannot watch the connection's socket");
		return;
	}
	c->state = PG_CONN_UP;
	c->err[0] = '\0';
	log_info("postgres connected", "host=%s port=%s server_version=%d",
	    log_quote(PQhost(c->pg), host, sizeof(host)), PQport(c->pg), PQserverVersion(c->pg));
	if (c->state_cb != NULL)
		c->state_cb(c, c->arg, PG_CONN_UP, NULL);
}

static void
on_connect_io(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;

	(void)fd;
	(void)what;
	c->depth++;
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		poll_wait(c, PGRES_POLLING_READING);
		break;
	case PGRES_POLLING_WRITING:
		poll_wait(c, PGRES_POLLING_WRITING);
		break;
	case PGRES_POLLING_OK:
		connected(c);
		break;
	default:
		teardown(c, PQerrorMessage(c->pg));
		break;
	}
	leave(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;

	(void)fd;
	(void)what;
	c->depth++;
	if (c->reset_pending)
		teardown(c, c->reset_why);
	else if (c->pg == NULL)
		start(c);
	else if (c->state == PG_CONN_CONNECTING)
		teardown(c, "connection attempt timed out");
	leave(c);
}

/* Push buffered output; keep EV_WRITE armed while libpq has more. */
static void
flush(struct pg_conn *c)
{
	switch (PQflush(c->pg)) {
	case 0:
		if (c->flushing)
			event_del(c->ev_write);
		c->flushing = false;
		break;
	case 1:
		if (!c->flushing)
			event_add(c->ev_write, NULL);
		c->flushing = true;
		break;
	default:
		teardown(c, PQerrorMessage(c->pg));
		break;
	}
}

/* Sends only fill libpq's buffer; the write handler flushes it on the next
 * loop pass, so a burst of queries leaves in one write. */
static void
want_flush(struct pg_conn *c)
{
	if (!c->flushing)
		event_add(c->ev_write, NULL);
	c->flushing = true;
}

/* Progress: give the next item a full reply timeout, or stop watching. */
static void
pop(struct pg_conn *c)
{
	c->head = c->head->next;
	if (c->head == NULL) {
		c->tail = NULL;
		evtimer_del(c->ev_reply);
	} else {
		arm(c->ev_reply, c->opts.reply_timeout_ms);
	}
}

static void
on_reply_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	char msg[128];

	(void)fd;
	(void)what;
	c->depth++;
	snprintf(msg, sizeof(msg), "no reply from the server for %u ms", c->opts.reply_timeout_ms);
	teardown(c, msg);
	leave(c);
}

static void
finish_item(struct pg_conn *c, struct pg_item *it)
{
	char err[ERR_SIZE];
	bool failed = result_failed(it->res);

	if (failed)
		result_error(it->res, err, sizeof(err));
	else
		c->attempts = 0;
	call(c, it->cb, it->arg, it->res, failed ? err : NULL);
	/* The segment's first real error is what its sync reports. */
	if (failed && it->kind == ITEM_QUERY && c->seg_error == NULL && c->pg != NULL &&
	    PQresultStatus(it->res) != PGRES_PIPELINE_ABORTED) {
		c->seg_error = it->res;
		it->res = NULL;
	}
	PQclear(it->res);
	free(it);
}

static void
finish_sync(struct pg_conn *c, struct pg_item *it)
{
	PGresult *e = c->seg_error;
	char err[ERR_SIZE];

	c->seg_error = NULL;
	if (e != NULL)
		result_error(e, err, sizeof(err));
	call(c, it->cb, it->arg, e, e != NULL ? err : NULL);
	PQclear(e);
	free(it);
}

/* Keep a simple query's first error, else its last result. */
static void
collect(struct pg_item *it, PGresult *res)
{
	if (it->res != NULL && (it->kind != ITEM_SIMPLE || result_failed(it->res))) {
		PQclear(res);
		return;
	}
	PQclear(it->res);
	it->res = res;
}

/* Hand out every complete result.  In pipeline mode each query's result
 * is followed by a NULL from PQgetResult and a sync yields one
 * PGRES_PIPELINE_SYNC; a NULL for an item that has no result yet means
 * nothing more has arrived. */
static void
drain(struct pg_conn *c)
{
	unsigned gen = c->gen;

	while (
	    c->gen == gen && !c->dead && !c->reset_pending && c->head != NULL && !PQisBusy(c->pg)) {
		struct pg_item *it = c->head;
		PGresult *res = PQgetResult(c->pg);

		if (it->kind == ITEM_SYNC) {
			if (res == NULL)
				break;
			if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
				PQclear(res);
				teardown(c, "protocol confusion: expected a pipeline sync");
				break;
			}
			PQclear(res);
			pop(c);
			finish_sync(c, it);
		} else if (res == NULL) {
			if (it->res == NULL)
				break;
			pop(c);
			finish_item(c, it);
		} else {
			collect(it, res);
		}
	}
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	unsigned gen = c->gen;

	(void)fd;
	(void)what;
	c->depth++;
	if (!PQconsumeInput(c->pg)) {
		teardown(c, PQerrorMessage(c->pg));
	} else {
		drain(c);
		/* libpq: while a flush is pending, input may be what unblocks it */
		if (c->gen == gen && !c->dead && c->flushing)
			flush(c);
	}
	leave(c);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;

	(void)fd;
	(void)what;
	c->depth++;
	if (PQstatus(c->pg) == CONNECTION_BAD)
		teardown(c, PQerrorMessage(c->pg));
	else
		flush(c);
	leave(c);
}

struct pg_conn *
pg_conn_new(struct event_base *base, const char *conninfo, const struct pg_conn_opts *opts,
    pg_conn_state_cb *state_cb, void *arg, char *err, size_t errlen)
{
	PQconninfoOption *parsed;
	char *msg = NULL;
	struct pg_conn *c;
	struct timeval now;

	parsed = PQconninfoParse(conninfo != NULL ? conninfo : "", &msg);
	if (parsed == NULL) {
		char line[ERR_SIZE];

		flatten(msg != NULL ? msg : "out of memory", line, sizeof(line));
		snprintf(err, errlen, "postgres conninfo: %s", line);
		PQfreemem(msg);
		return NULL;
	}
	PQconninfoFree(parsed);
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->conninfo = strdup(conninfo)) == NULL)
		goto oom;
	c->base = base;
	if (opts != NULL)
		c->opts = *opts;
	if (c->opts.backoff_min_ms == 0)
		c->opts.backoff_min_ms = 100;
	if (c->opts.backoff_max_ms == 0)
		c->opts.backoff_max_ms = 10000;
	if (c->opts.backoff_max_ms < c->opts.backoff_min_ms)
		c->opts.backoff_max_ms = c->opts.backoff_min_ms;
	if (c->opts.connect_timeout_ms == 0)
		c->opts.connect_timeout_ms = 10000;
	if (c->opts.reply_timeout_ms == 0)
		c->opts.reply_timeout_ms = 60000;
	c->state_cb = state_cb;
	c->arg = arg;
	gettimeofday(&now, NULL);
	c->rng = (uint32_t)getpid() ^ (uint32_t)now.tv_usec ^ (uint32_t)now.tv_sec;
	if (c->rng == 0)
		c->rng = 1;
	c->ev_timer = evtimer_new(base, on_timer, c);
	c->ev_reply = evtimer_new(base, on_reply_timeout, c);
	if (c->ev_timer == NULL || c->ev_reply == NULL)
		goto oom;
	/* The first attempt starts from the loop, so no callback fires before
	 * the owner has our pointer. */
	c->state = PG_CONN_CONNECTING;
	arm(c->ev_timer, 0);
	return c;
oom:
	if (c != NULL) {
		ev_free(c->ev_timer);
		ev_free(c->ev_reply);
		free(c->conninfo);
	}
	free(c);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

void
pg_conn_free(struct pg_conn *c)
{
	if (c == NULL || c->dead)
		return;
	c->dead = true;
	if (c->depth == 0)
		destroy(c);
}

enum pg_conn_state
pg_conn_state(const struct pg_conn *c, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", c->err);
	return c->state;
}

bool
pg_conn_idle(const struct pg_conn *c)
{
	return c->state == PG_CONN_UP && !c->reset_pending && !c->dead && c->head == NULL;
}

void
pg_conn_reset(struct pg_conn *c, const char *why)
{
	if (c->dead || c->pg == NULL || c->reset_pending)
		return;
	c->reset_pending = true;
	flatten(why != NULL ? why : "reset", c->reset_why, sizeof(c->reset_why));
	arm(c->ev_timer, 0);
}

static int
usable(struct pg_conn *c, char *err, size_t errlen)
{
	if (c->state != PG_CONN_UP || c->reset_pending || c->dead) {
		snprintf(err, errlen, "postgres: not connected");
		return -1;
	}
	return 0;
}

static int
pipelined(struct pg_conn *c, char *err, size_t errlen)
{
	if (usable(c, err, errlen) == -1)
		return -1;
	if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF)
		return 0;
	if (c->head != NULL) {
		snprintf(err, errlen, "postgres: a simple query is still running");
		return -1;
	}
	if (!PQenterPipelineMode(c->pg)) {
		flatten(PQerrorMessage(c->pg), err, errlen);
		return -1;
	}
	return 0;
}

/* A send that libpq refused leaves the session in an unknown state (part
 * of a segment may be queued): start over on a new one. */
static int
send_failed(struct pg_conn *c, char *err, size_t errlen)
{
	char line[ERR_SIZE];

	flatten(PQerrorMessage(c->pg), line, sizeof(line));
	snprintf(err, errlen, "postgres send: %s", *line ? line : "failed");
	pg_conn_reset(c, err);
	return -1;
}

static int
push(struct pg_conn *c, enum item_kind kind, pg_conn_result_cb *cb, void *arg, char *err,
    size_t errlen)
{
	struct pg_item *it = calloc(1, sizeof(*it));

	if (it == NULL) {
		/* libpq already holds the command: the session is out of step */
		snprintf(err, errlen, "out of memory");
		pg_conn_reset(c, err);
		return -1;
	}
	it->kind = kind;
	it->cb = cb;
	it->arg = arg;
	if (c->tail != NULL) {
		c->tail->next = it;
	} else {
		c->head = it;
		arm(c->ev_reply, c->opts.reply_timeout_ms);
	}
	c->tail = it;
	want_flush(c);
	return 0;
}

int
pg_conn_query(struct pg_conn *c, const char *sql, int nparams, const char *const *values,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (pipelined(c, err, errlen) == -1)
		return -1;
	if (!PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0))
		return send_failed(c, err, errlen);
	return push(c, ITEM_QUERY, cb, arg, err, errlen);
}

int
pg_conn_query_prepared(struct pg_conn *c, const char *name, int nparams, const char *const *values,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (pipelined(c, err, errlen) == -1)
		return -1;
	if (!PQsendQueryPrepared(c->pg, name, nparams, values, NULL, NULL, 0))
		return send_failed(c, err, errlen);
	return push(c, ITEM_QUERY, cb, arg, err, errlen);
}

int
pg_conn_prepare(struct pg_conn *c, const char *name, const char *sql, int nparams,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (pipelined(c, err, errlen) == -1)
		return -1;
	if (!PQsendPrepare(c->pg, name, sql, nparams, NULL))
		return send_failed(c, err, errlen);
	return push(c, ITEM_QUERY, cb, arg, err, errlen);
}

int
pg_conn_sync(struct pg_conn *c, pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (pipelined(c, err, errlen) == -1)
		return -1;
	if (!PQpipelineSync(c->pg))
		return send_failed(c, err, errlen);
	return push(c, ITEM_SYNC, cb, arg, err, errlen);
}

int
pg_conn_simple(
    struct pg_conn *c, const char *sql, pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (usable(c, err, errlen) == -1)
		return -1;
	if (c->head != NULL) {
		snprintf(err, errlen, "postgres: queries still in flight");
		return -1;
	}
	if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF && !PQexitPipelineMode(c->pg)) {
		flatten(PQerrorMessage(c->pg), err, errlen);
		return -1;
	}
	if (!PQsendQuery(c->pg, sql))
		return send_failed(c, err, errlen);
	return push(c, ITEM_SIMPLE, cb, arg, err, errlen);
}
