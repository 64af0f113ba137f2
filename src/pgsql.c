/* pgsql.c: SQL text and parameters for the families' tables; pure, no I/O. */
#include "pgsql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define US_PER_SEC INT64_C(1000000)
#define SEC_PER_DAY INT64_C(86400)
#define US_PER_DAY (US_PER_SEC * SEC_PER_DAY)

/* a / b rounded towards minus infinity (b > 0). */
static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b < 0)
		q--;
	return q;
}

/* Broken-down UTC time of SECONDS, years 1..9999 only. */
static int
utc_tm(int64_t seconds, struct tm *tm)
{
	time_t t = (time_t)seconds;

	if ((int64_t)t != seconds || gmtime_r(&t, tm) == NULL)
		return -1;
	if (tm->tm_year + 1900 < 1 || tm->tm_year + 1900 > 9999)
		return -1;
	return 0;
}

int
pgsql_timestamp(int64_t us, char *buf, size_t size)
{
	int64_t sec = floor_div(us, US_PER_SEC);
	/* Not us - sec * US_PER_SEC: that overflows near INT64_MIN. */
	int64_t frac = (us % US_PER_SEC + US_PER_SEC) % US_PER_SEC;
	struct tm tm;
	int n;

	if (utc_tm(sec, &tm) == -1)
		return -1;
	n = snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int64_t
pgsql_day(int64_t us)
{
	return floor_div(us, US_PER_DAY);
}

int
pgsql_partition_name(const char *table, int64_t us, char *buf, size_t size)
{
	struct tm tm;
	int n;

	if (utc_tm(pgsql_day(us) * SEC_PER_DAY, &tm) == -1)
		return -1;
	n = snprintf(
	    buf, size, "%s_%04d%02d%02d", table, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int
format_day(int64_t day, char *buf, size_t size)
{
	struct tm tm;
	int n;

	if (utc_tm(day * SEC_PER_DAY, &tm) == -1)
		return -1;
	n = snprintf(
	    buf, size, "%04d-%02d-%02d 00:00:00+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
pgsql_partition_bounds(int64_t us, char *from, char *to, size_t size)
{
	int64_t day = pgsql_day(us);

	if (format_day(day, from, size) == -1 || format_day(day + 1, to, size) == -1)
		return -1;
	return 0;
}

/* ---------------------------------------------------------------- tables */

static bool
sql_name(const char *s, size_t max)
{
	size_t n = 0;

	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return false;
	for (; s[n] != '\0'; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	return n <= max;
}

static bool
sql_type(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n > 2 && strcmp(s + n - 2, "[]") == 0)
		n -= 2;
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

int
pgsql_table_check(const struct pgsql_table *t, char *err, size_t errlen)
{
	if (!sql_name(t->name, PGSQL_MAX_TABLE_NAME)) {
		snprintf(err, errlen, "table \"%s\": not a lower-case SQL name of at most %d bytes",
		    t->name != NULL ? t->name : "", PGSQL_MAX_TABLE_NAME);
		return -1;
	}
	if (t->ncolumns == 0 || t->ncolumns > PGSQL_MAX_COLUMNS) {
		snprintf(err, errlen, "table %s: %zu columns, not 1 to %d", t->name, t->ncolumns,
		    PGSQL_MAX_COLUMNS);
		return -1;
	}
	for (size_t i = 0; i < t->ncolumns; i++) {
		const struct pgsql_column *c = &t->columns[i];

		if (!sql_name(c->name, 63) || !sql_type(c->type)) {
			snprintf(err, errlen,
			    "table %s: column %zu (%s %s): not a SQL name and type", t->name, i,
			    c->name != NULL ? c->name : "", c->type != NULL ? c->type : "");
			return -1;
		}
	}
	if (t->partition_column >= t->ncolumns ||
	    strcmp(t->columns[t->partition_column].type, "timestamptz") != 0) {
		snprintf(err, errlen, "table %s: the partition column is not a timestamptz column",
		    t->name);
		return -1;
	}
	return 0;
}

/* A growing string; out of memory is sticky and ends in NULL. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void
sbuf_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s != NULL ? b->s + b->len : NULL,
		    b->s != NULL ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s != NULL && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *s = realloc(b->s, cap);

		if (s == NULL) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

static char *
sbuf_finish(struct sbuf *b)
{
	if (b->oom) {
		free(b->s);
		return NULL;
	}
	return b->s;
}

static void
add_columns(struct sbuf *b, const struct pgsql_table *t)
{
	sbuf_add(b, "INSERT INTO %s (", t->name);
	for (size_t i = 0; i < t->ncolumns; i++)
		sbuf_add(b, "%s%s", i == 0 ? "" : ", ", t->columns[i].name);
	sbuf_add(b, ")");
}

char *
pgsql_insert_unnest_sql(const struct pgsql_table *t)
{
	struct sbuf b = {0};

	add_columns(&b, t);
	sbuf_add(&b, " SELECT * FROM unnest(");
	for (size_t i = 0; i < t->ncolumns; i++)
		sbuf_add(&b, "%s$%zu::%s[]", i == 0 ? "" : ", ", i + 1, t->columns[i].type);
	sbuf_add(&b, ") ON CONFLICT DO NOTHING");
	return sbuf_finish(&b);
}

char *
pgsql_ensure_partition_sql(const struct pgsql_table *t)
{
	struct sbuf b = {0};

	sbuf_add(&b, "SELECT %s_ensure_partition($1::timestamptz)", t->name);
	return sbuf_finish(&b);
}

size_t
pgsql_values_max_rows(const struct pgsql_table *t)
{
	return t->ncolumns == 0 ? 0 : 65535 / t->ncolumns;
}

char *
pgsql_insert_values_sql(const struct pgsql_table *t, size_t nrows)
{
	struct sbuf b = {0};
	size_t p = 1;

	if (nrows == 0 || nrows > pgsql_values_max_rows(t))
		return NULL;
	add_columns(&b, t);
	sbuf_add(&b, " VALUES ");
	for (size_t r = 0; r < nrows; r++) {
		sbuf_add(&b, "%s(", r == 0 ? "" : ", ");
		for (size_t c = 0; c < t->ncolumns; c++)
			sbuf_add(&b, "%s$%zu", c == 0 ? "" : ", ", p++);
		sbuf_add(&b, ")");
	}
	sbuf_add(&b, " ON CONFLICT DO NOTHING");
	return sbuf_finish(&b);
}

/* ---------------------------------------------------------------- arrays */

struct pgsql_array {
	char *s;
	size_t len, cap;
	size_t n;
	bool oom;
};

static int
array_reserve(struct pgsql_array *a, size_t more)
{
	char *s;
	size_t cap;

	if (a->oom)
		return -1;
	if (a->len + more <= a->cap)
		return 0;
	cap = a->cap * 2;
	if (cap < a->len + more)
		cap = a->len + more;
	s = realloc(a->s, cap);
	if (s == NULL) {
		a->oom = true;
		return -1;
	}
	a->s = s;
	a->cap = cap;
	return 0;
}

struct pgsql_array *
pgsql_array_new(size_t size_hint)
{
	struct pgsql_array *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->cap = size_hint + size_hint / 8 + 16;
	a->s = malloc(a->cap);
	if (a->s == NULL) {
		free(a);
		return NULL;
	}
	a->s[a->len++] = '{';
	return a;
}

int
pgsql_array_add(struct pgsql_array *a, const char *elem)
{
	size_t quoted = 0;
	const char *p;

	if (elem == NULL) {
		/* unquoted: the one spelling of SQL NULL in an array literal */
		if (array_reserve(a, 7) == -1)
			return -1;
		if (a->n++ > 0)
			a->s[a->len++] = ',';
		memcpy(a->s + a->len, "NULL", 4);
		a->len += 4;
		return 0;
	}
	for (p = elem; *p != '\0'; p++)
		quoted += (*p == '"' || *p == '\\') ? 2 : 1;
	/* separator, two quotes, and room for the closing brace and NUL */
	if (array_reserve(a, quoted + 5) == -1)
		return -1;
	if (a->n++ > 0)
		a->s[a->len++] = ',';
	a->s[a->len++] = '"';
	for (p = elem; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			a->s[a->len++] = '\\';
		a->s[a->len++] = *p;
	}
	a->s[a->len++] = '"';
	return 0;
}

char *
pgsql_array_finish(struct pgsql_array *a)
{
	char *s;

	if (a == NULL)
		return NULL;
	if (array_reserve(a, 2) == -1) {
		pgsql_array_free(a);
		return NULL;
	}
	a->s[a->len++] = '}';
	a->s[a->len] = '\0';
	s = a->s;
	free(a);
	return s;
}

void
pgsql_array_free(struct pgsql_array *a)
{
	if (a == NULL)
		return;
	free(a->s);
	free(a);
}

enum pgsql_errclass
pgsql_classify(const char *sqlstate)
{
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return PGSQL_ERR_RESET;
	if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
	    strncmp(sqlstate, "54", 2) == 0)
		return PGSQL_ERR_DATA;
	if (strncmp(sqlstate, "40", 2) == 0 || strncmp(sqlstate, "53", 2) == 0 ||
	    strncmp(sqlstate, "55", 2) == 0 || strncmp(sqlstate, "58", 2) == 0 ||
	    strcmp(sqlstate, "57014") == 0)
		return PGSQL_ERR_RETRY;
	return PGSQL_ERR_RESET;
}
