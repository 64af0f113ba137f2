/* kafka_conf.c: librdkafka configurations from [kafka], one builder for
 * every client. */
#include "kafka_conf.h"

#include <stdio.h>
#include <string.h>

#include "config.h"

/* librdkafka properties only a producer reads: the consumer would warn about
 * every one of them, and [kafka] is shared with the producer. */
static const char *const producer_only[] = {
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "linger.ms",
    "message.send.max.retries",
    "retries",
    "retry.backoff.ms",
    "queue.buffering.backpressure.threshold",
    "compression.codec",
    "compression.type",
    "compression.level",
    "batch.num.messages",
    "batch.size",
    "delivery.report.only.error",
    "sticky.partitioning.linger.ms",
    "request.required.acks",
    "acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "queuing.strategy",
    "produce.offset.report",
    "partitioner",
};

/* Defaults we want where the [kafka] section says nothing.  linger.ms is
 * measured (bench/latency.sh, bench/results/latency-linger.txt): 2 ms keeps
 * p99 under 10 ms at half the maximum rate for batches of 10 and 100 and
 * the maximum as high as any; 0 sends a produce request per batch and
 * loses a quarter to a third of the maximum, 5 adds its 5 ms to every
 * answer. */
static const char *const producer_defaults[][2] = {
    {"linger.ms", "2"},
    {"message.timeout.ms", "10000"},
    {"statistics.interval.ms", "1000"},
    {"queue.buffering.max.messages", "100000"},
};
static const char *const admin_defaults[][2] = {
    {"client.id", "collectord-admin"},
    {"reconnect.backoff.max.ms", "1000"},
};

/* Not overridable: a 200 means every record is on all in-sync replicas,
 * written once. */
static const char *const producer_forced[][2] = {
    {"acks", "all"},
    {"enable.idempotence", "true"},
};
static const char *const consumer_forced[][2] = {
    {"enable.auto.commit", "true"},
    /* offsets are stored by hand, once the sinks confirmed */
    {"enable.auto.offset.store", "false"},
    {"auto.offset.reset", "earliest"},
};

bool
kafka_conf_producer_only(const char *key)
{
	for (size_t i = 0; i < sizeof(producer_only) / sizeof(producer_only[0]); i++)
		if (strcmp(key, producer_only[i]) == 0)
			return true;
	return false;
}

static bool
set_all(rd_kafka_conf_t *conf, const char *const kv[][2], size_t n, char *err, size_t errlen)
{
	char why[512];

	for (size_t i = 0; i < n; i++) {
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], why, sizeof(why)) !=
		    RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "kafka: %s", why);
			return false;
		}
	}
	return true;
}

#define SET_ALL(conf, kv, err, errlen) set_all(conf, kv, sizeof(kv) / sizeof(kv[0]), err, errlen)

rd_kafka_conf_t *
kafka_conf_new(const struct config *cfg, enum kafka_client kind, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[512];
	bool ok = true;

	if (conf == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (kind == KAFKA_PRODUCER)
		ok = SET_ALL(conf, producer_defaults, err, errlen);
	else if (kind == KAFKA_ADMIN)
		ok = SET_ALL(conf, admin_defaults, err, errlen);
	for (size_t i = 0; ok && cfg != NULL && i < cfg->nkafka; i++) {
		const struct config_kv *kv = &cfg->kafka[i];

		if (kind != KAFKA_PRODUCER && kafka_conf_producer_only(kv->key))
			continue;
		if (rd_kafka_conf_set(conf, kv->key, kv->value, why, sizeof(why)) !=
		    RD_KAFKA_CONF_OK) {
			/* librdkafka's reason names the key, never the value
			 * of a sensitive (string) property. */
			snprintf(err, errlen, "[kafka] %s", why);
			ok = false;
		}
	}
	if (ok && kind == KAFKA_PRODUCER)
		ok = SET_ALL(conf, producer_forced, err, errlen);
	if (ok && kind == KAFKA_CONSUMER) {
		if (rd_kafka_conf_set(conf, "group.id", cfg != NULL ? cfg->enrich_group_id : "",
			why, sizeof(why)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "[enrich] group_id: %s", why);
			ok = false;
		}
		ok = ok && SET_ALL(conf, consumer_forced, err, errlen);
	}
	if (!ok) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}
