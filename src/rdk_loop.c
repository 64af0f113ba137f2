/* rdk_loop.c: librdkafka queue → pipe → libevent, drained in bounded slices. */
#include "rdk_loop.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Events handled per loop pass before yielding to other sources (HTTP). */
#define RDK_SLICE 2000

struct rdk_loop {
	rd_kafka_queue_t *queue;
	rdk_loop_cb cb;
	void *arg;
	int fds[2];
	struct event *ev;
};

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct rdk_loop *loop = arg;
	char sink[256];
	int n;

	(void)what;
	/* The pipe only says "became non-empty": empty it, then the queue. */
	while (read(fd, sink, sizeof(sink)) > 0)
		;
	for (n = 0; n < RDK_SLICE; n++) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(loop->queue, 0);

		if (ev == NULL)
			return;
		loop->cb(loop->arg, ev);
		rd_kafka_event_destroy(ev);
	}
	/* More may be waiting and the pipe will not fire again for it:
	 * come back on the next loop pass instead of starving HTTP. */
	event_active(loop->ev, EV_READ, 0);
}

struct rdk_loop *
rdk_loop_new(struct event_base *base, rd_kafka_queue_t *queue, rdk_loop_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct rdk_loop *loop = calloc(1, sizeof(*loop));

	if (loop == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	loop->queue = queue;
	loop->cb = cb;
	loop->arg = arg;
	if (pipe2(loop->fds, O_NONBLOCK | O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		free(loop);
		return NULL;
	}
	loop->ev = event_new(base, loop->fds[0], EV_READ | EV_PERSIST, on_readable, loop);
	if (loop->ev == NULL || event_add(loop->ev, NULL) == -1) {
		snprintf(err, errlen, "cannot watch the librdkafka queue");
		event_free(loop->ev);
		close(loop->fds[0]);
		close(loop->fds[1]);
		free(loop);
		return NULL;
	}
	rd_kafka_queue_io_event_enable(queue, loop->fds[1], "1", 1);
	/* Events queued before we were attached would never wake us. */
	event_active(loop->ev, EV_READ, 0);
	return loop;
}

void
rdk_loop_kick(struct rdk_loop *loop)
{
	if (loop != NULL)
		event_active(loop->ev, EV_READ, 0);
}

void
rdk_loop_free(struct rdk_loop *loop)
{
	if (loop == NULL)
		return;
	rd_kafka_queue_io_event_enable(loop->queue, -1, NULL, 0);
	event_free(loop->ev);
	close(loop->fds[0]);
	close(loop->fds[1]);
	free(loop);
}

void
rdk_loop_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	char q[600];

	/* syslog levels: 0-3 errors, 4 warnings, 5-6 notices and info. */
	log_write(level <= 3   ? LOG_ERROR
		  : level <= 4 ? LOG_WARN
		  : level <= 6 ? LOG_INFO
			       : LOG_DEBUG,
	    "librdkafka", "client=%s facility=%s detail=%s", rd_kafka_name(rk), fac,
	    log_quote(buf, q, sizeof(q)));
}
