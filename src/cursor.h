/*
 * cursor.h: the record window of one partition, as the enricher walks it.
 * Pure: offsets and opaque items in, counts, offsets and items out; no
 * Kafka, loop, S3 or PostgreSQL.
 *
 * The window holds items in strictly increasing offset order, cut by four
 * counts that never cross:  confirmed <= flushed <= processed <= received.
 *   [0, confirmed)          confirmed by every sink, kept only because the
 *                           block's next flush rewrites them
 *   [confirmed, flushed)    in the flush in flight (at most one)
 *   [flushed, processed)    processed, waiting for a flush
 *   [processed, received)   received, not processed yet
 * A flush covers records of one aligned block of N offsets,
 * [k*N, (k+1)*N); see cursor_flush_begin().  Every call that would break
 * the order (or the offset order) is refused and changes nothing; after
 * every change the invariants are asserted (active unless NDEBUG).
 */
#ifndef COLLECTORD_CURSOR_H
#define COLLECTORD_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cursor;

/* Called once for each item leaving the window (dropped or freed). */
typedef void (*cursor_release_cb)(void *item);

/* The records of a flush: offsets [first_off, last_off] of one block. */
struct cursor_block {
	int64_t first_off, last_off;
	bool final; /* no record of the block can follow it */
};

/* First and last offset of the block of N (>= 1) offsets holding OFFSET
 * (>= 0): [floor(OFFSET/N)*N, floor(OFFSET/N)*N + N - 1]. */
int64_t cursor_block_first(int64_t offset, int64_t n);
int64_t cursor_block_last(int64_t offset, int64_t n);

/* An empty window cutting blocks of BLOCK (>= 1) offsets; RELEASE (may be
 * NULL) gets each item that leaves it.  NULL when BLOCK < 1 or out of
 * memory. */
struct cursor *cursor_new(int64_t block, cursor_release_cb release)
    __attribute__((warn_unused_result));
/* Releases every item still held.  NULL-safe. */
void cursor_free(struct cursor *c);

/*
 * The first offset seen after assignment (the committed one): storing an
 * offset at or below it would move the commit back, so
 * cursor_store_offset() never answers one.  Refused once set, or once a
 * record was received.
 */
bool cursor_set_floor(struct cursor *c, int64_t offset) __attribute__((warn_unused_result));

/* Append ITEM, received at OFFSET.  Refused when OFFSET is not above every
 * offset received so far, or out of memory. */
bool cursor_push(struct cursor *c, int64_t offset, void *item) __attribute__((warn_unused_result));

/* Mark the first unprocessed record processed; refused when there is none. */
bool cursor_process(struct cursor *c) __attribute__((warn_unused_result));

/* Whether the processed records waiting for a flush close their block: one
 * at or past its end was processed, or a later block's record waits behind
 * them.  False when none waits. */
bool cursor_block_closed(const struct cursor *c);

/*
 * Start a flush: first drop the confirmed records when they belong to an
 * earlier block than the next one to flush (that block's object is whole),
 * then mark flushed the processed records of the first unflushed
 * record's block, and describe them in *B.  Afterwards item 0 is the
 * block's first record held (its S3 object is named after it) and
 * [cursor_confirmed(), cursor_flushed()) are the flush's records.
 * Refused while a flush is in flight or when nothing processed waits.
 */
bool cursor_flush_begin(struct cursor *c, struct cursor_block *b)
    __attribute__((warn_unused_result));
/* Whether a flush is in flight. */
bool cursor_flushing(const struct cursor *c);

/*
 * Every sink confirmed the flush in flight, the one of offsets
 * [FIRST_OFF, LAST_OFF]: its records become confirmed, and LAST_OFF + 1
 * becomes the offset safe to store.  The confirmed records are dropped
 * at once when the block is final or a later block's record follows.
 * Refused when no flush is in flight or FIRST_OFF/LAST_OFF are not its
 * (a late answer for a flush the window no longer holds).
 */
bool cursor_confirm(struct cursor *c, int64_t first_off, int64_t last_off)
    __attribute__((warn_unused_result));

/* Drop the first K confirmed records.  Refused when K > confirmed or while a
 * flush is in flight (its records would move under it). */
bool cursor_drop_front(struct cursor *c, size_t k) __attribute__((warn_unused_result));
/* Drop the records not processed yet: they were never stored, so they are
 * read again (their offsets may be received again). */
void cursor_drop_unprocessed(struct cursor *c);
/* Drop every record, the flush in flight included (revocation): nothing of
 * the window is confirmed from now on; the offset safe to store stays. */
void cursor_drop_all(struct cursor *c);

/* The offset everything below which is confirmed, when it is above the
 * floor: the one to store.  -1 when there is none. */
int64_t cursor_store_offset(const struct cursor *c);

/* The counts; each is an index into the window. */
size_t cursor_received(const struct cursor *c);
size_t cursor_processed(const struct cursor *c);
size_t cursor_flushed(const struct cursor *c);
size_t cursor_confirmed(const struct cursor *c);
/* Item I (0: the oldest held) and its offset; NULL / -1 past the end. */
void *cursor_item(const struct cursor *c, size_t i);
int64_t cursor_offset(const struct cursor *c, size_t i);

/* Whether every invariant holds (what the assertions check). */
bool cursor_sane(const struct cursor *c);

#endif
