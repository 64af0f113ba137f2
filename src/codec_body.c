/* codec_body.c: request bodies and what is built around them: the body
 * parse (json_strict.c's checker with the codec's limits and messages),
 * gzip, and the dead-letter documents.  Nothing here knows a family. */
#define ZLIB_CONST
#include "codec.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Format into ERR (when not NULL and ERRLEN > 0). */
static void __attribute__((format(printf, 3, 4)))
body_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
}

enum codec_status
codec_body_parse(const char *body, size_t len, const struct codec_limits *lim, cJSON **events,
    char *err, size_t errlen)
{
	struct json_strict_check jc;
	enum codec_status st;
	size_t line = 1, col = 1;
	cJSON *v;

	*events = NULL;
	if (body == NULL || len == 0) {
		body_fail(err, errlen, "body: empty");
		return CODEC_INVALID;
	}
	/* The tree is built in the checking pass; the shape is known only
	 * after it, so a body of a bare value costs its tree too. */
	switch (json_tree_check(body, len, lim != NULL ? lim->max_events : 0,
	    lim != NULL ? lim->max_values : 0, true, &jc, &v)) {
	case JSON_STRICT_OK:
		st = CODEC_OK;
		break;
	case JSON_STRICT_TOO_LARGE:
		st = CODEC_TOO_LARGE;
		break;
	default:
		st = CODEC_INVALID;
		break;
	}
	if (st == CODEC_TOO_LARGE) {
		body_fail(err, errlen, "body: more than %zu %s", jc.limit, jc.why);
		return st;
	}
	if (st != CODEC_OK) {
		if (strcmp(jc.why, "empty") == 0) {
			body_fail(err, errlen, "body: empty");
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
		body_fail(err, errlen, "body: %s at line %zu, column %zu (byte %zu)", jc.why, line,
		    col, jc.where);
		return st;
	}
	if (v == NULL) {
		body_fail(err, errlen, "body: out of memory");
		return CODEC_INVALID;
	}
	if (body[jc.start] != '[' && body[jc.start] != '{') {
		json_tree_free(v);
		body_fail(err, errlen, "body: not a JSON array or object");
		return CODEC_INVALID;
	}
	if (jc.events == 0) {
		json_tree_free(v);
		body_fail(err, errlen, "body: empty array");
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
		body_fail(err, errlen, "gzip: empty input");
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
		body_fail(err, errlen, "gzip: cannot initialise zlib");
		return CODEC_INVALID;
	}
	buf = malloc(cap + 1);
	if (buf == NULL) {
		inflateEnd(&zs);
		body_fail(err, errlen, "gzip: out of memory");
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
				body_fail(err, errlen, "gzip: more than %zu bytes after inflating",
				    max_out);
				break;
			}
			nbuf = realloc(buf, ncap + 1);
			if (nbuf == NULL) {
				body_fail(err, errlen, "gzip: out of memory");
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
			body_fail(err, errlen, "gzip: trailing data after the compressed stream");
			break;
		}
		if (rc == Z_OK)
			continue;
		if (rc == Z_BUF_ERROR && used == cap)
			continue;
		if (rc == Z_BUF_ERROR && ileft == 0) {
			body_fail(err, errlen, "gzip: truncated stream");
			break;
		}
		body_fail(
		    err, errlen, "gzip: corrupt data (%s)", zs.msg != NULL ? zs.msg : "bad stream");
		break;
	}
	inflateEnd(&zs);
	/* The stream may end exactly on the extra byte. */
	if (st == CODEC_OK && used > max_out) {
		st = CODEC_TOO_LARGE;
		body_fail(err, errlen, "gzip: more than %zu bytes after inflating", max_out);
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

/* ------------------------------------------------------------ dead letters */

char *
codec_base64(const void *data, size_t n)
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
	*text = len == 0 || (memchr(data, '\0', len) == NULL && json_strict_utf8_valid(data, len));
	if (*text) {
		if ((s = malloc(len + 1)) == NULL)
			return NULL;
		if (len > 0)
			memcpy(s, data, len);
		s[len] = '\0';
	} else if ((s = codec_base64(data, len)) == NULL) {
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
