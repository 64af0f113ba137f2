/* bench/open_loop.c: an HTTP load generator that offers a fixed rate.
 *
 * Requests fall due on a fixed schedule, RATE per second, whatever the
 * server's answers do, and each latency is measured from the time its
 * request was *due*, not from when a connection was free to send it.  A
 * closed-loop tool (wrk) sends the next request only after an answer, so a
 * slow server slows the offered load down with it and the slow spell hides
 * from the percentiles (coordinated omission).
 *
 *   open_loop -r RATE [-c CONNECTIONS] [-d SECONDS] [-w WARMUP] [-b BODY] URL
 *
 * Up to CONNECTIONS keep-alive connections (libevent's HTTP client, with
 * TCP_NODELAY) carry one request at a time each; a request that falls due
 * while every connection is busy waits for the first free one, and that
 * wait counts in its latency.  Answers that arrive in the SECONDS after
 * WARMUP are counted, and their latencies kept (all of them, sorted: the
 * percentiles are exact).  At the end, requests due but not yet sent
 * (backlog) and requests on the wire are reported: a backlog that is more
 * than a few requests means the rate is above what the server sustains.
 * RATE 0 is the closed loop: every connection sends again as soon as it
 * has its answer, latency from the send (the maximum rate, as wrk
 * measures it).  With BODY (a file) the requests are POSTs of it as
 * application/json, else GETs.  Prints:
 *
 *   offered R req/s, answered A req/s, C connections, S s after W s warm-up
 *   answers N: 2xx N, non-2xx N, errors N, backlog N, on the wire N
 *   status CODE WORD N                 (non-2xx, by code and JSON "error")
 *   latency ms p50 X p90 X p99 X p999 X max X
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	struct evhttp_connection *evcon;
	evutil_socket_t nodelay_fd; /* the socket TCP_NODELAY was set on */
	double due;		    /* of the request it carries */
	struct conn *next_idle;
};

static struct event_base *base;
static struct event *tick;
static const char *host, *path;
static char *body;
static size_t body_len;

static double rate, warmup = 1, seconds = 10;
static struct timespec t0;
static uint64_t next_seq; /* the next request of the schedule to send */
static struct conn *idle;
static long busy;
static bool over;

static uint32_t *samples; /* microseconds */
static size_t nsamples, samples_cap;
static unsigned long ok, non2xx, errors;

/* Non-2xx answers by status and by the "error" word of a JSON body. */
#define NREASONS 32
static struct reason {
	int status;
	char word[32];
	unsigned long n;
} reasons[NREASONS];

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
}

static struct timeval
tv_of(double s)
{
	struct timeval tv;

	if (s < 0)
		s = 0;
	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)((s - floor(s)) * 1e6);
	return tv;
}

static void
record(double latency_s)
{
	if (nsamples == samples_cap) {
		size_t cap = samples_cap ? samples_cap * 2 : 65536;
		uint32_t *n = realloc(samples, cap * sizeof(*n));

		if (n == NULL) {
			fprintf(stderr, "open_loop: out of memory\n");
			exit(1);
		}
		samples = n;
		samples_cap = cap;
	}
	latency_s *= 1e6;
	samples[nsamples++] = latency_s >= UINT32_MAX ? UINT32_MAX : (uint32_t)latency_s;
}

static void
tally(struct evhttp_request *req, int code)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	char head[257], word[32] = "", *w, *e;
	int i, n = (int)evbuffer_copyout(in, head, sizeof(head) - 1);

	head[n > 0 ? n : 0] = '\0';
	if ((w = strstr(head, "\"error\":\"")) != NULL && (e = strchr(w + 9, '"')) != NULL &&
	    (size_t)(e - w - 9) < sizeof(word)) {
		memcpy(word, w + 9, (size_t)(e - w - 9));
		word[e - w - 9] = '\0';
	}
	for (i = 0; i < NREASONS && reasons[i].n > 0; i++)
		if (reasons[i].status == code && strcmp(reasons[i].word, word) == 0)
			break;
	if (i == NREASONS)
		i = NREASONS - 1; /* the last one takes what does not fit */
	if (reasons[i].n == 0) {
		reasons[i].status = code;
		memcpy(reasons[i].word, word, sizeof(word));
	}
	reasons[i].n++;
}

static void send_due(void);

static void
on_answer(struct evhttp_request *req, void *arg)
{
	struct conn *c = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	double t = now_s();

	if (t >= warmup && !over) {
		if (code == 0)
			errors++;
		else {
			record(t - c->due);
			if (code >= 200 && code < 300)
				ok++;
			else {
				non2xx++;
				tally(req, code);
			}
		}
	}
	/* The connection is free once this returns; libevent reconnects it
	 * by itself if the server closed it. */
	c->next_idle = idle;
	idle = c;
	busy--;
	send_due();
}

static int
send_one(struct conn *c, double due)
{
	struct evhttp_request *req;
	evutil_socket_t fd;

	c->due = due;
	if ((req = evhttp_request_new(on_answer, c)) == NULL)
		return -1;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host);
	if (body != NULL) {
		evhttp_add_header(
		    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
		/* By reference: the body outlives every request. */
		evbuffer_add_reference(
		    evhttp_request_get_output_buffer(req), body, body_len, NULL, NULL);
	}
	/* On failure libevent has freed req without calling back. */
	if (evhttp_make_request(c->evcon, req, body ? EVHTTP_REQ_POST : EVHTTP_REQ_GET, path) != 0)
		return -1;
	/* As HTTP clients do (wrk and curl too): without TCP_NODELAY the tail
	 * of a body past a full segment waits for the server's delayed ACK,
	 * 40 ms.  libevent makes the socket (again, after the server closed
	 * it) in evhttp_make_request(), before it writes to it. */
	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(c->evcon));
	if (fd >= 0 && fd != c->nodelay_fd) {
		int one = 1;

		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
			c->nodelay_fd = fd;
	}
	busy++;
	return 0;
}

/* Give every free connection a request that is due (closed loop: any
 * request), then sleep until the next one falls due, if a connection is
 * free to take it; an answer that frees one comes back here earlier. */
static void
send_due(void)
{
	double t = now_s(), wake = warmup + seconds;
	struct timeval tv;

	if (over)
		return;
	while (idle != NULL) {
		double due = rate > 0 ? (double)next_seq / rate : t;
		struct conn *c = idle;

		if (due > t)
			break;
		idle = c->next_idle;
		if (send_one(c, due) == -1) {
			c->next_idle = idle;
			idle = c;
			if (t >= warmup)
				errors++;
			break; /* the tick tries again */
		}
		next_seq++;
	}
	if (idle != NULL && rate > 0 && (double)next_seq / rate < wake)
		wake = (double)next_seq / rate;
	tv = tv_of(wake - t);
	evtimer_add(tick, &tv);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (now_s() >= warmup + seconds) {
		over = true;
		event_base_loopbreak(base);
	} else
		send_due();
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The smallest sample with at least a fraction P of them at or below it. */
static double
pct_ms(double p)
{
	size_t i;

	if (nsamples == 0)
		return 0;
	i = (size_t)ceil(p * (double)nsamples);
	if (i > 0)
		i--;
	if (i >= nsamples)
		i = nsamples - 1;
	return samples[i] / 1e3;
}

static void
usage(void)
{
	fprintf(stderr, "usage: open_loop -r RATE [-c CONNECTIONS] [-d SECONDS] [-w WARMUP] "
			"[-b BODY_FILE] URL\n");
	exit(2);
}

static char *
slurp(const char *file, size_t *len)
{
	FILE *f = fopen(file, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "open_loop: %s: %s\n", file, strerror(errno));
		exit(1);
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

int
main(int argc, char **argv)
{
	struct event_config *ec;
	struct evhttp_uri *uri;
	double backlog;
	long nconns = 64;
	int opt, port;

	while ((opt = getopt(argc, argv, "r:c:d:w:b:")) != -1) {
		switch (opt) {
		case 'r':
			rate = atof(optarg);
			break;
		case 'c':
			nconns = atol(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		case 'w':
			warmup = atof(optarg);
			break;
		case 'b':
			body = slurp(optarg, &body_len);
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc || rate < 0 || nconns < 1 || seconds <= 0 || warmup < 0)
		usage();
	if ((uri = evhttp_uri_parse(argv[optind])) == NULL ||
	    (host = evhttp_uri_get_host(uri)) == NULL) {
		fprintf(stderr, "open_loop: bad URL %s\n", argv[optind]);
		return 2;
	}
	port = evhttp_uri_get_port(uri) > 0 ? evhttp_uri_get_port(uri) : 80;
	path =
	    evhttp_uri_get_path(uri) && *evhttp_uri_get_path(uri) ? evhttp_uri_get_path(uri) : "/";

	/* Timers precise to the microsecond: at thousands of requests a
	 * second the schedule is finer than the millisecond epoll_wait()
	 * would round it to. */
	if ((ec = event_config_new()) == NULL ||
	    event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER) != 0 ||
	    (base = event_base_new_with_config(ec)) == NULL) {
		fprintf(stderr, "open_loop: cannot make an event base\n");
		return 1;
	}
	event_config_free(ec);
	tick = evtimer_new(base, on_tick, NULL);
	for (long i = 0; i < nconns; i++) {
		struct conn *c = calloc(1, sizeof(*c));

		if (c == NULL || (c->evcon = evhttp_connection_base_new(
				      base, NULL, host, (unsigned short)port)) == NULL) {
			fprintf(stderr, "open_loop: cannot make connection %ld\n", i);
			return 1;
		}
		evhttp_connection_set_timeout(c->evcon, 120);
		c->nodelay_fd = -1;
		c->next_idle = idle;
		idle = c;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	send_due();
	event_base_dispatch(base);

	backlog = rate > 0 ? floor((warmup + seconds) * rate) - (double)next_seq : 0;
	qsort(samples, nsamples, sizeof(*samples), cmp_u32);
	printf(
	    "offered %.0f req/s, answered %.1f req/s, %ld connections, %g s after %g s warm-up\n",
	    rate, (double)(ok + non2xx) / seconds, nconns, seconds, warmup);
	printf("answers %lu: 2xx %lu, non-2xx %lu, errors %lu, backlog %.0f, on the wire %ld\n",
	    ok + non2xx, ok, non2xx, errors, backlog > 0 ? backlog : 0, busy);
	for (int i = 0; i < NREASONS && reasons[i].n > 0; i++)
		printf("status %d %s %lu\n", reasons[i].status,
		    reasons[i].word[0] ? reasons[i].word : "-", reasons[i].n);
	printf("latency ms p50 %.2f p90 %.2f p99 %.2f p999 %.2f max %.2f\n", pct_ms(0.50),
	    pct_ms(0.90), pct_ms(0.99), pct_ms(0.999), pct_ms(1.0));
	return 0;
}
