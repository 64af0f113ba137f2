/* codec.c: the schema-driven event codec: events to validated
 * Protobuf and back to enriched JSON, driven by the protobuf-c descriptors
 * plus one rule table per event family (its struct codec_schema, in
 * src/families/), so a family is a table, with hooks in its own file for
 * the value rules and cross-field rules no table can say.  Bodies, gzip
 * and dead letters are in codec_body.c; strict JSON and timestamps below
 * both, in json_strict.c and timefmt.c. */
#include "codec.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

/* Long enough for every path a schema names. */
#define PATH_MAX_LEN 256
/* User keys are cut to this many bytes in error messages. */
#define KEY_SHOW_MAX 100
/* Integers beyond this cannot be told apart as IEEE doubles. */
#define MAX_SAFE_INT 9007199254740991.0

/* ------------------------------------------------------------ helpers */

static bool __attribute__((format(printf, 3, 4)))
codec_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* ------------------------------------------------------------ rules */

#define CODEC_STR_(x) #x
#define CODEC_STR(x) CODEC_STR_(x)

static const char rule_too_deep[] = "nested deeper than " CODEC_STR(CODEC_MAX_DEPTH) " levels";

/* The codec's own rule words, the same for every family, so that a metric
 * label or a rejections.rule value means the same whichever family it
 * counts; a family's hooks add theirs (codec_schema.rules). */
const char *const codec_rules[] = {
    /* the codec */
    "not an object",
    "missing",
    "not a string",
    "empty",
    "not a UUID, ULID or ObjectId",
    "not an RFC 3339 timestamp",
    "not an IP address",
    "not a number",
    "not an integer",
    "not a non-negative integer",
    "out of range",
    "not a boolean",
    "not an array",
    "unknown key",
    "reserved key",
    "duplicate key",
    rule_too_deep,
    "number out of range",
    "given twice",
    "object without",
    "stamp array must hold exactly one element",
    "stamp string is not valid JSON",
    "field type not supported by the codec",
    "oneof not supported by the codec",
    "out of memory",
};
const size_t codec_nrules = sizeof(codec_rules) / sizeof(codec_rules[0]);

const char *
codec_rule(const struct codec_schema *s, const char *rule)
{
	if (rule == NULL)
		return NULL;
	for (size_t i = 0; i < codec_nrules; i++)
		if (strcmp(codec_rules[i], rule) == 0)
			return codec_rules[i];
	for (size_t i = 0; s != NULL && i < s->nrules; i++)
		if (strcmp(s->rules[i], rule) == 0)
			return s->rules[i];
	return NULL;
}

/* ERR = PATH ": " RULE TAIL, cut to fit; RULE kept as given (the encoder
 * maps it to its list entry before it returns). */
static bool
err_put(struct codec_error *err, const char *path, const char *rule, const char *tail)
{
	size_t pl = strlen(path);

	if (err == NULL)
		return false;
	/* the message has a bound: a long path (the client's keys) is cut */
	if (snprintf(err->message, sizeof(err->message), "%s: %s%s", path, rule, tail) < 0)
		err->message[0] = '\0';
	err->path_len = pl < sizeof(err->message) - 1 ? pl : sizeof(err->message) - 1;
	err->rule = rule;
	return false;
}

bool
codec_error_set(
    struct codec_error *err, const char *path, const char *rule, const char *detail_fmt, ...)
{
	char detail[CODEC_ERROR_SIZE], tail[CODEC_ERROR_SIZE + 4];
	va_list ap;

	*tail = '\0';
	if (detail_fmt != NULL) {
		va_start(ap, detail_fmt);
		vsnprintf(detail, sizeof(detail), detail_fmt, ap);
		va_end(ap);
		snprintf(tail, sizeof(tail), " (%s)", detail);
	}
	return err_put(err, path, rule, tail);
}

/* True when TEXT is RULE, alone or followed by its detail: " (...)" to the
 * end, or for the wrapper rule a space and the key. */
static bool
rule_ends(const char *text, const char *rule)
{
	size_t n = strlen(rule), tl;

	if (strncmp(text, rule, n) != 0)
		return false;
	text += n;
	if (*text == '\0')
		return true;
	tl = strlen(text);
	if (strcmp(rule, "object without") == 0)
		return *text == ' ';
	return tl >= 3 && text[0] == ' ' && text[1] == '(' && text[tl - 1] == ')';
}

/* The entry of codec_rules[] or S's rules that TEXT is (with its
 * detail), or NULL. */
static const char *
rule_of(const struct codec_schema *s, const char *text)
{
	for (size_t r = 0; r < codec_nrules; r++)
		if (rule_ends(text, codec_rules[r]))
			return codec_rules[r];
	for (size_t r = 0; s != NULL && r < s->nrules; r++)
		if (rule_ends(text, s->rules[r]))
			return s->rules[r];
	return NULL;
}

bool
codec_error_parse(const struct codec_schema *s, const char *message, struct codec_error *err)
{
	size_t n;

	/* Split the copy: a longer text from elsewhere is cut to fit. */
	snprintf(err->message, sizeof(err->message), "%s", message);
	message = err->message;
	n = strlen(message);
	err->path_len = 0;
	err->rule = NULL;
	/* The path is the client's and may hold ": " itself; what the codec
	 * wrote comes last, so the last separator followed by a rule wins. */
	for (size_t i = n; i-- > 1;) {
		if (message[i - 1] != ':' || message[i] != ' ')
			continue;
		if ((err->rule = rule_of(s, message + i + 1)) != NULL) {
			err->path_len = i - 1;
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------ paths */

/* OUT = PARENT "." NAME (NAME alone at the top), cut to PATH_MAX_LEN.
 * On every field of every event: no snprintf. */
static void
path_join(char *out, const char *parent, const char *name)
{
	size_t pl = strlen(parent), nl = strlen(name), o = 0;

	if (pl > PATH_MAX_LEN - 1)
		pl = PATH_MAX_LEN - 1;
	memcpy(out, parent, pl);
	o = pl;
	if (pl > 0 && o < PATH_MAX_LEN - 1)
		out[o++] = '.';
	if (nl > PATH_MAX_LEN - 1 - o)
		nl = PATH_MAX_LEN - 1 - o;
	memcpy(out + o, name, nl);
	out[o + nl] = '\0';
}

/* OUT = PARENT "[" I "]", cut to PATH_MAX_LEN. */
static void
path_index(char *out, const char *parent, size_t i)
{
	char num[24];
	size_t pl = strlen(parent), nl;

	nl = (size_t)snprintf(num, sizeof(num), "[%zu]", i);
	if (pl + nl > PATH_MAX_LEN - 1)
		pl = PATH_MAX_LEN - 1 > nl ? PATH_MAX_LEN - 1 - nl : 0;
	memmove(out, parent, pl);
	memcpy(out + pl, num, nl + 1);
}

/* KEY for an error message: cut at a character boundary so that the
 * message stays valid UTF-8 wherever it is echoed. */
static const char *
key_show(const char *key, char buf[KEY_SHOW_MAX + 4])
{
	size_t n = strlen(key);

	if (n <= KEY_SHOW_MAX)
		return key;
	n = KEY_SHOW_MAX;
	while (n > 0 && ((unsigned char)key[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, key, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The smallest key of KEYS (sorted in place) that occurs twice, or NULL. */
static const char *
dup_key(const char **keys, size_t n)
{
	qsort(keys, n, sizeof(*keys), cmp_str);
	for (size_t i = 1; i < n; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0)
			return keys[i];
	return NULL;
}

/*
 * Find a key OBJ holds twice: cJSON keeps both and lookups would see only
 * the first, so the other would be lost silently.  False when there is one
 * (*DUP set, borrowed from OBJ) or memory ran out (*DUP NULL).
 */
static bool
find_duplicate(const cJSON *obj, const char **dup)
{
	const char *small[32], **keys = small;
	size_t n = 0;

	*dup = NULL;
	for (const cJSON *c = obj->child; c != NULL; c = c->next)
		n++;
	if (n < 2)
		return true;
	if (n > sizeof(small) / sizeof(small[0])) {
		keys = malloc(n * sizeof(*keys));
		if (keys == NULL)
			return false;
	}
	n = 0;
	for (const cJSON *c = obj->child; c != NULL; c = c->next)
		keys[n++] = c->string;
	*dup = dup_key(keys, n);
	if (keys != small)
		free(keys);
	return *dup == NULL;
}

/* ------------------------------------------------------------ messages */

static const struct codec_field *
rule_find(const struct codec_schema *s, const char *path)
{
	for (size_t i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i].path, path) == 0)
			return &s->fields[i];
	return NULL;
}

static void *
field_at(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return (char *)m + f->offset;
}

/* proto2 optional scalars carry a has_ flag; strings and messages are
 * present when their pointer is not NULL. */
static bool
scalar_has_flag(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
	       f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE &&
	       f->type != PROTOBUF_C_TYPE_BYTES;
}

static bool
field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void **)field_at(m, f) != NULL;
	if (scalar_has_flag(f))
		return *(protobuf_c_boolean *)((char *)m + f->quantifier_offset);
	return true;
}

static void
set_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (scalar_has_flag(f))
		*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
}

/* A message built here is freed with protobuf_c_message_free_unpacked(),
 * so everything in it comes from malloc like an unpacked message. */
static ProtobufCMessage *
msg_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = malloc(d->sizeof_message);

	if (m != NULL)
		protobuf_c_message_init(d, m);
	return m;
}

static bool
is_map(const ProtobufCFieldDescriptor *f)
{
	const ProtobufCMessageDescriptor *d = f->descriptor;
	size_t n;

	/* protobuf-c marks no map entry as such; protoc names it <Field>Entry
	 * and gives it exactly key = 1 and value = 2. */
	if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return false;
	n = strlen(d->short_name);
	return n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 && d->n_fields == 2 &&
	       d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0 &&
	       d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0;
}

/* A repeated message field that is not a map: a JSON array of objects. */
static bool
is_list(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
	       !is_map(f);
}

enum map_role { MAP_NONE, MAP_EXTRA, MAP_ORIGINALS };

/* RPATH: the field's rule path. */
static enum map_role
map_role(const struct codec_schema *s, const ProtobufCFieldDescriptor *f, const char *rpath)
{
	if (!is_map(f))
		return MAP_NONE;
	if (s->extra_field != NULL && strcmp(f->name, s->extra_field) == 0)
		return MAP_EXTRA;
	if (s->original_ids_path != NULL && strcmp(rpath, s->original_ids_path) == 0)
		return MAP_ORIGINALS;
	return MAP_NONE;
}

/* The key and value strings of a map entry, found by name. */
static char **
entry_str(const ProtobufCMessage *entry, const char *name)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(entry->descriptor, name);

	return f != NULL && f->type == PROTOBUF_C_TYPE_STRING ? (char **)field_at(entry, f) : NULL;
}

/* Append KEY -> VALUE (VALUE's ownership passes here) to map field F of M. */
static bool
map_add(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char *key, char *value)
{
	size_t *n = (size_t *)((char *)m + f->quantifier_offset);
	ProtobufCMessage ***arr = field_at(m, f), **narr;
	ProtobufCMessage *entry = msg_new(f->descriptor);
	char **k, **v;

	if (entry == NULL) {
		free(value);
		return false;
	}
	k = entry_str(entry, "key");
	v = entry_str(entry, "value");
	if (k == NULL || v == NULL || (*k = strdup(key)) == NULL) {
		free(value);
		protobuf_c_message_free_unpacked(entry, NULL);
		return false;
	}
	*v = value;
	/* The array's room is the next power of two of its count: grow when
	 * the count reaches one, so that many extra keys cost O(n) copying. */
	if ((*n & (*n - 1)) == 0) {
		narr = realloc(*arr, (*n ? 2 * *n : 1) * sizeof(*narr));
		if (narr == NULL) {
			protobuf_c_message_free_unpacked(entry, NULL);
			return false;
		}
		*arr = narr;
	}
	(*arr)[(*n)++] = entry;
	return true;
}

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
	return err_put(e->err, *path ? path : "event", rule, "");
}

/* The error of key KEY of the object at PATH (user keys cut for show). */
static bool
enc_key_fail(struct enc *e, const char *path, const char *key, const char *rule)
{
	char show[KEY_SHOW_MAX + 4], kpath[PATH_MAX_LEN + KEY_SHOW_MAX + 8];

	snprintf(kpath, sizeof(kpath), "%s%s%s", path, *path ? "." : "", key_show(key, show));
	return err_put(e->err, kpath, rule, "");
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

static bool
ip_valid(const char *text)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, text, buf) == 1 || inet_pton(AF_INET6, text, buf) == 1;
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
		return ip_valid(text);
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
		    json_strict_parse(cur->valuestring, strlen(cur->valuestring), &where, &why);
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

		if (!find_duplicate(cur, &dup)) {
			if (dup == NULL)
				return enc_fail(e, fpath, "out of memory");
			return enc_key_fail(e, fpath, dup, "duplicate key");
		}
		if (w == NULL) {
			snprintf(tail, sizeof(tail), " \"%s\"", rule->wrapper);
			return err_put(e->err, fpath, "object without", tail);
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
	if (copy == NULL || !map_add(e->orig_msg, e->orig_field, fpath, copy))
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
	return err_put(e->err, fpath, broken, "");
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
		if (!ip_valid(text))
			return enc_fail(e, fpath, "not an IP address");
	}
	if (!enc_hook(e, rule, v, fpath))
		return false;
	if (ok)
		ok = (*(char **)field_at(m, f) = strdup(text)) != NULL;
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
	void *p = field_at(m, f);
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
		sub = msg_new(f->descriptor);
		if (sub == NULL)
			return enc_fail(e, fpath, "out of memory");
		/* Hooked in first, so that a failure below frees it with M. */
		*(ProtobufCMessage **)p = sub;
		return enc_message(e, v, sub, fpath, rpath);
	}
	default:
		return enc_fail(e, fpath, "field type not supported by the codec");
	}
	set_present(m, f);
	return true;
}

/* A repeated message field from the JSON array V: each element an object,
 * each encoded like a message field of its own, at FPATH[i]. */
static bool
enc_list(struct enc *e, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const cJSON *v, ProtobufCMessage *m, const char *fpath, const char *rpath)
{
	size_t *n = (size_t *)((char *)m + f->quantifier_offset), count = 0;
	ProtobufCMessage ***arr = field_at(m, f);
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

		path_index(ipath, fpath, *n);
		if (!cJSON_IsObject(c))
			return enc_fail(e, ipath, "not an object");
		if ((sub = msg_new(f->descriptor)) == NULL)
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
	const struct codec_field *rule = rule_find(e->s, rpath);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name), *lv = NULL;
	cJSON *parsed = NULL;
	bool ok;

	if (rule != NULL && rule->long_key != NULL)
		lv = cJSON_GetObjectItemCaseSensitive(obj, rule->long_key);
	if (v != NULL && lv != NULL)
		return err_put(e->err, fpath, "given twice", " (long and short key)");
	if (v == NULL)
		v = lv;
	if (v == NULL || cJSON_IsNull(v)) {
		if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
			return enc_fail(e, fpath, "missing");
		return true;
	}
	if (is_list(f))
		return enc_list(e, f, rule, v, m, fpath, rpath);
	if (rule != NULL && (rule->flags & CODEC_F_STAMP) &&
	    !unwrap_stamp(e, f, rule, v, &v, &parsed, fpath)) {
		cJSON_Delete(parsed);
		return false;
	}
	ok = enc_value(e, f, rule, v, m, fpath, rpath);
	cJSON_Delete(parsed);
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
		if (!is_map(&d->fields[i]) && strcmp(key, d->fields[i].name) == 0)
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
		if (f != NULL && !is_map(f))
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

	if (!find_duplicate(obj, &dup)) {
		const ProtobufCFieldDescriptor *f;

		if (dup == NULL)
			return enc_fail(e, path, "out of memory");
		/* Reported under the short name, like every other error. */
		f = names_field(e->s, d, rpath, dup);
		return enc_key_fail(e, path, f != NULL ? f->name : dup, "duplicate key");
	}
	for (unsigned i = 0; ok && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->label != PROTOBUF_C_LABEL_REPEATED || is_list(f))
			continue;
		path_join(fpath, path, f->name);
		path_join(frpath, rpath, f->name);
		switch (map_role(e->s, f, frpath)) {
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

		if (f->label == PROTOBUF_C_LABEL_REPEATED && !is_list(f))
			continue;
		path_join(fpath, path, f->name);
		path_join(frpath, rpath, f->name);
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
			ok = enc_key_fail(e, path, k, rule_too_deep);
		} else if (!finite) {
			ok = enc_key_fail(e, path, k, "number out of range");
		} else if ((text = cJSON_PrintUnformatted(c)) == NULL ||
			   !map_add(m, extra, k, text)) {
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
	ProtobufCMessage *m;
	size_t size;
	bool ok;

	*payload = NULL;
	*len = 0;
	if (!cJSON_IsObject(event))
		return enc_fail(&e, "", "not an object");
	m = msg_new(s->message);
	if (m == NULL)
		return enc_fail(&e, "", "out of memory");
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
	protobuf_c_message_free_unpacked(m, NULL);
	/* the list's own entry (NULL for a word the family did not declare,
	 * which t/families.c forbids): a label value, never the client's */
	if (!ok && err != NULL)
		err->rule = codec_rule(s, err->rule);
	return ok;
}

/* ------------------------------------------------------------ framing */

size_t
codec_frame_header(uint8_t out[CODEC_FRAME_MAX], int32_t schema_id)
{
	uint32_t id = (uint32_t)schema_id;

	out[0] = 0;
	out[1] = (uint8_t)(id >> 24);
	out[2] = (uint8_t)(id >> 16);
	out[3] = (uint8_t)(id >> 8);
	out[4] = (uint8_t)id;
	/* The message-index array [0] is written as the count 0. */
	out[5] = 0;
	return 6;
}

/* A zig-zag varint of at most 32 bits at *P (before END). */
static bool
read_zigzag(const uint8_t **p, const uint8_t *end, int64_t *out)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 35; shift += 7) {
		uint8_t b;

		if (*p >= end)
			return false;
		b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (v > UINT32_MAX)
				return false;
			*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
			return true;
		}
	}
	return false;
}

bool
codec_frame_parse(const void *buf, size_t len, int32_t *schema_id, const uint8_t **payload,
    size_t *plen, char *err, size_t errlen)
{
	const uint8_t *p = buf, *end = p + len;
	int64_t count, index;
	uint32_t id;

	*payload = NULL;
	*plen = 0;
	if (buf == NULL || len < 6)
		return codec_fail(
		    err, errlen, "frame: %zu bytes, shorter than a Confluent header", len);
	if (p[0] != 0)
		return codec_fail(err, errlen, "frame: magic byte 0x%02x, want 0x00", p[0]);
	id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	if (id > INT32_MAX)
		return codec_fail(err, errlen, "frame: negative schema id");
	p += 5;
	if (!read_zigzag(&p, end, &count) || count < 0)
		return codec_fail(err, errlen, "frame: bad message-index count");
	if (count > 1)
		return codec_fail(err, errlen,
		    "frame: message-index path of %lld entries, want the first "
		    "message",
		    (long long)count);
	if (count == 1) {
		if (!read_zigzag(&p, end, &index))
			return codec_fail(err, errlen, "frame: bad message index");
		if (index != 0)
			return codec_fail(err, errlen,
			    "frame: message index %lld, want 0 (the first "
			    "message)",
			    (long long)index);
	}
	*schema_id = (int32_t)id;
	*payload = p;
	*plen = (size_t)(end - p);
	return true;
}

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
		if (!ip_valid(text))
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
	const void *p = field_at(m, f);
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
	*entries = *(ProtobufCMessage ***)field_at(m, f);
	for (size_t i = 0; i < *n; i++) {
		char **k = entry_str((*entries)[i], "key"), **v = entry_str((*entries)[i], "value");

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
		keys[i] = *entry_str(entries[i], "key");
	dup = dup_key(keys, n);
	free(keys);
	if (dup != NULL)
		return dec_fail(dc, "%s: duplicate key", fpath);
	o = cJSON_CreateObject();
	if (!dec_add(dc, obj, f->name, o, fpath))
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *k = *entry_str(entries[i], "key"), *v = *entry_str(entries[i], "value");

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
		path_join(npath, rpath, d->fields[i].name);
		if (!is_map(&d->fields[i]) ||
		    map_role(dc->s, &d->fields[i], npath) == MAP_ORIGINALS)
			keys[nkeys++] = d->fields[i].name;
	}
	for (size_t i = 0; i < n; i++)
		keys[nkeys++] = *entry_str(entries[i], "key");
	dup = dup_key(keys, nkeys);
	if (dup != NULL) {
		dec_fail(dc, "%s%s%s: extra key given twice or shadowing a field", path,
		    *path ? "." : "", key_show(dup, show));
		free(keys);
		return false;
	}
	free(keys);
	for (size_t i = 0; i < n; i++) {
		const char *k = *entry_str(entries[i], "key"), *v = *entry_str(entries[i], "value");
		const char *why;
		size_t where;
		cJSON *item = json_strict_parse(v, strlen(v), &where, &why);

		if (item == NULL)
			return dec_fail(dc, "%s%s%s: extra value is not JSON", path,
			    *path ? "." : "", key_show(k, show));
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
	ProtobufCMessage *const *elems = *(ProtobufCMessage *const *const *)field_at(m, f);
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

		path_index(ipath, fpath, i);
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

		if (f->label == PROTOBUF_C_LABEL_REPEATED && !is_list(f))
			continue;
		path_join(fpath, path, f->name);
		path_join(frpath, rpath, f->name);
		rule = rule_find(dc->s, frpath);
		if (is_list(f)) {
			ok = dec_list(dc, obj, m, f, rule, fpath, frpath);
			continue;
		}
		if (!field_present(m, f)) {
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

			if (f->label != PROTOBUF_C_LABEL_REPEATED || is_list(f))
				continue;
			path_join(fpath, path, f->name);
			path_join(frpath, rpath, f->name);
			role = map_role(dc->s, f, frpath);
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

char *
codec_enrich(const struct codec_schema *s, const uint8_t *payload, size_t len,
    const char *correlation_id, int64_t publish_time_ms, int32_t schema_id, struct codec_row *row,
    char *err, size_t errlen)
{
	struct dec dc = {.s = s, .err = err, .errlen = errlen};
	char corr[IDS_TEXT_SIZE], when[CODEC_TIME_SIZE], *json = NULL;
	ProtobufCMessage *m;
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
	m = protobuf_c_message_unpack(s->message, NULL, len, payload);
	if (m == NULL) {
		codec_fail(err, errlen, "payload: not a valid %s message", s->message->name);
		return NULL;
	}
	root = dec_message(&dc, m, "", "");
	protobuf_c_message_free_unpacked(m, NULL);
	if (root == NULL)
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
