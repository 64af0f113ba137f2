/* codec.c: the schema-driven event codec's common ground: the rule words
 * and rejections, paths, the protobuf-c helpers both directions use, and
 * the Confluent framing.  The codec is driven by the protobuf-c
 * descriptors plus one rule table per event family (its struct
 * codec_schema, in src/families/), so a family is a table, with hooks in
 * its own file for the value rules and cross-field rules no table can
 * say.  codec_encode.c turns events into validated Protobuf,
 * codec_enrich.c Protobuf into the enriched JSON and the row; bodies, gzip
 * and dead letters are in codec_body.c; strict JSON and timestamps below
 * them all, in json_strict.c and timefmt.c. */
#include "codec_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

/* ------------------------------------------------------------ helpers */

bool __attribute__((format(printf, 3, 4)))
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

const char codec_rule_too_deep[] = "nested deeper than " CODEC_STR(CODEC_MAX_DEPTH) " levels";

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
    codec_rule_too_deep,
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
bool
codec_err_put(struct codec_error *err, const char *path, const char *rule, const char *tail)
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
	return codec_err_put(err, path, rule, tail);
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
void
codec_path_join(char *out, const char *parent, const char *name)
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
void
codec_path_index(char *out, const char *parent, size_t i)
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
const char *
codec_key_show(const char *key, char buf[KEY_SHOW_MAX + 4])
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
const char *
codec_dup_key(const char **keys, size_t n)
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
bool
codec_find_duplicate(const cJSON *obj, const char **dup)
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
	*dup = codec_dup_key(keys, n);
	if (keys != small)
		free(keys);
	return *dup == NULL;
}

/* ------------------------------------------------------------ messages */

const struct codec_field *
codec_rule_find(const struct codec_schema *s, const char *path)
{
	for (size_t i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i].path, path) == 0)
			return &s->fields[i];
	return NULL;
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

bool
codec_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void **)codec_field_at(m, f) != NULL;
	if (scalar_has_flag(f))
		return *(protobuf_c_boolean *)((char *)m + f->quantifier_offset);
	return true;
}

void
codec_set_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (scalar_has_flag(f))
		*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
}

bool
codec_is_map(const ProtobufCFieldDescriptor *f)
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
bool
codec_is_list(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
	       !codec_is_map(f);
}

/* RPATH: the field's rule path. */
enum map_role
codec_map_role(const struct codec_schema *s, const ProtobufCFieldDescriptor *f, const char *rpath)
{
	if (!codec_is_map(f))
		return MAP_NONE;
	if (s->extra_field != NULL && strcmp(f->name, s->extra_field) == 0)
		return MAP_EXTRA;
	if (s->original_ids_path != NULL && strcmp(rpath, s->original_ids_path) == 0)
		return MAP_ORIGINALS;
	return MAP_NONE;
}

/* The key and value strings of a map entry, found by name. */
char **
codec_entry_str(const ProtobufCMessage *entry, const char *name)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(entry->descriptor, name);

	return f != NULL && f->type == PROTOBUF_C_TYPE_STRING ? (char **)codec_field_at(entry, f)
							      : NULL;
}

/* What inet_pton() takes for AF_INET or AF_INET6. */
bool
codec_ip_valid(const char *text)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, text, buf) == 1 || inet_pton(AF_INET6, text, buf) == 1;
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
