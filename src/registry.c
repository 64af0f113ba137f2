/*
 * registry.c: Confluent Schema Registry client on curl_loop.
 *
 * Only documented Confluent endpoints and error codes are used, so the same
 * code works against Confluent's registry and Apicurio's ccompat API.
 * Every decision about a response is a pure registry_judge_*() function;
 * the glue below only moves bytes, keeps the id cache and hands out
 * results.  Results are queued and delivered from one place (reg_drain),
 * which notices when a callback frees the registry and stops there.
 */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>

#include "clock.h"
#include "curl_loop.h"
#include "log.h"
#include "redact.h"

#define REGISTRY_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
/* Distinct (id, subject, type) answers kept at most. */
#define REGISTRY_CACHE_MAX 1024

enum reg_kind { REQ_REGISTER, REQ_CHECK, REQ_PING, REQ_FIND };
enum reg_step { STEP_SCHEMA, STEP_VERSIONS, STEP_LOOKUP };

struct reg_waiter {
	registry_check_cb cb;
	void *arg;
};

/* One HTTP exchange (or, for a check, a chain of them) in flight. */
struct reg_req {
	struct registry *reg;
	enum reg_kind kind;
	registry_id_cb id_cb;
	registry_ping_cb ping_cb;
	void *arg;
	/* REQ_CHECK */
	enum reg_step step;
	int32_t id;
	char *subject, *type, *schema;
	struct reg_waiter *waiters;
	size_t nwaiters, capwaiters;
	LIST_ENTRY(reg_req) link;
};

/* A result waiting to be handed to its callback. */
struct reg_ready {
	enum reg_kind kind;
	registry_id_cb id_cb;
	registry_check_cb check_cb;
	registry_ping_cb ping_cb;
	void *arg;
	enum registry_result res;
	int32_t id;
	char *err;
	struct reg_ready *next;
};

struct reg_entry {
	int32_t id;
	char *subject, *type;
	enum registry_result res;
	char *err;	    /* why not OK */
	int64_t expires_ms; /* 0: never */
};

struct registry {
	struct curl_loop *loop;
	char *base, *user, *password;
	long timeout_ms;
	/* Learnt once: GET /schemas/ids/{id}/versions is not implemented. */
	bool no_versions_endpoint;
	LIST_HEAD(, reg_req) reqs;
	struct reg_ready *ready, *ready_tail;
	struct event *drain_ev;
	int draining;
	bool dying;
	struct reg_entry *cache;
	size_t ncache;
};

/* ---------------------------------------------------------------- pure */

bool
registry_result_permanent(enum registry_result res)
{
	return res != REGISTRY_OK && res != REGISTRY_UNAVAILABLE;
}

const char *
registry_result_name(enum registry_result res)
{
	switch (res) {
	case REGISTRY_OK:
		return "ok";
	case REGISTRY_UNAVAILABLE:
		return "unavailable";
	case REGISTRY_UNKNOWN_ID:
		return "unknown_id";
	case REGISTRY_WRONG_SUBJECT:
		return "wrong_subject";
	case REGISTRY_WRONG_TYPE:
		return "wrong_type";
	case REGISTRY_REJECTED:
		return "rejected";
	}
	return "?";
}

char *
registry_schema_body(const char *schema_type, const char *schema_text)
{
	cJSON *o;
	char *s = NULL;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	if (cJSON_AddStringToObject(o, "schemaType", schema_type) != NULL &&
	    cJSON_AddStringToObject(o, "schema", schema_text) != NULL)
		s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static cJSON *
parse(const char *body, size_t len)
{
	return body != NULL && len > 0 ? cJSON_ParseWithLength(body, len) : NULL;
}

int
registry_parse_id(const char *body, size_t len, int32_t *id)
{
	cJSON *o = parse(body, len), *v;
	int rc = -1;

	v = cJSON_GetObjectItemCaseSensitive(o, "id");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= INT32_MAX &&
	    v->valuedouble == (double)(int32_t)v->valuedouble) {
		*id = (int32_t)v->valuedouble;
		rc = 0;
	}
	cJSON_Delete(o);
	return rc;
}

bool
registry_parse_error(const char *body, size_t len, int *code, char *msg, size_t msgsize)
{
	cJSON *o = parse(body, len), *c, *m;
	bool found = false;

	c = cJSON_GetObjectItemCaseSensitive(o, "error_code");
	m = cJSON_GetObjectItemCaseSensitive(o, "message");
	if (cJSON_IsNumber(c)) {
		*code = c->valueint;
		if (msg != NULL && msgsize > 0)
			snprintf(msg, msgsize, "%s", cJSON_IsString(m) ? m->valuestring : "");
		found = true;
	}
	cJSON_Delete(o);
	return found;
}

int
registry_parse_schema(const char *body, size_t len, char *type, size_t typesize, char **schema)
{
	cJSON *o = parse(body, len), *s, *t;
	int rc = -1;

	s = cJSON_GetObjectItemCaseSensitive(o, "schema");
	t = cJSON_GetObjectItemCaseSensitive(o, "schemaType");
	if (!cJSON_IsString(s) || (t != NULL && !cJSON_IsString(t)))
		goto out;
	/* Confluent leaves schemaType out for AVRO, its first type. */
	snprintf(type, typesize, "%s", t != NULL ? t->valuestring : "AVRO");
	for (char *p = type; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	if (schema != NULL && (*schema = strdup(s->valuestring)) == NULL)
		goto out;
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}

int
registry_parse_versions(const char *body, size_t len, const char *subject, bool *found)
{
	cJSON *a = parse(body, len), *e;
	int rc = -1;

	if (!cJSON_IsArray(a))
		goto out;
	*found = false;
	cJSON_ArrayForEach(e, a)
	{
		cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "subject");

		if (!cJSON_IsString(s))
			goto out;
		if (strcmp(s->valuestring, subject) == 0)
			*found = true;
	}
	rc = 0;
out:
	cJSON_Delete(a);
	return rc;
}

/* " (registry: MESSAGE, error_code N)" or "" into OUT. */
static void
error_suffix(const char *body, size_t len, char *out, size_t size)
{
	char msg[512];
	int code;

	if (registry_parse_error(body, len, &code, msg, sizeof(msg)))
		snprintf(out, size, " (registry: %s, error_code %d)", msg, code);
	else
		out[0] = '\0';
}

static bool
has_error_code(const char *body, size_t len, int want)
{
	int code;

	return registry_parse_error(body, len, &code, NULL, 0) && code == want;
}

static enum registry_result
unavailable(long status, const char *body, size_t len, const char *what, char *err, size_t errlen)
{
	char suffix[600];

	error_suffix(body, len, suffix, sizeof(suffix));
	snprintf(err, errlen, "%s: registry HTTP %ld%s", what, status, suffix);
	return REGISTRY_UNAVAILABLE;
}

enum registry_result
registry_judge_register(
    long status, const char *body, size_t len, int32_t *id, char *err, size_t errlen)
{
	char suffix[600];

	error_suffix(body, len, suffix, sizeof(suffix));
	if (status >= 200 && status <= 299) {
		if (registry_parse_id(body, len, id) == 0)
			return REGISTRY_OK;
		snprintf(err, errlen, "register: no id in the answer");
		return REGISTRY_UNAVAILABLE;
	}
	if (status == 409) {
		snprintf(err, errlen,
		    "register: incompatible with the "
		    "subject's earlier versions%s",
		    suffix);
		return REGISTRY_REJECTED;
	}
	if (status == 422) {
		snprintf(err, errlen, "register: invalid schema%s", suffix);
		return REGISTRY_REJECTED;
	}
	if (status == 401 || status == 403) {
		snprintf(err, errlen, "register: not authorised (HTTP %ld)%s", status, suffix);
		return REGISTRY_REJECTED;
	}
	if (status >= 400 && status <= 499 && status != 408 && status != 429) {
		snprintf(err, errlen, "register: HTTP %ld%s", status, suffix);
		return REGISTRY_REJECTED;
	}
	return unavailable(status, body, len, "register", err, errlen);
}

enum registry_result
registry_judge_schema(long status, const char *body, size_t len, int32_t id, const char *want_type,
    char **schema, char *err, size_t errlen)
{
	char type[32], suffix[600];

	if (schema != NULL)
		*schema = NULL;
	if (status >= 200 && status <= 299) {
		if (registry_parse_schema(body, len, type, sizeof(type), schema) == -1) {
			snprintf(err, errlen,
			    "schema id %d: unexpected "
			    "answer from the registry",
			    (int)id);
			return REGISTRY_UNAVAILABLE;
		}
		if (strcasecmp(type, want_type) != 0) {
			if (schema != NULL) {
				free(*schema);
				*schema = NULL;
			}
			snprintf(
			    err, errlen, "schema id %d is %s, not %s", (int)id, type, want_type);
			return REGISTRY_WRONG_TYPE;
		}
		return REGISTRY_OK;
	}
	if (status == 404 && has_error_code(body, len, 40403)) {
		error_suffix(body, len, suffix, sizeof(suffix));
		snprintf(err, errlen, "schema id %d unknown to the registry%s", (int)id, suffix);
		return REGISTRY_UNKNOWN_ID;
	}
	/* A bare 404 is more likely a wrong URL than an unknown id. */
	return unavailable(status, body, len, "schema lookup", err, errlen);
}

enum registry_result
registry_judge_versions(long status, const char *body, size_t len, int32_t id, const char *subject,
    bool *unsupported, char *err, size_t errlen)
{
	char suffix[600];
	bool found;

	*unsupported = false;
	if (status >= 200 && status <= 299) {
		if (registry_parse_versions(body, len, subject, &found) == -1) {
			snprintf(err, errlen,
			    "schema id %d: unexpected "
			    "answer from the registry",
			    (int)id);
			return REGISTRY_UNAVAILABLE;
		}
		if (!found) {
			snprintf(err, errlen,
			    "schema id %d is not registered "
			    "under subject %s",
			    (int)id, subject);
			return REGISTRY_WRONG_SUBJECT;
		}
		return REGISTRY_OK;
	}
	if (status == 404 && has_error_code(body, len, 40403)) {
		error_suffix(body, len, suffix, sizeof(suffix));
		snprintf(err, errlen, "schema id %d unknown to the registry%s", (int)id, suffix);
		return REGISTRY_UNKNOWN_ID;
	}
	if (status == 404 || status == 405 || status == 501) {
		*unsupported = true;
		return REGISTRY_UNAVAILABLE;
	}
	return unavailable(status, body, len, "schema versions", err, errlen);
}

enum registry_result
registry_judge_lookup(long status, const char *body, size_t len, int32_t id, const char *subject,
    char *err, size_t errlen)
{
	char suffix[600];
	int32_t got;

	if (status >= 200 && status <= 299) {
		/* The same text under SUBJECT: decodes the same, whatever
		 * id the registry filed it under. */
		if (registry_parse_id(body, len, &got) == 0)
			return REGISTRY_OK;
		snprintf(err, errlen,
		    "schema id %d: unexpected answer from "
		    "the registry",
		    (int)id);
		return REGISTRY_UNAVAILABLE;
	}
	if (status == 404 &&
	    (has_error_code(body, len, 40401) || has_error_code(body, len, 40403))) {
		error_suffix(body, len, suffix, sizeof(suffix));
		snprintf(err, errlen,
		    "schema id %d is not registered under "
		    "subject %s%s",
		    (int)id, subject, suffix);
		return REGISTRY_WRONG_SUBJECT;
	}
	return unavailable(status, body, len, "subject lookup", err, errlen);
}

enum registry_result
registry_judge_find(long status, const char *body, size_t len, const char *subject, int32_t *id,
    char *err, size_t errlen)
{
	char suffix[600];

	if (status >= 200 && status <= 299) {
		if (registry_parse_id(body, len, id) == 0)
			return REGISTRY_OK;
		snprintf(err, errlen, "find: no id in the answer");
		return REGISTRY_UNAVAILABLE;
	}
	if (status == 404 &&
	    (has_error_code(body, len, 40401) || has_error_code(body, len, 40403))) {
		error_suffix(body, len, suffix, sizeof(suffix));
		snprintf(err, errlen, "the schema is not registered under subject %s%s", subject,
		    suffix);
		return REGISTRY_UNKNOWN_ID;
	}
	return unavailable(status, body, len, "find", err, errlen);
}

/* ---------------------------------------------------------------- cache */

static void
cache_drop(struct registry *reg, size_t i)
{
	free(reg->cache[i].subject);
	free(reg->cache[i].type);
	free(reg->cache[i].err);
	reg->cache[i] = reg->cache[--reg->ncache];
}

static struct reg_entry *
cache_find(struct registry *reg, int32_t id, const char *subject, const char *type)
{
	int64_t now = now_ms();

	for (size_t i = 0; i < reg->ncache; i++) {
		struct reg_entry *e = &reg->cache[i];

		if (e->id != id || strcmp(e->subject, subject) != 0 || strcmp(e->type, type) != 0)
			continue;
		if (e->expires_ms != 0 && e->expires_ms <= now) {
			cache_drop(reg, i);
			return NULL;
		}
		return e;
	}
	return NULL;
}

/* Remember RES unless it is transient.  Best effort: a full cache (of
 * live negative answers, say under a flood of garbage ids) stays as is. */
static void
cache_put(struct registry *reg, int32_t id, const char *subject, const char *type,
    enum registry_result res, const char *err)
{
	struct reg_entry *e;
	int64_t now = now_ms();

	if (res == REGISTRY_UNAVAILABLE)
		return;
	if ((e = cache_find(reg, id, subject, type)) == NULL) {
		if (reg->cache == NULL &&
		    (reg->cache = calloc(REGISTRY_CACHE_MAX, sizeof(*reg->cache))) == NULL)
			return;
		for (size_t i = reg->ncache; i-- > 0;)
			if (reg->ncache >= REGISTRY_CACHE_MAX && reg->cache[i].expires_ms != 0 &&
			    reg->cache[i].expires_ms <= now)
				cache_drop(reg, i);
		if (reg->ncache >= REGISTRY_CACHE_MAX)
			return;
		e = &reg->cache[reg->ncache];
		e->err = NULL;
		e->subject = strdup(subject);
		e->type = strdup(type);
		if (e->subject == NULL || e->type == NULL) {
			free(e->subject);
			free(e->type);
			return;
		}
		e->id = id;
		reg->ncache++;
	}
	e->res = res;
	free(e->err);
	e->err = res != REGISTRY_OK && err != NULL ? strdup(err) : NULL;
	e->expires_ms = res == REGISTRY_OK ? 0 : now + REGISTRY_NEGATIVE_TTL_MS;
}

/* ---------------------------------------------------------------- delivery */

static void reg_destroy(struct registry *reg);

static void
ready_free(struct reg_ready *r)
{
	free(r->err);
	free(r);
}

/* Queue a result (a copy of TMPL, with ERR copied unless OK).  On
 * allocation failure the result is lost and logged. */
static void
reg_post(struct registry *reg, const struct reg_ready *tmpl, const char *err)
{
	struct reg_ready *r;

	if ((r = malloc(sizeof(*r))) == NULL) {
		log_error("registry result lost: out of memory", NULL);
		return;
	}
	*r = *tmpl;
	r->next = NULL;
	/* Without memory for the text, the result's name stands in. */
	r->err = tmpl->res != REGISTRY_OK && err != NULL && *err != '\0' ? strdup(err) : NULL;
	if (reg->ready_tail != NULL)
		reg->ready_tail->next = r;
	else
		reg->ready = r;
	reg->ready_tail = r;
}

/* Hand out every queued result.  The last thing its callers do. */
static void
reg_drain(struct registry *reg)
{
	struct reg_ready *r;
	const char *err;

	reg->draining++;
	while (!reg->dying && (r = reg->ready) != NULL) {
		if ((reg->ready = r->next) == NULL)
			reg->ready_tail = NULL;
		err = r->res == REGISTRY_OK ? NULL
		      : r->err != NULL	    ? r->err
					    : registry_result_name(r->res);
		switch (r->kind) {
		case REQ_REGISTER:
		case REQ_FIND:
			r->id_cb(r->arg, r->res, r->id, err);
			break;
		case REQ_CHECK:
			r->check_cb(r->arg, r->res, err);
			break;
		case REQ_PING:
			r->ping_cb(r->arg, r->res == REGISTRY_OK, err);
			break;
		}
		ready_free(r);
	}
	reg->draining--;
	if (reg->dying && reg->draining == 0)
		reg_destroy(reg);
}

static void
drain_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reg_drain(arg);
}

/* ---------------------------------------------------------------- requests */

static void reg_curl_done(
    void *arg, CURLcode rc, long status, const char *body, size_t len, const char *errbuf);

static void
req_free(struct reg_req *req)
{
	if (req == NULL)
		return;
	free(req->subject);
	free(req->type);
	free(req->schema);
	free(req->waiters);
	free(req);
}

/* BASE + A + B (percent-encoded: a subject name) + C. */
static char *
reg_url(const struct registry *reg, const char *a, const char *b, const char *c)
{
	char *esc = NULL, *url;
	size_t n;

	if (b != NULL && (esc = curl_easy_escape(NULL, b, 0)) == NULL)
		return NULL;
	n = strlen(reg->base) + strlen(a) + (esc ? strlen(esc) : 0) + (c ? strlen(c) : 0) + 1;
	if ((url = malloc(n)) != NULL)
		snprintf(url, n, "%s%s%s%s", reg->base, a, esc ? esc : "", c ? c : "");
	curl_free(esc);
	return url;
}

/*
 * Send one request for REQ: GET URL, or POST BODY when not NULL.  REQ is
 * linked on success; on -1 nothing is in flight for it.
 */
static int
reg_send(struct registry *reg, struct reg_req *req, char *url, const char *body)
{
	struct curl_slist *h = NULL, *t;
	CURL *easy;

	if (url == NULL || (easy = curl_loop_easy_new(reg->timeout_ms)) == NULL) {
		free(url);
		return -1;
	}
	curl_easy_setopt(easy, CURLOPT_URL, url);
	free(url); /* libcurl keeps its own copy */
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "collectord");
	if (reg->user != NULL) {
		curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(easy, CURLOPT_USERNAME, reg->user);
		curl_easy_setopt(
		    easy, CURLOPT_PASSWORD, reg->password != NULL ? reg->password : "");
	}
	if ((t = curl_slist_append(h,
		 "Accept: " REGISTRY_CONTENT_TYPE ", application/vnd.schemaregistry+json; q=0.9, "
		 "application/json; q=0.5")) == NULL)
		goto fail;
	h = t;
	if (body != NULL) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		if (curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK)
			goto fail;
		if ((t = curl_slist_append(h, "Content-Type: " REGISTRY_CONTENT_TYPE)) == NULL)
			goto fail;
		h = t;
		if ((t = curl_slist_append(h, "Expect:")) == NULL)
			goto fail;
		h = t;
	}
	/* EASY and H are the loop's from here, whatever it returns. */
	if (curl_loop_start(reg->loop, easy, h, reg_curl_done, req) == -1)
		return -1;
	LIST_INSERT_HEAD(&reg->reqs, req, link);
	return 0;
fail:
	curl_easy_cleanup(easy);
	curl_slist_free_all(h);
	return -1;
}

/* Send the request for REQ's current step. */
static int
check_send(struct registry *reg, struct reg_req *req)
{
	char idpath[48], *body;
	int rc;

	switch (req->step) {
	case STEP_SCHEMA:
		snprintf(idpath, sizeof(idpath), "/schemas/ids/%d", (int)req->id);
		return reg_send(reg, req, reg_url(reg, idpath, NULL, NULL), NULL);
	case STEP_VERSIONS:
		snprintf(idpath, sizeof(idpath), "/schemas/ids/%d/versions", (int)req->id);
		return reg_send(reg, req, reg_url(reg, idpath, NULL, NULL), NULL);
	case STEP_LOOKUP:
		if ((body = registry_schema_body(req->type, req->schema)) == NULL)
			return -1;
		rc = reg_send(reg, req, reg_url(reg, "/subjects/", req->subject, NULL), body);
		cJSON_free(body);
		return rc;
	}
	return -1;
}

/* A check has its answer: cache it, queue it for every waiter. */
static void
check_finish(struct registry *reg, struct reg_req *req, enum registry_result res, const char *err)
{
	cache_put(reg, req->id, req->subject, req->type, res, err);
	for (size_t i = 0; i < req->nwaiters; i++)
		reg_post(reg,
		    &(struct reg_ready){.kind = REQ_CHECK,
			.check_cb = req->waiters[i].cb,
			.arg = req->waiters[i].arg,
			.res = res},
		    err);
	req_free(req);
}

/* The next step of a check after a response to its current one. */
static void
check_step(struct registry *reg, struct reg_req *req, long status, const char *body, size_t len)
{
	enum registry_result res;
	char err[1024];
	bool unsupported;

	err[0] = '\0';
	switch (req->step) {
	case STEP_SCHEMA:
		res = registry_judge_schema(
		    status, body, len, req->id, req->type, &req->schema, err, sizeof(err));
		if (res != REGISTRY_OK)
			break;
		req->step = reg->no_versions_endpoint ? STEP_LOOKUP : STEP_VERSIONS;
		if (check_send(reg, req) == 0)
			return;
		snprintf(err, sizeof(err), "schema id %d: out of memory", (int)req->id);
		res = REGISTRY_UNAVAILABLE;
		break;
	case STEP_VERSIONS:
		res = registry_judge_versions(
		    status, body, len, req->id, req->subject, &unsupported, err, sizeof(err));
		if (!unsupported)
			break;
		log_info("registry lacks GET /schemas/ids/{id}/versions, "
			 "using POST /subjects/{subject}",
		    "status=%ld", status);
		reg->no_versions_endpoint = true;
		req->step = STEP_LOOKUP;
		if (check_send(reg, req) == 0)
			return;
		snprintf(err, sizeof(err), "schema id %d: out of memory", (int)req->id);
		res = REGISTRY_UNAVAILABLE;
		break;
	case STEP_LOOKUP:
	default:
		res = registry_judge_lookup(
		    status, body, len, req->id, req->subject, err, sizeof(err));
		break;
	}
	check_finish(reg, req, res, err);
}

static void
reg_curl_done(void *arg, CURLcode rc, long status, const char *body, size_t len, const char *errbuf)
{
	struct reg_req *req = arg;
	struct registry *reg = req->reg;
	enum registry_result res;
	char err[1024];
	int32_t id = 0;

	LIST_REMOVE(req, link);
	err[0] = '\0';
	if (rc != CURLE_OK) {
		snprintf(err, sizeof(err), "registry unreachable: %s", errbuf);
		status = 0;
	}
	switch (req->kind) {
	case REQ_FIND:
		res = rc != CURLE_OK ? REGISTRY_UNAVAILABLE
				     : registry_judge_find(
					   status, body, len, req->subject, &id, err, sizeof(err));
		reg_post(reg,
		    &(struct reg_ready){.kind = REQ_REGISTER,
			.id_cb = req->id_cb,
			.arg = req->arg,
			.res = res,
			.id = id},
		    err);
		req_free(req);
		break;
	case REQ_REGISTER:
		res = rc != CURLE_OK
			  ? REGISTRY_UNAVAILABLE
			  : registry_judge_register(status, body, len, &id, err, sizeof(err));
		reg_post(reg,
		    &(struct reg_ready){.kind = REQ_REGISTER,
			.id_cb = req->id_cb,
			.arg = req->arg,
			.res = res,
			.id = id},
		    err);
		req_free(req);
		break;
	case REQ_PING:
		res = REGISTRY_OK;
		if (rc == CURLE_OK && (status < 200 || status > 299))
			res = unavailable(status, body, len, "ping", err, sizeof(err));
		else if (rc != CURLE_OK)
			res = REGISTRY_UNAVAILABLE;
		reg_post(reg,
		    &(struct reg_ready){
			.kind = REQ_PING, .ping_cb = req->ping_cb, .arg = req->arg, .res = res},
		    err);
		req_free(req);
		break;
	case REQ_CHECK:
		if (rc != CURLE_OK)
			check_finish(reg, req, REGISTRY_UNAVAILABLE, err);
		else
			check_step(reg, req, status, body, len);
		break;
	}
	reg_drain(reg);
}

/* ---------------------------------------------------------------- public */

static char *
strdup_nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? strdup(s) : NULL;
}

struct registry *
registry_new(struct curl_loop *loop, const char *base_url, const char *user, const char *password,
    char *err, size_t errlen)
{
	struct registry *reg;
	size_t n;

	if (base_url == NULL || strstr(base_url, "://") == NULL) {
		char *shown = base_url != NULL ? redact_url(base_url) : NULL;

		snprintf(err, errlen, "registry: URL with a scheme required, got %s",
		    shown != NULL ? shown : "nothing");
		free(shown);
		return NULL;
	}
	if ((reg = calloc(1, sizeof(*reg))) == NULL)
		goto oom;
	reg->loop = loop;
	reg->timeout_ms = REGISTRY_TIMEOUT_MS;
	if ((reg->base = strdup(base_url)) == NULL)
		goto oom;
	n = strlen(reg->base);
	while (n > 0 && reg->base[n - 1] == '/')
		reg->base[--n] = '\0';
	reg->user = strdup_nonempty(user);
	reg->password = strdup_nonempty(password);
	if ((user != NULL && *user != '\0' && reg->user == NULL) ||
	    (password != NULL && *password != '\0' && reg->password == NULL))
		goto oom;
	reg->drain_ev = event_new(curl_loop_base(loop), -1, 0, drain_event, reg);
	if (reg->drain_ev == NULL)
		goto oom;
	return reg;
oom:
	registry_free(reg);
	snprintf(err, errlen, "registry: out of memory");
	return NULL;
}

static void
reg_destroy(struct registry *reg)
{
	while (reg->ready != NULL) {
		struct reg_ready *r = reg->ready;

		reg->ready = r->next;
		ready_free(r);
	}
	for (size_t i = 0; i < reg->ncache; i++) {
		free(reg->cache[i].subject);
		free(reg->cache[i].type);
		free(reg->cache[i].err);
	}
	free(reg->cache);
	if (reg->drain_ev != NULL)
		event_free(reg->drain_ev);
	free(reg->base);
	free(reg->user);
	if (reg->password != NULL)
		memset(reg->password, 0, strlen(reg->password));
	free(reg->password);
	free(reg);
}

void
registry_free(struct registry *reg)
{
	if (reg == NULL || reg->dying)
		return;
	reg->dying = true;
	while (!LIST_EMPTY(&reg->reqs)) {
		struct reg_req *req = LIST_FIRST(&reg->reqs);

		LIST_REMOVE(req, link);
		curl_loop_cancel(reg->loop, reg_curl_done, req);
		req_free(req);
	}
	/* Inside a callback: reg_drain finishes the job when it returns. */
	if (reg->draining == 0)
		reg_destroy(reg);
}

int
registry_register(struct registry *reg, const char *subject, const char *schema_type,
    const char *schema_text, registry_id_cb cb, void *arg)
{
	struct reg_req *req;
	char *body;

	if (reg->dying || (req = calloc(1, sizeof(*req))) == NULL)
		return -1;
	req->reg = reg;
	req->kind = REQ_REGISTER;
	req->id_cb = cb;
	req->arg = arg;
	if ((body = registry_schema_body(schema_type, schema_text)) == NULL) {
		req_free(req);
		return -1;
	}
	if (reg_send(reg, req, reg_url(reg, "/subjects/", subject, "/versions"), body) == -1) {
		cJSON_free(body);
		req_free(req);
		return -1;
	}
	cJSON_free(body);
	return 0;
}

int
registry_find(struct registry *reg, const char *subject, const char *schema_type,
    const char *schema_text, registry_id_cb cb, void *arg)
{
	struct reg_req *req;
	char *body;

	if (reg->dying || (req = calloc(1, sizeof(*req))) == NULL)
		return -1;
	req->reg = reg;
	req->kind = REQ_FIND;
	req->id_cb = cb;
	req->arg = arg;
	if ((req->subject = strdup(subject)) == NULL ||
	    (body = registry_schema_body(schema_type, schema_text)) == NULL) {
		req_free(req);
		return -1;
	}
	if (reg_send(reg, req, reg_url(reg, "/subjects/", subject, NULL), body) == -1) {
		cJSON_free(body);
		req_free(req);
		return -1;
	}
	cJSON_free(body);
	return 0;
}

bool
registry_check_id_cached(struct registry *reg, int32_t id, const char *subject,
    const char *schema_type, enum registry_result *res)
{
	struct reg_entry *e = cache_find(reg, id, subject, schema_type);

	if (e == NULL)
		return false;
	*res = e->res;
	return true;
}

int
registry_check_id(struct registry *reg, int32_t id, const char *subject, const char *schema_type,
    registry_check_cb cb, void *arg)
{
	struct reg_entry *e;
	struct reg_req *req;

	if (reg->dying)
		return -1;
	if ((e = cache_find(reg, id, subject, schema_type)) != NULL) {
		reg_post(reg,
		    &(struct reg_ready){
			.kind = REQ_CHECK, .check_cb = cb, .arg = arg, .res = e->res},
		    e->err);
		event_active(reg->drain_ev, EV_TIMEOUT, 0);
		return 0;
	}
	/* Join a lookup of the same id already in flight. */
	LIST_FOREACH(req, &reg->reqs, link)
	if (req->kind == REQ_CHECK && req->id == id && strcmp(req->subject, subject) == 0 &&
	    strcmp(req->type, schema_type) == 0)
		break;
	if (req == NULL) {
		if ((req = calloc(1, sizeof(*req))) == NULL)
			return -1;
		req->reg = reg;
		req->kind = REQ_CHECK;
		req->step = STEP_SCHEMA;
		req->id = id;
		req->subject = strdup(subject);
		req->type = strdup(schema_type);
		req->capwaiters = 4;
		req->waiters = malloc(req->capwaiters * sizeof(*req->waiters));
		if (req->subject == NULL || req->type == NULL || req->waiters == NULL ||
		    check_send(reg, req) == -1) {
			req_free(req);
			return -1;
		}
	} else if (req->nwaiters == req->capwaiters) {
		size_t cap = 2 * req->capwaiters;
		struct reg_waiter *w = realloc(req->waiters, cap * sizeof(*w));

		if (w == NULL)
			return -1;
		req->waiters = w;
		req->capwaiters = cap;
	}
	req->waiters[req->nwaiters++] = (struct reg_waiter){cb, arg};
	return 0;
}

int
registry_ping(struct registry *reg, registry_ping_cb cb, void *arg)
{
	struct reg_req *req;

	if (reg->dying || (req = calloc(1, sizeof(*req))) == NULL)
		return -1;
	req->reg = reg;
	req->kind = REQ_PING;
	req->ping_cb = cb;
	req->arg = arg;
	if (reg_send(reg, req, reg_url(reg, "/subjects", NULL, NULL), NULL) == -1) {
		req_free(req);
		return -1;
	}
	return 0;
}
