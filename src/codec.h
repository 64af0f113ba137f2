/* codec.h: the pure JSON <-> Protobuf codec of collectord: request bodies,
 * event validation and normalisation, Confluent framing, enrichment, and the
 * dead-letter document.  No I/O.  Everything that belongs to one event family
 * (key names, topics, id and timestamp fields, table columns) sits in one
 * struct codec_schema table.
 * The schema-driven part is codec_encode.c (codec_event_encode) and
 * codec_enrich.c (codec_enrich, rows) on codec.c (rule words, rejections,
 * paths, protobuf-c helpers, framing; codec_int.h); codec_body.c is the
 * bodies and text around it (codec_body_parse, gzip,
 * codec_dead_letter_json).  All sit on json_strict.c (strict JSON, UTF-8,
 * exact numbers) and timefmt.c (timestamps); no two of them call each
 * other's functions but through codec.c. */
#ifndef COLLECTORD_CODEC_H
#define COLLECTORD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

#include "json_strict.h"
#include "json_tree.h"
#include "timefmt.h"

#define CODEC_WUR __attribute__((warn_unused_result))

/* Extra keys nested deeper than this (the value itself is level 1) are
 * rejected: they end up in JSONB and in other consumers' parsers. */
#define CODEC_MAX_DEPTH 64
/* Most columns a schema may map. */
#define CODEC_ROW_MAX 16
/* Bytes codec_frame_header() may write. */
#define CODEC_FRAME_MAX 16
/* Room for codec_format_ms() / codec_format_us() text. */
#define CODEC_TIME_SIZE TIMEFMT_SIZE

enum codec_status {
	CODEC_OK = 0,
	CODEC_INVALID,	 /* corrupt input: 400 */
	CODEC_TOO_LARGE, /* output cap reached: 413 */
};

/* Most bytes of a rejection message, NUL included. */
#define CODEC_ERROR_SIZE 512

/*
 * Why an event was refused.  MESSAGE is what the client, the dead-letter
 * record's "error" header and rejections.message carry: "<path>: <rule>"
 * or "<path>: <rule> (<detail>)" (and, for the stamp wrapper rule only,
 * "<path>: object without \"<key>\"").  The path is MESSAGE[0..PATH_LEN),
 * as the client wrote it ("lines[2].item.format", "event" for the event
 * itself); RULE points into codec_rules[] or the family's rules (NULL only if a hook
 * reports a rule the list lacks, which t/families.c forbids), so metric
 * labels and rejections.rule take only known values without re-parsing.
 */
struct codec_error {
	char message[CODEC_ERROR_SIZE];
	size_t path_len;
	const char *rule;
};

/* The codec's own rule words, each once: with a family's own
 * (codec_schema.rules), the values of the rejection metric's "reason"
 * label and of rejections.rule for that family. */
extern const char *const codec_rules[];
extern const size_t codec_nrules;

struct codec_schema;
/* The entry of codec_rules[] or of S's rules (S may be NULL) spelled
 * RULE, or NULL. */
const char *codec_rule(const struct codec_schema *s, const char *rule);

/*
 * Fill ERR with PATH, RULE (a word of codec_rules[] or of the family's
 * rules; codec_event_encode() points ERR->rule at the list's entry) and, when
 * DETAIL_FMT is not NULL, " (<detail>)"; the message is cut to
 * CODEC_ERROR_SIZE - 1 bytes.  Returns false, so that a hook can
 * "return codec_error_set(...)".
 */
bool codec_error_set(struct codec_error *err, const char *path, const char *rule,
    const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Split MESSAGE, a rejection's text as it travels (the "error" header of
 * a dead letter), back into ERR: the path and the rule of codec_rules[] or S's
 * that the message ends with (after its last ": " that is followed by a
 * rule; a detail in parentheses may follow the rule).  False when no rule
 * of the list matches (ERR->rule NULL, ERR->path_len 0).
 */
bool codec_error_parse(
    const struct codec_schema *s, const char *message, struct codec_error *err) CODEC_WUR;

/* What a string field holds beyond "a string". */
enum codec_kind {
	CODEC_KIND_PLAIN,     /* no rule beyond the Protobuf type */
	CODEC_KIND_UUID,      /* UUID, ULID or ObjectId in; canonical UUID out */
	CODEC_KIND_TIMESTAMP, /* RFC 3339 / ISO 8601, text kept as given */
	CODEC_KIND_IP,	      /* what inet_pton() takes for AF_INET or AF_INET6,
			       * text kept as given ("not an IP address") */
};

/* Absent or JSON null is "missing"; for a string, "" is "empty" too
 * (unless CODEC_F_MAY_BE_EMPTY).  A repeated field must hold at least one
 * element ("empty"). */
#define CODEC_F_REQUIRED 0x1u
#define CODEC_F_STAMP 0x2u	  /* may arrive in the stamp forms (see below) */
#define CODEC_F_MAY_BE_EMPTY 0x4u /* required string: "" is a value */
#define CODEC_F_NOT_EMPTY 0x8u	  /* optional string: "" is "empty", not a value */
/* Integer field: "not an integer" for a JSON value that is not a number
 * and for a fraction, before the sign ("not a non-negative integer");
 * without it a non-number is "not a number". */
#define CODEC_F_INTEGER_WORDS 0x10u

/*
 * A family's own rule for a field's value, run after the codec's (given,
 * JSON type, empty, kind): V is the field's JSON value (a string, number
 * or boolean as the field's type wants).  Returns NULL when V passes, or
 * the rule it breaks (a word of codec_rules[]), with DETAIL (DETAILLEN
 * bytes, "" on entry) filled when the message should say more.
 */
typedef const char *(*codec_value_fn)(const cJSON *v, char *detail, size_t detaillen);

/* Rule for one field, named by its rule path: the field names from the top
 * message, dot-separated, without array indexes ("attributes.stamp.userId",
 * "lines.item.format" for lines[i].item.format).  Fields without a rule are
 * optional, with no rule beyond their Protobuf type. */
struct codec_field {
	const char *path;     /* rule path */
	const char *long_key; /* producer's key in the parent object, or NULL */
	enum codec_kind kind;
	unsigned flags;
	const char *wrapper;  /* string stamps: the key of the object form */
	codec_value_fn value; /* the family's own value rule, or NULL */
};

/*
 * Column kinds, and the text codec_row gives for each (the PostgreSQL
 * sink binds every value as text and casts it by kind: $n::uuid, ...).
 */
enum codec_col_kind {
	CODEC_COL_TEXT,	       /* a JSON string, as it is */
	CODEC_COL_UUID,	       /* a JSON string, canonical UUID text */
	CODEC_COL_TIMESTAMPTZ, /* a JSON string timestamp, given as
				* YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC) */
	CODEC_COL_JSONB,       /* any JSON value, compact JSON text */
	CODEC_COL_BIGINT,      /* a JSON integer within +-(2^53-1), as decimal
				* digits with an optional '-' ("4711") */
	CODEC_COL_INET,	       /* a JSON string that inet_pton() takes, as it is
				* (PostgreSQL prints it in its own form) */
};

/* One SQL column, taken from the enriched JSON at SOURCE (a dotted path of
 * object keys; "" is the whole enriched event). */
struct codec_column {
	const char *name;
	enum codec_col_kind kind;
	const char *source;
};

struct codec_schema {
	const char *name;			   /* family name, for logs */
	const ProtobufCMessageDescriptor *message; /* the top message */
	const struct codec_field *fields;
	size_t nfields;
	/* Map<string,string> fields of this name keep the keys of their
	 * object that the schema does not name (value: compact JSON text).
	 * NULL: unknown keys are refused in every object. */
	const char *extra_field;
	/* Rule path of the map<string,string> field keeping the original
	 * text of converted ids, keyed by the id's path relative to the map's
	 * message, indexes included ("lines[0].returnOf.transactionId");
	 * NULL for none.  Its name is reserved in that object's input. */
	const char *original_ids_path;
	const char *table;
	const struct codec_column *columns;
	size_t ncolumns;
	const char *partition_column; /* a CODEC_COL_TIMESTAMPTZ column */
	/*
	 * Rules across fields (pass 2), or NULL: run on the encoded message
	 * M (of MESSAGE's type) and the client's EVENT only once every field
	 * passed its own rules.  Returns true to accept, or false with ERR
	 * filled by codec_error_set().
	 */
	bool (*check)(const ProtobufCMessage *m, const cJSON *event, struct codec_error *err);
	/* The rule words the family's value and check hooks report, beyond
	 * codec_rules[]: with those, every value its rejections' rule can
	 * take. */
	const char *const *rules;
	size_t nrules;
};

/* Bounds of the strict JSON parser (json_strict.h): containers open at
 * once (the body's own array or object is level 1) and characters in a
 * number. */
#define CODEC_JSON_MAX_DEPTH JSON_STRICT_MAX_DEPTH
#define CODEC_JSON_MAX_NUMBER JSON_STRICT_MAX_NUMBER

/* Bounds a body must keep; 0 = no bound. */
struct codec_limits {
	size_t max_events; /* elements of the top-level array (an object is 1) */
	size_t max_values; /* JSON values in the whole body */
};

/*
 * Parse a request body (LEN bytes, need not be NUL-terminated) into
 * *EVENTS, always a JSON array: a top-level array is the batch, a single
 * object a batch of one.  The caller owns *EVENTS (cJSON_Delete); on
 * anything but CODEC_OK it is NULL.
 *
 * The body must be exactly one JSON value (RFC 8259) with only JSON
 * whitespace (space, tab, LF, CR) around it; a UTF-8 byte order mark at
 * byte 0 is skipped (RFC 8259 8.1).  Beyond RFC 8259: the text must be
 * valid UTF-8 (no overlong forms, no encoded surrogates, nothing past
 * U+10FFFF); strings may hold no \u0000 (C strings would silently cut
 * there) and no \u escape of a UTF-16 surrogate that is not a high one
 * directly followed by a low one; containers nest at most
 * CODEC_JSON_MAX_DEPTH levels; a number has at most CODEC_JSON_MAX_NUMBER
 * characters.  Numbers are -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * and may be followed by no letter, digit, '.', '+' or '-'; nor may true,
 * false and null.
 *
 * LIM (NULL: no bounds) is checked in the same pass, which builds the
 * tree as it goes, and the pass stops at the first value past a bound,
 * freeing what it built (memory bounded by the body and LIM): events are
 * the elements of a top-level array (a top-level object is 1); values are
 * every object, array, string, number, true, false and null of the body,
 * the body's own array or object included, object keys not.
 *
 * Returns CODEC_OK; CODEC_TOO_LARGE (413) with "body: more than N events"
 * or "body: more than N JSON values"; or CODEC_INVALID (400) with the
 * first problem in the text, as "body: WHY at line L, column C (byte B)"
 * (L and C count from 1, C in bytes; B from 0), WHY one of: invalid UTF-8,
 * control character in a string, control character outside a string,
 * \u0000 in a string, invalid escape, invalid \u escape, unpaired UTF-16
 * surrogate in a \u escape, unterminated string, invalid number: ...
 * (leading zero, leading '+', no digit after '-', no digit before the
 * decimal point, no digit after the decimal point, no digit in the
 * exponent, unexpected character after the digits, more than 63
 * characters), invalid literal, expected a value, expected a string key,
 * expected ':', expected ',' or ']', expected ',' or '}', nesting deeper
 * than 128 levels, unexpected end of input, trailing data after the JSON
 * value.  Without a position: "body: empty" (nothing but whitespace),
 * "body: not a JSON array or object", "body: empty array" (a batch with
 * nothing to acknowledge is a client bug), "body: out of memory".
 * Array elements are not checked here; codec_event_encode() rejects the
 * ones that are not events.  *EVENTS is always an array (a top-level
 * object is its one element), read-only, built by json_tree_check():
 * free it with json_tree_free().
 */
enum codec_status codec_body_parse(const char *body, size_t len, const struct codec_limits *lim,
    cJSON **events, char *err, size_t errlen) CODEC_WUR;

/* True when BUF starts with the gzip magic bytes 1f 8b. */
bool codec_is_gzip(const void *buf, size_t len);

/*
 * Inflate a gzip (several members allowed) or zlib stream into *OUT, a
 * malloc'd NUL-terminated buffer of *OUTLEN bytes (the NUL not counted;
 * caller frees).  More than MAX_OUT bytes of output stops inflating at
 * once with CODEC_TOO_LARGE; corrupt, truncated or trailing data gives
 * CODEC_INVALID.  On anything but CODEC_OK *OUT is NULL.
 */
enum codec_status codec_gunzip(const void *in, size_t inlen, size_t max_out, char **out,
    size_t *outlen, char *err, size_t errlen) CODEC_WUR;

/*
 * Validate and normalise one event and pack it as S's Protobuf message into
 * *PAYLOAD (malloc'd, *LEN bytes; caller frees).  EVENT is only read.
 *
 * Input: a JSON object whose keys are S's top-level fields, each field
 * under its short name or, where the rule table gives one, the producer's
 * long key (the short name is an alias; both at once is an error).  JSON
 * null counts as absent.  The family's own file (src/families/) lists its
 * fields, rules and examples.
 * Stamp forms (CODEC_F_STAMP): the value itself (a string, or an object for
 * a message-typed stamp); for string stamps also an object holding it under
 * the wrapper key ({"dispatchedAt": ...}, {"id": ...}) and nothing else;
 * a one-element array of either; or a JSON string holding any of these
 * (one level of decoding only).
 * Ids (CODEC_KIND_UUID) become canonical UUID text; the given text goes
 * into the map at S->original_ids_path, under the field's path below the
 * map's message, whenever it differs from the canonical text.
 * Keys of an object with an extra map (S->extra_field) that the schema does
 * not name go into that map as compact JSON text; the original-ids map's
 * name is reserved there.  Unknown keys anywhere else (the event itself,
 * the stamps) are rejected.
 * Numbers are IEEE doubles: a double field must be finite; an integer field
 * must be integral, >= 0 for unsigned types and within +-(2^53-1) (beyond
 * that a double cannot tell neighbours apart).
 * Repeated message fields take a JSON array of objects; their elements'
 * paths carry the index ("lines[2].item.format").  Other repeated fields
 * (but the two maps above) are not supported.
 *
 * The first problem found is reported in *ERR (see struct codec_error),
 * checking:
 * 1. the event is an object ("event: not an object"), without duplicate keys;
 * 2. the fields in Protobuf field-number order, depth first, each for:
 *    given twice,
 *    missing, stamp form, JSON type, then its rule (empty, UUID,
 *    timestamp, IP, the family's value rule, range); an object's
 *    duplicate keys before its fields, an array's elements in order;
 * 3. after an object's fields, its other keys in input order (reserved,
 *    too deep, unknown);
 * 4. once all of that passed, S->check (rules across fields).
 */
bool codec_event_encode(const struct codec_schema *s, const cJSON *event, uint8_t **payload,
    size_t *len, struct codec_error *err) CODEC_WUR;

/* codec_event_encode() straight into a Kafka record: the Confluent frame
 * of SCHEMA_ID (codec_frame_header()), then the payload, in one malloc'd
 * buffer (*RECORD, *LEN), with no copy. */
bool codec_event_record(const struct codec_schema *s, const cJSON *event, int32_t schema_id,
    uint8_t **record, size_t *len, struct codec_error *err) CODEC_WUR;

/* Confluent framing for a message of SCHEMA_ID that is the first message of
 * its schema: magic 0, the id big-endian, message-index array [0] written
 * as the single byte 0.  Returns the bytes written into OUT (6). */
size_t codec_frame_header(uint8_t out[CODEC_FRAME_MAX], int32_t schema_id);

/* Split a Confluent-framed record: *SCHEMA_ID, *PAYLOAD and *PLEN (pointing
 * into BUF).  The message-index array is a zig-zag varint count and that
 * many zig-zag varint indexes (count 0 means [0]); anything but the path to
 * the first message ([0]), a negative schema id, or a short or bad frame is
 * an error. */
bool codec_frame_parse(const void *buf, size_t len, int32_t *schema_id, const uint8_t **payload,
    size_t *plen, char *err, size_t errlen) CODEC_WUR;

/* Values of S's columns for one enriched event: values[i] is the text of
 * s->columns[i] (NULL = SQL NULL), partition_us the partition column in
 * microseconds since the epoch.  All malloc'd, owned by the row. */
struct codec_row {
	int64_t partition_us;
	size_t ncolumns;
	char *values[CODEC_ROW_MAX];
};

/* Free the row's values and zero it; the struct itself is the caller's.
 * NULL-safe, and safe on a zeroed or already freed row. */
void codec_row_free(struct codec_row *row);

/* The value of COLUMN in ROW, or NULL (no such column, or SQL NULL). */
const char *codec_row_value(
    const struct codec_schema *s, const struct codec_row *row, const char *column);

/*
 * Decode PAYLOAD (S's message) as codec_enrich() does, checks included,
 * without the metadata: the event's JSON as one raw cJSON item (printed
 * as it is, so every number stays exact; the caller frees it with
 * cJSON_Delete()), or NULL with "payload: ..." in ERR.  The archive's
 * "decoded".
 */
cJSON *codec_decode(const struct codec_schema *s, const uint8_t *payload, size_t len, char *err,
    size_t errlen) CODEC_WUR;

/*
 * Decode PAYLOAD (S's message, as codec_event_encode() wrote it or any
 * producer of the schema) and return the enriched event as one line of
 * compact JSON (malloc'd; caller frees):
 *   {"data":{...},"attributes":{...},"metadata":{"correlationId":...,
 *    "publishTime":"YYYY-MM-DDTHH:MM:SS.mmmZ","schemaId":N}}
 * with fields in field-number order, extra keys back in their objects
 * after the named fields, attributes.originalIds only when not empty.
 * The payload is checked again (required fields, canonical UUIDs,
 * timestamps, UTF-8, extra keys that are JSON and shadow nothing): a
 * corrupt payload gives NULL and "payload: ...".  Fields unknown to the
 * schema (a newer producer) are ignored.  CORRELATION_ID must be a UUID;
 * PUBLISH_TIME_MS >= 0.  When ROW is not NULL it is filled (and must be
 * released with codec_row_free(); after a failure it is left empty).
 */
char *codec_enrich(const struct codec_schema *s, const uint8_t *payload, size_t len,
    const char *correlation_id, int64_t publish_time_ms, int32_t schema_id, struct codec_row *row,
    char *err, size_t errlen) CODEC_WUR;

/*
 * The enriched topic's record value for PAYLOAD (the raw record's message,
 * checked by codec_enrich()): the Confluent frame of SCHEMA_ID with the
 * message-index array [INDEX] (the family's Enriched message), PAYLOAD's
 * bytes as they are, then field 15, the Metadata {1: correlationId
 * (CORRELATION_ID, canonical text), 2: publishTime (PUBLISH_TIME_MS as
 * codec_enrich() writes it), 3: schemaId (RAW_SCHEMA_ID)}.  Enriched has
 * the raw message's fields with their numbers and no field 15 besides
 * metadata, so the payload's bytes are its own.  Into *OUT (malloc'd) and
 * *OUTLEN; false with ERR when CORRELATION_ID is not a UUID, INDEX is
 * negative or memory runs out.
 */
bool codec_enriched_record(int32_t schema_id, int index, const uint8_t *payload, size_t len,
    const char *correlation_id, int64_t publish_time_ms, int32_t raw_schema_id, uint8_t **out,
    size_t *outlen, char *err, size_t errlen) CODEC_WUR;

/*
 * The text at PATH (dotted object keys, "attributes.messageIdStamp") of
 * the enriched event LINE (LEN bytes, as codec_enrich() made it): a string
 * as it is, an integer in decimal (exact up to 2^53), other numbers in
 * %.17g; malloc'd, caller frees.  NULL when the path is missing, null, an
 * object or an array, or out of memory: the record then has no dedup key.
 */
char *codec_line_text(const char *line, size_t len, const char *path) CODEC_WUR;

/*
 * The S3 dead-letter document, compact JSON (malloc'd; caller frees; NULL
 * only when out of memory):
 *   {"error":ERROR,"event":EVENT,"correlationId":...,"receivedAt":...}
 * EVENT is a copy of EVENT_OR_NULL.  For a body that could not be parsed
 * pass RAW_BODY/RAW_LEN instead: "event" is then the body as a JSON string
 * and "body":"text" follows it, or, when the body is not valid UTF-8 or
 * holds a NUL, its base64 and "body":"base64".  With neither, "event" is
 * null.  NULL strings become JSON null.
 */
char *codec_dead_letter_json(const cJSON *event_or_null, const char *raw_body_or_null,
    size_t raw_len, const char *error, const char *correlation_id, const char *received_at);

/* The timestamp functions under the names the rest of the daemon knows;
 * timefmt.h has their contracts. */
static inline bool CODEC_WUR
codec_parse_timestamp(const char *s, int64_t *us)
{
	return timefmt_parse(s, us);
}

static inline void
codec_format_ms(int64_t unix_ms, char out[CODEC_TIME_SIZE])
{
	timefmt_ms(unix_ms, out);
}

static inline void
codec_format_us(int64_t us, char out[CODEC_TIME_SIZE])
{
	timefmt_us(us, out);
}

/* DATA (N bytes) in base64 (RFC 4648, with padding), NUL-terminated,
 * malloc'd; NULL when out of memory. */
char *codec_base64(const void *data, size_t n) CODEC_WUR;

/* BYTES (LEN) as a JSON string item: the text itself when it is valid
 * UTF-8 without NUL (*TEXT true), else its base64.  NULL when out of
 * memory.  The dead-letter documents of collect and enrich. */
cJSON *codec_json_bytes(const void *data, size_t len, bool *text);
/* Add ITEM (taken in every case, NULL allowed) to OBJ under KEY; false if
 * ITEM is NULL or out of memory. */
bool codec_json_add(cJSON *obj, const char *key, cJSON *item);

#endif
