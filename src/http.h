/* http.h: the HTTP routes: /collect, /healthz, /readyz, /metrics, /stats,
 * the status page, /families, /openapi.json and the read-back API. */
#ifndef COLLECTORD_HTTP_H
#define COLLECTORD_HTTP_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct collect;
struct family;
struct http;
struct readback;

/* Listen on [server] listen:port, where POST /collect is the default
 * family, and on [family.NAME] port for every served family that has one,
 * where it is that family; POST /collect/<family> works on all of them.
 * COLLECT (borrowed, may be NULL when the collect role is off) handles
 * them; READBACK (borrowed, NULL without the enrich role) the read-back
 * API.  NULL with ERR on failure. */
struct http *http_new(struct event_base *base, const struct config *cfg, struct collect *collect,
    struct readback *readback, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The registry's id of family F's schema, for /families (0: not known). */
void http_set_schema_id(struct http *h, const struct family *f, int32_t id);
/* The port actually bound (useful with port = 0). */
int http_port(const struct http *h);
/* Stop accepting connections (shutdown); open ones are served. */
void http_stop_accepting(struct http *h);
/* Close the listener and every connection.  NULL-safe. */
void http_free(struct http *h);

#endif
