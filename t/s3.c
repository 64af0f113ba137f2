/* t/s3.c: S3 key naming, URL encoding, payload hashing and error parsing. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

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

	ok(s3_key_enriched(buf, sizeof(buf), T0, "events.raw", 3, 42) == 0, "enriched key");
	is_str(buf, "enriched/date=2023-11-14/events.raw+3+42.jsonl", "enriched key text");
	ok(s3_key_enriched(
	       buf, sizeof(buf), MIDNIGHT, "events.raw", 0, INT64_C(9007199254740993)) == 0 &&
		strcmp(buf, "enriched/date=2023-11-15/events.raw+0+9007199254740993.jsonl") == 0,
	    "enriched key with a large offset");
	ok(s3_key_enriched(buf, sizeof(buf), T0, "", 0, 0) == -1, "empty topic refused");
	ok(s3_key_enriched(buf, sizeof(buf), T0, "events.raw", -1, 0) == -1 &&
		s3_key_enriched(buf, sizeof(buf), T0, "events.raw", 0, -1) == -1,
	    "negative partition or offset refused");
	ok(s3_key_enriched(buf, 30, T0, "events.raw", 0, 0) == -1,
	    "enriched: too small a buffer refused");
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

int
main(void)
{
	test_keys();
	test_encode();
	test_url();
	test_sha();
	test_error();
	return tap_done();
}
