/* t/rejections.c: a dead-letter record → a row of table rejections: the
 * headers read, the path/rule split, the stage, the correlation id, JSON
 * or bytes, and the descriptor against sql/001_rejections.sql. */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"
#include "rejections.h"
#include "tap.h"

#define UUID "0190f3a2-7b1c-7d2e-8f30-a1b2c3d40007"

/* Headers from NAME, VALUE pairs (VALUE NULL: a null header), then NULL. */
static rd_kafka_headers_t *
hdrs(const char *name, ...)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(8);
	va_list ap;

	va_start(ap, name);
	for (; name != NULL; name = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);

		rd_kafka_header_add(h, name, -1, v, v != NULL ? -1 : 0);
	}
	va_end(ap);
	return h;
}

/* The row of a holded record at events.dead.letter 0/OFFSET with KEY,
 * headers H (taken) and VALUE (text); 0 or -1. */
static int
build(struct rejections_row *row, const char *key, rd_kafka_headers_t *h, const char *value,
    int64_t offset)
{
	struct rejections_record r = {
	    .family = "holded",
	    .topic = "events.dead.letter",
	    .partition = 0,
	    .offset = offset,
	    .ts_ms = INT64_C(1700000000123),
	    .key = key,
	    .keylen = key != NULL ? strlen(key) : 0,
	    .headers = h,
	    .value = value,
	    .len = value != NULL ? strlen(value) : 0,
	};
	char err[256];
	int rc = rejections_row_build(&r, row, err, sizeof(err));

	if (h != NULL)
		rd_kafka_headers_destroy(h);
	return rc;
}

#define V(row, col) ((row).values[REJECTIONS_COL_##col])

static void
test_collect(void)
{
	struct rejections_row row;
	const char *ev = "{\"data\": {\"id\": 1}}";

	is_int(build(&row, UUID,
		   hdrs("error", "data.amount: missing", "correlation-id", UUID, NULL), ev, 42),
	    0, "a collector's dead letter is a row");
	is_str(V(row, RECEIVED_AT), "2023-11-14 22:13:20.123000+00",
	    "received_at: the record's timestamp");
	is_int(row.partition_us, INT64_C(1700000000123000), "partitioned by received_at");
	is_str(V(row, FAMILY), "holded", "family");
	is_str(V(row, STAGE), "collect", "stage collect without source-topic");
	is_str(V(row, CORRELATION_ID), UUID, "correlation_id from the key");
	is_str(V(row, PATH), "data.amount", "path before the first \": \"");
	is_str(V(row, RULE), "missing", "rule after it");
	is_str(V(row, MESSAGE), "data.amount: missing", "message: the whole error");
	is_str(V(row, EVENT), ev, "event: the JSON as sent, byte for byte");
	is_str(V(row, EVENT_BYTES), NULL, "no event_bytes for JSON");
	is_str(V(row, KAFKA_TOPIC), "events.dead.letter", "kafka_topic");
	is_str(V(row, KAFKA_PARTITION), "0", "kafka_partition");
	is_str(V(row, KAFKA_OFFSET), "42", "kafka_offset");
	ok(V(row, ORIGIN_TOPIC) == NULL && V(row, ORIGIN_PARTITION) == NULL &&
		V(row, ORIGIN_OFFSET) == NULL,
	    "no origin for a collector's refusal");
	rejections_row_free(&row);

	(void)build(&row, UUID,
	    hdrs("error", "total: not the currency's number of decimal places (EUR has 2)", NULL),
	    "{}", 1);
	is_str(V(row, PATH), "total", "detail: path");
	is_str(V(row, RULE), "not the currency's number of decimal places",
	    "detail: the rule without its \" (detail)\"");
	is_str(V(row, MESSAGE), "total: not the currency's number of decimal places (EUR has 2)",
	    "detail: kept in message");
	rejections_row_free(&row);

	(void)build(&row, UUID, hdrs("error", "x: bad (a (b) c)", NULL), "{}", 1);
	is_str(V(row, RULE), "bad", "nested parentheses in the detail");
	rejections_row_free(&row);
	(void)build(&row, UUID, hdrs("error", "x: not f(x)", NULL), "{}", 1);
	is_str(V(row, RULE), "not f(x)", "parentheses without a space before are the rule's");
	rejections_row_free(&row);
	(void)build(&row, UUID, hdrs("error", "x: (only detail)", NULL), "{}", 1);
	is_str(V(row, RULE), "(only detail)", "a rule that is all parentheses stays");
	rejections_row_free(&row);

	(void)build(&row, UUID, hdrs("error", "foo.bar: unknown field: really", NULL), "{}", 1);
	is_str(V(row, PATH), "foo.bar", "split at the first \": \" only");
	is_str(V(row, RULE), "unknown field: really", "the rest is the rule");
	rejections_row_free(&row);

	(void)build(
	    &row, UUID, hdrs("error", "payload: not a valid collectord.v1.Event", NULL), "{}", 1);
	is_str(V(row, PATH), NULL, "payload: a refusal of the whole record, path NULL");
	is_str(V(row, RULE), "not a valid collectord.v1.Event", "its rule");
	rejections_row_free(&row);

	(void)build(&row, UUID, hdrs("error", "something went wrong", NULL), "{}", 1);
	is_str(V(row, PATH), NULL, "no \": \": path NULL");
	is_str(V(row, RULE), "something went wrong", "no \": \": all rule");
	rejections_row_free(&row);

	(void)build(&row, UUID, NULL, "{}", 1);
	is_str(V(row, RULE), "unknown", "no error header: rule unknown");
	is_str(V(row, MESSAGE), "", "no error header: empty message");
	is_str(V(row, PATH), NULL, "no error header: path NULL");
	rejections_row_free(&row);
}

static void
test_rule_headers(void)
{
	struct rejections_row row;

	(void)build(&row, UUID,
	    hdrs("error", "a: b: unknown field", "error-path", "a: b", "error-rule",
		"unknown field", NULL),
	    "{}", 1);
	is_str(V(row, PATH), "a: b", "error-path wins over the split");
	is_str(V(row, RULE), "unknown field", "error-rule wins over the split");
	is_str(V(row, MESSAGE), "a: b: unknown field", "message still the error");
	rejections_row_free(&row);

	(void)build(&row, UUID,
	    hdrs("error", "lines[2].quantity: not a positive integer (got -1)", "error-rule",
		"not a positive integer", NULL),
	    "{}", 1);
	is_str(V(row, PATH), "lines[2].quantity", "error-rule alone: path from the split");
	is_str(V(row, RULE), "not a positive integer", "error-rule alone: its rule");
	rejections_row_free(&row);

	(void)build(&row, UUID,
	    hdrs("error", "payload: whole", "error-path", "", "error-rule", "whole", NULL), "{}",
	    1);
	is_str(V(row, PATH), NULL, "an empty error-path is NULL");
	rejections_row_free(&row);

	(void)build(&row, UUID, hdrs("error", "x: y", "error-path", NULL, NULL), "{}", 1);
	is_str(V(row, PATH), "x", "a null error-path header counts as absent");
	rejections_row_free(&row);
}

static void
test_enrich(void)
{
	static const char framed[] = "\x00\x00\x0f\x42\x3f\x00\xff";
	struct rejections_record r = {
	    .family = "holded",
	    .topic = "events.dead.letter",
	    .partition = 3,
	    .offset = 7,
	    .ts_ms = 0,
	    .key = UUID,
	    .keylen = strlen(UUID),
	    .headers = hdrs("error", "schema id 999999: unknown schema id", "correlation-id", UUID,
		"source-topic", "events.raw", "source-partition", "2", "source-offset", "12345",
		NULL),
	    .value = framed,
	    .len = sizeof(framed) - 1,
	};
	struct rejections_row row;
	char err[256];

	is_int(rejections_row_build(&r, &row, err, sizeof(err)), 0,
	    "an enricher's dead letter is a row");
	rd_kafka_headers_destroy((rd_kafka_headers_t *)r.headers);
	is_str(V(row, STAGE), "enrich", "stage enrich with source-topic");
	is_str(V(row, PATH), NULL, "enrich: path NULL");
	is_str(V(row, RULE), REJECTIONS_RULE_SCHEMA, "enrich: the rule word");
	is_str(V(row, MESSAGE), "schema id 999999: unknown schema id", "enrich: the whole error");
	is_str(V(row, EVENT), NULL, "not JSON: event NULL");
	is_str(V(row, EVENT_BYTES), "\\x00000f423f00ff", "not JSON: event_bytes, hex bytea");
	is_str(V(row, ORIGIN_TOPIC), "events.raw", "origin_topic from source-topic");
	is_str(V(row, ORIGIN_PARTITION), "2", "origin_partition from source-partition");
	is_str(V(row, ORIGIN_OFFSET), "12345", "origin_offset from source-offset");
	is_str(V(row, RECEIVED_AT), "1970-01-01 00:00:00.000000+00", "timestamp 0 is one");
	rejections_row_free(&row);

	r.headers = hdrs("error", "frame: 3 bytes, shorter than a Confluent header", "source-topic",
	    "events.raw", "source-partition", "x", "source-offset", "99999999999999999999", NULL);
	is_int(rejections_row_build(&r, &row, err, sizeof(err)), 0, "a framing refusal is a row");
	rd_kafka_headers_destroy((rd_kafka_headers_t *)r.headers);
	is_str(V(row, RULE), REJECTIONS_RULE_FRAME, "frame: the framing rule");
	ok(V(row, ORIGIN_PARTITION) == NULL && V(row, ORIGIN_OFFSET) == NULL,
	    "source numbers that are not numbers are NULL");
	rejections_row_free(&row);

	is_str(rejections_enrich_rule("key: missing (the correlationId)"), REJECTIONS_RULE_KEY,
	    "key missing");
	is_str(rejections_enrich_rule("key: not a UUID (the correlationId)"), REJECTIONS_RULE_KEY,
	    "key not a UUID");
	is_str(rejections_enrich_rule("metadata.correlationId: not a UUID"), REJECTIONS_RULE_KEY,
	    "metadata.correlationId");
	is_str(rejections_enrich_rule("record has no timestamp (publishTime)"),
	    REJECTIONS_RULE_TIMESTAMP, "no timestamp");
	is_str(rejections_enrich_rule("metadata.publishTime: negative"), REJECTIONS_RULE_TIMESTAMP,
	    "metadata.publishTime");
	is_str(rejections_enrich_rule("frame: magic byte 0x01, want 0x00"), REJECTIONS_RULE_FRAME,
	    "framing");
	is_str(rejections_enrich_rule("schema id 5: not registered under subject events.raw-value"),
	    REJECTIONS_RULE_SCHEMA, "wrong subject");
	is_str(rejections_enrich_rule("schema id 5: not a PROTOBUF schema"), REJECTIONS_RULE_SCHEMA,
	    "wrong type");
	is_str(rejections_enrich_rule("payload: not a valid collectord.v1.Event message"),
	    REJECTIONS_RULE_PAYLOAD, "undecodable payload");
	is_str(rejections_enrich_rule("row: timestamp_stamp: missing"), REJECTIONS_RULE_ROW,
	    "row column missing");
	is_str(rejections_enrich_rule("postgres: invalid input syntax for type uuid"),
	    REJECTIONS_RULE_POSTGRES, "PostgreSQL refusal");
	is_str(rejections_enrich_rule("enrich: out of memory"), REJECTIONS_RULE_OTHER, "other");
	is_str(rejections_enrich_rule(""), REJECTIONS_RULE_OTHER, "empty: other");
}

static void
test_ids_and_bytes(void)
{
	struct rejections_row row;

	(void)build(
	    &row, "not-a-uuid", hdrs("error", "x: y", "correlation-id", UUID, NULL), "{}", 1);
	is_str(V(row, CORRELATION_ID), UUID, "key not a UUID: the correlation-id header");
	rejections_row_free(&row);
	(void)build(&row, "01hr71kjry3w47epk7acq7emcd", hdrs("error", "x: y", NULL), "{}", 1);
	is_str(V(row, CORRELATION_ID), NULL, "a ULID key is not a correlationId: NULL");
	rejections_row_free(&row);
	(void)build(&row, NULL, hdrs("error", "x: y", "correlation-id", "nope", NULL), "{}", 1);
	is_str(V(row, CORRELATION_ID), NULL, "neither a UUID: NULL");
	rejections_row_free(&row);
	(void)build(
	    &row, "0190F3A2-7B1C-7D2E-8F30-A1B2C3D40007", hdrs("error", "x: y", NULL), "{}", 1);
	is_str(V(row, CORRELATION_ID), UUID, "upper case key: canonical lower case");
	rejections_row_free(&row);

	(void)build(&row, UUID, hdrs("error", "x: y", NULL), "hello", 1);
	is_str(V(row, EVENT), NULL, "not JSON: event NULL");
	is_str(V(row, EVENT_BYTES), "\\x68656c6c6f", "not JSON: the bytes in hex");
	rejections_row_free(&row);
	(void)build(&row, UUID, hdrs("error", "x: y", NULL), "{\"a\": \"\\u0000\"}", 1);
	is_str(V(row, EVENT), NULL, "\\u0000, which jsonb refuses: bytes");
	rejections_row_free(&row);
	(void)build(&row, UUID, hdrs("error", "x: y", NULL), "{\"a\": 1} trailing", 1);
	is_str(V(row, EVENT), NULL, "trailing data: bytes");
	rejections_row_free(&row);
	(void)build(&row, UUID, hdrs("error", "x: y", NULL), "42", 1);
	is_str(V(row, EVENT), "42", "any JSON value is an event");
	rejections_row_free(&row);
	(void)build(&row, UUID, hdrs("error", "x: y", NULL), NULL, 1);
	is_str(V(row, EVENT_BYTES), "\\x", "an empty value: empty event_bytes");
	rejections_row_free(&row);

	(void)build(&row, UUID, hdrs("error", "na\xffme: bad\xc3", NULL), "{}", 1);
	is_str(V(row, MESSAGE), "na\xef\xbf\xbdme: bad\xef\xbf\xbd",
	    "invalid UTF-8 in a header: U+FFFD for each bad byte");
	is_str(V(row, PATH), "na\xef\xbf\xbdme", "and in the path");
	rejections_row_free(&row);

	{
		char *h = rejections_bytea_hex("\x00\xab", 2);

		is_str(h, "\\x00ab", "bytea hex");
		free(h);
	}
}

static void
test_no_timestamp(void)
{
	struct rejections_record r = {.family = "holded", .topic = "t", .ts_ms = -1};
	struct rejections_row row;
	char err[256];

	is_int(rejections_row_build(&r, &row, err, sizeof(err)), -1, "no timestamp: no row");
	ok(strstr(err, "timestamp") != NULL, "and says why: %s", err);
	rejections_row_free(&row);
}

/* Every column of the descriptor is a column of the CREATE TABLE. */
static void
test_table(void)
{
	const struct pgsql_table *t = rejections_table();
	const char *top = getenv("top_srcdir");
	char path[1024], err[256], *sql = NULL;
	size_t cap = 0;
	FILE *f;
	int missing = 0;

	is_int(
	    pgsql_table_check(t, err, sizeof(err)), 0, "the descriptor passes pgsql_table_check");
	is_int((long long)t->ncolumns, REJECTIONS_NCOLUMNS, "15 columns");
	is_str(t->columns[t->partition_column].name, "received_at", "partitioned by received_at");
	snprintf(path, sizeof(path), "%s/sql/001_rejections.sql", top != NULL ? top : ".");
	if ((f = fopen(path, "r")) == NULL) {
		ok(0, "cannot read %s", path);
		return;
	}
	if (getdelim(&sql, &cap, '\0', f) < 0)
		sql = NULL;
	fclose(f);
	for (size_t i = 0; sql != NULL && i < t->ncolumns; i++) {
		char want[100];

		snprintf(want, sizeof(want), "\n\t%s %s", t->columns[i].name,
		    strcmp(t->columns[i].type, "timestamptz") == 0 ? "TIMESTAMP WITH TIME ZONE"
		    : strcmp(t->columns[i].type, "integer") == 0   ? "INTEGER"
		    : strcmp(t->columns[i].type, "bigint") == 0	   ? "BIGINT"
		    : strcmp(t->columns[i].type, "jsonb") == 0	   ? "JSONB"
		    : strcmp(t->columns[i].type, "bytea") == 0	   ? "BYTEA"
		    : strcmp(t->columns[i].type, "uuid") == 0	   ? "UUID"
								   : "TEXT");
		if (strstr(sql, want) == NULL) {
			printf("# not in %s: %s\n", path, want + 2);
			missing++;
		}
	}
	ok(sql != NULL && missing == 0, "every column is in sql/001_rejections.sql with its type");
	free(sql);
}

int
main(void)
{
	test_collect();
	test_rule_headers();
	test_enrich();
	test_ids_and_bytes();
	test_no_timestamp();
	test_table();
	return tap_done();
}
