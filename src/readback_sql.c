/* readback_sql.c: parameters, cursors and SQL of the read-back API; no I/O. */
#include "readback_sql.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "family.h"
#include "ids.h"
#include "json_strict.h"
#include "pgsql.h"
#include "timefmt.h"

/* The enrichment metadata every family's events carry (codec_enrich.c). */
#define CORRELATION_SOURCE "metadata.correlationId"

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A lower-case SQL name that needs no quoting: it is pasted into SQL. */
static bool
plain_name(const char *s)
{
	size_t n = 0;

	if (s == NULL || !((*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (; *s != '\0'; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return n <= 63;
}

int
rb_table_of(const struct config_family *fc, struct rb_table *t, char *err, size_t errlen)
{
	const struct family *f = fc->family;
	const struct codec_schema *s = &f->codec;
	bool type_ok = f->type_column == NULL;

	*t = (struct rb_table){.family = f->name,
	    .name = fc->table,
	    .ts = s->partition_column,
	    .type = f->type_column,
	    .daily = f->daily};
	for (size_t i = 0; i < s->ncolumns; i++) {
		const struct codec_column *c = &s->columns[i];

		if (c->kind == CODEC_COL_UUID && strcmp(c->source, CORRELATION_SOURCE) == 0)
			t->corr = c->name;
		if (c->kind == CODEC_COL_JSONB && c->source[0] == '\0')
			t->event = c->name;
		if (f->type_column != NULL && c->kind == CODEC_COL_TEXT &&
		    strcmp(c->name, f->type_column) == 0)
			type_ok = true;
	}
	if (!plain_name(f->name) || !plain_name(t->name) || !plain_name(t->ts)) {
		seterr(err, errlen, "family %s: its table or partition column is not a plain name",
		    f->name);
		return -1;
	}
	if (!plain_name(t->corr) || !plain_name(t->event)) {
		seterr(err, errlen,
		    "family %s: no uuid column of " CORRELATION_SOURCE
		    " or jsonb column of the whole event",
		    f->name);
		return -1;
	}
	if (!type_ok || (t->type != NULL && !plain_name(t->type))) {
		seterr(err, errlen, "family %s: type_column is not a text column of its table",
		    f->name);
		return -1;
	}
	if (f->daily != NULL &&
	    (!plain_name(f->daily->table) || !plain_name(f->daily->count_column))) {
		seterr(err, errlen,
		    "family %s: its daily table or count column is not a plain name", f->name);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ parameters */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode S[0..N) into OUT (SIZE bytes, NUL-terminated): '+' is a
 * space.  False for a bad escape, a decoded NUL or text that does not fit. */
static bool
unescape(const char *s, size_t n, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return false;
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			if (c == '\0')
				return false;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o + 1 >= size)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* Valid UTF-8 without control characters: what a value may hold. */
static bool
printable(const char *s)
{
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return json_strict_utf8_valid(s, strlen(s));
}

/* Characters of valid UTF-8 S: the bytes that start one. */
static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static const struct {
	const char *name;
	unsigned bit;
} param_names[] = {
    {"family", RB_P_FAMILY},
    {"since", RB_P_SINCE},
    {"until", RB_P_UNTIL},
    {"type", RB_P_TYPE},
    {"rule", RB_P_RULE},
    {"limit", RB_P_LIMIT},
    {"cursor", RB_P_CURSOR},
    {"day", RB_P_DAY},
    {"days", RB_P_DAYS},
};

static int
parse_time(const char *name, const char *v, int64_t *us, char *err, size_t errlen)
{
	char ts[PGSQL_TIMESTAMP_SIZE];

	if (!timefmt_parse(v, us) || pgsql_timestamp(*us, ts, sizeof(ts)) == -1) {
		seterr(err, errlen,
		    "%s: not an RFC 3339 time such as 2026-11-20T09:15:02Z (years 0001-9999)",
		    name);
		return -1;
	}
	return 0;
}

static int
parse_limit(const char *v, long *limit, char *err, size_t errlen)
{
	char *end;
	long n;

	errno = 0;
	n = v[0] >= '0' && v[0] <= '9' ? strtol(v, &end, 10) : -1;
	if (n < 1 || n > RB_LIMIT_MAX || errno != 0 || *end != '\0') {
		seterr(err, errlen, "limit: not an integer from 1 to %d", RB_LIMIT_MAX);
		return -1;
	}
	*limit = n;
	return 0;
}

#define US_PER_DAY (86400LL * 1000000)

void
rb_day_format(int64_t day, char out[11])
{
	char text[TIMEFMT_SIZE];

	timefmt_us(day * US_PER_DAY, text);
	memcpy(out, text, 10);
	out[10] = '\0';
}

/* A full-date YYYY-MM-DD, and only that: the day is the answer's key. */
static int
parse_day(const char *v, int64_t *day, char *err, size_t errlen)
{
	static const char form[] = "dddd-dd-dd";
	char ts[32], back[11];
	int64_t us;
	size_t i;

	for (i = 0; form[i] != '\0'; i++)
		if (form[i] == 'd' ? !(v[i] >= '0' && v[i] <= '9') : v[i] != form[i])
			break;
	snprintf(ts, sizeof(ts), "%.10sT00:00:00Z", v);
	if (form[i] != '\0' || v[i] != '\0' || !timefmt_parse(ts, &us) ||
	    !pgsql_timestamp_valid(us))
		goto bad;
	/* A day the parser rolled over (02-30) is not that date. */
	rb_day_format(pgsql_day(us), back);
	if (strcmp(back, v) != 0)
		goto bad;
	*day = pgsql_day(us);
	return 0;
bad:
	seterr(err, errlen, "day: not a date such as 2026-11-20 (years 0001-9999)");
	return -1;
}

static int
parse_days(const char *v, long *days, char *err, size_t errlen)
{
	char *end;
	long n;

	errno = 0;
	n = v[0] >= '0' && v[0] <= '9' ? strtol(v, &end, 10) : -1;
	if (n < 1 || n > RB_DAYS_MAX || errno != 0 || *end != '\0') {
		seterr(err, errlen, "days: not an integer from 1 to %d", RB_DAYS_MAX);
		return -1;
	}
	*days = n;
	return 0;
}

static int
parse_one(const char *name, unsigned bit, const char *v, bool events, struct rb_params *p,
    char *err, size_t errlen)
{
	switch (bit) {
	case RB_P_FAMILY:
		if (!plain_name(v) || strlen(v) >= sizeof(p->family)) {
			seterr(err, errlen, "family: not a family name");
			return -1;
		}
		snprintf(p->family, sizeof(p->family), "%s", v);
		return 0;
	case RB_P_SINCE:
		return parse_time(name, v, &p->since_us, err, errlen);
	case RB_P_UNTIL:
		return parse_time(name, v, &p->until_us, err, errlen);
	case RB_P_TYPE:
	case RB_P_RULE:
		if (v[0] == '\0' || utf8_chars(v) > RB_TEXT_MAX) {
			seterr(err, errlen, "%s: empty or longer than %d characters", name,
			    RB_TEXT_MAX);
			return -1;
		}
		snprintf(bit == RB_P_TYPE ? p->type : p->rule, sizeof(p->type), "%s", v);
		return 0;
	case RB_P_LIMIT:
		return parse_limit(v, &p->limit, err, errlen);
	case RB_P_DAY:
		return parse_day(v, &p->day, err, errlen);
	case RB_P_DAYS:
		return parse_days(v, &p->days, err, errlen);
	case RB_P_CURSOR:
	default:
		return rb_cursor_decode(v, events, &p->cursor, err, errlen);
	}
}

int
rb_params_parse(
    const char *query, unsigned allowed, bool events, struct rb_params *p, char *err, size_t errlen)
{
	char name[32], value[1024];
	const char *s = query != NULL ? query : "";

	*p = (struct rb_params){.limit = RB_LIMIT_DEFAULT, .days = RB_DAYS_DEFAULT};
	while (*s != '\0') {
		size_t len = strcspn(s, "&"), klen = strcspn(s, "&=");
		unsigned bit = 0;

		if (len == 0) {
			s++;
			continue;
		}
		if (!unescape(s, klen, name, sizeof(name)))
			snprintf(name, sizeof(name), "?");
		for (size_t i = 0; i < sizeof(param_names) / sizeof(param_names[0]); i++)
			if (strcmp(name, param_names[i].name) == 0)
				bit = param_names[i].bit;
		if ((bit & allowed) == 0) {
			seterr(
			    err, errlen, "unknown parameter \"%s\"", printable(name) ? name : "?");
			return -1;
		}
		if (p->given & bit) {
			seterr(err, errlen, "%s: given twice", name);
			return -1;
		}
		p->given |= bit;
		if (!unescape(
			s + klen + (klen < len), len - klen - (klen < len), value, sizeof(value))) {
			seterr(err, errlen,
			    "%s: bad percent-encoding, a NUL, or longer than %zu bytes", name,
			    sizeof(value) - 1);
			return -1;
		}
		if (!printable(value)) {
			seterr(err, errlen, "%s: not UTF-8 text without control characters", name);
			return -1;
		}
		if (parse_one(name, bit, value, events, p, err, errlen) == -1)
			return -1;
		s += len;
	}
	if ((p->given & RB_P_SINCE) && (p->given & RB_P_UNTIL) && p->since_us >= p->until_us) {
		seterr(err, errlen, "since: not before until");
		return -1;
	}
	if ((p->given & RB_P_DAY) && !pgsql_timestamp_valid((p->day - p->days + 1) * US_PER_DAY)) {
		seterr(err, errlen, "days: the days before day= reach before 0001-01-01");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ cursors */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
rb_cursor_encode(const struct rb_cursor *c, bool events, char *out, size_t size)
{
	char text[RB_CURSOR_MAX];
	size_t n, o = 0;
	int len;

	if (events)
		len = snprintf(text, sizeof(text), "e1 %lld %s", (long long)c->us, c->corr);
	else
		len = snprintf(text, sizeof(text), "r1 %lld %d %lld %s", (long long)c->us,
		    (int)c->partition, (long long)c->offset, c->topic);
	if (len < 0 || (size_t)len >= sizeof(text))
		return -1;
	n = (size_t)len;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)text[i] << 16;
		size_t k = n - i < 3 ? n - i : 3;

		if (k > 1)
			v |= (uint32_t)(unsigned char)text[i + 1] << 8;
		if (k > 2)
			v |= (unsigned char)text[i + 2];
		if (o + k + 2 > size)
			return -1;
		for (size_t j = 0; j <= k; j++)
			out[o++] = b64url[(v >> (18 - 6 * j)) & 63];
	}
	if (o >= size || o > RB_CURSOR_MAX)
		return -1;
	out[o] = '\0';
	return 0;
}

/* Strict base64url without padding into OUT; -1 for anything else. */
static int
b64url_decode(const char *s, char *out, size_t size)
{
	size_t n = strlen(s), o = 0;
	uint32_t v = 0;
	int bits = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *at = memchr(b64url, s[i], 64);

		if (s[i] == '\0' || at == NULL)
			return -1;
		v = v << 6 | (uint32_t)(at - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= size)
				return -1;
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	/* The bits left over must be zero: one text, one cursor. */
	if (bits > 0 && (v & ((1u << bits) - 1)) != 0)
		return -1;
	out[o] = '\0';
	return (int)o;
}

static bool
kafka_topic_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 249)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			(*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* A decimal integer of digits and an optional '-', all of S[0..) up to
 * the next space or the end, into *V; the rest after it into *END. */
static bool
number(const char *s, long long lo, long long hi, long long *v, const char **end)
{
	char *e;

	if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
		return false;
	errno = 0;
	*v = strtoll(s, &e, 10);
	if (errno != 0 || *v < lo || *v > hi || (*e != ' ' && *e != '\0'))
		return false;
	*end = e;
	return true;
}

int
rb_cursor_decode(const char *text, bool events, struct rb_cursor *c, char *err, size_t errlen)
{
	char buf[RB_CURSOR_MAX];
	const char *s = buf;
	long long us, partition, offset;
	char ts[PGSQL_TIMESTAMP_SIZE];

	*c = (struct rb_cursor){0};
	if (strlen(text) > RB_CURSOR_MAX || b64url_decode(text, buf, sizeof(buf)) < 0)
		goto bad;
	if (strncmp(s, events ? "e1 " : "r1 ", 3) != 0)
		goto bad;
	s += 3;
	if (!number(s, INT64_MIN, INT64_MAX, &us, &s) || *s++ != ' ' ||
	    pgsql_timestamp(us, ts, sizeof(ts)) == -1)
		goto bad;
	c->us = us;
	if (events) {
		if (strlen(s) != 36 || !ids_canonical(s))
			goto bad;
		memcpy(c->corr, s, 37);
		return 0;
	}
	if (!number(s, 0, INT32_MAX, &partition, &s) || *s++ != ' ' ||
	    !number(s, 0, INT64_MAX, &offset, &s) || *s++ != ' ' || !kafka_topic_name(s))
		goto bad;
	c->partition = (int32_t)partition;
	c->offset = offset;
	snprintf(c->topic, sizeof(c->topic), "%s", s);
	return 0;
bad:
	seterr(err, errlen, "cursor: not a cursor this endpoint gave (pass its \"next\" as is)");
	return -1;
}

bool
rb_correlation_id(const char *segment, char out[37], char *err, size_t errlen)
{
	uint8_t id[16];
	enum ids_form form;

	if (strlen(segment) > 38 || !ids_parse(segment, id, &form) || form != IDS_FORM_UUID) {
		seterr(err, errlen,
		    "not a correlationId (a UUID such as "
		    "019aa0f3-7c21-7d3e-9a41-5b2e00000000)");
		return false;
	}
	ids_format(id, out);
	return true;
}

/* ------------------------------------------------------------ SQL */

/* A growing string; out of memory is sticky. */
struct sb {
	char *p;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = b->p != NULL ? vsnprintf(b->p + b->len, room, fmt, ap) : -2;
		va_end(ap);
		if (n == -1) {
			b->failed = true;
			return;
		}
		if (n >= 0 && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (n > 0 ? (size_t)n : 0) + 256;
		char *p = realloc(b->p, cap);

		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static int
sb_finish(struct sb *b, struct rb_query *q)
{
	if (b->failed) {
		free(b->p);
		rb_query_free(q);
		return -1;
	}
	q->sql = b->p;
	for (int i = 0; i < q->nparams; i++)
		if (q->values[i] == NULL) {
			rb_query_free(q);
			return -1;
		}
	return 0;
}

static int add_param(struct rb_query *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append a parameter; its number ($N). */
static int
add_param(struct rb_query *q, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (q->nparams == RB_MAX_PARAMS)
		return 0;
	q->values[q->nparams++] = n >= 0 && (size_t)n < sizeof(buf) ? strdup(buf) : NULL;
	return q->nparams;
}

static int
add_time(struct rb_query *q, int64_t us)
{
	char ts[PGSQL_TIMESTAMP_SIZE];

	if (pgsql_timestamp(us, ts, sizeof(ts)) == -1)
		ts[0] = '\0'; /* the parser refused such instants already */
	return add_param(q, "%s", ts);
}

void
rb_query_free(struct rb_query *q)
{
	free(q->sql);
	for (int i = 0; i < q->nparams; i++)
		free(q->values[i]);
	*q = (struct rb_query){0};
}

/* The columns of an events answer, from table T. */
static void
events_select(struct sb *b, const struct rb_table *t)
{
	sb_printf(b,
	    "SELECT '%s'::text AS family, %s AS correlation_id, "
	    "(extract(epoch FROM %s) * 1000000)::int8 AS time_us, %s AS event FROM %s",
	    t->family, t->corr, t->ts, t->event, t->name);
}

int
rb_query_event(const struct rb_table *t, size_t n, const char *corr, struct rb_query *q)
{
	struct sb b = {0};
	int id;

	*q = (struct rb_query){0};
	id = add_param(q, "%s", corr);
	for (size_t i = 0; i < n; i++) {
		sb_printf(&b, "%s(", i > 0 ? " UNION ALL " : "");
		events_select(&b, &t[i]);
		sb_printf(&b, " WHERE %s = $%d::uuid)", t[i].corr, id);
	}
	sb_printf(&b, " LIMIT 1");
	return n == 0 ? (rb_query_free(q), -1) : sb_finish(&b, q);
}

/* The bounds of CORR's request: [first, last] correlation ids. */
static void
request_range(const char *corr, struct rb_query *q, int *lo, int *hi)
{
	uint8_t id[16], first[16], last[16];
	char a[IDS_TEXT_SIZE], z[IDS_TEXT_SIZE];

	if (!ids_parse(corr, id, NULL))
		memset(id, 0, sizeof(id)); /* rb_correlation_id() checked it */
	ids_batch_range(id, first, last);
	ids_format(first, a);
	ids_format(last, z);
	*lo = add_param(q, "%s", a);
	*hi = add_param(q, "%s", z);
}

int
rb_query_request(const struct rb_table *t, size_t n, const char *corr, struct rb_query *q)
{
	struct sb b = {0};
	int lo, hi;

	*q = (struct rb_query){0};
	request_range(corr, q, &lo, &hi);
	for (size_t i = 0; i < n; i++) {
		sb_printf(&b, "%s(", i > 0 ? " UNION ALL " : "");
		events_select(&b, &t[i]);
		sb_printf(&b, " WHERE %s BETWEEN $%d::uuid AND $%d::uuid)", t[i].corr, lo, hi);
	}
	sb_printf(&b, " ORDER BY correlation_id, time_us LIMIT %d", RB_REQUEST_MAX + 1);
	return n == 0 ? (rb_query_free(q), -1) : sb_finish(&b, q);
}

static void
rejections_select(struct sb *b)
{
	sb_printf(b, "SELECT (extract(epoch FROM received_at) * 1000000)::int8, family, stage, "
		     "correlation_id, path, rule, message, event, "
		     "translate(encode(event_bytes, 'base64'), E'\\n', ''), kafka_topic, "
		     "kafka_partition, kafka_offset, origin_topic, origin_partition, origin_offset "
		     "FROM rejections");
}

int
rb_query_request_rejections(const char *corr, struct rb_query *q)
{
	struct sb b = {0};
	int lo, hi;

	*q = (struct rb_query){0};
	request_range(corr, q, &lo, &hi);
	rejections_select(&b);
	sb_printf(&b,
	    " WHERE correlation_id BETWEEN $%d::uuid AND $%d::uuid"
	    " ORDER BY correlation_id, received_at LIMIT %d",
	    lo, hi, RB_REQUEST_MAX + 1);
	return sb_finish(&b, q);
}

int
rb_query_events(const struct rb_table *t, const struct rb_params *p, struct rb_query *q)
{
	struct sb b = {0};
	const char *and = " WHERE";

	*q = (struct rb_query){0};
	if ((p->given & RB_P_TYPE) && t->type == NULL)
		return -1;
	events_select(&b, t);
	if (p->given & RB_P_TYPE) {
		sb_printf(&b, "%s %s = $%d", and, t->type, add_param(q, "%s", p->type));
		and = " AND";
	}
	if (p->given & RB_P_SINCE) {
		sb_printf(&b, "%s %s >= $%d::timestamptz", and, t->ts, add_time(q, p->since_us));
		and = " AND";
	}
	if (p->given & RB_P_UNTIL) {
		sb_printf(&b, "%s %s < $%d::timestamptz", and, t->ts, add_time(q, p->until_us));
		and = " AND";
	}
	if (p->given & RB_P_CURSOR) {
		int ts = add_time(q, p->cursor.us);

		/* The plain bound too: partition pruning does not read rows. */
		sb_printf(&b,
		    "%s %s <= $%d::timestamptz AND (%s, %s) < ($%d::timestamptz, $%d::uuid)", and,
		    t->ts, ts, t->ts, t->corr, ts, add_param(q, "%s", p->cursor.corr));
	}
	sb_printf(&b, " ORDER BY %s DESC, %s DESC LIMIT $%d::int8", t->ts, t->corr,
	    add_param(q, "%ld", p->limit + 1));
	return sb_finish(&b, q);
}

int
rb_query_rejections(const struct rb_params *p, struct rb_query *q)
{
	struct sb b = {0};
	const char *and = " WHERE";

	*q = (struct rb_query){0};
	if ((p->given & RB_P_RULE) && !(p->given & RB_P_FAMILY))
		return -1;
	rejections_select(&b);
	if (p->given & RB_P_FAMILY) {
		sb_printf(&b, "%s family = $%d", and, add_param(q, "%s", p->family));
		and = " AND";
	}
	if (p->given & RB_P_RULE) {
		sb_printf(&b, "%s rule = $%d", and, add_param(q, "%s", p->rule));
		and = " AND";
	}
	if (p->given & RB_P_SINCE) {
		sb_printf(&b, "%s received_at >= $%d::timestamptz", and, add_time(q, p->since_us));
		and = " AND";
	}
	if (p->given & RB_P_UNTIL) {
		sb_printf(&b, "%s received_at < $%d::timestamptz", and, add_time(q, p->until_us));
		and = " AND";
	}
	if (p->given & RB_P_CURSOR) {
		int ts = add_time(q, p->cursor.us);
		int topic = add_param(q, "%s", p->cursor.topic);
		int part = add_param(q, "%d", (int)p->cursor.partition);

		sb_printf(&b,
		    "%s received_at <= $%d::timestamptz AND "
		    "(received_at, kafka_topic, kafka_partition, kafka_offset) < "
		    "($%d::timestamptz, $%d::text, $%d::int4, $%d::int8)",
		    and, ts, ts, topic, part, add_param(q, "%lld", (long long)p->cursor.offset));
	}
	sb_printf(&b,
	    " ORDER BY received_at DESC, kafka_topic DESC, kafka_partition DESC, kafka_offset DESC"
	    " LIMIT $%d::int8",
	    add_param(q, "%ld", p->limit + 1));
	return sb_finish(&b, q);
}

int
rb_query_daily(const struct rb_table *t, int64_t day, long days, struct rb_query *q)
{
	struct sb b = {0};
	char first[11], last[11];
	int lo, hi;

	*q = (struct rb_query){0};
	if (t->daily == NULL || days < 1)
		return -1;
	rb_day_format(day - days + 1, first);
	rb_day_format(day, last);
	lo = add_param(q, "%s", first);
	hi = add_param(q, "%s", last);
	/* The day as a number: DateStyle cannot change how it reads. */
	sb_printf(&b,
	    "SELECT (day - DATE '1970-01-01')::int8 AS epoch_day, %s::int8 AS count FROM %s"
	    " WHERE day BETWEEN $%d::date AND $%d::date ORDER BY day DESC",
	    t->daily->count_column, t->daily->table, lo, hi);
	return sb_finish(&b, q);
}
