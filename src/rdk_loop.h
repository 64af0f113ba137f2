/* rdk_loop.h: deliver a librdkafka event queue on the libevent loop. */
#ifndef COLLECTORD_RDK_LOOP_H
#define COLLECTORD_RDK_LOOP_H

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

struct rdk_loop;

/* Called on the loop thread for every event of the queue.  EV is borrowed:
 * it is destroyed when the callback returns.  The callback may not free the
 * rdk_loop that called it. */
typedef void (*rdk_loop_cb)(void *arg, rd_kafka_event_t *ev);

/*
 * Watch QUEUE (borrowed: it must outlive the rdk_loop) through
 * rd_kafka_queue_io_event_enable: librdkafka writes to a pipe when the
 * queue goes from empty to non-empty, and the loop drains the queue.
 * NULL with ERR filled on failure.
 */
struct rdk_loop *rdk_loop_new(struct event_base *base, rd_kafka_queue_t *queue, rdk_loop_cb cb,
    void *arg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Detach from the queue (stops the pipe writes) and free. */
void rdk_loop_free(struct rdk_loop *loop);
/* Drain now, e.g. after a flush; no-op when the queue is empty. */
void rdk_loop_kick(struct rdk_loop *loop);

/* A librdkafka log callback (rd_kafka_conf_set_log_cb) writing our log
 * format; librdkafka calls it from its own threads, which log_write allows. */
void rdk_loop_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
