/* t/codec.c: unit tests of the codec against the golden files in t/data
 * and schemas/holded/data: bodies, valid and invalid events, the worked examples, gzip, framing,
 * enrichment of good and corrupt payloads, and dead-letter documents. */
#define ZLIB_CONST
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "codec.h"
#include "families/families.h"
#include "holded.pb-c.h"
#include "ids.h"
#include "golden.h"
#include "tap.h"

#define S (&family_holded.codec)
#define CORR "019aa0f3-7c21-7d3e-9a41-5b2e00000000"
/* 2026-11-20T09:15:02.913Z, the publishTime of examples/enriched-event.json. */
#define PUBLISH_MS INT64_C(1795166102913)
#define LONG_TS                                                                                    \
	"X-Message-Stamp-Holded\\\\Core\\\\Messaging\\\\Messenger\\\\Stamp\\\\TimestampStamp"

/* Calls FN for every line of the JSON Lines file NAME. */
static void
each_line(const char *name, void (*fn)(const cJSON *))
{
	size_t len = 0;
	char *text = golden_slurp(name, &len), *line, *next;

	if (!ok(text != NULL, "read %s", name))
		return;
	for (line = text; line < text + len && *line != '\0'; line = next) {
		cJSON *v;

		next = strchr(line, '\n');
		next = next != NULL ? next + 1 : text + len;
		v = cJSON_ParseWithLength(line, (size_t)(next - line));
		if (v == NULL) {
			ok(0, "%s: a line is not JSON", name);
			continue;
		}
		fn(v);
		cJSON_Delete(v);
	}
	free(text);
}

/* Encode, frame, parse the frame, enrich: the whole way an event travels. */
static char *
pipeline(const cJSON *event, struct codec_row *row, char *err, size_t errlen)
{
	uint8_t *payload = NULL, *frame;
	const uint8_t *p;
	size_t len, h, plen;
	int32_t sid = 0;
	char *json = NULL;

	struct codec_error ce;

	if (!codec_event_encode(S, event, &payload, &len, &ce)) {
		snprintf(err, errlen, "%s", ce.message);
		return NULL;
	}
	frame = malloc(len + CODEC_FRAME_MAX);
	if (frame != NULL) {
		h = codec_frame_header(frame, 1);
		memcpy(frame + h, payload, len);
		if (codec_frame_parse(frame, h + len, &sid, &p, &plen, err, errlen))
			json = codec_enrich(S, p, plen, CORR, PUBLISH_MS, sid, row, err, errlen);
	}
	free(frame);
	free(payload);
	return json;
}

/* ------------------------------------------------------------ golden */

static void
valid_case(const cJSON *c)
{
	char err[CODEC_ERROR_SIZE] = "", *got, *want;
	struct codec_row row = {0};
	cJSON *golden = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(c, "enriched"), 1);

	got = pipeline(cJSON_GetObjectItemCaseSensitive(c, "event"), &row, err, sizeof(err));
	golden_exact_numbers(golden);
	want = cJSON_PrintUnformatted(golden);
	cJSON_Delete(golden);
	if (got == NULL)
		printf("# error: %s\n", err);
	is_str(got, want, golden_str(c, "name"));
	codec_row_free(&row);
	free(got);
	free(want);
}

static void
invalid_case(const cJSON *c)
{
	struct codec_error ce = {.rule = NULL};
	uint8_t *payload = (uint8_t *)"x";
	size_t len = 1;
	bool r = codec_event_encode(
	    S, cJSON_GetObjectItemCaseSensitive(c, "event"), &payload, &len, &ce);
	const char *want = golden_str(c, "error");

	if (r || payload != NULL || len != 0) {
		ok(0, "%s: accepted", golden_str(c, "name"));
		free(payload);
		return;
	}
	is_str(ce.message, want, golden_str(c, "name"));
	/* The parts: the path, then ": " and the rule, which is one of the
	 * list and starts the rest of the text. */
	ok(ce.rule != NULL && ce.path_len + 2 <= strlen(ce.message) &&
		strncmp(ce.message + ce.path_len, ": ", 2) == 0 &&
		strncmp(ce.message + ce.path_len + 2, ce.rule, strlen(ce.rule)) == 0 &&
		codec_rule(NULL, ce.rule) == ce.rule,
	    "%s: path and rule", golden_str(c, "name"));
}

/* A line of bodies.jsonl: "body", then "count" (events when accepted) or
 * "error" (the message) and "status" (413 for CODEC_TOO_LARGE, else 400);
 * "max_events" / "max_values" give limits, none given means NULL. */
static void
body_case(const cJSON *c)
{
	const char *body = golden_str(c, "body");
	const cJSON *count = cJSON_GetObjectItemCaseSensitive(c, "count"),
		    *me = cJSON_GetObjectItemCaseSensitive(c, "max_events"),
		    *mv = cJSON_GetObjectItemCaseSensitive(c, "max_values"),
		    *status = cJSON_GetObjectItemCaseSensitive(c, "status");
	struct codec_limits lim = {
	    cJSON_IsNumber(me) ? (size_t)me->valuedouble : 0,
	    cJSON_IsNumber(mv) ? (size_t)mv->valuedouble : 0,
	};
	enum codec_status want =
	    cJSON_IsNumber(status) && status->valueint == 413 ? CODEC_TOO_LARGE : CODEC_INVALID;
	char err[256] = "";
	cJSON *events = NULL;
	enum codec_status r = codec_body_parse(body, strlen(body),
	    cJSON_IsNumber(me) || cJSON_IsNumber(mv) ? &lim : NULL, &events, err, sizeof(err));

	if (cJSON_IsNumber(count)) {
		if (r != CODEC_OK)
			printf("# error: %s\n", err);
		ok(r == CODEC_OK && cJSON_IsArray(events) &&
			cJSON_GetArraySize(events) == count->valueint,
		    "body: %s", golden_str(c, "name"));
	} else {
		ok(r == want && events == NULL, "body rejected (%s): %s",
		    want == CODEC_TOO_LARGE ? "413" : "400", golden_str(c, "name"));
		is_str(err, golden_str(c, "error"), golden_str(c, "name"));
	}
	json_tree_free(events);
}

static void
test_examples(void)
{
	size_t len = 0, elen = 0;
	char *body = golden_slurp("t/data/collect-request.json", &len),
	     *want_text = golden_slurp("t/data/enriched-event.json", &elen);
	cJSON *events = NULL, *want = want_text ? cJSON_Parse(want_text) : NULL;
	char err[CODEC_ERROR_SIZE] = "", *got, *w;
	struct codec_row row;

	ok(body != NULL && codec_body_parse(body, len, NULL, &events, err, sizeof(err)) == CODEC_OK,
	    "collect-request.json parses");
	is_int(cJSON_GetArraySize(events), 3, "three events");

	got = pipeline(cJSON_GetArrayItem(events, 0), &row, err, sizeof(err));
	w = cJSON_PrintUnformatted(want);
	is_str(got, w, "event 0 enriches to enriched-event.json");
	ok(got != NULL && strchr(got, '\n') == NULL, "enriched JSON is one line");
	is_int((long long)row.ncolumns, 8, "row has the table's 8 columns");
	is_str(codec_row_value(S, &row, "timestamp_stamp"), "2026-11-20T09:15:02.481000Z",
	    "row timestamp_stamp text");
	is_int(row.partition_us, INT64_C(1795166102481000), "row partition key in microseconds");
	is_str(codec_row_value(S, &row, "message_id_stamp"), "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b",
	    "row message_id_stamp");
	is_str(codec_row_value(S, &row, "correlation_id"), CORR, "row correlation_id");
	is_str(codec_row_value(S, &row, "type"),
	    "Holded\\Wallet\\Domain\\Transaction\\Events\\WalletTransactionCreatedEvent",
	    "row type");
	is_str(
	    codec_row_value(S, &row, "target_subscription"), "Wallet", "row target_subscription");
	is_str(codec_row_value(S, &row, "new_context_account_id"),
	    "0d6f4c2a-3b8e-4f51-9a7c-2e1d5b6c7a80", "row new_context_account_id");
	is_str(codec_row_value(S, &row, "new_context_user_id"),
	    "9b1e7d3c-5a2f-4c6e-8d0b-1f3a5c7e9b24", "row new_context_user_id");
	is_str(codec_row_value(S, &row, "data"), got, "row data is the enriched event");
	ok(codec_row_value(S, &row, "nope") == NULL, "unknown column has no value");
	codec_row_free(&row);
	codec_row_free(&row);
	ok(row.ncolumns == 0 && row.values[0] == NULL, "codec_row_free zeroes and may repeat");
	free(got);
	free(w);

	got = pipeline(cJSON_GetArrayItem(events, 1), &row, err, sizeof(err));
	ok(got != NULL, "event 1 is valid");
	is_str(codec_row_value(S, &row, "timestamp_stamp"), "2026-11-20T10:12:35.000000Z",
	    "event 1 timestamp with +00:00");
	is_str(codec_row_value(S, &row, "message_id_stamp"), "018e0e19-cb1e-1f08-775a-67532e77518d",
	    "event 1 ULID message id as UUID");
	is_str(codec_row_value(S, &row, "new_context_account_id"),
	    "6374be69-9c11-80ac-80aa-3108cf020000", "event 1 ObjectId account as UUIDv8");
	codec_row_free(&row);
	free(got);

	got = pipeline(cJSON_GetArrayItem(events, 2), &row, err, sizeof(err));
	ok(got == NULL, "event 2 is invalid");
	is_str(err, "data.amount: not a number", "event 2 error");
	free(got);

	cJSON_Delete(want);
	json_tree_free(events);
	free(want_text);
	free(body);
}

/* Golden wire bytes: a change of field numbers or framing shows here. */
static void
test_golden_records(void)
{
	size_t len = 0, elen = 0, plen = 0;
	char *rec = golden_slurp("t/data/seeds/record-event0.bin", &len),
	     *want_text = golden_slurp("t/data/enriched-event.json", &elen);
	cJSON *want = want_text != NULL ? cJSON_Parse(want_text) : NULL;
	char err[CODEC_ERROR_SIZE] = "", *got = NULL, *w = cJSON_PrintUnformatted(want);
	const uint8_t *payload = NULL;
	int32_t sid = 0;

	if (rec != NULL && codec_frame_parse(rec, len, &sid, &payload, &plen, err, sizeof(err)))
		got = codec_enrich(S, payload, plen, CORR, PUBLISH_MS, sid, NULL, err, sizeof(err));
	is_str(got, w, "seeds/record-event0.bin enriches to enriched-event.json");
	free(got);
	free(rec);
	rec = golden_slurp("t/data/seeds/record-empty-explicit-index.bin", &len);
	ok(rec != NULL && codec_frame_parse(rec, len, &sid, &payload, &plen, err, sizeof(err)) &&
		plen == 0,
	    "seeds/record-empty-explicit-index.bin frames an empty payload");
	got = codec_enrich(S, payload, 0, CORR, PUBLISH_MS, sid, NULL, err, sizeof(err));
	ok(got == NULL, "... which does not enrich");
	free(rec);
	free(w);
	cJSON_Delete(want);
	free(want_text);
}

/* Events only raw text can express: duplicate keys. */
static void
test_duplicates(void)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
	    {"{\"data\":{\"id\":\"a\",\"amount\":1},\"data\":{},\"attributes\":{}}",
		"data: duplicate key"},
	    {"{\"data\":{\"id\":\"a\",\"id\":\"b\",\"amount\":1},\"attributes\":{}}",
		"data.id: duplicate key"},
	    {"{\"data\":{\"id\":\"a\",\"amount\":1,\"x\":1,\"x\":2},\"attributes\":{}}",
		"data.x: duplicate key"},
	    {"{\"data\":{\"id\":\"a\",\"amount\":1},\"attributes\":{\"" LONG_TS
	     "\":\"a\",\"" LONG_TS "\":\"b\"}}",
		"attributes.timestampStamp: duplicate key"},
	    {"{\"data\":{\"id\":\"a\",\"amount\":1},\"attributes\":{\"type\":\"t\","
	     "\"targetSubscription\":\"s\",\"" LONG_TS
	     "\":{\"dispatchedAt\":\"2026-11-20T10:12:35Z\","
	     "\"dispatchedAt\":\"2026-11-20T10:12:36Z\"}}}",
		"attributes.timestampStamp.dispatchedAt: duplicate key"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *events = NULL;
		uint8_t *payload = NULL;
		size_t len;
		char err[256] = "";
		struct codec_error ce;

		if (codec_body_parse(cases[i].text, strlen(cases[i].text), NULL, &events, err,
			sizeof(err)) != CODEC_OK) {
			ok(0, "duplicate case %zu parses: %s", i, err);
			continue;
		}
		ok(!codec_event_encode(S, events->child, &payload, &len, &ce),
		    "duplicate case %zu rejected", i);
		is_str(ce.message, cases[i].error, "... with the short path of the key");
		is_str(ce.rule, "duplicate key", "... and the rule");
		free(payload);
		json_tree_free(events);
	}
}

/* Bodies that the JSON Lines golden file cannot hold. */
static void
test_bodies_raw(void)
{
	static const char bad_utf8[] = "[{\"a\":\"\xc3\x28\"}]";
	static const char overlong[] = "[{\"a\":\"\xc0\xaf\"}]";
	static const char surrogate[] = "[{\"a\":\"\xed\xa0\x80\"}]";
	static const char nul_out[] = "[{}]\0";
	static const char nul_in[] = "[{\"a\":\"x\0y\"}]";
	static const char nul_between[] = "[\0{}]";
	static const char nul_after_key[] = "{\"a\"\0:1}";
	static const char nul_before_comma[] = "[{}\0,{}]";
	static const char bad_utf8_outside[] = "[\xff]";
	char err[256] = "", *deep;
	cJSON *events = NULL;

	ok(codec_body_parse(bad_utf8, sizeof(bad_utf8) - 1, NULL, &events, err, sizeof(err)) ==
		CODEC_INVALID,
	    "invalid UTF-8 rejected");
	is_str(err, "body: invalid UTF-8 at line 1, column 8 (byte 7)", "invalid UTF-8 position");
	ok(codec_body_parse(overlong, sizeof(overlong) - 1, NULL, &events, err, sizeof(err)) ==
		CODEC_INVALID,
	    "overlong UTF-8 rejected");
	ok(codec_body_parse(surrogate, sizeof(surrogate) - 1, NULL, &events, err, sizeof(err)) ==
		CODEC_INVALID,
	    "UTF-8 encoded surrogate rejected");
	is_str(err, "body: invalid UTF-8 at line 1, column 8 (byte 7)", "... at its first byte");
	ok(codec_body_parse(bad_utf8_outside, sizeof(bad_utf8_outside) - 1, NULL, &events, err,
	       sizeof(err)) == CODEC_INVALID,
	    "invalid UTF-8 between tokens rejected");
	is_str(err, "body: invalid UTF-8 at line 1, column 2 (byte 1)", "... as invalid UTF-8");
	ok(codec_body_parse(nul_out, sizeof(nul_out) - 1, NULL, &events, err, sizeof(err)) ==
		CODEC_INVALID,
	    "NUL after the value rejected");
	is_str(err, "body: trailing data after the JSON value at line 1, column 5 (byte 4)",
	    "NUL after the value: message");
	ok(codec_body_parse(nul_in, sizeof(nul_in) - 1, NULL, &events, err, sizeof(err)) ==
		CODEC_INVALID,
	    "raw NUL inside a string rejected");
	is_str(err, "body: control character in a string at line 1, column 9 (byte 8)",
	    "raw NUL inside a string: message");
	ok(codec_body_parse(nul_between, sizeof(nul_between) - 1, NULL, &events, err,
	       sizeof(err)) == CODEC_INVALID &&
		events == NULL,
	    "raw NUL between tokens rejected");
	is_str(err, "body: control character outside a string at line 1, column 2 (byte 1)",
	    "raw NUL between tokens: message");
	ok(codec_body_parse(nul_after_key, sizeof(nul_after_key) - 1, NULL, &events, err,
	       sizeof(err)) == CODEC_INVALID,
	    "raw NUL between a key and ':' rejected");
	is_str(err, "body: control character outside a string at line 1, column 5 (byte 4)",
	    "raw NUL between a key and ':': message");
	ok(codec_body_parse(nul_before_comma, sizeof(nul_before_comma) - 1, NULL, &events, err,
	       sizeof(err)) == CODEC_INVALID,
	    "raw NUL before a ',' rejected");
	is_str(err, "body: control character outside a string at line 1, column 4 (byte 3)",
	    "raw NUL before a ',': message");
	/* Not NUL-terminated: the parser must stay inside LEN. */
	ok(codec_body_parse("[{}]garbage", 4, NULL, &events, err, sizeof(err)) == CODEC_OK &&
		cJSON_GetArraySize(events) == 1,
	    "LEN bounds the body");
	json_tree_free(events);
	events = NULL;
	ok(codec_body_parse(NULL, 0, NULL, &events, err, sizeof(err)) == CODEC_INVALID,
	    "NULL body rejected");
	is_str(err, "body: empty", "NULL body: message");

	/* A pair of surrogate escapes is one character, in UTF-8. */
	ok(codec_body_parse("[\"\\ud83d\\ude00\"]", 16, NULL, &events, err, sizeof(err)) ==
		    CODEC_OK &&
		cJSON_IsString(events->child) &&
		strcmp(events->child->valuestring, "\xf0\x9f\x98\x80") == 0,
	    "surrogate pair escape becomes U+1F600");
	json_tree_free(events);
	events = NULL;

	deep = malloc(2 * (CODEC_JSON_MAX_DEPTH + 1));
	if (deep != NULL) {
		size_t d = CODEC_JSON_MAX_DEPTH;

		memset(deep, '[', d);
		memset(deep + d, ']', d);
		ok(codec_body_parse(deep, 2 * d, NULL, &events, err, sizeof(err)) == CODEC_OK,
		    "nesting of CODEC_JSON_MAX_DEPTH levels accepted");
		json_tree_free(events);
		events = NULL;
		d++;
		memset(deep, '[', d);
		memset(deep + d, ']', d);
		ok(codec_body_parse(deep, 2 * d, NULL, &events, err, sizeof(err)) ==
			    CODEC_INVALID &&
			events == NULL,
		    "one level more rejected");
		is_str(err, "body: nesting deeper than 128 levels at line 1, column 129 (byte 128)",
		    "... at the bracket that opens it");
		free(deep);
	}
	/* Objects count as levels too: {"a":{"a":...}} */
	deep = malloc(6 * (CODEC_JSON_MAX_DEPTH + 1) + 1);
	if (deep != NULL) {
		size_t n = 0;

		for (int i = 0; i <= CODEC_JSON_MAX_DEPTH; i++, n += 5)
			memcpy(deep + n, "{\"a\":", 5);
		deep[n++] = '1';
		memset(deep + n, '}', CODEC_JSON_MAX_DEPTH + 1);
		n += CODEC_JSON_MAX_DEPTH + 1;
		ok(codec_body_parse(deep, n, NULL, &events, err, sizeof(err)) == CODEC_INVALID,
		    "objects nested one level too deep rejected");
		is_str(err, "body: nesting deeper than 128 levels at line 1, column 641 (byte 640)",
		    "... at the brace that opens it");
		free(deep);
	}
}

/* Every way a text can end early, each in a buffer of exactly its size:
 * a read past it shows under valgrind and ASan.  The first ends just
 * after a ',' in an object, where cJSON before 1.7.18 reads one byte too
 * far. */
static void
test_bodies_truncated(void)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
	    {"[{\"a\":1,", "unexpected end of input at line 1, column 9 (byte 8)"},
	    {"[", "unexpected end of input at line 1, column 2 (byte 1)"},
	    {"[1", "unexpected end of input at line 1, column 3 (byte 2)"},
	    {"[1,", "unexpected end of input at line 1, column 4 (byte 3)"},
	    {"{", "unexpected end of input at line 1, column 2 (byte 1)"},
	    {"{\"a\"", "unexpected end of input at line 1, column 5 (byte 4)"},
	    {"{\"a\":", "unexpected end of input at line 1, column 6 (byte 5)"},
	    {"[\"ab", "unterminated string at line 1, column 5 (byte 4)"},
	    {"[\"a\\", "unterminated string at line 1, column 5 (byte 4)"},
	    {"[\"\\u12", "invalid \\u escape at line 1, column 3 (byte 2)"},
	    {"[\"\\ud83d\\ude0", "unpaired UTF-16 surrogate in a \\u escape at line 1, column 3 "
				 "(byte 2)"},
	    {"[\"\xe6\xbc", "invalid UTF-8 at line 1, column 3 (byte 2)"},
	    {"[-", "invalid number: no digit after '-' at line 1, column 3 (byte 2)"},
	    {"[1.",
		"invalid number: no digit after the decimal point at line 1, column 4 (byte 3)"},
	    {"[1e", "invalid number: no digit in the exponent at line 1, column 4 (byte 3)"},
	    {"[1e-", "invalid number: no digit in the exponent at line 1, column 5 (byte 4)"},
	    {"[tru", "invalid literal at line 1, column 5 (byte 4)"},
	    {"[nul", "invalid literal at line 1, column 5 (byte 4)"},
	    {"[fals", "invalid literal at line 1, column 6 (byte 5)"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].text);
		char *buf = malloc(n), err[256] = "", want[256];
		cJSON *events = NULL;

		if (buf == NULL)
			continue;
		memcpy(buf, cases[i].text, n);
		snprintf(want, sizeof(want), "body: %s", cases[i].error);
		ok(codec_body_parse(buf, n, NULL, &events, err, sizeof(err)) == CODEC_INVALID &&
			events == NULL,
		    "truncated body %zu rejected", i);
		is_str(err, want, "... with its position");
		free(buf);
	}
}

/* Numbers at the length limit, in a buffer of exactly their size. */
static void
test_bodies_long_number(void)
{
	char text[CODEC_JSON_MAX_NUMBER + 3], err[256] = "";
	cJSON *events = NULL;

	text[0] = '[';
	text[1] = '1';
	memset(text + 2, '0', CODEC_JSON_MAX_NUMBER - 1);
	text[CODEC_JSON_MAX_NUMBER + 1] = ']';
	ok(codec_body_parse(text, CODEC_JSON_MAX_NUMBER + 2, NULL, &events, err, sizeof(err)) ==
		    CODEC_OK &&
		cJSON_IsNumber(events->child) && events->child->valuedouble == 1e62,
	    "number of CODEC_JSON_MAX_NUMBER digits accepted");
	json_tree_free(events);
	events = NULL;
	memset(text + 2, '0', CODEC_JSON_MAX_NUMBER);
	text[CODEC_JSON_MAX_NUMBER + 2] = ']';
	ok(codec_body_parse(text, CODEC_JSON_MAX_NUMBER + 3, NULL, &events, err, sizeof(err)) ==
		    CODEC_INVALID &&
		events == NULL,
	    "one digit more rejected");
	is_str(err, "body: invalid number: more than 63 characters at line 1, column 2 (byte 1)",
	    "... at the number's first byte");
}

/* The JSON in strings (stamps, extra values) follows the body's rules. */
static void
test_json_strict(void)
{
	static const struct {
		const char *text, *why;
		size_t where;
	} bad[] = {
	    {"", "empty", 0},
	    {" \t", "empty", 2},
	    {"01", "invalid number: leading zero", 1},
	    {"[1,]", "expected a value", 3},
	    {"{\"id\":\"\\ud800\"}", "unpaired UTF-16 surrogate in a \\u escape", 7},
	    {"\"a\\u0000\"", "\\u0000 in a string", 2},
	    {"\x01[]", "control character outside a string", 0},
	    {"1 2", "trailing data after the JSON value", 2},
	};
	const char *why = NULL;
	size_t where = 0;
	cJSON *v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		where = 99;
		v = json_strict_parse(bad[i].text, strlen(bad[i].text), &where, &why);
		ok(v == NULL && where == bad[i].where, "strict JSON rejects \"%s\" at byte %zu",
		    bad[i].text, bad[i].where);
		is_str(why, bad[i].why, "... saying why");
		cJSON_Delete(v);
	}
	v = json_strict_parse(" -0.5e-3 ", 9, &where, &why);
	ok(cJSON_IsNumber(v) && v->valuedouble == -0.5e-3, "strict JSON takes a top-level number");
	cJSON_Delete(v);
	v = json_strict_parse("\xef\xbb\xbf[{\"id\":\"x\"}]", 15, &where, &why);
	ok(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1, "strict JSON skips a leading BOM");
	cJSON_Delete(v);
}

/* ------------------------------------------------------------ limits */

static void
test_body_limits(void)
{
	/* 4,000,000 zeros: 8 MB of text, a 7.8 KB gzip, a 320 MB tree. */
	const size_t zeros = 4000000, n = 2 * zeros + 1;
	struct codec_limits lim = {1000, 0};
	char *big = malloc(n), err[256] = "";
	cJSON *events = NULL;
	enum codec_status st;
	size_t base;

	if (!ok(big != NULL, "4,000,000-zero body allocated"))
		return;
	big[0] = '[';
	for (size_t i = 0; i < zeros; i++) {
		big[2 * i + 1] = '0';
		big[2 * i + 2] = ',';
	}
	big[n - 1] = ']';
	/* The counter itself must see a tree while it is held. */
	base = json_tree_live_bytes();
	st = codec_body_parse("[0,0]", 5, &lim, &events, err, sizeof(err));
	ok(st == CODEC_OK && json_tree_live_bytes() > base, "tree bytes are counted (%zu)",
	    json_tree_live_bytes() - base);
	json_tree_free(events);
	events = NULL;
	is_int((long long)json_tree_live_bytes(), (long long)base, "... and given back");

	st = codec_body_parse(big, n, &lim, &events, err, sizeof(err));
	ok(st == CODEC_TOO_LARGE && events == NULL, "4,000,000 zeros, max_events 1000: 413");
	is_str(err, "body: more than 1000 events", "... with the limit");
	is_int(
	    (long long)json_tree_live_bytes(), (long long)base, "... before any tree is allocated");

	lim.max_events = 0;
	lim.max_values = 200000;
	st = codec_body_parse(big, n, &lim, &events, err, sizeof(err));
	ok(st == CODEC_TOO_LARGE && events == NULL, "4,000,000 zeros, max_values 200000: 413");
	is_str(err, "body: more than 200000 JSON values", "... with the limit");
	is_int(
	    (long long)json_tree_live_bytes(), (long long)base, "... before any tree is allocated");

	/* Stopping at once: what follows the limit is never read, even
	 * when it would make the body invalid. */
	big[n - 1] = '}';
	lim.max_events = 1000;
	lim.max_values = 0;
	st = codec_body_parse(big, n, &lim, &events, err, sizeof(err));
	ok(st == CODEC_TOO_LARGE && events == NULL, "a broken tail past the limit is not reached");
	is_str(err, "body: more than 1000 events", "... still 413");
	lim.max_events = 0;
	st = codec_body_parse(big, n, &lim, &events, err, sizeof(err));
	ok(st == CODEC_INVALID && events == NULL, "without the limit the tail is reached");
	is_str(err, "body: expected ',' or ']' at line 1, column 8000001 (byte 8000000)",
	    "... and rejected");
	free(big);
}

/* ------------------------------------------------------------ gzip */

static size_t
deflate_into(const void *in, size_t inlen, int window_bits, uint8_t *out, size_t outcap)
{
	z_stream zs;
	size_t n;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	zs.next_in = in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = out;
	zs.avail_out = (uInt)outcap;
	n = deflate(&zs, Z_FINISH) == Z_STREAM_END ? outcap - zs.avail_out : 0;
	deflateEnd(&zs);
	return n;
}

static void
test_gzip(void)
{
	size_t len = 0, zlen = 0, plain_len = 0, n;
	char *gz = golden_slurp("t/data/collect-request.json.gz", &zlen),
	     *plain = golden_slurp("t/data/collect-request.json", &plain_len);
	char err[256] = "", *out = NULL;
	uint8_t *buf, *zeros;
	enum codec_status st;

	if (!ok(gz != NULL && plain != NULL, "gzip golden files read"))
		goto done;
	ok(codec_is_gzip(gz, zlen), "golden file has the gzip magic");
	ok(!codec_is_gzip(plain, plain_len) && !codec_is_gzip(gz, 1),
	    "plain text and 1 byte are not gzip");

	st = codec_gunzip(gz, zlen, plain_len, &out, &len, err, sizeof(err));
	ok(st == CODEC_OK && len == plain_len && memcmp(out, plain, len) == 0 && out[len] == '\0',
	    "inflates to the golden body, cap equal to its size");
	free(out);
	st = codec_gunzip(gz, zlen, plain_len - 1, &out, &len, err, sizeof(err));
	ok(st == CODEC_TOO_LARGE && out == NULL, "one byte over the cap is CODEC_TOO_LARGE");
	is_str(err, "gzip: more than 2075 bytes after inflating", "too large: message");

	st = codec_gunzip(gz, zlen - 4, 1 << 20, &out, &len, err, sizeof(err));
	ok(st == CODEC_INVALID && out == NULL, "missing trailer is invalid");
	is_str(err, "gzip: truncated stream", "truncated: message");
	st = codec_gunzip(gz, zlen / 2, 1 << 20, &out, &len, err, sizeof(err));
	ok(st == CODEC_INVALID, "cut in half is invalid");

	buf = malloc(2 * zlen + 8);
	if (buf != NULL) {
		memcpy(buf, gz, zlen);
		memcpy(buf + zlen, "xyz", 3);
		st = codec_gunzip(buf, zlen + 3, 1 << 20, &out, &len, err, sizeof(err));
		ok(st == CODEC_INVALID, "trailing garbage is invalid");
		is_str(err, "gzip: trailing data after the compressed stream", "trailing: message");
		memcpy(buf + zlen, gz, zlen);
		st = codec_gunzip(buf, 2 * zlen, 1 << 20, &out, &len, err, sizeof(err));
		ok(st == CODEC_OK && len == 2 * plain_len &&
			memcmp(out + plain_len, plain, plain_len) == 0,
		    "two gzip members are concatenated");
		free(out);
		memcpy(buf, gz, zlen);
		buf[zlen / 2] ^= 0x55;
		st = codec_gunzip(buf, zlen, 1 << 20, &out, &len, err, sizeof(err));
		ok(st == CODEC_INVALID && out == NULL, "corrupt data is invalid (%s)", err);
		free(buf);
	}

	buf = malloc(plain_len + 1024);
	if (buf != NULL) {
		n = deflate_into(plain, plain_len, 15, buf, plain_len + 1024);
		st = codec_gunzip(buf, n, 1 << 20, &out, &len, err, sizeof(err));
		ok(n > 0 && st == CODEC_OK && len == plain_len && memcmp(out, plain, len) == 0,
		    "zlib streams inflate too");
		free(out);
		n = deflate_into("", 0, 31, buf, 1024);
		st = codec_gunzip(buf, n, 0, &out, &len, err, sizeof(err));
		ok(st == CODEC_OK && len == 0 && out != NULL && out[0] == '\0',
		    "empty gzip content fits a cap of 0");
		free(out);
		free(buf);
	}

	/* A small stream that inflates to 8 MiB stops at the cap. */
	zeros = calloc(8 << 20, 1);
	buf = malloc(64 << 10);
	if (zeros != NULL && buf != NULL) {
		n = deflate_into(zeros, 8 << 20, 31, buf, 64 << 10);
		st = codec_gunzip(buf, n, 100000, &out, &len, err, sizeof(err));
		ok(n > 0 && n < 64 << 10 && st == CODEC_TOO_LARGE && out == NULL,
		    "gzip bomb stops at the cap");
	}
	free(zeros);
	free(buf);

	st = codec_gunzip("hello", 5, 100, &out, &len, err, sizeof(err));
	ok(st == CODEC_INVALID && out == NULL, "not compressed is invalid");
	st = codec_gunzip("", 0, 100, &out, &len, err, sizeof(err));
	ok(st == CODEC_INVALID, "empty input is invalid");
	is_str(err, "gzip: empty input", "empty input: message");
done:
	free(gz);
	free(plain);
}

/* ------------------------------------------------------------ framing */

static void
test_frames(void)
{
	static const struct {
		const char *name;
		uint8_t bytes[12];
		size_t len;
		const char *error;
	} bad[] = {
	    {"5 bytes", {0, 0, 0, 0, 1}, 5, "frame: 5 bytes, shorter than a Confluent header"},
	    {"magic 1", {1, 0, 0, 0, 1, 0}, 6, "frame: magic byte 0x01, want 0x00"},
	    {"negative schema id", {0, 0x80, 0, 0, 1, 0}, 6, "frame: negative schema id"},
	    {"negative count", {0, 0, 0, 0, 1, 0x01}, 6, "frame: bad message-index count"},
	    {"unterminated varint", {0, 0, 0, 0, 1, 0x80}, 6, "frame: bad message-index count"},
	    {"varint over 32 bits", {0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10,
		"frame: bad message-index count"},
	    {"path [1]", {0, 0, 0, 0, 1, 0x02, 0x02}, 7,
		"frame: message index 1, want 0 (the first message)"},
	    {"path [0, 0]", {0, 0, 0, 0, 1, 0x04, 0, 0}, 8,
		"frame: message-index path of 2 entries, want the first message"},
	    {"count 1 without index", {0, 0, 0, 0, 1, 0x02}, 6, "frame: bad message index"},
	};
	uint8_t hdr[CODEC_FRAME_MAX], frame[32];
	const uint8_t *payload;
	size_t n, plen;
	int32_t sid;
	char err[256] = "";

	n = codec_frame_header(hdr, 0x01020304);
	ok(n == 6 && memcmp(hdr, "\x00\x01\x02\x03\x04\x00", 6) == 0,
	    "header bytes 00 01020304 00");
	memcpy(frame, hdr, n);
	memcpy(frame + n, "\x0a\x00", 2);
	ok(codec_frame_parse(frame, n + 2, &sid, &payload, &plen, err, sizeof(err)) &&
		sid == 0x01020304 && payload == frame + 6 && plen == 2,
	    "round trip");
	ok(codec_frame_parse(hdr, n, &sid, &payload, &plen, err, sizeof(err)) && plen == 0,
	    "empty payload is a valid frame");
	memcpy(frame, "\x00\x7f\xff\xff\xff\x02\x00\x0a", 8);
	ok(codec_frame_parse(frame, 8, &sid, &payload, &plen, err, sizeof(err)) &&
		sid == INT32_MAX && payload == frame + 7 && plen == 1,
	    "explicit path [0], schema id INT32_MAX");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ok(!codec_frame_parse(
		       bad[i].bytes, bad[i].len, &sid, &payload, &plen, err, sizeof(err)) &&
			payload == NULL,
		    "rejects %s", bad[i].name);
		is_str(err, bad[i].error, bad[i].name);
	}
}

/* ------------------------------------------------------------ enrich */

/* The packed form of event 0 of the example, unpacked for editing. */
static Collectord__V1__Event *
example_message(void)
{
	size_t len = 0, plen;
	char *body = golden_slurp("t/data/collect-request.json", &len), err[256];
	cJSON *events = NULL;
	uint8_t *payload = NULL;
	Collectord__V1__Event *m = NULL;
	struct codec_error ce;

	if (body != NULL &&
	    codec_body_parse(body, len, NULL, &events, err, sizeof(err)) == CODEC_OK &&
	    codec_event_encode(S, events->child, &payload, &plen, &ce))
		m = collectord__v1__event__unpack(NULL, plen, payload);
	free(payload);
	json_tree_free(events);
	free(body);
	return m;
}

/* Pack M and expect codec_enrich() to fail with ERROR. */
static void
enrich_fails(Collectord__V1__Event *m, const char *error, const char *name)
{
	size_t len = collectord__v1__event__get_packed_size(m);
	uint8_t *buf = malloc(len + 1);
	struct codec_row row;
	char err[256] = "", *json;

	if (buf == NULL)
		return;
	collectord__v1__event__pack(m, buf);
	json = codec_enrich(S, buf, len, CORR, PUBLISH_MS, 1, &row, err, sizeof(err));
	ok(json == NULL && row.ncolumns == 0 && row.values[0] == NULL, "enrich rejects %s", name);
	is_str(err, error, name);
	free(json);
	free(buf);
}

static void
test_enrich(void)
{
	Collectord__V1__Event *m = example_message();
	Collectord__V1__Data__ExtraEntry entry = COLLECTORD__V1__DATA__EXTRA_ENTRY__INIT,
					 *ep = &entry;
	Collectord__V1__Attributes__OriginalIdsEntry
	    oe = COLLECTORD__V1__ATTRIBUTES__ORIGINAL_IDS_ENTRY__INIT,
	    *oep = &oe;
	char err[256] = "", *json, *plain, *saved, bad_utf8[] = "ab\xff";
	uint8_t *buf;
	size_t len;

	if (!ok(m != NULL && m->attributes != NULL && m->data != NULL, "example payload unpacks"))
		return;
	len = collectord__v1__event__get_packed_size(m);
	buf = malloc(len + 3);
	collectord__v1__event__pack(m, buf);
	plain = codec_enrich(S, buf, len, CORR, PUBLISH_MS, 1, NULL, err, sizeof(err));
	ok(plain != NULL, "enrich without a row");
	/* Field 99, varint 1: a newer producer's field. */
	memcpy(buf + len, "\x98\x06\x01", 3);
	json = codec_enrich(S, buf, len + 3, CORR, PUBLISH_MS, 1, NULL, err, sizeof(err));
	is_str(json, plain, "unknown fields are ignored");
	free(json);
	json = codec_enrich(
	    S, buf, len, "019AA0F37C217D3E9A415B2E00000000", PUBLISH_MS, 1, NULL, err, sizeof(err));
	ok(json != NULL && strstr(json, "\"correlationId\":\"" CORR "\"") != NULL,
	    "correlation id given in another spelling comes out canonical");
	free(json);
	json = codec_enrich(S, buf, len, "batch-1", PUBLISH_MS, 1, NULL, err, sizeof(err));
	ok(json == NULL, "correlation id that is not a UUID");
	is_str(err, "metadata.correlationId: not a UUID", "bad correlation id: message");
	json = codec_enrich(S, buf, len, CORR, -1, 1, NULL, err, sizeof(err));
	ok(json == NULL, "negative publish time rejected");
	json = codec_enrich(S, buf, len, CORR, 0, 7, NULL, err, sizeof(err));
	ok(json != NULL &&
		strstr(json, "\"publishTime\":\"1970-01-01T00:00:00.000Z\",\"schemaId\":7}") !=
		    NULL,
	    "publish time 0 and schema id 7");
	free(json);
	free(plain);

	json = codec_enrich(
	    S, (const uint8_t *)"\xff\xff\xff", 3, CORR, PUBLISH_MS, 1, NULL, err, sizeof(err));
	ok(json == NULL, "garbage payload rejected");
	is_str(err, "payload: not a valid collectord.v1.Event message", "garbage: message");
	json = codec_enrich(S, buf, 0, CORR, PUBLISH_MS, 1, NULL, err, sizeof(err));
	ok(json == NULL, "empty payload rejected");
	is_str(err, "payload: data: missing", "empty payload: message");
	json = codec_enrich(S, buf, len - 1, CORR, PUBLISH_MS, 1, NULL, err, sizeof(err));
	ok(json == NULL, "truncated payload rejected (%s)", err);
	free(buf);

	saved = m->attributes->messageidstamp;
	m->attributes->messageidstamp = (char *)"01HR71KJRY3W47EPK7ACQ7EMCD";
	enrich_fails(
	    m, "payload: attributes.messageIdStamp: not a canonical UUID", "ULID on the wire");
	m->attributes->messageidstamp = (char *)"6C1F0E8A-2D4B-4A9C-B7E3-5F8D1A2C4E6B";
	enrich_fails(
	    m, "payload: attributes.messageIdStamp: not a canonical UUID", "upper-case UUID");
	m->attributes->messageidstamp = NULL;
	enrich_fails(m, "payload: attributes.messageIdStamp: missing", "missing message id");
	m->attributes->messageidstamp = saved;

	saved = m->attributes->timestampstamp;
	m->attributes->timestampstamp = (char *)"20 Nov 2026";
	enrich_fails(
	    m, "payload: attributes.timestampStamp: not an RFC 3339 timestamp", "bad timestamp");
	m->attributes->timestampstamp = saved;

	saved = m->data->id;
	m->data->id = bad_utf8;
	enrich_fails(m, "payload: data.id: not valid UTF-8", "invalid UTF-8");
	m->data->id = (char *)"";
	enrich_fails(m, "payload: data.id: empty", "empty id");
	m->data->id = saved;

	m->data->amount = INFINITY;
	enrich_fails(m, "payload: data.amount: not a finite number", "infinite amount");
	m->data->amount = 149.9;
	m->attributes->amplitudetrackstamp->id = UINT64_C(9007199254740992);
	enrich_fails(
	    m, "payload: attributes.amplitudeTrackStamp.id: out of range", "id past 2^53-1");
	m->attributes->amplitudetrackstamp->id = 48213;

	m->data->n_extra = 1;
	m->data->extra = &ep;
	entry.key = (char *)"id";
	entry.value = (char *)"1";
	enrich_fails(m, "payload: data.id: extra key given twice or shadowing a field",
	    "extra shadowing id");
	entry.key = (char *)"note";
	entry.value = (char *)"{not json";
	enrich_fails(m, "payload: data.note: extra value is not JSON", "extra not JSON");
	entry.value = (char *)"\"a\\u0000b\"";
	enrich_fails(m, "payload: data.note: extra value is not JSON", "extra hiding \\u0000");
	entry.value = NULL;
	enrich_fails(m, "payload: data.extra: entry without key or value", "extra without value");
	m->data->n_extra = 0;
	m->data->extra = NULL;

	m->attributes->n_originalids = 1;
	m->attributes->originalids = &oep;
	oe.key = (char *)"messageIdStamp";
	oe.value = bad_utf8;
	enrich_fails(
	    m, "payload: attributes.originalIds: entry not valid UTF-8", "original id not UTF-8");
	{
		Collectord__V1__Attributes__OriginalIdsEntry *two[2] = {&oe, &oe};

		oe.value = (char *)"x";
		m->attributes->n_originalids = 2;
		m->attributes->originalids = two;
		enrich_fails(
		    m, "payload: attributes.originalIds: duplicate key", "original id twice");
	}
	m->attributes->n_originalids = 0;
	m->attributes->originalids = NULL;

	m->attributes->n_extra = 1;
	m->attributes->extra = (Collectord__V1__Attributes__ExtraEntry **)&ep;
	entry.key = (char *)"originalIds";
	entry.value = (char *)"{}";
	enrich_fails(m,
	    "payload: attributes.originalIds: extra key given twice or shadowing a field",
	    "extra shadowing the reserved originalIds");
	m->attributes->n_extra = 0;
	m->attributes->extra = NULL;

	collectord__v1__event__free_unpacked(m, NULL);
}

/* ------------------------------------------------------------ dead letters */

static void
test_dead_letter(void)
{
	cJSON *ev = cJSON_Parse("{\"data\":{\"amount\":\"12,50\"}}");
	char *doc;

	doc = codec_dead_letter_json(
	    ev, NULL, 0, "data.amount: not a number", CORR, "2026-11-20T09:15:02.913Z");
	is_str(doc,
	    "{\"error\":\"data.amount: not a number\",\"event\":{\"data\":{\"amount\":\"12,50\"}},"
	    "\"correlationId\":\"" CORR "\",\"receivedAt\":\"2026-11-20T09:15:02.913Z\"}",
	    "dead letter of an event");
	free(doc);
	doc = codec_dead_letter_json(NULL, "[{\"a\":\n", 7, "body: invalid JSON", CORR, "t");
	is_str(doc,
	    "{\"error\":\"body: invalid JSON\",\"event\":\"[{\\\"a\\\":\\n\",\"body\":\"text\","
	    "\"correlationId\":\"" CORR "\",\"receivedAt\":\"t\"}",
	    "dead letter of a text body");
	free(doc);
	doc = codec_dead_letter_json(NULL, "\xff\0a", 3, "body: invalid UTF-8", NULL, NULL);
	is_str(doc,
	    "{\"error\":\"body: invalid UTF-8\",\"event\":\"/wBh\",\"body\":\"base64\","
	    "\"correlationId\":null,\"receivedAt\":null}",
	    "dead letter of a binary body, NULL strings");
	free(doc);
	doc = codec_dead_letter_json(NULL, "\0", 1, "e", "c", "r");
	ok(doc != NULL && strstr(doc, "\"event\":\"AA==\"") != NULL, "base64 with two pads");
	free(doc);
	doc = codec_dead_letter_json(NULL, "\0a", 2, "e", "c", "r");
	ok(doc != NULL && strstr(doc, "\"event\":\"AGE=\"") != NULL, "base64 with one pad");
	free(doc);
	doc = codec_dead_letter_json(NULL, "", 0, "e", "c", "r");
	ok(doc != NULL && strstr(doc, "\"event\":\"\",\"body\":\"text\"") != NULL, "empty body");
	free(doc);
	doc = codec_dead_letter_json(NULL, NULL, 0, NULL, NULL, NULL);
	is_str(doc, "{\"error\":null,\"event\":null,\"correlationId\":null,\"receivedAt\":null}",
	    "dead letter with nothing");
	free(doc);
	cJSON_Delete(ev);
}

/* ------------------------------------------------------------ time */

/* The text gmtime_r() and snprintf() make of US (microseconds, WIDTH 6)
 * or of US / 1000 (milliseconds, WIDTH 3). */
static void
time_reference(int64_t us, int width, char out[64])
{
	int64_t unit = width == 6 ? 1000000 : 1000, t = width == 6 ? us : us / 1000;
	int64_t secs = t / unit, frac = t % unit;
	struct tm tm;
	time_t tt;

	if (frac < 0) {
		frac += unit;
		secs--;
	}
	tt = (time_t)secs;
	gmtime_r(&tt, &tm);
	snprintf(out, 64, "%04lld-%02d-%02dT%02d:%02d:%02d.%0*lldZ", (long long)tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, width, (long long)frac);
}

/* Formatting, against gmtime_r(), and parsing back, on instants spread
 * over the years 1 to 9999 (a fixed sequence: the same every run). */
static void
test_time_reference(void)
{
	const int64_t lo = INT64_C(-62135596800000000), hi = INT64_C(253402300799999999);
	uint64_t x = 88172645463325252u;
	size_t bad_us = 0, bad_ms = 0, bad_parse = 0;

	for (int i = 0; i < 20000; i++) {
		char got[CODEC_TIME_SIZE], want[64];
		int64_t us, back;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		us = lo + (int64_t)(x % (uint64_t)(hi - lo));
		if (i % 7 == 0)
			us -= us % 1000000; /* whole seconds too */
		codec_format_us(us, got);
		time_reference(us, 6, want);
		if (strcmp(got, want) != 0 && bad_us++ < 3)
			printf("# format us %lld: got %s, want %s\n", (long long)us, got, want);
		if (!codec_parse_timestamp(got, &back) || back != us)
			bad_parse++;
		/* milliseconds: whole ones, as the callers pass them */
		codec_format_ms(us / 1000 - (us % 1000 < 0), got);
		time_reference((us / 1000 - (us % 1000 < 0)) * 1000, 3, want);
		if (strcmp(got, want) != 0 && bad_ms++ < 3)
			printf("# format ms %lld: got %s, want %s\n", (long long)(us / 1000), got,
			    want);
	}
	ok(bad_us == 0, "format us equals gmtime_r's text on 20000 instants (%zu differ)", bad_us);
	ok(bad_ms == 0, "format ms equals gmtime_r's text on 20000 instants (%zu differ)", bad_ms);
	ok(bad_parse == 0, "each parses back to its instant (%zu do not)", bad_parse);
}

static void
test_time(void)
{
	static const struct {
		const char *text;
		int64_t us;
	} good[] = {
	    {"1970-01-01T00:00:00Z", 0},
	    {"1970-01-01T00:00:00.000001Z", 1},
	    {"1969-12-31T23:59:59.999999Z", -1},
	    {"2026-11-20T09:15:02.481Z", INT64_C(1795166102481000)},
	    {"2026-11-20T10:15:02.481+01:00", INT64_C(1795166102481000)},
	    {"2026-11-20T04:00:02.481-05:15", INT64_C(1795166102481000)},
	    {"2026-11-20T09:15:02.4819999Z", INT64_C(1795166102481999)},
	    {"2000-02-29T00:00:00Z", INT64_C(951782400000000)},
	    {"2016-12-31T23:59:60Z", INT64_C(1483228800000000)},
	    {"0001-01-01T00:00:00Z", INT64_C(-62135596800000000)},
	    {"9999-12-31T23:59:59.999999Z", INT64_C(253402300799999999)},
	};
	static const char *const bad[] = {
	    "",
	    "026-11-20T09:15:02Z",
	    "2026-11-20T09:15",
	    "1900-02-29T00:00:00Z",
	    "2026-13-01T00:00:00Z",
	    "2026-00-01T00:00:00Z",
	    "2026-11-00T00:00:00Z",
	    "2026-11-20T09:60:00Z",
	    "2026-11-20T09:15:61Z",
	    "2026-11-20T09:15:02+1",
	    "2026-11-20T09:15:02+01:",
	    "2026-11-20T09:15:02+01:60",
	    "2026-11-20T09:15:02ZZ",
	    "9999-12-31T23:59:59-01:00",
	    "2026-11-20T09:15:02.",
	    "2026-11-20X09:15:02Z",
	    "+2026-11-20T09:15:02Z",
	};
	char buf[CODEC_TIME_SIZE];
	int64_t us;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		us = 42;
		ok(codec_parse_timestamp(good[i].text, &us), "parses %s", good[i].text);
		is_int(us, good[i].us, good[i].text);
	}
	ok(codec_parse_timestamp("2026-11-20T09:15:02", &us) && us == INT64_C(1795166102000000),
	    "no offset means UTC");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!codec_parse_timestamp(bad[i], &us), "rejects \"%s\"", bad[i]);
	ok(!codec_parse_timestamp(NULL, &us), "rejects NULL");

	codec_format_ms(PUBLISH_MS, buf);
	is_str(buf, "2026-11-20T09:15:02.913Z", "format ms");
	codec_format_ms(-1, buf);
	is_str(buf, "1969-12-31T23:59:59.999Z", "format ms before the epoch");
	codec_format_us(INT64_C(951782400000001), buf);
	is_str(buf, "2000-02-29T00:00:00.000001Z", "format us on a leap day");
	codec_format_us(INT64_C(253402300799999999), buf);
	is_str(buf, "9999-12-31T23:59:59.999999Z", "format us, last instant");
	codec_format_us(INT64_C(253402300800000000), buf);
	is_str(buf, "10000-01-01T00:00:00.000000Z", "format us past the year 9999");
	test_time_reference();
}

/* ------------------------------------------------------------ schema table */

static void
test_schema_table(void)
{
	bool all = true, partition = false;

	is_str(family_holded.subject, "events.raw-value", "subject");
	is_str(family_holded.raw_topic, "events.raw", "raw topic");
	is_str(family_holded.invalid_topic, "events.dead.letter", "dead-letter topic");
	ok(family_find("holded") == &family_holded && family_at(0) == &family_holded,
	    "the family table finds it by name; it is the default");
	ok(family_find("nope") == NULL, "no such family");
	ok(strstr(family_holded.proto, "message Event") != NULL,
	    "the compiled-in proto text is schemas/holded/holded.proto");
	is_str(S->message->name, "collectord.v1.Event", "top message");
	for (size_t i = 0; i < S->nfields; i++) {
		const ProtobufCFieldDescriptor *f =
		    golden_field_by_path(S->message, S->fields[i].path);

		if (f == NULL ||
		    (S->fields[i].kind != CODEC_KIND_PLAIN && f->type != PROTOBUF_C_TYPE_STRING)) {
			printf("# bad rule %s\n", S->fields[i].path);
			all = false;
		}
	}
	ok(all, "every rule names a field of the descriptors, id/time rules on strings");
	ok(golden_field_by_path(S->message, S->original_ids_path) != NULL,
	    "original ids map exists");
	all = S->ncolumns <= CODEC_ROW_MAX;
	for (size_t i = 0; i < S->ncolumns; i++) {
		const char *src = S->columns[i].source;

		if (strcmp(S->columns[i].name, S->partition_column) == 0)
			partition = S->columns[i].kind == CODEC_COL_TIMESTAMPTZ;
		if (*src != '\0' && strncmp(src, "metadata.", 9) != 0 &&
		    golden_field_by_path(S->message, src) == NULL)
			all = false;
	}
	ok(all, "every column source exists");
	ok(partition, "partition column is a timestamptz column");
}

static void
line_text_is(const char *json, const char *path, const char *want)
{
	char *got = codec_line_text(json, strlen(json), path), name[300];

	snprintf(name, sizeof(name), "line text at %s of %.80s%s", path, json,
	    want == NULL ? ": none" : "");
	if (want == NULL)
		ok(got == NULL, "%s", name);
	else
		is_str(got, want, name);
	free(got);
}

static void
test_line_text(void)
{
	const char *ev = "{\"id\":9007199254740991,\"attributes\":{\"messageIdStamp\":\"6c1f\","
			 "\"n\":null,\"o\":{},\"a\":[1],\"f\":1.5,\"neg\":-3}}";

	line_text_is(ev, "id", "9007199254740991");
	line_text_is(ev, "attributes.messageIdStamp", "6c1f");
	line_text_is(ev, "attributes.f", "1.5");
	line_text_is(ev, "attributes.neg", "-3");
	line_text_is(ev, "attributes.n", NULL);
	line_text_is(ev, "attributes.o", NULL);
	line_text_is(ev, "attributes.a", NULL);
	line_text_is(ev, "attributes.missing", NULL);
	line_text_is(ev, "id.deeper", NULL);
	line_text_is(ev, "attributes", NULL);
	line_text_is("not json", "id", NULL);
	/* the scan steps over values by their quotes and brackets */
	line_text_is("{\"a\":\"x]}\\\"{\",\"b\":[\"}\",{\"c\":\"]\"},[[]]],\"k\":\"v\"}", "k", "v");
	line_text_is("{ \"o\" : { \"x\" : true , \"k\" : 12 } }", "o.k", "12");
	line_text_is("{\"k\":1e3}", "k", "1000");
	line_text_is("{\"k\":\"a\\u00e9\\\"b\"}", "k", "a\xc3\xa9\"b"); /* escapes decoded */
	line_text_is("{\"\\u006b\":\"v\"}", "k", "v");			/* an escaped key */
	line_text_is("{\"kk\":1,\"k\":2}", "k", "2");
	line_text_is("{\"k\":\"abc", "k", NULL); /* cut short */
	line_text_is("{\"a\":[1,2", "k", NULL);
	line_text_is("{\"k\"", "k", NULL);
	line_text_is("\"k\"", "k", NULL);
	line_text_is("", "k", NULL);
}

int
main(void)
{
	test_schema_table();
	test_line_text();
	test_examples();
	test_golden_records();
	each_line("schemas/holded/data/valid.jsonl", valid_case);
	each_line("schemas/holded/data/invalid.jsonl", invalid_case);
	each_line("t/data/bodies.jsonl", body_case);
	test_duplicates();
	test_bodies_raw();
	test_bodies_truncated();
	test_bodies_long_number();
	test_json_strict();
	test_body_limits();
	test_gzip();
	test_frames();
	test_enrich();
	test_dead_letter();
	test_time();
	return tap_done();
}
