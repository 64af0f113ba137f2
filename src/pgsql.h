/*
 * pgsql.h: SQL text and parameters for the families' tables, built without
 * any I/O so they can be unit tested alone (t/pgsql.c).  pg_sink sends what
 * is built here; each family's schemas/<family>/sql/ defines what it is
 * sent to.
 */
#ifndef COLLECTORD_PGSQL_H
#define COLLECTORD_PGSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGSQL_WUR __attribute__((warn_unused_result))

/*
 * One table the sink writes into: a family's table, partitioned by day on
 * one timestamptz column.  The SQL of the family (schemas/<family>/sql/)
 * defines it, with <name>_ensure_partition(timestamptz) creating the day's
 * partition <name>_YYYYMMDD, and a unique index that makes a replayed row a
 * conflict.
 */
struct pgsql_column {
	const char *name;
	const char *type; /* SQL type the text is cast to: "uuid", "jsonb", ... */
};

struct pgsql_table {
	const char *name;
	const struct pgsql_column *columns; /* in the order rows give values */
	size_t ncolumns;		    /* 1 .. PGSQL_MAX_COLUMNS */
	size_t partition_column;	    /* index of the timestamptz partition key */
};

#define PGSQL_MAX_COLUMNS 32
/* Longest table name: PostgreSQL's 63 bytes, less "_YYYYMMDD". */
#define PGSQL_MAX_TABLE_NAME 54

/*
 * Whether T can be used: a plain lower-case SQL name (letters, digits, '_',
 * not starting with a digit) of at most PGSQL_MAX_TABLE_NAME bytes, the
 * same for every column, 1 .. PGSQL_MAX_COLUMNS columns, a type name of
 * letters, digits, '_' and "[]", a partition column in range of type
 * timestamptz.  Names are pasted into SQL text, so nothing else gets in.
 * 0, or -1 with ERR.
 */
int pgsql_table_check(const struct pgsql_table *t, char *err, size_t errlen) PGSQL_WUR;

/*
 * Insert any number of rows with one statement of fixed text: $1..$N are
 * array literals (one per column, in T's order, built with pgsql_array_*)
 * that unnest() zips back into rows:
 *   INSERT INTO t (a, b) SELECT * FROM unnest($1::ta[], $2::tb[])
 *   ON CONFLICT DO NOTHING
 * Fixed text means it is prepared once per session; the row count is not
 * bounded by the protocol's 65535 parameters.  Rows already present are
 * skipped.  T must pass pgsql_table_check().  Malloc'd; NULL when out of
 * memory.
 */
char *pgsql_insert_unnest_sql(const struct pgsql_table *t) PGSQL_WUR;

/* "SELECT t_ensure_partition($1::timestamptz)": $1 is any instant of the
 * day; creates t_YYYYMMDD if missing and returns its name.  Malloc'd. */
char *pgsql_ensure_partition_sql(const struct pgsql_table *t) PGSQL_WUR;

/* Most rows pgsql_insert_values_sql() takes for T: 65535 parameters /
 * T's columns. */
size_t pgsql_values_max_rows(const struct pgsql_table *t);

/*
 * The multi-row VALUES form of the same insert for NROWS rows (1 ..
 * pgsql_values_max_rows(T)): "INSERT INTO t (...) VALUES ($1, ..., $N),
 * ($N+1, ...) ON CONFLICT DO NOTHING", parameters row by row.  Kept for the
 * measurement against the unnest() form.  Returns a malloc'd string the
 * caller frees; NULL on a bad count or out of memory.
 */
char *pgsql_insert_values_sql(const struct pgsql_table *t, size_t nrows) PGSQL_WUR;

/*
 * COPY of rows of T.  COPY cannot run in libpq's pipeline mode and aborts
 * on the first conflict, so a sink that must absorb replays copies into a
 * session's staging table and moves the rows on with INSERT ... SELECT ...
 * ON CONFLICT DO NOTHING; straight into T it is the physical limit the
 * benchmark measures.  T must pass pgsql_table_check().  Each returns a
 * malloc'd string (NULL when out of memory).
 */
/* "COPY <t> (a, b) FROM STDIN (FORMAT binary|text)", or into T's staging
 * table pg_temp.<t>_stage when STAGING. */
char *pgsql_copy_sql(const struct pgsql_table *t, bool staging, bool binary) PGSQL_WUR;
/* "CREATE TEMP TABLE IF NOT EXISTS <t>_stage (LIKE <t>) ON COMMIT DELETE
 * ROWS": per session, emptied by every commit, never logged. */
char *pgsql_stage_create_sql(const struct pgsql_table *t) PGSQL_WUR;
/* "INSERT INTO <t> (a, b) SELECT a, b FROM pg_temp.<t>_stage ON CONFLICT
 * DO NOTHING". */
char *pgsql_stage_insert_sql(const struct pgsql_table *t) PGSQL_WUR;

/*
 * COPY data builder, in PostgreSQL's binary or text format, for rows of T
 * (borrowed; it must outlive the builder).  The partition column's value
 * is PARTITION_US; every other value is the column's text (as the unnest()
 * INSERT takes it) or NULL for SQL NULL.  In binary every value is
 * converted here, for the types a family's table uses: text, jsonb, uuid,
 * timestamptz, int8, inet (any other type, or a text whose meaning this
 * cannot tell exactly as PostgreSQL would, is refused so that the caller
 * sends the row as text and the server judges it).
 */
struct pgsql_copy;

/* SIZE_HINT: expected bytes of all rows (0 if unknown).  NULL on OOM. */
struct pgsql_copy *pgsql_copy_new(
    const struct pgsql_table *t, bool binary, size_t size_hint) PGSQL_WUR;
/* Append one row: 0; 1 when a value cannot be encoded (binary only: the
 * builder is unchanged); -1 when out of memory (sticky). */
int pgsql_copy_row(struct pgsql_copy *c, int64_t partition_us, const char *const *values) PGSQL_WUR;
/* Rows appended so far. */
size_t pgsql_copy_rows(const struct pgsql_copy *c);
/* Close the data (binary: the trailer) and give the whole of it, owned by
 * the builder, LEN bytes; NULL if a step ran out of memory.  No row may be
 * added after it. */
const char *pgsql_copy_finish(struct pgsql_copy *c, size_t *len) PGSQL_WUR;
/* NULL-safe. */
void pgsql_copy_free(struct pgsql_copy *c);

/* Bytes pgsql_timestamp() needs, NUL included. */
#define PGSQL_TIMESTAMP_SIZE 30

/*
 * Format US (microseconds since 1970-01-01T00:00:00Z) as PostgreSQL
 * timestamptz input in UTC, "YYYY-MM-DD HH:MM:SS.ffffff+00".  Only years
 * 0001..9999 are accepted (-1 otherwise, or when SIZE is too small).
 */
int pgsql_timestamp(int64_t us, char *buf, size_t size) PGSQL_WUR;

/* Whether pgsql_timestamp() takes US: years 0001..9999. */
bool pgsql_timestamp_valid(int64_t us);

/* The UTC day US falls in, as days since 1970-01-01 (rounded down). */
int64_t pgsql_day(int64_t us);

/* "<TABLE>_YYYYMMDD": the daily partition holding US (UTC).  0 or -1. */
int pgsql_partition_name(const char *table, int64_t us, char *buf, size_t size) PGSQL_WUR;

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
/* Append ELEM, a NUL-terminated string, or SQL NULL when ELEM is NULL.
 * 0 or -1 (OOM). */
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
