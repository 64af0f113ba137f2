/* t/family.c: a family is its files.  The test-only family of t/testfam/
 * (its .proto and its descriptor, nothing in src/) goes through the codec
 * end to end: validation with its own rules, Confluent framing,
 * enrichment, and its table's row. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "codec.h"
#include "family.h"
#include "tap.h"
#include "testfam/testfam.h"
#include "testfam.pb-c.h"

#define S (&family_testfam.codec)
#define CORR "019aa0f3-7c21-7d3e-9a41-5b2e00000007"

/* TEXT through encode, frame, parse frame and enrich; the enriched JSON
 * or NULL with ERR.  ROW is filled on success. */
static char *
pipeline(const char *text, struct codec_row *row, char *err, size_t errlen)
{
	cJSON *ev = cJSON_Parse(text);
	uint8_t *payload = NULL, frame[4096];
	const uint8_t *p;
	size_t len = 0, h, plen;
	int32_t sid;
	char *json = NULL;
	struct codec_error ce;

	if (ev == NULL) {
		snprintf(err, errlen, "test: not JSON");
		return NULL;
	}

	if (!codec_event_encode(S, ev, &payload, &len, &ce))
		snprintf(err, errlen, "%s", ce.message);
	else if (len < sizeof(frame) - 16) {
		h = codec_frame_header(frame, 42);
		memcpy(frame + h, payload, len);
		if (codec_frame_parse(frame, h + len, &sid, &p, &plen, err, errlen))
			json = codec_enrich(S, p, plen, CORR, 1795308503803, sid, row, err, errlen);
	}
	free(payload);
	cJSON_Delete(ev);
	return json;
}

static void
rejects(const char *text, const char *want, const char *name)
{
	char err[CODEC_ERROR_SIZE] = "";
	struct codec_row row = {0};
	char *json = pipeline(text, &row, err, sizeof(err));

	ok(json == NULL, "%s: rejected", name);
	is_str(err, want, name);
	free(json);
	codec_row_free(&row);
}

/* A key may name two fields: the short name of one and the long key of
 * another.  The value then goes to both, in any order of the plan's keys,
 * and a second key naming either is "given twice". */
static void
one_key_two_fields(void)
{
	static const struct codec_field fields[] = {
	    {"deviceId", NULL, CODEC_KIND_PLAIN, 0, NULL, NULL},
	    {"takenAt", "deviceId", CODEC_KIND_PLAIN, 0, NULL, NULL},
	    {"value", "v", CODEC_KIND_PLAIN, 0, NULL, NULL},
	};
	static struct codec_schema two;
	Collectord__Testfam__V1__Reading *r;
	struct codec_error ce = {0};
	uint8_t *payload = NULL;
	size_t len = 0;
	cJSON *ev;

	two = family_testfam.codec;
	two.fields = fields;
	two.nfields = sizeof(fields) / sizeof(fields[0]);
	two.check = NULL;
	ev = cJSON_Parse("{\"v\":2,\"deviceId\":\"d-1\"}");
	ok(codec_event_encode(&two, ev, &payload, &len, &ce), "one key, two fields: encodes (%s)",
	    ce.message);
	r = collectord__testfam__v1__reading__unpack(NULL, len, payload);
	ok(r != NULL, "one key, two fields: decodes");
	is_str(r != NULL ? r->deviceid : NULL, "d-1", "the field of its short name has the value");
	is_str(r != NULL ? r->takenat : NULL, "d-1", "the field of its long key has it too");
	ok(r != NULL && r->has_value && r->value == 2, "a long key alone fills its field");
	if (r != NULL)
		collectord__testfam__v1__reading__free_unpacked(r, NULL);
	free(payload);
	cJSON_Delete(ev);
	ev = cJSON_Parse("{\"deviceId\":\"d-1\",\"takenAt\":\"t\"}");
	payload = NULL;
	ok(!codec_event_encode(&two, ev, &payload, &len, &ce),
	    "one key, two fields: and the other's own key too");
	is_str(ce.message, "takenAt: given twice (long and short key)", "is given twice");
	free(payload);
	cJSON_Delete(ev);
}

int
main(void)
{
	char err[CODEC_ERROR_SIZE] = "";
	struct codec_row row = {0};
	char *json;

	is_str(family_testfam.name, "testfam", "the family names itself");
	ok(family_find("testfam") == NULL, "it is not in the daemon's table: a test's own family");

	json = pipeline("{\"deviceId\":\"01HR71KJRY3W47EPK7ACQ7EMCD\",\"takenAt\":\"2026-11-20 "
			"10:12:35+01:00\",\"value\":21.5,\"meta\":{\"unit\":\"C\",\"sequence\":7,"
			"\"rack\":\"b2\"}}",
	    &row, err, sizeof(err));
	if (json == NULL)
		printf("# error: %s\n", err);
	is_str(json,
	    "{\"deviceId\":\"018e0e19-cb1e-1f08-775a-67532e77518d\",\"takenAt\":\"2026-11-20 "
	    "10:12:35+01:00\",\"value\":21.5,\"meta\":{\"unit\":\"C\",\"sequence\":7,\"rack\":"
	    "\"b2\"},"
	    "\"metadata\":{\"correlationId\":\"" CORR
	    "\",\"publishTime\":\"2026-11-22T00:48:23.803Z\",\"schemaId\":42}}",
	    "a valid reading enriches with its own fields, the ULID as a UUID, unknown meta keys "
	    "kept");
	is_str(codec_row_value(S, &row, "device_id"), "018e0e19-cb1e-1f08-775a-67532e77518d",
	    "row: device_id, canonical UUID");
	is_str(codec_row_value(S, &row, "taken_at"), "2026-11-20T09:12:35.000000Z",
	    "row: taken_at in UTC");
	is_str(codec_row_value(S, &row, "unit"), "C", "row: unit");
	is_str(codec_row_value(S, &row, "correlation_id"), CORR, "row: correlation_id");
	is_str(codec_row_value(S, &row, "data"), json, "row: data is the enriched event");
	ok(row.partition_us == INT64_C(1795165955000000), "row: partitioned by taken_at");
	free(json);
	codec_row_free(&row);

	rejects("{\"takenAt\":\"2026-11-20T10:12:35Z\",\"value\":1,\"meta\":{\"unit\":\"C\"}}",
	    "deviceId: missing", "its required id");
	rejects("{\"deviceId\":\"nope\",\"takenAt\":\"2026-11-20T10:12:35Z\",\"value\":1,"
		"\"meta\":{\"unit\":\"C\"}}",
	    "deviceId: not a UUID, ULID or ObjectId", "its id rule");
	rejects("{\"deviceId\":\"018e0e19-cb1e-1f08-775a-67532e77518d\",\"takenAt\":\"yesterday\","
		"\"value\":1,\"meta\":{\"unit\":\"C\"}}",
	    "takenAt: not an RFC 3339 timestamp", "its timestamp rule");
	rejects(
	    "{\"deviceId\":\"018e0e19-cb1e-1f08-775a-67532e77518d\",\"takenAt\":\"2026-11-20T10:"
	    "12:35Z\",\"value\":\"21,5\",\"meta\":{\"unit\":\"C\"}}",
	    "value: not a number", "the proto's type");
	rejects(
	    "{\"deviceId\":\"018e0e19-cb1e-1f08-775a-67532e77518d\",\"takenAt\":\"2026-11-20T10:"
	    "12:35Z\",\"value\":1,\"meta\":{}}",
	    "meta.unit: missing", "a nested required field");
	rejects(
	    "{\"deviceId\":\"018e0e19-cb1e-1f08-775a-67532e77518d\",\"takenAt\":\"2026-11-20T10:"
	    "12:35Z\",\"value\":1,\"meta\":{\"unit\":\"C\"},\"x\":1}",
	    "x: unknown key", "unknown keys outside an extra map");
	one_key_two_fields();
	return tap_done();
}
