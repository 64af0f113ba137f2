/* codec_enrich.c: a raw record's Protobuf payload, checked again, to its
 * JSON (codec_decode(), also the archive's), the enriched JSON and its
 * family's table row: codec_enrich(), and the row's accessors. */
#include "codec_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

/* ------------------------------------------------------------ enrich */

struct dec {
	const struct codec_schema *s;
	char *err;
	size_t errlen;
};

static bool __attribute__((format(printf, 2, 3))) dec_fail(struct dec *dc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return codec_fail(dc->err, dc->errlen, "payload: %s", msg);
}

static bool
dec_add(struct dec *dc, cJSON *obj, const char *key, cJSON *item, const char *fpath)
{
	if (item == NULL || !cJSON_AddItemToObject(obj, key, item)) {
		cJSON_Delete(item);
		return dec_fail(dc, "%s: out of memory", fpath);
	}
	return true;
}

static bool
dec_string(struct dec *dc, const struct codec_field *rule, const char *text, cJSON **item,
    const char *fpath)
{
	int64_t us;

	if (!json_strict_utf8_valid(text, strlen(text)))
		return dec_fail(dc, "%s: not valid UTF-8", fpath);
	if (rule != NULL && *text == '\0' &&
	    (((rule->flags & CODEC_F_REQUIRED) && !(rule->flags & CODEC_F_MAY_BE_EMPTY)) ||
		(rule->flags & CODEC_F_NOT_EMPTY)))
		return dec_fail(dc, "%s: empty", fpath);
	if (rule != NULL && rule->kind == CODEC_KIND_UUID) {
		char canon[IDS_TEXT_SIZE];
		uint8_t id[16];
		enum ids_form form;

		if (!ids_parse(text, id, &form) || form != IDS_FORM_UUID)
			return dec_fail(dc, "%s: not a canonical UUID", fpath);
		ids_format(id, canon);
		if (strcmp(canon, text) != 0)
			return dec_fail(dc, "%s: not a canonical UUID", fpath);
	} else if (rule != NULL && rule->kind == CODEC_KIND_TIMESTAMP) {
		if (!timefmt_parse(text, &us))
			return dec_fail(dc, "%s: not an RFC 3339 timestamp", fpath);
	} else if (rule != NULL && rule->kind == CODEC_KIND_IP) {
		if (!codec_ip_valid(text))
			return dec_fail(dc, "%s: not an IP address", fpath);
	}
	*item = cJSON_CreateString(text);
	return true;
}

static cJSON *dec_message(
    struct dec *dc, const ProtobufCMessage *m, const char *path, const char *rpath);

static bool
dec_value(struct dec *dc, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const ProtobufCMessage *m, cJSON **item, const char *fpath, const char *rpath)
{
	const void *p = codec_field_at(m, f);
	double x;

	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return dec_string(dc, rule, *(char *const *)p, item, fpath);
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_FLOAT:
		x = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;
		if (!isfinite(x))
			return dec_fail(dc, "%s: not a finite number", fpath);
		*item = json_strict_number(x);
		return true;
	case PROTOBUF_C_TYPE_BOOL:
		*item = cJSON_CreateBool(*(const protobuf_c_boolean *)p);
		return true;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*item = json_strict_int(*(const int32_t *)p);
		return true;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*item = json_strict_int(*(const uint32_t *)p);
		return true;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: {
		int64_t v = *(const int64_t *)p;

		if (v > (int64_t)MAX_SAFE_INT || v < -(int64_t)MAX_SAFE_INT)
			return dec_fail(dc, "%s: out of range", fpath);
		*item = json_strict_int(v);
		return true;
	}
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		uint64_t v = *(const uint64_t *)p;

		if (v > (uint64_t)MAX_SAFE_INT)
			return dec_fail(dc, "%s: out of range", fpath);
		*item = json_strict_int((int64_t)v);
		return true;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*item = dec_message(dc, *(ProtobufCMessage *const *)p, fpath, rpath);
		return *item != NULL;
	default:
		return dec_fail(dc, "%s: field type not supported by the codec", fpath);
	}
}

/* Map field F of M as (key, value) string pairs: false on an entry
 * without key or value, or one that is not UTF-8. */
static bool
dec_map_entries(struct dec *dc, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const char *fpath, size_t *n, ProtobufCMessage ***entries)
{
	*n = *(const size_t *)((const char *)m + f->quantifier_offset);
	*entries = *(ProtobufCMessage ***)codec_field_at(m, f);
	for (size_t i = 0; i < *n; i++) {
		char **k = codec_entry_str((*entries)[i], "key"),
		     **v = codec_entry_str((*entries)[i], "value");

		if (k == NULL || v == NULL || *k == NULL || *v == NULL)
			return dec_fail(dc, "%s: entry without key or value", fpath);
		if (!json_strict_utf8_valid(*k, strlen(*k)) ||
		    !json_strict_utf8_valid(*v, strlen(*v)))
			return dec_fail(dc, "%s: entry not valid UTF-8", fpath);
	}
	return true;
}

static bool
dec_originals(struct dec *dc, cJSON *obj, const ProtobufCMessage *m,
    const ProtobufCFieldDescriptor *f, const char *fpath)
{
	ProtobufCMessage **entries;
	const char **keys, *dup;
	cJSON *o;
	size_t n;

	if (!dec_map_entries(dc, m, f, fpath, &n, &entries))
		return false;
	if (n == 0)
		return true;
	/* Sorted, not pairwise: a hostile payload may hold many entries. */
	keys = malloc(n * sizeof(*keys));
	if (keys == NULL)
		return dec_fail(dc, "%s: out of memory", fpath);
	for (size_t i = 0; i < n; i++)
		keys[i] = *codec_entry_str(entries[i], "key");
	dup = codec_dup_key(keys, n);
	free(keys);
	if (dup != NULL)
		return dec_fail(dc, "%s: duplicate key", fpath);
	o = cJSON_CreateObject();
	if (!dec_add(dc, obj, f->name, o, fpath))
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *k = *codec_entry_str(entries[i], "key"),
			   *v = *codec_entry_str(entries[i], "value");

		if (!dec_add(dc, o, k, cJSON_CreateString(v), fpath))
			return false;
	}
	return true;
}

/* Re-emit the extra keys of M into OBJ, which already holds the named
 * fields: a key equal to a field name (present or not), to the reserved
 * original-ids name, or given twice would make the JSON ambiguous. */
static bool
dec_extras(struct dec *dc, cJSON *obj, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const char *path, const char *rpath, const char *fpath)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char npath[PATH_MAX_LEN];
	ProtobufCMessage **entries;
	const char **keys, *dup;
	char show[KEY_SHOW_MAX + 4];
	size_t n, nkeys = 0;

	if (!dec_map_entries(dc, m, f, fpath, &n, &entries))
		return false;
	if (n == 0)
		return true;
	keys = malloc((n + d->n_fields) * sizeof(*keys));
	if (keys == NULL)
		return dec_fail(dc, "%s: out of memory", fpath);
	for (unsigned i = 0; i < d->n_fields; i++) {
		codec_path_join(npath, rpath, d->fields[i].name);
		if (!codec_is_map(&d->fields[i]) ||
		    codec_map_role(dc->s, &d->fields[i], npath) == MAP_ORIGINALS)
			keys[nkeys++] = d->fields[i].name;
	}
	for (size_t i = 0; i < n; i++)
		keys[nkeys++] = *codec_entry_str(entries[i], "key");
	dup = codec_dup_key(keys, nkeys);
	if (dup != NULL) {
		dec_fail(dc, "%s%s%s: extra key given twice or shadowing a field", path,
		    *path ? "." : "", codec_key_show(dup, show));
		free(keys);
		return false;
	}
	free(keys);
	for (size_t i = 0; i < n; i++) {
		const char *k = *codec_entry_str(entries[i], "key"),
			   *v = *codec_entry_str(entries[i], "value");
		const char *why;
		size_t where;
		cJSON *item = json_strict_parse(v, strlen(v), &where, &why);

		if (item == NULL)
			return dec_fail(dc, "%s%s%s: extra value is not JSON", path,
			    *path ? "." : "", codec_key_show(k, show));
		if (!dec_add(dc, obj, k, item, fpath))
			return false;
	}
	return true;
}

/* Repeated message field F of M as a JSON array, elements at FPATH[i]. */
static bool
dec_list(struct dec *dc, cJSON *obj, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const struct codec_field *rule, const char *fpath, const char *rpath)
{
	size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
	ProtobufCMessage *const *elems = *(ProtobufCMessage *const *const *)codec_field_at(m, f);
	char ipath[PATH_MAX_LEN];
	cJSON *arr;

	if (n == 0) {
		if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
			return dec_fail(dc, "%s: missing", fpath);
		return true;
	}
	arr = cJSON_CreateArray();
	if (!dec_add(dc, obj, f->name, arr, fpath))
		return false;
	for (size_t i = 0; i < n; i++) {
		cJSON *item;

		codec_path_index(ipath, fpath, i);
		if ((item = dec_message(dc, elems[i], ipath, rpath)) == NULL)
			return false;
		if (!cJSON_AddItemToArray(arr, item)) {
			cJSON_Delete(item);
			return dec_fail(dc, "%s: out of memory", ipath);
		}
	}
	return true;
}

static cJSON *
dec_message(struct dec *dc, const ProtobufCMessage *m, const char *path, const char *rpath)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	cJSON *obj = cJSON_CreateObject();
	char fpath[PATH_MAX_LEN], frpath[PATH_MAX_LEN];
	bool ok = obj != NULL;

	if (!ok)
		dec_fail(dc, "%s: out of memory", *path ? path : "event");
	/* Named fields, then the original ids, then the extra keys, whatever
	 * their field numbers: the JSON reads like the input did. */
	for (unsigned i = 0; ok && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const struct codec_field *rule;
		cJSON *item = NULL;

		if (f->label == PROTOBUF_C_LABEL_REPEATED && !codec_is_list(f))
			continue;
		codec_path_join(fpath, path, f->name);
		codec_path_join(frpath, rpath, f->name);
		rule = codec_rule_find(dc->s, frpath);
		if (codec_is_list(f)) {
			ok = dec_list(dc, obj, m, f, rule, fpath, frpath);
			continue;
		}
		if (!codec_field_present(m, f)) {
			if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
				ok = dec_fail(dc, "%s: missing", fpath);
			continue;
		}
		ok = dec_value(dc, f, rule, m, &item, fpath, frpath) &&
		     dec_add(dc, obj, f->name, item, fpath);
	}
	for (int pass = MAP_ORIGINALS; ok && pass >= MAP_EXTRA; pass--) {
		for (unsigned i = 0; ok && i < d->n_fields; i++) {
			const ProtobufCFieldDescriptor *f = &d->fields[i];
			enum map_role role;

			if (f->label != PROTOBUF_C_LABEL_REPEATED || codec_is_list(f))
				continue;
			codec_path_join(fpath, path, f->name);
			codec_path_join(frpath, rpath, f->name);
			role = codec_map_role(dc->s, f, frpath);
			if (role == MAP_NONE)
				ok = dec_fail(
				    dc, "%s: field type not supported by the codec", fpath);
			else if ((int)role != pass)
				continue;
			else if (role == MAP_ORIGINALS)
				ok = dec_originals(dc, obj, m, f, fpath);
			else
				ok = dec_extras(dc, obj, m, f, path, rpath, fpath);
		}
	}
	if (!ok) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

static const cJSON *
json_at(const cJSON *root, const char *path)
{
	char key[PATH_MAX_LEN];

	while (root != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		root = cJSON_GetObjectItemCaseSensitive(root, key);
		path += n;
		if (*path == '.')
			path++;
	}
	return root;
}

/* V, an integer of the enriched event, as decimal digits into *TEXT
 * (malloc'd; NULL when out of memory).  The decoder writes integers as raw
 * digits; a number item (a JSON column's source) must be integral. */
static bool
bigint_text(const cJSON *v, char **text)
{
	const char *p;

	*text = NULL;
	if (cJSON_IsRaw(v)) {
		p = v->valuestring + (*v->valuestring == '-');
		if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
			return false;
		*text = strdup(v->valuestring);
		return true;
	}
	if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble ||
	    fabs(v->valuedouble) > MAX_SAFE_INT)
		return false;
	if ((*text = malloc(24)) != NULL)
		snprintf(*text, 24, "%" PRId64, (int64_t)v->valuedouble);
	return true;
}

static bool
fill_row(const struct codec_schema *s, const cJSON *root, const char *json, struct codec_row *row,
    char *err, size_t errlen)
{
	if (s->ncolumns > CODEC_ROW_MAX)
		return codec_fail(
		    err, errlen, "row: schema %s has more than %d columns", s->name, CODEC_ROW_MAX);
	row->ncolumns = s->ncolumns;
	for (size_t i = 0; i < s->ncolumns; i++) {
		const struct codec_column *col = &s->columns[i];
		const cJSON *v = json_at(root, col->source);
		char *text = NULL;

		if (v == NULL || cJSON_IsNull(v))
			continue;
		if (col->kind == CODEC_COL_JSONB) {
			text = *col->source == '\0' ? strdup(json) : cJSON_PrintUnformatted(v);
		} else if (col->kind == CODEC_COL_BIGINT) {
			if (!bigint_text(v, &text))
				return codec_fail(err, errlen, "row: %s: %s is not an integer",
				    col->name, col->source);
		} else if (!cJSON_IsString(v)) {
			return codec_fail(
			    err, errlen, "row: %s: %s is not a string", col->name, col->source);
		} else if (col->kind == CODEC_COL_TIMESTAMPTZ) {
			char buf[CODEC_TIME_SIZE];
			int64_t us;

			if (!timefmt_parse(v->valuestring, &us))
				return codec_fail(
				    err, errlen, "row: %s: not a timestamp", col->name);
			if (s->partition_column != NULL &&
			    strcmp(col->name, s->partition_column) == 0)
				row->partition_us = us;
			timefmt_us(us, buf);
			text = strdup(buf);
		} else {
			text = strdup(v->valuestring);
		}
		if (text == NULL)
			return codec_fail(err, errlen, "row: out of memory");
		row->values[i] = text;
	}
	return true;
}

cJSON *
codec_decode(
    const struct codec_schema *s, const uint8_t *payload, size_t len, char *err, size_t errlen)
{
	struct dec dc = {.s = s, .err = err, .errlen = errlen};
	ProtobufCMessage *m;
	cJSON *root;

	m = protobuf_c_message_unpack(s->message, NULL, len, payload);
	if (m == NULL) {
		codec_fail(err, errlen, "payload: not a valid %s message", s->message->name);
		return NULL;
	}
	root = dec_message(&dc, m, "", "");
	protobuf_c_message_free_unpacked(m, NULL);
	return root;
}

char *
codec_enrich(const struct codec_schema *s, const uint8_t *payload, size_t len,
    const char *correlation_id, int64_t publish_time_ms, int32_t schema_id, struct codec_row *row,
    char *err, size_t errlen)
{
	char corr[IDS_TEXT_SIZE], when[CODEC_TIME_SIZE], *json = NULL;
	cJSON *root = NULL, *meta;
	uint8_t id[16];

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (correlation_id == NULL || !ids_parse(correlation_id, id, NULL)) {
		codec_fail(err, errlen, "metadata.correlationId: not a UUID");
		return NULL;
	}
	ids_format(id, corr);
	if (publish_time_ms < 0) {
		codec_fail(err, errlen, "metadata.publishTime: negative");
		return NULL;
	}
	timefmt_ms(publish_time_ms, when);
	if ((root = codec_decode(s, payload, len, err, errlen)) == NULL)
		return NULL;
	meta = cJSON_AddObjectToObject(root, "metadata");
	if (meta == NULL || cJSON_AddStringToObject(meta, "correlationId", corr) == NULL ||
	    cJSON_AddStringToObject(meta, "publishTime", when) == NULL ||
	    cJSON_AddNumberToObject(meta, "schemaId", schema_id) == NULL ||
	    (json = cJSON_PrintUnformatted(root)) == NULL) {
		codec_fail(err, errlen, "enrich: out of memory");
	} else if (row != NULL && !fill_row(s, root, json, row, err, errlen)) {
		codec_row_free(row);
		free(json);
		json = NULL;
	}
	cJSON_Delete(root);
	return json;
}

void
codec_row_free(struct codec_row *row)
{
	if (row == NULL)
		return;
	for (size_t i = 0; i < CODEC_ROW_MAX; i++)
		free(row->values[i]);
	memset(row, 0, sizeof(*row));
}

const char *
codec_row_value(const struct codec_schema *s, const struct codec_row *row, const char *column)
{
	for (size_t i = 0; i < s->ncolumns && i < row->ncolumns; i++)
		if (strcmp(s->columns[i].name, column) == 0)
			return row->values[i];
	return NULL;
}
