/* codec_enrich.c: a raw record's Protobuf payload, checked again, to the
 * enriched JSON and its family's table row: codec_enrich(), and the row's
 * accessors.
 *
 * The JSON is written straight into one growing buffer, following the
 * schema's plan (codec_plan.c: rules, sub-plans and map roles found once
 * per schema), in the order and with the escapes cJSON's printer would
 * give the tree of the same values; only the extra keys' values, which
 * are JSON texts to check and normalise, go through cJSON.  The row is
 * taken while writing: a column's source is a path of keys, matched
 * against the keys as they are written, first match wins, as a lookup in
 * the finished tree would find them.  Paths for error messages are built
 * from a chain of levels on the stack, only when an error needs one. */
#include "codec_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "pb_pack.h"

/* ------------------------------------------------------------ output */

/* The JSON being written; out of memory is sticky. */
struct out {
	char *s;
	size_t len, cap;
	bool oom;
};

static bool
out_reserve(struct out *o, size_t more)
{
	size_t cap;
	char *s;

	if (o->oom)
		return false;
	if (o->len + more < o->cap)
		return true;
	cap = o->cap * 2 > o->len + more + 1 ? o->cap * 2 : o->len + more + 1;
	if ((s = realloc(o->s, cap)) == NULL) {
		o->oom = true;
		return false;
	}
	o->s = s;
	o->cap = cap;
	return true;
}

static void
out_mem(struct out *o, const char *p, size_t n)
{
	if (!out_reserve(o, n))
		return;
	memcpy(o->s + o->len, p, n);
	o->len += n;
}

static void
out_chr(struct out *o, char c)
{
	if (out_reserve(o, 1))
		o->s[o->len++] = c;
}

/* Bytes cJSON's printer escapes in a string: controls, '"' and '\\'. */
static const bool escaped[256] = {[0] = true,
    [1] = true,
    [2] = true,
    [3] = true,
    [4] = true,
    [5] = true,
    [6] = true,
    [7] = true,
    [8] = true,
    [9] = true,
    [10] = true,
    [11] = true,
    [12] = true,
    [13] = true,
    [14] = true,
    [15] = true,
    [16] = true,
    [17] = true,
    [18] = true,
    [19] = true,
    [20] = true,
    [21] = true,
    [22] = true,
    [23] = true,
    [24] = true,
    [25] = true,
    [26] = true,
    [27] = true,
    [28] = true,
    [29] = true,
    [30] = true,
    [31] = true,
    ['"'] = true,
    ['\\'] = true};

/* S as a JSON string, escaped as cJSON prints it: \" \\ \b \f \n \r \t,
 * other control characters as \u00XX, everything else as it is. */
static void
out_str(struct out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	out_chr(o, '"');
	while (*s != '\0') {
		size_t run = 0;
		unsigned char c;

		while (s[run] != '\0' && !escaped[(unsigned char)s[run]])
			run++;
		out_mem(o, s, run);
		s += run;
		if ((c = (unsigned char)*s) == '\0')
			break;
		s++;
		switch (c) {
		case '"':
			out_mem(o, "\\\"", 2);
			break;
		case '\\':
			out_mem(o, "\\\\", 2);
			break;
		case '\b':
			out_mem(o, "\\b", 2);
			break;
		case '\f':
			out_mem(o, "\\f", 2);
			break;
		case '\n':
			out_mem(o, "\\n", 2);
			break;
		case '\r':
			out_mem(o, "\\r", 2);
			break;
		case '\t':
			out_mem(o, "\\t", 2);
			break;
		default: {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

			out_mem(o, u, sizeof(u));
		}
		}
	}
	out_chr(o, '"');
}

static void
out_int(struct out *o, int64_t v)
{
	char buf[24];
	size_t n = 0;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		buf[sizeof(buf) - 1 - n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		buf[sizeof(buf) - 1 - n++] = '-';
	out_mem(o, buf + sizeof(buf) - n, n);
}

/* X (finite) as json_strict_number() writes it: the shortest of %.15g,
 * %.16g, %.17g that reads back as X.  An integer below 10^15 is its
 * digits in every one of them. */
static void
out_double(struct out *o, double x)
{
	char buf[40];
	int n = 0;

	if (x == floor(x) && fabs(x) < 1e15 && !(x == 0 && signbit(x))) {
		out_int(o, (int64_t)x);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, sizeof(buf), "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	out_mem(o, buf, n > 0 ? (size_t)n : 0);
}

/* ------------------------------------------------------------ columns */

/* A set of the schema's columns (CODEC_ROW_MAX of them at most). */
typedef uint32_t colset;

/* Keys a column's source path may have (a family's are a few). */
#define COLPATH_MAX 16

/* The keys of a column's source path, split at '.' as a lookup in the
 * tree would split them. */
struct colpath {
	const char *key[COLPATH_MAX];
	size_t len[COLPATH_MAX];
	size_t n;
	bool never; /* more keys, or one too long to look up: always NULL */
};

/* What a column's value was when it was written. */
enum vkind {
	V_STR,	/* a string: its text */
	V_RAW,	/* a number as written */
	V_JSON, /* an object, an array, a boolean */
	V_ITEM, /* an extra key's value, as cJSON parsed it */
};

struct col {
	bool taken;	 /* a value was found (else SQL NULL) */
	const char *why; /* the value does not fit the column: the error */
};

/* ------------------------------------------------------------ decoding */

/* One step of a path, on the stack: a field's name, or an index. */
struct lvl {
	const struct lvl *up;
	const char *name; /* NULL: an index */
	size_t index;
};

struct dec {
	const struct codec_schema *s;
	struct out o;
	char *err;
	size_t errlen;
	bool failed;
	/* the row, when one is wanted */
	struct codec_row *row;
	struct colpath *paths; /* CODEC_ROW_MAX, filled for the schema's columns */
	struct col cols[CODEC_ROW_MAX];
};

/* An object being written: its depth, and the columns whose source path
 * matched every key above it (a column leaves the set at its key: the
 * first key of that name is the one a lookup finds). */
struct obj {
	size_t depth;
	colset want;
	bool first;
};

/* The path L names, as the codec's path helpers join it. */
static void
lvl_path(const struct lvl *l, char out[PATH_MAX_LEN])
{
	char up[PATH_MAX_LEN];

	if (l == NULL) {
		out[0] = '\0';
		return;
	}
	lvl_path(l->up, up);
	if (l->name != NULL)
		codec_path_join(out, up, l->name);
	else
		codec_path_index(out, up, l->index);
}

static bool __attribute__((format(printf, 3, 4)))
dec_fail(struct dec *dc, const struct lvl *at, const char *fmt, ...)
{
	char path[PATH_MAX_LEN], msg[512];
	va_list ap;

	lvl_path(at, path);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dc->failed = true;
	return codec_fail(dc->err, dc->errlen, "payload: %s%s", path, msg);
}

/* Write KEY (LEN bytes of it) into OB; returns the columns whose source
 * goes on below the key, and sets *HERE to those it ends at: the value
 * written next is theirs. */
static colset
dec_key(struct dec *dc, struct obj *ob, const char *key, colset *here)
{
	size_t len = strlen(key);
	colset below = 0;

	*here = 0;
	if (!ob->first)
		out_chr(&dc->o, ',');
	ob->first = false;
	out_str(&dc->o, key);
	out_chr(&dc->o, ':');
	for (colset w = ob->want; w != 0; w &= w - 1) {
		unsigned c = (unsigned)__builtin_ctz(w);
		const struct colpath *cp = &dc->paths[c];

		if (cp->len[ob->depth] != len || memcmp(cp->key[ob->depth], key, len) != 0)
			continue;
		ob->want &= ~((colset)1 << c);
		if (ob->depth + 1 == cp->n)
			*here |= (colset)1 << c;
		else
			below |= (colset)1 << c;
	}
	return below;
}

/* V (a raw number item or digits) as the decimal text of a bigint column:
 * digits, '-' allowed first; a number item must be integral and exact. */
static char *
bigint_text(const char *digits, size_t n, const cJSON *item, const char **why)
{
	char *text;

	if (item != NULL && !cJSON_IsRaw(item)) {
		if (!cJSON_IsNumber(item) || floor(item->valuedouble) != item->valuedouble ||
		    fabs(item->valuedouble) > MAX_SAFE_INT) {
			*why = "is not an integer";
			return NULL;
		}
		if ((text = malloc(24)) != NULL)
			snprintf(text, 24, "%" PRId64, (int64_t)item->valuedouble);
		return text;
	}
	if (item != NULL) {
		digits = item->valuestring;
		n = strlen(digits);
	}
	/* DIGITS is not NUL-terminated when it points into the output */
	{
		size_t i = n > 0 && digits[0] == '-';
		bool good = i < n;

		for (; good && i < n; i++)
			good = digits[i] >= '0' && digits[i] <= '9';
		if (!good) {
			*why = "is not an integer";
			return NULL;
		}
	}
	if ((text = malloc(n + 1)) != NULL) {
		memcpy(text, digits, n);
		text[n] = '\0';
	}
	return text;
}

/* The columns of HERE take the value just written from START on (of kind
 * K; STR its text, ITEM its cJSON item). */
static void
col_take(
    struct dec *dc, colset here, enum vkind k, size_t start, const char *str, const cJSON *item)
{
	if (k == V_ITEM && cJSON_IsString(item)) {
		k = V_STR;
		str = item->valuestring;
	}
	for (; here != 0; here &= here - 1) {
		unsigned c = (unsigned)__builtin_ctz(here);
		const struct codec_column *col = &dc->s->columns[c];
		struct col *cl = &dc->cols[c];
		char *text = NULL;

		if (k == V_ITEM && cJSON_IsNull(item))
			continue; /* JSON null: SQL NULL */
		cl->taken = true;
		if (col->kind == CODEC_COL_JSONB) {
			if (!dc->o.oom && (text = malloc(dc->o.len - start + 1)) != NULL) {
				memcpy(text, dc->o.s + start, dc->o.len - start);
				text[dc->o.len - start] = '\0';
			}
		} else if (col->kind == CODEC_COL_BIGINT) {
			if (k == V_RAW)
				text =
				    bigint_text(dc->o.s + start, dc->o.len - start, NULL, &cl->why);
			else if (k == V_ITEM)
				text = bigint_text(NULL, 0, item, &cl->why);
			else
				cl->why = "is not an integer";
		} else if (k != V_STR) {
			cl->why = "is not a string";
		} else if (col->kind == CODEC_COL_TIMESTAMPTZ) {
			char buf[CODEC_TIME_SIZE];
			int64_t us;

			if (!timefmt_parse(str, &us)) {
				cl->why = "not a timestamp";
			} else {
				if (dc->s->partition_column != NULL &&
				    strcmp(col->name, dc->s->partition_column) == 0)
					dc->row->partition_us = us;
				timefmt_us(us, buf);
				text = strdup(buf);
			}
		} else {
			text = strdup(str);
		}
		if (cl->why == NULL && text == NULL)
			dc->o.oom = true;
		free(dc->row->values[c]);
		dc->row->values[c] = text;
	}
}

/* The columns of BELOW whose path goes on inside ITEM, an extra key's
 * value at depth DEPTH + 1: looked up in it as a tree. */
static void
col_below_item(struct dec *dc, colset below, size_t depth, const cJSON *item)
{
	size_t start = dc->o.len;

	for (; below != 0; below &= below - 1) {
		unsigned c = (unsigned)__builtin_ctz(below);
		const struct colpath *cp = &dc->paths[c];
		const cJSON *v = item;
		char key[PATH_MAX_LEN];

		for (size_t i = depth + 1; v != NULL && i < cp->n; i++) {
			memcpy(key, cp->key[i], cp->len[i]);
			key[cp->len[i]] = '\0';
			v = cJSON_GetObjectItemCaseSensitive(v, key);
		}
		if (v == NULL)
			continue;
		if (cJSON_IsNull(v) || dc->s->columns[c].kind != CODEC_COL_JSONB) {
			col_take(dc, (colset)1 << c, V_ITEM, start, NULL, v);
		} else {
			/* a part of the value: its own print, as the tree's */
			char *p = cJSON_PrintUnformatted(v);
			size_t at = dc->o.len;

			if (p == NULL) {
				dc->o.oom = true;
				continue;
			}
			out_mem(&dc->o, p, strlen(p));
			col_take(dc, (colset)1 << c, V_JSON, at, NULL, NULL);
			dc->o.len = at; /* not part of the event */
			free(p);
		}
	}
}

static bool
dec_string(struct dec *dc, const struct codec_field *rule, const char *text, const struct lvl *at)
{
	int64_t us;

	if (!json_strict_utf8_valid(text, strlen(text)))
		return dec_fail(dc, at, ": not valid UTF-8");
	if (rule != NULL && *text == '\0' &&
	    (((rule->flags & CODEC_F_REQUIRED) && !(rule->flags & CODEC_F_MAY_BE_EMPTY)) ||
		(rule->flags & CODEC_F_NOT_EMPTY)))
		return dec_fail(dc, at, ": empty");
	if (rule != NULL && rule->kind == CODEC_KIND_UUID) {
		if (!ids_canonical(text))
			return dec_fail(dc, at, ": not a canonical UUID");
	} else if (rule != NULL && rule->kind == CODEC_KIND_TIMESTAMP) {
		if (!timefmt_parse(text, &us))
			return dec_fail(dc, at, ": not an RFC 3339 timestamp");
	} else if (rule != NULL && rule->kind == CODEC_KIND_IP) {
		if (!codec_ip_valid(text))
			return dec_fail(dc, at, ": not an IP address");
	}
	out_str(&dc->o, text);
	return true;
}

static bool dec_message(struct dec *dc, const ProtobufCMessage *m, const struct plan_msg *pm,
    const struct lvl *at, size_t depth, colset want, struct obj *top);

/* The value of field PF of M; its kind for the columns in *K. */
static bool
dec_value(struct dec *dc, const struct plan_field *pf, const ProtobufCMessage *m,
    const struct lvl *at, size_t depth, colset below, enum vkind *k)
{
	const ProtobufCFieldDescriptor *f = pf->f;
	const void *p = codec_field_at(m, f);
	double x;

	*k = V_RAW;
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		*k = V_STR;
		return dec_string(dc, pf->rule, *(char *const *)p, at);
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_FLOAT:
		x = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;
		if (!isfinite(x))
			return dec_fail(dc, at, ": not a finite number");
		out_double(&dc->o, x);
		return true;
	case PROTOBUF_C_TYPE_BOOL:
		*k = V_JSON;
		if (*(const protobuf_c_boolean *)p)
			out_mem(&dc->o, "true", 4);
		else
			out_mem(&dc->o, "false", 5);
		return true;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		out_int(&dc->o, *(const int32_t *)p);
		return true;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		out_int(&dc->o, *(const uint32_t *)p);
		return true;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: {
		int64_t v = *(const int64_t *)p;

		if (v > (int64_t)MAX_SAFE_INT || v < -(int64_t)MAX_SAFE_INT)
			return dec_fail(dc, at, ": out of range");
		out_int(&dc->o, v);
		return true;
	}
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		uint64_t v = *(const uint64_t *)p;

		if (v > (uint64_t)MAX_SAFE_INT)
			return dec_fail(dc, at, ": out of range");
		out_int(&dc->o, (int64_t)v);
		return true;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*k = V_JSON;
		return dec_message(
		    dc, *(ProtobufCMessage *const *)p, pf->sub, at, depth + 1, below, NULL);
	default:
		return dec_fail(dc, at, ": field type not supported by the codec");
	}
}

/* Map field F of M as (key, value) string pairs: false on an entry
 * without key or value, or one that is not UTF-8. */
static bool
dec_map_entries(struct dec *dc, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    const struct lvl *at, size_t *n, ProtobufCMessage ***entries)
{
	*n = *(const size_t *)((const char *)m + f->quantifier_offset);
	*entries = *(ProtobufCMessage ***)codec_field_at(m, f);
	for (size_t i = 0; i < *n; i++) {
		char **k = codec_entry_str((*entries)[i], "key"),
		     **v = codec_entry_str((*entries)[i], "value");

		if (k == NULL || v == NULL || *k == NULL || *v == NULL)
			return dec_fail(dc, at, ": entry without key or value");
		if (!json_strict_utf8_valid(*k, strlen(*k)) ||
		    !json_strict_utf8_valid(*v, strlen(*v)))
			return dec_fail(dc, at, ": entry not valid UTF-8");
	}
	return true;
}

static bool
dec_originals(struct dec *dc, struct obj *ob, const ProtobufCMessage *m,
    const ProtobufCFieldDescriptor *f, const struct lvl *at)
{
	ProtobufCMessage **entries;
	const char **keys, *dup;
	struct obj in;
	colset here, below;
	size_t n, start;

	if (!dec_map_entries(dc, m, f, at, &n, &entries))
		return false;
	if (n == 0)
		return true;
	/* Sorted, not pairwise: a hostile payload may hold many entries. */
	keys = malloc(n * sizeof(*keys));
	if (keys == NULL)
		return dec_fail(dc, at, ": out of memory");
	for (size_t i = 0; i < n; i++)
		keys[i] = *codec_entry_str(entries[i], "key");
	dup = codec_dup_key(keys, n);
	free(keys);
	if (dup != NULL)
		return dec_fail(dc, at, ": duplicate key");
	below = dec_key(dc, ob, f->name, &here);
	start = dc->o.len;
	in = (struct obj){.depth = ob->depth + 1, .want = below, .first = true};
	out_chr(&dc->o, '{');
	for (size_t i = 0; i < n; i++) {
		const char *k = *codec_entry_str(entries[i], "key"),
			   *v = *codec_entry_str(entries[i], "value");
		size_t vs;
		colset vh;

		dec_key(dc, &in, k, &vh);
		vs = dc->o.len;
		out_str(&dc->o, v);
		if (vh != 0)
			col_take(dc, vh, V_STR, vs, v, NULL);
	}
	out_chr(&dc->o, '}');
	if (here != 0)
		col_take(dc, here, V_JSON, start, NULL, NULL);
	return true;
}

/* Re-emit the extra keys of M into the object being written, which
 * already holds the named fields: a key equal to a field name (present or
 * not), to the reserved original-ids name, or given twice would make the
 * JSON ambiguous.  PATH: M's. */
static bool
dec_extras(struct dec *dc, struct obj *ob, const ProtobufCMessage *m, const struct plan_msg *pm,
    const ProtobufCFieldDescriptor *f, const struct lvl *path, const struct lvl *at)
{
	char show[KEY_SHOW_MAX + 4], where_path[PATH_MAX_LEN];
	ProtobufCMessage **entries;
	const char **keys, *dup;
	size_t n, nkeys = 0;

	if (!dec_map_entries(dc, m, f, at, &n, &entries))
		return false;
	if (n == 0)
		return true;
	keys = malloc((n + pm->nfields) * sizeof(*keys));
	if (keys == NULL)
		return dec_fail(dc, at, ": out of memory");
	for (unsigned i = 0; i < pm->nfields; i++) {
		const struct plan_field *pf = &pm->fields[i];

		if (!codec_is_map(pf->f) || pf->role == MAP_ORIGINALS)
			keys[nkeys++] = pf->f->name;
	}
	for (size_t i = 0; i < n; i++)
		keys[nkeys++] = *codec_entry_str(entries[i], "key");
	dup = codec_dup_key(keys, nkeys);
	lvl_path(path, where_path);
	if (dup != NULL) {
		dc->failed = true;
		codec_fail(dc->err, dc->errlen,
		    "payload: %s%s%s: extra key given twice or shadowing a field", where_path,
		    *where_path ? "." : "", codec_key_show(dup, show));
		free(keys);
		return false;
	}
	free(keys);
	for (size_t i = 0; i < n; i++) {
		const char *k = *codec_entry_str(entries[i], "key"),
			   *v = *codec_entry_str(entries[i], "value");
		const char *why;
		size_t where, start;
		colset here, below;
		cJSON *item = json_strict_parse(v, strlen(v), &where, &why);
		char *p;

		if (item == NULL) {
			dc->failed = true;
			return codec_fail(dc->err, dc->errlen,
			    "payload: %s%s%s: extra value is not JSON", where_path,
			    *where_path ? "." : "", codec_key_show(k, show));
		}
		below = dec_key(dc, ob, k, &here);
		start = dc->o.len;
		if ((p = cJSON_PrintUnformatted(item)) == NULL) {
			cJSON_Delete(item);
			return dec_fail(dc, at, ": out of memory");
		}
		out_mem(&dc->o, p, strlen(p));
		free(p);
		if (here != 0)
			col_take(dc, here, V_ITEM, start, NULL, item);
		if (below != 0)
			col_below_item(dc, below, ob->depth, item);
		cJSON_Delete(item);
	}
	return true;
}

/* Repeated message field PF of M as a JSON array, elements at AT[i]. */
static bool
dec_list(struct dec *dc, struct obj *ob, const ProtobufCMessage *m, const struct plan_field *pf,
    const struct lvl *at, size_t depth)
{
	const ProtobufCFieldDescriptor *f = pf->f;
	size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
	ProtobufCMessage *const *elems = *(ProtobufCMessage *const *const *)codec_field_at(m, f);
	colset here;
	size_t start;

	if (n == 0) {
		if (pf->rule != NULL && (pf->rule->flags & CODEC_F_REQUIRED))
			return dec_fail(dc, at, ": missing");
		return true;
	}
	/* no lookup goes into an array: what is below the key is not found */
	dec_key(dc, ob, f->name, &here);
	start = dc->o.len;
	out_chr(&dc->o, '[');
	for (size_t i = 0; i < n; i++) {
		struct lvl el = {at, NULL, i};

		if (i > 0)
			out_chr(&dc->o, ',');
		if (!dec_message(dc, elems[i], pf->sub, &el, depth + 1, 0, NULL))
			return false;
	}
	out_chr(&dc->o, ']');
	if (here != 0)
		col_take(dc, here, V_JSON, start, NULL, NULL);
	return true;
}

/* Message M (plan PM) at path AT as a JSON object; WANT: the columns whose
 * source reaches into it.  At the top (TOP not NULL) the object is left
 * open in *TOP for the caller, which adds the metadata. */
static bool
dec_message(struct dec *dc, const ProtobufCMessage *m, const struct plan_msg *pm,
    const struct lvl *at, size_t depth, colset want, struct obj *top)
{
	struct obj ob = {.depth = depth, .want = want, .first = true};

	out_chr(&dc->o, '{');
	if (pm == NULL || pm->too_many) {
		struct lvl fl = {
		    at, m->descriptor->n_fields > 0 ? m->descriptor->fields[0].name : "?", 0};

		return dec_fail(dc, &fl, ": field type not supported by the codec");
	}
	/* Named fields, then the original ids, then the extra keys, whatever
	 * their field numbers: the JSON reads like the input did. */
	for (unsigned i = 0; i < pm->nfields; i++) {
		const struct plan_field *pf = &pm->fields[i];
		struct lvl fl = {at, pf->f->name, 0};
		colset here, below;
		enum vkind k;
		size_t start;

		if (pf->kind == PLAN_ROLE)
			continue;
		if (pf->kind == PLAN_LIST) {
			if (!dec_list(dc, &ob, m, pf, &fl, depth))
				return false;
			continue;
		}
		if (!codec_field_present(m, pf->f)) {
			if (pf->rule != NULL && (pf->rule->flags & CODEC_F_REQUIRED))
				return dec_fail(dc, &fl, ": missing");
			continue;
		}
		/* the encoder refuses them; a message field would have no plan */
		if (pf->kind == PLAN_ONEOF)
			return dec_fail(dc, &fl, ": field type not supported by the codec");
		below = dec_key(dc, &ob, pf->f->name, &here);
		start = dc->o.len;
		if (!dec_value(dc, pf, m, &fl, depth, below, &k))
			return false;
		if (here != 0)
			col_take(dc, here, k, start,
			    k == V_STR ? *(char *const *)codec_field_at(m, pf->f) : NULL, NULL);
	}
	for (int pass = MAP_ORIGINALS; pass >= MAP_EXTRA; pass--) {
		for (unsigned i = 0; i < pm->nfields; i++) {
			const struct plan_field *pf = &pm->fields[i];
			struct lvl fl = {at, pf->f->name, 0};

			if (pf->kind != PLAN_ROLE)
				continue;
			if (pf->role == MAP_NONE)
				return dec_fail(dc, &fl, ": field type not supported by the codec");
			if ((int)pf->role != pass)
				continue;
			if (pf->role == MAP_ORIGINALS ? !dec_originals(dc, &ob, m, pf->f, &fl)
						      : !dec_extras(dc, &ob, m, pm, pf->f, at, &fl))
				return false;
		}
	}
	if (top != NULL)
		*top = ob;
	else
		out_chr(&dc->o, '}');
	return true;
}

/* The columns' source paths, split; the set of those with one. */
static colset
col_paths(struct dec *dc)
{
	colset all = 0;

	for (size_t c = 0; c < dc->s->ncolumns; c++) {
		struct colpath *cp = &dc->paths[c];
		const char *p = dc->s->columns[c].source;

		cp->n = 0;
		cp->never = false;
		while (*p != '\0' && !cp->never) {
			size_t n = strcspn(p, ".");

			if (n >= PATH_MAX_LEN || cp->n == COLPATH_MAX) {
				cp->never = true;
				break;
			}
			cp->key[cp->n] = p;
			cp->len[cp->n++] = n;
			p += n;
			if (*p == '.')
				p++;
		}
		if (cp->n > 0 && !cp->never)
			all |= (colset)1 << c;
	}
	return all;
}

/* The values of the whole event (a column with an empty source), and the
 * first column whose value does not fit it, in column order. */
static bool
row_finish(struct dec *dc, const char *json)
{
	for (size_t c = 0; c < dc->s->ncolumns; c++) {
		const struct codec_column *col = &dc->s->columns[c];

		if (*col->source == '\0') {
			if (col->kind == CODEC_COL_JSONB) {
				if ((dc->row->values[c] = strdup(json)) == NULL)
					return codec_fail(
					    dc->err, dc->errlen, "row: out of memory");
				continue;
			}
			dc->cols[c].why =
			    col->kind == CODEC_COL_BIGINT ? "is not an integer" : "is not a string";
		}
		if (dc->cols[c].why == NULL)
			continue;
		if (strcmp(dc->cols[c].why, "not a timestamp") == 0)
			return codec_fail(
			    dc->err, dc->errlen, "row: %s: not a timestamp", col->name);
		return codec_fail(
		    dc->err, dc->errlen, "row: %s: %s %s", col->name, col->source, dc->cols[c].why);
	}
	return true;
}

/* The metadata object, last in the event. */
static void
dec_metadata(struct dec *dc, struct obj *top, const char *corr, const char *when, int32_t schema_id)
{
	struct obj meta;
	colset here, below;
	size_t start, vs;

	below = dec_key(dc, top, "metadata", &here);
	start = dc->o.len;
	meta = (struct obj){.depth = 1, .want = below, .first = true};
	out_chr(&dc->o, '{');
	dec_key(dc, &meta, "correlationId", &below);
	vs = dc->o.len;
	out_str(&dc->o, corr);
	if (below != 0)
		col_take(dc, below, V_STR, vs, corr, NULL);
	dec_key(dc, &meta, "publishTime", &below);
	vs = dc->o.len;
	out_str(&dc->o, when);
	if (below != 0)
		col_take(dc, below, V_STR, vs, when, NULL);
	dec_key(dc, &meta, "schemaId", &below);
	vs = dc->o.len;
	out_int(&dc->o, schema_id);
	if (below != 0)
		col_take(dc, below, V_RAW, vs, NULL, NULL);
	out_chr(&dc->o, '}');
	if (here != 0)
		col_take(dc, here, V_JSON, start, NULL, NULL);
}

char *
codec_enrich(const struct codec_schema *s, const uint8_t *payload, size_t len,
    const char *correlation_id, int64_t publish_time_ms, int32_t schema_id, struct codec_row *row,
    char *err, size_t errlen)
{
	struct dec dc = {.s = s, .err = err, .errlen = errlen};
	struct colpath paths[CODEC_ROW_MAX]; /* not zeroed: col_paths fills what is used */
	char corr[IDS_TEXT_SIZE], when[CODEC_TIME_SIZE];
	const struct plan_msg *pm;
	ProtobufCMessage *m;
	struct obj top;
	colset want = 0;
	uint8_t id[16];
	bool ok;

	if (row != NULL)
		memset(row, 0, sizeof(*row));
	if (correlation_id != NULL && ids_canonical(correlation_id)) {
		memcpy(corr, correlation_id, IDS_TEXT_SIZE - 1);
		corr[IDS_TEXT_SIZE - 1] = '\0';
	} else if (correlation_id == NULL || !ids_parse(correlation_id, id, NULL)) {
		codec_fail(err, errlen, "metadata.correlationId: not a UUID");
		return NULL;
	} else {
		ids_format(id, corr);
	}
	if (publish_time_ms < 0) {
		codec_fail(err, errlen, "metadata.publishTime: negative");
		return NULL;
	}
	timefmt_ms(publish_time_ms, when);
	if ((pm = codec_plan(s)) == NULL) {
		codec_fail(err, errlen, "enrich: out of memory");
		return NULL;
	}
	m = protobuf_c_message_unpack(s->message, NULL, len, payload);
	if (m == NULL) {
		codec_plan_release(s, pm);
		codec_fail(err, errlen, "payload: not a valid %s message", s->message->name);
		return NULL;
	}
	/* too many columns: no row is taken, and that is the error below */
	if (row != NULL && s->ncolumns <= CODEC_ROW_MAX) {
		dc.row = row;
		dc.paths = paths;
		row->ncolumns = s->ncolumns;
		want = col_paths(&dc);
	}
	dc.o.cap = 1024;
	dc.o.s = malloc(dc.o.cap);
	dc.o.oom = dc.o.s == NULL;
	/* the top object: its fields, then the metadata, then the brace */
	ok = dec_message(&dc, m, pm, NULL, 0, want, &top);
	if (ok) {
		dec_metadata(&dc, &top, corr, when, schema_id);
		out_chr(&dc.o, '}');
		out_chr(&dc.o, '\0');
	}
	protobuf_c_message_free_unpacked(m, NULL);
	codec_plan_release(s, pm);
	if (ok && dc.o.oom)
		ok = codec_fail(err, errlen, "enrich: out of memory");
	if (ok && row != NULL && dc.row == NULL)
		ok = codec_fail(
		    err, errlen, "row: schema %s has more than %d columns", s->name, CODEC_ROW_MAX);
	if (ok && dc.row != NULL && !row_finish(&dc, dc.o.s))
		ok = false;
	if (!ok) {
		codec_row_free(row);
		free(dc.o.s);
		return NULL;
	}
	return dc.o.s;
}

/* Field NUM of wire type 2 (length-delimited) holding LEN bytes of DATA. */
static size_t
put_bytes(uint8_t *p, unsigned num, const void *data, size_t len)
{
	size_t n = pb_put_varint(p, (uint64_t)num << 3 | 2);

	n += pb_put_varint(p + n, len);
	memcpy(p + n, data, len);
	return n + len;
}

bool
codec_enriched_record(int32_t schema_id, int index, const uint8_t *payload, size_t len,
    const char *correlation_id, int64_t publish_time_ms, int32_t raw_schema_id, uint8_t **out,
    size_t *outlen, char *err, size_t errlen)
{
	char corr[IDS_TEXT_SIZE], when[CODEC_TIME_SIZE];
	uint8_t id[16], meta[128], *buf;
	size_t mlen = 0, n = 0;
	uint32_t sid = (uint32_t)schema_id;

	if (correlation_id == NULL || !ids_parse(correlation_id, id, NULL))
		return codec_fail(err, errlen, "metadata.correlationId: not a UUID");
	if (index < 0 || publish_time_ms < 0)
		return codec_fail(err, errlen, "enriched record: bad message index or publishTime");
	ids_format(id, corr);
	timefmt_ms(publish_time_ms, when);
	/* the Metadata message: two short strings and a varint */
	mlen += put_bytes(meta + mlen, 1, corr, strlen(corr));
	mlen += put_bytes(meta + mlen, 2, when, strlen(when));
	meta[mlen++] = 3 << 3;
	mlen += pb_put_varint(meta + mlen, (uint64_t)(int64_t)raw_schema_id);
	/* frame (6 + two zig-zag varints) + payload + tag, length, metadata */
	if ((buf = malloc(5 + 20 + len + 1 + 10 + mlen)) == NULL)
		return codec_fail(err, errlen, "enriched record: out of memory");
	buf[n++] = 0;
	buf[n++] = (uint8_t)(sid >> 24);
	buf[n++] = (uint8_t)(sid >> 16);
	buf[n++] = (uint8_t)(sid >> 8);
	buf[n++] = (uint8_t)sid;
	if (index == 0) {
		buf[n++] = 0; /* [0] is written as the count 0 */
	} else {
		n += pb_put_varint(buf + n, 2); /* zig-zag 1: one index */
		n += pb_put_varint(buf + n, (uint64_t)index << 1);
	}
	memcpy(buf + n, payload, len);
	n += len;
	n += put_bytes(buf + n, 15, meta, mlen);
	*out = buf;
	*outlen = n;
	return true;
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

cJSON *
codec_decode(
    const struct codec_schema *s, const uint8_t *payload, size_t len, char *err, size_t errlen)
{
	struct dec dc = {.s = s, .err = err, .errlen = errlen};
	const struct plan_msg *pm;
	ProtobufCMessage *m;
	cJSON *raw = NULL;
	struct obj top;
	bool ok;

	if ((pm = codec_plan(s)) == NULL) {
		codec_fail(err, errlen, "decode: out of memory");
		return NULL;
	}
	m = protobuf_c_message_unpack(s->message, NULL, len, payload);
	if (m == NULL) {
		codec_plan_release(s, pm);
		codec_fail(err, errlen, "payload: not a valid %s message", s->message->name);
		return NULL;
	}
	dc.o.cap = 1024;
	dc.o.s = malloc(dc.o.cap);
	dc.o.oom = dc.o.s == NULL;
	/* the enriched event's writer, without a row and without the metadata */
	ok = dec_message(&dc, m, pm, NULL, 0, 0, &top);
	if (ok) {
		out_chr(&dc.o, '}');
		out_chr(&dc.o, '\0');
	}
	protobuf_c_message_free_unpacked(m, NULL);
	codec_plan_release(s, pm);
	if (ok && dc.o.oom)
		ok = codec_fail(err, errlen, "decode: out of memory");
	if (ok && (raw = cJSON_CreateRaw(dc.o.s)) == NULL)
		ok = codec_fail(err, errlen, "decode: out of memory");
	free(dc.o.s);
	return ok ? raw : NULL;
}

/* IT's text as codec_line_text() gives it: a string as it is, a number
 * in decimal or %.17g; NULL for anything else. */
static char *
item_text(const cJSON *it)
{
	char buf[32];

	if (cJSON_IsString(it))
		return strdup(it->valuestring);
	if (!cJSON_IsNumber(it))
		return NULL;
	if (it->valuedouble == floor(it->valuedouble) &&
	    fabs(it->valuedouble) <= 9007199254740992.0)
		snprintf(buf, sizeof(buf), "%.0f", it->valuedouble);
	else
		snprintf(buf, sizeof(buf), "%.17g", it->valuedouble);
	return strdup(buf);
}

/* codec_line_text() the slow way: the whole line as a tree. */
static char *
line_text_tree(const char *line, size_t len, const char *path)
{
	cJSON *doc = cJSON_ParseWithLength(line, len), *it = doc;
	char *out;

	while (it != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");
		char key[64];

		if (n >= sizeof(key) || !cJSON_IsObject(it)) {
			it = NULL;
			break;
		}
		memcpy(key, path, n);
		key[n] = '\0';
		it = cJSON_GetObjectItemCaseSensitive(it, key);
		path += n;
		if (*path == '.')
			path++;
	}
	out = item_text(it);
	cJSON_Delete(doc);
	return out;
}

static const char *
scan_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* P at a string's opening quote: past its closing one, or NULL; *ESC
 * tells whether it has an escape. */
static const char *
scan_string(const char *p, const char *end, bool *esc)
{
	*esc = false;
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\') {
			*esc = true;
			p++;
		}
	}
	return NULL;
}

/* P at a value: past it (objects and arrays whole, by their brackets),
 * or NULL when the line ends first. */
static const char *
scan_value(const char *p, const char *end)
{
	size_t depth = 0;
	bool esc;

	if (p < end && *p == '"')
		return scan_string(p, end, &esc);
	if (p < end && *p != '{' && *p != '[') {
		while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
		       *p != '\t' && *p != '\r')
			p++;
		return p;
	}
	while (p < end) {
		if (*p == '"') {
			if ((p = scan_string(p, end, &esc)) == NULL)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return NULL;
}

/* The line is the enricher's own (codec_enrich() wrote it), so the key is
 * found by scanning: objects entered along the path, every other value
 * stepped over by its brackets and quotes, no tree.  Only the value found
 * is parsed, and only when it is not a plain string; a key with an escape
 * on the way sends the line to the tree, which decodes it. */
char *
codec_line_text(const char *line, size_t len, const char *path)
{
	const char *p = line, *end = line + len, *want = path;

	for (;;) {
		size_t n = strcspn(want, ".");
		bool found = false, esc;

		p = scan_ws(p, end);
		if (p == end || *p != '{')
			return NULL;
		p = scan_ws(p + 1, end);
		while (p < end && *p == '"') {
			const char *key = p + 1, *kend;

			if ((kend = scan_string(p, end, &esc)) == NULL)
				return NULL;
			if (esc)
				return line_text_tree(line, len, path);
			p = scan_ws(kend, end);
			if (p == end || *p != ':')
				return NULL;
			p = scan_ws(p + 1, end);
			if ((size_t)(kend - 1 - key) == n && memcmp(key, want, n) == 0) {
				found = true;
				break;
			}
			if ((p = scan_value(p, end)) == NULL)
				return NULL;
			p = scan_ws(p, end);
			if (p < end && *p == ',')
				p = scan_ws(p + 1, end);
			else
				break;
		}
		if (!found)
			return NULL;
		want += n;
		if (*want == '.') {
			want++;
			continue;
		}
		if (*want != '\0')
			return NULL;
		break;
	}
	/* P at the value */
	if (p < end && *p == '"') {
		const char *vend;
		bool esc;

		if ((vend = scan_string(p, end, &esc)) == NULL)
			return NULL;
		if (!esc)
			return strndup(p + 1, (size_t)(vend - p - 2));
	}
	if (p < end && (*p == '"' || *p == '-' || (*p >= '0' && *p <= '9'))) {
		const char *vend = scan_value(p, end);
		cJSON *v;
		char *out;

		if (vend == NULL || (v = cJSON_ParseWithLength(p, (size_t)(vend - p))) == NULL)
			return NULL;
		out = item_text(v);
		cJSON_Delete(v);
		return out;
	}
	return NULL;
}
