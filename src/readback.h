/*
 * readback.h: the read-back API of the enrich role: GET /events/{id},
 * /requests/{id}, /events, /rejections and /families/{name}/daily (a
 * family's per-day count of the last days), answered from PostgreSQL.
 *
 * It reads on connections of its own ([readback] connections pg_conn
 * sessions, non-blocking on the loop, never the sink's), each session
 * read-only with [readback] statement_timeout_ms.  A request is refused at
 * once, before any query, when no session is up (503 postgres_unavailable)
 * or when [readback] max_queries are running and waiting already (503
 * busy); a query the server cancels, or one that gets no answer within
 * the timeout and a second, is 503 too.  So a slow or down PostgreSQL
 * costs a client a fast 503 and the loop nothing.
 */
#ifndef COLLECTORD_READBACK_H
#define COLLECTORD_READBACK_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct config;
struct httpd_req;
struct readback;

/* Read CFG's served families' tables and rejections on [readback] conninfo
 * (empty: [pg] conninfo).  CFG is borrowed and must outlive it.  NULL
 * with ERR on a malformed conninfo or a family whose table lacks what the
 * API reads (readback_sql.h, rb_table_of). */
struct readback *readback_new(struct event_base *base, const struct config *cfg, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* Answers nothing more; requests waiting are dropped (their connections
 * are being closed by the server's own teardown).  NULL-safe. */
void readback_free(struct readback *rb);

/* Whether PATH is one of the read-back routes. */
bool readback_route(const char *path);
/* A GET (or HEAD) of a read-back route from its head: answered now (401,
 * 400, 404, 503) or once its queries are done. */
void readback_head(struct readback *rb, struct httpd_req *r);

#endif
