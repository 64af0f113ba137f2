/* pgsql.c: SQL text and parameters for the events table; pure, no I/O. */
#include "pgsql.h"

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
pgsql_partition_name(int64_t us, char *buf, size_t size)
{
	struct tm tm;
	int n;

	if (utc_tm(pgsql_day(us) * SEC_PER_DAY, &tm) == -1)
		return -1;
	n = snprintf(
	    buf, size, "events_%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
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

char *
pgsql_insert_values_sql(size_t nrows)
{
	static const char head[] = "INSERT INTO events (" PGSQL_EVENTS_COLUMNS ") VALUES ";
	static const char tail[] = " ON CONFLICT DO NOTHING";
	/* "($nnnnn, ... x8), " is at most 8 * 8 + 4 bytes a row. */
	size_t cap, len;
	char *s;

	if (nrows == 0 || nrows > PGSQL_VALUES_MAX_ROWS)
		return NULL;
	cap = sizeof(head) + sizeof(tail) + nrows * 68;
	s = malloc(cap);
	if (s == NULL)
		return NULL;
	memcpy(s, head, sizeof(head) - 1);
	len = sizeof(head) - 1;
	for (size_t r = 0; r < nrows; r++) {
		size_t p = r * PGSQL_NCOLS;

		len += (size_t)snprintf(s + len, cap - len,
		    "%s($%zu, $%zu, $%zu, $%zu, $%zu, $%zu, $%zu, $%zu)", r == 0 ? "" : ", ", p + 1,
		    p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8);
	}
	memcpy(s + len, tail, sizeof(tail));
	return s;
}

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
