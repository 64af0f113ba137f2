/* codec.c: request bodies to validated Protobuf events and back to enriched
 * JSON, driven by the protobuf-c descriptors plus one rule table per event
 * family, so a second family is a second table rather than new code. */
#define ZLIB_CONST
#include "codec.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "event.pb-c.h"
#include "ids.h"

/* Long enough for every path a schema names. */
#define PATH_MAX_LEN 256
/* User keys are cut to this many bytes in error messages. */
#define KEY_SHOW_MAX 100
/* Integers beyond this cannot be told apart as IEEE doubles. */
#define MAX_SAFE_INT 9007199254740991.0

/* ------------------------------------------------------------ Holded table */

#define STAMP_CORE "X-Message-Stamp-Holded\\Core\\Messaging\\Messenger\\Stamp\\"
#define STAMP_SHARED "X-Message-Stamp-Holded\\Shared\\Infrastructure\\Messenger\\Stamp\\"

static const struct codec_field holded_fields[] = {
    {"data", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL},
    {"data.id", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL},
    {"data.amount", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL},
    {"attributes", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL},
    {"attributes.type", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL},
    {"attributes.targetSubscription", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL},
    {"attributes.timestampStamp", STAMP_CORE "TimestampStamp", CODEC_KIND_TIMESTAMP,
	CODEC_F_REQUIRED | CODEC_F_STAMP, "dispatchedAt"},
    {"attributes.messageIdStamp", STAMP_CORE "MessageIdStamp", CODEC_KIND_UUID,
	CODEC_F_REQUIRED | CODEC_F_STAMP, "id"},
    {"attributes.newContextStamp", STAMP_SHARED "NewContextStamp", CODEC_KIND_PLAIN,
	CODEC_F_REQUIRED | CODEC_F_STAMP, NULL},
    {"attributes.newContextStamp.accountId", NULL, CODEC_KIND_UUID, CODEC_F_REQUIRED, NULL},
    {"attributes.newContextStamp.userId", NULL, CODEC_KIND_UUID, CODEC_F_REQUIRED, NULL},
    {"attributes.amplitudeTrackStamp", STAMP_SHARED "AmplitudeTrackStamp", CODEC_KIND_PLAIN,
	CODEC_F_STAMP, NULL},
    {"attributes.amplitudeTrackStamp.id", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL},
};

/* The seed's table, in its column order; "data" is the enriched event. */
static const struct codec_column holded_columns[] = {
    {"timestamp_stamp", CODEC_COL_TIMESTAMPTZ, "attributes.timestampStamp"},
    {"message_id_stamp", CODEC_COL_UUID, "attributes.messageIdStamp"},
    {"correlation_id", CODEC_COL_UUID, "metadata.correlationId"},
    {"type", CODEC_COL_TEXT, "attributes.type"},
    {"target_subscription", CODEC_COL_TEXT, "attributes.targetSubscription"},
    {"new_context_account_id", CODEC_COL_UUID, "attributes.newContextStamp.accountId"},
    {"new_context_user_id", CODEC_COL_UUID, "attributes.newContextStamp.userId"},
    {"data", CODEC_COL_JSONB, ""},
};

const struct codec_schema codec_schema_holded = {
    .name = "holded",
    .subject = "events.raw-value",
    .raw_topic = "events.raw",
    .dead_letter_topic = "events.dead.letter",
    .message = &collectord__v1__event__descriptor,
    .fields = holded_fields,
    .nfields = sizeof(holded_fields) / sizeof(holded_fields[0]),
    .extra_field = "extra",
    .original_ids_path = "attributes.originalIds",
    .table = "events",
    .columns = holded_columns,
    .ncolumns = sizeof(holded_columns) / sizeof(holded_columns[0]),
    .partition_column = "timestamp_stamp",
};

/* ------------------------------------------------------------ helpers */

static bool __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

static void
path_join(char *out, const char *parent, const char *name)
{
	snprintf(out, PATH_MAX_LEN, "%s%s%s", parent, *parent ? "." : "", name);
}

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

static bool
utf8_valid(const char *s, size_t n)
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

static bool
json_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parse all of TEXT (N bytes) strictly; on failure *WHERE and *WHY.
 * TEXT[N] must be readable and NUL: cJSON before 1.7.18 (issue #800)
 * reads one byte past the length when the text ends just after a ',' in
 * an object. */
static cJSON *
json_parse_strict(const char *text, size_t n, size_t *where, const char **why)
{
	const char *end = NULL;
	cJSON *v;
	size_t i;

	if (!json_scan(text, n, where, why))
		return NULL;
	for (i = 0; i < n && json_space((unsigned char)text[i]); i++)
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
	for (i = (size_t)(end - text); i < n && json_space((unsigned char)text[i]); i++)
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
		return fail(err, errlen, "body: empty");
	/* The body need not be NUL-terminated, json_parse_strict()'s text must. */
	copy = malloc(len + 1);
	if (copy == NULL)
		return fail(err, errlen, "body: out of memory");
	memcpy(copy, body, len);
	copy[len] = '\0';
	v = json_parse_strict(copy, len, &where, &why);
	free(copy);
	if (v == NULL) {
		if (strcmp(why, "empty") == 0)
			return fail(err, errlen, "body: empty");
		for (size_t i = 0; i < where && i < len; i++) {
			if (body[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		return fail(err, errlen, "body: %s at line %zu, column %zu (byte %zu)", why, line,
		    col, where);
	}
	if (cJSON_IsObject(v)) {
		cJSON *arr = cJSON_CreateArray();

		if (arr == NULL || !cJSON_AddItemToArray(arr, v)) {
			cJSON_Delete(arr);
			cJSON_Delete(v);
			return fail(err, errlen, "body: out of memory");
		}
		v = arr;
	} else if (!cJSON_IsArray(v)) {
		cJSON_Delete(v);
		return fail(err, errlen, "body: not a JSON array or object");
	} else if (v->child == NULL) {
		cJSON_Delete(v);
		return fail(err, errlen, "body: empty array");
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
		fail(err, errlen, "gzip: empty input");
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
		fail(err, errlen, "gzip: cannot initialise zlib");
		return CODEC_INVALID;
	}
	buf = malloc(cap + 1);
	if (buf == NULL) {
		inflateEnd(&zs);
		fail(err, errlen, "gzip: out of memory");
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
				fail(err, errlen, "gzip: more than %zu bytes after inflating",
				    max_out);
				break;
			}
			nbuf = realloc(buf, ncap + 1);
			if (nbuf == NULL) {
				fail(err, errlen, "gzip: out of memory");
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
			fail(err, errlen, "gzip: trailing data after the compressed stream");
			break;
		}
		if (rc == Z_OK)
			continue;
		if (rc == Z_BUF_ERROR && used == cap)
			continue;
		if (rc == Z_BUF_ERROR && ileft == 0) {
			fail(err, errlen, "gzip: truncated stream");
			break;
		}
		fail(
		    err, errlen, "gzip: corrupt data (%s)", zs.msg != NULL ? zs.msg : "bad stream");
		break;
	}
	inflateEnd(&zs);
	/* The stream may end exactly on the extra byte. */
	if (st == CODEC_OK && used > max_out) {
		st = CODEC_TOO_LARGE;
		fail(err, errlen, "gzip: more than %zu bytes after inflating", max_out);
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
	return f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE;
}

enum map_role { MAP_NONE, MAP_EXTRA, MAP_ORIGINALS };

static enum map_role
map_role(const struct codec_schema *s, const ProtobufCFieldDescriptor *f, const char *fpath)
{
	if (!is_map(f))
		return MAP_NONE;
	if (s->extra_field != NULL && strcmp(f->name, s->extra_field) == 0)
		return MAP_EXTRA;
	if (s->original_ids_path != NULL && strcmp(fpath, s->original_ids_path) == 0)
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

struct enc {
	const struct codec_schema *s;
	char *err;
	size_t errlen;
	/* Where converted ids keep their original text, while in scope. */
	ProtobufCMessage *orig_msg;
	const ProtobufCFieldDescriptor *orig_field;
	const char *orig_prefix;
};

static bool enc_message(struct enc *e, const cJSON *obj, ProtobufCMessage *m, const char *path);

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
	while (json_space((unsigned char)*s))
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
		return codec_parse_timestamp(text, &us);
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
		    json_parse_strict(cur->valuestring, strlen(cur->valuestring), &where, &why);
		if (*parsed == NULL) {
			/* "{6c1f...}" is a braced UUID, not broken JSON. */
			if (f->type == PROTOBUF_C_TYPE_STRING && plain_ok(rule, cur->valuestring)) {
				*out = cur;
				return true;
			}
			return fail(e->err, e->errlen, "%s: stamp string is not valid JSON", fpath);
		}
		cur = *parsed;
	}
	if (cJSON_IsArray(cur)) {
		if (cur->child == NULL || cur->child->next != NULL)
			return fail(e->err, e->errlen,
			    "%s: stamp array must hold exactly one element", fpath);
		cur = cur->child;
	}
	if (f->type != PROTOBUF_C_TYPE_MESSAGE && rule->wrapper != NULL && cJSON_IsObject(cur)) {
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(cur, rule->wrapper);
		char show[KEY_SHOW_MAX + 4];
		const char *dup;

		if (!find_duplicate(cur, &dup)) {
			if (dup == NULL)
				return fail(e->err, e->errlen, "%s: out of memory", fpath);
			return fail(
			    e->err, e->errlen, "%s.%s: duplicate key", fpath, key_show(dup, show));
		}
		if (w == NULL)
			return fail(
			    e->err, e->errlen, "%s: object without \"%s\"", fpath, rule->wrapper);
		for (const cJSON *c = cur->child; c != NULL; c = c->next)
			if (c != w)
				return fail(e->err, e->errlen, "%s.%s: unknown key", fpath,
				    key_show(c->string, show));
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

static bool
enc_string(struct enc *e, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const cJSON *v, ProtobufCMessage *m, const char *fpath)
{
	const char *text;
	char canon[IDS_TEXT_SIZE];
	bool ok = true;
	int64_t us;

	if (!cJSON_IsString(v))
		return fail(e->err, e->errlen, "%s: not a string", fpath);
	text = v->valuestring;
	if (rule != NULL && (rule->flags & CODEC_F_REQUIRED) && *text == '\0')
		return fail(e->err, e->errlen, "%s: empty", fpath);
	if (rule != NULL && rule->kind == CODEC_KIND_UUID) {
		uint8_t id[16];

		if (!ids_parse(text, id, NULL))
			return fail(e->err, e->errlen, "%s: not a UUID, ULID or ObjectId", fpath);
		ids_format(id, canon);
		if (strcmp(canon, text) != 0)
			orig_add(e, fpath, text, &ok);
		text = canon;
	} else if (rule != NULL && rule->kind == CODEC_KIND_TIMESTAMP) {
		if (!codec_parse_timestamp(text, &us))
			return fail(e->err, e->errlen, "%s: not an RFC 3339 timestamp", fpath);
	}
	if (ok)
		ok = (*(char **)field_at(m, f) = strdup(text)) != NULL;
	if (!ok)
		return fail(e->err, e->errlen, "%s: out of memory", fpath);
	return true;
}

/* Integral numbers in [LO, HI]; signed types get "not an integer",
 * unsigned ones "not a non-negative integer". */
static bool
enc_integer(struct enc *e, const cJSON *v, double lo, double hi, double *out, const char *fpath)
{
	double x;

	if (!cJSON_IsNumber(v))
		return fail(e->err, e->errlen, "%s: not a number", fpath);
	x = v->valuedouble;
	if (lo >= 0 && (x < 0 || floor(x) != x))
		return fail(e->err, e->errlen, "%s: not a non-negative integer", fpath);
	if (floor(x) != x)
		return fail(e->err, e->errlen, "%s: not an integer", fpath);
	if (x < lo || x > hi)
		return fail(e->err, e->errlen, "%s: out of range", fpath);
	*out = x;
	return true;
}

static bool
enc_value(struct enc *e, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const cJSON *v, ProtobufCMessage *m, const char *fpath)
{
	void *p = field_at(m, f);
	double x;

	if (cJSON_IsNull(v)) {
		if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
			return fail(e->err, e->errlen, "%s: missing", fpath);
		return true;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return enc_string(e, f, rule, v, m, fpath);
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_FLOAT:
		if (!cJSON_IsNumber(v))
			return fail(e->err, e->errlen, "%s: not a number", fpath);
		x = v->valuedouble;
		if (!isfinite(x) ||
		    (f->type == PROTOBUF_C_TYPE_FLOAT && fabs(x) > 3.4028234663852886e38))
			return fail(e->err, e->errlen, "%s: out of range", fpath);
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)p = (float)x;
		else
			*(double *)p = x;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (!cJSON_IsBool(v))
			return fail(e->err, e->errlen, "%s: not a boolean", fpath);
		*(protobuf_c_boolean *)p = cJSON_IsTrue(v);
		break;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (!enc_integer(e, v, INT32_MIN, INT32_MAX, &x, fpath))
			return false;
		*(int32_t *)p = (int32_t)x;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (!enc_integer(e, v, 0, UINT32_MAX, &x, fpath))
			return false;
		*(uint32_t *)p = (uint32_t)x;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (!enc_integer(e, v, -MAX_SAFE_INT, MAX_SAFE_INT, &x, fpath))
			return false;
		*(int64_t *)p = (int64_t)x;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (!enc_integer(e, v, 0, MAX_SAFE_INT, &x, fpath))
			return false;
		*(uint64_t *)p = (uint64_t)x;
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub;

		if (!cJSON_IsObject(v))
			return fail(e->err, e->errlen, "%s: not an object", fpath);
		sub = msg_new(f->descriptor);
		if (sub == NULL)
			return fail(e->err, e->errlen, "%s: out of memory", fpath);
		/* Hooked in first, so that a failure below frees it with M. */
		*(ProtobufCMessage **)p = sub;
		return enc_message(e, v, sub, fpath);
	}
	default:
		return fail(e->err, e->errlen, "%s: field type not supported by the codec", fpath);
	}
	set_present(m, f);
	return true;
}

static bool
enc_field(struct enc *e, const ProtobufCFieldDescriptor *f, const cJSON *obj, ProtobufCMessage *m,
    const char *fpath)
{
	const struct codec_field *rule = rule_find(e->s, fpath);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name), *lv = NULL;
	cJSON *parsed = NULL;
	bool ok;

	if (rule != NULL && rule->long_key != NULL)
		lv = cJSON_GetObjectItemCaseSensitive(obj, rule->long_key);
	if (v != NULL && lv != NULL)
		return fail(e->err, e->errlen, "%s: given twice (long and short key)", fpath);
	if (v == NULL)
		v = lv;
	if (v == NULL || cJSON_IsNull(v)) {
		if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
			return fail(e->err, e->errlen, "%s: missing", fpath);
		return true;
	}
	if (rule != NULL && (rule->flags & CODEC_F_STAMP) &&
	    !unwrap_stamp(e, f, rule, v, &v, &parsed, fpath)) {
		cJSON_Delete(parsed);
		return false;
	}
	ok = enc_value(e, f, rule, v, m, fpath);
	cJSON_Delete(parsed);
	return ok;
}

/* The field of D (at PATH) that KEY names, by its short name or its long
 * key, or NULL. */
static const ProtobufCFieldDescriptor *
names_field(const struct codec_schema *s, const ProtobufCMessageDescriptor *d, const char *path,
    const char *key)
{
	char fpath[PATH_MAX_LEN];

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const struct codec_field *rule;

		if (is_map(f))
			continue;
		if (strcmp(key, f->name) == 0)
			return f;
		path_join(fpath, path, f->name);
		rule = rule_find(s, fpath);
		if (rule != NULL && rule->long_key != NULL && strcmp(key, rule->long_key) == 0)
			return f;
	}
	return NULL;
}

static bool
enc_message(struct enc *e, const cJSON *obj, ProtobufCMessage *m, const char *path)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *extra = NULL, *reserved = NULL;
	ProtobufCMessage *saved_msg = e->orig_msg;
	const ProtobufCFieldDescriptor *saved_field = e->orig_field;
	const char *saved_prefix = e->orig_prefix;
	char fpath[PATH_MAX_LEN], show[KEY_SHOW_MAX + 4];
	const char *dup;
	bool ok = true;

	if (!find_duplicate(obj, &dup)) {
		const ProtobufCFieldDescriptor *f;

		if (dup == NULL)
			return fail(e->err, e->errlen, "%s: out of memory", *path ? path : "event");
		/* Reported under the short name, like every other error. */
		f = names_field(e->s, d, path, dup);
		return fail(e->err, e->errlen, "%s%s%s: duplicate key", path, *path ? "." : "",
		    f != NULL ? f->name : key_show(dup, show));
	}
	for (unsigned i = 0; ok && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->label != PROTOBUF_C_LABEL_REPEATED)
			continue;
		path_join(fpath, path, f->name);
		switch (map_role(e->s, f, fpath)) {
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
			ok = fail(
			    e->err, e->errlen, "%s: field type not supported by the codec", fpath);
			break;
		}
	}
	for (unsigned i = 0; ok && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			path_join(fpath, path, f->name);
			ok = fail(e->err, e->errlen, "%s: oneof not supported by the codec", fpath);
			break;
		}
		path_join(fpath, path, f->name);
		ok = enc_field(e, f, obj, m, fpath);
	}
	for (const cJSON *c = obj->child; ok && c != NULL; c = c->next) {
		const char *k = c->string;
		bool finite = true;
		char *text;

		if (names_field(e->s, d, path, k) != NULL)
			continue;
		if (reserved != NULL && strcmp(k, reserved->name) == 0) {
			ok = fail(
			    e->err, e->errlen, "%s%s%s: reserved key", path, *path ? "." : "", k);
		} else if (extra == NULL) {
			ok = fail(e->err, e->errlen, "%s%s%s: unknown key", path, *path ? "." : "",
			    key_show(k, show));
		} else if (json_depth(c, CODEC_MAX_DEPTH + 1, &finite) > CODEC_MAX_DEPTH) {
			ok = fail(e->err, e->errlen, "%s%s%s: nested deeper than %d levels", path,
			    *path ? "." : "", key_show(k, show), CODEC_MAX_DEPTH);
		} else if (!finite) {
			ok = fail(e->err, e->errlen, "%s%s%s: number out of range", path,
			    *path ? "." : "", key_show(k, show));
		} else if ((text = cJSON_PrintUnformatted(c)) == NULL ||
			   !map_add(m, extra, k, text)) {
			ok = fail(e->err, e->errlen, "%s: out of memory", *path ? path : "event");
		}
	}
	e->orig_msg = saved_msg;
	e->orig_field = saved_field;
	e->orig_prefix = saved_prefix;
	return ok;
}

bool
codec_event_encode(const struct codec_schema *s, const cJSON *event, uint8_t **payload, size_t *len,
    char *err, size_t errlen)
{
	struct enc e = {.s = s, .err = err, .errlen = errlen};
	ProtobufCMessage *m;
	size_t size;
	bool ok;

	*payload = NULL;
	*len = 0;
	if (!cJSON_IsObject(event))
		return fail(err, errlen, "event: not an object");
	m = msg_new(s->message);
	if (m == NULL)
		return fail(err, errlen, "event: out of memory");
	ok = enc_message(&e, event, m, "");
	if (ok) {
		size = protobuf_c_message_get_packed_size(m);
		/* malloc(0) may return NULL: an empty message still gets a buffer. */
		*payload = malloc(size > 0 ? size : 1);
		if (*payload == NULL) {
			ok = fail(err, errlen, "event: out of memory");
		} else {
			*len = protobuf_c_message_pack(m, *payload);
		}
	}
	protobuf_c_message_free_unpacked(m, NULL);
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
		return fail(err, errlen, "frame: %zu bytes, shorter than a Confluent header", len);
	if (p[0] != 0)
		return fail(err, errlen, "frame: magic byte 0x%02x, want 0x00", p[0]);
	id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	if (id > INT32_MAX)
		return fail(err, errlen, "frame: negative schema id");
	p += 5;
	if (!read_zigzag(&p, end, &count) || count < 0)
		return fail(err, errlen, "frame: bad message-index count");
	if (count > 1)
		return fail(err, errlen,
		    "frame: message-index path of %lld entries, want the first "
		    "message",
		    (long long)count);
	if (count == 1) {
		if (!read_zigzag(&p, end, &index))
			return fail(err, errlen, "frame: bad message index");
		if (index != 0)
			return fail(err, errlen,
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
	return fail(dc->err, dc->errlen, "payload: %s", msg);
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

	if (!utf8_valid(text, strlen(text)))
		return dec_fail(dc, "%s: not valid UTF-8", fpath);
	if (rule != NULL && (rule->flags & CODEC_F_REQUIRED) && *text == '\0')
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
		if (!codec_parse_timestamp(text, &us))
			return dec_fail(dc, "%s: not an RFC 3339 timestamp", fpath);
	}
	*item = cJSON_CreateString(text);
	return true;
}

static cJSON *dec_message(struct dec *dc, const ProtobufCMessage *m, const char *path);

static bool
dec_value(struct dec *dc, const ProtobufCFieldDescriptor *f, const struct codec_field *rule,
    const ProtobufCMessage *m, cJSON **item, const char *fpath)
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
		*item = cJSON_CreateNumber(x);
		return true;
	case PROTOBUF_C_TYPE_BOOL:
		*item = cJSON_CreateBool(*(const protobuf_c_boolean *)p);
		return true;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*item = cJSON_CreateNumber(*(const int32_t *)p);
		return true;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*item = cJSON_CreateNumber(*(const uint32_t *)p);
		return true;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: {
		int64_t v = *(const int64_t *)p;

		if (v > (int64_t)MAX_SAFE_INT || v < -(int64_t)MAX_SAFE_INT)
			return dec_fail(dc, "%s: out of range", fpath);
		*item = cJSON_CreateNumber((double)v);
		return true;
	}
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		uint64_t v = *(const uint64_t *)p;

		if (v > (uint64_t)MAX_SAFE_INT)
			return dec_fail(dc, "%s: out of range", fpath);
		*item = cJSON_CreateNumber((double)v);
		return true;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*item = dec_message(dc, *(ProtobufCMessage *const *)p, fpath);
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
		if (!utf8_valid(*k, strlen(*k)) || !utf8_valid(*v, strlen(*v)))
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
    const char *path, const char *fpath)
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
		path_join(npath, path, d->fields[i].name);
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
		cJSON *item = json_parse_strict(v, strlen(v), &where, &why);

		if (item == NULL)
			return dec_fail(dc, "%s%s%s: extra value is not JSON", path,
			    *path ? "." : "", key_show(k, show));
		if (!dec_add(dc, obj, k, item, fpath))
			return false;
	}
	return true;
}

static cJSON *
dec_message(struct dec *dc, const ProtobufCMessage *m, const char *path)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	cJSON *obj = cJSON_CreateObject();
	char fpath[PATH_MAX_LEN];
	bool ok = obj != NULL;

	if (!ok)
		dec_fail(dc, "%s: out of memory", *path ? path : "event");
	/* Named fields, then the original ids, then the extra keys, whatever
	 * their field numbers: the JSON reads like the input did. */
	for (unsigned i = 0; ok && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const struct codec_field *rule;
		cJSON *item = NULL;

		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		path_join(fpath, path, f->name);
		rule = rule_find(dc->s, fpath);
		if (!field_present(m, f)) {
			if (rule != NULL && (rule->flags & CODEC_F_REQUIRED))
				ok = dec_fail(dc, "%s: missing", fpath);
			continue;
		}
		ok = dec_value(dc, f, rule, m, &item, fpath) &&
		     dec_add(dc, obj, f->name, item, fpath);
	}
	for (int pass = MAP_ORIGINALS; ok && pass >= MAP_EXTRA; pass--) {
		for (unsigned i = 0; ok && i < d->n_fields; i++) {
			const ProtobufCFieldDescriptor *f = &d->fields[i];
			enum map_role role;

			if (f->label != PROTOBUF_C_LABEL_REPEATED)
				continue;
			path_join(fpath, path, f->name);
			role = map_role(dc->s, f, fpath);
			if (role == MAP_NONE)
				ok = dec_fail(
				    dc, "%s: field type not supported by the codec", fpath);
			else if ((int)role != pass)
				continue;
			else if (role == MAP_ORIGINALS)
				ok = dec_originals(dc, obj, m, f, fpath);
			else
				ok = dec_extras(dc, obj, m, f, path, fpath);
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

static bool
fill_row(const struct codec_schema *s, const cJSON *root, const char *json, struct codec_row *row,
    char *err, size_t errlen)
{
	if (s->ncolumns > CODEC_ROW_MAX)
		return fail(
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
		} else if (!cJSON_IsString(v)) {
			return fail(
			    err, errlen, "row: %s: %s is not a string", col->name, col->source);
		} else if (col->kind == CODEC_COL_TIMESTAMPTZ) {
			char buf[CODEC_TIME_SIZE];
			int64_t us;

			if (!codec_parse_timestamp(v->valuestring, &us))
				return fail(err, errlen, "row: %s: not a timestamp", col->name);
			if (s->partition_column != NULL &&
			    strcmp(col->name, s->partition_column) == 0)
				row->partition_us = us;
			codec_format_us(us, buf);
			text = strdup(buf);
		} else {
			text = strdup(v->valuestring);
		}
		if (text == NULL)
			return fail(err, errlen, "row: out of memory");
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
		fail(err, errlen, "metadata.correlationId: not a UUID");
		return NULL;
	}
	ids_format(id, corr);
	if (publish_time_ms < 0) {
		fail(err, errlen, "metadata.publishTime: negative");
		return NULL;
	}
	codec_format_ms(publish_time_ms, when);
	m = protobuf_c_message_unpack(s->message, NULL, len, payload);
	if (m == NULL) {
		fail(err, errlen, "payload: not a valid %s message", s->message->name);
		return NULL;
	}
	root = dec_message(&dc, m, "");
	protobuf_c_message_free_unpacked(m, NULL);
	if (root == NULL)
		return NULL;
	meta = cJSON_AddObjectToObject(root, "metadata");
	if (meta == NULL || cJSON_AddStringToObject(meta, "correlationId", corr) == NULL ||
	    cJSON_AddStringToObject(meta, "publishTime", when) == NULL ||
	    cJSON_AddNumberToObject(meta, "schemaId", schema_id) == NULL ||
	    (json = cJSON_PrintUnformatted(root)) == NULL) {
		fail(err, errlen, "enrich: out of memory");
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
			    utf8_valid(raw_body_or_null, raw_len);
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
