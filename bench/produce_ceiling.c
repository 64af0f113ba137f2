/* bench/produce_ceiling.c: the Kafka ceiling for /collect: how many records
 * per second librdkafka alone gets acknowledged with collectord's producer
 * settings (acks=all, idempotence, linger.ms=2), same key and value sizes.
 *
 *   produce_ceiling TOPIC COUNT VALUE_BYTES
 *
 * Brokers from COLLECTORD_KAFKA_BROKERS.  Prints "records/s N".
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "producer_conf.h"

static long acked, failed;

static void
on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err)
		failed++;
	else
		acked++;
}

int
main(int argc, char **argv)
{
	struct timespec t0, t1;
	char key[48], *value;
	long count, size;
	rd_kafka_t *rk;
	double secs;

	if (argc != 4) {
		fprintf(stderr, "usage: produce_ceiling TOPIC COUNT VALUE_BYTES\n");
		return 2;
	}
	count = atol(argv[2]);
	size = atol(argv[3]);
	if ((rk = bench_producer(NULL, "100000", on_dr)) == NULL)
		return 1;
	value = malloc((size_t)size);
	memset(value, 'x', (size_t)size);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < count; i++) {
		snprintf(key, sizeof(key), "01a20000-0000-7000-8000-%012ld", i % 1000000000000L);
		while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[1]),
		    RD_KAFKA_V_KEY(key, 36), RD_KAFKA_V_VALUE(value, (size_t)size),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) ==
		    RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, 60000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("records/s %.0f (acked %ld, failed %ld, %.2f s)\n", (double)acked / secs,
	    acked, failed, secs);
	free(value);
	rd_kafka_destroy(rk);
	return failed != 0;
}
