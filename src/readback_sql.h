/*
 * readback_sql.h: the read-back API's pure half: the query string of GET
 * /events, /rejections and the ids of /events/{id}, /requests/{id} checked
 * into parameters, keyset cursors, and the SQL text with its parameter
 * values, built from the families' table descriptions (struct family,
 * struct config_family) and the rejections table.  No I/O; readback.c
 * sends what is built here and t/readback_sql.c tests it alone.
 *
 * Every value a client gives is a parameter ($1, $2, ...), never SQL text;
 * the only names pasted into the text are the tables' and columns' from
 * the descriptors, checked to be plain SQL names first.
 */
#ifndef COLLECTORD_READBACK_SQL_H
#define COLLECTORD_READBACK_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RB_WUR __attribute__((warn_unused_result))

/* A page's rows when the client gives no limit, and the most it may ask. */
#define RB_LIMIT_DEFAULT 100
#define RB_LIMIT_MAX 1000
/* Most events (and as many rejections) /requests/{id} lists. */
#define RB_REQUEST_MAX 10000
/* Longest value of type= and rule=, in characters. */
#define RB_TEXT_MAX 200
/* Longest cursor, in characters. */
#define RB_CURSOR_MAX 400
/* UTC days GET /families/{name}/daily lists when the client gives no
 * days=, and the most it may ask. */
#define RB_DAYS_DEFAULT 14
#define RB_DAYS_MAX 366

struct family_daily;

/* What the read-back API reads of one family's table. */
struct rb_table {
	const char *family; /* its name */
	const char *name;   /* the table */
	const char *ts;	    /* the timestamptz partition column: the event's time */
	const char *corr;   /* the uuid column holding metadata.correlationId */
	const char *event;  /* the jsonb column holding the whole enriched event */
	const char *type;   /* the text column type= filters on, or NULL */
	/* Its per-day count (the descriptor's table and count column, with
	 * its "day" column), or NULL. */
	const struct family_daily *daily;
};

struct config_family;
/*
 * T from served family FC: its settled table, its descriptor's partition
 * column, the columns the codec fills from metadata.correlationId (kind
 * uuid) and from the whole event (kind jsonb), its type_column and its
 * daily count.  Names are borrowed.  0, or -1 with ERR when one is missing
 * or is not a plain SQL name.
 */
int rb_table_of(
    const struct config_family *fc, struct rb_table *t, char *err, size_t errlen) RB_WUR;

/* Which parameters an endpoint takes. */
#define RB_P_FAMILY 0x01u
#define RB_P_SINCE 0x02u
#define RB_P_UNTIL 0x04u
#define RB_P_TYPE 0x08u
#define RB_P_RULE 0x10u
#define RB_P_LIMIT 0x20u
#define RB_P_CURSOR 0x40u
#define RB_P_DAY 0x80u
#define RB_P_DAYS 0x100u

/* The position after the last row of a page: of an events page (the
 * row's time and correlation id) or of a rejections page (its received_at,
 * Kafka partition, offset and topic: the rows' own unique key). */
struct rb_cursor {
	int64_t us;
	char corr[37];
	int32_t partition;
	int64_t offset;
	char topic[256];
};

struct rb_params {
	unsigned given; /* RB_P_* of the parameters present */
	char family[64];
	char type[4 * RB_TEXT_MAX + 1]; /* UTF-8: at most 4 bytes a character */
	char rule[4 * RB_TEXT_MAX + 1];
	int64_t since_us, until_us;
	long limit; /* RB_LIMIT_DEFAULT when not given */
	struct rb_cursor cursor;
	int64_t day; /* day=, as days since 1970-01-01 */
	long days;   /* RB_DAYS_DEFAULT when not given */
};

/*
 * Parse QUERY (the text after '?', NULL for none) into P, taking only the
 * parameters of ALLOWED; EVENTS says which cursor kind cursor= holds (true:
 * an events page's, false: a rejections page's).  Names and values are
 * percent-decoded ('+' is a space); every value must then be valid UTF-8
 * without control characters.  Refused, with a message for a 400 answer
 * in ERR: an unknown or repeated parameter, a bad escape, family= not a
 * plain name, since= or until= not an RFC 3339 instant (no offset: UTC),
 * since= not before until=, limit= not an integer of 1..RB_LIMIT_MAX,
 * type= or rule= empty or longer than RB_TEXT_MAX characters, a cursor that
 * rb_cursor_decode() refuses, day= not a date YYYY-MM-DD of years
 * 0001-9999, days= not an integer of 1..RB_DAYS_MAX, or days= ending at
 * day= reaching before 0001-01-01.  Whether family= names a family is the
 * caller's question.  0 or -1.
 */
int rb_params_parse(const char *query, unsigned allowed, bool events, struct rb_params *p,
    char *err, size_t errlen) RB_WUR;

/*
 * The opaque text of cursor C, an events page's (EVENTS) or a rejections
 * page's, into OUT (at least RB_CURSOR_MAX + 1 bytes): base64url without
 * padding.  0, or -1 when it does not fit.
 */
int rb_cursor_encode(const struct rb_cursor *c, bool events, char *out, size_t size) RB_WUR;
/* The inverse; -1 with ERR for anything rb_cursor_encode() did not make. */
int rb_cursor_decode(
    const char *text, bool events, struct rb_cursor *c, char *err, size_t errlen) RB_WUR;

/*
 * The correlationId of a path segment ("/events/ID"): a UUID in one of the
 * forms ids_parse() takes as a UUID (not a ULID nor an ObjectId: a
 * correlationId is always a UUID), as canonical text into OUT (37 bytes).
 * False with ERR otherwise.
 */
bool rb_correlation_id(const char *segment, char out[37], char *err, size_t errlen) RB_WUR;

/* The most parameters a query below has. */
#define RB_MAX_PARAMS 8

/*
 * A statement and its text parameters, all malloc'd (rb_query_free).
 * Every query names its columns in a fixed order, which readback.c reads:
 *  events (rb_query_event, rb_query_request, rb_query_events):
 *    0 family, 1 correlation id, 2 time (Unix microseconds), 3 the event
 *  rejections (rb_query_request_rejections, rb_query_rejections):
 *    RB_REJ_* below.
 *  daily counts (rb_query_daily):
 *    0 the day (days since 1970-01-01), 1 its count
 */
struct rb_query {
	char *sql;
	int nparams;
	char *values[RB_MAX_PARAMS];
};
void rb_query_free(struct rb_query *q);

enum {
	RB_REJ_US,
	RB_REJ_FAMILY,
	RB_REJ_STAGE,
	RB_REJ_CORR,
	RB_REJ_PATH,
	RB_REJ_RULE,
	RB_REJ_MESSAGE,
	RB_REJ_EVENT,
	RB_REJ_BYTES, /* event_bytes, base64 */
	RB_REJ_TOPIC,
	RB_REJ_PARTITION,
	RB_REJ_OFFSET,
	RB_REJ_ORIGIN_TOPIC,
	RB_REJ_ORIGIN_PARTITION,
	RB_REJ_ORIGIN_OFFSET,
	RB_REJ_NCOLUMNS
};

/* The event with correlation id CORR (canonical) in any of the N tables
 * T (the unique index on (corr, ts) of each). */
int rb_query_event(const struct rb_table *t, size_t n, const char *corr, struct rb_query *q) RB_WUR;
/* Every event of the request CORR belongs to, in the N tables, in
 * correlation id order, at most RB_REQUEST_MAX + 1 (more means cut). */
int rb_query_request(
    const struct rb_table *t, size_t n, const char *corr, struct rb_query *q) RB_WUR;
/* Its refusals in rejections, in correlation id order, at most
 * RB_REQUEST_MAX + 1. */
int rb_query_request_rejections(const char *corr, struct rb_query *q) RB_WUR;
/* GET /events on table T: newest first (ts, then corr, descending), P's
 * type, since, until and cursor, P->limit + 1 rows (one more tells that a
 * next page exists).  -1 also when P gives type= and T has none. */
int rb_query_events(const struct rb_table *t, const struct rb_params *p, struct rb_query *q) RB_WUR;
/* GET /rejections: newest first by received_at and the Kafka coordinates,
 * P's family, rule, since and cursor, P->limit + 1 rows.  rule= needs
 * family= (the index leads with the family). */
int rb_query_rejections(const struct rb_params *p, struct rb_query *q) RB_WUR;
/* GET /families/{name}/daily on table T (T->daily set): the rows of the
 * DAYS UTC days ending with DAY (days since 1970-01-01), newest first by
 * the day's primary key; a day without a row is not in the result. */
int rb_query_daily(const struct rb_table *t, int64_t day, long days, struct rb_query *q) RB_WUR;

/* Day DAY (days since 1970-01-01) as YYYY-MM-DD into OUT. */
void rb_day_format(int64_t day, char out[11]);

#endif
