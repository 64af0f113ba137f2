/*
 * dedup.h: the ledger of first sightings in PostgreSQL (sql/003_dedup.sql),
 * asked by the enricher before a flush's rows go anywhere: which of these
 * records repeat a dedup key that another record carried first.
 *
 * One non-blocking session of its own (pg_conn), separate from the row
 * sink's so that a long COPY does not hold the question up.  A call is one
 * pipelined statement and its sync, so it commits on its own: the ledger
 * then names the first record of each key for good, and asking again
 * (after a crash, a rebalance, a retry) gives the same answer.
 */
#ifndef COLLECTORD_DEDUP_H
#define COLLECTORD_DEDUP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct dedup;

/* Keys longer than this are not deduplicated (the record lands as it
 * would without a key); every family's key is far shorter (a UUID, an
 * integer). */
#define DEDUP_KEY_MAX 256

/* One record of a question: its offset, dedup key (NUL-terminated, at
 * most DEDUP_KEY_MAX bytes) and correlationId (canonical UUID text). */
struct dedup_item {
	int64_t offset;
	const char *key;
	const char *correlation_id;
};

/*
 * The answer to dedup_check: ERR NULL and the offsets of the duplicates
 * (ascending, NDUPS of them; DUPS borrowed for the call), or ERR saying why
 * there is none (the session went away, the server refused): ask again
 * later.  Fires from the loop, never from inside dedup_check.
 */
typedef void dedup_cb(void *arg, const char *err, const int64_t *dups, size_t ndups);

/* Connect to CONNINFO; NULL with ERR on a malformed conninfo or no memory. */
struct dedup *dedup_new(struct event_base *base, const char *conninfo, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Ask which of the N records ITEMS of TOPIC/PARTITION are duplicates; the
 * answer comes to CB with ARG.  0, or -1 with ERR (no session now, no
 * memory): CB never fires then.
 */
int dedup_check(struct dedup *d, const char *topic, int32_t partition,
    const struct dedup_item *items, size_t n, dedup_cb *cb, void *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Close the session; every question still out gets its CB with an error
 * first.  NULL-safe. */
void dedup_free(struct dedup *d);

#endif
