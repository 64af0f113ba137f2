/* kafka_conf.h: the one place librdkafka configurations are built, for the
 * producer, the enrich consumer and collectord-admin alike, from the
 * [kafka] section: so SASL, TLS or any other setting given there reaches
 * every client. */
#ifndef COLLECTORD_KAFKA_CONF_H
#define COLLECTORD_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

struct config;

enum kafka_client {
	KAFKA_PRODUCER, /* the idempotent producer of both roles */
	KAFKA_CONSUMER, /* the enrich consumer group member */
	KAFKA_ADMIN,	/* collectord-admin: metadata and topic creation */
};

/*
 * A new configuration for a client of KIND (the caller owns it, or passes
 * it to rd_kafka_new): first collectord's soft defaults for KIND, then every
 * [kafka] key of CFG (NULL: none) that KIND reads (the producer-only ones
 * are left out of the others, which would warn about each), then what KIND
 * cannot do without, which [kafka] cannot change:
 *   producer  acks=all, enable.idempotence=true (what "acknowledged" means)
 *   consumer  group.id = [enrich] group_id, enable.auto.commit=true,
 *             enable.auto.offset.store=false (offsets are stored once the
 *             sinks confirmed), auto.offset.reset=earliest; the archive
 *             and the rejections reader set a group.id of their own on it
 *   admin     client.id=collectord-admin unless [kafka] names one
 * NULL with "[kafka] <librdkafka's reason>" in ERR.
 */
rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, enum kafka_client kind, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* Whether only a producer reads librdkafka property KEY. */
bool kafka_conf_producer_only(const char *key);

#endif
