/* collect.h: POST /collect: validate a batch, dead-letter the invalid events,
 * produce the valid ones, answer once Kafka acknowledged all of them. */
#ifndef COLLECTORD_COLLECT_H
#define COLLECTORD_COLLECT_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct producer;
struct s3;
struct family;
struct collect;

/* Collect CFG's served families (family_served()).  CFG, PRODUCER and S3
 * are borrowed and must outlive the handler. */
struct collect *collect_new(struct event_base *base, const struct config *cfg,
    struct producer *producer, struct s3 *s3) __attribute__((warn_unused_result));
/* Batches still waiting for Kafka or S3 keep their memory until their last
 * report arrives; free only after the producer has been flushed. */
void collect_free(struct collect *c);

/* The registry id of family F's schema; until it is set every batch of F
 * gets 503. */
void collect_set_schema_id(struct collect *c, const struct family *f, int32_t id);
/* Stop taking new batches (503); in-flight ones still finish. */
void collect_drain(struct collect *c);
size_t collect_inflight(const struct collect *c);

struct httpd_req;
/* POST /collect[/<family>] for family F, from its head (httpd's head
 * callback, via http.c): refuse it at once (401, 404, 415, 503) or have
 * its body read and the batch run. */
void collect_head(struct httpd_req *r, struct collect *c, const struct family *f);

#endif
