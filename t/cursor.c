/* t/cursor.c: one partition's record window alone: push, process, flush,
 * confirm, drop; the blocks a flush covers; revocation and stop; the offset
 * that is safe to store; and every call that would break the order
 * confirmed <= flushed <= processed <= received refused without a change. */
#include <stdint.h>
#include <stdlib.h>

#include "cursor.h"
#include "tap.h"

/* Items are offsets in a static array; the release log says which left. */
static int64_t items[4096];
static int64_t released[4096];
static size_t nreleased;

static void
on_release(void *item)
{
	if (nreleased < sizeof(released) / sizeof(released[0]))
		released[nreleased] = *(int64_t *)item;
	nreleased++;
}

static void *
item(int64_t offset)
{
	items[offset] = offset;
	return &items[offset];
}

struct counts {
	size_t n, nproc, nflush, nconf;
	int64_t stored, front;
};

static struct counts
counts(const struct cursor *c)
{
	struct counts k = {cursor_received(c), cursor_processed(c), cursor_flushed(c),
	    cursor_confirmed(c), cursor_store_offset(c), cursor_offset(c, 0)};

	return k;
}

static bool
same(struct counts a, struct counts b)
{
	return a.n == b.n && a.nproc == b.nproc && a.nflush == b.nflush && a.nconf == b.nconf &&
	       a.stored == b.stored && a.front == b.front;
}

static bool
is_counts(const struct cursor *c, size_t n, size_t nproc, size_t nflush, size_t nconf)
{
	bool good = cursor_received(c) == n && cursor_processed(c) == nproc &&
		    cursor_flushed(c) == nflush && cursor_confirmed(c) == nconf && cursor_sane(c);

	if (!good)
		printf("#   got received=%zu processed=%zu flushed=%zu confirmed=%zu sane=%d\n",
		    cursor_received(c), cursor_processed(c), cursor_flushed(c), cursor_confirmed(c),
		    cursor_sane(c));
	return good;
}

/* Push offsets FROM..TO and process them all. */
static bool
push_processed(struct cursor *c, int64_t from, int64_t to)
{
	for (int64_t o = from; o <= to; o++)
		if (!cursor_push(c, o, item(o)) || !cursor_process(c))
			return false;
	return true;
}

static void
test_new(void)
{
	struct cursor *c;

	is_int(cursor_block_first(7, 4), 4, "offset 7, N 4: block starts at 4");
	is_int(cursor_block_last(7, 4), 7, "offset 7, N 4: block ends at 7");
	is_int(cursor_block_first(8, 4), 8, "offset 8 starts the next block");
	ok(cursor_new(0, NULL) == NULL && cursor_new(-3, NULL) == NULL,
	    "a block under 1 is refused");
	c = cursor_new(4, on_release);
	ok(c != NULL && is_counts(c, 0, 0, 0, 0), "a new window is empty and sane");
	ok(cursor_item(c, 0) == NULL && cursor_offset(c, 0) == -1, "nothing past the end");
	is_int(cursor_store_offset(c), -1, "nothing to store before a confirmation");
	ok(!cursor_flushing(c) && !cursor_block_closed(c), "no flush, no block to close");
	cursor_free(c);
	cursor_free(NULL);
	ok(1, "cursor_free(NULL) is harmless");
}

static void
test_whole_block(void)
{
	struct cursor *c = cursor_new(4, on_release);
	struct cursor_block b;

	nreleased = 0;
	for (int64_t o = 0; o < 6; o++)
		if (!cursor_push(c, o, item(o)))
			break;
	ok(is_counts(c, 6, 0, 0, 0), "six received");
	ok(cursor_process(c) && cursor_process(c) && cursor_process(c), "three processed");
	ok(!cursor_block_closed(c), "offsets 0-2 processed, 3 not yet: block [0, 3] still open");
	ok(cursor_process(c), "offset 3 processed");
	ok(cursor_block_closed(c), "offset 3 processed: block [0, 3] closed");
	ok(cursor_flush_begin(c, &b), "flush begun");
	ok(b.first_off == 0 && b.last_off == 3 && b.final, "it covers [0, 3], final");
	ok(is_counts(c, 6, 4, 4, 0) && cursor_flushing(c), "four in flight");
	ok(*(int64_t *)cursor_item(c, cursor_confirmed(c)) == 0,
	    "the flush's first record is item 0");
	ok(!cursor_confirm(c, 0, 2), "a confirmation of another range is refused");
	ok(cursor_confirm(c, 0, 3), "the flush confirmed");
	ok(is_counts(c, 2, 0, 0, 0) && !cursor_flushing(c), "a final block leaves at once");
	ok(nreleased == 4 && released[0] == 0 && released[3] == 3,
	    "its four records released in order");
	is_int(cursor_store_offset(c), 4, "offset 4 is safe to store");
	is_int(cursor_offset(c, 0), 4, "offset 4 is first now");
	cursor_free(c);
	is_int((long long)nreleased, 6, "cursor_free releases the rest");
}

static void
test_partial_flushes(void)
{
	struct cursor *c = cursor_new(4, on_release);
	struct cursor_block b;

	nreleased = 0;
	ok(push_processed(c, 8, 9), "offsets 8 and 9 processed");
	ok(!cursor_block_closed(c), "block [8, 11] is open");
	ok(cursor_flush_begin(c, &b) && b.first_off == 8 && b.last_off == 9 && !b.final,
	    "a timed flush covers [8, 9], not final");
	ok(cursor_confirm(c, 8, 9) && is_counts(c, 2, 2, 2, 2),
	    "confirmed, and kept for the block");
	is_int(cursor_store_offset(c), 10, "offset 10 is safe to store");
	is_int((long long)nreleased, 0, "nothing released");
	ok(push_processed(c, 10, 10), "offset 10 processed");
	ok(cursor_flush_begin(c, &b) && b.first_off == 10 && b.last_off == 10 && !b.final,
	    "the next flush covers [10, 10] only");
	ok(is_counts(c, 3, 3, 3, 2), "the earlier records stay confirmed");
	is_int(*(int64_t *)cursor_item(c, 0), 8, "item 0 is still the block's first record");
	ok(cursor_confirm(c, 10, 10) && is_counts(c, 3, 3, 3, 3), "confirmed, still kept");
	ok(push_processed(c, 11, 11) && cursor_block_closed(c), "offset 11 closes the block");
	ok(cursor_flush_begin(c, &b) && b.first_off == 11 && b.final, "the last flush is final");
	ok(cursor_confirm(c, 11, 11) && is_counts(c, 0, 0, 0, 0), "then the whole block leaves");
	is_int((long long)nreleased, 4, "all four released");
	is_int(cursor_store_offset(c), 12, "offset 12 is safe to store");
	cursor_free(c);
}

static void
test_boundary(void)
{
	struct cursor *c = cursor_new(4, on_release);
	struct cursor_block b;

	/* Offset 3 is missing (compaction, a transaction marker). */
	nreleased = 0;
	ok(cursor_push(c, 1, item(1)) && cursor_push(c, 2, item(2)) && cursor_push(c, 4, item(4)) &&
		cursor_process(c) && cursor_process(c) && cursor_process(c),
	    "offsets 1, 2 and 4 processed");
	ok(cursor_block_closed(c), "a later block's record closes block [0, 3]");
	ok(cursor_flush_begin(c, &b) && b.first_off == 1 && b.last_off == 2 && b.final,
	    "the flush stops at the boundary, final");
	ok(is_counts(c, 3, 3, 2, 0), "offset 4 waits outside the flush");
	ok(cursor_confirm(c, 1, 2) && is_counts(c, 1, 1, 0, 0),
	    "block [0, 3] leaves when confirmed");
	is_int(cursor_store_offset(c), 3, "offset 3 is safe to store");
	ok(cursor_flush_begin(c, &b) && b.first_off == 4 && b.last_off == 4 && !b.final,
	    "then block [4, 7] alone");
	ok(cursor_confirm(c, 4, 4), "confirmed");
	cursor_free(c);

	/* Held (the registry is asked): a later block's record received but
	 * not processed still closes the block. */
	c = cursor_new(4, on_release);
	ok(cursor_push(c, 1, item(1)) && cursor_push(c, 5, item(5)) && cursor_process(c) &&
		cursor_block_closed(c),
	    "offset 1 processed, 5 held: block [0, 3] closed");
	ok(cursor_flush_begin(c, &b) && b.first_off == 1 && b.last_off == 1 && b.final,
	    "its flush is final");
	cursor_free(c);

	/* A later block's record arrives while the flush is in flight. */
	c = cursor_new(4, on_release);
	nreleased = 0;
	ok(push_processed(c, 1, 2) && cursor_flush_begin(c, &b) && !b.final,
	    "[1, 2] in flight, not final");
	ok(cursor_push(c, 5, item(5)), "offset 5 arrives meanwhile");
	ok(cursor_confirm(c, 1, 2) && is_counts(c, 1, 0, 0, 0),
	    "confirmed: block [0, 3] leaves, offset 5 is of the next");
	is_int((long long)nreleased, 2, "two released");
	cursor_free(c);

	/* A later block's record shows up only after the confirmation. */
	c = cursor_new(4, on_release);
	nreleased = 0;
	ok(push_processed(c, 1, 2) && cursor_flush_begin(c, &b) && cursor_confirm(c, 1, 2) &&
		is_counts(c, 2, 2, 2, 2),
	    "[1, 2] confirmed and kept");
	ok(push_processed(c, 5, 5) && cursor_flush_begin(c, &b) && b.first_off == 5,
	    "the next flush is of block [4, 7]");
	ok(is_counts(c, 1, 1, 1, 0) && nreleased == 2, "it dropped the finished block first");
	is_int(*(int64_t *)cursor_item(c, 0), 5, "item 0 names the new block");
	cursor_free(c);
}

static void
test_revoke_and_stop(void)
{
	struct cursor *c = cursor_new(4, on_release);
	struct cursor_block b;

	nreleased = 0;
	ok(push_processed(c, 0, 1) && cursor_push(c, 2, item(2)), "0 and 1 processed, 2 received");
	ok(cursor_flush_begin(c, &b) && b.last_off == 1, "[0, 1] in flight");
	cursor_drop_all(c);
	ok(is_counts(c, 0, 0, 0, 0) && !cursor_flushing(c), "revoked mid-block: empty");
	is_int((long long)nreleased, 3, "every record released, the flight's too");
	ok(!cursor_confirm(c, 0, 1), "the revoked flush's late confirmation is refused");
	is_int(cursor_store_offset(c), -1, "and stores nothing");
	ok(cursor_push(c, 0, item(0)), "its offsets may be received again");
	cursor_free(c);

	c = cursor_new(4, on_release);
	ok(push_processed(c, 0, 1) && cursor_flush_begin(c, &b) && cursor_confirm(c, 0, 1),
	    "[0, 1] confirmed");
	ok(cursor_push(c, 2, item(2)) && cursor_push(c, 3, item(3)), "2 and 3 received");
	cursor_drop_all(c);
	is_int(cursor_store_offset(c), 2, "after a revocation the confirmed offset stays");
	ok(!cursor_push(c, 1, item(1)) && cursor_push(c, 2, item(2)),
	    "the unconfirmed offsets may come again, the confirmed may not");
	cursor_free(c);

	/* Stopping: the unprocessed records go, the rest flushes. */
	c = cursor_new(4, on_release);
	nreleased = 0;
	ok(cursor_push(c, 0, item(0)) && cursor_push(c, 1, item(1)) && cursor_push(c, 2, item(2)) &&
		cursor_process(c),
	    "three received, one processed");
	cursor_drop_unprocessed(c);
	ok(is_counts(c, 1, 1, 0, 0) && nreleased == 2 && released[0] == 1 && released[1] == 2,
	    "the two unprocessed released");
	ok(!cursor_push(c, 0, item(0)) && cursor_push(c, 1, item(1)),
	    "their offsets may come again, none below");
	cursor_free(c);
}

static void
test_store_rule(void)
{
	struct cursor *c = cursor_new(5, on_release);
	struct cursor_block b;

	/* Committed 7 inside block [5, 9]: the consumer seeks back to 5. */
	ok(cursor_set_floor(c, 7), "floor 7");
	ok(!cursor_set_floor(c, 8), "the floor is set once");
	ok(push_processed(c, 5, 6) && cursor_flush_begin(c, &b) && cursor_confirm(c, 5, 6),
	    "[5, 6] confirmed");
	is_int(cursor_store_offset(c), -1, "offset 7 is the floor: storing it is moot");
	ok(push_processed(c, 7, 7) && cursor_flush_begin(c, &b) && cursor_confirm(c, 7, 7),
	    "[7, 7] confirmed");
	is_int(cursor_store_offset(c), 8, "offset 8 is above the floor: stored");
	cursor_free(c);

	c = cursor_new(5, on_release);
	ok(cursor_push(c, 0, item(0)) && !cursor_set_floor(c, 0),
	    "no floor once a record was received");
	cursor_free(c);
	c = cursor_new(5, on_release);
	ok(!cursor_set_floor(c, -1), "a negative floor is refused");
	cursor_free(c);
}

/* Each refusal leaves the window exactly as it was. */
static void
test_refusals(void)
{
	struct cursor *c = cursor_new(4, on_release);
	struct cursor_block b = {-1, -1, false};
	struct counts k;

	ok(!cursor_process(c), "nothing to process: refused");
	ok(!cursor_flush_begin(c, &b) && b.first_off == -1, "nothing processed to flush: refused");
	ok(!cursor_confirm(c, 0, 0), "nothing in flight to confirm: refused");
	ok(cursor_push(c, 5, item(5)), "offset 5 received");
	k = counts(c);
	ok(!cursor_push(c, 5, item(5)) && same(k, counts(c)), "the same offset again: refused");
	ok(!cursor_push(c, 4, item(4)) && same(k, counts(c)), "a lower offset: refused");
	ok(!cursor_push(c, -1, item(0)) && same(k, counts(c)), "a negative offset: refused");
	ok(!cursor_flush_begin(c, &b) && same(k, counts(c)), "flushing the unprocessed: refused");
	ok(cursor_process(c) && !cursor_process(c), "processed once, not twice");
	ok(cursor_push(c, 6, item(6)) && cursor_process(c) && cursor_flush_begin(c, &b),
	    "[5, 6] in flight");
	ok(cursor_push(c, 7, item(7)) && cursor_process(c), "offset 7 processed behind it");
	k = counts(c);
	ok(!cursor_flush_begin(c, &b) && same(k, counts(c)), "a second flush in flight: refused");
	ok(!cursor_drop_front(c, 0) && same(k, counts(c)),
	    "dropping the front under a flush in flight: refused");
	ok(!cursor_confirm(c, 5, 5) && !cursor_confirm(c, 6, 6) && !cursor_confirm(c, 4, 6) &&
		same(k, counts(c)),
	    "confirming another range than the flight's: refused");
	ok(cursor_confirm(c, 5, 6), "the right one is taken");
	k = counts(c);
	ok(!cursor_confirm(c, 5, 6) && same(k, counts(c)), "a duplicate confirmation: refused");
	ok(!cursor_drop_front(c, 3) && same(k, counts(c)), "dropping more than confirmed: refused");
	ok(cursor_drop_front(c, 1) && is_counts(c, 2, 2, 1, 1) && cursor_offset(c, 0) == 6,
	    "dropping one confirmed record");
	ok(cursor_drop_front(c, 1) && is_counts(c, 1, 1, 0, 0), "and the other");
	is_int(cursor_store_offset(c), 7, "the stored offset outlives its records");
	cursor_free(c);
}

/* Out-of-order answers: only the flight's own confirmation counts. */
static void
test_order(void)
{
	struct cursor *c = cursor_new(10, on_release);
	struct cursor_block b;

	ok(push_processed(c, 0, 1) && cursor_flush_begin(c, &b) && cursor_confirm(c, 0, 1),
	    "flush A [0, 1] confirmed");
	ok(push_processed(c, 2, 2) && cursor_flush_begin(c, &b), "flush B [2, 2] in flight");
	ok(!cursor_confirm(c, 0, 1), "A's late second answer is refused");
	is_int(cursor_store_offset(c), 2, "the stored offset did not move");
	ok(cursor_confirm(c, 2, 2), "B's answer is taken");
	is_int(cursor_store_offset(c), 3, "offset 3 stored");
	cursor_free(c);
}

/* A long run: the array slides and grows, offsets stay in order. */
static void
test_long_run(void)
{
	struct cursor *c = cursor_new(1, on_release);
	struct cursor_block b;
	bool good = true;

	nreleased = 0;
	for (int64_t o = 0; o < 3000 && good; o += 2) {
		/* Two received before the first flush: one waits behind it. */
		good = cursor_push(c, o, item(o)) && cursor_push(c, o + 1, item(o + 1)) &&
		       cursor_process(c) && cursor_process(c) && cursor_flush_begin(c, &b) &&
		       b.first_off == o && b.final && cursor_confirm(c, o, o) &&
		       cursor_received(c) == 1 && cursor_flush_begin(c, &b) &&
		       b.first_off == o + 1 && cursor_confirm(c, o + 1, o + 1) &&
		       cursor_received(c) == 0 && cursor_sane(c);
	}
	ok(good, "3000 one-record blocks flushed and dropped one by one");
	ok(nreleased == 3000 && released[2999] == 2999, "each released once, in order");
	cursor_free(c);

	c = cursor_new(4096, on_release);
	nreleased = 0;
	for (int64_t o = 0; o < 4000 && good; o++)
		good = cursor_push(c, o, item(o));
	for (size_t i = 0; i < 4000 && good; i++)
		good = cursor_offset(c, i) == (int64_t)i &&
		       *(int64_t *)cursor_item(c, i) == (int64_t)i;
	ok(good && is_counts(c, 4000, 0, 0, 0), "4000 held across growth, in order");
	cursor_free(c);
	is_int((long long)nreleased, 4000, "all released by cursor_free");
}

int
main(void)
{
	test_new();
	test_whole_block();
	test_partial_flushes();
	test_boundary();
	test_revoke_and_stop();
	test_store_rule();
	test_refusals();
	test_order();
	test_long_run();
	return tap_done();
}
