/*
 * t/registry.c: judging Schema Registry answers, on canned bodies as
 * Confluent's API documentation and Apicurio 3.3.3's ccompat API send them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "registry.h"
#include "tap.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static const char unknown_id[] = "{\"message\":\"Schema 999999 not found.\",\"error_code\":40403}";
static const char unknown_subject[] =
    "{\"message\":\"Subject 'nope' not found.\",\"error_code\":40401}";
static const char proto_schema[] = "{\"schema\":\"syntax = \\\"proto2\\\";\\nmessage Event {}\\n\","
				   "\"schemaType\":\"PROTOBUF\"}";
/* Confluent leaves schemaType out for AVRO. */
static const char avro_schema[] = "{\"schema\":\"\\\"string\\\"\"}";
static const char versions[] = "[{\"subject\":\"events.raw-value\",\"version\":1},"
			       "{\"subject\":\"other-value\",\"version\":3}]";

static void
test_parse(void)
{
	char type[16], msg[128], *schema = NULL, *body;
	int32_t id = -7;
	int code = 0;
	bool found = true;
	cJSON *o;

	body = registry_schema_body("PROTOBUF", "syntax = \"proto2\";\n");
	o = cJSON_Parse(body);
	ok(o != NULL &&
		strcmp(cJSON_GetObjectItem(o, "schemaType")->valuestring, "PROTOBUF") == 0 &&
		strcmp(cJSON_GetObjectItem(o, "schema")->valuestring, "syntax = \"proto2\";\n") ==
		    0,
	    "register body carries type and text, escaped");
	cJSON_Delete(o);
	cJSON_free(body);

	ok(registry_parse_id(S("{\"id\":1}"), &id) == 0 && id == 1, "id");
	ok(registry_parse_id(S("{\"subject\":\"s\",\"version\":2,\"id\":77,"
			       "\"schema\":\"x\"}"),
	       &id) == 0 &&
		id == 77,
	    "id in a lookup answer");
	ok(registry_parse_id(S("{\"id\":\"1\"}"), &id) == -1, "string id refused");
	ok(registry_parse_id(S("{\"id\":-1}"), &id) == -1, "negative id refused");
	ok(registry_parse_id(S("{\"id\":1.5}"), &id) == -1, "fractional id refused");
	ok(registry_parse_id(S("{\"id\":4294967296}"), &id) == -1, "id past int32 refused");
	ok(registry_parse_id(S("<html>"), &id) == -1, "not JSON refused");
	ok(registry_parse_id("{\"id\":12}, trailing", 9, &id) == 0 && id == 12,
	    "body without a terminating NUL is read to LEN only");

	ok(registry_parse_error(S(unknown_id), &code, msg, sizeof(msg)) && code == 40403 &&
		strcmp(msg, "Schema 999999 not found.") == 0,
	    "error body");
	ok(!registry_parse_error(S("{\"id\":1}"), &code, msg, sizeof(msg)),
	    "no error_code, no error");

	ok(registry_parse_schema(S(proto_schema), type, sizeof(type), &schema) == 0 &&
		strcmp(type, "PROTOBUF") == 0 &&
		strcmp(schema, "syntax = \"proto2\";\nmessage Event {}\n") == 0,
	    "schema by id: type and text");
	free(schema);
	ok(registry_parse_schema(S(avro_schema), type, sizeof(type), NULL) == 0 &&
		strcmp(type, "AVRO") == 0,
	    "no schemaType means AVRO");
	ok(registry_parse_schema(
	       S("{\"schema\":\"x\",\"schemaType\":\"json\"}"), type, sizeof(type), NULL) == 0 &&
		strcmp(type, "JSON") == 0,
	    "type upper-cased");
	ok(registry_parse_schema(S("{\"schemaType\":\"PROTOBUF\"}"), type, sizeof(type), NULL) ==
		-1,
	    "no schema text refused");
	ok(registry_parse_schema(
	       S("{\"schema\":\"x\",\"schemaType\":3}"), type, sizeof(type), NULL) == -1,
	    "non-string type refused");

	ok(registry_parse_versions(S(versions), "other-value", &found) == 0 && found,
	    "subject among the versions");
	ok(registry_parse_versions(S(versions), "events", &found) == 0 && !found,
	    "subject not among the versions (no prefix match)");
	ok(registry_parse_versions(S("[]"), "x", &found) == 0 && !found, "no versions");
	ok(registry_parse_versions(S("{\"subject\":\"x\"}"), "x", &found) == -1,
	    "object instead of array refused");
	ok(registry_parse_versions(S("[{\"version\":1}]"), "x", &found) == -1,
	    "pair without subject refused");
}

static void
test_register(void)
{
	/* Apicurio 3.3.3 with BACKWARD compatibility, field type changed. */
	static const char apicurio409[] =
	    "{\"message\":\"io.apicurio.registry."
	    "rules.violation.RuleViolationException: Incompatible artifact: "
	    "compat-value [PROTOBUF], num of incompatible diffs: {1}, list of "
	    "diff types: [Field type changed, message M , before: string , "
	    "after int64 at /M]\",\"error_code\":409}";
	/* Confluent's wording. */
	static const char confluent422[] = "{\"error_code\":42201,\"message\":"
					   "\"Invalid schema\"}";
	char err[1024];
	int32_t id = 0;

	is_int(registry_judge_register(200, S("{\"id\":5}"), &id, err, sizeof(err)), REGISTRY_OK,
	    "register: 200 gives the id");
	is_int(id, 5, "register: id");
	is_int(registry_judge_register(409, S(apicurio409), &id, err, sizeof(err)),
	    REGISTRY_REJECTED, "register: 409 rejected");
	ok(strstr(err, "incompatible") != NULL && strstr(err, "Field type changed") != NULL &&
		strstr(err, "409") != NULL,
	    "register: 409 says incompatible with the registry's message");
	is_int(registry_judge_register(422, S(confluent422), &id, err, sizeof(err)),
	    REGISTRY_REJECTED, "register: 422 rejected");
	ok(strstr(err, "invalid schema") != NULL && strstr(err, "42201"),
	    "register: 422 says invalid with its error_code");
	is_int(registry_judge_register(401, S(""), &id, err, sizeof(err)), REGISTRY_REJECTED,
	    "register: 401 rejected (configuration)");
	is_int(registry_judge_register(500,
		   S("{\"error_code\":50001,"
		     "\"message\":\"Error in the backend data store\"}"),
		   &id, err, sizeof(err)),
	    REGISTRY_UNAVAILABLE, "register: 500 transient");
	ok(strstr(err, "50001") != NULL, "register: 500 keeps error_code");
	is_int(registry_judge_register(429, S(""), &id, err, sizeof(err)), REGISTRY_UNAVAILABLE,
	    "register: 429 transient");
	is_int(registry_judge_register(200, S("<html>"), &id, err, sizeof(err)),
	    REGISTRY_UNAVAILABLE, "register: 200 without id is transient");
}

static void
test_check(void)
{
	char err[1024], *schema = NULL;
	bool unsupported = false;

	is_int(
	    registry_judge_schema(200, S(proto_schema), 1, "PROTOBUF", &schema, err, sizeof(err)),
	    REGISTRY_OK, "schema: right type");
	ok(schema != NULL && strncmp(schema, "syntax", 6) == 0,
	    "schema: text kept for the fallback");
	free(schema);
	is_int(registry_judge_schema(200, S(avro_schema), 2, "PROTOBUF", &schema, err, sizeof(err)),
	    REGISTRY_WRONG_TYPE, "schema: AVRO is the wrong type");
	ok(schema == NULL && strstr(err, "AVRO") != NULL, "schema: wrong type named");
	is_int(
	    registry_judge_schema(404, S(unknown_id), 999999, "PROTOBUF", NULL, err, sizeof(err)),
	    REGISTRY_UNKNOWN_ID, "schema: 404/40403 is unknown");
	ok(strstr(err, "999999") != NULL && strstr(err, "40403") != NULL,
	    "schema: unknown id named");
	is_int(registry_judge_schema(
		   404, S("<html>Not Found</html>"), 1, "PROTOBUF", NULL, err, sizeof(err)),
	    REGISTRY_UNAVAILABLE, "schema: bare 404 (wrong URL) is transient");
	is_int(registry_judge_schema(503, S(""), 1, "PROTOBUF", NULL, err, sizeof(err)),
	    REGISTRY_UNAVAILABLE, "schema: 503 transient");
	is_int(registry_judge_schema(401, S(""), 1, "PROTOBUF", NULL, err, sizeof(err)),
	    REGISTRY_UNAVAILABLE, "schema: 401 transient");

	is_int(registry_judge_versions(
		   200, S(versions), 1, "events.raw-value", &unsupported, err, sizeof(err)),
	    REGISTRY_OK, "versions: our subject");
	ok(!unsupported, "versions: supported");
	is_int(registry_judge_versions(
		   200, S(versions), 1, "mine-value", &unsupported, err, sizeof(err)),
	    REGISTRY_WRONG_SUBJECT, "versions: another subject");
	ok(strstr(err, "mine-value") != NULL, "versions: subject named");
	is_int(registry_judge_versions(404, S(unknown_id), 1, "s", &unsupported, err, sizeof(err)),
	    REGISTRY_UNKNOWN_ID, "versions: 40403 unknown");
	ok(!unsupported, "versions: 40403 is an answer");
	(void)registry_judge_versions(404,
	    S("{\"error_code\":404,\"message\":"
	      "\"HTTP 404 Not Found\"}"),
	    1, "s", &unsupported, err, sizeof(err));
	ok(unsupported, "versions: other 404 means not implemented");
	(void)registry_judge_versions(405, S(""), 1, "s", &unsupported, err, sizeof(err));
	ok(unsupported, "versions: 405 means not implemented");
	is_int(registry_judge_versions(500, S(""), 1, "s", &unsupported, err, sizeof(err)),
	    REGISTRY_UNAVAILABLE, "versions: 500 transient");
	ok(!unsupported, "versions: 500 is not a missing endpoint");

	is_int(registry_judge_lookup(200,
		   S("{\"subject\":\"s\",\"version\":1,"
		     "\"id\":1,\"schema\":\"x\"}"),
		   1, "s", err, sizeof(err)),
	    REGISTRY_OK, "lookup: found under the subject");
	is_int(registry_judge_lookup(404, S(unknown_subject), 1, "nope", err, sizeof(err)),
	    REGISTRY_WRONG_SUBJECT, "lookup: 40401");
	is_int(registry_judge_lookup(404,
		   S("{\"error_code\":40403,\"message\":"
		     "\"Schema not found\"}"),
		   1, "s", err, sizeof(err)),
	    REGISTRY_WRONG_SUBJECT, "lookup: 40403");
	is_int(registry_judge_lookup(502, S(""), 1, "s", err, sizeof(err)), REGISTRY_UNAVAILABLE,
	    "lookup: 502 transient");
	{
		int32_t id = 0;

		is_int(registry_judge_find(200,
			   S("{\"subject\":\"s\",\"version\":3,\"id\":17,\"schema\":\"x\"}"), "s",
			   &id, err, sizeof(err)),
		    REGISTRY_OK, "find: found");
		is_int(id, 17, "find: its id");
		is_int(registry_judge_find(404, S(unknown_subject), "nope", &id, err, sizeof(err)),
		    REGISTRY_UNKNOWN_ID, "find: no such subject (40401)");
		is_int(registry_judge_find(404, S("{\"error_code\":40403,\"message\":\"no\"}"), "s",
			   &id, err, sizeof(err)),
		    REGISTRY_UNKNOWN_ID, "find: not that schema (40403)");
		is_int(registry_judge_find(200, S("{}"), "s", &id, err, sizeof(err)),
		    REGISTRY_UNAVAILABLE, "find: an answer without an id is transient");
		is_int(registry_judge_find(503, S(""), "s", &id, err, sizeof(err)),
		    REGISTRY_UNAVAILABLE, "find: 503 transient");
	}
}

static void
test_names(void)
{
	ok(!registry_result_permanent(REGISTRY_OK) &&
		!registry_result_permanent(REGISTRY_UNAVAILABLE) &&
		registry_result_permanent(REGISTRY_UNKNOWN_ID) &&
		registry_result_permanent(REGISTRY_WRONG_SUBJECT) &&
		registry_result_permanent(REGISTRY_WRONG_TYPE) &&
		registry_result_permanent(REGISTRY_REJECTED),
	    "permanent vs transient");
	is_str(registry_result_name(REGISTRY_UNKNOWN_ID), "unknown_id", "result name");
}

int
main(void)
{
	test_parse();
	test_register();
	test_check();
	test_names();
	return tap_done();
}
