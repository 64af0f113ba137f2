/*
 * curl_loop.c: libcurl's multi interface on the libevent loop.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to wake it (CURLMOPT_TIMERFUNCTION); libevent tells libcurl when a socket
 * is ready or the timer expired (curl_multi_socket_action).  Finished
 * transfers are collected with curl_multi_info_read and handed to their
 * owners only after the easy handle is out of the multi and freed, so an
 * owner may do anything in its callback, including freeing this loop.
 */
#include "curl_loop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "log.h"

struct curl_xfer {
	struct curl_loop *loop;
	CURL *easy;
	struct curl_slist *headers;
	curl_loop_done_cb cb;
	void *arg;
	char *body;
	size_t len, cap;
	bool overflow;
	char errbuf[CURL_ERROR_SIZE];
	LIST_ENTRY(curl_xfer) link;
};

/* One socket libcurl asked us to watch. */
struct curl_sock {
	struct curl_loop *loop;
	curl_socket_t fd;
	struct event *ev;
	LIST_ENTRY(curl_sock) link;
};

struct curl_loop {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	LIST_HEAD(, curl_xfer) xfers;
	size_t nxfers;
	LIST_HEAD(, curl_sock) socks;
	/* >0 while completions are being handed out; curl_loop_free() then
	 * only marks the loop dying and the dispatcher frees it. */
	int dispatching;
	bool dying;
};

static void
xfer_link(struct curl_loop *loop, struct curl_xfer *x)
{
	LIST_INSERT_HEAD(&loop->xfers, x, link);
	loop->nxfers++;
}

static void
xfer_unlink(struct curl_loop *loop, struct curl_xfer *x)
{
	LIST_REMOVE(x, link);
	loop->nxfers--;
}

/* Take X out of the multi and free its curl resources; X itself stays. */
static void
xfer_release_easy(struct curl_loop *loop, struct curl_xfer *x)
{
	curl_multi_remove_handle(loop->multi, x->easy);
	curl_easy_cleanup(x->easy);
	x->easy = NULL;
	curl_slist_free_all(x->headers);
	x->headers = NULL;
}

static void
xfer_abort(struct curl_loop *loop, struct curl_xfer *x)
{
	xfer_unlink(loop, x);
	xfer_release_easy(loop, x);
	free(x->body);
	free(x);
}

static size_t
xfer_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct curl_xfer *x = userp;
	size_t n = size * nmemb;

	if (n > CURL_LOOP_MAX_BODY - x->len) {
		x->overflow = true;
		return 0; /* libcurl aborts with CURLE_WRITE_ERROR */
	}
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 1024;
		char *p;

		while (cap < x->len + n + 1)
			cap *= 2;
		if ((p = realloc(x->body, cap)) == NULL)
			return 0;
		x->body = p;
		x->cap = cap;
	}
	memcpy(x->body + x->len, data, n);
	x->len += n;
	x->body[x->len] = '\0';
	return n;
}

static void
loop_destroy(struct curl_loop *loop)
{
	loop->dying = true;
	while (!LIST_EMPTY(&loop->xfers))
		xfer_abort(loop, LIST_FIRST(&loop->xfers));
	/* May still call back sock_cb (REMOVE) and timer_cb: both need the
	 * loop and its timer, so those go last. */
	curl_multi_cleanup(loop->multi);
	while (!LIST_EMPTY(&loop->socks)) {
		struct curl_sock *cs = LIST_FIRST(&loop->socks);

		LIST_REMOVE(cs, link);
		event_free(cs->ev);
		free(cs);
	}
	event_free(loop->timer);
	free(loop);
	curl_global_cleanup();
}

/* Hand every finished transfer to its owner. */
static void
loop_dispatch(struct curl_loop *loop)
{
	CURLMsg *msg;
	int left;

	loop->dispatching++;
	while (!loop->dying && (msg = curl_multi_info_read(loop->multi, &left)) != NULL) {
		struct curl_xfer *x = NULL;
		CURLcode rc;
		long status = 0;
		char *p;

		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
		x = (struct curl_xfer *)p;
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
		/* MSG is invalid from here on. */
		xfer_unlink(loop, x);
		xfer_release_easy(loop, x);
		if (x->overflow)
			snprintf(x->errbuf, sizeof(x->errbuf), "response body over %d bytes",
			    CURL_LOOP_MAX_BODY);
		else if (rc != CURLE_OK && x->errbuf[0] == '\0')
			snprintf(x->errbuf, sizeof(x->errbuf), "%s", curl_easy_strerror(rc));
		/* X belongs to nobody now: the callback may free the loop. */
		x->cb(x->arg, rc, status, x->body != NULL ? x->body : "", x->len, x->errbuf);
		free(x->body);
		free(x);
	}
	loop->dispatching--;
	if (loop->dying && loop->dispatching == 0)
		loop_destroy(loop);
}

static void
sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct curl_loop *loop = arg;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	/* May free this very event (CURL_POLL_REMOVE): libevent allows it. */
	curl_multi_socket_action(loop->multi, fd, flags, &running);
	loop_dispatch(loop);
}

static void
timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct curl_loop *loop = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	loop_dispatch(loop);
}

/* CURLMOPT_SOCKETFUNCTION: watch S for WHAT, or stop watching it. */
static int
sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curl_loop *loop = userp;
	struct curl_sock *cs = socketp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (cs != NULL) {
			LIST_REMOVE(cs, link);
			event_free(cs->ev);
			free(cs);
			if (!loop->dying)
				curl_multi_assign(loop->multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (cs == NULL) {
		if ((cs = calloc(1, sizeof(*cs))) == NULL)
			return -1;
		cs->loop = loop;
		cs->fd = s;
		cs->ev = event_new(loop->base, s, kind, sock_event, loop);
		if (cs->ev == NULL) {
			free(cs);
			return -1;
		}
		LIST_INSERT_HEAD(&loop->socks, cs, link);
		curl_multi_assign(loop->multi, s, cs);
	} else {
		event_del(cs->ev);
		event_assign(cs->ev, loop->base, s, kind, sock_event, loop);
	}
	if (event_add(cs->ev, NULL) == -1)
		return -1;
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: wake libcurl in TIMEOUT_MS (-1: never).  Never
 * calls back into libcurl from here, as its documentation asks. */
static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curl_loop *loop = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(loop->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(loop->timer, &tv) == 0 ? 0 : -1;
}

struct curl_loop *
curl_loop_new(struct event_base *base)
{
	struct curl_loop *loop;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	if ((loop = calloc(1, sizeof(*loop))) == NULL)
		goto fail;
	loop->base = base;
	if ((loop->multi = curl_multi_init()) == NULL)
		goto fail;
	if ((loop->timer = evtimer_new(base, timer_event, loop)) == NULL)
		goto fail;
	curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
	curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
	curl_loop_set_max_connections(loop, CURL_LOOP_DEFAULT_MAX_CONNECTIONS);
	return loop;
fail:
	if (loop != NULL) {
		if (loop->multi != NULL)
			curl_multi_cleanup(loop->multi);
		free(loop);
	}
	curl_global_cleanup();
	return NULL;
}

void
curl_loop_set_max_connections(struct curl_loop *loop, long per_host)
{
	long total;

	if (per_host < 1)
		per_host = 1;
	total = per_host + CURL_LOOP_SPARE_CONNECTIONS;
	curl_multi_setopt(loop->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
	curl_multi_setopt(loop->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
	/* Idle connections kept for reuse: as many as may be open at once, so
	 * a burst does not close what the next burst would reopen. */
	curl_multi_setopt(loop->multi, CURLMOPT_MAXCONNECTS, total);
}

void
curl_loop_free(struct curl_loop *loop)
{
	if (loop == NULL || loop->dying)
		return;
	if (loop->nxfers > 0)
		log_warn("curl transfers aborted at shutdown", "count=%zu", loop->nxfers);
	if (loop->dispatching > 0) {
		/* Inside a done callback: abort now, free when it returns. */
		loop->dying = true;
		while (!LIST_EMPTY(&loop->xfers))
			xfer_abort(loop, LIST_FIRST(&loop->xfers));
		return;
	}
	loop_destroy(loop);
}

CURL *
curl_loop_easy_new(long timeout_ms)
{
	CURL *easy;

	if ((easy = curl_easy_init()) == NULL)
		return NULL;
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, CURL_LOOP_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 30000L);
	/* Connections idle in the multi's cache between transfers: notice a
	 * peer that went away without a word. */
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	return easy;
}

int
curl_loop_start(struct curl_loop *loop, CURL *easy, struct curl_slist *headers_owned,
    curl_loop_done_cb cb, void *arg)
{
	struct curl_xfer *x;

	if (loop->dying || (x = calloc(1, sizeof(*x))) == NULL) {
		curl_easy_cleanup(easy);
		curl_slist_free_all(headers_owned);
		return -1;
	}
	x->loop = loop;
	x->easy = easy;
	x->headers = headers_owned; /* freed after the easy handle */
	x->cb = cb;
	x->arg = arg;
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, xfer_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf);
	if (headers_owned != NULL)
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers_owned);
	/* Only arms the timer: the transfer starts from the loop. */
	if (curl_multi_add_handle(loop->multi, easy) != CURLM_OK) {
		curl_easy_cleanup(easy);
		curl_slist_free_all(headers_owned);
		free(x);
		return -1;
	}
	xfer_link(loop, x);
	return 0;
}

size_t
curl_loop_cancel(struct curl_loop *loop, curl_loop_done_cb cb, void *arg)
{
	struct curl_xfer *x, *next;
	size_t n = 0;

	if (loop == NULL)
		return 0;
	for (x = LIST_FIRST(&loop->xfers); x != NULL; x = next) {
		next = LIST_NEXT(x, link);
		if (x->cb == cb && x->arg == arg) {
			xfer_abort(loop, x);
			n++;
		}
	}
	return n;
}

size_t
curl_loop_pending(const struct curl_loop *loop)
{
	return loop != NULL ? loop->nxfers : 0;
}

struct event_base *
curl_loop_base(const struct curl_loop *loop)
{
	return loop->base;
}
