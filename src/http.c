/* http.c: the routes of collectord's HTTP server and the small endpoints:
 * health, metrics, /stats and the status page, /families, the OpenAPI
 * document.  The server itself (connections, limits) is httpd.c; the
 * read-back API is readback.c. */
#include "http.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "apikeys.h"
#include "collect.h"
#include "config.h"
#include "family.h"
#include "health.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "readback.h"
#include "stats.h"
#include "www.h"

/* One listening port: the main one, or a family's own, where POST
 * /collect means that family. */
struct listener {
	struct http *h;
	struct httpd *srv;
	const struct family *family;
};

struct http {
	const struct config *cfg;
	struct collect *collect;
	struct readback *readback;
	struct apikeys *keys;
	int32_t *schema_ids; /* per served family, in served order; 0: unknown */
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

static void
on_stats(struct listener *l, struct httpd_req *r)
{
	struct timespec mono, real;
	char *text;

	(void)l;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	text = stats_json(
	    (int64_t)mono.tv_sec, (int64_t)real.tv_sec * 1000 + (int64_t)real.tv_nsec / 1000000);
	if (text == NULL) {
		httpd_reply_error(r, 500, "internal", "out of memory", NULL, 0);
		return;
	}
	httpd_req_add_header(r, "Cache-Control", "no-store");
	httpd_reply(r, 200, "application/json", text, strlen(text));
	free(text);
}

/* The status page: one file, everything inline, reading /stats. */
static void
on_status_page(struct listener *l, struct httpd_req *r)
{
	(void)l;
	httpd_req_add_header(r, "Content-Security-Policy",
	    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
	    "connect-src 'self'; img-src 'self' data:");
	reply_str(r, 200, "text/html; charset=utf-8", www_status_html);
}

static void
on_openapi(struct listener *l, struct httpd_req *r)
{
	(void)l;
	reply_str(r, 200, "application/json", www_openapi_json);
}

static cJSON *
route(const char *path, int port)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "method", "POST");
	cJSON_AddStringToObject(o, "path", path);
	cJSON_AddNumberToObject(o, "port", port);
	return o;
}

/* What each served family is reached at and writes where. */
static void
on_families(struct listener *l, struct httpd_req *r)
{
	struct http *h = l->h;
	const struct config_family *fc;
	cJSON *doc = cJSON_CreateObject(), *all = cJSON_AddArrayToObject(doc, "families");
	int port = httpd_port(h->main.srv);
	char *text;

	if (!apikeys_check(h->keys, r)) {
		cJSON_Delete(doc);
		return;
	}
	for (size_t i = 0; (fc = family_served(h->cfg, i)) != NULL; i++) {
		cJSON *o = cJSON_CreateObject(), *routes;
		bool def = strcmp(fc->name, h->cfg->default_family) == 0;
		char path[96];

		cJSON_AddItemToArray(all, o);
		cJSON_AddStringToObject(o, "family", fc->name);
		cJSON_AddBoolToObject(o, "default", def);
		routes = cJSON_AddArrayToObject(o, "routes");
		snprintf(path, sizeof(path), "/collect/%s", fc->name);
		if (def)
			cJSON_AddItemToArray(routes, route("/collect", port));
		cJSON_AddItemToArray(routes, route(path, port));
		for (size_t k = 0; k < h->nown; k++) {
			if (h->own[k].family == fc->family) {
				cJSON_AddItemToArray(
				    routes, route("/collect", httpd_port(h->own[k].srv)));
				cJSON_AddItemToArray(
				    routes, route(path, httpd_port(h->own[k].srv)));
			}
		}
		cJSON_AddStringToObject(o, "rawTopic", fc->raw_topic);
		cJSON_AddStringToObject(o, "invalidTopic", fc->invalid_topic);
		cJSON_AddStringToObject(o, "subject", fc->subject);
		if (h->schema_ids[i] > 0)
			cJSON_AddNumberToObject(o, "schemaId", h->schema_ids[i]);
		else
			cJSON_AddNullToObject(o, "schemaId");
		cJSON_AddStringToObject(o, "table", fc->table);
		if (fc->family->daily != NULL) {
			const struct family_daily *d = fc->family->daily;
			cJSON *dj = cJSON_AddObjectToObject(o, "daily");

			snprintf(path, sizeof(path), "/families/%s/daily", fc->name);
			cJSON_AddStringToObject(dj, "name", d->name);
			cJSON_AddStringToObject(dj, "field", d->field);
			cJSON_AddStringToObject(dj, "window", d->window);
			cJSON_AddStringToObject(dj, "path", path);
		} else {
			cJSON_AddNullToObject(o, "daily");
		}
	}
	if ((text = cJSON_PrintUnformatted(doc)) == NULL) {
		cJSON_Delete(doc);
		httpd_reply_error(r, 500, "internal", "out of memory", NULL, 0);
		return;
	}
	cJSON_Delete(doc);
	httpd_reply(r, 200, "application/json", text, strlen(text));
	cJSON_free(text);
}

/* GET /events/{id}, /requests/{id}, /events, /rejections,
 * /families/{name}/daily. */
static void
on_readback(struct listener *l, struct httpd_req *r)
{
	if (l->h->readback == NULL) {
		httpd_reply_error(
		    r, 404, "not_found", "this process does not run the enrich role", NULL, 0);
		return;
	}
	readback_head(l->h->readback, r);
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
    {"/stats", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_stats},
    {"/", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_status_page},
    {"/openapi.json", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_openapi},
    {"/families", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_families},
    {"/events", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_readback},
    {"/events/", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_readback},
    {"/requests/", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_readback},
    {"/rejections", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_readback},
    {"/families/", HTTP_GET | HTTP_HEAD, "GET, HEAD", on_readback},
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

		if (n > 1 && rt->path[n - 1] == '/' ? strncmp(path, rt->path, n) != 0
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
	httpd_reply_error(r, 404, "not_found", "no such path: see GET /openapi.json", NULL, 0);
}

struct http *
http_new(struct event_base *base, const struct config *cfg, struct collect *collect,
    struct readback *readback, char *err, size_t errlen)
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
	h->cfg = cfg;
	h->collect = collect;
	h->readback = readback;
	for (size_t i = 0; family_served(cfg, i) != NULL; i++)
		n++;
	if ((h->keys = apikeys_new(cfg->api_keys)) == NULL ||
	    (h->schema_ids = calloc(n ? n : 1, sizeof(*h->schema_ids))) == NULL) {
		snprintf(err, errlen, "out of memory");
		apikeys_free(h->keys);
		free(h);
		return NULL;
	}
	n = 0;
	h->main = (struct listener){.h = h, .family = family_default(cfg)};
	if ((h->main.srv = httpd_new(base, &hc, on_head, &h->main, err, errlen)) == NULL) {
		apikeys_free(h->keys);
		free(h->schema_ids);
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
	apikeys_free(h->keys);
	free(h->schema_ids);
	free(h);
}

void
http_set_schema_id(struct http *h, const struct family *f, int32_t id)
{
	const struct config_family *fc;

	for (size_t i = 0; (fc = family_served(h->cfg, i)) != NULL; i++)
		if (fc->family == f)
			h->schema_ids[i] = id;
}
