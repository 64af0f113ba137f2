/* codec_body.c: request bodies and text: strict JSON, gzip, timestamps, dead letters. */
#define ZLIB_CONST
#include "codec.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

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
codec_utf8_valid(const char *s, size_t n)
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
codec_json_space(int c)
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

static const char json_too_deep[] = "nesting deeper than " JSON_STR(CODEC_JSON_MAX_DEPTH) " levels";
static const char json_long_number[] =
    "invalid number: more than " JSON_STR(CODEC_JSON_MAX_NUMBER) " characters";

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

/* What json_check() found. */
struct json_check {
	size_t start;	 /* offset of the value: after a BOM and whitespace */
	size_t events;	 /* top-level array: its elements; object: 1; else 0 */
	size_t where;	 /* CODEC_INVALID: byte offset of the problem */
	const char *why; /* CODEC_INVALID: what was wrong ("empty" if nothing
			  * but whitespace); CODEC_TOO_LARGE: what was counted */
	size_t limit;	 /* CODEC_TOO_LARGE: the bound passed */
};

/*
 * Check that TEXT (N bytes, no NUL needed) is one RFC 8259 JSON value with
 * only whitespace around it, and count events and values on the way, in
 * one pass, with no allocation and no recursion: STACK holds the kind of
 * every open container.  MAX_EVENTS / MAX_VALUES of 0 mean no bound; the
 * pass stops at the first value past either.  Beyond RFC 8259: valid UTF-8
 * only, no \u0000 and no unpaired surrogate escape (neither fits a C
 * string of UTF-8), at most CODEC_JSON_MAX_DEPTH levels and
 * CODEC_JSON_MAX_NUMBER characters a number; a leading UTF-8 BOM is
 * skipped, as RFC 8259 section 8.1 allows.
 *
 * Why cJSON may then parse TEXT + START with no further checks: it sees
 * one valid value followed by nothing but whitespace, so none of its
 * leniencies (every byte <= 0x20 taken as whitespace, numbers as loose as
 * strtod() reads them: "01", "1.", "-.5"; \u escapes with non-hex digits)
 * and none of its error paths are reached, among them the read one byte
 * past the length in cJSON < 1.7.18 (#800), which needs a text ending just
 * after a ',' in an object; all its reads on a valid text are bounded by
 * the length, so no NUL is needed.  Its recursion is bounded by our depth
 * (its own limit is 1000), the nodes it allocates by the values counted
 * (one per value), and its numbers by CODEC_JSON_MAX_NUMBER (cJSON <
 * 1.7.18 splits longer ones at 63 bytes).
 */
static enum codec_status
json_check(const char *text, size_t n, size_t max_events, size_t max_values, struct json_check *jc)
{
	const unsigned char *const base = (const unsigned char *)text, *const end = base + n;
	const unsigned char *p = base, *num;
	unsigned char stack[CODEC_JSON_MAX_DEPTH]; /* '[' or '{' of each open container */
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
		return CODEC_TOO_LARGE;
	}
	if (++values > max_values) {
		jc->why = "JSON values";
		jc->limit = max_values;
		return CODEC_TOO_LARGE;
	}
	switch (*p) {
	case '[':
	case '{':
		if (depth == CODEC_JSON_MAX_DEPTH) {
			why = json_too_deep;
			goto fail;
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
		if (p - num > CODEC_JSON_MAX_NUMBER) {
			p = num;
			why = json_long_number;
			goto fail;
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
	for (;;) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
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
			if ((m &= high) != 0) {
				p += __builtin_ctzll(m) >> 3;
				break;
			}
			p += 8;
		}
#endif
		while (p < end && !(json_class[*p] & J_STR))
			p++;
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
			switch (p[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p += 2;
				continue;
			case 'u':
				break;
			default:
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
				p += 6;
			}
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
			p += k;
		}
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
	return CODEC_OK;

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
	return CODEC_INVALID;
}

/* cJSON's tree of TEXT (N bytes), which json_check() passed (see there
 * why that is enough); NULL only when cJSON runs out of memory. */
static cJSON *
json_build(const char *text, size_t n)
{
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(text, n, &end, 0);

	/* A parser that stopped early would drop data silently: refuse. */
	while (v != NULL && end < text + n && codec_json_space((unsigned char)*end))
		end++;
	if (v != NULL && end != text + n) {
		cJSON_Delete(v);
		v = NULL;
	}
	return v;
}

cJSON *
codec_json_parse_strict(const char *text, size_t n, size_t *where, const char **why)
{
	struct json_check jc;
	cJSON *v;

	if (json_check(text, n, 0, 0, &jc) != CODEC_OK) {
		*where = jc.where;
		*why = jc.why;
		return NULL;
	}
	v = json_build(text + jc.start, n - jc.start);
	if (v == NULL) {
		*where = jc.start;
		*why = "out of memory";
	}
	return v;
}

enum codec_status
codec_body_parse(const char *body, size_t len, const struct codec_limits *lim, cJSON **events,
    char *err, size_t errlen)
{
	struct json_check jc;
	enum codec_status st;
	size_t line = 1, col = 1;
	cJSON *v;

	*events = NULL;
	if (body == NULL || len == 0) {
		codec_fail(err, errlen, "body: empty");
		return CODEC_INVALID;
	}
	st = json_check(
	    body, len, lim != NULL ? lim->max_events : 0, lim != NULL ? lim->max_values : 0, &jc);
	if (st == CODEC_TOO_LARGE) {
		codec_fail(err, errlen, "body: more than %zu %s", jc.limit, jc.why);
		return st;
	}
	if (st != CODEC_OK) {
		if (strcmp(jc.why, "empty") == 0) {
			codec_fail(err, errlen, "body: empty");
			return st;
		}
		for (size_t i = 0; i < jc.where; i++) {
			if (body[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		codec_fail(err, errlen, "body: %s at line %zu, column %zu (byte %zu)", jc.why, line,
		    col, jc.where);
		return st;
	}
	/* The shape is known before cJSON builds anything. */
	if (body[jc.start] != '[' && body[jc.start] != '{') {
		codec_fail(err, errlen, "body: not a JSON array or object");
		return CODEC_INVALID;
	}
	if (jc.events == 0) {
		codec_fail(err, errlen, "body: empty array");
		return CODEC_INVALID;
	}
	v = json_build(body + jc.start, len - jc.start);
	if (v != NULL && cJSON_IsObject(v)) {
		cJSON *arr = cJSON_CreateArray();

		if (arr == NULL || !cJSON_AddItemToArray(arr, v)) {
			cJSON_Delete(arr);
			cJSON_Delete(v);
			v = NULL;
		} else {
			v = arr;
		}
	}
	if (v == NULL) {
		codec_fail(err, errlen, "body: out of memory");
		return CODEC_INVALID;
	}
	*events = v;
	return CODEC_OK;
}

/* ------------------------------------------------------------ gzip */

bool
codec_is_gzip(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

enum codec_status
codec_gunzip(const void *in, size_t inlen, size_t max_out, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	enum codec_status st = CODEC_INVALID;
	const uint8_t *ip = in;
	size_t ileft = inlen, used = 0, cap, limit;
	z_stream zs;
	char *buf;

	*out = NULL;
	*outlen = 0;
	if (in == NULL || inlen == 0) {
		codec_fail(err, errlen, "gzip: empty input");
		return CODEC_INVALID;
	}
	if (max_out > SIZE_MAX - 2)
		max_out = SIZE_MAX - 2;
	/* Room for one byte past the cap: writing it proves the cap is exceeded. */
	limit = max_out + 1;
	cap = inlen > limit / 4 ? limit : inlen * 4;
	if (cap < 4096)
		cap = limit < 4096 ? limit : 4096;
	memset(&zs, 0, sizeof(zs));
	/* 15 + 32: largest window, gzip or zlib header detected. */
	if (inflateInit2(&zs, 15 + 32) != Z_OK) {
		codec_fail(err, errlen, "gzip: cannot initialise zlib");
		return CODEC_INVALID;
	}
	buf = malloc(cap + 1);
	if (buf == NULL) {
		inflateEnd(&zs);
		codec_fail(err, errlen, "gzip: out of memory");
		return CODEC_INVALID;
	}
	for (;;) {
		uInt ain, aout;
		int rc;

		if (used == cap) {
			size_t ncap = cap > limit / 2 ? limit : cap * 2;
			char *nbuf;

			if (cap == limit) {
				st = CODEC_TOO_LARGE;
				codec_fail(err, errlen, "gzip: more than %zu bytes after inflating",
				    max_out);
				break;
			}
			nbuf = realloc(buf, ncap + 1);
			if (nbuf == NULL) {
				codec_fail(err, errlen, "gzip: out of memory");
				break;
			}
			buf = nbuf;
			cap = ncap;
		}
		ain = ileft > UINT_MAX ? UINT_MAX : (uInt)ileft;
		aout = cap - used > UINT_MAX ? UINT_MAX : (uInt)(cap - used);
		zs.next_in = ip;
		zs.avail_in = ain;
		zs.next_out = (Bytef *)buf + used;
		zs.avail_out = aout;
		rc = inflate(&zs, Z_NO_FLUSH);
		ip += ain - zs.avail_in;
		ileft -= ain - zs.avail_in;
		used += aout - zs.avail_out;
		if (rc == Z_STREAM_END) {
			if (ileft == 0) {
				st = CODEC_OK;
				break;
			}
			/* Concatenated gzip members are one valid gzip file. */
			if (codec_is_gzip(ip, ileft) && inflateReset(&zs) == Z_OK)
				continue;
			codec_fail(err, errlen, "gzip: trailing data after the compressed stream");
			break;
		}
		if (rc == Z_OK)
			continue;
		if (rc == Z_BUF_ERROR && used == cap)
			continue;
		if (rc == Z_BUF_ERROR && ileft == 0) {
			codec_fail(err, errlen, "gzip: truncated stream");
			break;
		}
		codec_fail(
		    err, errlen, "gzip: corrupt data (%s)", zs.msg != NULL ? zs.msg : "bad stream");
		break;
	}
	inflateEnd(&zs);
	/* The stream may end exactly on the extra byte. */
	if (st == CODEC_OK && used > max_out) {
		st = CODEC_TOO_LARGE;
		codec_fail(err, errlen, "gzip: more than %zu bytes after inflating", max_out);
	}
	if (st != CODEC_OK) {
		free(buf);
		return st;
	}
	buf[used] = '\0';
	*out = buf;
	*outlen = used;
	return CODEC_OK;
}

/* ------------------------------------------------------------ timestamps */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* N decimal digits at S; stops at the first non-digit, so never reads past
 * a NUL. */
static bool
digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool
codec_parse_timestamp(const char *s, int64_t *us)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac = 0, secs;
	const char *p = s;

	if (s == NULL)
		return false;
	if (!digits(p, 4, &y) || p[4] != '-' || !digits(p + 5, 2, &mo) || p[7] != '-' ||
	    !digits(p + 8, 2, &d))
		return false;
	p += 10;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	if (!digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi) || p[5] != ':' ||
	    !digits(p + 6, 2, &sec))
		return false;
	p += 8;
	if (*p == '.' || *p == ',') {
		int n = 0;

		p++;
		if (*p < '0' || *p > '9')
			return false;
		for (; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 6)
				frac = frac * 10 + (*p - '0');
		for (; n < 6; n++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
		if (!digits(p, 2, &oh))
			return false;
		p += 2;
		if (*p != '\0') {
			if (*p == ':')
				p++;
			if (!digits(p, 2, &om))
				return false;
			p += 2;
		}
		if (oh > 23 || om > 59)
			return false;
	}
	if (*p != '\0')
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
		return false;
	secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	       sign * (oh * 3600 + om * 60);
	if (secs < days_from_civil(1, 1, 1) * 86400 || secs >= days_from_civil(10000, 1, 1) * 86400)
		return false;
	*us = secs * 1000000 + frac;
	return true;
}

/* Split T (in UNIT per second) into civil time; floor division so that
 * instants before 1970 still print the right way round. */
static void
format_time(int64_t t, int64_t unit, int width, char out[CODEC_TIME_SIZE])
{
	int64_t secs = t / unit, frac = t % unit, days, rem, y;
	int m, d;

	if (frac < 0) {
		frac += unit;
		secs--;
	}
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	snprintf(out, CODEC_TIME_SIZE, "%04lld-%02d-%02dT%02d:%02d:%02d.%0*lldZ", (long long)y, m,
	    d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), width, (long long)frac);
}

void
codec_format_ms(int64_t unix_ms, char out[CODEC_TIME_SIZE])
{
	format_time(unix_ms, 1000, 3, out);
}

void
codec_format_us(int64_t us, char out[CODEC_TIME_SIZE])
{
	format_time(us, 1000000, 6, out);
}

/* ------------------------------------------------------------ dead letters */

static char *
base64(const void *data, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *p = data;
	char *out, *o;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	out = malloc((n + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	o = out;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 0x3f];
		*o++ = i + 1 < n ? tab[(v >> 6) & 0x3f] : '=';
		*o++ = i + 2 < n ? tab[v & 0x3f] : '=';
	}
	*o = '\0';
	return out;
}

cJSON *
codec_json_bytes(const void *data, size_t len, bool *text)
{
	char *s;
	cJSON *item;

	/* A JSON string cannot carry invalid UTF-8, and cJSON's would stop
	 * at a NUL: such bytes go as base64. */
	*text = len == 0 || (memchr(data, '\0', len) == NULL && codec_utf8_valid(data, len));
	if (*text) {
		if ((s = malloc(len + 1)) == NULL)
			return NULL;
		if (len > 0)
			memcpy(s, data, len);
		s[len] = '\0';
	} else if ((s = base64(data, len)) == NULL) {
		return NULL;
	}
	item = cJSON_CreateString(s);
	free(s);
	return item;
}

bool
codec_json_add(cJSON *obj, const char *key, cJSON *item)
{
	if (item == NULL)
		return false;
	if (!cJSON_AddItemToObject(obj, key, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

static cJSON *
string_or_null(const char *s)
{
	return s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull();
}

char *
codec_dead_letter_json(const cJSON *event_or_null, const char *raw_body_or_null, size_t raw_len,
    const char *error, const char *correlation_id, const char *received_at)
{
	cJSON *doc = cJSON_CreateObject(), *ev = NULL, *body = NULL;
	char *out = NULL;
	bool ok;

	if (doc == NULL)
		return NULL;
	if (event_or_null != NULL) {
		ev = cJSON_Duplicate(event_or_null, 1);
	} else if (raw_body_or_null != NULL) {
		bool text;

		if ((ev = codec_json_bytes(raw_body_or_null, raw_len, &text)) != NULL)
			body = cJSON_CreateString(text ? "text" : "base64");
		if (ev == NULL || body == NULL) {
			cJSON_Delete(ev);
			cJSON_Delete(body);
			cJSON_Delete(doc);
			return NULL;
		}
	} else {
		ev = cJSON_CreateNull();
	}
	/* codec_json_add() takes each item, added or not, so nothing leaks when
	 * the chain stops early. */
	ok = codec_json_add(doc, "error", string_or_null(error));
	ok = codec_json_add(doc, "event", ok ? ev : NULL) && ok;
	if (!ok)
		cJSON_Delete(ev);
	if (body != NULL) {
		ok = ok && codec_json_add(doc, "body", body);
		if (!ok)
			cJSON_Delete(body);
	}
	ok = ok && codec_json_add(doc, "correlationId", string_or_null(correlation_id));
	ok = ok && codec_json_add(doc, "receivedAt", string_or_null(received_at));
	if (ok)
		out = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return out;
}
