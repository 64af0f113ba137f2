/*
 * archive_line.c: a Kafka record as the archive's JSON line (see
 * archive_line.h).  Built as a cJSON tree and printed compact: cJSON
 * prints the same tree the same way every time, which is what lets a
 * replay rewrite an archive object with the same bytes.  A JSON value is
 * spliced in as a raw item, so its text is kept exactly as it was sent.
 */
#include "archive_line.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

bool
archive_json_bytes(cJSON *obj, const char *name, const void *data, size_t len)
{
	char field[64];
	bool text;
	cJSON *item = codec_json_bytes(data, len, &text);

	if (!text)
		snprintf(field, sizeof(field), "%sBase64", name);
	return codec_json_add(obj, text ? name : field, item);
}

bool
archive_json_headers(cJSON *obj, const rd_kafka_headers_t *h)
{
	cJSON *list = cJSON_CreateArray();
	const char *name;
	const void *value;
	size_t size;

	if (!codec_json_add(obj, "headers", list))
		return false;
	for (size_t i = 0; h != NULL && rd_kafka_header_get_all(h, i, &name, &value, &size) ==
					    RD_KAFKA_RESP_ERR_NO_ERROR;
	     i++) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL || !cJSON_AddItemToArray(list, o)) {
			cJSON_Delete(o);
			return false;
		}
		if (!archive_json_bytes(o, "name", name, strlen(name)) ||
		    !(value != NULL ? archive_json_bytes(o, "value", value, size)
				    : codec_json_add(o, "value", cJSON_CreateNull())))
			return false;
	}
	return true;
}

bool
archive_value_is_json(const void *value, size_t len)
{
	struct json_strict_check jc;

	if (len >= 3 && memcmp(value, "\xef\xbb\xbf", 3) == 0)
		return false;
	if (memchr(value, '\n', len) != NULL || memchr(value, '\r', len) != NULL)
		return false;
	return json_strict_check(value, len, 0, 0, &jc) == JSON_STRICT_OK;
}

/* An exact integer (a double would round past 2^53). */
static bool
add_int(cJSON *obj, const char *name, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%lld", (long long)v);
	return codec_json_add(obj, name, cJSON_CreateRaw(num));
}

static const char *
ts_type_name(rd_kafka_timestamp_type_t t)
{
	switch (t) {
	case RD_KAFKA_TIMESTAMP_CREATE_TIME:
		return "CreateTime";
	case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
		return "LogAppendTime";
	default:
		return NULL;
	}
}

static bool
add_value(cJSON *obj, const struct archive_record *r)
{
	char *text, *b64;
	bool ok;

	if (r->value == NULL)
		return codec_json_add(obj, "value", cJSON_CreateNull());
	if (archive_value_is_json(r->value, r->len)) {
		/* Strict JSON holds no NUL: the copy is the whole value. */
		if ((text = malloc(r->len + 1)) == NULL)
			return false;
		memcpy(text, r->value, r->len);
		text[r->len] = '\0';
		ok = codec_json_add(obj, "value", cJSON_CreateRaw(text));
		free(text);
		return ok;
	}
	if ((b64 = codec_base64(r->value, r->len)) == NULL)
		return false;
	ok = codec_json_add(obj, "valueBase64", cJSON_CreateString(b64));
	free(b64);
	if (!ok || r->schema_id < 0)
		return ok;
	if (!add_int(obj, "schemaId", r->schema_id))
		return false;
	if (r->decoded != NULL)
		/* A reference: the caller's tree is printed, never freed here. */
		return cJSON_AddItemReferenceToObject(obj, "decoded", (cJSON *)r->decoded);
	return codec_json_add(obj, "decodeError",
	    cJSON_CreateString(r->decode_error != NULL ? r->decode_error : "unknown"));
}

char *
archive_line(const struct archive_record *r, size_t *len)
{
	cJSON *doc = cJSON_CreateObject();
	const char *tt = ts_type_name(r->ts_type);
	char *out = NULL;
	bool ok;

	if (doc == NULL)
		return NULL;
	/* Each step runs only when the ones before it succeeded. */
	ok = codec_json_add(doc, "topic", cJSON_CreateString(r->topic));
	ok = ok && add_int(doc, "partition", r->partition);
	ok = ok && add_int(doc, "offset", r->offset);
	ok = ok && (r->ts_ms >= 0 ? add_int(doc, "timestamp", r->ts_ms)
				  : codec_json_add(doc, "timestamp", cJSON_CreateNull()));
	ok = ok && codec_json_add(doc, "timestampType",
		       tt != NULL ? cJSON_CreateString(tt) : cJSON_CreateNull());
	ok = ok && (r->key != NULL ? archive_json_bytes(doc, "key", r->key, r->keylen)
				   : codec_json_add(doc, "key", cJSON_CreateNull()));
	ok = ok && archive_json_headers(doc, r->headers);
	ok = ok && add_value(doc, r);
	if (ok && (out = cJSON_PrintUnformatted(doc)) != NULL)
		*len = strlen(out);
	cJSON_Delete(doc);
	return out;
}
