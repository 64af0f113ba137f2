/* http_parse.h: the pure part of collectord's HTTP/1.1 server: the request
 * head and the chunked transfer coding, parsed strictly (RFC 9112), no I/O.
 * httpd.c feeds it the bytes of one connection. */
#ifndef COLLECTORD_HTTP_PARSE_H
#define COLLECTORD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most header fields one request may carry (431 beyond). */
#define HTTP_MAX_HEADERS 64

enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_HEAD = 1 << 1,
	HTTP_POST = 1 << 2,
	HTTP_PUT = 1 << 3,
	HTTP_DELETE = 1 << 4,
	HTTP_OPTIONS = 1 << 5,
	HTTP_PATCH = 1 << 6,
	/* Known, served nowhere: the routes answer 405 with Allow (RFC 9110,
	 * 15.5.6), where a method nobody defined is 501. */
	HTTP_TRACE = 1 << 7,
	HTTP_CONNECT = 1 << 8,
};

struct http_header {
	const char *name;  /* as sent; compare case-insensitively */
	const char *value; /* leading and trailing whitespace removed */
};

/* A parsed request head.  Every string points into the buffer given to
 * http_parse_head(), which it NUL-terminates in place. */
struct http_head {
	enum http_method method;
	const char *method_text;
	const char *target; /* origin-form, as sent: path and query */
	int minor;	    /* HTTP/1.<minor>: 0 or 1 */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	/* What the fields mean for the connection. */
	bool chunked;	      /* Transfer-Encoding: chunked */
	bool has_length;      /* Content-Length given */
	uint64_t length;      /* its value */
	bool keep_alive;      /* the client wants the connection kept */
	bool expect_continue; /* Expect: 100-continue */
};

/*
 * Offset just past the empty line ending a request head in BUF (LEN
 * bytes), or 0 when the head is not complete yet.  Lines end in CRLF; a
 * bare LF is accepted as well (RFC 9112 2.2).  *SCAN carries the position
 * already searched between calls on a growing buffer (start it at 0), so
 * a head trickled byte by byte costs linear time.
 */
size_t http_head_end(const char *buf, size_t len, size_t *scan);

/*
 * Parse the complete head BUF[0..LEN) (LEN as http_head_end() gave it) into
 * *H; BUF is modified.  Returns 0, or the HTTP status to refuse the
 * request with, and what was wrong in ERR:
 *   400  a malformed request line or field, an obsolete line folding,
 *        whitespace before a colon, a Content-Length that is not plain
 *        digits or that differs between fields, both Content-Length and
 *        Transfer-Encoding, Transfer-Encoding in HTTP/1.0, HTTP/1.1
 *        without exactly one Host;
 *   431  more than HTTP_MAX_HEADERS fields;
 *   501  a method or a transfer coding this server does not implement;
 *   505  a version other than HTTP/1.0 and HTTP/1.1.
 * Several identical Content-Length values are one (RFC 9110 8.6).
 */
int http_parse_head(char *buf, size_t len, struct http_head *h, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The value of the first field NAME (case-insensitive), or NULL. */
const char *http_head_field(const struct http_head *h, const char *name);

/* The chunked transfer coding, decoded as bytes arrive. */
struct http_chunked {
	int state;
	uint64_t size;	 /* of the chunk being read */
	unsigned digits; /* of its size line */
	size_t line;	 /* bytes of the current extension or trailer line */
	size_t trailer;	 /* bytes of trailer fields so far */
};

enum http_chunk_result {
	HTTP_CHUNK_MORE,  /* every byte used; feed more */
	HTTP_CHUNK_DATA,  /* body data: see DATA_OFF and DATA_LEN */
	HTTP_CHUNK_DONE,  /* the last chunk and trailer are read */
	HTTP_CHUNK_ERROR, /* malformed (400) */
};

/*
 * Decode from IN (N bytes): *USED is set to the bytes consumed.  On
 * HTTP_CHUNK_DATA, body bytes are the DATA_LEN bytes at IN + DATA_OFF
 * (within the consumed part); call again with the rest.  Chunk sizes are
 * 1 to 15 hexadecimal digits; extensions and trailer fields are skipped,
 * bounded by MAX_LINE bytes a line and MAX_LINE bytes of trailer in all.
 */
enum http_chunk_result http_chunked_feed(struct http_chunked *c, const char *in, size_t n,
    size_t max_line, size_t *used, size_t *data_off, size_t *data_len);

/* The reason phrase of STATUS ("OK", "Bad Request", ...; "Unknown"). */
const char *http_reason(int status);

#endif
