/* http_parse.c: request heads and chunked bodies, parsed strictly. */
#include "http_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool
fail(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
	return false;
}

size_t
http_head_end(const char *buf, size_t len, size_t *scan)
{
	size_t i = *scan;

	/* A head ends at a line feed preceded by a line that was empty
	 * (nothing, or a lone CR, since the previous line feed). */
	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i >= 1 && buf[i - 1] == '\n')
			return *scan = i + 1;
		if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
			return *scan = i + 1;
	}
	/* Resume two bytes back: the terminator may straddle the boundary. */
	*scan = len >= 2 ? len - 2 : 0;
	return 0;
}

/* RFC 9110 5.6.2 token characters. */
static bool
tchar(unsigned char c)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr(extra, c) != NULL);
}

/* Field values: visible characters, obs-text, spaces and tabs. */
static bool
vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Split off the line at *P (ending in LF, optional CR before it), NUL
 * terminated; *P moves past it.  False when a bare CR is inside. */
static bool
next_line(char **p, char *end, char **line)
{
	char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));

	if (nl == NULL)
		return false;
	*line = s;
	*p = nl + 1;
	if (nl > s && nl[-1] == '\r')
		nl--;
	*nl = '\0';
	return memchr(s, '\r', (size_t)(nl - s)) == NULL;
}

static const struct {
	const char *name;
	enum http_method m;
} methods[] = {
    {"GET", HTTP_GET},
    {"HEAD", HTTP_HEAD},
    {"POST", HTTP_POST},
    {"PUT", HTTP_PUT},
    {"DELETE", HTTP_DELETE},
    {"OPTIONS", HTTP_OPTIONS},
    {"PATCH", HTTP_PATCH},
    {"TRACE", HTTP_TRACE},
    {"CONNECT", HTTP_CONNECT},
};

static int
parse_request_line(char *line, struct http_head *h, char *err, size_t errlen)
{
	char *sp1 = strchr(line, ' '), *sp2, *v;

	if (sp1 == NULL || sp1 == line)
		return fail(err, errlen, "malformed request line"), 400;
	*sp1 = '\0';
	for (char *c = line; *c; c++)
		if (!tchar((unsigned char)*c))
			return fail(err, errlen, "malformed method"), 400;
	h->method_text = line;
	h->method = 0;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(line, methods[i].name) == 0)
			h->method = methods[i].m;
	h->target = sp1 + 1;
	if ((sp2 = strchr(h->target, ' ')) == NULL)
		return fail(err, errlen, "malformed request line"), 400;
	*sp2 = '\0';
	v = sp2 + 1;
	if (h->target[0] != '/')
		return fail(err, errlen, "the request target must be a path (origin-form)"), 400;
	for (const char *c = h->target; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return fail(err, errlen, "malformed request target"), 400;
	if (strncmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
	    v[7] > '9' || v[8] != '\0')
		return fail(err, errlen, "malformed HTTP version"), 400;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return fail(err, errlen, "only HTTP/1.0 and HTTP/1.1 are served"), 505;
	h->minor = v[7] - '0';
	if (h->method == 0)
		return fail(err, errlen, "method not implemented"), 501;
	return 0;
}

/* Content-Length: 1*DIGIT, or a list of identical such values. */
static bool
parse_length(const char *v, uint64_t *out)
{
	bool have = false;
	uint64_t first = 0;

	for (;;) {
		uint64_t n = 0;
		const char *s = v;

		while (*v >= '0' && *v <= '9') {
			if (n > (UINT64_MAX - 9) / 10)
				return false;
			n = n * 10 + (uint64_t)(*v++ - '0');
		}
		if (v == s || (have && n != first))
			return false;
		first = n;
		have = true;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v == '\0')
			break;
		if (*v++ != ',')
			return false;
		while (*v == ' ' || *v == '\t')
			v++;
	}
	*out = first;
	return true;
}

/* Does the comma-separated list V hold TOKEN (case-insensitive)? */
static bool
list_has(const char *v, const char *token)
{
	size_t n = strlen(token);

	while (*v != '\0') {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		if (strncasecmp(v, token, n) == 0 &&
		    (v[n] == '\0' || v[n] == ',' || v[n] == ' ' || v[n] == '\t'))
			return true;
		while (*v != '\0' && *v != ',')
			v++;
	}
	return false;
}

int
http_parse_head(char *buf, size_t len, struct http_head *h, char *err, size_t errlen)
{
	char *p = buf, *end = buf + len, *line;
	const char *te = NULL, *conn = NULL;
	int hosts = 0, st;

	memset(h, 0, sizeof(*h));
	/* RFC 9112 2.2: ignore empty lines before the request line. */
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	if (!next_line(&p, end, &line))
		return fail(err, errlen, "malformed request line"), 400;
	if ((st = parse_request_line(line, h, err, errlen)) != 0)
		return st;
	for (;;) {
		char *colon, *v, *e;

		if (!next_line(&p, end, &line))
			return fail(err, errlen, "a bare CR in the head"), 400;
		if (line[0] == '\0')
			break;
		if (line[0] == ' ' || line[0] == '\t')
			return fail(err, errlen, "obsolete line folding"), 400;
		if ((colon = strchr(line, ':')) == NULL || colon == line)
			return fail(err, errlen, "malformed header field"), 400;
		for (char *c = line; c < colon; c++)
			if (!tchar((unsigned char)*c))
				return fail(err, errlen,
					   "malformed header field name (whitespace before the "
					   "colon?)"),
				       400;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		for (char *c = v; *c; c++)
			if (!vchar((unsigned char)*c))
				return fail(err, errlen, "control character in a header field"),
				       400;
		if (h->nheaders == HTTP_MAX_HEADERS)
			return fail(err, errlen, "too many header fields"), 431;
		h->headers[h->nheaders].name = line;
		h->headers[h->nheaders].value = v;
		h->nheaders++;
		if (strcasecmp(line, "Content-Length") == 0) {
			uint64_t n;

			if (!parse_length(v, &n))
				return fail(err, errlen, "Content-Length is not a decimal number"),
				       400;
			if (h->has_length && n != h->length)
				return fail(err, errlen, "two different Content-Length values"),
				       400;
			h->has_length = true;
			h->length = n;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			if (te != NULL)
				return fail(err, errlen, "Transfer-Encoding given twice"), 400;
			te = v;
		} else if (strcasecmp(line, "Host") == 0) {
			hosts++;
		} else if (strcasecmp(line, "Connection") == 0) {
			conn = v;
		} else if (strcasecmp(line, "Expect") == 0) {
			if (strcasecmp(v, "100-continue") != 0)
				return fail(err, errlen, "unsupported expectation"), 417;
			h->expect_continue = h->minor >= 1;
		}
	}
	if (te != NULL) {
		if (h->minor == 0)
			return fail(err, errlen, "Transfer-Encoding in an HTTP/1.0 request"), 400;
		if (h->has_length)
			return fail(err, errlen, "both Content-Length and Transfer-Encoding"), 400;
		if (strcasecmp(te, "chunked") != 0)
			return fail(err, errlen, "only the chunked transfer coding is served"), 501;
		h->chunked = true;
	}
	if (h->minor == 1 && hosts != 1)
		return fail(err, errlen,
			   hosts == 0 ? "HTTP/1.1 request without Host" : "Host given twice"),
		       400;
	h->keep_alive = h->minor == 1 ? !(conn && list_has(conn, "close"))
				      : (conn && list_has(conn, "keep-alive"));
	return 0;
}

const char *
http_head_field(const struct http_head *h, const char *name)
{
	for (size_t i = 0; i < h->nheaders; i++)
		if (strcasecmp(h->headers[i].name, name) == 0)
			return h->headers[i].value;
	return NULL;
}

/* ------------------------------------------------------------ chunked */

enum {
	CH_SIZE = 0, /* hex digits of the size */
	CH_EXT,	     /* after the size: extensions up to the line's end */
	CH_DATA,
	CH_DATA_CR, /* the CRLF after a chunk's data */
	CH_DATA_LF,
	CH_TRAILER_START, /* at the start of a trailer line (or the final CRLF) */
	CH_TRAILER_CR,	  /* a CR at the start of a line: the final CRLF */
	CH_TRAILER,	  /* inside a trailer line */
	CH_DONE,
};

enum http_chunk_result
http_chunked_feed(struct http_chunked *c, const char *in, size_t n, size_t max_line, size_t *used,
    size_t *data_off, size_t *data_len)
{
	size_t i = 0;

	while (i < n) {
		unsigned char ch = (unsigned char)in[i];
		int v;

		switch (c->state) {
		case CH_SIZE:
			if (isxdigit(ch)) {
				v = ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
				if (++c->digits > 15)
					goto bad;
				c->size = c->size * 16 + (uint64_t)v;
				i++;
				break;
			}
			if (c->digits == 0)
				goto bad;
			c->state = CH_EXT;
			c->line = 0;
			break;
		case CH_EXT:
			i++;
			if (ch == '\n') {
				c->digits = 0;
				if (c->size == 0) {
					c->state = CH_TRAILER_START;
					c->trailer = 0;
				} else {
					c->state = CH_DATA;
				}
				break;
			}
			/* Only ";ext", whitespace before it, and the CR. */
			if (c->line == 0 && ch != ';' && ch != ' ' && ch != '\t' && ch != '\r')
				goto bad;
			if (++c->line > max_line || (ch < 0x20 && ch != '\t' && ch != '\r'))
				goto bad;
			break;
		case CH_DATA: {
			size_t k = n - i;

			if ((uint64_t)k > c->size)
				k = (size_t)c->size;
			*data_off = i;
			*data_len = k;
			c->size -= k;
			if (c->size == 0)
				c->state = CH_DATA_CR;
			*used = i + k;
			return HTTP_CHUNK_DATA;
		}
		case CH_DATA_CR:
			i++;
			if (ch == '\n')
				c->state = CH_SIZE;
			else if (ch == '\r')
				c->state = CH_DATA_LF;
			else
				goto bad;
			break;
		case CH_DATA_LF:
			i++;
			if (ch != '\n')
				goto bad;
			c->state = CH_SIZE;
			break;
		case CH_TRAILER_START:
			i++;
			if (ch == '\n') {
				c->state = CH_DONE;
				*used = i;
				return HTTP_CHUNK_DONE;
			}
			if (ch == '\r') {
				c->state = CH_TRAILER_CR;
				break;
			}
			c->state = CH_TRAILER;
			if (++c->trailer > max_line || (ch < 0x20 && ch != '\t'))
				goto bad;
			break;
		case CH_TRAILER_CR:
			i++;
			if (ch != '\n')
				goto bad;
			c->state = CH_DONE;
			*used = i;
			return HTTP_CHUNK_DONE;
		case CH_TRAILER:
			/* Trailer fields are not used: skipped, bounded. */
			i++;
			if (ch == '\n') {
				c->state = CH_TRAILER_START;
				break;
			}
			if (++c->trailer > max_line || (ch < 0x20 && ch != '\t' && ch != '\r'))
				goto bad;
			break;
		case CH_DONE:
		default:
			*used = i;
			return HTTP_CHUNK_DONE;
		}
	}
	*used = i;
	return HTTP_CHUNK_MORE;
bad:
	*used = i;
	return HTTP_CHUNK_ERROR;
}

const char *
http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}
