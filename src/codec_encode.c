/* codec_encode.c: an event (JSON) to its family's Protobuf message,
 * validated on the way: codec_event_encode().  The rules are the family's
 * table and hooks; the first problem is the rejection. */
#include "codec_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

/* ------------------------------------------------------------ encode */

/* Paths go two ways through the encoder: FPATH as the client wrote it
 * (indexes included: "lines[2].item"), for messages and original-id keys,
 * and RPATH, the rule path without indexes ("lines.item"), for the
 * schema's rule table. */
struct enc {
	const struct codec_schema *s;
	struct codec_error *err;
	/* Where converted ids keep their original text, while in scope. */
	ProtobufCMessage *orig_msg;
	const ProtobufCFieldDescriptor *orig_field;
	const char *orig_prefix;
};

static bool enc_message(
    struct enc *e, const cJSON *obj, ProtobufCMessage *m, const char *path, const char *rpath);

static bool
enc_fail(struct enc *e, const char *path, const char *rule)
{
	return codec_err_put(e->err, *path ? path : "event", rule, "");
}

/* The error of key KEY of the object at PATH (user keys cut for show). */
static bool
enc_key_fail(struct enc *e, const char *path, const char *key, const char *rule)
{
	char show[KEY_SHOW_MAX + 4], kpath[PATH_MAX_LEN + KEY_SHOW_MAX + 8];

	snprintf(kpath, sizeof(kpath), "%s%s%s", path, *path ? "." : "", codec_key_show(key, show));
	return codec_err_put(e->err, kpath, rule, "");
}

/* Levels of V, stopping early once past LIMIT.  *FINITE goes false on a
 * number JSON text cannot hold (1e999 parses as infinity and would print
 * as null). */
static int
json_depth(const cJSON *v, int limit, bool *finite)
{
	int max = 0;

	if (cJSON_IsNumber(v) && !isfinite(v->valuedouble))
		*finite = false;
	if (limit <= 0)
		return 1;
	for (const cJSON *c = v->child; c != NULL; c = c->next) {
		int d = json_depth(c, limit - 1, finite);

		if (d > max)
			max = d;
		if (max >= limit)
			break;
	}
	return max + 1;
}

static bool
looks_like_json(const char *s)
{
	while (json_strict_space((unsigned char)*s))
		s++;
	return *s == '[' || *s == '{';
}

/* True when TEXT passes RULE's kind check as a plain string. */
static bool
plain_ok(const struct codec_field *rule, const char *text)
{
	uint8_t id[16];
	int64_t us;

	switch (rule->kind) {
	case CODEC_KIND_UUID:
		return ids_parse(text, id, NULL);
	case CODEC_KIND_TIMESTAMP:
		return timefmt_parse(text, &us);
	case CODEC_KIND_IP:
		return codec_ip_valid(text);
	case CODEC_KIND_PLAIN:
		break;
	}
	return false;
}

/*
 * The stamp forms: a JSON string holding JSON is decoded once, a
 * one-element array stands for its element, and a string stamp may be an
 * object holding the value under its wrapper key.  *OUT borrows from V or
 * from *PARSED, which the caller deletes.
 */
static bool
unwrap_stamp(struct enc *e, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const cJSON *v, const cJSON **out, cJSON **parsed, const char *fpath)
{
	const cJSON *cur = v;

	if (cJSON_IsString(cur) && looks_like_json(cur->valuestring)) {
		const char *why;
		size_t where;

		*parsed =
		    json_tree_parse(cur->valuestring, strlen(cur->valuestring), &where, &why);
		if (*parsed == NULL) {
			/* "{6c1f...}" is a braced UUID, not broken JSON. */
			if (f->type == PROTOBUF_C_TYPE_STRING && plain_ok(rule, cur->valuestring)) {
				*out = cur;
				return true;
			}
			return enc_fail(e, fpath, "stamp string is not valid JSON");
		}
		cur = *parsed;
	}
	if (cJSON_IsArray(cur)) {
		if (cur->child == NULL || cur->child->next != NULL)
			return enc_fail(e, fpath, "stamp array must hold exactly one element");
		cur = cur->child;
	}
	if (f->type != PROTOBUF_C_TYPE_MESSAGE && rule->wrapper != NULL && cJSON_IsObject(cur)) {
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(cur, rule->wrapper);
		char tail[PATH_MAX_LEN];
		const char *dup;

		if (!codec_find_duplicate(cur, &dup)) {
			if (dup == NULL)
				return enc_fail(e, fpath, "out of memory");
			return enc_key_fail(e, fpath, dup, "duplicate key");
		}
		if (w == NULL) {
			snprintf(tail, sizeof(tail), " \"%s\"", rule->wrapper);
			return codec_err_put(e->err, fpath, "object without", tail);
		}
		for (const cJSON *c = cur->child; c != NULL; c = c->next)
			if (c != w)
				return enc_key_fail(e, fpath, c->string, "unknown key");
		cur = w;
	}
	*out = cur;
	return true;
}

static void
orig_add(struct enc *e, const char *fpath, const char *text, bool *ok)
{
	size_t n;
	char *copy;

	if (e->orig_msg == NULL)
		return;
	n = strlen(e->orig_prefix);
	if (n > 0 && strncmp(fpath, e->orig_prefix, n) == 0 && fpath[n] == '.')
		fpath += n + 1;
	copy = strdup(text);
	if (copy == NULL || !codec_map_add(e->orig_msg, e->orig_field, fpath, copy))
		*ok = false;
}

/* The family's own rule for V, if RULE has one. */
static bool
enc_hook(struct enc *e, const struct codec_field *rule, const cJSON *v, const char *fpath)
{
	char detail[CODEC_ERROR_SIZE];
	const char *broken;

	detail[0] = '\0';
	if (rule == NULL || rule->value == NULL ||
	    (broken = rule->value(v, detail, sizeof(detail))) == NULL)
		return true;
	if (*detail != '\0')
		return codec_error_set(e->err, fpath, broken, "%s", detail);
	return codec_err_put(e->err, fpath, broken, "");
}

static bool
enc_string(struct enc *e, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const cJSON *v, ProtobufCMessage *m, const char *fpath)
{
	const char *text;
	char canon[IDS_TEXT_SIZE];
	unsigned flags = rule != NULL ? rule->flags : 0;
	bool ok = true;
	int64_t us;

	if (!cJSON_IsString(v))
		return enc_fail(e, fpath, "not a string");
	text = v->valuestring;
	if (*text == '\0' && (((flags & CODEC_F_REQUIRED) && !(flags & CODEC_F_MAY_BE_EMPTY)) ||
				 (flags & CODEC_F_NOT_EMPTY)))
		return enc_fail(e, fpath, "empty");
	if (rule != NULL && rule->kind == CODEC_KIND_UUID) {
		uint8_t id[16];

		if (!ids_parse(text, id, NULL))
			return enc_fail(e, fpath, "not a UUID, ULID or ObjectId");
		ids_format(id, canon);
		if (strcmp(canon, text) != 0)
			orig_add(e, fpath, text, &ok);
		text = canon;
	} else if (rule != NULL && rule->kind == CODEC_KIND_TIMESTAMP) {
		if (!timefmt_parse(text, &us))
			return enc_fail(e, fpath, "not an RFC 3339 timestamp");
	} else if (rule != NULL && rule->kind == CODEC_KIND_IP) {
		if (!codec_ip_valid(text))
			return enc_fail(e, fpath, "not an IP address");
	}
	if (!enc_hook(e, rule, v, fpath))
		return false;
	if (ok)
		ok = (*(char **)codec_field_at(m, f) = strdup(text)) != NULL;
	if (!ok)
		return enc_fail(e, fpath, "out of memory");
	return true;
}

/* Integral numbers in [LO, HI].  Unsigned types say "not a non-negative
 * integer" for a negative number or a fraction, signed ones "not an
 * integer" for a fraction; CODEC_F_INTEGER_WORDS says "not an integer"
 * for a non-number and a fraction alike. */
static bool
enc_integer(struct enc *e, const struct codec_field *rule, const cJSON *v, double lo, double hi,
    double *out, const char *fpath)
{
	bool words = rule != NULL && (rule->flags & CODEC_F_INTEGER_WORDS);
	double x;

	if (!cJSON_IsNumber(v))
		return enc_fail(e, fpath, words ? "not an integer" : "not a number");
	if (!enc_hook(e, rule, v, fpath))
		return false;
	x = v->valuedouble;
	if (words && floor(x) != x)
		return enc_fail(e, fpath, "not an integer");
	if (lo >= 0 && (x < 0 || floor(x) != x))
		return enc_fail(e, fpath, "not a non-negative integer");
	if (floor(x) != x)
		return enc_fail(e, fpath, "not an integer");
	if (x < lo || x > hi)
		return enc_fail(e, fpath, "out of range");
	*out = x;
	return true;
}

static bool
enc_value(struct enc *e, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const cJSON *v, ProtobufCMessage *m, const char *fpath, const char *rpath)
{
	void *p = codec_field_at(m, f);
	double x;

	if (cJSON_IsNull(v)) {
		if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
			return enc_fail(e, fpath, "missing");
		return true;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return enc_string(e, f, rule, v, m, fpath);
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_FLOAT:
		if (!cJSON_IsNumber(v))
			return enc_fail(e, fpath, "not a number");
		if (!enc_hook(e, rule, v, fpath))
			return false;
		x = v->valuedouble;
		if (!isfinite(x) ||
		    (f->type == PROTOBUF_C_TYPE_FLOAT && fabs(x) > 3.4028234663852886e38))
			return enc_fail(e, fpath, "out of range");
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)p = (float)x;
		else
			*(double *)p = x;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (!cJSON_IsBool(v))
			return enc_fail(e, fpath, "not a boolean");
		if (!enc_hook(e, rule, v, fpath))
			return false;
		*(protobuf_c_boolean *)p = cJSON_IsTrue(v);
		break;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (!enc_integer(e, rule, v, INT32_MIN, INT32_MAX, &x, fpath))
			return false;
		*(int32_t *)p = (int32_t)x;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (!enc_integer(e, rule, v, 0, UINT32_MAX, &x, fpath))
			return false;
		*(uint32_t *)p = (uint32_t)x;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (!enc_integer(e, rule, v, -MAX_SAFE_INT, MAX_SAFE_INT, &x, fpath))
			return false;
		*(int64_t *)p = (int64_t)x;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (!enc_integer(e, rule, v, 0, MAX_SAFE_INT, &x, fpath))
			return false;
		*(uint64_t *)p = (uint64_t)x;
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub;

		if (!cJSON_IsObject(v))
			return enc_fail(e, fpath, "not an object");
		sub = codec_msg_new(f->descriptor);
		if (sub == NULL)
			return enc_fail(e, fpath, "out of memory");
		/* Hooked in first, so that a failure below frees it with M. */
		*(ProtobufCMessage **)p = sub;
		return enc_message(e, v, sub, fpath, rpath);
	}
	default:
		return enc_fail(e, fpath, "field type not supported by the codec");
	}
	codec_set_present(m, f);
	return true;
}

/* A repeated message field from the JSON array V: each element an object,
 * each encoded like a message field of its own, at FPATH[i]. */
static bool
enc_list(struct enc *e, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const cJSON *v, ProtobufCMessage *m, const char *fpath, const char *rpath)
{
	size_t *n = (size_t *)((char *)m + f->quantifier_offset), count = 0;
	ProtobufCMessage ***arr = codec_field_at(m, f);
	char ipath[PATH_MAX_LEN];
	const cJSON *c;

	if (!cJSON_IsArray(v))
		return enc_fail(e, fpath, "not an array");
	for (c = v->child; c != NULL; c = c->next)
		count++;
	if (count == 0) {
		if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
			return enc_fail(e, fpath, "empty");
		return true;
	}
	if ((*arr = calloc(count, sizeof(**arr))) == NULL)
		return enc_fail(e, fpath, "out of memory");
	for (c = v->child; c != NULL; c = c->next) {
		ProtobufCMessage *sub;

		codec_path_index(ipath, fpath, *n);
		if (!cJSON_IsObject(c))
			return enc_fail(e, ipath, "not an object");
		if ((sub = codec_msg_new(f->descriptor)) == NULL)
			return enc_fail(e, ipath, "out of memory");
		/* Counted first, so that a failure below frees it with M. */
		(*arr)[(*n)++] = sub;
		if (!enc_message(e, c, sub, ipath, rpath))
			return false;
	}
	return true;
}

static bool
enc_field(struct enc *e, const ProtobufCFieldDescriptor *f, const cJSON *obj, ProtobufCMessage *m,
    const char *fpath, const char *rpath)
{
	const struct codec_field *rule = codec_rule_find(e->s, rpath);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name), *lv = NULL;
	cJSON *parsed = NULL;
	bool ok;

	if (rule != NULL && rule->long_key != NULL)
		lv = cJSON_GetObjectItemCaseSensitive(obj, rule->long_key);
	if (v != NULL && lv != NULL)
		return codec_err_put(e->err, fpath, "given twice", " (long and short key)");
	if (v == NULL)
		v = lv;
	if (v == NULL || cJSON_IsNull(v)) {
		if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
			return enc_fail(e, fpath, "missing");
		return true;
	}
	if (codec_is_list(f))
		return enc_list(e, f, rule, v, m, fpath, rpath);
	if (rule != NULL && (rule->flags & CODEC_F_STAMP) &&
	    !unwrap_stamp(e, f, rule, v, &v, &parsed, fpath)) {
		json_tree_free(parsed);
		return false;
	}
	ok = enc_value(e, f, rule, v, m, fpath, rpath);
	json_tree_free(parsed);
	return ok;
}

/* The field of D (at rule path RPATH) that KEY names, by its short name or
 * its long key, or NULL. */
static const ProtobufCFieldDescriptor *
names_field(const struct codec_schema *s, const ProtobufCMessageDescriptor *d, const char *rpath,
    const char *key)
{
	size_t pl = strlen(rpath);

	for (unsigned i = 0; i < d->n_fields; i++)
		if (!codec_is_map(&d->fields[i]) && strcmp(key, d->fields[i].name) == 0)
			return &d->fields[i];
	/* A long key names the field of the rule that gives it, when that
	 * rule's path is RPATH and one more name: few rules have one. */
	for (size_t i = 0; i < s->nfields; i++) {
		const struct codec_field *rule = &s->fields[i];
		const ProtobufCFieldDescriptor *f;
		const char *name = rule->path + (pl > 0 ? pl + 1 : 0);

		if (rule->long_key == NULL || strcmp(key, rule->long_key) != 0)
			continue;
		if (pl > 0 && (strncmp(rule->path, rpath, pl) != 0 || rule->path[pl] != '.'))
			continue;
		if (strchr(name, '.') != NULL)
			continue;
		f = protobuf_c_message_descriptor_get_field_by_name(d, name);
		if (f != NULL && !codec_is_map(f))
			return f;
	}
	return NULL;
}

static bool
enc_message(
    struct enc *e, const cJSON *obj, ProtobufCMessage *m, const char *path, const char *rpath)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *extra = NULL, *reserved = NULL;
	ProtobufCMessage *saved_msg = e->orig_msg;
	const ProtobufCFieldDescriptor *saved_field = e->orig_field;
	const char *saved_prefix = e->orig_prefix;
	char fpath[PATH_MAX_LEN], frpath[PATH_MAX_LEN];
	const char *dup;
	bool ok = true;

	if (!codec_find_duplicate(obj, &dup)) {
		const ProtobufCFieldDescriptor *f;

		if (dup == NULL)
			return enc_fail(e, path, "out of memory");
		/* Reported under the short name, like every other error. */
		f = names_field(e->s, d, rpath, dup);
		return enc_key_fail(e, path, f != NULL ? f->name : dup, "duplicate key");
	}
	for (unsigned i = 0; ok && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->label != PROTOBUF_C_LABEL_REPEATED || codec_is_list(f))
			continue;
		codec_path_join(fpath, path, f->name);
		codec_path_join(frpath, rpath, f->name);
		switch (codec_map_role(e->s, f, frpath)) {
		case MAP_EXTRA:
			extra = f;
			break;
		case MAP_ORIGINALS:
			reserved = f;
			e->orig_msg = m;
			e->orig_field = f;
			e->orig_prefix = path;
			break;
		case MAP_NONE:
			ok = enc_fail(e, fpath, "field type not supported by the codec");
			break;
		}
	}
	for (unsigned i = 0; ok && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->label == PROTOBUF_C_LABEL_REPEATED && !codec_is_list(f))
			continue;
		codec_path_join(fpath, path, f->name);
		codec_path_join(frpath, rpath, f->name);
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			ok = enc_fail(e, fpath, "oneof not supported by the codec");
			break;
		}
		ok = enc_field(e, f, obj, m, fpath, frpath);
	}
	for (const cJSON *c = obj->child; ok && c != NULL; c = c->next) {
		const char *k = c->string;
		bool finite = true;
		char *text;

		if (names_field(e->s, d, rpath, k) != NULL)
			continue;
		if (reserved != NULL && strcmp(k, reserved->name) == 0) {
			ok = enc_key_fail(e, path, k, "reserved key");
		} else if (extra == NULL) {
			ok = enc_key_fail(e, path, k, "unknown key");
		} else if (json_depth(c, CODEC_MAX_DEPTH + 1, &finite) > CODEC_MAX_DEPTH) {
			ok = enc_key_fail(e, path, k, codec_rule_too_deep);
		} else if (!finite) {
			ok = enc_key_fail(e, path, k, "number out of range");
		} else if ((text = cJSON_PrintUnformatted(c)) == NULL ||
			   !codec_map_add(m, extra, k, text)) {
			ok = enc_fail(e, path, "out of memory");
		}
	}
	e->orig_msg = saved_msg;
	e->orig_field = saved_field;
	e->orig_prefix = saved_prefix;
	return ok;
}

bool
codec_event_encode(const struct codec_schema *s, const cJSON *event, uint8_t **payload, size_t *len,
    struct codec_error *err)
{
	struct enc e = {.s = s, .err = err};
	ProtobufCMessage *m = NULL;
	size_t size;
	bool ok;

	*payload = NULL;
	*len = 0;
	if (!cJSON_IsObject(event))
		ok = enc_fail(&e, "", "not an object");
	else if ((m = codec_msg_new(s->message)) == NULL)
		ok = enc_fail(&e, "", "out of memory");
	else
		ok = enc_message(&e, event, m, "", "");
	if (ok && s->check != NULL && !s->check(m, event, err))
		ok = false;
	if (ok) {
		size = protobuf_c_message_get_packed_size(m);
		/* malloc(0) may return NULL: an empty message still gets a buffer. */
		*payload = malloc(size > 0 ? size : 1);
		if (*payload == NULL) {
			ok = enc_fail(&e, "", "out of memory");
		} else {
			*len = protobuf_c_message_pack(m, *payload);
		}
	}
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	/* on every path: the list's own entry (NULL for a word the family did not declare,
	 * which t/families.c forbids): a label value, never the client's */
	if (!ok && err != NULL)
		err->rule = codec_rule(s, err->rule);
	return ok;
}
