/*
 * pg_sink.h: the PostgreSQL sink of enriched events.
 *
 * Batches of rows go into the families' partitioned tables (pgsql.h: a
 * table descriptor each), each batch into one table as one transaction: the daily partitions it
 * needs are created on demand, then one parameterised INSERT ... ON CONFLICT DO NOTHING (or a
 * COPY, see pg_sink_opts.copy), so a replayed batch inserts nothing twice.  The sink owns its
 * connection (pg_conn): at every (re)connect it applies the schema files before taking work, and it
 * retries a batch that failed for reasons other than its data, with backoff, until it commits.
 * Completion callbacks fire in submission order.
 */
#ifndef COLLECTORD_PG_SINK_H
#define COLLECTORD_PG_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg_conn.h"

struct event_base;
struct pg_sink;

#include "pgsql.h"

/* One row of a table: VALUES[i] is the text of column i (cast by
 * PostgreSQL to the column's type), NULL for SQL NULL; the partition
 * column's value is PARTITION_US (microseconds since the epoch, UTC) and
 * its VALUES entry is not read.  Borrowed by pg_sink_write, which copies
 * them. */
struct pg_row {
	int64_t partition_us;
	const char *const *values;
};

struct pg_sink_opts {
	/*
	 * Rows by COPY (binary) rather than the pipelined INSERT: one batch at
	 * a time, COPY straight into the table, and a batch that meets rows
	 * already there (a replay) again through the session's staging table
	 * and INSERT ... ON CONFLICT DO NOTHING.  A batch holding a value the
	 * binary encoding cannot vouch for goes by the INSERT.
	 */
	bool copy;
	unsigned max_in_flight;	     /* batches pipelined at once; 0 = 4 */
	unsigned backoff_min_ms;     /* reconnect and retry delays; 0 = 100 */
	unsigned backoff_max_ms;     /* 0 = 10000 */
	unsigned connect_timeout_ms; /* 0 = 10000 */
	unsigned reply_timeout_ms;   /* no answer for this long: new session; 0 = 60000 */
};

enum pg_sink_outcome {
	/* Committed.  Rows that were already present count as committed. */
	PG_SINK_OK,
	/*
	 * Permanent: the server refused the rows themselves (SQLSTATE class 22
	 * data exception such as invalid input syntax for type uuid, 23
	 * integrity violation, 54 limit exceeded such as an index row too
	 * large).  The same batch would fail forever, so the sink gives up on
	 * it and moves on; nothing of it was written.  Dead-letter it, or, when
	 * the batch had several rows, resubmit them one row per batch to find
	 * the culprit(s): the others will then commit.
	 */
	PG_SINK_REJECTED,
	/*
	 * pg_sink_free ran before the commit was confirmed: the batch may or
	 * may not be in the table.  Do not acknowledge its source; a later
	 * replay is absorbed by ON CONFLICT.
	 */
	PG_SINK_ABORTED,
};

/*
 * Completion of one pg_sink_write.  Fires exactly once per accepted write,
 * in submission order, from the event loop (never from inside
 * pg_sink_write).  ERR is NULL for PG_SINK_OK, else a one-line reason,
 * borrowed for the call.  The callback may call pg_sink_write or
 * pg_sink_free on SINK, except for PG_SINK_ABORTED, which fires from inside
 * pg_sink_free: there SINK is going away and must not be used.
 */
typedef void pg_sink_done_cb(
    struct pg_sink *sink, void *arg, enum pg_sink_outcome outcome, const char *err);

/*
 * Create the sink and start connecting to CONNINFO.  The NSQL_DIRS
 * directories of SQL_DIRS are read now: their *.sql files, applied on
 * every new session before any write, directory by directory, each in name
 * order.  TABLES (NTABLES; each must pass pgsql_table_check(), names
 * borrowed for the sink's life) are the tables pg_sink_write can be given,
 * by index; their INSERTs are prepared after the files.  Each file is sent as one simple query
 * under a transaction-scoped advisory lock, so it applies whole or not at
 * all and enrichers starting together do not race on DDL.  Files must be
 * idempotent and must not use transaction control (nor commands that refuse
 * to run in a transaction block).  OPTS may be NULL.  Returns
 * NULL with ERR when the directory cannot be read or CONNINFO is malformed;
 * an unreachable server is not an error (the sink keeps trying).
 */
struct pg_sink *pg_sink_new(struct event_base *base, const char *conninfo,
    const char *const *sql_dirs, size_t nsql_dirs, const struct pgsql_table *tables, size_t ntables,
    const struct pg_sink_opts *opts, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Fire every pending callback in order (PG_SINK_ABORTED, or the real
 * outcome of batches already finished but not yet reported), then close the
 * connection and free everything.  Safe from inside a done callback (the
 * rest happens when it returns).  NULL-safe.
 */
void pg_sink_free(struct pg_sink *sink);

/*
 * Queue N rows of table TABLE (an index into pg_sink_new's TABLES) as one
 * transaction; the sink copies them before returning.  CB (not NULL) and
 * ARG report the outcome later, see pg_sink_done_cb.  Returns -1 with ERR,
 * without queuing and without calling CB, when a row is unusable before
 * any server could see it (a partition instant outside years 1..9999), for
 * an unknown table, when out of memory, or while the sink is being freed.
 * A NULL value is SQL NULL: a NOT NULL column refuses it as data
 * (PG_SINK_REJECTED).  N == 0 is a valid, empty batch.
 */
int pg_sink_write(struct pg_sink *sink, size_t table, const struct pg_row *rows, size_t n,
    pg_sink_done_cb *cb, void *arg, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Rows written whose callback has not fired yet: the back-pressure gauge. */
size_t pg_sink_pending(const struct pg_sink *sink);

/*
 * For /readyz.  PG_CONN_UP: connected, schema applied, writes flowing.
 * PG_CONN_CONNECTING: connecting or applying the schema.  PG_CONN_DOWN: no
 * session, or a batch is waiting out a backoff after a server error.  ERR
 * (may be NULL) gets the last failure, "" if none.
 */
enum pg_conn_state pg_sink_state(const struct pg_sink *sink, char *err, size_t errlen);

#endif
