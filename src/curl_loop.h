/* curl_loop.h: libcurl multi transfers driven by the libevent loop. */
#ifndef COLLECTORD_CURL_LOOP_H
#define COLLECTORD_CURL_LOOP_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <event2/event.h>

/* Responses larger than this fail with CURLE_WRITE_ERROR. */
#define CURL_LOOP_MAX_BODY (4 * 1024 * 1024)
/* Every transfer gives up connecting after this long. */
#define CURL_LOOP_CONNECT_TIMEOUT_MS 2000L

struct curl_loop;

/*
 * Result of one transfer.  RC is libcurl's code (CURLE_OK when an HTTP
 * response arrived, whatever its status); HTTP_STATUS is 0 when none did.
 * BODY is the response body, NUL-terminated (BODY_LEN excludes the NUL),
 * never NULL; ERRBUF is libcurl's message ("" on success).  All three are
 * borrowed for the call only.  The transfer's easy handle and headers are
 * already gone when this runs, and the callback may free the curl_loop.
 */
typedef void (*curl_loop_done_cb)(void *arg, CURLcode rc, long http_status, const char *body,
    size_t body_len, const char *errbuf);

/* Connections per host before curl_loop_set_max_connections(). */
#define CURL_LOOP_DEFAULT_MAX_CONNECTIONS 16L
/* Connections beyond the per-host cap that the whole loop may hold, so a
 * busy host (S3) leaves room for another (the schema registry). */
#define CURL_LOOP_SPARE_CONNECTIONS 4L

/* A loop on BASE, which must outlive it.  NULL on allocation failure. */
struct curl_loop *curl_loop_new(struct event_base *base) __attribute__((warn_unused_result));

/*
 * At most PER_HOST (>= 1) connections to one host, and PER_HOST +
 * CURL_LOOP_SPARE_CONNECTIONS in all (CURLMOPT_MAX_HOST_CONNECTIONS,
 * CURLMOPT_MAX_TOTAL_CONNECTIONS); as many are kept open between transfers
 * and reused (CURLMOPT_MAXCONNECTS: the connection cache belongs to the
 * multi handle, so a transfer's fresh easy handle takes over an idle
 * connection).  A transfer started while the cap is reached waits in
 * libcurl's queue for a free connection instead of failing; its
 * TIMEOUT_MS counts from curl_loop_start(), queueing included (its connect
 * timeout only from when it gets its turn).  Call it before the first
 * transfer; curl_loop_new() applies CURL_LOOP_DEFAULT_MAX_CONNECTIONS.
 */
void curl_loop_set_max_connections(struct curl_loop *loop, long per_host);

/*
 * Abort every transfer still in flight WITHOUT calling its callback: free
 * the clients that own transfers (s3, registry) first, they cancel their
 * own.  NULL-safe.  Safe to call from inside a done callback.
 */
void curl_loop_free(struct curl_loop *loop);

/*
 * A new easy handle with the loop's defaults: connect timeout 2 s, total
 * timeout TIMEOUT_MS (0: 30 s), no signals.  The caller sets the URL,
 * method, body and credentials, then hands it to curl_loop_start().  It
 * must not set WRITEFUNCTION, WRITEDATA, PRIVATE, ERRORBUFFER or
 * HTTPHEADER: curl_loop_start() owns those.  NULL on failure.
 */
CURL *curl_loop_easy_new(long timeout_ms) __attribute__((warn_unused_result));

/*
 * Start EASY.  Ownership of EASY and HEADERS_OWNED (may be NULL) passes to
 * the loop in every case, success or not.  On 0, CB fires exactly once,
 * later, from the event loop (never from inside this call), unless the
 * transfer is cancelled first.  On -1 nothing was started, everything was
 * freed and CB never fires.
 */
int curl_loop_start(struct curl_loop *loop, CURL *easy, struct curl_slist *headers_owned,
    curl_loop_done_cb cb, void *arg) __attribute__((warn_unused_result));

/*
 * Abort every in-flight transfer started with exactly (CB, ARG); their
 * callbacks never fire.  Owners call this when they free the object ARG
 * points to.  Returns how many were aborted.
 */
size_t curl_loop_cancel(struct curl_loop *loop, curl_loop_done_cb cb, void *arg);

/* The event base LOOP runs on, for clients that need their own events. */
struct event_base *curl_loop_base(const struct curl_loop *loop);

/* Transfers started and not yet completed or cancelled. */
size_t curl_loop_pending(const struct curl_loop *loop);

#endif
