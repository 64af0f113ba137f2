/*
 * t/s3.c: S3 key naming, URL encoding, payload hashing and error parsing;
 * and, against a loopback HTTP server of its own, how many connections a
 * burst of PUTs opens under curl_loop's cap.
 */
#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "curl_loop.h"
#include "s3.h"
#include "tap.h"

/* 2023-11-14T22:13:20Z */
#define T0 INT64_C(1700000000000)
/* 2023-11-15T00:00:00Z */
#define MIDNIGHT INT64_C(1700006400000)

static void
test_keys(void)
{
	char buf[256];

	ok(s3_key_dead_letters(buf, sizeof(buf), "", T0, "018bd0e4-2d00-7000-8000-000000000003") ==
		0,
	    "a request's dead letters, no prefix");
	is_str(buf, "dead-letter/date=2023-11-14/018bd0e4-2d00-7000-8000-000000000003.jsonl",
	    "the request's object, as the first family's keys always were");
	ok(s3_key_dead_letters(buf, sizeof(buf), "retail/", T0, "018b") == 0, "a family's prefix");
	is_str(buf, "retail/dead-letter/date=2023-11-14/018b.jsonl", "goes in front");
	ok(s3_key_dead_letters(buf, sizeof(buf), "a//", T0, "018b") == -1,
	    "an empty key part in the prefix refused");
	ok(s3_key_dead_letters(buf, sizeof(buf), "a\n/", T0, "018b") == -1,
	    "a control character in the prefix refused");
	ok(s3_key_dead_letter(buf, sizeof(buf), T0, "018bd0e4-2d00-7000-8000-000000000003") == 0,
	    "dead letter key");
	is_str(buf,
	    "dead-letter/date=2023-11-14/"
	    "018bd0e4-2d00-7000-8000-000000000003.json",
	    "dead letter key text");
	ok(s3_key_dead_letter(buf, sizeof(buf), MIDNIGHT - 1, "x") == 0 &&
		strcmp(buf, "dead-letter/date=2023-11-14/x.json") == 0,
	    "last millisecond of a day stays on that day");
	ok(s3_key_dead_letter(buf, sizeof(buf), MIDNIGHT, "x") == 0 &&
		strcmp(buf, "dead-letter/date=2023-11-15/x.json") == 0,
	    "midnight UTC starts the next day");
	ok(s3_key_dead_letter(buf, sizeof(buf), 0, "x") == 0 &&
		strcmp(buf, "dead-letter/date=1970-01-01/x.json") == 0,
	    "epoch");
	ok(s3_key_dead_letter(buf, sizeof(buf), -1, "x") == 0 &&
		strcmp(buf, "dead-letter/date=1969-12-31/x.json") == 0,
	    "a millisecond before the epoch is the day before");
	ok(s3_key_dead_letter(buf, sizeof(buf), T0, "") == -1, "empty correlation id refused");
	ok(s3_key_dead_letter(buf, sizeof(buf), T0, "../etc") == -1,
	    "correlation id with a slash refused");
	ok(s3_key_dead_letter(buf, sizeof(buf), T0, "a\nb") == -1,
	    "correlation id with a control character refused");
	ok(s3_key_dead_letter(buf, 20, T0, "x") == -1, "too small a buffer refused");

	ok(s3_key_enriched(buf, sizeof(buf), "", T0, "events.raw", 3, 42) == 0, "enriched key");
	is_str(buf, "enriched/date=2023-11-14/events.raw+3+42.jsonl", "enriched key text");
	ok(s3_key_enriched(
	       buf, sizeof(buf), "", MIDNIGHT, "events.raw", 0, INT64_C(9007199254740993)) == 0 &&
		strcmp(buf, "enriched/date=2023-11-15/events.raw+0+9007199254740993.jsonl") == 0,
	    "enriched key with a large offset");
	ok(s3_key_enriched(buf, sizeof(buf), "", T0, "", 0, 0) == -1, "empty topic refused");
	ok(s3_key_enriched(buf, sizeof(buf), "", T0, "events.raw", -1, 0) == -1 &&
		s3_key_enriched(buf, sizeof(buf), "", T0, "events.raw", 0, -1) == -1,
	    "negative partition or offset refused");
	ok(s3_key_enriched(buf, 30, "", T0, "events.raw", 0, 0) == -1,
	    "enriched: too small a buffer refused");

	ok(s3_key_archive(buf, sizeof(buf), T0, "events.raw", 2, 1500) == 0, "archive key");
	is_str(buf, "archive/events.raw/date=2023-11-14/events.raw+2+0000001500.jsonl",
	    "archive key text: its topic's folder, the offset in ten digits");
	ok(s3_key_archive(buf, sizeof(buf), MIDNIGHT, "t", 0, INT64_C(12345678901)) == 0 &&
		strcmp(buf, "archive/t/date=2023-11-15/t+0+12345678901.jsonl") == 0,
	    "archive key: an offset past ten digits keeps all of them");
	ok(s3_key_archive(buf, sizeof(buf), T0, "a/b", 0, 0) == -1 &&
		s3_key_archive(buf, sizeof(buf), T0, "t", -1, 0) == -1 &&
		s3_key_archive(buf, sizeof(buf), T0, "t", 0, -1) == -1,
	    "archive key: a slash in the topic, a negative partition or offset refused");
	ok(s3_key_archive(buf, 40, T0, "events.raw", 0, 0) == -1,
	    "archive: too small a buffer refused");

	ok(s3_key_enriched(buf, sizeof(buf), "clickstream/", T0, "acme.raw", 0, 7) == 0,
	    "a family's enriched key");
	is_str(buf, "clickstream/enriched/date=2023-11-14/acme.raw+0+7.jsonl",
	    "starts with its prefix");
	ok(s3_key_kafka_refused(buf, sizeof(buf), "clickstream/", T0, "acme.raw", 0, 7) == 0 &&
		strcmp(buf,
		    "clickstream/dead-letter/kafka-refused/date=2023-11-14/acme.raw+0+7.json") == 0,
	    "and its kafka-refused key: %s", buf);
	ok(s3_key_kafka_refused(buf, sizeof(buf), "", T0, "events.raw", 3, 42) == 0,
	    "kafka-refused dead letter key");
	is_str(buf, "dead-letter/kafka-refused/date=2023-11-14/events.raw+3+42.json",
	    "kafka-refused key text");
	ok(s3_key_kafka_refused(buf, sizeof(buf), "", MIDNIGHT, "events.raw", 0, 0) == 0 &&
		strcmp(buf, "dead-letter/kafka-refused/date=2023-11-15/events.raw+0+0.json") == 0,
	    "kafka-refused key: the day of the record's time");
	ok(s3_key_kafka_refused(buf, sizeof(buf), "", T0, "a/b", 0, 0) == -1 &&
		s3_key_kafka_refused(buf, sizeof(buf), "", T0, "", 0, 0) == -1,
	    "kafka-refused key: bad topic refused");
	ok(s3_key_kafka_refused(buf, sizeof(buf), "", T0, "events.raw", -1, 0) == -1 &&
		s3_key_kafka_refused(buf, sizeof(buf), "", T0, "events.raw", 0, -1) == -1,
	    "kafka-refused key: negative partition or offset refused");
	ok(s3_key_kafka_refused(buf, 50, "", T0, "events.raw", 0, 0) == -1,
	    "kafka-refused key: too small a buffer refused");
}

static void
test_encode(void)
{
	char buf[256];

	ok(s3_uri_encode(
	       buf, sizeof(buf), "enriched/date=2023-11-14/events.raw+3+42.jsonl", true) == 0,
	    "encode a key");
	is_str(buf, "enriched/date%3D2023-11-14/events.raw%2B3%2B42.jsonl",
	    "'=' and '+' percent-encoded, '/' kept");
	ok(s3_uri_encode(buf, sizeof(buf), "a/b c~d_e-f.g", false) == 0, "encode with slashes");
	is_str(buf, "a%2Fb%20c~d_e-f.g", "unreserved kept, '/' and ' ' encoded");
	ok(s3_uri_encode(buf, sizeof(buf), "\xc3\xa9*!'()", true) == 0,
	    "encode UTF-8 and sub-delims");
	is_str(buf, "%C3%A9%2A%21%27%28%29", "upper-case hex, byte by byte");
	ok(s3_uri_encode(buf, 4, "abc", true) == 0 && strcmp(buf, "abc") == 0, "exact fit");
	ok(s3_uri_encode(buf, 3, "abc", true) == -1, "one short");
	ok(s3_uri_encode(buf, 3, "+", true) == -1, "no room for %%XX");
}

static void
test_url(void)
{
	char buf[256];

	ok(s3_url(buf, sizeof(buf), "http://127.0.0.1:9000", "events", true,
	       "dead-letter/date=2023-11-14/x.json") == 0,
	    "path-style URL");
	is_str(buf,
	    "http://127.0.0.1:9000/events/"
	    "dead-letter/date%3D2023-11-14/x.json",
	    "path-style URL text");
	ok(s3_url(buf, sizeof(buf), "http://127.0.0.1:9000/", "events", true, NULL) == 0,
	    "bucket URL");
	is_str(
	    buf, "http://127.0.0.1:9000/events", "bucket URL, endpoint's trailing slash dropped");
	ok(s3_url(buf, sizeof(buf), "https://s3.eu-west-1.amazonaws.com", "events", false, "a+b") ==
		0,
	    "virtual-host URL");
	is_str(buf, "https://events.s3.eu-west-1.amazonaws.com/a%2Bb", "virtual-host URL text");
	ok(s3_url(buf, sizeof(buf), "127.0.0.1:9000", "events", true, "k") == -1,
	    "endpoint without a scheme refused");
	ok(s3_url(buf, 20, "http://127.0.0.1:9000", "events", true, "k") == -1,
	    "URL: too small a buffer refused");
}

static void
test_sha(void)
{
	char hex[65];

	s3_sha256_hex("", 0, hex);
	is_str(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
	    "7852b855",
	    "SHA-256 of nothing");
	s3_sha256_hex("abc", 3, hex);
	is_str(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61"
	    "f20015ad",
	    "SHA-256 of abc (FIPS 180-2 vector)");
}

static void
test_error(void)
{
	/* What MinIO answered to a request signed with the wrong secret. */
	static const char minio[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				    "<Error><Code>SignatureDoesNotMatch</Code><Message>The request "
				    "signature we calculated does not match the signature you "
				    "provided. Check your key and signing method.</Message>"
				    "<Key>a/b</Key><BucketName>events</BucketName>"
				    "<Resource>/events/a/b</Resource></Error>";
	static const char nomsg[] = "<Error><Code>NoSuchBucket</Code></Error>";
	static const char cut[] = "<Error><Code>NoSuchBu";
	char code[64], msg[256], tiny[5];

	ok(s3_error_parse(minio, strlen(minio), code, sizeof(code), msg, sizeof(msg)),
	    "MinIO error parsed");
	is_str(code, "SignatureDoesNotMatch", "error code");
	ok(strncmp(msg, "The request signature", 21) == 0, "error message");
	ok(s3_error_parse(nomsg, strlen(nomsg), code, sizeof(code), msg, sizeof(msg)) &&
		strcmp(code, "NoSuchBucket") == 0 && msg[0] == '\0',
	    "code without message");
	ok(!s3_error_parse(cut, strlen(cut), code, sizeof(code), NULL, 0),
	    "truncated body: no code");
	ok(!s3_error_parse("", 0, code, sizeof(code), NULL, 0), "empty body: no code");
	ok(!s3_error_parse(minio, 30, code, sizeof(code), NULL, 0), "LEN is honoured");
	ok(s3_error_parse(nomsg, strlen(nomsg), tiny, sizeof(tiny), NULL, 0) &&
		strcmp(tiny, "NoSu") == 0,
	    "code cut to its buffer");
}

/* ---------------------------------------------------------------- connections */

struct srv {
	int conns; /* connections accepted */
	int reqs;
};

struct burst {
	int ok, failed;
	char err[256];
};

static struct bufferevent *
srv_bev(struct event_base *base, void *arg)
{
	struct srv *s = arg;

	s->conns++;
	return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void
srv_req(struct evhttp_request *req, void *arg)
{
	struct srv *s = arg;

	s->reqs++;
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void
put_done(void *arg, bool ok, const char *err)
{
	struct burst *b = arg;

	if (ok) {
		b->ok++;
	} else {
		b->failed++;
		snprintf(b->err, sizeof(b->err), "%s", err ? err : "");
	}
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Start N PUTs at once and run the loop until all answered (or 30 s). */
static void
put_burst(struct event_base *base, struct s3 *s3, int n, const char *tag, struct burst *b)
{
	char key[64];

	memset(b, 0, sizeof(*b));
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "burst/%s-%d", tag, i);
		if (s3_put(s3, key, "x", 1, NULL, put_done, b) == -1)
			b->failed++;
	}
	for (int i = 0; i < 3000 && b->ok + b->failed < n; i++)
		event_base_loop(base, EVLOOP_ONCE);
}

static void
test_connections(void)
{
	enum { CAP = 4, BURST = 200 };
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	struct srv srv = {0, 0};
	struct burst b;
	struct curl_loop *loop;
	struct s3 *s3;
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	struct timeval tv = {0, 10000};
	char endpoint[64], err[256];
	struct s3_config cfg = {
	    .bucket = "events",
	    .access_key = "test",
	    .secret_key = "test-secret",
	    .path_style = true,
	    .timeout_ms = 20000,
	};
	int first;

	evhttp_set_bevcb(http, srv_bev, &srv);
	evhttp_set_gencb(http, srv_req, &srv);
	bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	if (bound == NULL ||
	    getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &slen) == -1) {
		ok(0, "loopback HTTP server");
		return;
	}
	event_add(tick, &tv);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", (int)ntohs(sin.sin_port));
	cfg.endpoint = endpoint;
	loop = curl_loop_new(base);
	curl_loop_set_max_connections(loop, CAP);
	s3 = s3_new(loop, &cfg, err, sizeof(err));
	if (s3 == NULL) {
		ok(0, "S3 client: %s", err);
		return;
	}
	put_burst(base, s3, BURST, "a", &b);
	is_int(b.ok, BURST, "every PUT of a burst far over the cap succeeded (queued, not failed)");
	if (b.failed > 0)
		printf("#   a failure: %s\n", b.err);
	ok(srv.conns >= 1 && srv.conns <= CAP, "%d PUTs at once over at most %d connections (%d)",
	    BURST, CAP, srv.conns);
	is_int(srv.reqs, BURST, "the server saw each PUT once");
	first = srv.conns;
	put_burst(base, s3, BURST / 4, "b", &b);
	is_int(b.ok, BURST / 4, "a second burst succeeded");
	is_int(srv.conns, first, "the second burst reused the open connections");
	s3_free(s3);
	curl_loop_free(loop);
	event_free(tick);
	evhttp_free(http);
	event_base_free(base);
}

int
main(void)
{
	test_keys();
	test_encode();
	test_url();
	test_sha();
	test_error();
	test_connections();
	return tap_done();
}
