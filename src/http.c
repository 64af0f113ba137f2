/* http.c: evhttp routing and the small operational endpoints. */
#include "http.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect.h"
#include "config.h"
#include "health.h"
#include "log.h"
#include "metrics.h"

struct http {
	struct evhttp *evh;
	struct evhttp_bound_socket *sock;
	int port;
};

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *ctype, const char *body,
    size_t len)
{
	struct evbuffer *out = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	if (out != NULL)
		evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

static void
reply_str(
    struct evhttp_request *req, int code, const char *reason, const char *ctype, const char *body)
{
	reply(req, code, reason, ctype, body, strlen(body));
}

static bool
is_get(struct evhttp_request *req)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);

	if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
	reply_str(req, 405, "Method Not Allowed", "application/json",
	    "{\"error\":\"method_not_allowed\",\"message\":\"use GET\"}\n");
	return false;
}

static void
on_healthz(struct evhttp_request *req, void *arg)
{
	(void)arg;
	if (is_get(req))
		reply_str(req, 200, "OK", "application/json", "{\"status\":\"alive\"}\n");
}

static void
on_readyz(struct evhttp_request *req, void *arg)
{
	char *text;
	bool ready;

	(void)arg;
	if (!is_get(req))
		return;
	ready = health_ready();
	if ((text = health_json()) == NULL) {
		reply_str(req, 500, "Internal Server Error", "text/plain", "out of memory\n");
		return;
	}
	reply(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", "application/json",
	    text, strlen(text));
	free(text);
}

static void
on_metrics(struct evhttp_request *req, void *arg)
{
	size_t len;
	char *text;

	(void)arg;
	if (!is_get(req))
		return;
	if ((text = metrics_render(&len)) == NULL) {
		reply_str(req, 500, "Internal Server Error", "text/plain", "out of memory\n");
		return;
	}
	reply(req, 200, "OK", "text/plain; version=0.0.4", text, len);
	free(text);
}

static void
on_other(struct evhttp_request *req, void *arg)
{
	char body[512], q[256];
	const char *uri = evhttp_request_get_uri(req);
	int n;

	(void)arg;
	n = snprintf(body, sizeof(body),
	    "{\"error\":\"not_found\",\"message\":\"no such path: use POST /collect, "
	    "GET /healthz, /readyz or /metrics\"}\n");
	log_debug("no such path", "uri=%s", log_quote(uri, q, sizeof(q)));
	reply(req, 404, "Not Found", "application/json", body, (size_t)n);
}

struct http *
http_new(struct event_base *base, const struct config *cfg, struct collect *collect, char *err,
    size_t errlen)
{
	struct http *h = calloc(1, sizeof(*h));
	evutil_socket_t fd;
	struct sockaddr_storage ss;
	ev_socklen_t sl = sizeof(ss);

	if (h == NULL || (h->evh = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(h);
		return NULL;
	}
	/* evhttp answers 413 itself past this size, before we see the body. */
	evhttp_set_max_body_size(h->evh, (ev_ssize_t)cfg->max_body_bytes);
	evhttp_set_max_headers_size(h->evh, 64 * 1024);
	evhttp_set_timeout(h->evh, 60);
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
					       EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
					       EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_cb(h->evh, "/healthz", on_healthz, NULL);
	evhttp_set_cb(h->evh, "/readyz", on_readyz, NULL);
	evhttp_set_cb(h->evh, "/metrics", on_metrics, NULL);
	if (collect != NULL)
		evhttp_set_cb(h->evh, "/collect", collect_handle, collect);
	evhttp_set_gencb(h->evh, on_other, NULL);
	h->sock =
	    evhttp_bind_socket_with_handle(h->evh, cfg->listen_addr, (ev_uint16_t)cfg->listen_port);
	if (h->sock == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%lld", cfg->listen_addr,
		    (long long)cfg->listen_port);
		http_free(h);
		return NULL;
	}
	fd = evhttp_bound_socket_get_fd(h->sock);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return h;
}

int
http_port(const struct http *h)
{
	return h->port;
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	if (h->evh != NULL)
		evhttp_free(h->evh);
	free(h);
}
