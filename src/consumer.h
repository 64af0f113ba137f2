/* consumer.h: the enrich role: events.raw → enriched JSON → S3 and PostgreSQL,
 * offsets stored only after both sinks confirmed. */
#ifndef COLLECTORD_CONSUMER_H
#define COLLECTORD_CONSUMER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct codec_schema;
struct producer;
struct registry;
struct s3;
struct pg_sink;
struct consumer;

/*
 * Join the consumer group [enrich] group_id on [topics] raw.  Every module
 * passed is borrowed and must outlive the consumer; PRODUCER carries the
 * dead letters.  NULL with ERR on failure.
 *
 * Teardown order: the consumer's requests to S3 and the registry cannot be
 * cancelled one by one, so after consumer_free() the S3 client and the
 * registry must be freed before the loop runs again (daemon_free does).
 * The producer and the PostgreSQL sink may be freed later: their reports
 * for the consumer's records (delivered by producer_free's flush, or
 * PG_SINK_ABORTED from pg_sink_free) are absorbed and free what they hold.
 */
struct consumer *consumer_new(struct event_base *base, const struct config *cfg,
    const struct codec_schema *schema, struct producer *producer, struct registry *registry,
    struct s3 *s3, struct pg_sink *pg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Begin a graceful stop: flush what is buffered, wait for the sinks, commit,
 * leave the group.  consumer_stopped() turns true when that is over. */
void consumer_stop(struct consumer *c);
bool consumer_stopped(const struct consumer *c);
/* NULL-safe; after consumer_stopped(), or at any time when dying. */
void consumer_free(struct consumer *c);

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

#endif
