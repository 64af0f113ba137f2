/* http.h: the HTTP routes: /collect, /healthz, /readyz, /metrics. */
#ifndef COLLECTORD_HTTP_H
#define COLLECTORD_HTTP_H

#include <event2/event.h>
#include <stddef.h>

struct config;
struct collect;
struct family;
struct http;

/* Listen on [server] listen:port, and on [family.NAME] port for the
 * process's FAMILY when it has one.  COLLECT (borrowed, may be NULL when
 * the collect role is off) handles /collect, which means FAMILY on both.
 * NULL with ERR on failure. */
struct http *http_new(struct event_base *base, const struct config *cfg, struct collect *collect,
    const struct family *family, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The port actually bound (useful with port = 0). */
int http_port(const struct http *h);
/* Stop accepting connections (shutdown); open ones are served. */
void http_stop_accepting(struct http *h);
/* Close the listener and every connection.  NULL-safe. */
void http_free(struct http *h);

#endif
