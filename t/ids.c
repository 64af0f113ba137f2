/* t/ids.c: unit tests of batch and correlation ids and of the UUID, ULID
 * and ObjectId parsing, with fixed vectors. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "tap.h"

/* Fixed batch: the one of examples/enriched-event.json plus deadbeef. */
static const uint8_t rnd[10] = {0x0d, 0x3e, 0x1a, 0x41, 0x5b, 0x2e, 0xde, 0xad, 0xbe, 0xef};
#define BATCH_MS UINT64_C(0x019aa0f37c21)

static const char *
fmt(const uint8_t id[16])
{
	static char buf[IDS_TEXT_SIZE];

	ids_format(id, buf);
	return buf;
}

static void
test_batch(void)
{
	uint8_t b[16], c[16], first[16], last[16], r[10];

	ids_batch_at(b, BATCH_MS, rnd);
	is_str(
	    fmt(b), "019aa0f3-7c21-7d3e-9a41-5b2edeadbeef", "batch id from fixed time and random");
	is_int((long long)ids_time_ms(b), (long long)BATCH_MS, "time prefix read back");
	/* Random bytes with every bit set still leave version and variant. */
	memset(r, 0xff, sizeof(r));
	ids_batch_at(c, 0, r);
	is_str(fmt(c), "00000000-0000-7fff-bfff-ffffffffffff",
	    "all-ones random: version 7, variant 10");
	memset(r, 0, sizeof(r));
	ids_batch_at(c, UINT64_C(0xffffffffffff), r);
	is_str(fmt(c), "ffffffff-ffff-7000-8000-000000000000", "largest 48-bit time");

	ids_correlation(c, b, 0);
	is_str(fmt(c), "019aa0f3-7c21-7d3e-9a41-5b2e00000000", "correlation id of index 0");
	is_int(ids_correlation_index(c), 0, "index 0 read back");
	ids_correlation(c, b, 0x01020304);
	is_str(
	    fmt(c), "019aa0f3-7c21-7d3e-9a41-5b2e01020304", "correlation id of index 0x01020304");
	is_int(ids_correlation_index(c), 0x01020304, "index 0x01020304 read back");
	ok(ids_same_batch(c, b), "same batch");
	ids_batch_range(c, first, last);
	is_str(fmt(first), "019aa0f3-7c21-7d3e-9a41-5b2e00000000", "range start");
	is_str(fmt(last), "019aa0f3-7c21-7d3e-9a41-5b2effffffff", "range end");
	ok(memcmp(first, c, 16) <= 0 && memcmp(c, last, 16) <= 0, "event inside its batch range");
	ids_batch_range(c, c, last);
	is_str(fmt(c), "019aa0f3-7c21-7d3e-9a41-5b2e00000000", "range may overwrite its input");
	memcpy(c, b, 16);
	ids_correlation(c, c, 7);
	is_int(ids_correlation_index(c), 7, "correlation in place");
	c[11] ^= 1;
	ok(!ids_same_batch(c, b), "one bit in the prefix makes another batch");
}

static void
test_batch_new(void)
{
	uint8_t prev[16], id[16];
	struct timespec ts;
	uint64_t before;
	bool versions = true, ordered = true, distinct = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	before = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	ids_batch_new(prev);
	ok(ids_time_ms(prev) >= before, "time prefix not before the clock reading taken first");
	for (int i = 0; i < 1000; i++) {
		ids_batch_new(id);
		if ((id[6] >> 4) != 7 || (id[8] >> 6) != 2)
			versions = false;
		if (ids_time_ms(id) < ids_time_ms(prev))
			ordered = false;
		/* 74 random bits: a repeat means the random source is broken. */
		if (memcmp(id, prev, 16) == 0)
			distinct = false;
		memcpy(prev, id, 16);
	}
	ok(versions, "1000 new ids: version 7 and variant 10");
	ok(ordered, "1000 new ids: time prefix never goes back");
	ok(distinct, "1000 new ids: consecutive ids differ");
}

static void
test_parse_uuid(void)
{
	static const char *const good[] = {
	    "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b",
	    "6C1F0E8A-2D4B-4A9C-B7E3-5F8D1A2C4E6B",
	    "6c1F0e8A-2d4B-4a9C-b7E3-5f8D1a2C4e6B",
	    "6c1f0e8a2d4b4a9cb7e35f8d1a2c4e6b",
	    "{6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b}",
	};
	static const char *const bad[] = {
	    "",
	    "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6",
	    "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6bb",
	    "6c1f0e8a2-d4b-4a9c-b7e3-5f8d1a2c4e6b",
	    "6c1f0e8a-2d4b-4a9c-b7e3_5f8d1a2c4e6b",
	    "6c1f0e8g-2d4b-4a9c-b7e3-5f8d1a2c4e6b",
	    " 6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b",
	    "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b ",
	    "{6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b)",
	    "(6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b}",
	    "{6c1f0e8a2d4b4a9cb7e35f8d1a2c4e6b}",
	    "urn:uuid:6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b",
	    "6c1f0e8a2d4b4a9cb7e35f8d1a2c4e6",
	    "6c1f0e8a2d4b4a9cb7e35f8d1a2c4e6x",
	    "+c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b",
	};
	uint8_t id[16];
	enum ids_form form;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		form = IDS_FORM_ULID;
		ok(ids_parse(good[i], id, &form) && form == IDS_FORM_UUID, "UUID %s", good[i]);
		is_str(
		    fmt(id), "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b", "... is canonical lower case");
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!ids_parse(bad[i], id, &form), "rejects \"%s\"", bad[i]);
	ok(!ids_parse(NULL, id, &form), "rejects NULL");
	ok(ids_parse("00000000-0000-0000-0000-000000000000", id, NULL),
	    "nil UUID, FORM may be NULL");
}

/* ids_canonical() is exactly "ids_parse() takes it and ids_format() gives
 * it back", on every form of every length and on random ids. */
static void
test_canonical(void)
{
	static const char *const texts[] = {
	    "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b",
	    "6C1F0E8A-2D4B-4A9C-B7E3-5F8D1A2C4E6B",
	    "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6B",
	    "{6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b}",
	    "6c1f0e8a2d4b4a9cb7e35f8d1a2c4e6b",
	    "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6",
	    "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6bb",
	    "6c1f0e8a-2d4b-4a9c-b7e35f8d1a2c4e6b-",
	    "6c1f0e8g-2d4b-4a9c-b7e3-5f8d1a2c4e6b",
	    "01hr71kjry3w47epk7acq7emcd",
	    "6374be699c11acaa3108cf02",
	    "00000000-0000-0000-0000-000000000000",
	    "",
	};
	uint8_t id[16];
	char text[IDS_TEXT_SIZE];
	size_t agree = 0;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		bool round = ids_parse(texts[i], id, NULL) && strcmp(fmt(id), texts[i]) == 0;

		ok(ids_canonical(texts[i]) == round, "canonical \"%s\": %s", texts[i],
		    round ? "yes" : "no");
	}
	for (int i = 0; i < 1000; i++) {
		ids_batch_new(id);
		ids_format(id, text);
		agree += ids_canonical(text);
	}
	is_int((long long)agree, 1000, "every id ids_format() writes is canonical");
}

/* The shape ids_canonical() checks, one character at a time: the
 * reference its faster form must agree with. */
static bool
canonical_ref(const char *s)
{
	size_t i;

	for (i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char c = s[i];

		if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return s[36] == '\0';
}

/* TEXT (at most 39 characters) in a buffer of just its size, so that a
 * read past its NUL is one past the allocation. */
static bool
canonical_agrees(const char *text, size_t len, size_t *checked)
{
	char *copy = malloc(len + 1);
	bool same;

	if (copy == NULL)
		return false;
	memcpy(copy, text, len);
	copy[len] = '\0';
	same = ids_canonical(copy) == canonical_ref(copy);
	free(copy);
	++*checked;
	return same;
}

static void
test_canonical_mutations(void)
{
	static const char base[] = "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b";
	static const char all_hex[] = "0123456789-abcdef-ABCDEF-0a1b2c3d4e5f";
	char text[40];
	size_t checked = 0, bad = 0;
	uint8_t id[16];

	/* Every byte value at every position of a canonical text, and at the
	 * NUL's place (one more character). */
	for (size_t pos = 0; pos <= 36; pos++)
		for (int c = 1; c < 256; c++) {
			memcpy(text, base, sizeof(base));
			text[pos] = (char)c;
			if (pos == 36)
				text[37] = '\0';
			bad += !canonical_agrees(text, strlen(text), &checked);
		}
	/* Every prefix: the texts that end early, down to "". */
	for (size_t len = 0; len <= 36; len++)
		bad += !canonical_agrees(base, len, &checked);
	/* A NUL at every position inside a text of 36 and one of 39. */
	for (size_t pos = 0; pos < 36; pos++) {
		memcpy(text, base, sizeof(base));
		text[pos] = '\0';
		bad += !canonical_agrees(text, strlen(text), &checked);
		memcpy(text, base, sizeof(base));
		text[pos] = '\0';
		bad += ids_canonical(text) != canonical_ref(text);
	}
	/* Each digit of a canonical text replaced by each hex digit either
	 * case, and the hyphens moved by one either way. */
	for (size_t pos = 0; pos < 36; pos++)
		for (size_t k = 0; k < sizeof(all_hex) - 1; k++) {
			memcpy(text, base, sizeof(base));
			text[pos] = all_hex[k];
			bad += !canonical_agrees(text, 36, &checked);
		}
	for (size_t g = 0; g < 4; g++) {
		static const size_t dash[4] = {8, 13, 18, 23};

		for (int d = -1; d <= 1; d += 2) {
			memcpy(text, base, sizeof(base));
			text[dash[g]] = text[dash[g] + (size_t)d];
			text[dash[g] + (size_t)d] = '-';
			bad += !canonical_agrees(text, 36, &checked);
		}
	}
	/* Texts ids_format() writes, each with its first and last digit upper
	 * case. */
	for (int i = 0; i < 2000; i++) {
		ids_batch_new(id);
		ids_format(id, text);
		bad += !canonical_agrees(text, 36, &checked);
		for (size_t pos = 0; pos < 36; pos++)
			if (text[pos] >= 'a' && text[pos] <= 'f') {
				text[pos] = (char)(text[pos] - 'a' + 'A');
				break;
			}
		bad += !canonical_agrees(text, 36, &checked);
	}
	is_int((long long)bad, 0, "ids_canonical() agrees with a per-character check");
	ok(checked > 10000, "%zu texts compared", checked);
}

/* ids_format() against the digits written one at a time. */
static void
test_format_ref(void)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t id[16];
	char got[IDS_TEXT_SIZE], want[IDS_TEXT_SIZE];
	size_t bad = 0;

	for (int i = 0; i < 4096; i++) {
		char *p = want;

		for (int k = 0; k < 16; k++)
			id[k] = (uint8_t)(i < 256 ? i : (i * 131 + k * 37) ^ (i >> 3) * k);
		if (i >= 256 && i < 512)
			id[(i - 256) & 15] = (uint8_t)(i - 256);
		for (int k = 0; k < 16; k++) {
			if (k == 4 || k == 6 || k == 8 || k == 10)
				*p++ = '-';
			*p++ = hex[id[k] >> 4];
			*p++ = hex[id[k] & 0x0f];
		}
		*p = '\0';
		memset(got, 'x', sizeof(got));
		ids_format(id, got);
		bad += memcmp(got, want, sizeof(want)) != 0;
	}
	is_int((long long)bad, 0, "ids_format() writes every byte's two digits");
}

static void
test_parse_ulid(void)
{
	static const char *const bad[] = {
	    "81ARZ3NDEKTSV4RRFFQ69G5FAV", /* 130 bits */
	    "01ARZ3NDEKTSV4RRFFQ69G5FAI",
	    "01ARZ3NDEKTSV4RRFFQ69G5FAL",
	    "01ARZ3NDEKTSV4RRFFQ69G5FAO",
	    "01ARZ3NDEKTSV4RRFFQ69G5FAU",
	    "01ARZ3NDEKTSV4RRFFQ69G5FA",
	    "01ARZ3NDEKTSV4RRFFQ69G5FAV0",
	    "01ARZ3NDEKTSV4RRFFQ69G5FA-",
	    "01ARZ3NDEKTSV4RRFFQ69G5FA ",
	};
	uint8_t id[16], again[16];
	char text[27];
	enum ids_form form;

	ok(ids_parse("01ARZ3NDEKTSV4RRFFQ69G5FAV", id, &form) && form == IDS_FORM_ULID,
	    "ULID from the ULID spec");
	is_str(fmt(id), "01563e3a-b5d3-d676-4c61-efb99302bd5b", "... is the same 128 bits");
	is_int((long long)ids_time_ms(id), 1469922850259LL, "... with its ms time in bytes 0-5");
	ok(ids_parse("01arz3ndektsv4rrffq69g5fav", again, &form) && memcmp(id, again, 16) == 0,
	    "lower case is the same ULID");
	ids_format_ulid(id, text);
	is_str(text, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "ULID text round trip");
	ok(ids_parse("01hr71kjry3w47epk7acq7emcd", id, &form), "ULID of the example");
	is_str(fmt(id), "018e0e19-cb1e-1f08-775a-67532e77518d", "... as a UUID");
	ok(ids_parse("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", id, &form), "largest ULID");
	is_str(fmt(id), "ffffffff-ffff-ffff-ffff-ffffffffffff", "... is all ones");
	ok(ids_parse("00000000000000000000000000", id, &form), "smallest ULID");
	is_str(fmt(id), "00000000-0000-0000-0000-000000000000", "... is all zeros");
	ok(ids_parse("6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b", id, NULL), "a UUIDv4");
	ids_format_ulid(id, text);
	ok(ids_parse(text, again, &form) && memcmp(id, again, 16) == 0,
	    "any UUID survives UUID -> ULID -> UUID (%s)", text);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!ids_parse(bad[i], id, &form), "rejects \"%s\"", bad[i]);
}

static void
test_objectid(void)
{
	static const char *const bad[] = {
	    "6374be699c11acaa3108cf0",
	    "6374be699c11acaa3108cf021",
	    "6374be699c11acaa3108cf0g",
	    "6374be69-9c11acaa3108cf02",
	};
	uint8_t id[16], oid[12], a[16], b[16];
	char text[25];
	enum ids_form form;

	ok(ids_parse("6374be699c11acaa3108cf02", id, &form) && form == IDS_FORM_OBJECTID,
	    "ObjectId of the example");
	is_str(
	    fmt(id), "6374be69-9c11-80ac-80aa-3108cf020000", "... in the documented UUIDv8 layout");
	ok((id[6] >> 4) == 8 && (id[8] >> 6) == 2, "... version 8, variant 10");
	ok(ids_objectid_from_uuid(id, oid), "... is recognised as a mapped ObjectId");
	ids_format_objectid(oid, text);
	is_str(text, "6374be699c11acaa3108cf02", "... and maps back losslessly");
	ok(ids_parse("6374BE699C11ACAA3108CF02", a, NULL) && memcmp(a, id, 16) == 0,
	    "upper-case hex is the same ObjectId");
	ok(ids_parse("ffffffffffffffffffffffff", id, NULL), "all-ones ObjectId");
	is_str(fmt(id), "ffffffff-ffff-80ff-80ff-ffffffff0000", "... keeps the fixed bits");
	ok(ids_objectid_from_uuid(id, oid), "... and maps back");
	ids_format_objectid(oid, text);
	is_str(text, "ffffffffffffffffffffffff", "... to all ones");

	/* Byte order of ObjectIds (their creation time first) is kept. */
	ok(ids_parse("6374be699c11acaa3108cf02", a, NULL) &&
		ids_parse("6374be699c11acab00000000", b, NULL) && memcmp(a, b, 16) < 0,
	    "ObjectId order is UUID order");

	ok(ids_parse("6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b", id, NULL) &&
		!ids_objectid_from_uuid(id, oid),
	    "a UUIDv4 is not a mapped ObjectId");
	ok(ids_parse("6374be69-9c11-80ac-80aa-3108cf020001", id, NULL) &&
		!ids_objectid_from_uuid(id, oid),
	    "non-zero padding is not a mapped ObjectId");
	ok(ids_parse("6374be69-9c11-81ac-80aa-3108cf020000", id, NULL) &&
		!ids_objectid_from_uuid(id, oid),
	    "non-zero nibble after the version is not a mapped ObjectId");
	ok(ids_parse("6374be69-9c11-80ac-c0aa-3108cf020000", id, NULL) &&
		!ids_objectid_from_uuid(id, oid),
	    "another variant is not a mapped ObjectId");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!ids_parse(bad[i], id, &form), "rejects \"%s\"", bad[i]);
}

int
main(void)
{
	test_batch();
	test_batch_new();
	test_parse_uuid();
	test_canonical();
	test_canonical_mutations();
	test_format_ref();
	test_parse_ulid();
	test_objectid();
	return tap_done();
}
