/* httpd.c: the HTTP/1.1 server: accept, read, bound, answer, close.
 *
 * One struct conn per client connection, on exactly one list, in exactly
 * one state; state changes re-arm its one timer:
 *   HEAD     reading a request head (idle until its first byte: idle or,
 *            on a new connection, read timeout; then the read deadline)
 *   BODY     reading the body (the same deadline, still running)
 *   HANDLING a handler has the request (no timer: the handler has its own)
 *   WRITING  the answer is being written (read timeout)
 *   LINGER   answered early with request bytes still coming: the write side
 *            is shut and input is discarded for a moment, so that closing
 *            does not reset the connection before the client read the answer
 * A request is embedded in its connection: one at a time, pipelined
 * requests wait in the input buffer, which stops growing at INPUT_HIGH. */
#include "httpd.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

/* Input buffered while a request is handled (pipelined requests). */
#define INPUT_HIGH (64 * 1024)
/* Request bytes discarded after an early answer, and for how long. */
#define LINGER_BYTES (256 * 1024)
#define LINGER_MS 2000
/* After an accept error (out of fds), accepting rests this long. */
#define ACCEPT_REST_MS 500
/* At most one accept-error line per this many seconds. */
#define ACCEPT_LOG_EVERY_S 10
#define HEAD_MIN_CAP 1024
#define MAX_OUT_HEADERS 8

enum cstate { C_HEAD, C_BODY, C_HANDLING, C_WRITING, C_LINGER };

struct httpd_req {
	struct conn *c;
	struct http_head h;
	char *path;
	const char *query;
	bool body_wanted;   /* httpd_req_read_body() was called */
	bool body_complete; /* and the whole body is in */
	char *body;
	size_t body_len, body_cap;
	size_t reserved; /* of the server's body budget */
	struct http_chunked ch;
	httpd_handler_fn handler;
	void *handler_arg;
	void (*gone)(void *arg);
	void *gone_arg;
	char *out_name[MAX_OUT_HEADERS], *out_value[MAX_OUT_HEADERS];
	size_t nout;
};

struct conn {
	TAILQ_ENTRY(conn) link;
	struct httpd *srv;
	struct bufferevent *bev;
	struct event *timer;
	enum cstate state;
	bool started;	  /* a byte of the current request arrived */
	bool close_after; /* close once the answer is written */
	char *head;
	size_t head_len, head_cap, head_scan;
	size_t lingered;
	struct httpd_req req;
};

TAILQ_HEAD(conn_list, conn);

struct httpd {
	struct event_base *base;
	struct httpd_config cfg;
	httpd_head_fn head;
	void *head_arg;
	struct evconnlistener *listener;
	struct event *rest_timer;
	struct conn_list conns;
	size_t nclients;
	size_t body_used;
	bool listening, resting, stopped;
	int port;
	time_t accept_logged;
	unsigned long accept_errors_unlogged;
	time_t date_at;
	char date[40];
	char label[64];
};

static void conn_process(struct conn *c);
static void conn_free(struct conn *c);

static void
timer_ms(struct conn *c, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

static void
clients_gauge(struct httpd *s)
{
	metrics_set("collectord_http_clients", s->label, (double)s->nclients);
}

/* Accept when below the cap, not resting after an error, not stopped. */
static void
listener_update(struct httpd *s)
{
	bool want = !s->stopped && !s->resting && s->nclients < s->cfg.max_clients;

	if (s->listener == NULL || want == s->listening)
		return;
	if (want)
		evconnlistener_enable(s->listener);
	else
		evconnlistener_disable(s->listener);
	s->listening = want;
}

/* ------------------------------------------------------------ bodies */

static void
body_release(struct httpd_req *r)
{
	struct httpd *s = r->c->srv;

	s->body_used -= r->reserved;
	r->reserved = 0;
	free(r->body);
	r->body = NULL;
	r->body_len = r->body_cap = 0;
}

/* Make room for N more body bytes: 413 past the body limit, 503 past the
 * server's budget, 500 out of memory; 0 when there is room. */
static int
body_grow(struct httpd_req *r, uint64_t n)
{
	struct httpd *s = r->c->srv;
	uint64_t need = (uint64_t)r->body_len + n;
	size_t cap;
	char *b;

	if (need > s->cfg.max_body_bytes)
		return 413;
	if (need <= r->body_cap)
		return 0;
	cap = r->body_cap ? r->body_cap : 4096;
	while (cap < need)
		cap *= 2;
	if (r->h.has_length || cap > s->cfg.max_body_bytes)
		cap = (size_t)need;
	if (cap - r->reserved > s->cfg.max_body_memory - s->body_used ||
	    s->body_used > s->cfg.max_body_memory)
		return 503;
	if ((b = realloc(r->body, cap + 1)) == NULL)
		return 500;
	s->body_used += cap - r->reserved;
	r->reserved = cap;
	r->body = b;
	r->body_cap = cap;
	return 0;
}

/* ------------------------------------------------------------ answers */

static const char *
http_date(struct httpd *s)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != s->date_at) {
		gmtime_r(&now, &tm);
		strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		s->date_at = now;
	}
	return s->date;
}

static void
req_reset(struct httpd_req *r)
{
	struct conn *c = r->c;

	if (r->body != NULL || r->reserved)
		body_release(r);
	for (size_t i = 0; i < r->nout; i++) {
		free(r->out_name[i]);
		free(r->out_value[i]);
	}
	memset(r, 0, sizeof(*r));
	r->c = c;
}

void
httpd_reply(struct httpd_req *r, int status, const char *ctype, const void *body, size_t len)
{
	struct conn *c = r->c;
	struct httpd *s = c->srv;
	struct evbuffer *out;
	char label[32];
	bool body_unread = httpd_req_has_body(r) && !r->body_complete;

	snprintf(label, sizeof(label), "status=\"%d\"", status);
	metrics_add("collectord_http_requests_total", label, 1);
	c->close_after = !r->h.keep_alive || body_unread || s->stopped || r->h.method == 0;
	out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out,
	    "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
	    http_reason(status), http_date(s), ctype, len);
	for (size_t i = 0; i < r->nout; i++)
		evbuffer_add_printf(out, "%s: %s\r\n", r->out_name[i], r->out_value[i]);
	if (c->close_after)
		evbuffer_add(out, "Connection: close\r\n", 19);
	else if (r->h.minor == 0)
		evbuffer_add(out, "Connection: keep-alive\r\n", 24);
	evbuffer_add(out, "\r\n", 2);
	if (r->h.method != HTTP_HEAD && len > 0)
		evbuffer_add(out, body, len);
	c->lingered = body_unread ? 0 : SIZE_MAX;
	req_reset(r);
	c->state = C_WRITING;
	timer_ms(c, s->cfg.read_timeout_ms);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* S as the body of a JSON string into OUT (SIZE bytes, NUL-terminated,
 * cut at a character boundary when too long); bytes >= 0x80 are copied
 * as they are (the caller's text is UTF-8). */
static void
json_escape(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];
		size_t len;

		if (ch == '"' || ch == '\\')
			len = (size_t)snprintf(esc, sizeof(esc), "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			len = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", ch);
		else
			esc[0] = (char)ch, len = 1;
		if (n + len >= size)
			break;
		memcpy(out + n, esc, len);
		n += len;
	}
	/* a multi-byte character cut in two would not be UTF-8 */
	while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
		n--;
	if (n > 0 && (unsigned char)out[n - 1] >= 0xc0)
		n--;
	out[n] = '\0';
}

void
httpd_reply_error(struct httpd_req *r, int status, const char *code, const char *message,
    const char *batch_id, int retry_after)
{
	char msg[1024], body[1400], v[16];
	int n;

	json_escape(msg, sizeof(msg), message);
	n = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%s\"%s%s%s}\n", code, msg,
	    batch_id != NULL ? ",\"batchId\":\"" : "", batch_id != NULL ? batch_id : "",
	    batch_id != NULL ? "\"" : "");
	if (retry_after > 0) {
		snprintf(v, sizeof(v), "%d", retry_after);
		httpd_req_add_header(r, "Retry-After", v);
	}
	httpd_reply(
	    r, status, "application/json", body, n > 0 && (size_t)n < sizeof(body) ? (size_t)n : 0);
}

/* An answer of the server's own (a malformed request, a limit). */
static void
reply_error(struct httpd_req *r, int status, const char *code, const char *message)
{
	httpd_reply_error(r, status, code, message, NULL, status == 503 ? 1 : 0);
}

static const char *
error_code(int status)
{
	switch (status) {
	case 400:
		return "bad_request";
	case 408:
		return "timeout";
	case 413:
		return "too_large";
	case 417:
		return "expectation_failed";
	case 431:
		return "headers_too_large";
	case 501:
		return "not_implemented";
	case 503:
		return "busy";
	case 505:
		return "version_not_supported";
	default:
		return "internal";
	}
}

/* A body refused for its size (413), the server's budget (503) or memory
 * (500): body_grow()'s answers. */
static void
reply_body_refused(struct httpd_req *r, int status)
{
	reply_error(r, status, error_code(status),
	    status == 413   ? "the body is larger than the limit"
	    : status == 503 ? "too much request data in flight; retry later"
			    : "out of memory");
}

/* ------------------------------------------------------------ reading */

/* Move head bytes from the input into c->head; true once it is whole. */
static bool
read_head(struct conn *c, struct evbuffer *in)
{
	struct httpd *s = c->srv;
	size_t avail, end, k;

	while ((avail = evbuffer_get_length(in)) > 0) {
		if (c->head_len == 0) {
			/* Empty lines between requests are not a request. */
			unsigned char first;

			evbuffer_copyout(in, &first, 1);
			if (first == '\r' || first == '\n') {
				evbuffer_drain(in, 1);
				continue;
			}
		}
		if (!c->started) {
			c->started = true;
			timer_ms(c, s->cfg.read_timeout_ms);
		}
		if (c->head_len == c->head_cap) {
			size_t cap = c->head_cap ? c->head_cap * 2 : HEAD_MIN_CAP;
			char *h;

			if (c->head_cap >= s->cfg.max_head_bytes) {
				reply_error(&c->req, 431, "headers_too_large",
				    "the request head is too large");
				return false;
			}
			if (cap > s->cfg.max_head_bytes)
				cap = s->cfg.max_head_bytes;
			if ((h = realloc(c->head, cap + 1)) == NULL) {
				reply_error(&c->req, 500, "internal", "out of memory");
				return false;
			}
			c->head = h;
			c->head_cap = cap;
		}
		k = c->head_cap - c->head_len;
		if (k > avail)
			k = avail;
		evbuffer_copyout(in, c->head + c->head_len, k);
		end = http_head_end(c->head, c->head_len + k, &c->head_scan);
		if (end != 0) {
			evbuffer_drain(in, end - c->head_len);
			c->head_len = end;
			return true;
		}
		evbuffer_drain(in, k);
		c->head_len += k;
	}
	return false;
}

static void
head_done(struct conn *c)
{
	struct httpd_req *r = &c->req;
	char err[160];
	char *q;
	int st;

	c->head[c->head_len] = '\0';
	st = http_parse_head(c->head, c->head_len, &r->h, err, sizeof(err));
	if (st != 0) {
		reply_error(r, st, error_code(st), err);
		return;
	}
	r->path = (char *)r->h.target;
	if ((q = strchr(r->path, '?')) != NULL) {
		*q = '\0';
		r->query = q + 1;
	}
	c->state = C_HANDLING;
	c->srv->head(r, c->srv->head_arg);
	/* The head callback answered, or asked for the body. */
	if (c->state == C_HANDLING && !r->body_wanted)
		reply_error(r, 500, "internal", "the request was not handled");
}

/* Read body bytes; true once the body is whole. */
static bool
read_body(struct conn *c, struct evbuffer *in)
{
	struct httpd_req *r = &c->req;
	int st;

	/* Neither Content-Length nor chunked: a request without a body
	 * (RFC 9112, 6.3), such as a GET answered later. */
	if (!r->h.has_length && !r->h.chunked)
		return true;
	if (r->h.has_length) {
		size_t want = (size_t)r->h.length - r->body_len, avail = evbuffer_get_length(in);

		if (avail > want)
			avail = want;
		if (avail > 0) {
			evbuffer_remove(in, r->body + r->body_len, avail);
			r->body_len += avail;
		}
		return r->body_len == r->h.length;
	}
	for (;;) {
		struct evbuffer_iovec v;
		size_t used = 0, off = 0, n = 0;
		enum http_chunk_result res;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return false;
		res = http_chunked_feed(&r->ch, v.iov_base, v.iov_len, 4096, &used, &off, &n);
		if (res == HTTP_CHUNK_DATA) {
			if ((st = body_grow(r, n)) != 0) {
				reply_body_refused(r, st);
				return false;
			}
			memcpy(r->body + r->body_len, (char *)v.iov_base + off, n);
			r->body_len += n;
		}
		evbuffer_drain(in, used);
		/* A chunk announced past the limit is refused now, not after
		 * waiting for data that may never come. */
		if (res != HTTP_CHUNK_ERROR &&
		    (uint64_t)r->body_len + r->ch.size > c->srv->cfg.max_body_bytes) {
			reply_body_refused(r, 413);
			return false;
		}
		if (res == HTTP_CHUNK_ERROR) {
			reply_error(r, 400, "bad_request", "malformed chunked body");
			return false;
		}
		if (res == HTTP_CHUNK_DONE)
			return true;
	}
}

static void
body_done(struct conn *c)
{
	struct httpd_req *r = &c->req;

	/* An empty body still gets its NUL (not counted in the budget). */
	if (r->body == NULL && (r->body = malloc(1)) == NULL) {
		reply_error(r, 500, "internal", "out of memory");
		return;
	}
	r->body[r->body_len] = '\0';
	r->body_complete = true;
	c->state = C_HANDLING;
	evtimer_del(c->timer);
	r->handler(r, r->handler_arg);
}

static void
conn_process(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	for (;;) {
		switch (c->state) {
		case C_HEAD:
			if (!read_head(c, in))
				return;
			head_done(c);
			break;
		case C_BODY:
			if (!read_body(c, in))
				return;
			body_done(c);
			break;
		case C_LINGER: {
			size_t n = evbuffer_get_length(in);

			evbuffer_drain(in, n);
			c->lingered += n;
			if (c->lingered > LINGER_BYTES)
				conn_free(c);
			return;
		}
		case C_HANDLING:
		case C_WRITING:
		default:
			return;
		}
	}
}

void
httpd_req_read_body(struct httpd_req *r, httpd_handler_fn handler, void *arg)
{
	struct conn *c = r->c;
	int st = 0;

	r->handler = handler;
	r->handler_arg = arg;
	r->body_wanted = true;
	if (r->h.has_length) {
		if (r->h.length > c->srv->cfg.max_body_bytes)
			st = 413;
		else
			st = body_grow(r, r->h.length);
	}
	if (st != 0) {
		r->body_wanted = false;
		reply_body_refused(r, st);
		return;
	}
	if (r->h.expect_continue && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
	c->state = C_BODY;
}

/* ------------------------------------------------------------ events */

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->state != C_WRITING)
		return;
	if (c->close_after) {
		if (c->lingered == SIZE_MAX) {
			conn_free(c);
			return;
		}
		/* Answered before the request was read: let the client
		 * finish sending and read the answer before we close. */
		shutdown(bufferevent_getfd(c->bev), SHUT_WR);
		c->state = C_LINGER;
		timer_ms(c, LINGER_MS);
		conn_process(c);
		return;
	}
	c->state = C_HEAD;
	c->started = false;
	c->head_len = c->head_scan = 0;
	timer_ms(c, c->srv->cfg.idle_timeout_ms);
	/* A pipelined request may be waiting already. */
	conn_process(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	/* A client that shut its side after a whole request (HTTP/1.0 tools
	 * do) still gets its answer; any other EOF or error ends it. */
	if (what == (BEV_EVENT_READING | BEV_EVENT_EOF) && c->state == C_WRITING) {
		c->close_after = true;
		c->lingered = SIZE_MAX;
		return;
	}
	if (c->state == C_HANDLING)
		metrics_add("collectord_http_clients_gone_total", "", 1);
	conn_free(c); /* tells the handler, if one has the request */
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case C_HEAD:
		if (!c->started) {
			conn_free(c); /* idle keep-alive connection */
			return;
		}
		__attribute__((fallthrough));
	case C_BODY:
		metrics_add("collectord_http_timeouts_total", "", 1);
		c->req.body_wanted = false;
		reply_error(&c->req, 408, "timeout", "the request did not arrive in time");
		c->lingered = SIZE_MAX; /* close without lingering */
		return;
	case C_WRITING:
	case C_LINGER:
	case C_HANDLING:
	default:
		conn_free(c);
	}
}

static void
conn_free(struct conn *c)
{
	struct httpd *s = c->srv;

	if (c->state == C_HANDLING) {
		void (*gone)(void *) = c->req.gone;

		/* A handler answering later must have said how to tell it. */
		if (gone == NULL)
			log_error("request freed under its handler", "path=%s",
			    c->req.path ? c->req.path : "");
		c->req.gone = NULL;
		if (gone != NULL)
			gone(c->req.gone_arg);
	}
	req_reset(&c->req);
	TAILQ_REMOVE(&s->conns, c, link);
	s->nclients--;
	clients_gauge(s);
	bufferevent_free(c->bev);
	event_free(c->timer);
	free(c->head);
	free(c);
	listener_update(s);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct httpd *s = arg;
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	(void)l;
	(void)sa;
	(void)salen;
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->srv = s;
	c->req.c = c;
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(s->base, on_timer, c);
	if (c->bev == NULL || c->timer == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, INPUT_HIGH);
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->nclients++;
	clients_gauge(s);
	c->state = C_HEAD;
	timer_ms(c, s->cfg.read_timeout_ms);
	listener_update(s);
}

static void
on_rest_over(evutil_socket_t fd, short what, void *arg)
{
	struct httpd *s = arg;

	(void)fd;
	(void)what;
	s->resting = false;
	listener_update(s);
}

/* accept() failed for a reason that will not go away by itself at once
 * (no fds left): rest a moment instead of spinning on a ready socket. */
static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	struct httpd *s = arg;
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {ACCEPT_REST_MS / 1000, (ACCEPT_REST_MS % 1000) * 1000};
	time_t now = time(NULL);

	(void)l;
	metrics_add("collectord_http_accept_errors_total", "", 1);
	s->accept_errors_unlogged++;
	if (now - s->accept_logged >= ACCEPT_LOG_EVERY_S) {
		log_warn("cannot accept connections", "error=\"%s\" count=%lu clients=%zu",
		    evutil_socket_error_to_string(e), s->accept_errors_unlogged, s->nclients);
		s->accept_logged = now;
		s->accept_errors_unlogged = 0;
	}
	s->resting = true;
	listener_update(s);
	evtimer_add(s->rest_timer, &tv);
}

/* ------------------------------------------------------------ API */

struct httpd *
httpd_new(struct event_base *base, const struct httpd_config *cfg, httpd_head_fn head, void *arg,
    char *err, size_t errlen)
{
	struct httpd *s = calloc(1, sizeof(*s));
	struct evutil_addrinfo hints = {0}, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[16];
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	int rc;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->cfg = *cfg;
	s->head = head;
	s->head_arg = arg;
	TAILQ_INIT(&s->conns);
	snprintf(s->label, sizeof(s->label), "listener=\"%s\"", cfg->name ? cfg->name : "main");
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* Resolved once, before the loop runs. */
	hints.ai_flags = EVUTIL_AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", cfg->port);
	if ((rc = evutil_getaddrinfo(cfg->addr, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->addr, cfg->port,
		    evutil_gai_strerror(rc));
		free(s);
		return NULL;
	}
	if (cfg->reuseport)
		flags |= LEV_OPT_REUSEABLE_PORT;
	s->listener = evconnlistener_new_bind(
	    base, on_accept, s, flags, 1024, ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (s->listener == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->addr, cfg->port,
		    strerror(errno));
		free(s);
		return NULL;
	}
	s->listening = true;
	evconnlistener_set_error_cb(s->listener, on_accept_error);
	if ((s->rest_timer = evtimer_new(base, on_rest_over, s)) == NULL) {
		snprintf(err, errlen, "out of memory");
		httpd_free(s);
		return NULL;
	}
	if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	metrics_declare("collectord_http_requests_total", METRIC_COUNTER,
	    "HTTP answers by status, every endpoint, the server's own refusals included.");
	metrics_declare("collectord_http_clients", METRIC_GAUGE,
	    "Client connections open, by listener (main, or a family's own port).");
	metrics_declare("collectord_http_clients_gone_total", METRIC_COUNTER,
	    "Clients that closed their connection before their answer.");
	metrics_declare("collectord_http_timeouts_total", METRIC_COUNTER,
	    "Requests that did not arrive within read_timeout_ms (answered 408).");
	metrics_declare("collectord_http_accept_errors_total", METRIC_COUNTER,
	    "accept() failures (out of file descriptors); accepting rests after each.");
	clients_gauge(s);
	return s;
}

int
httpd_port(const struct httpd *s)
{
	return s->port;
}

size_t
httpd_clients(const struct httpd *s)
{
	return s->nclients;
}

void
httpd_stop_accepting(struct httpd *s)
{
	s->stopped = true;
	listener_update(s);
}

void
httpd_free(struct httpd *s)
{
	struct conn *c;

	if (s == NULL)
		return;
	s->stopped = true;
	while ((c = TAILQ_FIRST(&s->conns)) != NULL)
		conn_free(c);
	if (s->listener != NULL)
		evconnlistener_free(s->listener);
	if (s->rest_timer != NULL)
		event_free(s->rest_timer);
	free(s);
}

enum http_method
httpd_req_method(const struct httpd_req *r)
{
	return r->h.method;
}

const char *
httpd_req_method_text(const struct httpd_req *r)
{
	return r->h.method_text;
}

const char *
httpd_req_path(const struct httpd_req *r)
{
	return r->path;
}

const char *
httpd_req_query(const struct httpd_req *r)
{
	return r->query;
}

const char *
httpd_req_header(const struct httpd_req *r, const char *name)
{
	return http_head_field(&r->h, name);
}

bool
httpd_req_has_body(const struct httpd_req *r)
{
	return r->h.chunked || (r->h.has_length && r->h.length > 0);
}

const char *
httpd_req_body(const struct httpd_req *r, size_t *len)
{
	*len = r->body_len;
	return r->body;
}

void
httpd_req_on_gone(struct httpd_req *r, void (*gone)(void *arg), void *arg)
{
	r->gone = gone;
	r->gone_arg = arg;
}

void
httpd_req_add_header(struct httpd_req *r, const char *name, const char *value)
{
	if (r->nout == MAX_OUT_HEADERS)
		return;
	if ((r->out_name[r->nout] = strdup(name)) == NULL)
		return;
	if ((r->out_value[r->nout] = strdup(value)) == NULL) {
		free(r->out_name[r->nout]);
		return;
	}
	r->nout++;
}
