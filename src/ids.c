/* ids.c: batch and correlation ids, and the UUID/ULID/ObjectId parsing that
 * lets UUID-typed columns take the ids real producers send. */
#include "ids.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const char ulid_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Crockford base32 digit value; the excluded letters I L O U are invalid
 * rather than aliased, so that one id has exactly one accepted spelling
 * per case. */
static int
ulid_value(int c)
{
	const char *p;

	if (c >= 'a' && c <= 'z')
		c -= 'a' - 'A';
	if (c == '\0')
		return -1;
	p = strchr(ulid_alphabet, c);
	return p ? (int)(p - ulid_alphabet) : -1;
}

/* N bytes from the hex digits at S; false on a non-hex character. */
static bool
hex_bytes(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value((unsigned char)s[2 * i]);
		int lo = hex_value((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static void
random_bytes(uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		got += (size_t)r;
	}
	if (got < n) {
		/* Only on kernels without getrandom(): libuuid finds another
		 * source (/dev/urandom) for the rest. */
		uuid_t u;

		while (got < n) {
			size_t k = n - got < 10 ? n - got : 10;

			uuid_generate_random(u);
			/* Bytes 9-15 and 0-2 carry no fixed version/variant bits. */
			memcpy(buf + got, u + 9, k < 7 ? k : 7);
			if (k > 7)
				memcpy(buf + got + 7, u, k - 7);
			got += k;
		}
	}
}

void
ids_batch_at(uint8_t out[16], uint64_t unix_ms, const uint8_t rnd[10])
{
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(unix_ms >> (8 * (5 - i)));
	out[6] = (uint8_t)(0x70 | (rnd[0] & 0x0f));
	out[7] = rnd[1];
	out[8] = (uint8_t)(0x80 | (rnd[2] & 0x3f));
	memcpy(out + 9, rnd + 3, 7);
}

void
ids_batch_new(uint8_t out[16])
{
	static uint64_t last_ms;
	struct timespec ts;
	uint8_t rnd[10];
	uint64_t ms = 0;

	if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec >= 0)
		ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	/* A clock stepped back must not make newer batches sort first. */
	if (ms < last_ms)
		ms = last_ms;
	last_ms = ms;
	random_bytes(rnd, sizeof(rnd));
	ids_batch_at(out, ms, rnd);
}

uint64_t
ids_time_ms(const uint8_t id[16])
{
	uint64_t ms = 0;

	for (int i = 0; i < 6; i++)
		ms = ms << 8 | id[i];
	return ms;
}

void
ids_correlation(uint8_t out[16], const uint8_t batch[16], uint32_t index)
{
	memmove(out, batch, 12);
	out[12] = (uint8_t)(index >> 24);
	out[13] = (uint8_t)(index >> 16);
	out[14] = (uint8_t)(index >> 8);
	out[15] = (uint8_t)index;
}

uint32_t
ids_correlation_index(const uint8_t id[16])
{
	return (uint32_t)id[12] << 24 | (uint32_t)id[13] << 16 | (uint32_t)id[14] << 8 | id[15];
}

void
ids_batch_range(const uint8_t id[16], uint8_t first[16], uint8_t last[16])
{
	uint8_t prefix[16];

	/* A copy, so that ID may be FIRST or LAST. */
	memcpy(prefix, id, 16);
	ids_correlation(first, prefix, 0);
	ids_correlation(last, prefix, UINT32_MAX);
}

bool
ids_same_batch(const uint8_t a[16], const uint8_t b[16])
{
	return memcmp(a, b, 12) == 0;
}

void
ids_format(const uint8_t id[16], char out[IDS_TEXT_SIZE])
{
	char h[32];

#if defined(__SSE2__)
	/* The 32 nibbles in order, each to its digit: '0' + n, and 'a' - '0'
	 * - 10 more above 9. */
	const __m128i low = _mm_set1_epi8(0x0f), nine = _mm_set1_epi8(9);
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)id);
	__m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), low), lo = _mm_and_si128(x, low);
	__m128i a = _mm_unpacklo_epi8(hi, lo), b = _mm_unpackhi_epi8(hi, lo);

	a = _mm_add_epi8(_mm_add_epi8(a, _mm_set1_epi8('0')),
	    _mm_and_si128(_mm_cmpgt_epi8(a, nine), _mm_set1_epi8('a' - '0' - 10)));
	b = _mm_add_epi8(_mm_add_epi8(b, _mm_set1_epi8('0')),
	    _mm_and_si128(_mm_cmpgt_epi8(b, nine), _mm_set1_epi8('a' - '0' - 10)));
	_mm_storeu_si128((__m128i *)(void *)h, a);
	_mm_storeu_si128((__m128i *)(void *)(h + 16), b);
#else
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		h[2 * i] = hex[id[i] >> 4];
		h[2 * i + 1] = hex[id[i] & 0x0f];
	}
#endif
	/* 8-4-4-4-12 */
	memcpy(out, h, 8);
	out[8] = '-';
	memcpy(out + 9, h + 8, 4);
	out[13] = '-';
	memcpy(out + 14, h + 12, 4);
	out[18] = '-';
	memcpy(out + 19, h + 16, 4);
	out[23] = '-';
	memcpy(out + 24, h + 20, 12);
	out[36] = '\0';
}

/* The hyphenated form: hex groups 8-4-4-4-12 at S. */
static bool
parse_hyphenated(const char *s, uint8_t out[16])
{
	static const int group[5] = {4, 2, 2, 2, 6};
	int b = 0;

	for (int g = 0; g < 5; g++) {
		if (g > 0 && *s++ != '-')
			return false;
		if (!hex_bytes(s, out + b, (size_t)group[g]))
			return false;
		s += 2 * group[g];
		b += group[g];
	}
	return true;
}

static bool
parse_ulid(const char *s, uint8_t out[16])
{
	uint32_t acc;
	int bits, n = 0;
	int v = ulid_value((unsigned char)s[0]);

	/* 26 digits hold 130 bits: the first digit may only use its low 3. */
	if (v < 0 || v > 7)
		return false;
	acc = (uint32_t)v;
	bits = 3;
	for (int i = 1; i < 26; i++) {
		v = ulid_value((unsigned char)s[i]);
		if (v < 0)
			return false;
		acc = acc << 5 | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return n == 16 && bits == 0;
}

void
ids_format_ulid(const uint8_t id[16], char out[27])
{
	uint32_t acc = 0;
	int bits = 0, n = 0, i = 0;

	/* Two zero bits in front make 130, the first digit takes 3 of them. */
	out[n++] = ulid_alphabet[id[0] >> 5];
	acc = id[0] & 0x1f;
	bits = 5;
	i = 1;
	while (n < 26) {
		if (bits < 5) {
			acc = acc << 8 | id[i++];
			bits += 8;
		}
		bits -= 5;
		out[n++] = ulid_alphabet[(acc >> bits) & 0x1f];
		acc &= (1u << bits) - 1;
	}
	out[26] = '\0';
}

void
ids_objectid_to_uuid(const uint8_t oid[12], uint8_t out[16])
{
	memcpy(out, oid, 6);
	out[6] = 0x80;
	out[7] = oid[6];
	out[8] = 0x80;
	memcpy(out + 9, oid + 7, 5);
	out[14] = 0;
	out[15] = 0;
}

bool
ids_objectid_from_uuid(const uint8_t id[16], uint8_t oid[12])
{
	if (id[6] != 0x80 || id[8] != 0x80 || id[14] != 0 || id[15] != 0)
		return false;
	memcpy(oid, id, 6);
	oid[6] = id[7];
	memcpy(oid + 7, id + 9, 5);
	return true;
}

void
ids_format_objectid(const uint8_t oid[12], char out[25])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 12; i++) {
		out[2 * i] = hex[oid[i] >> 4];
		out[2 * i + 1] = hex[oid[i] & 0x0f];
	}
	out[24] = '\0';
}

#if defined(__SSE2__)
/*
 * The shape of 16 bytes of a canonical text, a lane each: a hyphen lane
 * takes just '-', the others '0'-'9' and 'a'-'f'.  A range [LO, LO + N) is
 * one signed compare once X + 0x80 - LO puts LO at -128: below -128 + N.
 * Each lane has its own first range ('-' and 1, or '0' and 10); the second
 * is 'a' and 6, or none (N 0) in a hyphen lane.
 */
struct shape {
	_Alignas(16) int8_t off[16];	/* 0x80 - LO of the first range */
	_Alignas(16) int8_t lim[16];	/* -128 + N of the first range */
	_Alignas(16) int8_t lim_af[16]; /* -128 + N of 'a'-'f' */
};

#define SHAPE_OFF(d) (int8_t)((d) ? 0x80 - '-' : 0x80 - '0')
#define SHAPE_LIM(d) (int8_t)((d) ? -128 + 1 : -128 + 10)
#define SHAPE_LIM_AF(d) (int8_t)((d) ? -128 : -128 + 6)
/* M of each lane, the hyphen lanes the bits of K */
#define SHAPE_ROW(M, k)                                                                            \
	{                                                                                          \
		M((k)&1), M((k) >> 1 & 1), M((k) >> 2 & 1), M((k) >> 3 & 1), M((k) >> 4 & 1),      \
		    M((k) >> 5 & 1), M((k) >> 6 & 1), M((k) >> 7 & 1), M((k) >> 8 & 1),            \
		    M((k) >> 9 & 1), M((k) >> 10 & 1), M((k) >> 11 & 1), M((k) >> 12 & 1),         \
		    M((k) >> 13 & 1), M((k) >> 14 & 1), M((k) >> 15 & 1)                           \
	}
#define SHAPE(k)                                                                                   \
	{                                                                                          \
		SHAPE_ROW(SHAPE_OFF, k), SHAPE_ROW(SHAPE_LIM, k), SHAPE_ROW(SHAPE_LIM_AF, k)       \
	}

/* Bytes 0-15 (hyphens at 8 and 13), 16-31 (18 and 23) and 20-35 (23). */
static const struct shape canonical_shape[3] = {
    SHAPE(1u << 8 | 1u << 13),
    SHAPE(1u << 2 | 1u << 7),
    SHAPE(1u << 3),
};

/* The lanes of the 16 bytes at S that fit K. */
static unsigned
shape_lanes(const char *s, const struct shape *k)
{
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
	__m128i first = _mm_cmplt_epi8(_mm_add_epi8(x, _mm_load_si128((const __m128i *)k->off)),
	    _mm_load_si128((const __m128i *)k->lim));
	__m128i af = _mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8((char)(0x80 - 'a'))),
	    _mm_load_si128((const __m128i *)k->lim_af));

	return (unsigned)_mm_movemask_epi8(_mm_or_si128(first, af));
}
#endif

bool
ids_canonical(const char *s)
{
#if defined(__SSE2__)
	/* Three loads, the last overlapping the second, once the length is
	 * known to be 36: none reaches past the NUL. */
	if (strnlen(s, 37) != 36)
		return false;
	return (shape_lanes(s, &canonical_shape[0]) & shape_lanes(s + 16, &canonical_shape[1]) &
		   shape_lanes(s + 20, &canonical_shape[2])) == 0xffff;
#else
	/* 1: a lower-case hex digit; the hyphens are checked by position */
	static const unsigned char hex[256] = {
	    ['0'] = 1,
	    ['1'] = 1,
	    ['2'] = 1,
	    ['3'] = 1,
	    ['4'] = 1,
	    ['5'] = 1,
	    ['6'] = 1,
	    ['7'] = 1,
	    ['8'] = 1,
	    ['9'] = 1,
	    ['a'] = 1,
	    ['b'] = 1,
	    ['c'] = 1,
	    ['d'] = 1,
	    ['e'] = 1,
	    ['f'] = 1,
	};
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	const unsigned char *p = (const unsigned char *)s;

	/* Stops at the first byte out of place, the NUL of a shorter text too. */
	for (int i = 0; i < 36; i++)
		if (shape[i] == '-' ? p[i] != '-' : !hex[p[i]])
			return false;
	return p[36] == '\0';
#endif
}

bool
ids_parse(const char *s, uint8_t out[16], enum ids_form *form)
{
	enum ids_form f;
	size_t len;

	if (s == NULL)
		return false;
	/* strnlen: nothing valid is longer than 38, so never scan far. */
	len = strnlen(s, 40);
	switch (len) {
	case 36:
		if (!parse_hyphenated(s, out))
			return false;
		f = IDS_FORM_UUID;
		break;
	case 38:
		if (s[0] != '{' || s[37] != '}' || !parse_hyphenated(s + 1, out))
			return false;
		f = IDS_FORM_UUID;
		break;
	case 32:
		if (!hex_bytes(s, out, 16))
			return false;
		f = IDS_FORM_UUID;
		break;
	case 26:
		if (!parse_ulid(s, out))
			return false;
		f = IDS_FORM_ULID;
		break;
	case 24: {
		uint8_t oid[12];

		if (!hex_bytes(s, oid, 12))
			return false;
		ids_objectid_to_uuid(oid, out);
		f = IDS_FORM_OBJECTID;
		break;
	}
	default:
		return false;
	}
	if (form)
		*form = f;
	return true;
}
