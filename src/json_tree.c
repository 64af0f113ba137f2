/* json_tree.c: see json_tree.h.  The builder trusts its text: it runs only
 * after json_strict_check() passed it, so there is no error path but out
 * of memory, and every bound (nodes, string bytes, depth) is known before
 * the one allocation. */
#include "json_tree.h"

#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define JSON_TREE_MAGIC 0x6a747265656a7472ULL

static size_t live_bytes;

struct json_tree {
	uint64_t magic;
	size_t size;
	cJSON nodes[]; /* then the string pool */
};

struct builder {
	const unsigned char *p, *end; /* END bounds numbers: the only scan the
				       * text's structure does not stop */
	cJSON *node, *node_end;
	char *pool;
};

static void
skip_ws(struct builder *b)
{
	while (*b->p == ' ' || *b->p == '\n' || *b->p == '\t' || *b->p == '\r')
		b->p++;
}

static cJSON *
new_node(struct builder *b, int type)
{
	cJSON *n;

	/* Cannot happen for a text the check passed: it counted the values. */
	if (b->node == b->node_end)
		return NULL;
	n = b->node++;
	memset(n, 0, sizeof(*n));
	n->type = type;
	return n;
}

static unsigned
hex4(const unsigned char *p)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = p[i];

		v = v << 4 | (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

static char *
put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* The first '"' or '\\' from P on: the text passed the check, so the
 * string's closing quote comes before END. */
static const unsigned char *
run_end(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned bits = (unsigned)_mm_movemask_epi8(_mm_or_si128(
		    _mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))));

		if (bits != 0)
			return p + __builtin_ctz(bits);
		p += 16;
	}
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* (after SSE2: the last eight to fifteen bytes of the text) */
	/* Eight bytes a step, as json_strict_check() does: the lowest byte
	 * flagged is exactly the first quote or backslash. */
	while (end - p >= 8) {
		const uint64_t ones = 0x0101010101010101u, high = ones << 7;
		uint64_t x, q, b, m;

		memcpy(&x, p, sizeof(x));
		q = x ^ ('"' * ones);
		b = x ^ ('\\' * ones);
		m = (((q - ones) & ~q) | ((b - ones) & ~b)) & high;
		if (m != 0)
			return p + (__builtin_ctzll(m) >> 3);
		p += 8;
	}
#endif
	while (*p != '"' && *p != '\\')
		p++;
	return p;
}

/* The string at B->p (its opening quote) into the pool, NUL-terminated.
 * Decoded text is never longer than its escaped form. */
static char *
take_string(struct builder *b)
{
	const unsigned char *p = b->p + 1;
	char *out = b->pool, *o = out;

	for (;;) {
		const unsigned char *run = p;

		p = run_end(p, b->end);
		memcpy(o, run, (size_t)(p - run));
		o += p - run;
		if (*p == '"')
			break;
		switch (p[1]) {
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u': {
			unsigned cp = hex4(p + 2);

			/* The check let only paired surrogates through. */
			if (cp >= 0xd800 && cp < 0xdc00) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(p + 8) - 0xdc00);
				p += 6;
			}
			o = put_utf8(o, cp);
			p += 4;
			break;
		}
		default: /* '"', '\\', '/' */
			*o++ = (char)p[1];
			break;
		}
		p += 2;
	}
	*o++ = '\0';
	b->pool = o;
	b->p = p + 1;
	return out;
}

/* Powers of ten a double holds exactly. */
static const double pow10_exact[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * A number as cJSON reads it: strtod() of its text, and valueint the
 * double saturated to an int.  Most skip strtod(): with at most 15
 * digits the digits are an exact double, and so is a power of ten up to
 * 1e22, so one multiplication or division by it is the correctly rounded
 * value strtod() gives too (with no excess precision: FLT_EVAL_METHOD 0).
 */
static void
take_number(struct builder *b, cJSON *n)
{
	const unsigned char *p = b->p, *s = p;
	bool neg = *p == '-', fast = true;
	unsigned digits = 0;
	long exp10 = 0;
	uint64_t u = 0;
	double x;

	if (neg)
		p++;
	for (; p < b->end && *p >= '0' && *p <= '9'; p++, digits++)
		u = u * 10 + (unsigned)(*p - '0');
	if (p < b->end && *p == '.') {
		for (p++; p < b->end && *p >= '0' && *p <= '9'; p++, digits++, exp10--)
			u = u * 10 + (unsigned)(*p - '0');
	}
	if (p < b->end && (*p | 0x20) == 'e') {
		bool eneg = false;
		long e = 0;

		p++;
		if (*p == '+' || *p == '-')
			eneg = *p++ == '-';
		/* Past 100000 the value is 0 or infinity either way. */
		for (; p < b->end && *p >= '0' && *p <= '9'; p++)
			if (e < 100000)
				e = e * 10 + (*p - '0');
		exp10 += eneg ? -e : e;
	}
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
	fast = false;
#endif
	if (fast && digits <= 15 && exp10 >= -22 && exp10 <= 22) {
		x = exp10 < 0 ? (double)u / pow10_exact[-exp10] : (double)u * pow10_exact[exp10];
		if (neg)
			x = -x;
	} else {
		char buf[JSON_STRICT_MAX_NUMBER + 1];
		/* The check bounded the text at JSON_STRICT_MAX_NUMBER bytes. */
		size_t len = (size_t)(p - s) < sizeof(buf) - 1 ? (size_t)(p - s) : sizeof(buf) - 1;

		memcpy(buf, s, len);
		buf[len] = '\0';
		x = strtod(buf, NULL);
	}
	n->valuedouble = x;
	if (x >= INT_MAX)
		n->valueint = INT_MAX;
	else if (x <= (double)INT_MIN)
		n->valueint = INT_MIN;
	else
		n->valueint = (int)x;
	b->p = p;
}

static cJSON *take_value(struct builder *b);

/* The elements or members of the container at B->p into N. */
static bool
take_children(struct builder *b, cJSON *n, bool object)
{
	const unsigned char close = object ? '}' : ']';
	cJSON *last = NULL;

	b->p++;
	skip_ws(b);
	if (*b->p == close) {
		b->p++;
		return true;
	}
	for (;;) {
		char *key = NULL;
		cJSON *c;

		if (object) {
			key = take_string(b);
			skip_ws(b);
			b->p++; /* ':' */
			skip_ws(b);
		}
		if ((c = take_value(b)) == NULL)
			return false;
		c->string = key;
		if (last == NULL) {
			n->child = c;
		} else {
			last->next = c;
			c->prev = last;
		}
		last = c;
		skip_ws(b);
		if (*b->p++ == close)
			break;
		skip_ws(b);
	}
	/* As cJSON links them: the head's prev is the tail. */
	n->child->prev = last;
	return true;
}

static cJSON *
take_value(struct builder *b)
{
	cJSON *n;

	switch (*b->p) {
	case '{':
	case '[': {
		bool object = *b->p == '{';

		if ((n = new_node(b, object ? cJSON_Object : cJSON_Array)) == NULL ||
		    !take_children(b, n, object))
			return NULL;
		return n;
	}
	case '"':
		if ((n = new_node(b, cJSON_String)) != NULL)
			n->valuestring = take_string(b);
		return n;
	case 't':
		if ((n = new_node(b, cJSON_True)) != NULL)
			n->valueint = 1;
		b->p += 4;
		return n;
	case 'f':
		n = new_node(b, cJSON_False);
		b->p += 5;
		return n;
	case 'n':
		n = new_node(b, cJSON_NULL);
		b->p += 4;
		return n;
	default:
		if ((n = new_node(b, cJSON_Number)) != NULL)
			take_number(b, n);
		return n;
	}
}

cJSON *
json_tree_build(const char *text, size_t n, const struct json_strict_check *jc, bool wrap)
{
	size_t nodes = jc->values + 1, pool, size;
	struct json_tree *t;
	struct builder b;
	cJSON *root, *top;

	/* Each string or key decodes to no more than its own bytes between
	 * the quotes, plus a NUL: never more than the text plus two bytes a
	 * value (a key and a string value each). */
	if (nodes > (SIZE_MAX - sizeof(*t)) / sizeof(cJSON) / 2 || n > SIZE_MAX / 4)
		return NULL;
	pool = n + 2 * nodes + 1;
	size = sizeof(*t) + nodes * sizeof(cJSON) + pool;
	if ((t = malloc(size)) == NULL)
		return NULL;
	t->magic = JSON_TREE_MAGIC;
	t->size = size;
	__atomic_add_fetch(&live_bytes, size, __ATOMIC_RELAXED);
	b.node = t->nodes;
	b.node_end = t->nodes + nodes;
	b.pool = (char *)(t->nodes + nodes);
	b.p = (const unsigned char *)text + jc->start;
	b.end = (const unsigned char *)text + n;
	root = NULL;
	if (wrap && *b.p == '{')
		root = new_node(&b, cJSON_Array);
	if ((top = take_value(&b)) == NULL) {
		json_tree_free(t->nodes);
		return NULL;
	}
	if (root != NULL) {
		root->child = top;
		top->prev = top;
	} else {
		root = top;
	}
	return root;
}

cJSON *
json_tree_parse(const char *text, size_t n, size_t *where, const char **why)
{
	struct json_strict_check jc;
	cJSON *v;

	if (json_strict_check(text, n, 0, 0, &jc) != JSON_STRICT_OK) {
		*where = jc.where;
		*why = jc.why;
		return NULL;
	}
	if ((v = json_tree_build(text, n, &jc, false)) == NULL) {
		*where = jc.start;
		*why = "out of memory";
	}
	return v;
}

void
json_tree_free(cJSON *root)
{
	struct json_tree *t;

	if (root == NULL)
		return;
	t = (struct json_tree *)((char *)root - offsetof(struct json_tree, nodes));
	/* The root is always the first node: anything else is a misuse. */
	if (t->magic != JSON_TREE_MAGIC)
		abort();
	t->magic = 0;
	__atomic_sub_fetch(&live_bytes, t->size, __ATOMIC_RELAXED);
	free(t);
}

size_t
json_tree_live_bytes(void)
{
	return __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}
