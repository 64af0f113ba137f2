/*
 * t/http_it.c: curl_loop, s3 and registry against a real S3 store (MinIO)
 * and a real Schema Registry.  Reads COLLECTORD_S3_ENDPOINT, _BUCKET,
 * _REGION, _ACCESS_KEY, _SECRET_KEY and COLLECTORD_REGISTRY_URL; skips when
 * they are not set.  Uses the curl command line once, to list the bucket
 * and see the stored key names as S3 itself spells them.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "curl_loop.h"
#include "registry.h"
#include "s3.h"
#include "tap.h"

#define SUBJECT "events.raw-value"

static struct event_base *base;
static struct curl_loop *loop;

/* What one callback reported. */
struct result {
	bool done, in_start, fired_in_start;
	int calls;
	bool ok;
	enum registry_result res;
	int32_t id;
	char err[1024];
	char *body;
	size_t len;
	/* set to free from inside the callback */
	struct registry *free_reg;
	struct s3 *free_s3;
};

static void
note(struct result *r, bool ok, const char *err)
{
	r->done = true;
	r->calls++;
	r->ok = ok;
	if (r->in_start)
		r->fired_in_start = true;
	snprintf(r->err, sizeof(r->err), "%s", err != NULL ? err : "");
}

static void
s3_done(void *arg, bool ok, const char *err)
{
	struct result *r = arg;

	note(r, ok, err);
	if (r->free_s3 != NULL)
		s3_free(r->free_s3);
}

static void
s3_got(void *arg, bool ok, const char *err, const char *body, size_t len)
{
	struct result *r = arg;

	note(r, ok, err);
	if (ok && (r->body = malloc(len + 1)) != NULL) {
		memcpy(r->body, body, len + 1);
		r->len = len;
	}
}

static void
reg_id(void *arg, enum registry_result res, int32_t id, const char *err)
{
	struct result *r = arg;

	note(r, res == REGISTRY_OK, err);
	r->res = res;
	r->id = id;
}

static void
reg_check(void *arg, enum registry_result res, const char *err)
{
	struct result *r = arg;

	note(r, res == REGISTRY_OK, err);
	r->res = res;
	if (r->free_reg != NULL)
		registry_free(r->free_reg);
}

static void
reg_ping(void *arg, bool ok, const char *err)
{
	note(arg, ok, err);
}

/* Run the loop until R's callback fired, or nothing is left that could
 * fire it (libcurl's own timeouts bound every transfer). */
static bool
wait_for(struct result *r)
{
	while (!r->done)
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			break;
	if (!r->done)
		printf("# callback never fired\n");
	if (r->err[0] != '\0')
		printf("# err: %s\n", r->err);
	return r->done;
}

/* A loopback port nobody listens on: bound, then closed. */
static int
closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd != -1 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd != -1)
		close(fd);
	return port;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
		}
	}
	fclose(f);
	return buf;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* PUT BODY as KEY, GET it back and compare. */
static void
put_and_get(struct s3 *s3, const char *key, const char *body, const char *type)
{
	struct result put = {0}, get = {0};

	put.in_start = true;
	if (s3_put(s3, key, body, strlen(body), type, s3_done, &put) == -1) {
		ok(0, "s3_put %s started", key);
		return;
	}
	put.in_start = false;
	ok(wait_for(&put) && put.ok && !put.fired_in_start, "PUT %s", key);
	if (s3_get(s3, key, s3_got, &get) == -1 || !wait_for(&get)) {
		ok(0, "GET %s", key);
		return;
	}
	ok(get.ok && get.body != NULL && get.len == strlen(body) &&
		memcmp(get.body, body, get.len) == 0,
	    "GET %s returns the body", key);
	free(get.body);
}

/* List the bucket's keys that begin with KEY, with the curl command
 * line, and look for KEY spelt literally. */
static bool
listed(const char *endpoint, const char *bucket, const char *region, const char *ak, const char *sk,
    const char *key)
{
	char enc[1536], cmd[4096], line[8192], want[1100];
	bool found = false;
	FILE *p;

	/* The key itself as the prefix: a bucket that holds more than a page
	 * of objects under the key's folder still lists it. */
	if (s3_uri_encode(enc, sizeof(enc), key, false) == -1)
		return false;
	/* Query already in SigV4's canonical form: libcurl signs it as is. */
	snprintf(cmd, sizeof(cmd),
	    "curl -s --aws-sigv4 'aws:amz:%s:s3' "
	    "--user '%s:%s' -H 'x-amz-content-sha256: "
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' "
	    "'%s/%s?list-type=2&prefix=%s'",
	    region, ak, sk, endpoint, bucket, enc);
	snprintf(want, sizeof(want), "<Key>%s</Key>", key);
	if ((p = popen(cmd, "r")) == NULL)
		return false;
	while (fgets(line, sizeof(line), p) != NULL)
		if (strstr(line, want) != NULL)
			found = true;
	pclose(p);
	return found;
}

static void
test_s3(
    const char *endpoint, const char *bucket, const char *region, const char *ak, const char *sk)
{
	struct s3_config cfg = {.endpoint = endpoint,
	    .region = region,
	    .bucket = bucket,
	    .access_key = ak,
	    .secret_key = sk,
	    .path_style = true,
	    .timeout_ms = 20000};
	struct result r = {0}, r2 = {0};
	char err[256], key[512], down[64], corr[64];
	struct s3 *s3, *bad;
	int64_t now = now_ms();

	s3 = s3_new(loop, &cfg, err, sizeof(err));
	if (!ok(s3 != NULL, "s3_new")) {
		printf("# %s\n", err);
		return;
	}
	r.in_start = true;
	if (s3_check(s3, s3_done, &r) == 0) {
		r.in_start = false;
		ok(wait_for(&r) && r.ok, "s3_check OK on the bucket");
		ok(!r.fired_in_start, "callback not fired inside the call");
	} else {
		ok(0, "s3_check started");
	}

	snprintf(corr, sizeof(corr), "018bd0e4-2d00-7000-8000-%012x", (unsigned)getpid());
	if (s3_key_dead_letter(key, sizeof(key), now, corr) == 0) {
		put_and_get(s3, key, "{\"error\":\"test\",\"event\":{}}", "application/json");
		ok(listed(endpoint, bucket, region, ak, sk, key),
		    "dead-letter key stored literally (with '=')");
	}
	if (s3_key_enriched(
		key, sizeof(key), "", now, "it-http.raw", 0, (int64_t)getpid() * 1000) == 0) {
		put_and_get(s3, key, "{\"a\":1}\n{\"a\":2}\n", "application/x-ndjson");
		ok(listed(endpoint, bucket, region, ak, sk, key),
		    "enriched key stored literally (with '=' and '+')");
	}
	/* Empty body and a binary one with a NUL inside. */
	put_and_get(s3, "it/empty", "", NULL);
	{
		static const char bin[] = "a\0b\xff";
		struct result p = {0}, g = {0};

		if (s3_put(s3, "it/bin", bin, sizeof(bin), NULL, s3_done, &p) == 0 &&
		    wait_for(&p) && p.ok && s3_get(s3, "it/bin", s3_got, &g) == 0 && wait_for(&g))
			ok(g.ok && g.len == sizeof(bin) && memcmp(g.body, bin, g.len) == 0,
			    "binary body round trip");
		else
			ok(0, "binary body round trip");
		free(g.body);
	}
	{
		/* Past libcurl's 1 MiB threshold for Expect: 100-continue. */
		size_t big = 3 * 1024 * 1024 / 2;
		char *body = malloc(big + 1);

		if (body != NULL) {
			for (size_t i = 0; i < big; i++)
				body[i] = (char)('a' + i % 26);
			body[big] = '\0';
			put_and_get(s3, "it/big", body, "text/plain");
		}
		free(body);
	}
	{
		/* A response past CURL_LOOP_MAX_BODY fails, named as such. */
		size_t big = CURL_LOOP_MAX_BODY + 1;
		char *body = calloc(1, big);
		struct result p = {0}, g = {0};

		if (body != NULL && s3_put(s3, "it/huge", body, big, NULL, s3_done, &p) == 0 &&
		    wait_for(&p) && p.ok && s3_get(s3, "it/huge", s3_got, &g) == 0 && wait_for(&g))
			ok(!g.ok && strstr(g.err, "response body over") != NULL,
			    "GET past the body cap fails");
		else
			ok(0, "GET past the body cap");
		free(g.body);
		free(body);
	}
	memset(&r, 0, sizeof(r));
	if (s3_get(s3, "it/no-such-object", s3_got, &r) == 0 && wait_for(&r))
		ok(!r.ok && strstr(r.err, "404") && strstr(r.err, "NoSuchKey"),
		    "GET of a missing key names HTTP 404 NoSuchKey");
	else
		ok(0, "GET of a missing key");

	/* Wrong secret. */
	cfg.secret_key = "not-the-secret";
	bad = s3_new(loop, &cfg, err, sizeof(err));
	memset(&r, 0, sizeof(r));
	if (bad != NULL && s3_put(bad, "it/x", "x", 1, "text/plain", s3_done, &r) == 0 &&
	    wait_for(&r))
		ok(!r.ok && strstr(r.err, "SignatureDoesNotMatch") != NULL &&
			strstr(r.err, "403") != NULL,
		    "wrong secret: HTTP 403 SignatureDoesNotMatch");
	else
		ok(0, "wrong secret");
	memset(&r, 0, sizeof(r));
	if (bad != NULL && s3_check(bad, s3_done, &r) == 0 && wait_for(&r))
		ok(!r.ok && strstr(r.err, "403") != NULL, "wrong secret: s3_check fails with 403");
	else
		ok(0, "wrong secret: s3_check");
	s3_free(bad);
	cfg.secret_key = sk;

	/* Missing bucket. */
	cfg.bucket = "collectord-no-such-bucket";
	bad = s3_new(loop, &cfg, err, sizeof(err));
	memset(&r, 0, sizeof(r));
	if (bad != NULL && s3_check(bad, s3_done, &r) == 0 && wait_for(&r))
		ok(!r.ok && strstr(r.err, "404") != NULL,
		    "missing bucket: s3_check fails with 404");
	else
		ok(0, "missing bucket");
	s3_free(bad);
	cfg.bucket = bucket;

	/* Endpoint down. */
	snprintf(down, sizeof(down), "http://127.0.0.1:%d", closed_port());
	cfg.endpoint = down;
	bad = s3_new(loop, &cfg, err, sizeof(err));
	memset(&r, 0, sizeof(r));
	if (bad != NULL && s3_check(bad, s3_done, &r) == 0 && wait_for(&r))
		ok(!r.ok && r.err[0] != '\0', "endpoint down: s3_check fails");
	else
		ok(0, "endpoint down");

	/* Whichever callback comes first frees the s3: the other request is
	 * cancelled and never fires. */
	memset(&r, 0, sizeof(r));
	r.free_s3 = r2.free_s3 = bad;
	if (bad != NULL && s3_check(bad, s3_done, &r) == 0 && s3_check(bad, s3_done, &r2) == 0) {
		while (!r.done && !r2.done && event_base_loop(base, EVLOOP_ONCE) == 0)
			;
		ok(r.calls + r2.calls == 1 && curl_loop_pending(loop) == 0,
		    "freeing the s3 in a callback cancels the rest");
	} else {
		ok(0, "two checks started");
		s3_free(bad);
	}
	s3_free(s3);
	ok(curl_loop_pending(loop) == 0, "no transfer left behind");
}

struct raw {
	int calls;
	struct curl_loop *free_loop;
};

static void
raw_done(void *arg, CURLcode rc, long status, const char *body, size_t len, const char *errbuf)
{
	struct raw *r = arg;

	(void)rc;
	(void)status;
	(void)body;
	(void)len;
	(void)errbuf;
	r->calls++;
	if (r->free_loop != NULL)
		curl_loop_free(r->free_loop);
}

/* curl_loop itself: freed from inside a done callback. */
static void
test_curl_loop(const char *url)
{
	struct curl_loop *l2 = curl_loop_new(base);
	struct raw a = {0}, b = {0};
	int started = 0;

	a.free_loop = b.free_loop = l2;
	for (int i = 0; i < 2 && l2 != NULL; i++) {
		CURL *e = curl_loop_easy_new(5000);

		if (e == NULL)
			break;
		curl_easy_setopt(e, CURLOPT_URL, url);
		if (curl_loop_start(l2, e, NULL, raw_done, i ? &b : &a) == 0)
			started++;
	}
	if (started != 2) {
		ok(0, "curl_loop: two transfers started");
		curl_loop_free(l2);
		return;
	}
	ok(a.calls == 0 && b.calls == 0, "curl_loop: nothing fires on start");
	while (a.calls + b.calls == 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	/* Anything still queued for l2 would fire now if it could. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	ok(a.calls + b.calls == 1, "curl_loop freed in a callback: the other transfer never fires");
}

/* PUT /config/SUBJECT {"compatibility":"BACKWARD"} with the curl command
 * line: the daemon never changes registry configuration. */
static bool
set_backward(const char *url, const char *subject)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
	    "curl -sf -o /dev/null -X PUT -H "
	    "'Content-Type: application/vnd.schemaregistry.v1+json' --data "
	    "'{\"compatibility\":\"BACKWARD\"}' '%s/config/%s'",
	    url, subject);
	return system(cmd) == 0;
}

static bool
check(struct registry *reg, int32_t id, const char *subject, const char *type, struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->in_start = true;
	if (registry_check_id(reg, id, subject, type, reg_check, r) == -1)
		return false;
	r->in_start = false;
	return wait_for(r) && !r->fired_in_start;
}

static void
test_registry(const char *url)
{
	struct result r = {0}, r2 = {0};
	struct registry *reg, *down_reg;
	enum registry_result cached;
	char err[256], down[80], subject[128];
	char *proto, *path;
	const char *top = getenv("top_srcdir");
	int32_t id;
	size_t n;

	reg = registry_new(loop, url, NULL, NULL, err, sizeof(err));
	if (!ok(reg != NULL, "registry_new")) {
		printf("# %s\n", err);
		return;
	}
	if (registry_ping(reg, reg_ping, &r) == 0 && wait_for(&r))
		ok(r.ok, "ping OK");
	else
		ok(0, "ping");

	n = strlen(top != NULL ? top : ".") + 32;
	path = malloc(n);
	snprintf(path, n, "%s/schemas/holded/holded.proto", top != NULL ? top : ".");
	proto = read_file(path);
	free(path);
	if (!ok(proto != NULL, "read schemas/holded/holded.proto")) {
		registry_free(reg);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.in_start = true;
	if (registry_register(reg, SUBJECT, "PROTOBUF", proto, reg_id, &r) == 0) {
		r.in_start = false;
		wait_for(&r);
		ok(r.res == REGISTRY_OK && r.id >= 0 && !r.fired_in_start,
		    "register the proto: id %d", (int)r.id);
	} else {
		ok(0, "register started");
	}
	id = r.id;
	memset(&r, 0, sizeof(r));
	if (registry_register(reg, SUBJECT, "PROTOBUF", proto, reg_id, &r) == 0 && wait_for(&r))
		ok(r.res == REGISTRY_OK && r.id == id, "registering again gives the same id");
	else
		ok(0, "register again");

	ok(!registry_check_id_cached(reg, id, SUBJECT, "PROTOBUF", &cached),
	    "nothing cached before the first check");
	ok(check(reg, id, SUBJECT, "PROTOBUF", &r) && r.res == REGISTRY_OK, "check_id(%d) OK",
	    (int)id);
	ok(registry_check_id_cached(reg, id, SUBJECT, "PROTOBUF", &cached) && cached == REGISTRY_OK,
	    "positive answer cached");
	ok(check(reg, id, SUBJECT, "PROTOBUF", &r) && r.res == REGISTRY_OK,
	    "cached answer still arrives through the loop");
	ok(check(reg, 999999, SUBJECT, "PROTOBUF", &r) && r.res == REGISTRY_UNKNOWN_ID &&
		registry_result_permanent(r.res),
	    "check_id(999999): permanent, unknown id");
	ok(registry_check_id_cached(reg, 999999, SUBJECT, "PROTOBUF", &cached) &&
		cached == REGISTRY_UNKNOWN_ID,
	    "negative answer cached");
	ok(check(reg, id, "collectord-it-other-value", "PROTOBUF", &r) &&
		r.res == REGISTRY_WRONG_SUBJECT,
	    "check_id under another subject: "
	    "wrong subject");
	ok(check(reg, id, SUBJECT, "AVRO", &r) && r.res == REGISTRY_WRONG_TYPE,
	    "check_id wanting AVRO: wrong type");

	/* Two checks of one id at once share a lookup; both hear of it. */
	memset(&r, 0, sizeof(r));
	memset(&r2, 0, sizeof(r2));
	if (registry_check_id(reg, 999998, SUBJECT, "PROTOBUF", reg_check, &r) == 0 &&
	    registry_check_id(reg, 999998, SUBJECT, "PROTOBUF", reg_check, &r2) == 0 &&
	    wait_for(&r) && wait_for(&r2))
		ok(r.calls == 1 && r2.calls == 1 && r.res == REGISTRY_UNKNOWN_ID &&
			r2.res == REGISTRY_UNKNOWN_ID,
		    "concurrent checks each answered once");
	else
		ok(0, "concurrent checks");

	/* Incompatible second version (BACKWARD: a field changes type). */
	snprintf(subject, sizeof(subject), "collectord-it-%d-value", (int)getpid());
	memset(&r, 0, sizeof(r));
	if (registry_register(reg, subject, "PROTOBUF",
		"syntax = \"proto3\";\n"
		"package it;\nmessage M { string a = 1; }\n",
		reg_id, &r) == 0 &&
	    wait_for(&r) && r.res == REGISTRY_OK && set_backward(url, subject)) {
		memset(&r, 0, sizeof(r));
		if (registry_register(reg, subject, "PROTOBUF",
			"syntax = \"proto3\";\npackage it;\n"
			"message M { int64 a = 1; }\n",
			reg_id, &r) == 0 &&
		    wait_for(&r))
			ok(r.res == REGISTRY_REJECTED && strstr(r.err, "incompatible") != NULL,
			    "incompatible version rejected (409)");
		else
			ok(0, "incompatible version");
	} else {
		ok(0, "first version and BACKWARD config");
	}
	memset(&r, 0, sizeof(r));
	if (registry_register(reg, subject, "PROTOBUF", "this is not proto", reg_id, &r) == 0 &&
	    wait_for(&r))
		ok(r.res == REGISTRY_REJECTED && strstr(r.err, "422") != NULL,
		    "invalid schema rejected (422)");
	else
		ok(0, "invalid schema");

	/* A callback frees the registry while another waiter is queued. */
	{
		struct registry *tmp = registry_new(loop, url, NULL, NULL, err, sizeof(err));

		memset(&r, 0, sizeof(r));
		memset(&r2, 0, sizeof(r2));
		r.free_reg = tmp;
		if (tmp != NULL &&
		    registry_check_id(tmp, 999997, SUBJECT, "PROTOBUF", reg_check, &r) == 0 &&
		    registry_check_id(tmp, 999997, SUBJECT, "PROTOBUF", reg_check, &r2) == 0) {
			wait_for(&r);
			ok(r.calls == 1 && r2.calls == 0,
			    "freeing the registry in a callback stops delivery");
		} else {
			ok(0, "free in callback");
			registry_free(tmp);
		}
	}

	/* Registry down. */
	snprintf(down, sizeof(down), "http://127.0.0.1:%d/apis/ccompat/v7", closed_port());
	down_reg = registry_new(loop, down, "u", "p", err, sizeof(err));
	ok(down_reg != NULL && check(down_reg, id, SUBJECT, "PROTOBUF", &r) &&
		r.res == REGISTRY_UNAVAILABLE && !registry_result_permanent(r.res),
	    "registry down: check_id is transient");
	ok(!registry_check_id_cached(down_reg, id, SUBJECT, "PROTOBUF", &cached),
	    "transient answer not cached");
	memset(&r, 0, sizeof(r));
	if (down_reg != NULL &&
	    registry_register(down_reg, SUBJECT, "PROTOBUF", proto, reg_id, &r) == 0 &&
	    wait_for(&r))
		ok(r.res == REGISTRY_UNAVAILABLE, "registry down: register is "
						  "transient");
	else
		ok(0, "registry down: register");
	memset(&r, 0, sizeof(r));
	if (down_reg != NULL && registry_ping(down_reg, reg_ping, &r) == 0 && wait_for(&r))
		ok(!r.ok, "registry down: ping fails");
	else
		ok(0, "registry down: ping");
	/* Freed with a request in flight: its callback never fires. */
	memset(&r, 0, sizeof(r));
	if (down_reg != NULL && registry_ping(down_reg, reg_ping, &r) == 0) {
		registry_free(down_reg);
		while (event_base_loop(base, EVLOOP_NONBLOCK) == 0 && curl_loop_pending(loop) > 0)
			;
		ok(r.calls == 0, "registry_free cancels in-flight requests");
	} else {
		registry_free(down_reg);
	}
	free(proto);
	registry_free(reg);
	ok(curl_loop_pending(loop) == 0, "no transfer left behind");
}

int
main(void)
{
	const char *ep = getenv("COLLECTORD_S3_ENDPOINT");
	const char *bucket = getenv("COLLECTORD_S3_BUCKET");
	const char *region = getenv("COLLECTORD_S3_REGION");
	const char *ak = getenv("COLLECTORD_S3_ACCESS_KEY");
	const char *sk = getenv("COLLECTORD_S3_SECRET_KEY");
	const char *reg = getenv("COLLECTORD_REGISTRY_URL");

	if (ep == NULL || bucket == NULL || ak == NULL || sk == NULL || reg == NULL) {
		printf("1..0 # SKIP COLLECTORD_S3_* and COLLECTORD_REGISTRY_URL "
		       "not set\n");
		return 0;
	}
	if (region == NULL || *region == '\0')
		region = "us-east-1";
	base = event_base_new();
	loop = curl_loop_new(base);
	if (base == NULL || loop == NULL) {
		printf("Bail out! no event base or curl loop\n");
		return 1;
	}
	test_s3(ep, bucket, region, ak, sk);
	test_curl_loop(reg);
	test_registry(reg);
	curl_loop_free(loop);
	event_base_free(base);
	return tap_done();
}
