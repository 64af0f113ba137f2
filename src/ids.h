/* ids.h: batch ids (UUIDv7), per-event correlation ids, and the parsing of
 * the id forms producers send (UUID, ULID, MongoDB ObjectId) into UUIDs. */
#ifndef COLLECTORD_IDS_H
#define COLLECTORD_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDS_WUR __attribute__((warn_unused_result))

/* Canonical text: 36 characters plus the NUL. */
#define IDS_TEXT_SIZE 37

enum ids_form {
	IDS_FORM_UUID,	   /* 8-4-4-4-12 hex, 32 hex, or {8-4-4-4-12} */
	IDS_FORM_ULID,	   /* 26 characters of Crockford base32 */
	IDS_FORM_OBJECTID, /* 24 hex characters */
};

/*
 * Batch ids are UUIDv7 (RFC 9562): bytes 0-5 the unix time in ms, big-endian;
 * version 7 in the high nibble of byte 6; variant 10 in the top bits of
 * byte 8; the other 74 bits random.
 *
 * A correlation id is its batch id with bytes 12-15 replaced by the event's
 * index in the batch, big-endian.  The events of one batch therefore share
 * bytes 0-11 and form the range [prefix 00000000, prefix ffffffff]; the 42
 * random bits left in the prefix keep two batches of the same millisecond
 * apart.
 */

/* A new batch id from the real-time clock and getrandom().  The time part
 * never goes backwards within one process, even if the clock is stepped
 * back (it then repeats the last millisecond).  Not thread-safe. */
void ids_batch_new(uint8_t out[16]);

/* The batch id for UNIX_MS (low 48 bits used) and RND: rnd[0] low nibble,
 * rnd[1], rnd[2] low 6 bits and rnd[3..9] fill the 74 random bits.
 * Deterministic, for tests and replays. */
void ids_batch_at(uint8_t out[16], uint64_t unix_ms, const uint8_t rnd[10]);

/* The 48-bit millisecond time of a UUIDv7 (or of any correlation id). */
uint64_t ids_time_ms(const uint8_t id[16]);

/* OUT = BATCH with bytes 12-15 set to INDEX, big-endian.  OUT may be BATCH. */
void ids_correlation(uint8_t out[16], const uint8_t batch[16], uint32_t index);

/* The event index held in bytes 12-15 of a correlation id. */
uint32_t ids_correlation_index(const uint8_t id[16]);

/* The first and last correlation ids of the batch ID belongs to: the bounds
 * for "WHERE correlation_id BETWEEN first AND last". */
void ids_batch_range(const uint8_t id[16], uint8_t first[16], uint8_t last[16]);

/* True when A and B are correlation ids of the same batch. */
bool ids_same_batch(const uint8_t a[16], const uint8_t b[16]);

/* Lower-case canonical 8-4-4-4-12 text of ID into OUT (NUL-terminated). */
void ids_format(const uint8_t id[16], char out[IDS_TEXT_SIZE]);

/*
 * Parse S (NUL-terminated, no surrounding spaces) into the 16 bytes of a UUID.
 * Accepted, case-insensitive everywhere:
 *   UUID      "6c1f0e8a-2d4b-4a9c-b7e3-5f8d1a2c4e6b", the same 32 hex digits
 *             without hyphens, or the hyphenated form inside { }.  Any
 *             version and variant; the bytes are taken as written.
 *   ULID      26 Crockford base32 characters (0-9 A-Z without I L O U), the
 *             first at most '7' so that the value fits 128 bits.  The ULID's
 *             128 bits are the UUID's bytes, unchanged (the ULID's 48-bit ms
 *             time stays in bytes 0-5).
 *   ObjectId  24 hex digits, mapped into a UUIDv8 as ids_objectid_to_uuid().
 * Anything else (other lengths, "urn:uuid:", spaces, the letters I L O U in
 * a ULID) is rejected.  FORM, when not NULL, receives which form it was.
 * Returns false, leaving OUT unspecified, if S is not one of these.
 */
bool ids_parse(const char *s, uint8_t out[16], enum ids_form *form) IDS_WUR;

/* True when S is a UUID in canonical text already: 8-4-4-4-12 lower-case
 * hex digits, what ids_format() writes.  Such a text is one ids_parse()
 * takes and ids_format() gives back unchanged; the check is a fraction of
 * that round trip. */
bool ids_canonical(const char *s);

/*
 * ObjectId layout in a UUIDv8 (byte-wise order of ObjectIds is kept, so the
 * 4-byte creation time still sorts first):
 *   bytes 0-5   oid[0..5]
 *   byte  6     0x80          version 8, low nibble 0
 *   byte  7     oid[6]
 *   byte  8     0x80          variant 10, low 6 bits 0
 *   bytes 9-13  oid[7..11]
 *   bytes 14-15 0x00 0x00
 * The 26 fixed-zero bits mark the mapping, so a UUID is recognised as a
 * mapped ObjectId only if version, variant and all of them match.
 */
void ids_objectid_to_uuid(const uint8_t oid[12], uint8_t out[16]);

/* The inverse: OID from a UUID built by ids_objectid_to_uuid().  False if
 * ID does not have that exact layout. */
bool ids_objectid_from_uuid(const uint8_t id[16], uint8_t oid[12]) IDS_WUR;

/* Upper-case ULID text of the 128 bits of ID (26 characters and the NUL). */
void ids_format_ulid(const uint8_t id[16], char out[27]);

/* Lower-case hex of an ObjectId (24 characters and the NUL). */
void ids_format_objectid(const uint8_t oid[12], char out[25]);

#endif
