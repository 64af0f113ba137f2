/* codec_encode.c: an event (JSON) to its family's Protobuf message,
 * validated on the way: codec_event_encode().  The rules are the family's
 * table and hooks; the first problem is the rejection. */
#include "codec_int.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "pb_pack.h"

/* ------------------------------------------------------------ encode */

/*
 * Paths are built only when something needs one (an error, or the
 * original text of a converted id): the encoder carries where it is as a
 * chain of levels on its stack, each a key of an object or an index of a
 * list ("lines[2].item").  Rule paths (no indexes) are the plan's.
 */
struct where {
	const struct where *up;
	const char *name; /* NULL: an index */
	size_t index;
};

/*
 * The message under construction lives in one arena, its first block on
 * the encoder's stack: it is packed, then dropped whole.  (Built with
 * malloc, as protobuf-c unpacks, it cost a malloc a field and as many
 * frees.)  Nothing of it outlives codec_event_encode().
 */
#define ARENA_STACK 2048

struct arena_block {
	struct arena_block *next;
	max_align_t data[];
};

struct arena {
	char *cur, *end;
	struct arena_block *blocks; /* the ones from malloc */
};

static void *
arena_alloc(struct arena *a, size_t n)
{
	const size_t align = sizeof(max_align_t);
	struct arena_block *b;
	size_t cap;
	char *p;

	n = (n + align - 1) / align * align;
	if (n == 0)
		n = align;
	if ((size_t)(a->end - a->cur) >= n) {
		p = a->cur;
		a->cur += n;
		return p;
	}
	cap = n > 4096 ? n : 4096;
	if (cap > SIZE_MAX - sizeof(*b) || (b = malloc(sizeof(*b) + cap)) == NULL)
		return NULL;
	b->next = a->blocks;
	a->blocks = b;
	p = (char *)b->data;
	a->cur = p + n;
	a->end = p + cap;
	return p;
}

static void
arena_free(struct arena *a)
{
	while (a->blocks != NULL) {
		struct arena_block *b = a->blocks;

		a->blocks = b->next;
		free(b);
	}
}

struct enc {
	const struct codec_schema *s;
	struct codec_error *err;
	struct arena arena;
	/* Where converted ids keep their original text, while in scope. */
	ProtobufCMessage *orig_msg;
	const ProtobufCFieldDescriptor *orig_field;
	const struct where *orig_where;
	/* Stamps decoded from their JSON text being encoded: their trees go
	 * before the message is packed, so their strings are copied.  All
	 * others are borrowed from the event, which outlives the message. */
	unsigned parsed_open;
};

/* W as text, "" at the top, cut as codec_path_join() and
 * codec_path_index() cut. */
static const char *
where_path(const struct where *w, char out[PATH_MAX_LEN])
{
	char tmp[PATH_MAX_LEN];

	if (w == NULL) {
		out[0] = '\0';
		return out;
	}
	where_path(w->up, out);
	if (w->name != NULL) {
		codec_path_join(tmp, out, w->name);
		memcpy(out, tmp, strlen(tmp) + 1);
	} else {
		codec_path_index(out, out, w->index);
	}
	return out;
}

/* cJSON's type tests, inline: they run on every value of every event,
 * and the library's calls cost more than the tests. */
static inline bool
is_type(const cJSON *v, int type)
{
	return v != NULL && (v->type & 0xff) == type;
}

static inline bool
is_bool(const cJSON *v)
{
	return v != NULL && (v->type & (cJSON_True | cJSON_False)) != 0;
}

static bool enc_message(struct enc *e, const cJSON *obj, ProtobufCMessage *m,
    const struct plan_msg *pm, const struct where *w);

static ProtobufCMessage *
enc_msg_new(struct enc *e, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = arena_alloc(&e->arena, d->sizeof_message);

	if (m != NULL)
		protobuf_c_message_init(d, m);
	return m;
}

static char *
enc_strdup(struct enc *e, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(&e->arena, n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

/* Append KEY -> VALUE to map field F of M. */
static bool
enc_map_add(struct enc *e, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char *key,
    const char *value)
{
	size_t *n = (size_t *)((char *)m + f->quantifier_offset);
	ProtobufCMessage ***arr = codec_field_at(m, f), **narr;
	ProtobufCMessage *entry = enc_msg_new(e, f->descriptor);
	char **k, **v;

	if (entry == NULL)
		return false;
	k = codec_entry_str(entry, "key");
	v = codec_entry_str(entry, "value");
	if (k == NULL || v == NULL || (*k = enc_strdup(e, key)) == NULL ||
	    (*v = enc_strdup(e, value)) == NULL)
		return false;
	/* The array's room is the next power of two of its count: grow when
	 * the count reaches one, so that many extra keys cost O(n) copying. */
	if ((*n & (*n - 1)) == 0) {
		if ((narr = arena_alloc(&e->arena, (*n ? 2 * *n : 1) * sizeof(*narr))) == NULL)
			return false;
		if (*n > 0)
			memcpy(narr, *arr, *n * sizeof(*narr));
		*arr = narr;
	}
	(*arr)[(*n)++] = entry;
	return true;
}

static bool
enc_fail(struct enc *e, const struct where *w, const char *rule)
{
	char path[PATH_MAX_LEN];

	where_path(w, path);
	return codec_err_put(e->err, *path ? path : "event", rule, "");
}

/* The error of key KEY of the object at W (user keys cut for show). */
static bool
enc_key_fail(struct enc *e, const struct where *w, const char *key, const char *rule)
{
	char show[KEY_SHOW_MAX + 4], path[PATH_MAX_LEN], kpath[PATH_MAX_LEN + KEY_SHOW_MAX + 8];

	where_path(w, path);
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

	if (is_type(v, cJSON_Number) && !isfinite(v->valuedouble))
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
    const cJSON *v, const cJSON **out, cJSON **parsed, const struct where *w)
{
	const cJSON *cur = v;

	if (is_type(cur, cJSON_String) && looks_like_json(cur->valuestring)) {
		const char *why;
		size_t where;

		*parsed = json_tree_parse(cur->valuestring, strlen(cur->valuestring), &where, &why);
		if (*parsed == NULL) {
			/* "{6c1f...}" is a braced UUID, not broken JSON. */
			if (f->type == PROTOBUF_C_TYPE_STRING && plain_ok(rule, cur->valuestring)) {
				*out = cur;
				return true;
			}
			return enc_fail(e, w, "stamp string is not valid JSON");
		}
		cur = *parsed;
	}
	if (is_type(cur, cJSON_Array)) {
		if (cur->child == NULL || cur->child->next != NULL)
			return enc_fail(e, w, "stamp array must hold exactly one element");
		cur = cur->child;
	}
	if (f->type != PROTOBUF_C_TYPE_MESSAGE && rule->wrapper != NULL &&
	    is_type(cur, cJSON_Object)) {
		const cJSON *wv = cJSON_GetObjectItemCaseSensitive(cur, rule->wrapper);
		char tail[PATH_MAX_LEN], path[PATH_MAX_LEN];
		const char *dup;

		if (!codec_find_duplicate(cur, &dup)) {
			if (dup == NULL)
				return enc_fail(e, w, "out of memory");
			return enc_key_fail(e, w, dup, "duplicate key");
		}
		if (wv == NULL) {
			snprintf(tail, sizeof(tail), " \"%s\"", rule->wrapper);
			return codec_err_put(e->err, where_path(w, path), "object without", tail);
		}
		for (const cJSON *c = cur->child; c != NULL; c = c->next)
			if (c != wv)
				return enc_key_fail(e, w, c->string, "unknown key");
		cur = wv;
	}
	*out = cur;
	return true;
}

static void
orig_add(struct enc *e, const struct where *w, const char *text, bool *ok)
{
	char path[PATH_MAX_LEN], prefix[PATH_MAX_LEN];
	const char *fpath = where_path(w, path);
	size_t n;

	if (e->orig_msg == NULL)
		return;
	n = strlen(where_path(e->orig_where, prefix));
	if (n > 0 && strncmp(fpath, prefix, n) == 0 && fpath[n] == '.')
		fpath += n + 1;
	if (!enc_map_add(e, e->orig_msg, e->orig_field, fpath, text))
		*ok = false;
}

/* The family's own rule for V, which RULE has: out of line, as most
 * fields have none and its buffers are large. */
static bool __attribute__((noinline))
enc_hook_run(struct enc *e, const struct codec_field *rule, const cJSON *v, const struct where *w)
{
	char detail[CODEC_ERROR_SIZE], path[PATH_MAX_LEN];
	const char *broken;

	detail[0] = '\0';
	if ((broken = rule->value(v, detail, sizeof(detail))) == NULL)
		return true;
	if (*detail != '\0')
		return codec_error_set(e->err, where_path(w, path), broken, "%s", detail);
	return codec_err_put(e->err, where_path(w, path), broken, "");
}

/* The family's own rule for V, if RULE has one. */
static inline bool
enc_hook(struct enc *e, const struct codec_field *rule, const cJSON *v, const struct where *w)
{
	return rule == NULL || rule->value == NULL || enc_hook_run(e, rule, v, w);
}

static bool
enc_string(struct enc *e, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const cJSON *v, ProtobufCMessage *m, const struct where *w)
{
	const char *text;
	char canon[IDS_TEXT_SIZE];
	unsigned flags = rule != NULL ? rule->flags : 0;
	bool ok = true;
	int64_t us;

	if (!is_type(v, cJSON_String))
		return enc_fail(e, w, "not a string");
	text = v->valuestring;
	if (*text == '\0' && (((flags & CODEC_F_REQUIRED) && !(flags & CODEC_F_MAY_BE_EMPTY)) ||
				 (flags & CODEC_F_NOT_EMPTY)))
		return enc_fail(e, w, "empty");
	if (rule != NULL && rule->kind == CODEC_KIND_UUID) {
		uint8_t id[16];

		/* Most ids come canonical: no round trip to find that out. */
		if (!ids_canonical(text)) {
			if (!ids_parse(text, id, NULL))
				return enc_fail(e, w, "not a UUID, ULID or ObjectId");
			ids_format(id, canon);
			if (strcmp(canon, text) != 0)
				orig_add(e, w, text, &ok);
			text = canon;
		}
	} else if (rule != NULL && rule->kind == CODEC_KIND_TIMESTAMP) {
		if (!timefmt_parse(text, &us))
			return enc_fail(e, w, "not an RFC 3339 timestamp");
	} else if (rule != NULL && rule->kind == CODEC_KIND_IP) {
		if (!codec_ip_valid(text))
			return enc_fail(e, w, "not an IP address");
	}
	if (!enc_hook(e, rule, v, w))
		return false;
	if (ok && (text == canon || e->parsed_open > 0))
		ok = (text = enc_strdup(e, text)) != NULL;
	if (ok)
		*(char **)codec_field_at(m, f) = (char *)text; /* read only */
	if (!ok)
		return enc_fail(e, w, "out of memory");
	return true;
}

/* Integral numbers in [LO, HI].  Unsigned types say "not a non-negative
 * integer" for a negative number or a fraction, signed ones "not an
 * integer" for a fraction; CODEC_F_INTEGER_WORDS says "not an integer"
 * for a non-number and a fraction alike. */
static bool
enc_integer(struct enc *e, const struct codec_field *rule, const cJSON *v, double lo, double hi,
    double *out, const struct where *w)
{
	bool words = rule != NULL && (rule->flags & CODEC_F_INTEGER_WORDS);
	double x;

	if (!is_type(v, cJSON_Number))
		return enc_fail(e, w, words ? "not an integer" : "not a number");
	if (!enc_hook(e, rule, v, w))
		return false;
	x = v->valuedouble;
	if (words && floor(x) != x)
		return enc_fail(e, w, "not an integer");
	if (lo >= 0 && (x < 0 || floor(x) != x))
		return enc_fail(e, w, "not a non-negative integer");
	if (floor(x) != x)
		return enc_fail(e, w, "not an integer");
	if (x < lo || x > hi)
		return enc_fail(e, w, "out of range");
	*out = x;
	return true;
}

static bool
enc_value(struct enc *e, const struct plan_field *pf, const cJSON *v, ProtobufCMessage *m,
    const struct where *w)
{
	const ProtobufCFieldDescriptor *f = pf->f;
	const struct codec_field *rule = pf->rule;
	void *p = codec_field_at(m, f);
	double x;

	if (is_type(v, cJSON_NULL)) {
		if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
			return enc_fail(e, w, "missing");
		return true;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return enc_string(e, f, rule, v, m, w);
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_FLOAT:
		if (!is_type(v, cJSON_Number))
			return enc_fail(e, w, "not a number");
		if (!enc_hook(e, rule, v, w))
			return false;
		x = v->valuedouble;
		if (!isfinite(x) ||
		    (f->type == PROTOBUF_C_TYPE_FLOAT && fabs(x) > 3.4028234663852886e38))
			return enc_fail(e, w, "out of range");
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)p = (float)x;
		else
			*(double *)p = x;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (!is_bool(v))
			return enc_fail(e, w, "not a boolean");
		if (!enc_hook(e, rule, v, w))
			return false;
		*(protobuf_c_boolean *)p = is_type(v, cJSON_True);
		break;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (!enc_integer(e, rule, v, INT32_MIN, INT32_MAX, &x, w))
			return false;
		*(int32_t *)p = (int32_t)x;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (!enc_integer(e, rule, v, 0, UINT32_MAX, &x, w))
			return false;
		*(uint32_t *)p = (uint32_t)x;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (!enc_integer(e, rule, v, -MAX_SAFE_INT, MAX_SAFE_INT, &x, w))
			return false;
		*(int64_t *)p = (int64_t)x;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (!enc_integer(e, rule, v, 0, MAX_SAFE_INT, &x, w))
			return false;
		*(uint64_t *)p = (uint64_t)x;
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub;

		if (!is_type(v, cJSON_Object))
			return enc_fail(e, w, "not an object");
		sub = enc_msg_new(e, f->descriptor);
		if (sub == NULL)
			return enc_fail(e, w, "out of memory");
		*(ProtobufCMessage **)p = sub;
		return enc_message(e, v, sub, pf->sub, w);
	}
	default:
		return enc_fail(e, w, "field type not supported by the codec");
	}
	codec_set_present(m, f);
	return true;
}

/* A repeated message field from the JSON array V: each element an object,
 * each encoded like a message field of its own, at W[i]. */
static bool
enc_list(struct enc *e, const struct plan_field *pf, const cJSON *v, ProtobufCMessage *m,
    const struct where *w)
{
	const ProtobufCFieldDescriptor *f = pf->f;
	size_t *n = (size_t *)((char *)m + f->quantifier_offset), count = 0;
	ProtobufCMessage ***arr = codec_field_at(m, f);
	const cJSON *c;

	if (!is_type(v, cJSON_Array))
		return enc_fail(e, w, "not an array");
	for (c = v->child; c != NULL; c = c->next)
		count++;
	if (count == 0) {
		if (pf->rule != NULL && (pf->rule->flags & CODEC_F_REQUIRED))
			return enc_fail(e, w, "empty");
		return true;
	}
	if ((*arr = arena_alloc(&e->arena, count * sizeof(**arr))) == NULL)
		return enc_fail(e, w, "out of memory");
	for (c = v->child; c != NULL; c = c->next) {
		struct where wi = {.up = w, .index = *n};
		ProtobufCMessage *sub;

		if (!is_type(c, cJSON_Object))
			return enc_fail(e, &wi, "not an object");
		if ((sub = enc_msg_new(e, f->descriptor)) == NULL)
			return enc_fail(e, &wi, "out of memory");
		(*arr)[(*n)++] = sub;
		if (!enc_message(e, c, sub, pf->sub, &wi))
			return false;
	}
	return true;
}

/* Field PF from V (its short key) or LV (its rule's long key), at W. */
static bool
enc_field(struct enc *e, const struct plan_field *pf, const cJSON *v, const cJSON *lv,
    ProtobufCMessage *m, const struct where *w)
{
	const struct codec_field *rule = pf->rule;
	cJSON *parsed = NULL;
	bool ok;

	if (v != NULL && lv != NULL) {
		char path[PATH_MAX_LEN];

		return codec_err_put(
		    e->err, where_path(w, path), "given twice", " (long and short key)");
	}
	if (v == NULL)
		v = lv;
	if (v == NULL || is_type(v, cJSON_NULL)) {
		if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
			return enc_fail(e, w, "missing");
		return true;
	}
	if (pf->kind == PLAN_LIST)
		return enc_list(e, pf, v, m, w);
	if (rule != NULL && (rule->flags & CODEC_F_STAMP) &&
	    !unwrap_stamp(e, pf->f, rule, v, &v, &parsed, w)) {
		json_tree_free(parsed);
		return false;
	}
	e->parsed_open += parsed != NULL;
	ok = enc_value(e, pf, v, m, w);
	e->parsed_open -= parsed != NULL;
	json_tree_free(parsed);
	return ok;
}

/*
 * The members of OBJ into M, by PM.  In this order, the first problem
 * wins: a key given twice; a map field the codec cannot fill; the fields
 * in the order of the message; then the keys no field takes, in the
 * object's order.  One pass over the members finds each field's value by
 * the plan's keys; only an object with a key given twice, or more than
 * one key no field takes, is searched for duplicates key by key.
 */
static bool
enc_message(struct enc *e, const cJSON *obj, ProtobufCMessage *m, const struct plan_msg *pm,
    const struct where *w)
{
	/* each field's value under its short key, then under its long one */
	const cJSON *slots[2 * CODEC_PLAN_MAX_FIELDS];
	ProtobufCMessage *saved_msg = e->orig_msg;
	const ProtobufCFieldDescriptor *saved_field = e->orig_field;
	const struct where *saved_where = e->orig_where;
	size_t unknown = 0;
	bool twice = false, ok = true;

	if (pm->too_many)
		return enc_fail(e, w, "field type not supported by the codec");
	memset(slots, 0, 2 * pm->nfields * sizeof(slots[0]));
	for (const cJSON *c = obj->child; c != NULL; c = c->next) {
		size_t len = strlen(c->string);
		bool known = false;

		for (int k = codec_plan_key(pm, c->string, len); k >= 0; k = pm->keys[k].next) {
			const struct plan_key *pk = &pm->keys[k];
			const cJSON **slot = &slots[2 * pk->field + pk->is_long];

			twice |= *slot != NULL;
			*slot = c;
			known = true;
		}
		unknown += !known;
	}
	if (twice || unknown > 1) {
		const char *dup;

		if (!codec_find_duplicate(obj, &dup)) {
			int k;

			if (dup == NULL)
				return enc_fail(e, w, "out of memory");
			/* Reported under the short name, like every other error. */
			k = codec_plan_key(pm, dup, strlen(dup));
			return enc_key_fail(e, w,
			    k >= 0 ? pm->fields[pm->keys[k].field].f->name : dup, "duplicate key");
		}
	}
	if (pm->role_error >= 0) {
		struct where wf = {.up = w, .name = pm->fields[pm->role_error].f->name};

		return enc_fail(e, &wf, "field type not supported by the codec");
	}
	if (pm->reserved != NULL) {
		e->orig_msg = m;
		e->orig_field = pm->reserved;
		e->orig_where = w;
	}
	for (unsigned i = 0; ok && i < pm->nfields; i++) {
		const struct plan_field *pf = &pm->fields[i];
		struct where wf = {.up = w, .name = pf->f->name};

		if (pf->kind == PLAN_ROLE)
			continue;
		if (pf->kind == PLAN_ONEOF) {
			ok = enc_fail(e, &wf, "oneof not supported by the codec");
			break;
		}
		ok = enc_field(e, pf, slots[2 * i], slots[2 * i + 1], m, &wf);
	}
	for (const cJSON *c = obj->child; ok && unknown > 0 && c != NULL; c = c->next) {
		const char *k = c->string;
		bool finite = true;
		char *text = NULL;

		if (codec_plan_key(pm, k, strlen(k)) >= 0)
			continue;
		if (pm->reserved != NULL && strcmp(k, pm->reserved->name) == 0) {
			ok = enc_key_fail(e, w, k, "reserved key");
		} else if (pm->extra == NULL) {
			ok = enc_key_fail(e, w, k, "unknown key");
		} else if (json_depth(c, CODEC_MAX_DEPTH + 1, &finite) > CODEC_MAX_DEPTH) {
			ok = enc_key_fail(e, w, k, codec_rule_too_deep);
		} else if (!finite) {
			ok = enc_key_fail(e, w, k, "number out of range");
		} else if ((text = cJSON_PrintUnformatted(c)) == NULL ||
			   !enc_map_add(e, m, pm->extra, k, text)) {
			ok = enc_fail(e, w, "out of memory");
		}
		cJSON_free(text);
	}
	e->orig_msg = saved_msg;
	e->orig_field = saved_field;
	e->orig_where = saved_where;
	return ok;
}

/* EVENT encoded behind RESERVE bytes of the output, which the caller fills. */
static bool
encode(const struct codec_schema *s, const cJSON *event, size_t reserve, uint8_t **out, size_t *len,
    struct codec_error *err)
{
	max_align_t stack[ARENA_STACK / sizeof(max_align_t)];
	struct enc e = {.s = s, .err = err};
	const struct plan_msg *pm = NULL;
	ProtobufCMessage *m = NULL;
	bool ok;

	*out = NULL;
	*len = 0;
	e.arena.cur = (char *)stack;
	e.arena.end = (char *)stack + sizeof(stack);
	if (!is_type(event, cJSON_Object))
		ok = enc_fail(&e, NULL, "not an object");
	else if ((pm = codec_plan(s)) == NULL || (m = enc_msg_new(&e, s->message)) == NULL)
		ok = enc_fail(&e, NULL, "out of memory");
	else
		ok = enc_message(&e, event, m, pm, NULL);
	if (ok && s->check != NULL && !s->check(m, event, err))
		ok = false;
	if (ok && !pb_pack(m, reserve, out, len))
		ok = enc_fail(&e, NULL, "out of memory");
	arena_free(&e.arena);
	if (pm != NULL)
		codec_plan_release(s, pm);
	/* on every path: the list's own entry (NULL for a word the family did not declare,
	 * which t/families.c forbids): a label value, never the client's */
	if (!ok && err != NULL)
		err->rule = codec_rule(s, err->rule);
	return ok;
}

bool
codec_event_encode(const struct codec_schema *s, const cJSON *event, uint8_t **payload, size_t *len,
    struct codec_error *err)
{
	return encode(s, event, 0, payload, len, err);
}

bool
codec_event_record(const struct codec_schema *s, const cJSON *event, int32_t schema_id,
    uint8_t **record, size_t *len, struct codec_error *err)
{
	uint8_t hdr[CODEC_FRAME_MAX];
	size_t hlen = codec_frame_header(hdr, schema_id), plen;

	if (!encode(s, event, hlen, record, &plen, err)) {
		*len = 0;
		return false;
	}
	memcpy(*record, hdr, hlen);
	*len = hlen + plen;
	return true;
}
