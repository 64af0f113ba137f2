/* http.c: the routes of collectord's HTTP server and the small operational
 * endpoints.  The server itself (connections, limits) is httpd.c. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect.h"
#include "config.h"
#include "family.h"
#include "health.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"

/* One listening port: the main one, or a family's own, where POST
 * /collect means that family. */
struct listener {
	struct http *h;
	struct httpd *srv;
	const struct family *family;
};

struct http {
	struct collect *collect;
	struct listener main;
	struct listener *own; /* the families' own ports */
	size_t nown;
};

static void
reply_str(struct httpd_req *r, int code, const char *ctype, const char *body)
{
	httpd_reply(r, code, ctype, body, strlen(body));
}

static void
on_healthz(struct listener *l, struct httpd_req *r)
{
	(void)l;
	reply_str(r, 200, "application/json", "{\"status\":\"alive\"}\n");
}

static void
on_readyz(struct listener *l, struct httpd_req *r)
{
	char *text;
	bool ready;

	(void)l;
	ready = health_ready();
	if ((text = health_json()) == NULL) {
		reply_str(r, 500, "text/plain", "out of memory\n");
		return;
	}
	httpd_reply(r, ready ? 200 : 503, "application/json", text, strlen(text));
	free(text);
}

static void
on_metrics(struct listener *l, struct httpd_req *r)
{
	size_t len;
	char *text;

	(void)l;
	if ((text = metrics_render(&len)) == NULL) {
		reply_str(r, 500, "text/plain", "out of memory\n");
		return;
	}
	httpd_reply(r, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}

/* POST /collect (the listener's family) and /collect/<family>. */
static void
on_collect(struct listener *l, struct httpd_req *r)
{
	struct http *h = l->h;
	const char *path = httpd_req_path(r);
	const struct family *f = path[8] == '\0'   ? l->family
				 : path[9] != '\0' ? family_find(path + 9)
						   : NULL;

	if (h->collect == NULL) {
		httpd_reply_error(
		    r, 404, "not_found", "this process does not run the collect role", NULL, 0);
		return;
	}
	if (f == NULL) {
		httpd_reply_error(r, 404, "not_found", "no such event family", NULL, 0);
		return;
	}
	collect_head(r, h->collect, f);
}

static const struct route {
	const char *path; /* ending in '/': a prefix */
	unsigned methods;
	const char *allow;
	void (*fn)(struct listener *l, struct httpd_req *r);
} routes[] = {
    {"/collect", HTTP_POST, "POST", on_collect},
    {"/collect/", HTTP_POST, "POST", on_collect},
    {"/healthz", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_healthz},
    {"/readyz", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_readyz},
    {"/metrics", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_metrics},
};

/* Every request's head comes here first. */
static void
on_head(struct httpd_req *r, void *arg)
{
	struct listener *l = arg;
	const char *path = httpd_req_path(r);
	char q[256], body[160];

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *rt = &routes[i];

		size_t n = strlen(rt->path);

		if (rt->path[n - 1] == '/' ? strncmp(path, rt->path, n) != 0
					   : strcmp(path, rt->path) != 0)
			continue;
		if ((httpd_req_method(r) & rt->methods) == 0) {
			snprintf(body, sizeof(body), "use %s", rt->allow);
			httpd_req_add_header(r, "Allow", rt->allow);
			httpd_reply_error(r, 405, "method_not_allowed", body, NULL, 0);
			return;
		}
		rt->fn(l, r);
		return;
	}
	log_debug("no such path", "path=%s", log_quote(path, q, sizeof(q)));
	httpd_reply_error(r, 404, "not_found",
	    "no such path: use POST /collect, GET /healthz, /readyz or /metrics", NULL, 0);
}

struct http *
http_new(struct event_base *base, const struct config *cfg, struct collect *collect, char *err,
    size_t errlen)
{
	struct http *h = calloc(1, sizeof(*h));
	const struct config_family *fc;
	size_t n = 0;
	struct httpd_config hc = {
	    .addr = cfg->listen_addr,
	    .port = (int)cfg->listen_port,
	    .max_clients = (size_t)cfg->max_clients,
	    .max_head_bytes = 64 * 1024,
	    .max_body_bytes = (size_t)cfg->max_body_bytes,
	    .max_body_memory = (size_t)cfg->max_body_memory,
	    .read_timeout_ms = (long)cfg->read_timeout_ms,
	    .idle_timeout_ms = (long)cfg->idle_timeout_ms,
	    .name = "main",
	    .reuseport = cfg->so_reuseport,
	};

	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->collect = collect;
	h->main = (struct listener){.h = h, .family = family_default(cfg)};
	if ((h->main.srv = httpd_new(base, &hc, on_head, &h->main, err, errlen)) == NULL) {
		free(h);
		return NULL;
	}
	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++)
		n += fc->port != 0;
	if (n > 0 && (h->own = calloc(n, sizeof(*h->own))) == NULL) {
		snprintf(err, errlen, "out of memory");
		http_free(h);
		return NULL;
	}
	/* A family's own port (seed 002's API port): the same server, its own
	 * connections and limits, POST /collect meaning this family. */
	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++) {
		struct listener *l = &h->own[h->nown];

		if (fc->port == 0)
			continue;
		hc.port = (int)fc->port;
		hc.name = fc->name;
		*l = (struct listener){.h = h, .family = fc->family};
		if ((l->srv = httpd_new(base, &hc, on_head, l, err, errlen)) == NULL) {
			http_free(h);
			return NULL;
		}
		h->nown++;
	}
	return h;
}

int
http_port(const struct http *h)
{
	return httpd_port(h->main.srv);
}

void
http_stop_accepting(struct http *h)
{
	httpd_stop_accepting(h->main.srv);
	for (size_t i = 0; i < h->nown; i++)
		httpd_stop_accepting(h->own[i].srv);
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->nown; i++)
		httpd_free(h->own[i].srv);
	free(h->own);
	httpd_free(h->main.srv);
	free(h);
}
