/* consumer.h: the enrich role: every served family's raw topic → enriched
 * JSON → S3 and the family's PostgreSQL table, offsets stored only after
 * both sinks confirmed.  The archive role (archive.h) is a struct consumer
 * too: consumer_stop(), consumer_stopped() and consumer_free() are its. */
#ifndef COLLECTORD_CONSUMER_H
#define COLLECTORD_CONSUMER_H

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct producer;
struct registry;
struct s3;
struct pg_sink;
struct consumer;

/*
 * Join the consumer group [enrich] group_id on the raw topic of every
 * family CFG serves (family_served()); PG's tables are those families',
 * in served order.  Every module passed is borrowed and must outlive the
 * consumer; PRODUCER carries the dead letters.  NULL with ERR on failure.
 *
 * Teardown order: the consumer's requests to S3 and the registry cannot be
 * cancelled one by one, so after consumer_free() the S3 client and the
 * registry must be freed before the loop runs again (daemon_free does).
 * The producer and the PostgreSQL sink may be freed later: their reports
 * for the consumer's records (delivered by producer_free's flush, or
 * PG_SINK_ABORTED from pg_sink_free) are absorbed and free what they hold.
 */
struct consumer *consumer_new(struct event_base *base, const struct config *cfg,
    struct producer *producer, struct registry *registry, struct s3 *s3, struct pg_sink *pg,
    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Begin a graceful stop: flush what is buffered, wait for the sinks, commit,
 * leave the group.  consumer_stopped() turns true when that is over. */
void consumer_stop(struct consumer *c);
bool consumer_stopped(const struct consumer *c);
/* NULL-safe; after consumer_stopped(), or at any time when dying. */
void consumer_free(struct consumer *c);
/* The registry id of family F's schema under its enriched subject: until
 * it is set, F's records wait (its enriched topic needs the id). */
struct family;
void consumer_set_enriched_id(struct consumer *c, const struct family *f, int32_t id);

/* ---- pure: offset blocks and back-pressure, for the unit tests ---- */

/* First and last offset of the block of N (>= 1) offsets holding OFFSET
 * (>= 0): the block is [floor(OFFSET/N)*N, floor(OFFSET/N)*N + N - 1]. */
int64_t consumer_block_first(int64_t offset, int64_t n);
int64_t consumer_block_last(int64_t offset, int64_t n);

/*
 * Pause hysteresis: whether a partition with BUFFERED records (received and
 * not yet confirmed by the sinks) should be paused, given whether it is
 * PAUSED now.  Pause above MAX_PENDING, resume below half of it.
 */
bool consumer_should_pause(bool paused, size_t buffered, size_t max_pending);

/* ---- pure: dead letters Kafka will not take ---- */

/* Refusals of a dead letter for a topic that does not exist before it is
 * given up on (each after librdkafka's own wait, then our backoff). */
#define CONSUMER_DL_MISSING_TOPIC_TRIES 5

/*
 * Whether Kafka's refusal ERR of a dead letter is for good, so it goes to
 * S3 instead (and its source offset counts as done); false: retry with
 * backoff.  ALONE: the refusal was about this record by itself, because
 * producer_send() refused it on the spot, or because it was the only dead
 * letter of ours in the producer when the broker refused it.  TRIES:
 * refusals of this dead letter so far, this one included.  For good:
 *   MSG_SIZE_TOO_LARGE, RECORD_LIST_TOO_LARGE: when ALONE.  The broker
 *     judges the whole batch a record travelled in against the topic's
 *     max.message.bytes, so a batch's refusal says nothing of a small
 *     record in it: such a dead letter is sent again on its own first;
 *   INVALID_RECORD (e.g. no key for a compacted topic),
 *     TOPIC_AUTHORIZATION_FAILED, TOPIC_EXCEPTION (bad topic name): at once,
 *     the same bytes to the same topic get the same answer;
 *   UNKNOWN_TOPIC_OR_PART, __UNKNOWN_TOPIC, __UNKNOWN_PARTITION: at the
 *     CONSUMER_DL_MISSING_TOPIC_TRIES-th refusal.
 * Everything else (queue full, timeouts, broker down, purges of a
 * rebuilt producer, not enough replicas, ...) passes with time.
 */
bool consumer_dl_refused_for_good(rd_kafka_resp_err_t err, bool alone, int tries);

/* A dead letter Kafka refused for good, as stored in S3. */
struct consumer_refused {
	const char *error;	       /* why the record is a dead letter */
	rd_kafka_resp_err_t kafka_err; /* Kafka's refusal */
	const char *dead_letter_topic;
	const char *topic; /* the source record's */
	int32_t partition;
	int64_t offset;
	int64_t publish_ms; /* its timestamp; < 0: none */
	const void *key;    /* NULL: no key */
	size_t keylen;
	const rd_kafka_headers_t *headers; /* its headers; NULL: none */
	const void *value;
	size_t len;
};

/*
 * The S3 document of R, one JSON object (malloc'd, caller frees; *LEN
 * gets its length), NULL when out of memory:
 *   {"error", "kafkaError" (librdkafka's text), "kafkaErrorCode" (its name),
 *    "deadLetterTopic", "sourceTopic", "sourcePartition", "sourceOffset",
 *    "publishTime" (RFC 3339 UTC, ms, or null), "key" (or null),
 *    "headers": [{"name", "value" (null for a null value)}],
 *    "value"}
 * Bytes that are not valid UTF-8 or hold a NUL (a JSON string cannot carry
 * them) go as base64 under the same name plus "Base64" instead: "keyBase64",
 * "valueBase64", "nameBase64".  Deterministic: the same R gives the same
 * bytes, so a replay rewrites the object unchanged.
 */
char *consumer_refused_json(const struct consumer_refused *r, size_t *len)
    __attribute__((warn_unused_result));

#endif
