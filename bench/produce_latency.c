/* bench/produce_latency.c: the latency floor for /collect at an offered
 * rate: librdkafka alone producing batches of BATCH records on a fixed
 * schedule of RATE batches a second, with collectord's producer settings
 * (acks=all, idempotence, linger.ms 2 unless LINGER_MS), each batch on one
 * partition as collectord places a request's events, same key and value
 * sizes.  A batch's latency runs from its scheduled send to its last
 * delivery report, as bench/open_loop counts a request's; the batches
 * scheduled in the first WARMUP seconds are not counted.
 *
 *   produce_latency TOPIC RATE BATCH SECONDS WARMUP VALUE_BYTES [LINGER_MS]
 *
 * Brokers from COLLECTORD_KAFKA_BROKERS.  Prints one line:
 *   "batches N p50 X p99 Y p999 Z failed F" (latencies in ms).
 */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "producer_conf.h"

struct batch {
	int64_t due_ns; /* scheduled send, monotonic */
	double ms;	/* latency once every record is reported; < 0 before */
	int left;	/* delivery reports still due */
	int failed;
};

static struct batch *batches;

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct batch *b = &batches[(intptr_t)m->_private];

	(void)rk;
	(void)opaque;
	if (m->err)
		b->failed++;
	if (--b->left == 0)
		b->ms = (double)(now_ns() - b->due_ns) / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The Q quantile of the N sorted values V. */
static double
quantile(const double *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n + 0.999999);

	return n == 0 ? 0 : v[i == 0 ? 0 : i - 1];
}

static int
partitions_of(rd_kafka_t *rk, const char *topic)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md;
	int n = -1;

	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (md->topic_cnt == 1 && md->topics[0].err == 0)
			n = md->topics[0].partition_cnt;
		rd_kafka_metadata_destroy(md);
	}
	rd_kafka_topic_destroy(rkt);
	return n;
}

int
main(int argc, char **argv)
{
	long rate, batch, secs, warm, size, total, first, sent = 0, failed = 0;
	int64_t t0, step_ns;
	uint32_t rnd = 2463534242u;
	char key[48], *value;
	size_t n = 0;
	double *ms;
	rd_kafka_t *rk;
	int nparts;

	if (argc != 7 && argc != 8) {
		fprintf(stderr,
		    "usage: produce_latency TOPIC RATE BATCH SECONDS WARMUP VALUE_BYTES "
		    "[LINGER_MS]\n");
		return 2;
	}
	rate = atol(argv[2]);
	batch = atol(argv[3]);
	secs = atol(argv[4]);
	warm = atol(argv[5]);
	size = atol(argv[6]);
	if (rate <= 0 || batch <= 0 || secs <= 0 || warm < 0 || size <= 0) {
		fprintf(stderr, "produce_latency: RATE, BATCH, SECONDS and VALUE_BYTES must be "
				"positive\n");
		return 2;
	}
	if ((rk = bench_producer(argc == 8 ? argv[7] : NULL, "1000000", on_dr)) == NULL)
		return 1;
	if ((nparts = partitions_of(rk, argv[1])) <= 0) {
		fprintf(stderr, "produce_latency: no metadata for %s\n", argv[1]);
		return 1;
	}
	total = rate * (secs + warm);
	first = rate * warm;
	batches = calloc((size_t)total, sizeof(*batches));
	ms = calloc((size_t)total, sizeof(*ms));
	value = malloc((size_t)size);
	if (batches == NULL || ms == NULL || value == NULL) {
		fprintf(stderr, "produce_latency: out of memory\n");
		return 1;
	}
	memset(value, 'x', (size_t)size);
	step_ns = 1000000000 / rate;
	t0 = now_ns();
	while (sent < total) {
		int64_t now = now_ns(), wait_ns;

		/* Every batch that is due goes now, however late. */
		while (sent < total && t0 + sent * step_ns <= now) {
			struct batch *b = &batches[sent];
			int32_t part;

			rnd ^= rnd << 13;
			rnd ^= rnd >> 17;
			rnd ^= rnd << 5;
			part = (int32_t)(rnd % (uint32_t)nparts);
			b->due_ns = t0 + sent * step_ns;
			b->ms = -1;
			b->left = (int)batch;
			for (long i = 0; i < batch; i++) {
				snprintf(key, sizeof(key), "01a20000-0000-7000-8000-%012ld",
				    (sent * batch + i) % 1000000000000L);
				while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[1]),
					   RD_KAFKA_V_PARTITION(part), RD_KAFKA_V_KEY(key, 36),
					   RD_KAFKA_V_VALUE(value, (size_t)size),
					   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					   RD_KAFKA_V_OPAQUE((void *)(intptr_t)sent),
					   RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
					rd_kafka_poll(rk, 1);
			}
			sent++;
		}
		/* Reports until the next batch is due: poll() wakes on the
		 * first, so a report is timed when it arrives. */
		wait_ns = t0 + sent * step_ns - now_ns();
		if (wait_ns >= 1000000)
			rd_kafka_poll(rk, (int)(wait_ns / 1000000));
		else if (rd_kafka_poll(rk, 0) == 0 && wait_ns > 0)
			nanosleep(&(struct timespec){0, wait_ns > 50000 ? 50000 : wait_ns}, NULL);
	}
	rd_kafka_flush(rk, 60000);
	for (long i = first; i < total; i++) {
		failed += batches[i].failed != 0 || batches[i].ms < 0;
		if (batches[i].ms >= 0 && batches[i].failed == 0)
			ms[n++] = batches[i].ms;
	}
	qsort(ms, n, sizeof(*ms), cmp_double);
	printf("batches %zu p50 %.2f p99 %.2f p999 %.2f failed %ld\n", n, quantile(ms, n, 0.50),
	    quantile(ms, n, 0.99), quantile(ms, n, 0.999), failed);
	free(value);
	free(ms);
	free(batches);
	rd_kafka_destroy(rk);
	return failed != 0;
}
