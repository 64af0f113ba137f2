/* s3.h: S3 objects (PUT, GET, HEAD bucket) on curl_loop, SigV4-signed. */
#ifndef COLLECTORD_S3_H
#define COLLECTORD_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct curl_loop;
struct s3;

struct s3_config {
	const char *endpoint; /* "http://127.0.0.1:9000", no path */
	const char *region;   /* NULL or "": "us-east-1" */
	const char *bucket;
	const char *access_key;
	const char *secret_key;
	bool path_style; /* endpoint/bucket/key (MinIO), else bucket.host */
	long timeout_ms; /* whole request; 0: 30 s */
};

/*
 * OK is true only for a 2xx answer.  Otherwise ERR says what failed, e.g.
 * "PUT dead-letter/...: HTTP 403 SignatureDoesNotMatch: <message>" or
 * "HEAD bucket events: Couldn't connect to server"; it is borrowed for the
 * call.  The callback may free the s3.
 */
typedef void (*s3_done_cb)(void *arg, bool ok, const char *err);
/* As s3_done_cb, plus the object's bytes (borrowed, NUL-terminated) when OK. */
typedef void (*s3_get_cb)(void *arg, bool ok, const char *err, const char *body, size_t len);
/* Room for an ETag, quotes included. */
#define S3_ETAG_SIZE 128
/* The answer of s3_put_if() or s3_head(): STATUS is the HTTP status (0
 * when no answer came: ERR says why); on 2xx ERR is NULL and ETAG the
 * object's (quoted, as S3 gives it; "" if it gave none), else ETAG is "".
 * LAST_OFFSET: a HEAD's x-amz-meta-last-offset, -1 when it has none. */
typedef void (*s3_cond_cb)(
    void *arg, long status, const char *err, const char *etag, int64_t last_offset);

/*
 * A client for CFG's bucket; the strings are copied.  LOOP must outlive
 * the client.  NULL with a reason in ERR when CFG is incomplete.
 */
struct s3 *s3_new(struct curl_loop *loop, const struct s3_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Cancels requests in flight: their callbacks never fire.  NULL-safe. */
void s3_free(struct s3 *s3);

/*
 * PUT BODY (LEN bytes, copied) as object KEY with CONTENT_TYPE (NULL:
 * application/octet-stream), signed with the payload's SHA-256.  On 0, CB
 * fires exactly once from the event loop, never from inside this call.
 * -1 (bad key, out of memory): CB never fires.
 */
int s3_put(struct s3 *s3, const char *key, const void *body, size_t len, const char *content_type,
    s3_done_cb cb, void *arg) __attribute__((warn_unused_result));
/*
 * s3_put(), only if the object is still what the writer last saw: IF_MATCH
 * its ETag (If-Match), or NULL for "no such object yet" (If-None-Match: *).
 * Another writer in between makes it 412 Precondition Failed, and nothing
 * is written.  LAST_OFFSET (>= 0) is kept with the object as its
 * x-amz-meta-last-offset, which s3_head() reads back.  CB as s3_cond_cb
 * says; the ETag of a 2xx is the new object's.  -1 (bad key or ETag, out
 * of memory): CB never fires.
 */
int s3_put_if(struct s3 *s3, const char *key, const void *body, size_t len,
    const char *content_type, const char *if_match, int64_t last_offset, s3_cond_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* HEAD object KEY: 200 with its ETag, 404 when there is none.  As
 * s3_put_if() for the rest. */
int s3_head(struct s3 *s3, const char *key, s3_cond_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* HEAD the bucket: is S3 reachable and are our credentials good?  As s3_put. */
int s3_check(struct s3 *s3, s3_done_cb cb, void *arg) __attribute__((warn_unused_result));
/* GET object KEY (at most CURL_LOOP_MAX_BODY bytes).  As s3_put. */
int s3_get(struct s3 *s3, const char *key, s3_get_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* ---- pure helpers ---- */

/*
 * "dead-letter/date=YYYY-MM-DD/<correlationId>.json", the date being
 * RECEIVED_MS's UTC day.  -1 if BUF is too small or CORRELATION_ID is empty
 * or holds '/' or control characters.
 */
int s3_key_dead_letter(char *buf, size_t size, int64_t received_ms, const char *correlation_id)
    __attribute__((warn_unused_result));
/*
 * "<prefix>dead-letter/date=YYYY-MM-DD/<batchId>.jsonl": the one object
 * holding every dead letter of one request, a line each.  PREFIX is the
 * family's ("" or "name/", see family_s3_prefix()).  -1 as above, or when
 * PREFIX holds control characters.
 */
int s3_key_dead_letters(char *buf, size_t size, const char *prefix, int64_t received_ms,
    const char *batch_id) __attribute__((warn_unused_result));
/*
 * "<prefix>enriched/date=YYYY-MM-DD/<topic>+<partition>+<firstOffset>.jsonl",
 * the date being FIRST_MS_FOR_DATE's UTC day, PREFIX the family's as for
 * s3_key_dead_letters().  Deterministic, so a replay of the same records
 * overwrites the same object.  -1 as above, or for a negative partition or
 * offset.
 */
int s3_key_enriched(char *buf, size_t size, const char *prefix, int64_t first_ms_for_date,
    const char *topic, int32_t partition, int64_t first_offset) __attribute__((warn_unused_result));

/*
 * "archive/<topic>/date=YYYY-MM-DD/<topic>+<partition>+<firstOffset>.jsonl",
 * the archive role's object of the block whose first record is
 * FIRST_OFFSET (ten digits at least, zero-padded, so that a listing sorts
 * in offset order), the date being FIRST_MS_FOR_DATE's UTC day.
 * Deterministic, like s3_key_enriched(); -1 as s3_key_enriched().
 */
int s3_key_archive(char *buf, size_t size, int64_t first_ms_for_date, const char *topic,
    int32_t partition, int64_t first_offset) __attribute__((warn_unused_result));

/*
 * "<prefix>dead-letter/kafka-refused/date=YYYY-MM-DD/<topic>+<partition>+<offset>.json":
 * where the enrich role keeps a dead letter of record OFFSET of
 * TOPIC/PARTITION that Kafka refused for good, the date being MS_FOR_DATE's
 * UTC day (the record's publishTime).  Deterministic, so a replay
 * overwrites the same object.  -1 as s3_key_enriched().
 */
int s3_key_kafka_refused(char *buf, size_t size, const char *prefix, int64_t ms_for_date,
    const char *topic, int32_t partition, int64_t offset) __attribute__((warn_unused_result));

/*
 * SigV4's URI encoding: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX
 * (upper-case hex); '/' is kept when KEEP_SLASH.  So '=' and '+' in keys
 * are sent encoded, and libcurl signs the same path S3 checks.  -1 if BUF
 * is too small.
 */
int s3_uri_encode(char *buf, size_t size, const char *s, bool keep_slash)
    __attribute__((warn_unused_result));
/*
 * URL of object KEY (NULL: the bucket itself) for ENDPOINT and BUCKET:
 * "http://h:p/bucket/key" when PATH_STYLE, else "http://bucket.h:p/key".
 * -1 if BUF is too small or ENDPOINT has no scheme.
 */
int s3_url(char *buf, size_t size, const char *endpoint, const char *bucket, bool path_style,
    const char *key) __attribute__((warn_unused_result));
/* Lower-case hex SHA-256 of DATA into OUT (65 bytes with the NUL). */
void s3_sha256_hex(const void *data, size_t len, char out[65]);
/*
 * The <Code> and <Message> of an S3 XML error body, into CODE and MSG
 * (either may be NULL).  False when BODY holds no <Code>.
 */
bool s3_error_parse(
    const char *body, size_t len, char *code, size_t codesize, char *msg, size_t msgsize);

#endif
