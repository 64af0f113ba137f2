/* t/daily.c: the pure parts of the daily count publisher: its lock key,
 * its record value and its statements. */
#include <stdio.h>
#include <string.h>

#include "daily.h"
#include "family.h"
#include "tap.h"

int
main(void)
{
	const struct family_daily d = {
	    .name = "uniqueUsers",
	    .table = "clickstream_unique_users_daily",
	    .count_column = "unique_users",
	};
	struct family_daily bad = d;
	char buf[256], sel[512], upd[512], err[256];
	int n;

	/* The key is part of the protocol between releases: a new release
	 * computing another key would lead alongside an old one. */
	is_int(daily_lock_key("clickstream_unique_users_daily"), 289236759188174444LL,
	    "lock key of clickstream_unique_users_daily (FNV-1a 64 of the prefixed name)");
	is_int(
	    daily_lock_key(""), 2784874587645278387LL, "lock key of the empty name: the prefix's");
	ok(daily_lock_key("a_daily") != daily_lock_key("b_daily"), "two tables, two keys");
	ok(daily_lock_key("x") >= 0, "keys are not negative");

	n = daily_value("uniqueUsers", "2026-11-20", 1234, 1795170755123LL, buf, sizeof(buf));
	is_str(buf,
	    "{\"day\":\"2026-11-20\",\"uniqueUsers\":1234,\"updatedAt\":\"2026-11-20T10:32:35."
	    "123Z\"}",
	    "the value: day, the count under its name, updatedAt in RFC 3339 UTC with ms");
	is_int(n, (long long)strlen(buf), "its length");
	ok(daily_value("uniqueUsers", "9999-12-31", 0, 0, buf, sizeof(buf)) > 0, "a count of 0");
	ok(daily_value("uniqueUsers", "12026-11-20", 1, 0, buf, sizeof(buf)) == -1,
	    "a five-digit year is no day of ours");
	ok(daily_value("uniqueUsers", "2026-11-2", 1, 0, buf, sizeof(buf)) == -1, "a short day");
	ok(daily_value("uniqueUsers", "2026/11/20", 1, 0, buf, sizeof(buf)) == -1,
	    "another separator");
	ok(daily_value("unique\"Users", "2026-11-20", 1, 0, buf, sizeof(buf)) == -1,
	    "a name that would need escaping");
	ok(daily_value("", "2026-11-20", 1, 0, buf, sizeof(buf)) == -1, "an empty name");
	ok(daily_value("uniqueUsers", "2026-11-20", -1, 0, buf, sizeof(buf)) == -1,
	    "a negative count");
	ok(daily_value("uniqueUsers", "2026-11-20", 1, 0, buf, 20) == -1, "a buffer too small");

	ok(daily_sql(&d, 500, sel, sizeof(sel), upd, sizeof(upd), err, sizeof(err)) == 0,
	    "statements of clickstream_unique_users_daily");
	is_str(sel,
	    "SELECT to_char(day, 'YYYY-MM-DD'), unique_users, "
	    "(extract(epoch FROM updated_at) * 1000)::bigint FROM clickstream_unique_users_daily "
	    "WHERE published IS DISTINCT FROM unique_users ORDER BY day LIMIT 500",
	    "the dirty-days query, the partial index's predicate word for word");
	is_str(upd,
	    "UPDATE clickstream_unique_users_daily AS d SET published = v.n "
	    "FROM unnest($1::date[], $2::bigint[]) AS v(day, n) "
	    "WHERE d.day = v.day AND (d.published IS NULL OR d.published < v.n)",
	    "the update raises published, never lowers it");
	bad.table = "Daily";
	ok(daily_sql(&bad, 500, sel, sizeof(sel), upd, sizeof(upd), err, sizeof(err)) == -1,
	    "an upper-case table is refused (%s)", err);
	bad.table = "t; DROP TABLE x";
	ok(daily_sql(&bad, 500, sel, sizeof(sel), upd, sizeof(upd), err, sizeof(err)) == -1,
	    "so is a table that is not a name");
	bad = d;
	bad.count_column = "1count";
	ok(daily_sql(&bad, 500, sel, sizeof(sel), upd, sizeof(upd), err, sizeof(err)) == -1,
	    "and a column starting with a digit");
	ok(daily_sql(&d, 500, sel, 64, upd, sizeof(upd), err, sizeof(err)) == -1,
	    "a buffer too small is an error, not a cut statement");
	return tap_done();
}
