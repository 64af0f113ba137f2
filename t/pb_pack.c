/* t/pb_pack.c: pb_pack() writes protobuf-c's own bytes for every field form
 * (t/pbpack/pbpack.proto): each scalar type at its edges, presence flags
 * off and on, NULL and default strings, bytes, nested, repeated and map
 * fields, sub-messages whose length needs more than one byte, and the
 * forms it hands to protobuf-c (a oneof, repeated scalars, unknown fields);
 * then a few thousand messages of random values. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb_pack.h"
#include "pbpack.pb-c.h"
#include "tap.h"

typedef Collectord__Pbpack__V1__Every Every;
typedef Collectord__Pbpack__V1__Fallback Fallback;
typedef Collectord__Pbpack__V1__Every__ExtraEntry Entry;

/* pb_pack(M) behind RESERVE bytes equals protobuf_c_message_pack(M). */
static bool
same_bytes(const ProtobufCMessage *m, size_t reserve)
{
	size_t want_len = protobuf_c_message_get_packed_size(m), len = 0;
	uint8_t *want = malloc(want_len + 1), *got = NULL;
	bool same;

	protobuf_c_message_pack(m, want);
	same = pb_pack(m, reserve, &got, &len) && len == want_len &&
	       memcmp(got + reserve, want, len) == 0;
	free(want);
	free(got);
	return same;
}

static void
every_init(Every *e)
{
	collectord__pbpack__v1__every__init(e);
}

static void
test_scalars(void)
{
	static const int32_t i32s[] = {0, 1, -1, 127, 128, INT32_MAX, INT32_MIN};
	static const int64_t i64s[] = {0, 1, -1, 300, INT64_MAX, INT64_MIN};
	static const double dbs[] = {0.0, -0.0, 1.5, -1e308, DBL_MIN, INFINITY};
	Every e;

	every_init(&e);
	ok(same_bytes(&e.base, 0), "an empty message: only the required fields");
	for (size_t i = 0; i < sizeof(i32s) / sizeof(i32s[0]); i++) {
		every_init(&e);
		e.has_i32 = e.has_s32 = e.has_u32 = e.has_sf32 = e.has_f32 = 1;
		e.has_colour = e.has_big_number = 1;
		e.i32 = e.s32 = e.sf32 = e.big_number = i32s[i];
		e.u32 = e.f32 = (uint32_t)i32s[i];
		e.colour = i32s[i] < 0 ? COLLECTORD__PBPACK__V1__COLOUR__BLUE
				       : COLLECTORD__PBPACK__V1__COLOUR__GREEN;
		e.req = i32s[i];
		ok(same_bytes(&e.base, 0), "32-bit fields at %d", i32s[i]);
	}
	for (size_t i = 0; i < sizeof(i64s) / sizeof(i64s[0]); i++) {
		every_init(&e);
		e.has_i64 = e.has_s64 = e.has_u64 = e.has_sf64 = e.has_f64 = 1;
		e.i64 = e.s64 = e.sf64 = i64s[i];
		e.u64 = e.f64 = (uint64_t)i64s[i];
		ok(same_bytes(&e.base, 0), "64-bit fields at %lld", (long long)i64s[i]);
	}
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		every_init(&e);
		e.has_db = e.has_fl = e.has_bo = 1;
		e.db = dbs[i];
		e.fl = (float)dbs[i];
		e.bo = i % 2;
		ok(same_bytes(&e.base, 0), "double, float and bool at %g", dbs[i]);
	}
	every_init(&e);
	e.i32 = 5; /* set but not present: not written */
	ok(same_bytes(&e.base, 0), "a value without its has_ flag is not written");
}

static void
test_strings(void)
{
	static uint8_t raw[] = {0, 1, 2, 0xff};
	char long_text[300];
	Every e;

	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	every_init(&e);
	e.str = "";
	e.req_str = NULL;
	ok(same_bytes(&e.base, 0), "an empty string; a NULL required string");
	e.str = long_text;
	e.req_str = "required";
	ok(same_bytes(&e.base, 0), "a string of 299 bytes");
	e.with_default = "dflt";
	ok(same_bytes(&e.base, 0), "a string equal to its default, not the default pointer");
	every_init(&e);
	ok(same_bytes(&e.base, 0), "the default pointer itself is not written");
	e.has_by = 1;
	e.by.data = raw;
	e.by.len = sizeof(raw);
	ok(same_bytes(&e.base, 0), "bytes with a NUL and 0xff");
}

static void
test_nested(void)
{
	char *strs[] = {"a", "", "ccc", "dd"};
	ProtobufCBinaryData bys[] = {{0, NULL}, {3, (uint8_t *)"abc"}};
	char long_text[200];
	Every e, sub, inner, l0, l1, *subs[2] = {&l0, &l1};
	Entry x0, x1, *extra[2] = {&x0, &x1};

	memset(long_text, 'y', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	every_init(&e);
	every_init(&sub);
	every_init(&inner);
	every_init(&l0);
	every_init(&l1);
	collectord__pbpack__v1__every__extra_entry__init(&x0);
	collectord__pbpack__v1__every__extra_entry__init(&x1);
	e.sub = &sub;
	ok(same_bytes(&e.base, 0), "an empty sub-message; a NULL required one");
	sub.str = long_text;
	sub.sub = &inner;
	inner.str = long_text;
	e.req_sub = &inner;
	ok(same_bytes(&e.base, 0), "sub-messages longer than 127 bytes, nested");
	e.n_strs = 4;
	e.strs = strs;
	e.n_bys = 2;
	e.bys = bys;
	l1.str = "second";
	e.n_subs = 2;
	e.subs = subs;
	x0.key = "k";
	x0.value = "v";
	x1.key = "";
	x1.value = long_text;
	e.n_extra = 2;
	e.extra = extra;
	ok(same_bytes(&e.base, 0), "repeated strings (one empty), bytes, messages and a map");
	ok(same_bytes(&e.base, 5), "... behind 5 reserved bytes");
}

static void
test_fallback(void)
{
	int32_t nums[] = {1, -1, 300};
	Fallback f;
	Every e;
	ProtobufCMessageUnknownField unk = {.tag = 99,
	    .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT,
	    .len = 1,
	    .data = (uint8_t *)"\x05"};

	collectord__pbpack__v1__fallback__init(&f);
	f.choice_case = COLLECTORD__PBPACK__V1__FALLBACK__CHOICE_B;
	f.b = "oneof";
	ok(same_bytes(&f.base, 0), "a oneof: protobuf-c's packer");
	f.n_nums = f.n_packed_nums = 3;
	f.nums = f.packed_nums = nums;
	ok(same_bytes(&f.base, 3), "repeated and packed scalars, behind reserved bytes");
	every_init(&e);
	e.base.n_unknown_fields = 1;
	e.base.unknown_fields = &unk;
	ok(same_bytes(&e.base, 0), "unknown fields");
}

static uint64_t
rnd(void)
{
	static uint64_t x = 0x9e3779b97f4a7c15u;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static void
test_random(void)
{
	size_t same = 0, n = 3000;

	for (size_t i = 0; i < n; i++) {
		char text[64];
		Every e, sub;
		uint64_t r = rnd();
		double d;

		every_init(&e);
		every_init(&sub);
		e.has_i32 = r & 1;
		e.i32 = (int32_t)rnd();
		e.has_s64 = (r >> 1) & 1;
		e.s64 = (int64_t)rnd();
		e.has_u64 = (r >> 2) & 1;
		e.u64 = rnd() >> (rnd() % 64);
		e.has_db = (r >> 3) & 1;
		memcpy(&d, &(uint64_t){rnd()}, sizeof(d));
		e.db = d;
		snprintf(text, sizeof(text), "%llu", (unsigned long long)(rnd() % 100000));
		if ((r >> 4) & 1)
			e.str = text;
		if ((r >> 5) & 1) {
			sub.has_sf32 = 1;
			sub.sf32 = (int32_t)rnd();
			e.sub = &sub;
		}
		e.req = (int32_t)(rnd() % 1000) - 500;
		same += same_bytes(&e.base, rnd() % 20);
	}
	is_int((long long)same, (long long)n, "random messages packed as protobuf-c packs them");
}

int
main(void)
{
	test_scalars();
	test_strings();
	test_nested();
	test_fallback();
	test_random();
	return tap_done();
}
