/* t/readback_explain.c: every statement the read-back API sends uses an
 * index, on the real PostgreSQL.  Each one is built by readback_sql.c as
 * the daemon builds it, for every served family and every form (filters,
 * cursor), prepared and EXPLAINed with enable_seqscan off, so that a
 * statement no index serves shows a Seq Scan whatever the table's size;
 * the pages' statements (and the daily counts') must also come in index
 * order: with enable_sort off too, a Sort shows only where no index gives
 * the order.  The SQL files are applied first, as the daemon applies
 * them. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "family.h"
#include "readback_sql.h"
#include "tap.h"

#define SETUP_LOCK "SELECT pg_advisory_xact_lock(1129270348, 1)"

static PGconn *pg;

static bool
exec_ok(const char *sql)
{
	PGresult *res = PQexec(pg, sql);
	bool good =
	    PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!good)
		printf("# %s: %s", sql, PQerrorMessage(pg));
	PQclear(res);
	return good;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.sql of DIR, in name order, each in a transaction under the
 * sink's setup lock, as the daemon applies them. */
static bool
apply_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *names[64];
	size_t n = 0;
	bool good = d != NULL;

	while (d != NULL && (e = readdir(d)) != NULL && n < 64) {
		size_t len = strlen(e->d_name);

		if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0)
			names[n++] = strdup(e->d_name);
	}
	if (d != NULL)
		closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[1024], *text;
		FILE *f;
		long size;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		free(names[i]);
		if ((f = fopen(path, "r")) == NULL) {
			good = false;
			continue;
		}
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		rewind(f);
		text = calloc(1, (size_t)size + 1);
		if (fread(text, 1, (size_t)size, f) != (size_t)size)
			text[0] = '\0';
		fclose(f);
		good = exec_ok("BEGIN") && exec_ok(SETUP_LOCK) && exec_ok(text) &&
		       exec_ok("COMMIT") && good;
		free(text);
	}
	return good;
}

/* Walk plan node P: count scans of the kinds that matter. */
static void
walk(const cJSON *p, int *seq, int *idx, int *sort, char *nodes, size_t size)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "Node Type");
	const cJSON *rel = cJSON_GetObjectItemCaseSensitive(p, "Relation Name");
	const cJSON *idxname = cJSON_GetObjectItemCaseSensitive(p, "Index Name");
	const cJSON *kids = cJSON_GetObjectItemCaseSensitive(p, "Plans"), *k;

	if (cJSON_IsString(type)) {
		const char *t = type->valuestring;
		size_t len = strlen(nodes);

		*seq += strcmp(t, "Seq Scan") == 0;
		*idx += strcmp(t, "Index Scan") == 0 || strcmp(t, "Index Only Scan") == 0 ||
			strcmp(t, "Bitmap Index Scan") == 0;
		*sort += strcmp(t, "Sort") == 0 || strcmp(t, "Incremental Sort") == 0;
		if (len + 100 < size && (strstr(t, "Scan") != NULL || strstr(t, "Sort") != NULL))
			snprintf(nodes + len, size - len, "%s%s%s%s%s", len ? ", " : "", t,
			    cJSON_IsString(rel) ? " on " : "",
			    cJSON_IsString(rel) ? rel->valuestring : "", "");
		len = strlen(nodes);
		if (cJSON_IsString(idxname) && len + 80 < size &&
		    strstr(nodes, idxname->valuestring) == NULL)
			snprintf(nodes + len, size - len, " (%s)", idxname->valuestring);
	}
	cJSON_ArrayForEach(k, kids) walk(k, seq, idx, sort, nodes, size);
}

/* EXPLAIN statement Q; it must use an index and, when ORDERED, need no
 * Sort. */
static void
explain(const char *what, struct rb_query *q, bool ordered)
{
	char *sql = malloc(strlen(q->sql) + 64), *exec = malloc(16384);
	int seq = 0, idx = 0, sort = 0;
	char nodes[2048] = "";
	PGresult *res;
	cJSON *plan;

	if (!ok(q->sql != NULL, "%s: built", what)) {
		free(sql);
		free(exec);
		return;
	}
	sprintf(sql, "PREPARE rb AS %s", q->sql);
	strcpy(exec, "EXPLAIN (FORMAT JSON) EXECUTE rb(");
	for (int i = 0; i < q->nparams; i++) {
		char *lit = PQescapeLiteral(pg, q->values[i], strlen(q->values[i]));

		strcat(exec, i ? ", " : "");
		strcat(exec, lit);
		PQfreemem(lit);
	}
	strcat(exec, ")");
	/* Where the indexes give the order, a sort must not be needed. */
	exec_ok(ordered ? "SET enable_sort = off" : "SET enable_sort = on");
	if (!ok(exec_ok(sql), "%s: prepares", what)) {
		free(sql);
		free(exec);
		rb_query_free(q);
		return;
	}
	res = PQexec(pg, exec);
	plan = PQresultStatus(res) == PGRES_TUPLES_OK ? cJSON_Parse(PQgetvalue(res, 0, 0)) : NULL;
	if (ok(plan != NULL, "%s: explains", what)) {
		walk(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(plan, 0), "Plan"), &seq,
		    &idx, &sort, nodes, sizeof(nodes));
		printf("# %s: %s\n", what, nodes);
		ok(seq == 0 && idx > 0, "%s: index scans only (%d index, %d seq)", what, idx, seq);
		if (ordered)
			ok(sort == 0, "%s: rows in index order, no sort", what);
	} else {
		printf("# %s\n", PQerrorMessage(pg));
	}
	cJSON_Delete(plan);
	PQclear(res);
	exec_ok("DEALLOCATE rb");
	free(sql);
	free(exec);
	rb_query_free(q);
}

/* FORM with its '@' replaced by CUR, into OUT. */
static void
subst(char *out, size_t size, const char *form, const char *cur)
{
	const char *at = strchr(form, '@');

	if (at == NULL)
		snprintf(out, size, "%s", form);
	else
		snprintf(out, size, "%.*s%s%s", (int)(at - form), form, cur, at + 1);
}

static struct rb_params
params(const char *query, unsigned allowed, bool events)
{
	struct rb_params p;
	char err[256];

	if (rb_params_parse(query, allowed, events, &p, err, sizeof(err)) == -1)
		printf("# %s: %s\n", query, err);
	return p;
}

int
main(void)
{
	const char *conninfo = getenv("COLLECTORD_PG_CONNINFO"), *top = getenv("top_srcdir");
	const unsigned ev =
	    RB_P_FAMILY | RB_P_SINCE | RB_P_UNTIL | RB_P_TYPE | RB_P_LIMIT | RB_P_CURSOR;
	const unsigned rj =
	    RB_P_FAMILY | RB_P_RULE | RB_P_SINCE | RB_P_UNTIL | RB_P_LIMIT | RB_P_CURSOR;
	const char *corr = "019aa0f3-7c21-7d3e-9a41-5b2e00000002";
	const struct config_family *fc;
	struct rb_table t[16];
	struct rb_query q;
	struct rb_params p;
	struct config *cfg;
	char conf[1200], err[256], cur[RB_CURSOR_MAX + 1], query[600];
	struct rb_cursor c = {
	    .us = 4102444800000000LL, .partition = 1, .offset = 7, .topic = "x.dlq"};
	size_t n = 0;

	if (conninfo == NULL || *conninfo == '\0') {
		printf("Bail out! COLLECTORD_PG_CONNINFO is not set (eval \"$(scripts/services "
		       "env)\")\n");
		return 1;
	}
	pg = PQconnectdb(conninfo);
	if (PQstatus(pg) != CONNECTION_OK) {
		printf("Bail out! PostgreSQL: %s", PQerrorMessage(pg));
		return 1;
	}
	snprintf(conf, sizeof(conf), "[pg]\nsql_dir = %s/sql\n", top ? top : ".");
	cfg = config_parse(conf, "t", false, err, sizeof(err));
	if (cfg == NULL || family_config_defaults(cfg, err, sizeof(err)) == -1) {
		printf("Bail out! config: %s\n", err);
		return 1;
	}
	exec_ok("SET client_min_messages = warning");
	ok(apply_dir(cfg->pg_sql_dir), "applied %s", cfg->pg_sql_dir);
	for (; (fc = family_served(cfg, n)) != NULL; n++) {
		char sql[200];

		ok(apply_dir(fc->sql_dir), "applied %s", fc->sql_dir);
		ok(rb_table_of(fc, &t[n], err, sizeof(err)) == 0, "%s: table %s", fc->name,
		    fc->table);
		/* Partitions to scan: an empty parent has no scan to show, and
		 * a range query prunes every partition outside it (the ranges
		 * below are on 2026-11-20, which a fresh database lacks). */
		snprintf(sql, sizeof(sql), "SELECT %s_ensure_partition(now())", fc->table);
		exec_ok(sql);
		snprintf(sql, sizeof(sql), "SELECT %s_ensure_partition('2026-11-20T12:00:00Z')",
		    fc->table);
		exec_ok(sql);
	}
	exec_ok("SELECT rejections_ensure_partition(now())");
	exec_ok("SELECT rejections_ensure_partition('2026-11-20T12:00:00Z')");
	exec_ok("SET enable_seqscan = off");

	rb_query_event(t, n, corr, &q) == 0 ? explain("GET /events/{id}", &q, false)
					    : (void)ok(0, "event SQL");
	rb_query_request(t, n, corr, &q) == 0 ? explain("GET /requests/{id}: events", &q, false)
					      : (void)ok(0, "request SQL");
	rb_query_request_rejections(corr, &q) == 0
	    ? explain("GET /requests/{id}: rejections", &q, false)
	    : (void)ok(0, "request rejections SQL");
	for (size_t i = 0; i < n; i++) {
		static const char *const forms[] = {"",
		    "since=2026-11-20T00:00:00Z&until=2026-11-21T00:00:00Z", "cursor=@", "type=x",
		    "type=x&since=2026-11-20T00:00:00Z&cursor=@"};
		struct rb_cursor ec = {
		    .us = 4102444800000000LL}; /* 2100: below it, every partition */

		snprintf(ec.corr, sizeof(ec.corr), "%s", corr);
		if (rb_cursor_encode(&ec, true, cur, sizeof(cur)) == -1)
			cur[0] = '\0';
		for (size_t k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
			char what[700];

			if (strncmp(forms[k], "type", 4) == 0 && t[i].type == NULL)
				continue;
			subst(query, sizeof(query), forms[k], cur);
			p = params(query, ev, true);
			snprintf(
			    what, sizeof(what), "GET /events?family=%s&%s", t[i].family, forms[k]);
			rb_query_events(&t[i], &p, &q) == 0 ? explain(what, &q, true)
							    : (void)ok(0, "%s: SQL", what);
		}
	}
	if (rb_cursor_encode(&c, false, cur, sizeof(cur)) == -1)
		cur[0] = '\0';
	{
		static const char *const forms[] = {"", "since=2026-11-20T00:00:00Z", "cursor=@",
		    "family=holded", "family=holded&cursor=@",
		    "family=holded&rule=not%20a%20number",
		    "family=holded&rule=x&since=2026-11-20T00:00:00Z&cursor=@"};

		for (size_t k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
			char what[700];

			subst(query, sizeof(query), forms[k], cur);
			p = params(query, rj, false);
			snprintf(what, sizeof(what), "GET /rejections?%s", forms[k]);
			rb_query_rejections(&p, &q) == 0 ? explain(what, &q, true)
							 : (void)ok(0, "%s: SQL", what);
		}
	}
	/* The daily counts: a range of days on the day's primary key, newest
	 * first. */
	for (size_t i = 0; i < n; i++) {
		char what[200];

		if (t[i].daily == NULL)
			continue;
		snprintf(what, sizeof(what), "GET /families/%s/daily", t[i].family);
		p = params("day=2026-11-20", RB_P_DAY | RB_P_DAYS, true);
		rb_query_daily(&t[i], p.day, p.days, &q) == 0 ? explain(what, &q, true)
							      : (void)ok(0, "%s: SQL", what);
	}
	config_free(cfg);
	PQfinish(pg);
	return tap_done();
}
