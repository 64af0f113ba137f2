/* bench/producer_conf.h: the producer of the Kafka benchmarks
 * (produce_ceiling, produce_latency), with collectord's producer settings:
 * acks=all, idempotence, linger.ms 2 unless LINGER_MS is given. */
#ifndef BENCH_PRODUCER_CONF_H
#define BENCH_PRODUCER_CONF_H

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

/* A producer on $COLLECTORD_KAFKA_BROKERS reporting deliveries to DR, its
 * queue holding up to MAX_MESSAGES; NULL after saying why on stderr. */
static inline rd_kafka_t *
bench_producer(const char *linger_ms, const char *max_messages,
    void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *))
{
	const char *brokers = getenv("COLLECTORD_KAFKA_BROKERS");
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	char err[512];

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers ? brokers : "127.0.0.1:9092", err,
		sizeof(err)) ||
	    rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "linger.ms", linger_ms ? linger_ms : "2", err, sizeof(err)) ||
	    rd_kafka_conf_set(
		conf, "queue.buffering.max.messages", max_messages, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

#endif
