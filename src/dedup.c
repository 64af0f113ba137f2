/*
 * dedup.c: questions to the ledger of first sightings (dedup.h), one
 * pipelined call of collectord_dedup() and its sync each.
 */
#include "dedup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <libpq-fe.h>

#include "log.h"
#include "pg_conn.h"
#include "pgsql.h"

#define DEDUP_SQL "SELECT dup_offset FROM collectord_dedup($1, $2, $3, $4, $5)"

struct req {
	LIST_ENTRY(req) link;
	struct dedup *d;
	dedup_cb *cb;
	void *arg;
	int64_t *dups;
	size_t ndups;
	bool answered; /* the statement's rows were read */
	char err[256]; /* the statement's error, "" for none */
};

struct dedup {
	struct pg_conn *pg;
	LIST_HEAD(, req) reqs;
};

static void
req_end(struct req *q, const char *err)
{
	LIST_REMOVE(q, link);
	q->cb(q->arg, err, err == NULL ? q->dups : NULL, err == NULL ? q->ndups : 0);
	free(q->dups);
	free(q);
}

static void
on_rows(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct req *q = arg;
	int n;

	(void)conn;
	if (q->cb == NULL) {
		/* given up by dedup_check when its sync could not be queued */
		free(q);
		return;
	}
	if (err != NULL) {
		snprintf(q->err, sizeof(q->err), "%s", err);
		return;
	}
	n = PQntuples(res);
	if (n > 0 && (q->dups = malloc((size_t)n * sizeof(*q->dups))) == NULL) {
		snprintf(q->err, sizeof(q->err), "out of memory");
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *v = PQgetvalue(res, i, 0);
		char *end;
		long long off = strtoll(v, &end, 10);

		if (*v == '\0' || *end != '\0' || off < 0) {
			snprintf(q->err, sizeof(q->err), "ledger answered a bad offset");
			return;
		}
		q->dups[q->ndups++] = off;
	}
	q->answered = true;
}

static void
on_sync(struct pg_conn *conn, void *arg, const PGresult *res, const char *err)
{
	struct req *q = arg;

	(void)conn;
	(void)res;
	if (err != NULL)
		req_end(q, err);
	else if (*q->err != '\0' || !q->answered)
		req_end(q, *q->err != '\0' ? q->err : "no answer from the ledger");
	else
		req_end(q, NULL);
}

static void
on_state(struct pg_conn *conn, void *arg, enum pg_conn_state state, const char *err)
{
	(void)conn;
	(void)arg;
	if (state == PG_CONN_DOWN && err != NULL && *err != '\0')
		log_warn("dedup ledger session lost", "error=\"%s\"", err);
}

struct dedup *
dedup_new(struct event_base *base, const char *conninfo, char *err, size_t errlen)
{
	struct dedup *d = calloc(1, sizeof(*d));
	struct pg_conn_opts opts = {
	    .connect_timeout_ms = 5000,
	    .backoff_max_ms = 5000,
	    .reply_timeout_ms = 30000,
	};

	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	LIST_INIT(&d->reqs);
	if ((d->pg = pg_conn_new(base, conninfo, &opts, on_state, d, err, errlen)) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

/* The three arrays of the call, or false (out of memory). */
static bool
build_arrays(const struct dedup_item *items, size_t n, char **offsets, char **keys, char **corrs)
{
	struct pgsql_array *o = pgsql_array_new(n * 12), *k = pgsql_array_new(n * 40),
			   *c = pgsql_array_new(n * 40);
	char num[24];
	bool ok = o != NULL && k != NULL && c != NULL;

	for (size_t i = 0; ok && i < n; i++) {
		snprintf(num, sizeof(num), "%" PRId64, items[i].offset);
		ok = pgsql_array_add(o, num) == 0 && pgsql_array_add(k, items[i].key) == 0 &&
		     pgsql_array_add(c, items[i].correlation_id) == 0;
	}
	*offsets = *keys = *corrs = NULL;
	if (ok) {
		*offsets = pgsql_array_finish(o);
		*keys = pgsql_array_finish(k);
		*corrs = pgsql_array_finish(c);
		o = k = c = NULL;
		ok = *offsets != NULL && *keys != NULL && *corrs != NULL;
	}
	pgsql_array_free(o);
	pgsql_array_free(k);
	pgsql_array_free(c);
	return ok;
}

int
dedup_check(struct dedup *d, const char *topic, int32_t partition, const struct dedup_item *items,
    size_t n, dedup_cb *cb, void *arg, char *err, size_t errlen)
{
	struct req *q = calloc(1, sizeof(*q));
	char part[16], *offsets = NULL, *keys = NULL, *corrs = NULL;
	const char *values[5];
	int rc = -1;

	if (q == NULL || !build_arrays(items, n, &offsets, &keys, &corrs)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	snprintf(part, sizeof(part), "%d", (int)partition);
	values[0] = topic;
	values[1] = part;
	values[2] = offsets;
	values[3] = keys;
	values[4] = corrs;
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	/* libpq copies the parameters before returning. */
	if (pg_conn_query(d->pg, DEDUP_SQL, 5, values, on_rows, q, err, errlen) == -1)
		goto out;
	LIST_INSERT_HEAD(&d->reqs, q, link);
	if (pg_conn_sync(d->pg, on_sync, q, err, errlen) == -1) {
		/* The session is being reset: no sync will fire, but the
		 * statement's callback will (res NULL), and it frees Q. */
		LIST_REMOVE(q, link);
		q->cb = NULL;
		q = NULL;
		goto out;
	}
	q = NULL;
	rc = 0;
out:
	free(q);
	free(offsets);
	free(keys);
	free(corrs);
	return rc;
}

void
dedup_free(struct dedup *d)
{
	struct req *q;

	if (d == NULL)
		return;
	while ((q = LIST_FIRST(&d->reqs)) != NULL)
		req_end(q, "stopping");
	pg_conn_free(d->pg);
	free(d);
}
