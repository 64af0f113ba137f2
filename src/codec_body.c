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

/* What cJSON lets through but JSON (or C strings) cannot hold: invalid
 * UTF-8, raw control characters in strings, and \u0000, which would end
 * the C string early and silently drop the rest of the value. */
static bool
json_scan(const char *text, size_t n, size_t *where, const char **why)
{
	const unsigned char *p = (const unsigned char *)text;
	bool in_string = false;
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];

		if (c >= 0x80) {
			size_t k = utf8_seq(p + i, n - i);

			if (k == 0) {
				*where = i;
				*why = "invalid UTF-8";
				return false;
			}
			i += k;
			continue;
		}
		if (!in_string) {
			in_string = c == '"';
			i++;
			continue;
		}
		if (c == '"') {
			in_string = false;
		} else if (c < 0x20) {
			*where = i;
			*why = "control character in a string";
			return false;
		} else if (c == '\\') {
			if (n - i >= 6 && memcmp(p + i + 1, "u0000", 5) == 0) {
				*where = i;
				*why = "\\u0000 in a string";
				return false;
			}
			/* Skip the escaped character, which may be a quote;
			 * a malformed escape is left to cJSON to reject. */
			i++;
		}
		i++;
	}
	return true;
}

bool
codec_json_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parse all of TEXT (N bytes) strictly; on failure *WHERE and *WHY.
 * TEXT[N] must be readable and NUL: cJSON before 1.7.18 (issue #800)
 * reads one byte past the length when the text ends just after a ',' in
 * an object. */
cJSON *
codec_json_parse_strict(const char *text, size_t n, size_t *where, const char **why)
{
	const char *end = NULL;
	cJSON *v;
	size_t i;

	if (!json_scan(text, n, where, why))
		return NULL;
	for (i = 0; i < n && codec_json_space((unsigned char)text[i]); i++)
		;
	if (i == n) {
		*where = i;
		*why = "empty";
		return NULL;
	}
	v = cJSON_ParseWithLengthOpts(text, n, &end, 0);
	if (v == NULL) {
		*where = end != NULL && end >= text && end <= text + n ? (size_t)(end - text) : 0;
		*why = "invalid JSON";
		return NULL;
	}
	for (i = (size_t)(end - text); i < n && codec_json_space((unsigned char)text[i]); i++)
		;
	if (i < n) {
		cJSON_Delete(v);
		*where = i;
		*why = "trailing data after the JSON value";
		return NULL;
	}
	return v;
}

bool
codec_body_parse(const char *body, size_t len, cJSON **events, char *err, size_t errlen)
{
	const char *why = NULL;
	size_t where = 0, line = 1, col = 1;
	char *copy;
	cJSON *v;

	*events = NULL;
	if (body == NULL || len == 0)
		return codec_fail(err, errlen, "body: empty");
	/* The body need not be NUL-terminated, codec_json_parse_strict()'s text must. */
	copy = malloc(len + 1);
	if (copy == NULL)
		return codec_fail(err, errlen, "body: out of memory");
	memcpy(copy, body, len);
	copy[len] = '\0';
	v = codec_json_parse_strict(copy, len, &where, &why);
	free(copy);
	if (v == NULL) {
		if (strcmp(why, "empty") == 0)
			return codec_fail(err, errlen, "body: empty");
		for (size_t i = 0; i < where && i < len; i++) {
			if (body[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		return codec_fail(err, errlen, "body: %s at line %zu, column %zu (byte %zu)", why,
		    line, col, where);
	}
	if (cJSON_IsObject(v)) {
		cJSON *arr = cJSON_CreateArray();

		if (arr == NULL || !cJSON_AddItemToArray(arr, v)) {
			cJSON_Delete(arr);
			cJSON_Delete(v);
			return codec_fail(err, errlen, "body: out of memory");
		}
		v = arr;
	} else if (!cJSON_IsArray(v)) {
		cJSON_Delete(v);
		return codec_fail(err, errlen, "body: not a JSON array or object");
	} else if (v->child == NULL) {
		cJSON_Delete(v);
		return codec_fail(err, errlen, "body: empty array");
	}
	*events = v;
	return true;
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

/* Add ITEM (taken in every case) to OBJ under KEY. */
static bool
json_add(cJSON *obj, const char *key, cJSON *item)
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
		/* A JSON string cannot carry invalid UTF-8, and cJSON's would
		 * stop at a NUL: such bodies go as base64. */
		bool text = memchr(raw_body_or_null, '\0', raw_len) == NULL &&
			    codec_utf8_valid(raw_body_or_null, raw_len);
		char *s = text ? malloc(raw_len + 1) : base64(raw_body_or_null, raw_len);

		if (s != NULL) {
			if (text) {
				memcpy(s, raw_body_or_null, raw_len);
				s[raw_len] = '\0';
			}
			ev = cJSON_CreateString(s);
			body = cJSON_CreateString(text ? "text" : "base64");
			free(s);
		}
		if (ev == NULL || body == NULL) {
			cJSON_Delete(ev);
			cJSON_Delete(body);
			cJSON_Delete(doc);
			return NULL;
		}
	} else {
		ev = cJSON_CreateNull();
	}
	/* json_add() takes each item, added or not, so nothing leaks when
	 * the chain stops early. */
	ok = json_add(doc, "error", string_or_null(error));
	ok = json_add(doc, "event", ok ? ev : NULL) && ok;
	if (!ok)
		cJSON_Delete(ev);
	if (body != NULL) {
		ok = ok && json_add(doc, "body", body);
		if (!ok)
			cJSON_Delete(body);
	}
	ok = ok && json_add(doc, "correlationId", string_or_null(correlation_id));
	ok = ok && json_add(doc, "receivedAt", string_or_null(received_at));
	if (ok)
		out = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return out;
}
