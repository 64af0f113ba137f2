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
	ok(pgsql_timestamp_valid(US(-62135596800)) && pgsql_timestamp_valid(US(253402300800) - 1),
	    "timestamp_valid: 0001-01-01 and the last microsecond of 9999");
	ok(!pgsql_timestamp_valid(US(-62135596800) - 1) &&
		!pgsql_timestamp_valid(US(253402300800)) && !pgsql_timestamp_valid(INT64_MIN),
	    "timestamp_valid: years 0 and 10000 are not");
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
	ok(pgsql_partition_name("events", last, name, sizeof(name)) == 0, "partition name");
	is_str(name, "events_20310314", "last microsecond of the day");
	ok(pgsql_partition_name("events", first, name, sizeof(name)) == 0, "next partition name");
	is_str(name, "events_20310315", "midnight belongs to the next day");
	ok(pgsql_partition_name("events", -1, name, sizeof(name)) == 0, "pre-epoch name");
	is_str(name, "events_19691231", "pre-epoch partition");
	ok(pgsql_partition_name("events", last, name, 15) == -1, "short name buffer refused");
	ok(pgsql_partition_bounds(last, from, to, sizeof(from)) == 0, "bounds");
	is_str(from, "2031-03-14 00:00:00+00", "lower bound inclusive at midnight UTC");
	is_str(to, "2031-03-15 00:00:00+00", "upper bound exclusive next midnight");
	ok(pgsql_partition_bounds(US(1709164800), from, to, sizeof(from)) == 0, "leap bounds");
	is_str(to, "2024-03-01 00:00:00+00", "2024-02-29 ends on March 1st");
}

/* A table of three columns, partitioned on the second. */
static const struct pgsql_column cols3[] = {
    {"id", "uuid"},
    {"at", "timestamptz"},
    {"data", "jsonb"},
};
static const struct pgsql_table table3 = {"things", cols3, 3, 1};

static void
test_tables(void)
{
	static const struct pgsql_column bad_name[] = {
	    {"id; DROP TABLE x", "uuid"}, {"at", "timestamptz"}};
	static const struct pgsql_column bad_type[] = {{"id", "uuid) --"}, {"at", "timestamptz"}};
	static const struct pgsql_column arr[] = {{"tags", "text[]"}, {"at", "timestamptz"}};
	struct pgsql_table t = table3;
	char err[256] = "", long_name[56];

	ok(pgsql_table_check(&table3, err, sizeof(err)) == 0, "a plain table passes: %s", err);
	t.name = "Things";
	ok(pgsql_table_check(&t, err, sizeof(err)) == -1, "upper-case table name refused");
	is_str(err, "table \"Things\": not a lower-case SQL name of at most 54 bytes",
	    "and the error says why");
	memset(long_name, 'a', 55);
	long_name[55] = '\0';
	t.name = long_name;
	ok(pgsql_table_check(&t, err, sizeof(err)) == -1,
	    "55 bytes leave no room for _YYYYMMDD within 63");
	long_name[54] = '\0';
	ok(pgsql_table_check(&t, err, sizeof(err)) == 0, "54 bytes do");
	t.name = "1things";
	ok(pgsql_table_check(&t, err, sizeof(err)) == -1, "a name starting with a digit refused");
	t = (struct pgsql_table){"things", bad_name, 2, 1};
	ok(pgsql_table_check(&t, err, sizeof(err)) == -1, "SQL in a column name refused");
	is_str(err, "table things: column 0 (id; DROP TABLE x uuid): not a SQL name and type",
	    "and the column is named");
	t = (struct pgsql_table){"things", bad_type, 2, 1};
	ok(pgsql_table_check(&t, err, sizeof(err)) == -1, "SQL in a type refused");
	t = (struct pgsql_table){"things", arr, 2, 1};
	ok(pgsql_table_check(&t, err, sizeof(err)) == 0, "an array type passes");
	t = (struct pgsql_table){"things", cols3, 3, 0};
	ok(pgsql_table_check(&t, err, sizeof(err)) == -1, "a partition column of uuid refused");
	is_str(err, "table things: the partition column is not a timestamptz column", "why");
	t = (struct pgsql_table){"things", cols3, 3, 3};
	ok(pgsql_table_check(&t, err, sizeof(err)) == -1, "a partition column out of range");
	t = (struct pgsql_table){"things", cols3, 0, 0};
	ok(pgsql_table_check(&t, err, sizeof(err)) == -1, "no columns refused");
}

static void
test_statements(void)
{
	char *sql = pgsql_insert_unnest_sql(&table3);

	is_str(sql,
	    "INSERT INTO things (id, at, data) SELECT * FROM unnest($1::uuid[], "
	    "$2::timestamptz[], $3::jsonb[]) ON CONFLICT DO NOTHING",
	    "unnest insert binds one array per column, cast to its type");
	free(sql);
	sql = pgsql_ensure_partition_sql(&table3);
	is_str(sql, "SELECT things_ensure_partition($1::timestamptz)", "the table's ensure call");
	free(sql);
}

static void
test_values(void)
{
	char *sql = pgsql_insert_values_sql(&table3, 1);

	is_str(sql, "INSERT INTO things (id, at, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
	    "one row");
	free(sql);
	sql = pgsql_insert_values_sql(&table3, 2);
	ok(sql != NULL && strstr(sql, "($1, $2, $3), ($4, $5, $6) ON CONFLICT") != NULL,
	    "second row numbered from $4");
	free(sql);
	is_int((long long)pgsql_values_max_rows(&table3), 21845, "65535 parameters / 3 columns");
	sql = pgsql_insert_values_sql(&table3, pgsql_values_max_rows(&table3));
	ok(sql != NULL && strstr(sql, "$65535) ON CONFLICT DO NOTHING") != NULL,
	    "largest statement ends with $65535");
	free(sql);
	ok(pgsql_insert_values_sql(&table3, 0) == NULL, "zero rows refused");
	ok(pgsql_insert_values_sql(&table3, pgsql_values_max_rows(&table3) + 1) == NULL,
	    "too many rows refused");
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
	a = pgsql_array_new(0);
	ok(pgsql_array_add(a, "NULL") == 0 && pgsql_array_add(a, NULL) == 0 &&
		pgsql_array_add(a, "") == 0,
	    "text, SQL NULL and empty added");
	s = pgsql_array_finish(a);
	is_str(s, "{\"NULL\",NULL,\"\"}", "SQL NULL unquoted; the text NULL stays quoted");
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
test_copy_sql(void)
{
	char *sql = pgsql_copy_sql(&table3, false, true);

	is_str(sql, "COPY things (id, at, data) FROM STDIN (FORMAT binary)", "COPY into the table");
	free(sql);
	sql = pgsql_copy_sql(&table3, true, false);
	is_str(sql, "COPY pg_temp.things_stage (id, at, data) FROM STDIN (FORMAT text)",
	    "COPY into the session's staging table, text");
	free(sql);
	sql = pgsql_stage_create_sql(&table3);
	is_str(sql,
	    "CREATE TEMP TABLE IF NOT EXISTS things_stage (LIKE things INCLUDING DEFAULTS "
	    "INCLUDING "
	    "GENERATED INCLUDING IDENTITY) ON COMMIT DELETE ROWS",
	    "the staging table: per session, emptied by each commit");
	free(sql);
	sql = pgsql_stage_insert_sql(&table3);
	is_str(sql,
	    "INSERT INTO things (id, at, data) SELECT id, at, data FROM pg_temp.things_stage ON "
	    "CONFLICT DO NOTHING",
	    "staged rows move on, replays absorbed");
	free(sql);
}

/* The data of one COPY of ROWS (values of table T, partition instants US):
 * binary as hex, text as it is; *REFUSED counts the rows left out. */
static char *
copy_hex(const struct pgsql_table *t, bool binary, const int64_t *us,
    const char *const (*rows)[PGSQL_MAX_COLUMNS], size_t n, int *refused)
{
	struct pgsql_copy *c = pgsql_copy_new(t, binary, 0);
	const char *data;
	char *hex;
	size_t len;

	*refused = 0;
	for (size_t i = 0; i < n; i++) {
		int r = pgsql_copy_row(c, us[i], rows[i]);

		if (r == 1)
			(*refused)++;
		else if (r == -1)
			return strdup("oom");
	}
	data = pgsql_copy_finish(c, &len);
	hex = malloc(len * 2 + 1);
	if (binary) {
		for (size_t i = 0; i < len; i++)
			sprintf(hex + 2 * i, "%02x", (unsigned char)data[i]);
	} else {
		memcpy(hex, data, len); /* text: as it is */
		hex[len] = '\0';
	}
	pgsql_copy_free(c);
	return hex;
}

static void
test_copy_binary(void)
{
	static const struct pgsql_column cols[] = {{"id", "uuid"}, {"at", "timestamptz"},
	    {"n", "int8"}, {"ip", "inet"}, {"t", "text"}, {"j", "jsonb"}, {"w", "timestamptz"}};
	static const struct pgsql_table t = {"things", cols, 7, 1};
	/* 2000-01-01T00:00:01Z: one second after PostgreSQL's epoch */
	const int64_t us[] = {US(946684801), US(946684801)};
	const char *const rows[][PGSQL_MAX_COLUMNS] = {
	    {"0190d2c4-1f00-7abc-8def-e57100000001", NULL, "-2", "10.0.0.1/8", "a\tb", "{}",
		"2000-01-01T00:00:00.000001Z"},
	    {"{0190D2C41F007ABC8DEFE57100000001}", NULL, NULL, "::1", NULL, "[]",
		"2000-01-01T01:00:00+01:00"},
	};
	const char *const bad[][PGSQL_MAX_COLUMNS] = {
	    {"not-a-uuid", NULL, "1", "::1", "", "{}", "2000-01-01T00:00:00Z"},
	    {"0190d2c4-1f00-7abc-8def-e57100000001", NULL, "1x", "::1", "", "{}",
		"2000-01-01T00:00:00Z"},
	    {"0190d2c4-1f00-7abc-8def-e57100000001", NULL, "1", "10.1", "", "{}",
		"2000-01-01T00:00:00Z"},
	    {"0190d2c4-1f00-7abc-8def-e57100000001", NULL, "1", "::1", "", "{}",
		"2000-01-01 00:00:00"},
	    {"0190d2c4-1f00-7abc-8def-e5710000000", NULL, "1", "::1", "", "{}",
		"2000-01-01T00:00:00Z"},
	    {"0190d2c4-1f00-7abc-8def-e57100000001", NULL, "9223372036854775808", "::1", "", "{}",
		"2000-01-01T00:00:00Z"},
	};
	static const struct pgsql_column odd_cols[] = {{"at", "timestamptz"}, {"x", "numeric"}};
	static const struct pgsql_table odd = {"odd", odd_cols, 2, 0};
	const char *const odd_row[][PGSQL_MAX_COLUMNS] = {{NULL, "1.5"}};
	int refused;
	char *hex;

	hex = copy_hex(&t, true, us, rows, 2, &refused);
	is_int(refused, 0, "both rows encoded");
	is_str(hex,
	    /* signature, flags, extension; row 1: 7 fields */
	    "5047434f50590aff0d0a00"
	    "00000000"
	    "00000000"
	    "0007"
	    /* uuid */
	    "00000010"
	    "0190d2c41f007abc8defe57100000001"
	    /* timestamptz: 1 s after 2000-01-01 in microseconds */
	    "00000008"
	    "00000000000f4240"
	    /* int8 -2 */
	    "00000008"
	    "fffffffffffffffe"
	    /* inet 10.0.0.1/8: family, bits, not cidr, 4 bytes */
	    "00000008"
	    "02080004"
	    "0a000001"
	    /* text: the bytes as they are */
	    "00000003"
	    "610962"
	    /* jsonb: version 1, then the text */
	    "00000003"
	    "017b7d"
	    /* timestamptz from text */
	    "00000008"
	    "0000000000000001"
	    /* row 2: braces, upper case, no hyphens; NULLs; ::1; +01:00 */
	    "0007"
	    "00000010"
	    "0190d2c41f007abc8defe57100000001"
	    "00000008"
	    "00000000000f4240"
	    "ffffffff"
	    "00000014"
	    "03800010"
	    "00000000000000000000000000000001"
	    "ffffffff"
	    "00000003"
	    "015b5d"
	    "00000008"
	    "0000000000000000"
	    /* trailer */
	    "ffff",
	    "binary COPY data: header, fields by type, NULLs, trailer");
	free(hex);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hex = copy_hex(&t, true, us, &bad[i], 1, &refused);
		ok(refused == 1 && strcmp(hex, "5047434f50590aff0d0a000000000000000000ffff") == 0,
		    "row %zu the server must judge: refused, nothing of it kept", i);
		free(hex);
	}
	hex = copy_hex(&odd, true, us, odd_row, 1, &refused);
	is_int(refused, 1, "a type the encoder does not know is left to the server");
	free(hex);
}

static void
test_copy_text(void)
{
	const int64_t us[] = {US(1795166102) + 481000};
	const char *const rows[][PGSQL_MAX_COLUMNS] = {
	    {"id-1", NULL, "{\"k\": \"a\\\\b\ttab\nline\rcr\"}"}};
	int refused;
	char *text = copy_hex(&table3, false, us, rows, 1, &refused);

	is_int(refused, 0, "text row taken");
	is_str(text,
	    "id-1\t2026-11-20 09:15:02.481000+00\t{\"k\": \"a\\\\\\\\b\\ttab\\nline\\rcr\"}\n",
	    "text COPY: tab-separated, backslash, tab, newline, CR escaped");
	free(text);
	{
		const char *const nul[][PGSQL_MAX_COLUMNS] = {{NULL, NULL, NULL}};

		text = copy_hex(&table3, false, us, nul, 1, &refused);
		is_str(text, "\\N\t2026-11-20 09:15:02.481000+00\t\\N\n", "SQL NULL is \\N");
		free(text);
	}
	pgsql_copy_free(NULL);
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
	test_tables();
	test_statements();
	test_values();
	test_arrays();
	test_copy_sql();
	test_copy_binary();
	test_copy_text();
	test_classify();
	return tap_done();
}
