/*
 * pg_conn.h: one non-blocking libpq connection driven by a libevent base.
 *
 * It connects with PQconnectStart/PQconnectPoll, reconnects with jittered
 * exponential backoff whenever the session is lost, and carries queries in
 * libpq pipeline mode: callers queue statements and syncs, results come back
 * through callbacks in the order the work was queued.  It only moves bytes
 * and events; what to send, and what to do after a failure, is the owner's
 * business (pg_sink).
 *
 * Callbacks never fire from inside a pg_conn_* call; they fire from the
 * event loop.  Results passed to them are borrowed for the call only.
 *
 * libpq would resolve host names synchronously inside PQconnectStart, so
 * before each attempt the names of the host list are resolved with
 * libevent's evdns (which reads /etc/hosts and /etc/resolv.conf) and libpq
 * gets their addresses as hostaddr=, keeping host= for TLS verification
 * and the password file (pg_hosts.h rewrites the host list).  A conninfo
 * that sets hostaddr, or service= (whose file may name the host), is passed
 * to libpq as it is.
 */
#ifndef COLLECTORD_PG_CONN_H
#define COLLECTORD_PG_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

struct event_base;
struct pg_conn;

enum pg_conn_state {
	PG_CONN_DOWN,	    /* no session; a reconnect is scheduled */
	PG_CONN_CONNECTING, /* PQconnectPoll in progress */
	PG_CONN_UP,	    /* session established; queries accepted */
};

struct pg_conn_opts {
	unsigned backoff_min_ms; /* first reconnect delay; 0 = 100 */
	unsigned backoff_max_ms; /* delay cap; 0 = 10000 */
	/* give up a connection attempt, name lookups included; 0 = 10000 */
	unsigned connect_timeout_ms;
	/* Drop the session when work is in flight and nothing has come back
	 * for this long (a peer gone silent behind a partition would
	 * otherwise hold the work until TCP gives up); 0 = 60000. */
	unsigned reply_timeout_ms;
};

/*
 * State changes: PG_CONN_UP when a new session is established (a fresh
 * backend: prepared statements and session settings are gone), PG_CONN_DOWN
 * when a session or a connection attempt fails, with ERR saying why.  By the
 * time DOWN fires, every query in flight on the lost session has had its
 * callback with res == NULL.
 */
typedef void pg_conn_state_cb(
    struct pg_conn *conn, void *arg, enum pg_conn_state state, const char *err);

/*
 * Completion of one queued item.  ERR == NULL means success; otherwise ERR
 * is a one-line message and RES, when the server answered, is its error
 * result (PQresultErrorField(res, PG_DIAG_SQLSTATE) classifies it); RES is
 * NULL when the session was lost first.
 *  - a query (pg_conn_query/_prepared, pg_conn_prepare): RES is its result;
 *    after an earlier error in the same pipeline segment it is
 *    PGRES_PIPELINE_ABORTED.
 *  - a sync (pg_conn_sync): everything queued since the previous sync has
 *    finished; RES is the segment's first error result or NULL.  Everything
 *    in a segment ran in one transaction, committed at the sync when ERR is
 *    NULL and rolled back otherwise (unless it used BEGIN/COMMIT itself).
 *  - a simple query (pg_conn_simple): RES is its first error result, else
 *    its last result.
 * RES is borrowed for the call.
 */
typedef void pg_conn_result_cb(
    struct pg_conn *conn, void *arg, const PGresult *res, const char *err);

/*
 * Start connecting to CONNINFO (libpq keywords or URI; checked here, so a
 * syntax error fails now with ERR).  OPTS may be NULL for the defaults.
 * STATE_CB (may be NULL) and ARG are kept for the life of the connection.
 * The first attempt starts at once; nothing fires before pg_conn_new returns.
 */
struct pg_conn *pg_conn_new(struct event_base *base, const char *conninfo,
    const struct pg_conn_opts *opts, pg_conn_state_cb *state_cb, void *arg, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/*
 * Close the session and free everything.  Queries in flight are dropped
 * without their callbacks.  Safe from inside any pg_conn callback (the
 * memory goes when the callback returns; no further callback fires).
 * NULL-safe.
 */
void pg_conn_free(struct pg_conn *conn);

/* Current state; ERR gets the last failure ("" if none since UP). */
enum pg_conn_state pg_conn_state(const struct pg_conn *conn, char *err, size_t errlen);

/*
 * Queue one statement with text parameters (VALUES may be NULL when
 * NPARAMS is 0; parameter types are inferred by the server) in pipeline mode.
 * libpq copies SQL and VALUES before this returns.  CB may be NULL; a
 * failure is still reported to the segment's sync.  0, or -1 with ERR
 * (not UP, a simple query still running, or the send failed, in which case
 * the session is being reset: the owner should drop the half-queued
 * segment and resend after the next UP).
 */
int pg_conn_query(struct pg_conn *conn, const char *sql, int nparams, const char *const *values,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Same for a statement prepared on this session (PQsendQueryPrepared). */
int pg_conn_query_prepared(struct pg_conn *conn, const char *name, int nparams,
    const char *const *values, pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Queue PQsendPrepare of SQL as NAME on this session (it is lost with it). */
int pg_conn_prepare(struct pg_conn *conn, const char *name, const char *sql, int nparams,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Queue a pipeline sync ending the current segment; CB (not NULL) reports
 * the segment's outcome as described above. */
int pg_conn_sync(struct pg_conn *conn, pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Run SQL, which may hold several statements (a schema file), with the
 * simple query protocol.  Only when nothing else is in flight
 * (pg_conn_idle); pipeline mode is left for it and re-entered by the next
 * pipelined query.  CB (not NULL) fires once.  0 or -1 with ERR.
 */
int pg_conn_simple(struct pg_conn *conn, const char *sql, pg_conn_result_cb *cb, void *arg,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Run SQL with the simple query protocol, like pg_conn_simple, where one
 * statement is COPY ... FROM STDIN: when the server asks for the COPY's
 * input, LEN bytes of DATA go as its whole input (libpq cannot COPY in
 * pipeline mode, hence the simple protocol).  The statements of SQL run as
 * one implicit transaction.  DATA is borrowed until CB fires or the
 * connection is freed.  CB (not NULL) fires once, like a simple query's
 * (RES: the first error result, else the last result).  Only when nothing
 * else is in flight.  0 or -1 with ERR.
 */
int pg_conn_copy(struct pg_conn *conn, const char *sql, const void *data, size_t len,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen) __attribute__((warn_unused_result));

/* True when UP and no item awaits its result. */
bool pg_conn_idle(const struct pg_conn *conn);

/*
 * Drop the session and reconnect after the backoff delay (the owner saw
 * something that a new session may cure: a protocol surprise, a read-only
 * server after failover, a schema that vanished).  WHY becomes the last
 * error.  The teardown happens from the loop: in-flight callbacks (res ==
 * NULL) and the DOWN state callback fire after this returns.  Queries are
 * refused from now on until the next UP.
 */
void pg_conn_reset(struct pg_conn *conn, const char *why);

#endif
