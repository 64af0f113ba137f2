/*
 * registry.h: a Confluent Schema Registry client (REST API v7, also served
 * by Apicurio's ccompat API): register our schema, vouch for schema ids
 * read from records, and ping for /readyz.
 */
#ifndef COLLECTORD_REGISTRY_H
#define COLLECTORD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct curl_loop;
struct registry;

/* Negative answers of registry_check_id() are remembered this long. */
#define REGISTRY_NEGATIVE_TTL_MS 30000
/* Default time limit of one HTTP request. */
#define REGISTRY_TIMEOUT_MS 10000L

enum registry_result {
	REGISTRY_OK,
	/* Transient: unreachable, timeout, 5xx, 401/403, unexpected
	 * answer.  Retry later; nothing is cached. */
	REGISTRY_UNAVAILABLE,
	/* Permanent (dead-letter the record): */
	REGISTRY_UNKNOWN_ID,	/* 404, error_code 40403 */
	REGISTRY_WRONG_SUBJECT, /* the id exists, not under our subject */
	REGISTRY_WRONG_TYPE,	/* the id is AVRO/JSON, we want PROTOBUF */
	/* Permanent for registry_register(): 409 incompatible, 422 invalid
	 * schema, or another 4xx. */
	REGISTRY_REJECTED,
};

/* True for the results a retry cannot change. */
bool registry_result_permanent(enum registry_result res);
/* "ok", "unavailable", "unknown_id", ...: for logs and metric labels. */
const char *registry_result_name(enum registry_result res);

/*
 * Callbacks fire exactly once per accepted call, from the event loop,
 * never from inside the call that started them.  ERR (NULL when OK) is a
 * one-line reason, including the registry's own message and error_code
 * when it sent one; it is borrowed for the call.  A callback may free the
 * registry; the remaining callbacks then never fire.
 */
typedef void (*registry_id_cb)(void *arg, enum registry_result res, int32_t id, const char *err);
typedef void (*registry_check_cb)(void *arg, enum registry_result res, const char *err);
typedef void (*registry_ping_cb)(void *arg, bool ok, const char *err);

/*
 * A client for BASE_URL ("http://h:8081", or Apicurio's
 * "http://h:8080/apis/ccompat/v7"); USER/PASSWORD (NULL or "": none) go as
 * HTTP basic auth.  Strings are copied.  LOOP must outlive the registry.
 * NULL with a reason in ERR.
 */
struct registry *registry_new(struct curl_loop *loop, const char *base_url, const char *user,
    const char *password, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Cancels everything in flight: no callback fires afterwards.  NULL-safe. */
void registry_free(struct registry *reg);

/*
 * POST /subjects/SUBJECT/versions {"schemaType", "schema"}.  CB gets the
 * id: a new one, or the existing id if the same schema is already
 * registered.  REGISTRY_REJECTED on 409 ("incompatible: ...") or 422
 * ("invalid schema: ..."); REGISTRY_UNAVAILABLE when the registry could not
 * answer.  -1 (out of memory): CB never fires.
 */
int registry_register(struct registry *reg, const char *subject, const char *schema_type,
    const char *schema_text, registry_id_cb cb, void *arg) __attribute__((warn_unused_result));

/*
 * POST /subjects/SUBJECT {"schemaType", "schema"}: the id the registry
 * filed this very schema under, without registering anything (for a
 * process that only reads: the enrich role's /families).  CB gets
 * REGISTRY_OK and the id, REGISTRY_UNKNOWN_ID when the subject or the
 * schema is not there (yet), REGISTRY_UNAVAILABLE when the registry could
 * not answer.  -1 (out of memory): CB never fires.
 */
int registry_find(struct registry *reg, const char *subject, const char *schema_type,
    const char *schema_text, registry_id_cb cb, void *arg) __attribute__((warn_unused_result));

/*
 * Is schema ID registered under SUBJECT with type SCHEMA_TYPE?  Asks
 * GET /schemas/ids/ID (type; absent means AVRO), then
 * GET /schemas/ids/ID/versions (subject-version pairs), or, where that is
 * not implemented, POST /subjects/SUBJECT with the schema text.  Answers
 * are cached: OK forever, permanent failures REGISTRY_NEGATIVE_TTL_MS,
 * transient ones not at all; concurrent checks of one id share one lookup.
 * Even a cached answer arrives through the loop.  -1: CB never fires.
 */
int registry_check_id(struct registry *reg, int32_t id, const char *subject,
    const char *schema_type, registry_check_cb cb, void *arg) __attribute__((warn_unused_result));
/*
 * The cached answer for (ID, SUBJECT, SCHEMA_TYPE) into *RES, synchronously,
 * for hot paths; false when there is none (then call registry_check_id).
 */
bool registry_check_id_cached(struct registry *reg, int32_t id, const char *subject,
    const char *schema_type, enum registry_result *res);

/* GET /subjects: OK on 2xx.  For /readyz.  -1: CB never fires. */
int registry_ping(struct registry *reg, registry_ping_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* ---- pure: request bodies and response judgement ---- */

/* {"schemaType": TYPE, "schema": TEXT}, freed with cJSON_free(); NULL on
 * allocation failure. */
char *registry_schema_body(const char *schema_type, const char *schema_text)
    __attribute__((warn_unused_result));
/* {"id": N, ...} → *ID.  -1 if BODY is not that. */
int registry_parse_id(const char *body, size_t len, int32_t *id)
    __attribute__((warn_unused_result));
/* {"error_code": N, "message": "..."} → *CODE and MSG.  False if not. */
bool registry_parse_error(const char *body, size_t len, int *code, char *msg, size_t msgsize);
/*
 * GET /schemas/ids/{id} → schema type (upper case, "AVRO" when absent)
 * into TYPE and, when SCHEMA is not NULL, the text, malloc'd.  -1 if BODY
 * is not that.
 */
int registry_parse_schema(const char *body, size_t len, char *type, size_t typesize, char **schema)
    __attribute__((warn_unused_result));
/*
 * GET /schemas/ids/{id}/versions → is SUBJECT among the
 * [{"subject", "version"}] pairs?  -1 if BODY is not such an array.
 */
int registry_parse_versions(const char *body, size_t len, const char *subject, bool *found)
    __attribute__((warn_unused_result));

/* Outcome of POST /subjects/{s}/versions with HTTP STATUS and BODY. */
enum registry_result registry_judge_register(
    long status, const char *body, size_t len, int32_t *id, char *err, size_t errlen);
/*
 * Outcome of GET /schemas/ids/ID: REGISTRY_OK (the type matches: go on
 * to the subject; *SCHEMA gets the text, malloc'd, when SCHEMA is not
 * NULL), or the final answer.
 */
enum registry_result registry_judge_schema(long status, const char *body, size_t len, int32_t id,
    const char *want_type, char **schema, char *err, size_t errlen);
/*
 * Outcome of GET /schemas/ids/ID/versions for SUBJECT.  *UNSUPPORTED is
 * set (and the result is meaningless) when the registry does not implement
 * the endpoint (404 without error_code 40403, 405, 501).
 */
enum registry_result registry_judge_versions(long status, const char *body, size_t len, int32_t id,
    const char *subject, bool *unsupported, char *err, size_t errlen);
/* Outcome of registry_find()'s POST /subjects/SUBJECT: *ID on OK. */
enum registry_result registry_judge_find(long status, const char *body, size_t len,
    const char *subject, int32_t *id, char *err, size_t errlen);
/* Outcome of POST /subjects/SUBJECT (lookup by schema text) for ID. */
enum registry_result registry_judge_lookup(long status, const char *body, size_t len, int32_t id,
    const char *subject, char *err, size_t errlen);

#endif
