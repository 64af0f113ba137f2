/* t/readback_sql.c: the read-back API's pure half: each family's table
 * description, query strings (every hostile form with its message),
 * cursors, correlation ids, and the SQL text and parameters sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "family.h"
#include "readback_sql.h"
#include "tap.h"

static struct rb_params p;
static char err[512];

/* Parse QUERY for GET /events (EVENTS) or /rejections; the return code. */
static int
parse(const char *query, bool events)
{
	unsigned allowed =
	    events ? RB_P_FAMILY | RB_P_SINCE | RB_P_UNTIL | RB_P_TYPE | RB_P_LIMIT | RB_P_CURSOR
		   : RB_P_FAMILY | RB_P_RULE | RB_P_SINCE | RB_P_UNTIL | RB_P_LIMIT | RB_P_CURSOR;

	err[0] = '\0';
	return rb_params_parse(query, allowed, events, &p, err, sizeof(err));
}

static void
refused(const char *query, bool events, const char *want)
{
	int rc = parse(query, events);

	ok(rc == -1, "refused: %s", query);
	is_str(err, want, "  its message");
}

static void
test_params(void)
{
	char big[1200];

	ok(parse(NULL, true) == 0 && p.given == 0 && p.limit == RB_LIMIT_DEFAULT,
	    "no query: defaults");
	ok(parse("", true) == 0 && p.given == 0, "empty query");
	ok(parse("family=holded&limit=5&type=a+b%2Fc&since=2026-11-20T09:15:02Z", true) == 0,
	    "family, limit, type, since");
	is_str(p.family, "holded", "family");
	is_int(p.limit, 5, "limit");
	is_str(p.type, "a b/c", "type percent-decoded, + a space");
	is_int(p.since_us, 1795166102000000LL, "since in microseconds");
	ok(parse("&&limit=1000&", true) == 0 && p.limit == 1000, "empty pairs skipped, limit 1000");
	ok(parse("type=%E2%82%AC", true) == 0 && strcmp(p.type, "\xe2\x82\xac") == 0, "UTF-8 type");
	ok(parse("since=2026-11-20T10:15:02%2B01:00&until=2026-11-21T00:00:00Z", false) == 0 &&
		p.since_us == 1795166102000000LL,
	    "since with an offset, until");
	ok(parse("rule=not%20a%20number&family=holded", false) == 0 &&
		strcmp(p.rule, "not a number") == 0,
	    "rule");

	refused("limit=0", true, "limit: not an integer from 1 to 1000");
	refused("limit=1001", true, "limit: not an integer from 1 to 1000");
	refused("limit=99999999999999999999", true, "limit: not an integer from 1 to 1000");
	refused("limit=-1", true, "limit: not an integer from 1 to 1000");
	refused("limit=1e3", true, "limit: not an integer from 1 to 1000");
	refused("limit=+5", true, "limit: not an integer from 1 to 1000");
	refused("limit=", true, "limit: not an integer from 1 to 1000");
	refused("limit=1&limit=2", true, "limit: given twice");
	refused("foo=bar", true, "unknown parameter \"foo\"");
	refused("rule=x", true, "unknown parameter \"rule\"");
	refused("type=x", false, "unknown parameter \"type\"");
	refused("%zz=1", true, "unknown parameter \"?\"");
	refused("family=holded%27%20OR%201%3D1--", true, "family: not a family name");
	refused("family=Holded", true, "family: not a family name");
	refused("family=", true, "family: not a family name");
	refused("type=", true, "type: empty or longer than 200 characters");
	refused("type=%00", true, "type: bad percent-encoding, a NUL, or longer than 1023 bytes");
	refused("type=%4", true, "type: bad percent-encoding, a NUL, or longer than 1023 bytes");
	refused("type=%g0", true, "type: bad percent-encoding, a NUL, or longer than 1023 bytes");
	refused("type=a%0Ab", true, "type: not UTF-8 text without control characters");
	refused("type=%FF", true, "type: not UTF-8 text without control characters");
	refused("type=%C0%AF", true, "type: not UTF-8 text without control characters");
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "type=", 5);
	big[sizeof(big) - 1] = '\0';
	refused(big, true, "type: bad percent-encoding, a NUL, or longer than 1023 bytes");
	big[5 + 201] = '\0';
	refused(big, true, "type: empty or longer than 200 characters");
	big[5 + 200] = '\0';
	ok(parse(big, true) == 0, "type of 200 characters");
	refused("since=yesterday", true,
	    "since: not an RFC 3339 time such as 2026-11-20T09:15:02Z (years 0001-9999)");
	refused("since=0000-01-01T00:00:00Z", true,
	    "since: not an RFC 3339 time such as 2026-11-20T09:15:02Z (years 0001-9999)");
	refused("until=2026-13-01T00:00:00Z", true,
	    "until: not an RFC 3339 time such as 2026-11-20T09:15:02Z (years 0001-9999)");
	refused("since=2026-11-20T00:00:00Z&until=2026-11-20T00:00:00Z", true,
	    "since: not before until");
	refused("cursor=abc", true,
	    "cursor: not a cursor this endpoint gave (pass its \"next\" as is)");
	refused("cursor=%27%3B%20DELETE%20FROM%20events%3B--", true,
	    "cursor: not a cursor this endpoint gave (pass its \"next\" as is)");
}

/* GET /families/{name}/daily's day= and days=. */
static void
test_daily_params(void)
{
	const unsigned daily = RB_P_DAY | RB_P_DAYS;
	char day[11];
	static const char *const bad_days[] = {"2026-11-31", "2026-02-29", "2026-13-01",
	    "0000-12-31", "2026-1-20", "2026-11-20T00:00:00Z", "20261120", "2026-11-2x",
	    "2026-11-20 ", "+2026-11-20", ""};

	ok(rb_params_parse(NULL, daily, true, &p, err, sizeof(err)) == 0 && p.given == 0 &&
		p.days == RB_DAYS_DEFAULT,
	    "daily: no query, %d days", RB_DAYS_DEFAULT);
	ok(rb_params_parse("day=2026-11-20&days=3", daily, true, &p, err, sizeof(err)) == 0,
	    "day and days");
	is_int(p.day, 20777, "  day: days since 1970-01-01");
	is_int(p.days, 3, "  days");
	rb_day_format(p.day, day);
	is_str(day, "2026-11-20", "  and back");
	ok(rb_params_parse("day=1969-12-31", daily, true, &p, err, sizeof(err)) == 0 && p.day == -1,
	    "a day before 1970");
	ok(rb_params_parse("day=2024-02-29", daily, true, &p, err, sizeof(err)) == 0, "a leap day");
	ok(rb_params_parse("day=0001-01-14", daily, true, &p, err, sizeof(err)) == 0,
	    "14 days from 0001-01-01");
	for (size_t i = 0; i < sizeof(bad_days) / sizeof(bad_days[0]); i++) {
		char q[64];

		snprintf(q, sizeof(q), "day=%s", bad_days[i]);
		ok(rb_params_parse(q, daily, true, &p, err, sizeof(err)) == -1, "refused: %s", q);
		is_str(
		    err, "day: not a date such as 2026-11-20 (years 0001-9999)", "  its message");
	}
	ok(rb_params_parse("day=0001-01-13", daily, true, &p, err, sizeof(err)) == -1,
	    "refused: 14 days reaching before 0001-01-01");
	is_str(err, "days: the days before day= reach before 0001-01-01", "  its message");
	ok(rb_params_parse("days=367", daily, true, &p, err, sizeof(err)) == -1 &&
		strcmp(err, "days: not an integer from 1 to 366") == 0,
	    "refused: days=367");
	ok(rb_params_parse("days=0", daily, true, &p, err, sizeof(err)) == -1, "refused: days=0");
	ok(rb_params_parse("days=366", daily, true, &p, err, sizeof(err)) == 0, "days=366");
	ok(rb_params_parse("limit=3", daily, true, &p, err, sizeof(err)) == -1 &&
		strcmp(err, "unknown parameter \"limit\"") == 0,
	    "refused: limit=");
	ok(parse("day=2026-11-20", true) == -1 && strcmp(err, "unknown parameter \"day\"") == 0,
	    "GET /events takes no day=");
}

static void
test_cursors(void)
{
	struct rb_cursor c = {
	    .us = 1795597302481000LL, .corr = "019aa0f3-7c21-7d3e-9a41-5b2e00000002"};
	struct rb_cursor r = {
	    .us = -5, .partition = 3, .offset = 123456789012LL, .topic = "a.b_c-d"};
	struct rb_cursor back;
	char text[RB_CURSOR_MAX + 1], q[RB_CURSOR_MAX + 16];

	ok(rb_cursor_encode(&c, true, text, sizeof(text)) == 0, "events cursor encodes");
	ok(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
		strlen(text),
	    "  as base64url: %s", text);
	ok(rb_cursor_decode(text, true, &back, err, sizeof(err)) == 0 && back.us == c.us &&
		strcmp(back.corr, c.corr) == 0,
	    "  and decodes back");
	ok(rb_cursor_decode(text, false, &back, err, sizeof(err)) == -1,
	    "  a rejections page refuses it");
	snprintf(q, sizeof(q), "cursor=%s", text);
	ok(parse(q, true) == 0 && (p.given & RB_P_CURSOR) && p.cursor.us == c.us,
	    "  cursor= takes it");
	ok(rb_cursor_encode(&r, false, text, sizeof(text)) == 0, "rejections cursor encodes");
	ok(rb_cursor_decode(text, false, &back, err, sizeof(err)) == 0 && back.us == -5 &&
		back.partition == 3 && back.offset == 123456789012LL &&
		strcmp(back.topic, "a.b_c-d") == 0,
	    "  and decodes back");
	ok(rb_cursor_decode(text, true, &back, err, sizeof(err)) == -1,
	    "  an events page refuses it");
	text[strlen(text) - 1] ^= 1;
	ok(rb_cursor_decode(text, false, &back, err, sizeof(err)) == -1, "  one character changed");
	/* Hand-made texts: well encoded, not ours. */
	ok(rb_cursor_decode("ZTEgMSB4", true, &back, err, sizeof(err)) == -1, "\"e1 1 x\" refused");
	ok(rb_cursor_decode("", true, &back, err, sizeof(err)) == -1, "empty refused");
	ok(rb_cursor_decode("ZTEg=", true, &back, err, sizeof(err)) == -1, "padding refused");
	r.topic[0] = '\0';
	strcpy(r.topic, "bad topic");
	ok(rb_cursor_encode(&r, false, text, sizeof(text)) == 0 &&
		rb_cursor_decode(text, false, &back, err, sizeof(err)) == -1,
	    "a topic Kafka would not take is refused");
}

static void
test_ids(void)
{
	char out[37];

	ok(rb_correlation_id("019aa0f3-7c21-7d3e-9a41-5b2e00000002", out, err, sizeof(err)) &&
		strcmp(out, "019aa0f3-7c21-7d3e-9a41-5b2e00000002") == 0,
	    "canonical id");
	ok(rb_correlation_id("{019AA0F3-7C21-7D3E-9A41-5B2E00000002}", out, err, sizeof(err)) &&
		strcmp(out, "019aa0f3-7c21-7d3e-9a41-5b2e00000002") == 0,
	    "braces, upper case: canonical");
	ok(!rb_correlation_id("01HR71KJRY3W47EPK7ACQ7EMCD", out, err, sizeof(err)),
	    "a ULID is not");
	ok(!rb_correlation_id("6374be699c11acaa3108cf02", out, err, sizeof(err)),
	    "an ObjectId is not");
	ok(!rb_correlation_id("../../etc/passwd", out, err, sizeof(err)), "a path is not");
	ok(!rb_correlation_id("", out, err, sizeof(err)), "empty is not");
	is_str(err, "not a correlationId (a UUID such as 019aa0f3-7c21-7d3e-9a41-5b2e00000000)",
	    "  its message");
}

static void
test_sql(const struct config *cfg)
{
	const struct config_family *fc;
	struct rb_table t[8];
	struct rb_query q;
	size_t n = 0;

	for (; (fc = family_served(cfg, n)) != NULL; n++)
		ok(rb_table_of(fc, &t[n], err, sizeof(err)) == 0, "family %s: its table reads (%s)",
		    fc->name, err);
	for (size_t i = 0; i < n; i++) {
		ok(t[i].name && t[i].ts && t[i].corr && t[i].event, "%s: table %s, ts %s, corr %s",
		    t[i].family, t[i].name, t[i].ts, t[i].corr);
		if (strcmp(t[i].family, "retail") == 0)
			ok(t[i].type == NULL, "retail has no type column");
	}
	ok(n >= 2, "%zu families", n);

	ok(parse("type=a%27b&since=2026-11-20T00:00:00Z&limit=10", true) == 0, "a page query");
	ok(rb_query_events(&t[0], &p, &q) == 0, "events SQL");
	printf("# %s\n", q.sql);
	ok(strstr(q.sql, "a'b") == NULL, "  the type is no part of the text");
	is_int(q.nparams, 3, "  3 parameters");
	is_str(q.values[0], "a'b", "  $1 the type");
	is_str(q.values[1], "2026-11-20 00:00:00.000000+00", "  $2 since");
	is_str(q.values[2], "11", "  $3 the limit + 1");
	ok(strstr(q.sql, " ORDER BY ") != NULL && strstr(q.sql, " DESC LIMIT $3::int8") != NULL,
	    "  newest first, limited");
	rb_query_free(&q);
	for (size_t i = 0; i < n; i++) {
		if (t[i].type == NULL) {
			ok(rb_query_events(&t[i], &p, &q) == -1, "%s: type= has no column",
			    t[i].family);
		}
	}

	ok(rb_query_request(t, n, "019aa0f3-7c21-7d3e-9a41-5b2e00000002", &q) == 0, "request SQL");
	is_str(q.values[0], "019aa0f3-7c21-7d3e-9a41-5b2e00000000", "  from index 0");
	is_str(q.values[1], "019aa0f3-7c21-7d3e-9a41-5b2effffffff", "  to the last index");
	ok(strstr(q.sql, "UNION ALL") != NULL, "  over every table");
	rb_query_free(&q);
	ok(rb_query_event(t, n, "019aa0f3-7c21-7d3e-9a41-5b2e00000002", &q) == 0 && q.nparams == 1,
	    "event SQL, one parameter");
	rb_query_free(&q);
	ok(rb_query_request_rejections("019aa0f3-7c21-7d3e-9a41-5b2e00000002", &q) == 0 &&
		q.nparams == 2,
	    "request's rejections SQL");
	rb_query_free(&q);

	ok(parse("rule=x&since=2026-11-20T00:00:00Z", false) == 0 &&
		rb_query_rejections(&p, &q) == -1,
	    "rule without family: no SQL");
	ok(parse("family=holded&rule=x%3B&limit=3", false) == 0 && rb_query_rejections(&p, &q) == 0,
	    "rejections SQL");
	is_int(q.nparams, 3, "  3 parameters");
	is_str(q.values[1], "x;", "  $2 the rule");
	rb_query_free(&q);

	for (size_t i = 0; i < n; i++) {
		if (t[i].daily == NULL) {
			ok(rb_query_daily(&t[i], 20777, 14, &q) == -1, "%s: no daily count, no SQL",
			    t[i].family);
			continue;
		}
		ok(rb_query_daily(&t[i], 20777, 14, &q) == 0, "%s: daily SQL", t[i].family);
		printf("# %s\n", q.sql);
		ok(strstr(q.sql, t[i].daily->table) != NULL &&
			strstr(q.sql, t[i].daily->count_column) != NULL,
		    "  the descriptor's table and count column");
		is_int(q.nparams, 2, "  2 parameters");
		is_str(q.values[0], "2026-11-07", "  $1 the first day");
		is_str(q.values[1], "2026-11-20", "  $2 the last day");
		ok(strstr(q.sql, " ORDER BY day DESC") != NULL, "  newest first");
		rb_query_free(&q);
	}
}

int
main(void)
{
	char e[256];
	struct config *cfg = config_parse("", "t", false, e, sizeof(e));

	if (!ok(cfg != NULL && family_config_defaults(cfg, e, sizeof(e)) == 0, "config"))
		return tap_done();
	test_params();
	test_daily_params();
	test_cursors();
	test_ids();
	test_sql(cfg);
	config_free(cfg);
	return tap_done();
}
