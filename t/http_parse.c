/* t/http_parse.c: request heads and chunked bodies, strict parsing. */
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "tap.h"

/* Parse TEXT as a whole head; the status, and *H filled. */
static int
parse(const char *text, struct http_head *h, char *err, size_t errlen)
{
	static char buf[8192];
	size_t scan = 0, n = strlen(text), end;

	memcpy(buf, text, n + 1);
	end = http_head_end(buf, n, &scan);
	if (end == 0) {
		snprintf(err, errlen, "incomplete");
		return -1;
	}
	return http_parse_head(buf, end, h, err, errlen);
}

static void
refused(const char *text, int want, const char *why, const char *name)
{
	struct http_head h;
	char err[160] = "";
	int st = parse(text, &h, err, sizeof(err));

	is_int(st, want, name);
	is_str(err, why, name);
}

static void
test_heads(void)
{
	struct http_head h;
	char err[160];

	is_int(parse("POST /collect?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
		     "X-API-Key:  k1 \r\n\r\n",
		   &h, err, sizeof(err)),
	    0, "a POST head parses");
	is_str(h.method_text, "POST", "method");
	ok(h.method == HTTP_POST, "method enum");
	is_str(h.target, "/collect?x=1", "target as sent");
	ok(h.has_length && h.length == 12, "Content-Length");
	is_str(http_head_field(&h, "x-api-key"), "k1", "field values are trimmed, names any case");
	ok(h.keep_alive && !h.chunked && !h.expect_continue, "HTTP/1.1 keeps the connection");

	is_int(parse("GET /healthz HTTP/1.0\n\n", &h, err, sizeof(err)), 0,
	    "bare LF line ends are taken");
	ok(!h.keep_alive && h.minor == 0, "HTTP/1.0 closes by default");
	is_int(parse("\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &h, err, sizeof(err)),
	    0, "an empty line before the request line is skipped");
	ok(h.keep_alive, "HTTP/1.0 keep-alive");
	is_int(
	    parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", &h, err, sizeof(err)),
	    0, "Connection: close");
	ok(!h.keep_alive, "close wins");
	is_int(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		     "Expect: 100-continue\r\n\r\n",
		   &h, err, sizeof(err)),
	    0, "chunked with 100-continue");
	ok(h.chunked && h.expect_continue && !h.has_length, "chunked, expects 100");
	is_int(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		   &h, err, sizeof(err)),
	    0, "two identical Content-Length fields are one");
	is_int(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n", &h, err,
		   sizeof(err)),
	    0, "a list of identical Content-Length values is one");
	ok(h.length == 7, "its value");

	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
	    "two different Content-Length values", "two different Content-Length: 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400,
	    "Content-Length is not a decimal number", "a list of different lengths: 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400,
	    "Content-Length is not a decimal number", "Content-Length: +5 is 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400,
	    "Content-Length is not a decimal number", "a negative Content-Length is 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400,
	    "Content-Length is not a decimal number", "a hexadecimal Content-Length is 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	    400, "Content-Length is not a decimal number", "an overflowing Content-Length is 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400,
	    "Content-Length is not a decimal number", "an empty Content-Length is 400");
	refused("GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 request without Host",
	    "HTTP/1.1 without Host: 400");
	refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host given twice",
	    "two Host fields: 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: "
		"chunked\r\n\r\n",
	    400, "both Content-Length and Transfer-Encoding",
	    "Content-Length with Transfer-Encoding (smuggling): 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
	    "only the chunked transfer coding is served", "other transfer codings: 501");
	refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
	    "Transfer-Encoding in an HTTP/1.0 request", "chunked in HTTP/1.0: 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
	    400, "Transfer-Encoding given twice", "Transfer-Encoding twice: 400");
	refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400,
	    "malformed header field name (whitespace before the colon?)",
	    "whitespace before the colon: 400");
	refused("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "obsolete line folding",
	    "obsolete line folding: 400");
	refused("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "a bare CR in the head",
	    "a bare CR: 400");
	refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\001b\r\n\r\n", 400,
	    "control character in a header field", "a control character in a value: 400");
	refused("GET / HTTP/1.1\r\nnocolon\r\n\r\n", 400, "malformed header field",
	    "a field without a colon: 400");
	refused("GET / HTTP/2.0\r\n\r\n", 505, "only HTTP/1.0 and HTTP/1.1 are served",
	    "HTTP/2.0: 505");
	refused("GET / HTTX/1.1\r\n\r\n", 400, "malformed HTTP version", "a bad version: 400");
	refused("BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 501, "method not implemented",
	    "an unknown method: 501");
	ok(parse("TRACE /stats HTTP/1.1\r\nHost: a\r\n\r\n", &h, err, sizeof(err)) == 0 &&
		h.method == HTTP_TRACE,
	    "TRACE is a method: the routes answer 405");
	refused("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400,
	    "the request target must be a path (origin-form)", "absolute-form target: 400");
	refused("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version",
	    "a space in the target: 400");
	refused("GET /\r\n\r\n", 400, "malformed request line", "HTTP/0.9: 400");
	refused("POST / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n", 417, "unsupported expectation",
	    "an unknown expectation: 417");
	{
		char big[8192];
		size_t n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");

		for (int i = 0; i < HTTP_MAX_HEADERS; i++)
			n += (size_t)snprintf(big + n, sizeof(big) - n, "X-%d: v\r\n", i);
		snprintf(big + n, sizeof(big) - n, "\r\n");
		refused(
		    big, 431, "too many header fields", "more than HTTP_MAX_HEADERS fields: 431");
	}
}

static void
test_head_end(void)
{
	const char *text = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
	size_t scan = 0, n = strlen(text), end = 0, i;

	/* Fed a byte at a time, the end is found exactly once, at its place. */
	for (i = 1; i <= n && end == 0; i++)
		end = http_head_end(text, i, &scan);
	is_int((long long)end, (long long)(n - 4), "head end found byte by byte");
	scan = 0;
	is_int((long long)http_head_end("GET / HTTP/1.1\r\nHost: a\r\n", 26, &scan), 0,
	    "no end before the empty line");
	scan = 0;
	is_int((long long)http_head_end("GET /\n\nx", 8, &scan), 7, "LF LF ends a head");
}

/* Decode all of IN, fed in pieces of STEP bytes; the body or NULL. */
static char *
dechunk(const char *in, size_t step, enum http_chunk_result *last)
{
	struct http_chunked c = {0};
	size_t n = strlen(in), pos = 0, outlen = 0;
	char *out = calloc(1, n + 1);

	*last = HTTP_CHUNK_MORE;
	while (pos < n) {
		size_t piece = n - pos < step ? n - pos : step, done = 0;

		while (done < piece) {
			size_t used = 0, off = 0, len = 0;
			enum http_chunk_result r = http_chunked_feed(
			    &c, in + pos + done, piece - done, 64, &used, &off, &len);

			if (r == HTTP_CHUNK_DATA) {
				memcpy(out + outlen, in + pos + done + off, len);
				outlen += len;
			}
			done += used;
			*last = r;
			if (r == HTTP_CHUNK_ERROR || r == HTTP_CHUNK_DONE)
				return out;
			if (r == HTTP_CHUNK_MORE)
				break;
		}
		pos += piece;
	}
	return out;
}

static void
test_chunked(void)
{
	static const char *good = "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n"
				  "Trailer: x\r\n\r\n";
	enum http_chunk_result r;
	char *out;

	for (size_t step = 1; step <= strlen(good); step++) {
		out = dechunk(good, step, &r);
		if (r != HTTP_CHUNK_DONE || strcmp(out, "hello 0123456789") != 0) {
			ok(0, "chunked body fed %zu bytes at a time", step);
			free(out);
			return;
		}
		free(out);
	}
	ok(1, "a chunked body decodes fed at any piece size");
	out = dechunk("3\nabc\n0\n\n", 1, &r);
	ok(r == HTTP_CHUNK_DONE && strcmp(out, "abc") == 0, "bare LF chunk lines");
	free(out);

	out = dechunk("zz\r\nabc\r\n0\r\n\r\n", 4, &r);
	ok(r == HTTP_CHUNK_ERROR, "a chunk size that is not hexadecimal is an error");
	free(out);
	out = dechunk("\r\n", 4, &r);
	ok(r == HTTP_CHUNK_ERROR, "an empty chunk size is an error");
	free(out);
	out = dechunk("1234567890abcdef0\r\n", 4, &r);
	ok(r == HTTP_CHUNK_ERROR, "a chunk size of 17 digits is an error");
	free(out);
	out = dechunk("5x\r\nhello\r\n", 4, &r);
	ok(r == HTTP_CHUNK_ERROR, "junk after the chunk size is an error");
	free(out);
	out = dechunk("3\r\nabcX\r\n", 4, &r);
	ok(r == HTTP_CHUNK_ERROR, "data longer than its chunk size is an error");
	free(out);
	out = dechunk(
	    "1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 8,
	    &r);
	ok(r == HTTP_CHUNK_ERROR, "an extension past the line bound is an error");
	free(out);
	out = dechunk(
	    "0\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
	    8, &r);
	ok(r == HTTP_CHUNK_ERROR, "trailers past the bound are an error");
	free(out);
	out = dechunk("0\r\n\rX", 8, &r);
	ok(r == HTTP_CHUNK_ERROR, "a CR not followed by LF at the end is an error");
	free(out);
}

int
main(void)
{
	test_heads();
	test_head_end();
	test_chunked();
	is_str(http_reason(413), "Content Too Large", "reason phrases");
	return tap_done();
}
