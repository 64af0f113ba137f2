/* consumer.h: the enrich role: events.raw → enriched JSON → S3 and PostgreSQL,
 * offsets stored only after both sinks confirmed. */
#ifndef COLLECTORD_CONSUMER_H
#define COLLECTORD_CONSUMER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

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
 */
struct consumer *consumer_new(struct event_base *base, const struct config *cfg,
    const struct codec_schema *schema, struct producer *producer,
    struct registry *registry, struct s3 *s3, struct pg_sink *pg,
    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Begin a graceful stop: flush what is buffered, wait for the sinks, commit,
 * leave the group.  consumer_stopped() turns true when that is over. */
void consumer_stop(struct consumer *c);
bool consumer_stopped(const struct consumer *c);
/* NULL-safe; after consumer_stopped(), or at any time when dying. */
void consumer_free(struct consumer *c);

#endif
