/* producer.h: the idempotent Kafka producer and its delivery reports. */
#ifndef COLLECTORD_PRODUCER_H
#define COLLECTORD_PRODUCER_H

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct producer;

/*
 * Whoever sends records embeds a waiter; done() fires on the loop once per
 * record queued with producer_send(): ERR is RD_KAFKA_RESP_ERR_NO_ERROR once
 * the record is acknowledged by all in-sync replicas (acks=all).
 */
struct producer_waiter {
	void (*done)(struct producer_waiter *w, rd_kafka_resp_err_t err);
	/* producer_send_together(): 1 + the partition its records go to once
	 * the first was placed, 0 before (as calloc() leaves it) */
	int32_t placed;
};

/*
 * librdkafka's per-record overhead in rd_kafka_msg_new0 (2.0.2): the
 * MsgVersion 2 worst case RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD, i.e. the varints
 * Length, OffsetDelta, KeyLen, ValueLen, HeaderCnt at 5 bytes each, the
 * TimestampDelta varint at 10 and the Attributes byte.
 */
#define PRODUCER_RECORD_OVERHEAD 36

/*
 * Create the producer from CFG's [kafka] section (acks=all and
 * idempotence forced on: they are what "acknowledged" means here).  Its
 * delivery reports, errors and statistics arrive on BASE.  Kafka's
 * reachability is reported to health (HEALTH_KAFKA).
 *
 * A fatal error of the idempotent producer (librdkafka refuses every
 * record after one) does not end it: the producer builds a new librdkafka
 * handle from the same configuration and sends through it from then on,
 * while the old one is purged, every record still in it getting a delivery
 * report with an error (__PURGE_QUEUE or __PURGE_INFLIGHT: done() still
 * fires exactly once per record), and freed once nothing of it is left.
 * Health goes down at the fatal error and up again when the new handle's
 * statistics show a broker connection up; collectord_producer_rebuilds_total
 * counts the rebuilds.
 */
struct producer *producer_new(struct event_base *base, const struct config *cfg, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* What a producer of its own may set beyond CFG's [kafka] (daily.c's). */
struct producer_opts {
	/* message.timeout.ms, over whatever [kafka] says; 0 = [kafka]'s. */
	int message_timeout_ms;
	/* Not the process's Kafka health nor its outstanding-records gauge:
	 * a second producer must not overwrite the first one's view. */
	bool quiet;
};

/* producer_new() with OPTS (NULL: none). */
struct producer *producer_new_opts(struct event_base *base, const struct config *cfg,
    const struct producer_opts *opts, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Queue one record.  KEY and VALUE are copied.  HEADERS (may be NULL)
 * passes to librdkafka on success and stays the caller's on failure.
 * Returns 0 or the librdkafka error (e.g. __QUEUE_FULL, MSG_SIZE_TOO_LARGE,
 * __FATAL while a rebuild has no new handle yet); W->done fires only for
 * records that were queued, never from inside this call.  Every refusal
 * counts in collectord_produce_errors_total, like failed delivery reports.
 */
rd_kafka_resp_err_t producer_send(struct producer *p, const char *topic, const void *key,
    size_t keylen, const void *value, size_t len, rd_kafka_headers_t *headers,
    struct producer_waiter *w) __attribute__((warn_unused_result));

/*
 * Queue N records of TOPIC at once, as producer_send() queues one: each
 * MSGS[i] gives key, key_len, payload, len and, in _private, its waiter;
 * no headers.  Key and payload are copied.  Returns how many were queued;
 * the others have their refusal in MSGS[i].err, and their waiters never
 * fire.  One call takes librdkafka's locks once, not once a record.
 */
size_t producer_send_batch(struct producer *p, const char *topic, rd_kafka_message_t *msgs,
    size_t n) __attribute__((warn_unused_result));

/*
 * As producer_send_batch(), but the N records, all of waiter W, go to one
 * partition of TOPIC, in their order: the one librdkafka's default
 * partitioner (consistent_random) gives the first record's key.  One
 * record set a request instead of one a partition: the broker appends one
 * batch, and one delivery report answers it.  Keys still travel with the
 * records; they do not place them.  TOPIC must be sent to this way only
 * (its handle carries the partitioner).
 */
size_t producer_send_together(struct producer *p, const char *topic, rd_kafka_message_t *msgs,
    size_t n, struct producer_waiter *w) __attribute__((warn_unused_result));

/*
 * The size librdkafka gives a record of KEYLEN key bytes, LEN value bytes
 * and HEADERS (may be NULL) when it decides whether to take it:
 * PRODUCER_RECORD_OVERHEAD + KEYLEN + LEN + the headers' serialized size
 * (per header: name and value bytes plus a zig-zag varint of each length).
 * Pure; compare it with producer_max_record_bytes().
 */
size_t producer_record_size(size_t keylen, size_t len, const rd_kafka_headers_t *headers);

/*
 * The largest producer_record_size() that producer_send() accepts: the
 * effective message.max.bytes ([kafka] or librdkafka's default 1000000).
 * librdkafka refuses a larger record on the spot with MSG_SIZE_TOO_LARGE,
 * so a caller that must send all of a batch or nothing checks every record
 * against this before sending the first.  The broker may still refuse a
 * smaller one when the topic's max.message.bytes is lower (then the
 * delivery report says MSG_SIZE_TOO_LARGE).
 */
size_t producer_max_record_bytes(const struct producer *p);

/* How many more records fit in librdkafka's queue right now (0 while a
 * rebuild has no new handle). */
size_t producer_room(const struct producer *p);
/* Records queued or in flight, in the current handle and in those being
 * retired after a fatal error. */
size_t producer_outstanding(const struct producer *p);
/* Fatal errors survived so far (handles rebuilt). */
uint64_t producer_rebuilds(const struct producer *p);

/*
 * For tests only: raise a fatal error on the current handle, as librdkafka
 * would for a broken idempotent sequence
 * (rd_kafka_test_fatal_error with OUT_OF_ORDER_SEQUENCE_NUMBER and WHY).
 * The rebuild follows on the loop.  Returns librdkafka's answer.
 */
rd_kafka_resp_err_t producer_inject_fatal(struct producer *p, const char *why);

/* Shutdown only: wait up to TIMEOUT_MS for outstanding records, delivering
 * their reports; then free.  NULL-safe. */
void producer_free(struct producer *p, int timeout_ms);

#endif
