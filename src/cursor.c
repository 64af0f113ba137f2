/*
 * cursor.c: one partition's record window (see cursor.h).  Each mutation
 * checks its preconditions first and refuses without touching anything,
 * then ends in assert_sanity(), the one place that states the invariants
 * (pgbouncer's AssertSanity): a refused call never leaves a state the
 * assertion would have to catch.
 */
#include "cursor.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	int64_t offset;
	void *item;
};

struct cursor {
	struct slot *v; /* the window is v[base, base + n) */
	size_t base, cap;
	size_t n, nproc, nflush, nconf;
	int64_t block;
	cursor_release_cb release;
	bool have_floor;
	int64_t floor;
	int64_t next;		    /* lowest offset a push accepts */
	int64_t stored;		    /* last confirmed + 1; -1 before any */
	struct cursor_block flight; /* valid while nconf < nflush */
};

#define OFF(c, i) ((c)->v[(c)->base + (i)].offset)

int64_t
cursor_block_first(int64_t offset, int64_t n)
{
	return offset - offset % n;
}

int64_t
cursor_block_last(int64_t offset, int64_t n)
{
	return cursor_block_first(offset, n) + n - 1;
}

/* O(1) on purpose: it runs after every push of every record, in every
 * build without NDEBUG. */
bool
cursor_sane(const struct cursor *c)
{
	if (c->block < 1)
		return false;
	if (!(c->nconf <= c->nflush && c->nflush <= c->nproc && c->nproc <= c->n))
		return false;
	if (c->base + c->n > c->cap || (c->cap > 0 && c->v == NULL) || (c->n == 0 && c->base != 0))
		return false;
	if (c->n > 0 && !(OFF(c, 0) <= OFF(c, c->n - 1) && OFF(c, c->n - 1) < c->next))
		return false;
	/* The flush in flight is exactly [nconf, nflush). */
	if (c->nconf < c->nflush && (c->flight.first_off != OFF(c, c->nconf) ||
					c->flight.last_off != OFF(c, c->nflush - 1) ||
					cursor_block_first(c->flight.first_off, c->block) !=
					    cursor_block_first(c->flight.last_off, c->block)))
		return false;
	/* What is stored is what is confirmed, and nothing unconfirmed lies
	 * below it. */
	if (c->nconf > 0 && c->stored != OFF(c, c->nconf - 1) + 1)
		return false;
	if (c->nconf < c->n && c->stored >= 0 && OFF(c, c->nconf) < c->stored)
		return false;
	return true;
}

static void
assert_sanity(const struct cursor *c)
{
	assert(cursor_sane(c));
	(void)c;
}

struct cursor *
cursor_new(int64_t block, cursor_release_cb release)
{
	struct cursor *c;

	if (block < 1 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->block = block;
	c->release = release;
	c->stored = -1;
	assert_sanity(c);
	return c;
}

/* Release items [FROM, TO) of the window (they leave it). */
static void
release_range(struct cursor *c, size_t from, size_t to)
{
	for (size_t i = from; c->release != NULL && i < to; i++)
		c->release(c->v[c->base + i].item);
}

void
cursor_free(struct cursor *c)
{
	if (c == NULL)
		return;
	release_range(c, 0, c->n);
	free(c->v);
	free(c);
}

bool
cursor_set_floor(struct cursor *c, int64_t offset)
{
	if (c->have_floor || c->next > 0 || c->n > 0 || offset < 0)
		return false;
	c->have_floor = true;
	c->floor = offset;
	assert_sanity(c);
	return true;
}

bool
cursor_push(struct cursor *c, int64_t offset, void *item)
{
	if (offset < c->next || offset < 0)
		return false;
	if (c->base + c->n == c->cap) {
		/* Slide back over the dropped front before growing. */
		if (c->base > 0 && c->base >= c->cap / 2) {
			memmove(c->v, c->v + c->base, c->n * sizeof(*c->v));
			c->base = 0;
		} else {
			size_t cap = c->cap ? c->cap * 2 : 64;
			struct slot *v = realloc(c->v, cap * sizeof(*v));

			if (v == NULL)
				return false;
			c->v = v;
			c->cap = cap;
		}
	}
	c->v[c->base + c->n].offset = offset;
	c->v[c->base + c->n].item = item;
	c->n++;
	c->next = offset + 1;
	assert_sanity(c);
	return true;
}

bool
cursor_process(struct cursor *c)
{
	if (c->nproc >= c->n)
		return false;
	c->nproc++;
	assert_sanity(c);
	return true;
}

bool
cursor_block_closed(const struct cursor *c)
{
	int64_t b_last;

	if (c->nflush >= c->nproc)
		return false;
	b_last = cursor_block_last(OFF(c, c->nflush), c->block);
	return OFF(c, c->nproc - 1) >= b_last || (c->nproc < c->n && OFF(c, c->nproc) > b_last);
}

/* Drop the first K records; the caller checked K <= nconf and that no
 * flush is in flight. */
static void
drop_front(struct cursor *c, size_t k)
{
	release_range(c, 0, k);
	c->base += k;
	c->n -= k;
	c->nproc -= k;
	c->nflush -= k;
	c->nconf -= k;
	if (c->n == 0)
		c->base = 0;
}

/* The confirmed records are of an earlier block than record I. */
static bool
front_done(const struct cursor *c, size_t i)
{
	return c->nconf > 0 && i < c->n &&
	       cursor_block_first(OFF(c, i), c->block) != cursor_block_first(OFF(c, 0), c->block);
}

bool
cursor_flush_begin(struct cursor *c, struct cursor_block *b)
{
	int64_t b_last;
	size_t end;

	if (c->nconf < c->nflush || c->nflush >= c->nproc)
		return false;
	/* The retained block ended without a final flush (a later block's
	 * record showed up after it): its object is complete already. */
	if (front_done(c, c->nconf))
		drop_front(c, c->nconf);
	b_last = cursor_block_last(OFF(c, c->nconf), c->block);
	for (end = c->nconf; end + 1 < c->nproc && OFF(c, end + 1) <= b_last; end++)
		;
	c->flight.first_off = OFF(c, c->nconf);
	c->flight.last_off = OFF(c, end);
	c->flight.final =
	    c->flight.last_off == b_last || (end + 1 < c->n && OFF(c, end + 1) > b_last);
	c->nflush = end + 1;
	*b = c->flight;
	assert_sanity(c);
	return true;
}

bool
cursor_flushing(const struct cursor *c)
{
	return c->nconf < c->nflush;
}

bool
cursor_confirm(struct cursor *c, int64_t first_off, int64_t last_off)
{
	if (c->nconf >= c->nflush || first_off != c->flight.first_off ||
	    last_off != c->flight.last_off)
		return false;
	c->nconf = c->nflush;
	c->stored = last_off + 1;
	if (c->flight.final || front_done(c, c->nconf))
		drop_front(c, c->nconf);
	assert_sanity(c);
	return true;
}

bool
cursor_drop_front(struct cursor *c, size_t k)
{
	if (k > c->nconf || c->nconf < c->nflush)
		return false;
	drop_front(c, k);
	assert_sanity(c);
	return true;
}

/* Drop records [FROM, n): never confirmed, so whoever reads the partition
 * next reads them again; their offsets may come again. */
static void
drop_tail(struct cursor *c, size_t from)
{
	size_t keep = from < c->nconf ? c->nconf : from;

	if (keep < c->n)
		c->next = OFF(c, keep);
	release_range(c, from, c->n);
	c->n = from;
	if (c->nproc > from)
		c->nproc = from;
	if (c->nflush > from)
		c->nflush = from;
	if (c->nconf > from)
		c->nconf = from;
	if (c->n == 0)
		c->base = 0;
	assert_sanity(c);
}

void
cursor_drop_unprocessed(struct cursor *c)
{
	drop_tail(c, c->nproc);
}

void
cursor_drop_all(struct cursor *c)
{
	drop_tail(c, 0);
}

int64_t
cursor_store_offset(const struct cursor *c)
{
	if (c->stored < 0 || (c->have_floor && c->stored <= c->floor))
		return -1;
	return c->stored;
}

size_t
cursor_received(const struct cursor *c)
{
	return c->n;
}

size_t
cursor_processed(const struct cursor *c)
{
	return c->nproc;
}

size_t
cursor_flushed(const struct cursor *c)
{
	return c->nflush;
}

size_t
cursor_confirmed(const struct cursor *c)
{
	return c->nconf;
}

void *
cursor_item(const struct cursor *c, size_t i)
{
	return i < c->n ? c->v[c->base + i].item : NULL;
}

int64_t
cursor_offset(const struct cursor *c, size_t i)
{
	return i < c->n ? OFF(c, i) : -1;
}
