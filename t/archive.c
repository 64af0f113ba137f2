/* t/archive.c: the archive's pure parts: a record's JSON line (JSON values
 * kept byte for byte, base64 for everything else, keys and headers with
 * binary bytes, null keys, values and header values, timestamp types,
 * exact offsets, the decoded value of a family's schema), which values
 * count as JSON, and the topics file. */
#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "archive_line.h"
#include "codec.h"
#include "config.h"
#include "family.h"
#include "tap.h"

#define TS INT64_C(1763629502913)

/* A record of topic t, partition 1, offset 42, LogAppendTime TS, key K
 * (text or NULL), value V (text or NULL). */
static struct archive_record
rec(const char *k, const char *v)
{
	return (struct archive_record){
	    .topic = "t",
	    .partition = 1,
	    .offset = 42,
	    .ts_ms = TS,
	    .ts_type = RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME,
	    .key = k,
	    .keylen = k != NULL ? strlen(k) : 0,
	    .value = v,
	    .len = v != NULL ? strlen(v) : 0,
	    .schema_id = -1,
	};
}

/* R's line, checked to be one JSON object on one line; NULL if not. */
static char *
line_of(const struct archive_record *r)
{
	size_t len = 0;
	char *line = archive_line(r, &len);
	cJSON *doc;

	if (line == NULL)
		return NULL;
	doc = cJSON_Parse(line);
	if (doc == NULL || !cJSON_IsObject(doc) || strlen(line) != len ||
	    strchr(line, '\n') != NULL) {
		printf("# not one JSON line: %s\n", line);
		cJSON_Delete(doc);
		free(line);
		return NULL;
	}
	cJSON_Delete(doc);
	return line;
}

static void
is_line(const struct archive_record *r, const char *want, const char *name)
{
	char *line = line_of(r);

	is_str(line, want, name);
	free(line);
}

static void
test_values(void)
{
	struct archive_record r =
	    rec("0190f3a2-7b1c-7d2e-8f30-a1b2c3d40007", "{\"a\": 1.50, \"b\":[ ]}");

	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":1763629502913,"
	    "\"timestampType\":\"LogAppendTime\",\"key\":\"0190f3a2-7b1c-7d2e-8f30-a1b2c3d40007\","
	    "\"headers\":[],\"value\":{\"a\": 1.50, \"b\":[ ]}}",
	    "a JSON value is the line's value, its text byte for byte (spaces, 1.50)");
	r = rec(NULL, "  \"text\"\t");
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":1763629502913,"
	    "\"timestampType\":\"LogAppendTime\",\"key\":null,\"headers\":[],"
	    "\"value\":  \"text\"\t}",
	    "a null key is null; a JSON string with blanks around it is kept as is");
	r = rec("k", NULL);
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":1763629502913,"
	    "\"timestampType\":\"LogAppendTime\",\"key\":\"k\",\"headers\":[],\"value\":null}",
	    "a tombstone's value is null");
	r = rec("k", "");
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":1763629502913,"
	    "\"timestampType\":\"LogAppendTime\",\"key\":\"k\",\"headers\":[],\"valueBase64\":"
	    "\"\"}",
	    "an empty value is not JSON: empty base64, told apart from a tombstone");
	r = rec("k", "hello");
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":1763629502913,"
	    "\"timestampType\":\"LogAppendTime\",\"key\":\"k\",\"headers\":[],"
	    "\"valueBase64\":\"aGVsbG8=\"}",
	    "text that is not JSON goes as base64");
	r = rec("k", "{\n  \"a\": 1\n}");
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":1763629502913,"
	    "\"timestampType\":\"LogAppendTime\",\"key\":\"k\",\"headers\":[],"
	    "\"valueBase64\":\"ewogICJhIjogMQp9\"}",
	    "JSON over several lines goes as base64 (it would break the line)");
	r = rec("k", NULL);
	r.value = "\x00\x01\xff";
	r.len = 3;
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":1763629502913,"
	    "\"timestampType\":\"LogAppendTime\",\"key\":\"k\",\"headers\":[],"
	    "\"valueBase64\":\"AAH/\"}",
	    "binary bytes (a NUL, 0xff) go as base64");
}

static void
test_keys_and_times(void)
{
	struct archive_record r = rec(NULL, "1");

	r.key = "a\0b";
	r.keylen = 3;
	r.ts_ms = -1;
	r.ts_type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":null,"
	    "\"timestampType\":null,\"keyBase64\":\"YQBi\",\"headers\":[],\"value\":1}",
	    "a key with a NUL goes as keyBase64; no timestamp is null, its type too");
	r = rec("\xc3\xa9t\xc3\xa9 \"q\"", "1");
	r.ts_type = RD_KAFKA_TIMESTAMP_CREATE_TIME;
	r.offset = INT64_C(9007199254740993);
	r.partition = 2147483647;
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":2147483647,\"offset\":9007199254740993,"
	    "\"timestamp\":1763629502913,\"timestampType\":\"CreateTime\","
	    "\"key\":\"\xc3\xa9t\xc3\xa9 \\\"q\\\"\",\"headers\":[],\"value\":1}",
	    "CreateTime; a UTF-8 key with quotes escaped; offsets past 2^53 exact");
	r = rec("\xff\xfe", "1");
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":1763629502913,"
	    "\"timestampType\":\"LogAppendTime\",\"keyBase64\":\"//4=\",\"headers\":[],"
	    "\"value\":1}",
	    "a key that is not UTF-8 goes as keyBase64");
}

static void
test_headers(void)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(8);
	struct archive_record r = rec("k", "[]");

	rd_kafka_header_add(h, "error", -1, "data.amount: not a number", -1);
	rd_kafka_header_add(h, "bin", -1, "\x00\x80", 2);
	rd_kafka_header_add(h, "none", -1, NULL, 0);
	rd_kafka_header_add(h, "error", -1, "again", -1);
	rd_kafka_header_add(h, "\xff", 1, "", 0);
	r.headers = h;
	is_line(&r,
	    "{\"topic\":\"t\",\"partition\":1,\"offset\":42,\"timestamp\":1763629502913,"
	    "\"timestampType\":\"LogAppendTime\",\"key\":\"k\",\"headers\":["
	    "{\"name\":\"error\",\"value\":\"data.amount: not a number\"},"
	    "{\"name\":\"bin\",\"valueBase64\":\"AIA=\"},"
	    "{\"name\":\"none\",\"value\":null},"
	    "{\"name\":\"error\",\"value\":\"again\"},"
	    "{\"nameBase64\":\"/w==\",\"value\":\"\"}],\"value\":[]}",
	    "headers in order, duplicates kept, binary bytes as base64, a null value null");
	rd_kafka_headers_destroy(h);
}

static void
test_decoded(void)
{
	const struct family *f = family_find("clickstream");
	const char *body = "[{\"id\":1001,\"type\":\"page_view\",\"package_id\":\"pkg-7f3a\","
			   "\"event\":{\"user_agent\":\"Mozilla/5.0\",\"ip\":\"203.0.113.7\","
			   "\"customer_id\":4711,\"timestamp\":\"2026-11-20T10:12:35Z\","
			   "\"page\":\"/products/42\"}}]";
	struct archive_record r = rec("0190f3a2-7b1c-7d2e-8f30-a1b2c3d40007", NULL);
	struct codec_error cerr;
	cJSON *events = NULL, *decoded, *line, *enriched;
	uint8_t *record = NULL;
	size_t len = 0;
	char err[512], *text, *enr, *want;
	int32_t sid;
	const uint8_t *payload;
	size_t plen;

	if (!ok(f != NULL, "the clickstream family exists"))
		return;
	if (!ok(codec_body_parse(body, strlen(body), NULL, &events, err, sizeof(err)) == CODEC_OK &&
		    codec_event_record(
			&f->codec, cJSON_GetArrayItem(events, 0), 7, &record, &len, &cerr),
		"a clickstream event framed with schema id 7"))
		return;
	json_tree_free(events);
	if (!ok(codec_frame_parse(record, len, &sid, &payload, &plen, err, sizeof(err)) &&
		    (decoded = codec_decode(&f->codec, payload, plen, err, sizeof(err))) != NULL,
		"codec_decode reads it"))
		return;
	r.value = record;
	r.len = len;
	r.schema_id = sid;
	r.decoded = decoded;
	text = line_of(&r);
	line = text != NULL ? cJSON_Parse(text) : NULL;
	/* The decoded event is the enriched one without its metadata. */
	enr = codec_enrich(&f->codec, payload, plen, r.key, TS, sid, NULL, err, sizeof(err));
	enriched = enr != NULL ? cJSON_Parse(enr) : NULL;
	cJSON_DeleteItemFromObject(enriched, "metadata");
	want = enriched != NULL ? cJSON_PrintUnformatted(enriched) : NULL;
	ok(line != NULL && cJSON_IsString(cJSON_GetObjectItem(line, "valueBase64")) &&
		cJSON_GetObjectItem(line, "value") == NULL,
	    "a framed value goes as valueBase64, no value");
	is_int(line != NULL ? (long long)cJSON_GetObjectItem(line, "schemaId")->valuedouble : -1, 7,
	    "schemaId");
	{
		char *got = line != NULL
				? cJSON_PrintUnformatted(cJSON_GetObjectItem(line, "decoded"))
				: NULL;

		is_str(got, want, "decoded: the enriched event without metadata");
		free(got);
	}
	{
		/* the base64 gives the record back */
		char *b64 = codec_base64(record, len);

		is_str(line != NULL ? cJSON_GetObjectItem(line, "valueBase64")->valuestring : NULL,
		    b64, "valueBase64 is the record's bytes");
		free(b64);
	}
	{
		char *again = line_of(&r);

		is_str(again, text, "the same record gives the same bytes");
		free(again);
	}
	free(text);
	r.decoded = NULL;
	r.decode_error = "payload: not a valid collectord.clickstream.v1.Event message";
	text = line_of(&r);
	ok(text != NULL && strstr(text, ",\"schemaId\":7,\"decodeError\":\"payload: not a valid "
					"collectord.clickstream.v1.Event message\"}") != NULL,
	    "a schema it cannot decode with: schemaId and decodeError");
	free(text);
	cJSON_Delete(line);
	cJSON_Delete(enriched);
	cJSON_Delete(decoded);
	free(want);
	free(enr);
	free(record);
}

static void
test_is_json(void)
{
	static const struct {
		const char *text;
		bool json;
	} cases[] = {
	    {"{\"a\":1}", true},
	    {" [1, 2]\t", true},
	    {"\"x\"", true},
	    {"-0.5e3", true},
	    {"null", true},
	    {"{\"a\":\"caf\xc3\xa9\"}", true},
	    {"", false},
	    {" ", false},
	    {"01", false},
	    {"{\"a\":1}x", false},
	    {"{\"a\":1,}", false},
	    {"NaN", false},
	    {"{\"a\":\"\\u0000\"}", false},
	    {"\"\xff\"", false},
	    {"{\n\"a\":1}", false},
	    {"[1]\r", false},
	    {"\xef\xbb\xbf{}", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(archive_value_is_json(cases[i].text, strlen(cases[i].text)) == cases[i].json,
		    "%s JSON for the line: %s", cases[i].json ? "is" : "is not", cases[i].text);
}

static void
test_topics(void)
{
	const char *top = getenv("top_srcdir");
	struct archive_topics t = {0};
	char path[1024], err[512], *text;
	FILE *f;
	long n;
	int rc;

	rc = archive_topics_parse(&t,
	    "# comment\n\n  a.raw,3,1,message.timestamp.type=LogAppendTime\r\n"
	    "b_dl ,1,1\nc-only\n\t# indented comment\na.raw,3,1\n",
	    "x", err, sizeof(err));
	ok(rc == 0 && t.n == 3 && strcmp(t.names[0], "a.raw") == 0 &&
		strcmp(t.names[1], "b_dl") == 0 && strcmp(t.names[2], "c-only") == 0,
	    "first fields, trimmed, comments and CRLF skipped, each once in file order");
	archive_topics_free(&t);
	ok(archive_topics_parse(&t, "ok,1,1\nbad/name,1,1\n", "f", err, sizeof(err)) == -1,
	    "a name with a slash is refused");
	is_str(err, "f:2: not a Kafka topic name (A-Z a-z 0-9 . _ -)", "with its line");
	archive_topics_free(&t);
	ok(archive_topics_parse(&t, ",1,1\n", "f", err, sizeof(err)) == -1 &&
		archive_topics_parse(&t, "..,1,1\n", "f", err, sizeof(err)) == -1,
	    "an empty name and \"..\" are refused");
	archive_topics_free(&t);

	/* The shipped file: every family's topics, latest and unique users
	 * included. */
	snprintf(path, sizeof(path), "%s/topics/main-topics", top ? top : ".");
	if (!ok((f = fopen(path, "r")) != NULL, "topics/main-topics exists"))
		return;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	if (fread(text, 1, (size_t)n, f) != (size_t)n)
		text[0] = '\0';
	fclose(f);
	ok(archive_topics_parse(&t, text, path, err, sizeof(err)) == 0 && t.n >= 2,
	    "topics/main-topics parses (%zu topics)", t.n);
	for (size_t i = 0; family_at(i) != NULL; i++) {
		bool raw = false, inv = false;

		for (size_t j = 0; j < t.n; j++) {
			raw = raw || strcmp(t.names[j], family_at(i)->raw_topic) == 0;
			inv = inv || strcmp(t.names[j], family_at(i)->invalid_topic) == 0;
		}
		ok(raw && inv, "it lists %s's raw and invalid topics", family_at(i)->name);
	}
	archive_topics_free(&t);
	free(text);
}

/* The list a configuration gives: its file, then the families'. */
static void
test_topics_of(void)
{
	char err[512];
	struct archive_topics t = {0};
	struct config *cfg = config_parse("[server]\nfamilies = holded\n[archive]\ntopics_file =\n"
					  "[topics]\nraw = my.raw\n",
	    "test.conf", false, err, sizeof(err));

	if (!ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == 0,
		"a configuration without a topics file"))
		return;
	ok(archive_topics_of(cfg, &t, err, sizeof(err)) == 0 && t.n == 2 &&
		strcmp(t.names[0], "my.raw") == 0 && strcmp(t.names[1], "events.dead.letter") == 0,
	    "no file: the served families' topics, as configured");
	archive_topics_free(&t);
	free(cfg->archive_topics_file);
	cfg->archive_topics_file = strdup("/nonexistent/main-topics");
	ok(archive_topics_of(cfg, &t, err, sizeof(err)) == -1 &&
		strstr(err, "[archive] topics_file: /nonexistent/main-topics: ") == err,
	    "a missing file is an error that names it");
	archive_topics_free(&t);
	config_free(cfg);
}

int
main(void)
{
	test_values();
	test_keys_and_times();
	test_headers();
	test_decoded();
	test_is_json();
	test_topics();
	test_topics_of();
	return tap_done();
}
