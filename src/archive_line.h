/*
 * archive_line.h: a Kafka record as one JSON line of the archive, and a
 * record's bytes and headers as JSON (also what consumer_refused_json()
 * keeps of a dead letter Kafka refused).  Pure: no I/O.
 *
 * A line, compact, one object, members in this order:
 *   "topic", "partition", "offset"
 *   "timestamp"      milliseconds since the epoch, an integer; null: none
 *   "timestampType"  "CreateTime", "LogAppendTime", or null
 *   "key"            the key as a string when it is text (valid UTF-8, no
 *                    NUL); null when the record has none; other bytes go
 *                    as "keyBase64" instead of "key"
 *   "headers"        [{"name", "value"}, ...] in the record's order,
 *                    duplicates kept; a null header value is null; bytes
 *                    that are not text as "nameBase64" / "valueBase64"
 *   "value"          the value's own text, byte for byte, when it is one
 *                    strict JSON value on one line (archive_value_is_json);
 *                    null for a tombstone (no value at all); any other
 *                    bytes (an empty value too) go as "valueBase64" instead
 *   "schemaId"       with valueBase64, when the value is Confluent-framed
 *                    with the schema of a served family: the id, and
 *   "decoded"        the value decoded with that schema (codec_decode), or
 *   "decodeError"    why it could not be
 * So the record's key, headers and value come back exactly from the line,
 * whichever form each took, and the same record always gives the same
 * bytes.
 */
#ifndef COLLECTORD_ARCHIVE_LINE_H
#define COLLECTORD_ARCHIVE_LINE_H

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One record, everything borrowed. */
struct archive_record {
	const char *topic;
	int32_t partition;
	int64_t offset;
	int64_t ts_ms; /* < 0: none */
	rd_kafka_timestamp_type_t ts_type;
	const void *key; /* NULL: no key */
	size_t keylen;
	const rd_kafka_headers_t *headers; /* NULL: none */
	const void *value;		   /* NULL: a tombstone (LEN 0) */
	size_t len;
	int32_t schema_id;	  /* < 0: no served family's schema */
	const cJSON *decoded;	  /* with SCHEMA_ID: the decoding, or NULL and */
	const char *decode_error; /* why there is none */
};

/* R as its line, without newline (malloc'd, *LEN its length); NULL when
 * out of memory. */
char *archive_line(const struct archive_record *r, size_t *len) __attribute__((warn_unused_result));

/*
 * Whether VALUE (LEN bytes) can stand in a line as it is: one JSON value
 * as json_strict_check() takes it (RFC 8259, valid UTF-8, no \u0000, ...),
 * with no UTF-8 byte order mark and no CR or LF (outside strings, the
 * only place a strict text may hold them): a pretty-printed value would
 * break the line, and re-printing it would change its bytes.
 */
bool archive_value_is_json(const void *value, size_t len);

/* DATA (LEN bytes) as member NAME of OBJ: a string when it is text a JSON
 * string carries as is (valid UTF-8 without NUL), else its base64 under
 * NAME + "Base64".  False when out of memory. */
bool archive_json_bytes(cJSON *obj, const char *name, const void *data, size_t len);
/* "headers": H's headers (NULL: none) as [{"name", "value"}], each part by
 * archive_json_bytes() and a null value as null.  False when out of
 * memory. */
bool archive_json_headers(cJSON *obj, const rd_kafka_headers_t *h);

#endif
