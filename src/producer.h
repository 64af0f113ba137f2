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
};

/*
 * Create the producer from CFG's [kafka] section (acks=all and
 * idempotence forced on: they are what "acknowledged" means here).  Its
 * delivery reports, errors and statistics arrive on BASE.  Kafka's
 * reachability is reported to health (HEALTH_KAFKA).
 */
struct producer *producer_new(struct event_base *base, const struct config *cfg, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/*
 * Queue one record.  KEY and VALUE are copied.  HEADERS (may be NULL)
 * passes to librdkafka on success and stays the caller's on failure.
 * Returns 0 or the librdkafka error (e.g. __QUEUE_FULL); W->done fires
 * only for records that were queued, never from inside this call.
 */
rd_kafka_resp_err_t producer_send(struct producer *p, const char *topic, const void *key,
    size_t keylen, const void *value, size_t len, rd_kafka_headers_t *headers,
    struct producer_waiter *w) __attribute__((warn_unused_result));

/* How many more records fit in librdkafka's queue right now. */
size_t producer_room(const struct producer *p);
/* Records queued or in flight. */
size_t producer_outstanding(const struct producer *p);

/* Shutdown only: wait up to TIMEOUT_MS for outstanding records, delivering
 * their reports; then free.  NULL-safe. */
void producer_free(struct producer *p, int timeout_ms);

#endif
