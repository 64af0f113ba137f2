/* t/pgsql.c: unit tests of the SQL builder (src/pgsql.c); no server. */
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"
#include "tap.h"

#define US(sec) ((int64_t)(sec)*INT64_C(1000000))

static void
test_timestamp(void)
{
	char buf[PGSQL_TIMESTAMP_SIZE];

	ok(pgsql_timestamp(0, buf, sizeof(buf)) == 0, "epoch formats");
	is_str(buf, "1970-01-01 00:00:00.000000+00", "epoch text");
	ok(pgsql_timestamp(US(1795166102) + 481000, buf, sizeof(buf)) == 0, "2026 formats");
	is_str(buf, "2026-11-20 09:15:02.481000+00", "milliseconds kept as microseconds");
	ok(pgsql_timestamp(-1, buf, sizeof(buf)) == 0, "one microsecond before the epoch");
	is_str(buf, "1969-12-31 23:59:59.999999+00", "negative rounds down, fraction positive");
	ok(pgsql_timestamp(US(951782400), buf, sizeof(buf)) == 0, "leap day formats");
	is_str(buf, "2000-02-29 00:00:00.000000+00", "leap day text");
	ok(pgsql_timestamp(US(253402300799) + 999999, buf, sizeof(buf)) == 0,
	    "last microsecond of 9999");
	is_str(buf, "9999-12-31 23:59:59.999999+00", "year 9999 text");
	ok(pgsql_timestamp(US(253402300800), buf, sizeof(buf)) == -1, "year 10000 refused");
	ok(pgsql_timestamp(US(-62135596800), buf, sizeof(buf)) == 0, "0001-01-01 accepted");
	is_str(buf, "0001-01-01 00:00:00.000000+00", "year 1 text");
	ok(pgsql_timestamp(US(-62135596800) - 1, buf, sizeof(buf)) == -1, "year 0 refused");
	ok(pgsql_timestamp(INT64_MIN, buf, sizeof(buf)) == -1, "INT64_MIN refused");
	ok(pgsql_timestamp(0, buf, 29) == -1, "short buffer refused");
}

static void
test_partitions(void)
{
	char name[32], from[PGSQL_TIMESTAMP_SIZE], to[PGSQL_TIMESTAMP_SIZE];
	/* 2031-03-14 23:59:59.999999Z and the next microsecond */
	int64_t last = US(1931299199) + 999999, first = last + 1;

	is_int(pgsql_day(0), 0, "day 0");
	is_int(pgsql_day(-1), -1, "day before the epoch rounds down");
	is_int(pgsql_day(US(86400)), 1, "day 1 starts at midnight");
	is_int(pgsql_day(last) + 1, pgsql_day(first), "midnight changes the day");
	ok(pgsql_partition_name(last, name, sizeof(name)) == 0, "partition name");
	is_str(name, "events_20310314", "last microsecond of the day");
	ok(pgsql_partition_name(first, name, sizeof(name)) == 0, "next partition name");
	is_str(name, "events_20310315", "midnight belongs to the next day");
	ok(pgsql_partition_name(-1, name, sizeof(name)) == 0, "pre-epoch name");
	is_str(name, "events_19691231", "pre-epoch partition");
	ok(pgsql_partition_name(last, name, 15) == -1, "short name buffer refused");
	ok(pgsql_partition_bounds(last, from, to, sizeof(from)) == 0, "bounds");
	is_str(from, "2031-03-14 00:00:00+00", "lower bound inclusive at midnight UTC");
	is_str(to, "2031-03-15 00:00:00+00", "upper bound exclusive next midnight");
	ok(pgsql_partition_bounds(US(1709164800), from, to, sizeof(from)) == 0, "leap bounds");
	is_str(to, "2024-03-01 00:00:00+00", "2024-02-29 ends on March 1st");
}

static void
test_values(void)
{
	char *sql = pgsql_insert_values_sql(1);

	is_str(sql,
	    "INSERT INTO events (" PGSQL_EVENTS_COLUMNS ") VALUES "
	    "($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
	    "one row");
	free(sql);
	sql = pgsql_insert_values_sql(2);
	ok(sql != NULL &&
		strstr(sql, "($1, $2, $3, $4, $5, $6, $7, $8), "
			    "($9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT") != NULL,
	    "second row numbered from $9");
	free(sql);
	sql = pgsql_insert_values_sql(PGSQL_VALUES_MAX_ROWS);
	ok(sql != NULL && strstr(sql, "$65528) ON CONFLICT DO NOTHING") != NULL,
	    "largest statement ends with $65528");
	free(sql);
	ok(pgsql_insert_values_sql(0) == NULL, "zero rows refused");
	ok(pgsql_insert_values_sql(PGSQL_VALUES_MAX_ROWS + 1) == NULL, "too many rows refused");
	ok(strstr(PGSQL_INSERT_UNNEST, "unnest($1::timestamptz[]") != NULL &&
		strstr(PGSQL_INSERT_UNNEST, "$8::jsonb[]) ON CONFLICT DO NOTHING") != NULL,
	    "unnest statement binds eight arrays");
}

static char *
array_of(const char *const *elems, size_t n)
{
	struct pgsql_array *a = pgsql_array_new(0);

	for (size_t i = 0; i < n; i++)
		if (pgsql_array_add(a, elems[i]) == -1)
			return NULL;
	return pgsql_array_finish(a);
}

static void
test_arrays(void)
{
	static const char *const plain[] = {"a", "b"};
	static const char *const tricky[] = {"say \"hi\"", "C:\\dir", "", "NULL", "{x,y}"};
	static const char *const json[] = {"{\"type\": \"Holded\\\\Wallet\"}"};
	char *s;
	struct pgsql_array *a;

	s = array_of(plain, 0);
	is_str(s, "{}", "empty array");
	free(s);
	s = array_of(plain, 2);
	is_str(s, "{\"a\",\"b\"}", "plain elements quoted");
	free(s);
	s = array_of(tricky, 5);
	is_str(s, "{\"say \\\"hi\\\"\",\"C:\\\\dir\",\"\",\"NULL\",\"{x,y}\"}",
	    "quotes and backslashes escaped; empty, NULL and braces stay text");
	free(s);
	s = array_of(json, 1);
	is_str(
	    s, "{\"{\\\"type\\\": \\\"Holded\\\\\\\\Wallet\\\"}\"}", "JSON with escaped backslash");
	free(s);
	a = pgsql_array_new(1);
	for (int i = 0; i < 1000; i++)
		if (pgsql_array_add(a, "0123456789") == -1)
			break;
	s = pgsql_array_finish(a);
	ok(s != NULL && strlen(s) == 2 + 1000 * 12 + 999, "builder grows past its hint");
	free(s);
	pgsql_array_free(NULL);
	pgsql_array_free(pgsql_array_new(10));
	ok(pgsql_array_finish(NULL) == NULL, "finish(NULL) is NULL");
}

static void
test_classify(void)
{
	is_int(pgsql_classify("22P02"), PGSQL_ERR_DATA, "invalid text representation is data");
	is_int(pgsql_classify("22007"), PGSQL_ERR_DATA, "invalid datetime format is data");
	is_int(pgsql_classify("23502"), PGSQL_ERR_DATA, "not null violation is data");
	is_int(pgsql_classify("54000"), PGSQL_ERR_DATA, "index row too big is data");
	is_int(pgsql_classify("40P01"), PGSQL_ERR_RETRY, "deadlock is retried");
	is_int(pgsql_classify("40001"), PGSQL_ERR_RETRY, "serialization failure is retried");
	is_int(pgsql_classify("53100"), PGSQL_ERR_RETRY, "disk full is retried");
	is_int(pgsql_classify("55P03"), PGSQL_ERR_RETRY, "lock not available is retried");
	is_int(pgsql_classify("57014"), PGSQL_ERR_RETRY, "statement timeout is retried");
	is_int(pgsql_classify("57P01"), PGSQL_ERR_RESET, "admin shutdown resets");
	is_int(pgsql_classify("25006"), PGSQL_ERR_RESET, "read-only transaction resets");
	is_int(pgsql_classify("42P01"), PGSQL_ERR_RESET, "undefined table resets");
	is_int(pgsql_classify("08006"), PGSQL_ERR_RESET, "connection failure resets");
	is_int(pgsql_classify(NULL), PGSQL_ERR_RESET, "no SQLSTATE resets");
	is_int(pgsql_classify("22"), PGSQL_ERR_RESET, "malformed SQLSTATE resets");
}

int
main(void)
{
	test_timestamp();
	test_partitions();
	test_values();
	test_arrays();
	test_classify();
	return tap_done();
}
