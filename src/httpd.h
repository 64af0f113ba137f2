/* httpd.h: collectord's HTTP/1.1 server on the libevent loop: connections,
 * bounds and replies.  Routing lives in http.c.
 *
 * Every bound an internet-facing server needs is enforced here, before any
 * handler runs: connections at once (accept pauses at the cap), a deadline
 * for a whole request from its first byte, the idle time of a keep-alive
 * connection, the size of a head, of a body and of all bodies being
 * received together, and strict parsing (http_parse.c).  The handler sees
 * the head before a byte of the body is read, so it can refuse a request
 * (a wrong API key, a server not ready) without buffering its body. */
#ifndef COLLECTORD_HTTPD_H
#define COLLECTORD_HTTPD_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_parse.h"

struct httpd;
struct httpd_req;

struct httpd_config {
	const char *addr;
	int port;		/* 0: any free port */
	size_t max_clients;	/* connections at once */
	size_t max_head_bytes;	/* request line and header fields (431) */
	size_t max_body_bytes;	/* one body as sent (413) */
	size_t max_body_memory; /* all bodies held at once (503) */
	long read_timeout_ms;	/* a whole request, from its first byte */
	long idle_timeout_ms;	/* keep-alive wait for the next request */
	bool reuseport;		/* SO_REUSEPORT on the listening socket */
	const char *name;	/* its label in collectord_http_clients */
};

/*
 * Called once a request's head is in, before its body is read.  It must
 * either answer now (httpd_reply: the body, if one was coming, is then not
 * read and the connection closes after the answer), or call
 * httpd_req_read_body() to have the body read and a handler called.
 */
typedef void (*httpd_head_fn)(struct httpd_req *r, void *arg);
/* Called with the whole request; it answers now or later (httpd_reply). */
typedef void (*httpd_handler_fn)(struct httpd_req *r, void *arg);

/* Listen on CFG's address; HEAD (with ARG) sees every request.  NULL with
 * ERR on failure. */
struct httpd *httpd_new(struct event_base *base, const struct httpd_config *cfg, httpd_head_fn head,
    void *arg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The port actually bound. */
int httpd_port(const struct httpd *s);
/* Stop accepting; requests in progress are answered as usual. */
void httpd_stop_accepting(struct httpd *s);
/* Close every connection (handlers waiting on one get their gone
 * callback first) and the listener.  NULL-safe. */
void httpd_free(struct httpd *s);

/* Connections open now. */
size_t httpd_clients(const struct httpd *s);

/* --- requests: valid from the head callback until answered or gone */
enum http_method httpd_req_method(const struct httpd_req *r);
const char *httpd_req_method_text(const struct httpd_req *r);
/* The path without the query, as sent (not percent-decoded). */
const char *httpd_req_path(const struct httpd_req *r);
/* The query after '?', or NULL. */
const char *httpd_req_query(const struct httpd_req *r);
/* The first header field NAME (case-insensitive), or NULL. */
const char *httpd_req_header(const struct httpd_req *r, const char *name);
/* Whether the request has a body coming (Content-Length > 0 or chunked). */
bool httpd_req_has_body(const struct httpd_req *r);

/* Read the body, then call HANDLER (from the head callback only). */
void httpd_req_read_body(struct httpd_req *r, httpd_handler_fn handler, void *arg);
/* The body (NUL-terminated, LEN bytes), owned by the request; in the
 * handler only. */
const char *httpd_req_body(const struct httpd_req *r, size_t *len);

/*
 * GONE (with ARG) fires if the client closes the connection before the
 * answer, or the server is freed; the request is freed when it returns, so
 * the owner must forget it there and never answer it.  A handler that
 * answers after it returns must set one.  Set NULL to cancel.
 */
void httpd_req_on_gone(struct httpd_req *r, void (*gone)(void *arg), void *arg);

/* Add a header field to the answer (copied). */
void httpd_req_add_header(struct httpd_req *r, const char *name, const char *value);

/*
 * Answer STATUS with BODY (LEN bytes, copied; not sent for HEAD) of type
 * CTYPE.  The request is gone after this call: the caller must drop it.
 * Every answer is counted in collectord_http_requests_total{status}.
 */
void httpd_reply(struct httpd_req *r, int status, const char *ctype, const void *body, size_t len);
/*
 * The error answer every route and the server itself give:
 * {"error":CODE,"message":MESSAGE[,"batchId":BATCH_ID]} and a newline,
 * application/json, MESSAGE (which may quote the client) escaped as JSON,
 * with Retry-After: RETRY_AFTER seconds when it is > 0.  BATCH_ID may be
 * NULL.
 */
void httpd_reply_error(struct httpd_req *r, int status, const char *code, const char *message,
    const char *batch_id, int retry_after);

#endif
