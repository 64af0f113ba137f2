/* pb_pack.h: a protobuf-c message to its wire bytes in one pass.
 * protobuf_c_message_pack() needs the packed size first, and computes the
 * size of every sub-message again to write its length: on the collect
 * path the two passes cost more than building the message.  This one
 * writes each sub-message in place behind a one-byte length and moves it
 * in the rare case the length needs more.  Its bytes are protobuf-c's, to
 * the byte (t/codec.t and fuzz_body compare them). */
#ifndef COLLECTORD_PB_PACK_H
#define COLLECTORD_PB_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * M's wire bytes after the first RESERVE bytes of a new buffer (left for
 * the caller, e.g. a Confluent frame header): *OUT (malloc'd, caller
 * frees) holds RESERVE + *LEN bytes.  Falls back to protobuf-c's packer
 * for what this one does not write (oneofs, unknown fields).  False only
 * when out of memory.
 */
bool pb_pack(const ProtobufCMessage *m, size_t reserve, uint8_t **out, size_t *len);

/* V as a base-128 varint at P (room for 10 bytes); how many bytes. */
size_t pb_put_varint(uint8_t *p, uint64_t v);

#endif
