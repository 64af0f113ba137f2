/* pgsql.c: SQL text and parameters for the families' tables; pure, no I/O. */
#include "pgsql.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timefmt.h"

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

bool
pgsql_timestamp_valid(int64_t us)
{
	/* 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z */
	return us >= INT64_C(-62135596800) * US_PER_SEC && us < INT64_C(253402300800) * US_PER_SEC;
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
	/* runs between the characters to escape go by memcpy */
	for (p = elem; *p != '\0';) {
		size_t run = strcspn(p, "\"\\");

		quoted += run;
		p += run;
		if (*p != '\0') {
			quoted += 2;
			p++;
		}
	}
	/* separator, two quotes, and room for the closing brace and NUL */
	if (array_reserve(a, quoted + 5) == -1)
		return -1;
	if (a->n++ > 0)
		a->s[a->len++] = ',';
	a->s[a->len++] = '"';
	for (p = elem; *p != '\0';) {
		size_t run = strcspn(p, "\"\\");

		memcpy(a->s + a->len, p, run);
		a->len += run;
		p += run;
		if (*p != '\0') {
			a->s[a->len++] = '\\';
			a->s[a->len++] = *p++;
		}
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

/* ---------------------------------------------------------------- COPY */

char *
pgsql_copy_sql(const struct pgsql_table *t, bool staging, bool binary)
{
	struct sbuf b = {0};

	sbuf_add(&b, "COPY %s%s%s (", staging ? "pg_temp." : "", t->name, staging ? "_stage" : "");
	for (size_t i = 0; i < t->ncolumns; i++)
		sbuf_add(&b, "%s%s", i == 0 ? "" : ", ", t->columns[i].name);
	sbuf_add(&b, ") FROM STDIN (FORMAT %s)", binary ? "binary" : "text");
	return sbuf_finish(&b);
}

char *
pgsql_stage_create_sql(const struct pgsql_table *t)
{
	struct sbuf b = {0};

	/* With its defaults and generated columns: LIKE alone copies NOT NULL
	 * but not the expression, so a generated NOT NULL column (retail's
	 * transaction_id) would refuse every row a replay stages. */
	sbuf_add(&b,
	    "CREATE TEMP TABLE IF NOT EXISTS %s_stage (LIKE %s INCLUDING DEFAULTS INCLUDING "
	    "GENERATED INCLUDING IDENTITY) ON COMMIT DELETE ROWS",
	    t->name, t->name);
	return sbuf_finish(&b);
}

char *
pgsql_stage_insert_sql(const struct pgsql_table *t)
{
	struct sbuf b = {0};

	add_columns(&b, t);
	sbuf_add(&b, " SELECT ");
	for (size_t i = 0; i < t->ncolumns; i++)
		sbuf_add(&b, "%s%s", i == 0 ? "" : ", ", t->columns[i].name);
	sbuf_add(&b, " FROM pg_temp.%s_stage ON CONFLICT DO NOTHING", t->name);
	return sbuf_finish(&b);
}

/* PostgreSQL's epoch, 2000-01-01T00:00:00Z, in Unix microseconds. */
#define PG_EPOCH_US (INT64_C(946684800) * US_PER_SEC)
/* The inet family bytes of the binary format (AF_INET + 0, AF_INET + 1). */
#define PG_AF_INET 2
#define PG_AF_INET6 3

enum copy_kind { K_TEXT, K_JSONB, K_UUID, K_TIMESTAMPTZ, K_INT8, K_INET, K_OTHER };

struct pgsql_copy {
	const struct pgsql_table *t;
	bool binary;
	bool oom, finished;
	size_t nrows;
	unsigned char *s;
	size_t len, cap;
	enum copy_kind kinds[PGSQL_MAX_COLUMNS];
};

static enum copy_kind
copy_kind(const char *type)
{
	static const struct {
		const char *name;
		enum copy_kind kind;
	} kinds[] = {{"text", K_TEXT}, {"jsonb", K_JSONB}, {"uuid", K_UUID},
	    {"timestamptz", K_TIMESTAMPTZ}, {"int8", K_INT8}, {"bigint", K_INT8}, {"inet", K_INET}};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(type, kinds[i].name) == 0)
			return kinds[i].kind;
	return K_OTHER;
}

static int
copy_reserve(struct pgsql_copy *c, size_t more)
{
	unsigned char *s;
	size_t cap;

	if (c->oom)
		return -1;
	if (c->len + more <= c->cap)
		return 0;
	cap = c->cap * 2;
	if (cap < c->len + more)
		cap = c->len + more;
	if ((s = realloc(c->s, cap)) == NULL) {
		c->oom = true;
		return -1;
	}
	c->s = s;
	c->cap = cap;
	return 0;
}

/* Room was reserved by the caller. */
static void
put_be(struct pgsql_copy *c, uint64_t v, size_t bytes)
{
	for (size_t i = 0; i < bytes; i++)
		c->s[c->len++] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

struct pgsql_copy *
pgsql_copy_new(const struct pgsql_table *t, bool binary, size_t size_hint)
{
	/* signature, flags, header extension length */
	static const unsigned char sig[11] = "PGCOPY\n\377\r\n";
	struct pgsql_copy *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->t = t;
	c->binary = binary;
	for (size_t i = 0; i < t->ncolumns && i < PGSQL_MAX_COLUMNS; i++)
		c->kinds[i] = copy_kind(t->columns[i].type);
	if (copy_reserve(c, size_hint + 64) == -1) {
		free(c);
		return NULL;
	}
	if (binary) {
		memcpy(c->s, sig, sizeof(sig));
		c->len = sizeof(sig);
		put_be(c, 0, 4);
		put_be(c, 0, 4);
	}
	return c;
}

static int
hex_digit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * What uuid_in accepts: 32 hex digits, either case, a '-' allowed after
 * any group of four, all of it optionally inside braces.
 */
static bool
parse_uuid(const char *s, unsigned char out[16])
{
	bool braces = *s == '{';

	if (braces)
		s++;
	for (int i = 0; i < 16; i++) {
		int hi = hex_digit((unsigned char)s[0]),
		    lo = hi < 0 ? -1 : hex_digit((unsigned char)s[1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
		s += 2;
		if (*s == '-' && i % 2 == 1 && i < 15)
			s++;
	}
	if (braces && *s++ != '}')
		return false;
	return *s == '\0';
}

/* Optional sign and decimal digits, nothing else, within int64. */
static bool
parse_int8(const char *s, int64_t *out)
{
	bool neg = *s == '-';
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

	if (*s == '-' || *s == '+')
		s++;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (lim - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* An address inet_pton() reads, optionally "/BITS": FAMILY, BITS,
 * ADDR (4 or 16 bytes, *NB).  Anything else is left to the server. */
static bool
parse_inet(const char *s, unsigned char *family, unsigned char *bits, unsigned char addr[16],
    unsigned char *nb)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned long b;
	char *end;

	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, addr) == 1) {
		*family = PG_AF_INET;
		*nb = 4;
	} else if (inet_pton(AF_INET6, host, addr) == 1) {
		*family = PG_AF_INET6;
		*nb = 16;
	} else {
		return false;
	}
	*bits = (unsigned char)(*nb * 8);
	if (slash == NULL)
		return true;
	if (slash[1] < '0' || slash[1] > '9' || strlen(slash + 1) > 3)
		return false;
	b = strtoul(slash + 1, &end, 10);
	if (*end != '\0' || b > (unsigned long)*nb * 8)
		return false;
	*bits = (unsigned char)b;
	return true;
}

/* One field of the binary format: length, then the bytes. */
static int
bin_field(
    struct pgsql_copy *c, enum copy_kind kind, int64_t partition_us, bool partition, const char *v)
{
	unsigned char u[16], family, bits, nb;
	int64_t i8;
	bool has_offset;
	size_t n;

	if (partition) {
		if (copy_reserve(c, 12) == -1)
			return -1;
		put_be(c, 8, 4);
		put_be(c, (uint64_t)(partition_us - PG_EPOCH_US), 8);
		return 0;
	}
	if (v == NULL) {
		if (copy_reserve(c, 4) == -1)
			return -1;
		put_be(c, UINT32_MAX, 4); /* -1: NULL */
		return 0;
	}
	switch (kind) {
	case K_TEXT:
	case K_JSONB:
		n = strlen(v) + (kind == K_JSONB);
		if (n > INT32_MAX || copy_reserve(c, 4 + n) == -1)
			return -1;
		put_be(c, n, 4);
		if (kind == K_JSONB)
			c->s[c->len++] = 1; /* jsonb's binary format version */
		memcpy(c->s + c->len, v, strlen(v));
		c->len += strlen(v);
		return 0;
	case K_UUID:
		if (!parse_uuid(v, u))
			return 1;
		if (copy_reserve(c, 20) == -1)
			return -1;
		put_be(c, 16, 4);
		memcpy(c->s + c->len, u, 16);
		c->len += 16;
		return 0;
	case K_TIMESTAMPTZ:
		/* without an offset the server would read the session's zone */
		if (!timefmt_parse_offset(v, &i8, &has_offset) || !has_offset)
			return 1;
		if (copy_reserve(c, 12) == -1)
			return -1;
		put_be(c, 8, 4);
		put_be(c, (uint64_t)(i8 - PG_EPOCH_US), 8);
		return 0;
	case K_INT8:
		if (!parse_int8(v, &i8))
			return 1;
		if (copy_reserve(c, 12) == -1)
			return -1;
		put_be(c, 8, 4);
		put_be(c, (uint64_t)i8, 8);
		return 0;
	case K_INET:
		if (!parse_inet(v, &family, &bits, u, &nb))
			return 1;
		if (copy_reserve(c, 8 + nb) == -1)
			return -1;
		put_be(c, 4u + nb, 4);
		c->s[c->len++] = family;
		c->s[c->len++] = bits;
		c->s[c->len++] = 0; /* inet, not cidr */
		c->s[c->len++] = nb;
		memcpy(c->s + c->len, u, nb);
		c->len += nb;
		return 0;
	case K_OTHER:
	default:
		return 1;
	}
}

/* One field of the text format: backslash escapes, \N for NULL. */
static int
text_field(struct pgsql_copy *c, const char *v)
{
	size_t n = 0;

	if (v == NULL) {
		if (copy_reserve(c, 3) == -1)
			return -1;
		memcpy(c->s + c->len, "\\N", 2);
		c->len += 2;
		return 0;
	}
	for (const char *p = v; *p != '\0'; p++)
		n += (*p == '\\' || *p == '\t' || *p == '\n' || *p == '\r') ? 2 : 1;
	if (copy_reserve(c, n + 1) == -1)
		return -1;
	for (const char *p = v; *p != '\0'; p++) {
		char e = *p == '\t' ? 't' : *p == '\n' ? 'n' : *p == '\r' ? 'r' : *p;

		if (e != *p || *p == '\\')
			c->s[c->len++] = '\\';
		c->s[c->len++] = (unsigned char)e;
	}
	return 0;
}

int
pgsql_copy_row(struct pgsql_copy *c, int64_t partition_us, const char *const *values)
{
	const struct pgsql_table *t = c->t;
	size_t start = c->len;
	char ts[PGSQL_TIMESTAMP_SIZE];
	int r = 0;

	if (c->oom || c->finished)
		return -1;
	if (c->binary) {
		if (copy_reserve(c, 2) == -1)
			return -1;
		put_be(c, t->ncolumns, 2);
	} else if (pgsql_timestamp(partition_us, ts, sizeof(ts)) == -1) {
		return 1;
	}
	for (size_t i = 0; i < t->ncolumns && r == 0; i++) {
		bool part = i == t->partition_column;

		if (c->binary) {
			r = bin_field(c, c->kinds[i], partition_us, part, part ? NULL : values[i]);
		} else {
			if (i > 0 && copy_reserve(c, 1) == 0)
				c->s[c->len++] = '\t';
			r = text_field(c, part ? ts : values[i]);
		}
	}
	if (r == 0 && !c->binary && copy_reserve(c, 1) == 0)
		c->s[c->len++] = '\n';
	if (c->oom)
		return -1;
	if (r != 0) {
		c->len = start; /* the builder is as it was */
		return r;
	}
	c->nrows++;
	return 0;
}

size_t
pgsql_copy_rows(const struct pgsql_copy *c)
{
	return c->nrows;
}

const char *
pgsql_copy_finish(struct pgsql_copy *c, size_t *len)
{
	if (!c->finished && c->binary && copy_reserve(c, 2) == 0)
		put_be(c, UINT16_MAX, 2); /* -1: the trailer */
	c->finished = true;
	if (c->oom)
		return NULL;
	*len = c->len;
	return (const char *)c->s;
}

void
pgsql_copy_free(struct pgsql_copy *c)
{
	if (c == NULL)
		return;
	free(c->s);
	free(c);
}
