/*
 * pgsql.h: SQL text and parameters for the events table, built without any
 * I/O so they can be unit tested alone (t/pgsql.c).  pg_sink sends what is
 * built here; the files under sql/ define what it is sent to.
 */
#ifndef COLLECTORD_PGSQL_H
#define COLLECTORD_PGSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGSQL_WUR __attribute__((warn_unused_result))

/* The columns of events, in the order every statement below binds them. */
#define PGSQL_EVENTS_COLUMNS                                                                       \
	"timestamp_stamp, message_id_stamp, correlation_id, type, "                                \
	"target_subscription, new_context_account_id, new_context_user_id, data"
#define PGSQL_NCOLS 8

/* $1 is any timestamptz of the day; creates events_YYYYMMDD if missing
 * (sql/002_partitions.sql) and returns its name. */
#define PGSQL_ENSURE_PARTITION "SELECT events_ensure_partition($1::timestamptz)"

/*
 * Insert any number of rows with one statement of fixed text: $1..$8 are
 * array literals (one per column, in PGSQL_EVENTS_COLUMNS order, built with
 * pgsql_array_*) that unnest() zips back into rows.  Fixed text means it is
 * prepared once per session; the row count is not bounded by the protocol's
 * 65535 parameters.  Rows already present (same correlation_id and
 * timestamp_stamp) are skipped.
 */
#define PGSQL_INSERT_UNNEST                                                                        \
	"INSERT INTO events (" PGSQL_EVENTS_COLUMNS ") "                                           \
	"SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::uuid[], "                         \
	"$4::text[], $5::text[], $6::uuid[], $7::uuid[], $8::jsonb[]) "                            \
	"ON CONFLICT DO NOTHING"

/* Most rows pgsql_insert_values_sql() takes: 65535 parameters / 8 columns. */
#define PGSQL_VALUES_MAX_ROWS 8191

/*
 * The multi-row VALUES form of the same insert for NROWS rows (1 ..
 * PGSQL_VALUES_MAX_ROWS): "INSERT INTO events (...) VALUES ($1, ..., $8),
 * ($9, ...) ON CONFLICT DO NOTHING", parameters row by row.  Kept for the
 * measurement against PGSQL_INSERT_UNNEST.  Returns a malloc'd string the
 * caller frees; NULL on a bad count or out of memory.
 */
char *pgsql_insert_values_sql(size_t nrows) PGSQL_WUR;

/* Bytes pgsql_timestamp() needs, NUL included. */
#define PGSQL_TIMESTAMP_SIZE 30

/*
 * Format US (microseconds since 1970-01-01T00:00:00Z) as PostgreSQL
 * timestamptz input in UTC, "YYYY-MM-DD HH:MM:SS.ffffff+00".  Only years
 * 0001..9999 are accepted (-1 otherwise, or when SIZE is too small).
 */
int pgsql_timestamp(int64_t us, char *buf, size_t size) PGSQL_WUR;

/* The UTC day US falls in, as days since 1970-01-01 (rounded down). */
int64_t pgsql_day(int64_t us);

/* "events_YYYYMMDD": the daily partition holding US (UTC).  0 or -1. */
int pgsql_partition_name(int64_t us, char *buf, size_t size) PGSQL_WUR;

/* Bounds [FROM, TO) of that partition, as "YYYY-MM-DD 00:00:00+00" (each
 * buffer SIZE bytes, PGSQL_TIMESTAMP_SIZE is enough).  0 or -1. */
int pgsql_partition_bounds(int64_t us, char *from, char *to, size_t size) PGSQL_WUR;

/*
 * Text array literal builder: '{"a","b\"c"}'.  Every element is quoted
 * and '"' and '\' escaped, so any string (including "NULL" or "") stays
 * itself.  Out of memory is sticky: later calls do nothing and
 * pgsql_array_finish() returns NULL.
 */
struct pgsql_array;

/* SIZE_HINT: expected bytes of all elements (0 if unknown).  NULL on OOM. */
struct pgsql_array *pgsql_array_new(size_t size_hint) PGSQL_WUR;
/* Append ELEM (a NUL-terminated string, not NULL).  0 or -1 (OOM). */
int pgsql_array_add(struct pgsql_array *a, const char *elem) PGSQL_WUR;
/* Close the literal and hand its text to the caller (malloc'd, caller
 * frees); A is freed either way.  NULL if any step ran out of memory. */
char *pgsql_array_finish(struct pgsql_array *a) PGSQL_WUR;
/* Drop a builder without finishing it.  NULL-safe. */
void pgsql_array_free(struct pgsql_array *a);

/*
 * What a failed statement's SQLSTATE says about retrying it:
 *  - PGSQL_ERR_DATA: the rows themselves are refused (class 22 data
 *    exception, 23 integrity violation, 54 program limit such as an index
 *    row too big): the same batch will fail the same way forever.
 *  - PGSQL_ERR_RETRY: transient on a healthy session (class 40 rollback:
 *    deadlock or serialization, 53 insufficient resources, 55 lock not
 *    available, 57014 statement timeout, 58 system I/O): retry after a pause.
 *  - PGSQL_ERR_RESET: anything else, including an unknown or missing code
 *    (the session or schema is not what we expect: read-only after a
 *    failover, admin shutdown, undefined table): reconnect and re-run setup.
 */
enum pgsql_errclass { PGSQL_ERR_DATA, PGSQL_ERR_RETRY, PGSQL_ERR_RESET };
enum pgsql_errclass pgsql_classify(const char *sqlstate);

#endif
