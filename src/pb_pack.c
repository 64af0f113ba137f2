/* pb_pack.c: see pb_pack.h.  Field by field as protobuf-c packs them: in
 * the descriptor's order (by number), proto2 presence (a has_ flag, or a
 * pointer that is neither NULL nor the default), repeated fields unpacked. */
#include "pb_pack.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;	  /* realloc failed: nothing more is written */
	bool unsupported; /* a field this writer leaves to protobuf-c */
};

static bool __attribute__((noinline)) grow(struct wbuf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->oom)
		return false;
	cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n;
	if ((p = realloc(b->p, cap)) == NULL) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

/* Room for N more bytes: the test inline, the growing not. */
static inline bool
room(struct wbuf *b, size_t n)
{
	return (b->cap - b->len >= n && !b->oom) || grow(b, n);
}

static size_t
varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t
pb_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	if (v < 0x80) {
		*p = (uint8_t)v;
		return 1;
	}

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static inline void
w_varint(struct wbuf *b, uint64_t v)
{
	if (!room(b, 10))
		return;
	if (v < 0x80) {
		b->p[b->len++] = (uint8_t)v;
		return;
	}
	while (v >= 0x80) {
		b->p[b->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b->p[b->len++] = (uint8_t)v;
}

static inline void
w_tag(struct wbuf *b, uint32_t id, unsigned wire)
{
	w_varint(b, (uint64_t)id << 3 | wire);
}

/* N bytes of V, least significant first, whatever the host's order. */
static void
w_fixed(struct wbuf *b, uint64_t v, size_t n)
{
	if (!room(b, n))
		return;
	for (size_t i = 0; i < n; i++)
		b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static void
w_bytes(struct wbuf *b, const void *data, size_t n)
{
	w_varint(b, n);
	if (n > 0 && room(b, n)) {
		memcpy(b->p + b->len, data, n);
		b->len += n;
	}
}

static void w_message(struct wbuf *b, const ProtobufCMessage *m);

/* M behind its length: written after a one-byte length, then moved up in
 * the rare case the length needs more bytes. */
static void
w_sub(struct wbuf *b, const ProtobufCMessage *m)
{
	size_t at, n, k;

	if (m == NULL) {
		w_varint(b, 0);
		return;
	}
	if (!room(b, 1))
		return;
	at = b->len++;
	w_message(b, m);
	if (b->oom || b->unsupported)
		return;
	n = b->len - at - 1;
	if ((k = varint_size(n)) > 1) {
		if (!room(b, k - 1))
			return;
		memmove(b->p + at + k, b->p + at + 1, n);
		b->len += k - 1;
	}
	pb_put_varint(b->p + at, n);
}

/* One value of F stored at MEMBER, its tag first. */
static void
w_value(struct wbuf *b, const ProtobufCFieldDescriptor *f, const void *member)
{
	uint32_t u32;
	uint64_t u64;
	int32_t i32;
	int64_t i64;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_ENUM:
		memcpy(&i32, member, sizeof(i32));
		w_tag(b, f->id, 0);
		/* negative: ten bytes, sign-extended, as protobuf-c writes it */
		w_varint(b, i32 < 0 ? (uint64_t)(int64_t)i32 : (uint64_t)i32);
		break;
	case PROTOBUF_C_TYPE_SINT32:
		memcpy(&i32, member, sizeof(i32));
		w_tag(b, f->id, 0);
		w_varint(b, ((uint32_t)i32 << 1) ^ (uint32_t)(i32 >> 31));
		break;
	case PROTOBUF_C_TYPE_UINT32:
		memcpy(&u32, member, sizeof(u32));
		w_tag(b, f->id, 0);
		w_varint(b, u32);
		break;
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		memcpy(&u32, member, sizeof(u32));
		w_tag(b, f->id, 5);
		w_fixed(b, u32, 4);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
		memcpy(&u64, member, sizeof(u64));
		w_tag(b, f->id, 0);
		w_varint(b, u64);
		break;
	case PROTOBUF_C_TYPE_SINT64:
		memcpy(&i64, member, sizeof(i64));
		w_tag(b, f->id, 0);
		w_varint(b, ((uint64_t)i64 << 1) ^ (uint64_t)(i64 >> 63));
		break;
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		memcpy(&u64, member, sizeof(u64));
		w_tag(b, f->id, 1);
		w_fixed(b, u64, 8);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		w_tag(b, f->id, 0);
		w_varint(b, *(const protobuf_c_boolean *)member ? 1 : 0);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)member;
		size_t n = s != NULL ? strlen(s) : 0;

		/* The most common field: tag, length and bytes behind one
		 * test of the room. */
		if (!room(b, 20 + n))
			return;
		b->len += pb_put_varint(b->p + b->len, (uint64_t)f->id << 3 | 2);
		b->len += pb_put_varint(b->p + b->len, n);
		if (n > 0)
			memcpy(b->p + b->len, s, n);
		b->len += n;
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bd = member;

		w_tag(b, f->id, 2);
		w_bytes(b, bd->data, bd->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		w_tag(b, f->id, 2);
		w_sub(b, *(ProtobufCMessage *const *)member);
		break;
	default:
		b->unsupported = true;
		break;
	}
}

static size_t
element_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 0; /* scalars may be packed: left to protobuf-c */
	}
}

static void
w_message(struct wbuf *b, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (m->n_unknown_fields > 0) {
		b->unsupported = true;
		return;
	}
	/* Past out of memory nothing more is written (room() fails), and
	 * past an unsupported field the bytes are protobuf-c's: no test of
	 * either a field. */
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *member = (const char *)m + f->offset;
		const char *quant = (const char *)m + f->quantifier_offset;

		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			b->unsupported = true;
			return;
		}
		switch (f->label) {
		case PROTOBUF_C_LABEL_REQUIRED:
			w_value(b, f, member);
			break;
		case PROTOBUF_C_LABEL_OPTIONAL:
			if (f->type == PROTOBUF_C_TYPE_MESSAGE ||
			    f->type == PROTOBUF_C_TYPE_STRING) {
				const void *ptr = *(const void *const *)member;

				if (ptr == NULL || ptr == f->default_value)
					break;
			} else if (!*(const protobuf_c_boolean *)quant) {
				break;
			}
			w_value(b, f, member);
			break;
		case PROTOBUF_C_LABEL_REPEATED: {
			size_t n = *(const size_t *)quant, size = element_size(f);
			const char *arr = *(const char *const *)member;

			if (size == 0) {
				b->unsupported |= n > 0;
				break;
			}
			for (size_t k = 0; k < n; k++)
				w_value(b, f, arr + k * size);
			break;
		}
		default: /* proto3's implicit presence: not in our schemas */
			b->unsupported = true;
			break;
		}
	}
}

bool
pb_pack(const ProtobufCMessage *m, size_t reserve, uint8_t **out, size_t *len)
{
	struct wbuf b = {.cap = reserve + 512};

	*out = NULL;
	*len = 0;
	if ((b.p = malloc(b.cap)) == NULL)
		return false;
	b.len = reserve;
	w_message(&b, m);
	if (b.unsupported && !b.oom) {
		size_t size = protobuf_c_message_get_packed_size(m);
		uint8_t *p = realloc(b.p, reserve + size + 1);

		if (p == NULL) {
			free(b.p);
			return false;
		}
		b.p = p;
		b.len = reserve + protobuf_c_message_pack(m, p + reserve);
	}
	if (b.oom) {
		free(b.p);
		return false;
	}
	*out = b.p;
	*len = b.len - reserve;
	return true;
}
