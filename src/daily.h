/*
 * daily.h: the enrich role's publishers of the families' per-day distinct
 * counts (struct family_daily): one per served family whose daily_topic
 * is set, each publishing the counts its family's SQL keeps exact in
 * PostgreSQL to that compacted topic, key the day "YYYY-MM-DD", value
 *   {"day":"2026-11-20","<name>":1234,"updatedAt":"2026-11-20T10:12:35.123Z"}
 * Only one process of all that share the database publishes a family's
 * counts (a PostgreSQL advisory lock); daily.c's header says why two of
 * them cannot leave an older count as a day's last record.
 */
#ifndef COLLECTORD_DAILY_H
#define COLLECTORD_DAILY_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct family_daily;

/* How long librdkafka may take to deliver one of these records
 * (message.timeout.ms of the publishers' own producer, whatever [kafka]
 * says), and what a new leader waits beyond it before its first record. */
#define DAILY_MESSAGE_TIMEOUT_MS 10000
#define DAILY_FENCE_MARGIN_MS 5000
/* The answer to a dirty-days query is used only if it came back within
 * this of the query's sending (part of the margin above). */
#define DAILY_MAX_ROUNDTRIP_MS 2000
/* Days a query takes at most, hence records in flight per family. */
#define DAILY_BATCH_MAX 500
/* How often a process that is not the leader asks for the lock. */
#define DAILY_LOCK_RETRY_MS 3000

struct daily;

/*
 * The publishers of CFG's served families (its settled daily_topic not
 * empty), each with its own PostgreSQL session on CFG's [pg] conninfo, all
 * with one producer of their own ([kafka] settings, idempotent, acks=all,
 * message.timeout.ms DAILY_MESSAGE_TIMEOUT_MS).  They publish every
 * [enrich] flush_ms what changed.  CFG is borrowed for the life of the
 * object.  An object with no publisher when no family has a topic.  NULL
 * with ERR (a descriptor's table or column not a plain SQL name, out of
 * memory, librdkafka refusing the configuration).
 */
struct daily *daily_new(struct event_base *base, const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Begin stopping: no new query nor record; what is in flight finishes
 * (its delivery reports, then the update of published). NULL-safe. */
void daily_stop(struct daily *dl);
/* True once, after daily_stop, nothing is in flight.  NULL: true. */
bool daily_stopped(const struct daily *dl);
/* Free everything; the sessions close (which releases the locks).
 * Records still in flight get up to a second to be reported.  NULL-safe. */
void daily_free(struct daily *dl);

/* ---------------------------------------------------------------- pure */

/* The advisory lock key of the count kept in TABLE: the 64-bit FNV-1a
 * hash of "collectord.daily:" TABLE, its top bit cleared, so the same in
 * every process and release. */
int64_t daily_lock_key(const char *table);

/*
 * The record value of COUNT for DAY ("YYYY-MM-DD") under NAME (a JSON key
 * of letters, digits and '_'), updated at UPDATED_MS (milliseconds since
 * the epoch, shown as RFC 3339 UTC with milliseconds) into BUF.  Its
 * length, or -1 when DAY or NAME is not of that form, COUNT is negative
 * or BUF is too small.
 */
int daily_value(const char *name, const char *day, int64_t count, int64_t updated_ms, char *buf,
    size_t size) __attribute__((warn_unused_result));

/*
 * D's statements: SELECT (no parameter) gives at most LIMIT dirty days in
 * day order, columns day as "YYYY-MM-DD", the count, updated_at in epoch
 * milliseconds; UPDATE ($1 date[], $2 bigint[]) raises published to each
 * delivered count.  0, or -1 with ERR when D's table or count column is
 * not a lower-case SQL name, or a buffer is too small.
 */
int daily_sql(const struct family_daily *d, unsigned limit, char *select, size_t select_size,
    char *update, size_t update_size, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
