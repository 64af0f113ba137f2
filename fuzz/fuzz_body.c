/* fuzz/fuzz_body.c: libFuzzer target for the request-body path and the
 * enrich path: body -> (gunzip) -> parse -> encode each event -> frame ->
 * parse frame -> enrich, and the dead-letter document of every rejection.
 * An input starting with byte 0 (the Confluent magic) is instead taken as
 * a Kafka record and goes straight to frame parsing and enrichment, so the
 * decoder also sees payloads the encoder would never write.  Every event
 * and record goes through every family of the table. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "families/families.h"
#include "json_strict.h"
#include "json_tree.h"

#define CORR "019aa0f3-7c21-7d3e-9a41-5b2e00000000"
/* The collector's default body cap is of this order; smaller keeps runs fast. */
#define MAX_BODY (1u << 20)

/* Small enough that inputs reach CODEC_TOO_LARGE too. */
static const struct codec_limits limits = {1000, 20000};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A and B item by item, in order: cJSON_Compare() pairs an object's keys
 * by lookup, so it calls two identical trees with a key given twice
 * different. */
static bool
same_tree(const cJSON *a, const cJSON *b)
{
	const cJSON *ca, *cb;

	if ((a->type & 0xff) != (b->type & 0xff) || (a->string == NULL) != (b->string == NULL) ||
	    (a->string != NULL && strcmp(a->string, b->string) != 0) ||
	    (a->valuestring == NULL) != (b->valuestring == NULL) ||
	    (a->valuestring != NULL && strcmp(a->valuestring, b->valuestring) != 0) ||
	    memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0 ||
	    a->valueint != b->valueint)
		return false;
	for (ca = a->child, cb = b->child; ca != NULL && cb != NULL; ca = ca->next, cb = cb->next)
		if (!same_tree(ca, cb))
			return false;
	return ca == NULL && cb == NULL;
}

static void
enrich_record(const struct codec_schema *s, const uint8_t *rec, size_t len)
{
	const uint8_t *payload;
	size_t plen;
	int32_t sid;
	struct codec_row row;
	char err[256], *json;

	if (!codec_frame_parse(rec, len, &sid, &payload, &plen, err, sizeof(err)))
		return;
	json = codec_enrich(s, payload, plen, CORR, 1795166102913, sid, &row, err, sizeof(err));
	if (json == NULL) {
		/* Undecodable records go to the dead letters with their error. */
		char *doc =
		    codec_dead_letter_json(NULL, (const char *)payload, plen, err, CORR, NULL);

		free(doc);
		return;
	}
	/* The enriched text must itself be JSON the body parser accepts. */
	{
		cJSON *back = NULL;

		if (codec_body_parse(json, strlen(json), NULL, &back, err, sizeof(err)) != CODEC_OK)
			abort();
		json_tree_free(back);
	}
	codec_row_free(&row);
	free(json);
}

/* EV through S's encoder, then what the collector encoded through the
 * enricher, which must take it. */
static void
encode_event(const struct codec_schema *s, const cJSON *ev)
{
	uint8_t *payload = NULL, *rec;
	size_t plen, h, n;
	struct codec_error ce;
	struct codec_row row;
	const uint8_t *p;
	int32_t sid;
	char err[256], *json;

	if (!codec_event_encode(s, ev, &payload, &plen, &ce)) {
		/* The parts must be where the message says they are. */
		if (ce.rule == NULL || ce.path_len >= strlen(ce.message) ||
		    strncmp(ce.message + ce.path_len, ": ", 2) != 0)
			abort();
		free(codec_dead_letter_json(ev, NULL, 0, ce.message, CORR, NULL));
		return;
	}
	rec = malloc(plen + CODEC_FRAME_MAX);
	if (rec != NULL) {
		h = codec_frame_header(rec, 1);
		memcpy(rec + h, payload, plen);
		if (!codec_frame_parse(rec, h + plen, &sid, &p, &n, err, sizeof(err)))
			abort();
		json = codec_enrich(s, p, n, CORR, 1795166102913, sid, &row, err, sizeof(err));
		if (json == NULL)
			abort();
		codec_row_free(&row);
		free(json);
		free(rec);
	}
	free(payload);
}

/* The check alone and the check that builds the tree as it goes agree on
 * TEXT, with and without bounds: the same verdict, counts, place and
 * reason, and a tree exactly when the text passes. */
static void
same_check(const char *text, size_t n, size_t max_events, size_t max_values)
{
	struct json_strict_check a, b;
	enum json_strict_status sa, sb;
	cJSON *root = NULL;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	sa = json_strict_check(text, n, max_events, max_values, &a);
	sb = json_tree_check(text, n, max_events, max_values, false, &b, &root);
	if (sa != sb || (sb == JSON_STRICT_OK) != (root != NULL))
		abort();
	if (sa == JSON_STRICT_OK &&
	    (a.start != b.start || a.events != b.events || a.values != b.values))
		abort();
	if (sa == JSON_STRICT_INVALID && (a.where != b.where || strcmp(a.why, b.why) != 0))
		abort();
	if (sa == JSON_STRICT_TOO_LARGE && (strcmp(a.why, b.why) != 0 || a.limit != b.limit))
		abort();
	json_tree_free(root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	size_t len = size;
	char *inflated = NULL, err[256];
	cJSON *events = NULL, *ev;

	if (size > 0 && data[0] == 0) {
		for (size_t f = 0; family_at(f) != NULL; f++)
			enrich_record(&family_at(f)->codec, data, size);
		return 0;
	}
	if (codec_is_gzip(data, size)) {
		if (codec_gunzip(data, size, MAX_BODY, &inflated, &len, err, sizeof(err)) !=
		    CODEC_OK)
			return 0;
		body = inflated;
	}
	same_check(body, len, 0, 0);
	same_check(body, len, 3, 40);
	if (codec_body_parse(body, len, &limits, &events, err, sizeof(err)) != CODEC_OK) {
		free(codec_dead_letter_json(NULL, body, len, err, CORR, NULL));
		free(inflated);
		return 0;
	}
	/* The one-allocation tree must be the one cJSON's parser builds. */
	{
		const char *end = NULL, *p = body;
		size_t left = len;
		cJSON *theirs;

		if (left >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
			p += 3, left -= 3;
		theirs = cJSON_ParseWithLengthOpts(p, left, &end, 0);
		if (theirs == NULL ||
		    !same_tree(cJSON_IsObject(theirs) ? events->child : events, theirs))
			abort();
		cJSON_Delete(theirs);
	}
	for (size_t f = 0; family_at(f) != NULL; f++)
		cJSON_ArrayForEach(ev, events)
		{
			encode_event(&family_at(f)->codec, ev);
		}
	json_tree_free(events);
	free(inflated);
	return 0;
}
