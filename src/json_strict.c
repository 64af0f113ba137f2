/* json_strict.c: the strict JSON layer below the codec: an RFC 8259
 * checker that runs before cJSON builds anything (or builds json_tree's
 * nodes itself as it checks), UTF-8 validation, and exact number text.
 * No I/O, no knowledge of events. */
#include "json_strict.h"

#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------ UTF-8 */

/* Length of the valid UTF-8 sequence at P (N bytes left), 0 if invalid:
 * no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;
	if (c < 0xe0)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c < 0xf0) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
		return 0;
	if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
		return 0;
	return 4;
}

bool
json_strict_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);

		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* ------------------------------------------------------------ JSON text */

bool
json_strict_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

#define JSON_STR_(x) #x
#define JSON_STR(x) JSON_STR_(x)

/* Byte classes of the validator, one table load per byte. */
enum {
	J_WS = 1,    /* JSON whitespace */
	J_STR = 2,   /* ends a run of plain string bytes: '"', '\\', < 0x20, >= 0x80 */
	J_DIGIT = 4, /* 0-9 */
	J_WORD = 8,  /* letters, digits, '.', '+', '-': may not follow a number or literal */
};

/* clang-format off */
static const unsigned char json_class[256] = {
	/* 00 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 2, 2, 3, 2, 2,
	/* 10 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	/* 20 */ 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 8, 8, 0,
	/* 30 */ 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 0, 0, 0, 0, 0, 0,
	/* 40 */ 0, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
	/* 50 */ 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 0, 2, 0, 0, 0,
	/* 60 */ 0, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
	/* 70 */ 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 0, 0, 0, 0, 0,
	/* 80 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	/* 90 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	/* a0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	/* b0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	/* c0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	/* d0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	/* e0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	/* f0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
/* clang-format on */

/* What each one-character escape stands for; 0: not one ('u' neither). */
static const unsigned char unescape[256] = {
    ['"'] = '"',
    ['\\'] = '\\',
    ['/'] = '/',
    ['b'] = '\b',
    ['f'] = '\f',
    ['n'] = '\n',
    ['r'] = '\r',
    ['t'] = '\t',
};

static const char json_too_deep[] =
    "nesting deeper than " JSON_STR(JSON_STRICT_MAX_DEPTH) " levels";
static const char json_long_number[] =
    "invalid number: more than " JSON_STR(JSON_STRICT_MAX_NUMBER) " characters";

/* The four hex digits at P as a code unit, -1 if one is not a hex digit. */
static long
hex4(const unsigned char *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = p[i], lc = c | 0x20;

		if (c - '0' < 10)
			v = v << 4 | (long)(c - '0');
		else if (lc - 'a' < 6)
			v = v << 4 | (long)(lc - 'a' + 10);
		else
			return -1;
	}
	return v;
}

/* ------------------------------------------------------------ building
 * What json_strict_check_build() adds to the check: the decoded text of
 * strings and keys, numbers as cJSON reads them, and the nodes. */

/* The four hex digits at P, which the check found to be hex digits. */
static unsigned
hex4_known(const unsigned char *p)
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

/* Powers of ten a double holds exactly. */
static const double pow10_exact[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * The number S..E (checked) into N as cJSON reads it: strtod() of its
 * text, and valueint the double saturated to an int.  Most skip strtod():
 * with at most 15 digits the digits are an exact double, and so is a
 * power of ten up to 1e22, so one multiplication or division by it is
 * the correctly rounded value strtod() gives too (with no excess
 * precision: FLT_EVAL_METHOD 0).
 */
static void
number_value(const unsigned char *s, const unsigned char *e, cJSON *n)
{
	const unsigned char *p = s;
	bool neg = *p == '-', fast = true;
	unsigned digits = 0;
	long exp10 = 0;
	uint64_t u = 0;
	double x;

	if (neg)
		p++;
	for (; p < e && *p >= '0' && *p <= '9'; p++, digits++)
		u = u * 10 + (unsigned)(*p - '0');
	if (p < e && *p == '.') {
		for (p++; p < e && *p >= '0' && *p <= '9'; p++, digits++, exp10--)
			u = u * 10 + (unsigned)(*p - '0');
	}
	if (p < e && (*p | 0x20) == 'e') {
		bool eneg = false;
		long x10 = 0;

		p++;
		if (*p == '+' || *p == '-')
			eneg = *p++ == '-';
		/* Past 100000 the value is 0 or infinity either way. */
		for (; p < e && *p >= '0' && *p <= '9'; p++)
			if (x10 < 100000)
				x10 = x10 * 10 + (*p - '0');
		exp10 += eneg ? -x10 : x10;
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
		size_t len = (size_t)(e - s) < sizeof(buf) - 1 ? (size_t)(e - s) : sizeof(buf) - 1;

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
}

/* The next node of T, zeroed; NULL when out of memory. */
static cJSON *
tree_node(struct json_strict_tree *t)
{
	cJSON *nd;

	if (t->node == t->node_end && !t->more(t)) {
		t->oom = true;
		return NULL;
	}
	nd = t->node++;
	memset(nd, 0, sizeof(*nd));
	return nd;
}

/*
 * The check, and with T the tree as well, in one pass: the one body of
 * both json_strict_check() (T NULL, where the compiler drops every step
 * of the building) and json_strict_check_build().  See json_strict.h for
 * the rules; why cJSON may then build the tree unchecked is said there
 * too.
 */
static inline __attribute__((always_inline)) enum json_strict_status
scan(const char *text, size_t n, size_t max_events, size_t max_values, struct json_strict_check *jc,
    struct json_strict_tree *t)
{
	const unsigned char *const base = (const unsigned char *)text, *const end = base + n;
	const unsigned char *p = base, *num;
	unsigned char stack[JSON_STRICT_MAX_DEPTH]; /* '[' or '{' of each open container */
	/* building: each open container's node and last child so far */
	cJSON *parent[JSON_STRICT_MAX_DEPTH], *last[JSON_STRICT_MAX_DEPTH], *nd = NULL;
	char *key = NULL, *out = NULL, *str = NULL;
	size_t depth = 0, values = 0, events = 0;
	bool top_array, in_key = false;
	const char *why, *lit;
	long cu;

	if (max_events == 0)
		max_events = SIZE_MAX;
	if (max_values == 0)
		max_values = SIZE_MAX;
#define SKIP_WS()                                                                                  \
	do {                                                                                       \
		while (p < end && (json_class[*p] & J_WS))                                         \
			p++;                                                                       \
	} while (0)
	if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		p += 3;
	SKIP_WS();
	if (p == end) {
		why = "empty";
		goto fail;
	}
	jc->start = (size_t)(p - base);
	top_array = *p == '[';
	events = *p == '{';

value: /* at the first byte of a value, not whitespace, p < end */
	/* Events first: when both pass at once, that is the clearer answer. */
	if (depth == 1 && top_array && ++events > max_events) {
		jc->why = "events";
		jc->limit = max_events;
		return JSON_STRICT_TOO_LARGE;
	}
	if (++values > max_values) {
		jc->why = "JSON values";
		jc->limit = max_values;
		return JSON_STRICT_TOO_LARGE;
	}
	if (t != NULL) {
		if ((nd = tree_node(t)) == NULL)
			goto oom;
		nd->string = key;
		key = NULL;
		if (depth == 0) {
			t->root = nd;
		} else if (last[depth - 1] == NULL) {
			parent[depth - 1]->child = nd;
		} else {
			last[depth - 1]->next = nd;
			nd->prev = last[depth - 1];
		}
		if (depth > 0)
			last[depth - 1] = nd;
	}
	switch (*p) {
	case '[':
	case '{':
		if (depth == JSON_STRICT_MAX_DEPTH) {
			why = json_too_deep;
			goto fail;
		}
		if (t != NULL) {
			nd->type = *p == '[' ? cJSON_Array : cJSON_Object;
			parent[depth] = nd;
			last[depth] = NULL;
		}
		stack[depth++] = *p++;
		SKIP_WS();
		if (p == end)
			goto eof;
		if (*p == stack[depth - 1] + 2) { /* ']' is '[' + 2, '}' is '{' + 2 */
			p++;
			depth--;
			goto after;
		}
		if (stack[depth - 1] == '[')
			goto value;
		goto key;
	case '"':
		p++;
		if (t != NULL)
			nd->type = cJSON_String;
		goto string;
	case '-':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9':
		num = p;
		if (*p == '-' && (++p == end || !(json_class[*p] & J_DIGIT))) {
			why = "invalid number: no digit after '-'";
			goto fail;
		}
		if (*p++ == '0') {
			if (p < end && (json_class[*p] & J_DIGIT)) {
				why = "invalid number: leading zero";
				goto fail;
			}
		} else {
			while (p < end && (json_class[*p] & J_DIGIT))
				p++;
		}
		if (p < end && *p == '.') {
			if (++p == end || !(json_class[*p] & J_DIGIT)) {
				why = "invalid number: no digit after the decimal point";
				goto fail;
			}
			while (p < end && (json_class[*p] & J_DIGIT))
				p++;
		}
		if (p < end && (*p | 0x20) == 'e') {
			if (++p < end && (*p == '+' || *p == '-'))
				p++;
			if (p == end || !(json_class[*p] & J_DIGIT)) {
				why = "invalid number: no digit in the exponent";
				goto fail;
			}
			while (p < end && (json_class[*p] & J_DIGIT))
				p++;
		}
		if (p < end && (json_class[*p] & J_WORD)) {
			why = "invalid number: unexpected character after the digits";
			goto fail;
		}
		if (p - num > JSON_STRICT_MAX_NUMBER) {
			p = num;
			why = json_long_number;
			goto fail;
		}
		if (t != NULL) {
			nd->type = cJSON_Number;
			number_value(num, p, nd);
		}
		goto after;
	case 't':
		lit = "true";
		goto literal;
	case 'f':
		lit = "false";
		goto literal;
	case 'n':
		lit = "null";
		goto literal;
	case '+':
		why = "invalid number: leading '+'";
		goto fail;
	case '.':
		why = "invalid number: no digit before the decimal point";
		goto fail;
	default:
		why = "expected a value";
		goto unexpected;
	}

literal: /* P should spell LIT */
	for (; *lit != '\0'; lit++, p++) {
		if (p == end || *p != (unsigned char)*lit) {
			why = "invalid literal";
			goto fail;
		}
	}
	if (p < end && (json_class[*p] & J_WORD)) {
		why = "invalid literal";
		goto fail;
	}
	if (t != NULL) {
		nd->type = p[-1] == 'e' ? (p[-2] == 'u' ? cJSON_True : cJSON_False) : cJSON_NULL;
		nd->valueint = nd->type == cJSON_True;
	}
	goto after;

key: /* at the first byte after '{' or ',' and whitespace, p < end */
	if (*p != '"') {
		why = "expected a string key";
		goto unexpected;
	}
	p++;
	in_key = true;
	/* fall through */

string: /* just after the opening quote */
	/* Building, the plain bytes go to OUT as they are scanned: the
	 * blocks whole (the pool's slack takes what is past the run). */
	if (t != NULL)
		str = out = t->pool;
	for (;;) {
#if defined(__SSE2__)
		/* Sixteen bytes a step through the plain run: as signed bytes,
		 * those below 0x20 and those of 0x80 and above are both less
		 * than 0x20, so one compare finds either. */
		while (end - p >= 16) {
			__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
			__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
						     _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
			    _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
			unsigned bits = (unsigned)_mm_movemask_epi8(m);

			if (t != NULL)
				_mm_storeu_si128((__m128i *)(void *)out, x);
			if (bits != 0) {
				p += __builtin_ctz(bits);
				if (t != NULL)
					out += __builtin_ctz(bits);
				goto stop;
			}
			p += 16;
			if (t != NULL)
				out += 16;
		}
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		/* (after SSE2: the last eight to fifteen bytes of the text) */
		/* Eight bytes a step through the plain run: the lowest byte
		 * flagged is exactly the first J_STR byte (a borrow only
		 * carries upwards, out of a byte that is flagged itself). */
		while (end - p >= 8) {
			const uint64_t ones = 0x0101010101010101u, high = ones << 7;
			uint64_t x, q, b, m;

			memcpy(&x, p, sizeof(x));
			q = x ^ ('"' * ones);
			b = x ^ ('\\' * ones);
			m = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - 0x20 * ones) & ~x) | x;
			if (t != NULL)
				memcpy(out, &x, sizeof(x));
			if ((m &= high) != 0) {
				p += __builtin_ctzll(m) >> 3;
				if (t != NULL)
					out += __builtin_ctzll(m) >> 3;
				goto stop;
			}
			p += 8;
			if (t != NULL)
				out += 8;
		}
#endif
		while (p < end && !(json_class[*p] & J_STR)) {
			if (t != NULL)
				*out++ = (char)*p;
			p++;
		}
#if defined(__SSE2__) || (defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
	stop: /* at the first J_STR byte of the run, or at END: not scanned twice */
#endif
		if (p == end) {
			why = "unterminated string";
			goto fail;
		}
		if (*p == '"')
			break;
		if (*p == '\\') {
			if (end - p < 2) {
				p = end;
				why = "unterminated string";
				goto fail;
			}
			/* the one-character escapes: what they stand for */
			if (unescape[p[1]] != 0) {
				if (t != NULL)
					*out++ = (char)unescape[p[1]];
				p += 2;
				continue;
			}
			if (p[1] != 'u') {
				why = "invalid escape";
				goto fail;
			}
			if (end - p < 6 || (cu = hex4(p + 2)) < 0) {
				why = "invalid \\u escape";
				goto fail;
			}
			if (cu == 0) {
				why = "\\u0000 in a string";
				goto fail;
			}
			if (cu >= 0xd800 && cu <= 0xdfff) {
				/* Only a high surrogate escape followed by a low one
				 * is a character; alone they have no UTF-8 form. */
				if (cu >= 0xdc00 || end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
				    (cu = hex4(p + 8)) < 0xdc00 || cu > 0xdfff) {
					why = "unpaired UTF-16 surrogate in a \\u escape";
					goto fail;
				}
				if (t != NULL)
					cu = 0x10000 + ((hex4_known(p + 2) - 0xd800) << 10) +
					     (cu - 0xdc00);
				p += 6;
			}
			if (t != NULL)
				out = put_utf8(out, (unsigned)cu);
			p += 6;
		} else if (*p < 0x20) {
			why = "control character in a string";
			goto fail;
		} else {
			size_t k = utf8_seq(p, (size_t)(end - p));

			if (k == 0) {
				why = "invalid UTF-8";
				goto fail;
			}
			if (t != NULL) {
				memcpy(out, p, k);
				out += k;
			}
			p += k;
		}
	}
	if (t != NULL) {
		*out++ = '\0';
		t->pool = out;
		if (in_key)
			key = str;
		else
			nd->valuestring = str;
	}
	p++;
	if (in_key) {
		in_key = false;
		SKIP_WS();
		if (p == end)
			goto eof;
		if (*p != ':') {
			why = "expected ':'";
			goto unexpected;
		}
		p++;
		SKIP_WS();
		if (p == end)
			goto eof;
		goto value;
	}
	/* fall through */

after: /* just after a value */
	if (depth == 0)
		goto done;
	SKIP_WS();
	if (p == end)
		goto eof;
	if (*p == ',') {
		p++;
		SKIP_WS();
		if (p == end)
			goto eof;
		if (stack[depth - 1] == '[')
			goto value;
		goto key;
	}
	if (*p == stack[depth - 1] + 2) {
		p++;
		depth--;
		/* As cJSON links them: the head's prev is the tail. */
		if (t != NULL)
			parent[depth]->child->prev = last[depth];
		goto after;
	}
	why = stack[depth - 1] == '[' ? "expected ',' or ']'" : "expected ',' or '}'";
	goto unexpected;

done:
	SKIP_WS();
#undef SKIP_WS
	if (p < end) {
		why = "trailing data after the JSON value";
		if (*p >= 0x80 && utf8_seq(p, (size_t)(end - p)) == 0)
			why = "invalid UTF-8";
		goto fail;
	}
	jc->events = events;
	jc->values = values;
	return JSON_STRICT_OK;

eof:
	why = "unexpected end of input";
	goto fail;
unexpected: /* WHY says what was expected; the byte itself may say more */
	if (*p >= 0x80 && utf8_seq(p, (size_t)(end - p)) == 0)
		why = "invalid UTF-8";
	else if (*p < 0x20)
		why = "control character outside a string";
	goto fail;
fail:
	jc->where = (size_t)(p - base);
	jc->why = why;
	return JSON_STRICT_INVALID;
oom: /* building only: T->oom says so */
	jc->where = (size_t)(p - base);
	jc->why = "out of memory";
	return JSON_STRICT_INVALID;
}

enum json_strict_status
json_strict_check(
    const char *text, size_t n, size_t max_events, size_t max_values, struct json_strict_check *jc)
{
	return scan(text, n, max_events, max_values, jc, NULL);
}

enum json_strict_status
json_strict_check_build(const char *text, size_t n, size_t max_events, size_t max_values,
    struct json_strict_check *jc, struct json_strict_tree *t)
{
	t->root = NULL;
	t->oom = false;
	return scan(text, n, max_events, max_values, jc, t);
}

cJSON *
json_strict_build(const char *text, size_t n)
{
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(text, n, &end, 0);

	/* A parser that stopped early would drop data silently: refuse. */
	while (v != NULL && end < text + n && json_strict_space((unsigned char)*end))
		end++;
	if (v != NULL && end != text + n) {
		cJSON_Delete(v);
		v = NULL;
	}
	return v;
}

cJSON *
json_strict_parse(const char *text, size_t n, size_t *where, const char **why)
{
	struct json_strict_check jc;
	cJSON *v;

	if (json_strict_check(text, n, 0, 0, &jc) != JSON_STRICT_OK) {
		*where = jc.where;
		*why = jc.why;
		return NULL;
	}
	v = json_strict_build(text + jc.start, n - jc.start);
	if (v == NULL) {
		*where = jc.start;
		*why = "out of memory";
	}
	return v;
}

cJSON *
json_strict_number(double x)
{
	char buf[40];

	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	return cJSON_CreateRaw(buf);
}

cJSON *
json_strict_int(int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return cJSON_CreateRaw(buf);
}
