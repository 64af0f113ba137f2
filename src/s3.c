/*
 * s3.c: the few S3 calls collectord needs, on curl_loop.
 *
 * libcurl signs (CURLOPT_AWS_SIGV4); we only supply what it leaves out:
 * x-amz-content-sha256 (the payload's SHA-256, which 7.88 does not add) and
 * a path already in SigV4's canonical encoding, since libcurl signs the path
 * exactly as it is sent.  Object key naming lives here too, as pure code.
 */
#include "s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "curl_loop.h"
#include "redact.h"

/* SHA-256 of the empty payload, for HEAD and GET. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* S3's own limit on key length. */
#define S3_MAX_KEY 1024

enum s3_op { S3_OP_PUT, S3_OP_HEAD, S3_OP_GET };

/* One request in flight; owned by the s3 until its completion. */
struct s3_req {
	struct s3 *s3;
	enum s3_op op;
	s3_done_cb done;
	s3_get_cb get;
	s3_cond_cb cond; /* a conditional PUT's or an object HEAD's */
	void *arg;
	char *what;		 /* "PUT <key>", for messages */
	char etag[S3_ETAG_SIZE]; /* the answer's ETag header, quotes kept */
	int64_t last_offset;	 /* its x-amz-meta-last-offset, -1: none */
	LIST_ENTRY(s3_req) link;
};

struct s3 {
	struct curl_loop *loop;
	char *endpoint, *bucket, *access_key, *secret_key;
	char sigv4[128]; /* "aws:amz:<region>:s3" */
	bool path_style;
	long timeout_ms;
	LIST_HEAD(, s3_req) reqs;
};

/* ---------------------------------------------------------------- pure */

static bool
key_part_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/')
			return false;
	return true;
}

/* "YYYY-MM-DD" of MS since the epoch, UTC.  False outside years 0-9999. */
static bool
utc_date(char out[16], int64_t ms)
{
	time_t secs = (time_t)(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
	struct tm tm;

	if (gmtime_r(&secs, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return false;
	return strftime(out, 16, "%Y-%m-%d", &tm) == 10;
}

int
s3_key_dead_letter(char *buf, size_t size, int64_t received_ms, const char *correlation_id)
{
	char date[16];
	int n;

	if (!key_part_ok(correlation_id) || !utc_date(date, received_ms))
		return -1;
	n = snprintf(buf, size, "dead-letter/date=%s/%s.json", date, correlation_id);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* A key prefix: empty, or parts that key_part_ok() takes, each ending in '/'. */
static bool
prefix_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || (*s == '/' && s[1] == '/'))
			return false;
	return true;
}

int
s3_key_dead_letters(
    char *buf, size_t size, const char *prefix, int64_t received_ms, const char *batch_id)
{
	char date[16];
	int n;

	if (!prefix_ok(prefix) || !key_part_ok(batch_id) || !utc_date(date, received_ms))
		return -1;
	n = snprintf(buf, size, "%sdead-letter/date=%s/%s.jsonl", prefix, date, batch_id);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
s3_key_enriched(char *buf, size_t size, const char *prefix, int64_t first_ms_for_date,
    const char *topic, int32_t partition, int64_t first_offset)
{
	char date[16];
	int n;

	if (!prefix_ok(prefix) || !key_part_ok(topic) || partition < 0 || first_offset < 0 ||
	    !utc_date(date, first_ms_for_date))
		return -1;
	n = snprintf(buf, size, "%senriched/date=%s/%s+%d+%lld.jsonl", prefix, date, topic,
	    (int)partition, (long long)first_offset);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
s3_key_archive(char *buf, size_t size, int64_t first_ms_for_date, const char *topic,
    int32_t partition, int64_t first_offset)
{
	char date[16];
	int n;

	if (!key_part_ok(topic) || partition < 0 || first_offset < 0 ||
	    !utc_date(date, first_ms_for_date))
		return -1;
	n = snprintf(buf, size, "archive/%s/date=%s/%s+%d+%010lld.jsonl", topic, date, topic,
	    (int)partition, (long long)first_offset);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
s3_key_kafka_refused(char *buf, size_t size, const char *prefix, int64_t ms_for_date,
    const char *topic, int32_t partition, int64_t offset)
{
	char date[16];
	int n;

	if (!prefix_ok(prefix) || !key_part_ok(topic) || partition < 0 || offset < 0 ||
	    !utc_date(date, ms_for_date))
		return -1;
	n = snprintf(buf, size, "%sdead-letter/kafka-refused/date=%s/%s+%d+%lld.json", prefix, date,
	    topic, (int)partition, (long long)offset);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
s3_uri_encode(char *buf, size_t size, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && keep_slash)) {
			if (n + 1 >= size)
				return -1;
			buf[n++] = (char)c;
		} else {
			if (n + 3 >= size)
				return -1;
			buf[n++] = '%';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 0xf];
		}
	}
	if (n >= size)
		return -1;
	buf[n] = '\0';
	return 0;
}

int
s3_url(char *buf, size_t size, const char *endpoint, const char *bucket, bool path_style,
    const char *key)
{
	const char *host = strstr(endpoint, "://");
	size_t elen = strlen(endpoint), n;
	int r;

	if (host == NULL || host == endpoint || host[3] == '\0')
		return -1;
	host += 3;
	while (elen > 0 && endpoint[elen - 1] == '/')
		elen--;
	if (path_style) {
		r = snprintf(buf, size, "%.*s/", (int)elen, endpoint);
		if (r < 0 || (size_t)r >= size)
			return -1;
		n = (size_t)r;
		if (s3_uri_encode(buf + n, size - n, bucket, false) == -1)
			return -1;
		n += strlen(buf + n);
	} else {
		r = snprintf(buf, size, "%.*s%s.%.*s", (int)(host - endpoint), endpoint, bucket,
		    (int)(elen - (size_t)(host - endpoint)), host);
		if (r < 0 || (size_t)r >= size)
			return -1;
		n = (size_t)r;
	}
	if (key == NULL)
		return 0;
	if (n + 1 >= size)
		return -1;
	buf[n++] = '/';
	return s3_uri_encode(buf + n, size - n, key, true);
}

void
s3_sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		out[0] = '\0';
		return;
	}
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[64] = '\0';
}

/* Copy the text between <TAG> and </TAG> in BODY into OUT. */
static bool
xml_text(const char *body, size_t len, const char *tag, char *out, size_t size)
{
	char open[32], close[32];
	const char *p, *q, *end = body + len;
	size_t olen, clen, n;

	olen = (size_t)snprintf(open, sizeof(open), "<%s>", tag);
	clen = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
	for (p = body; p + olen <= end; p++)
		if (memcmp(p, open, olen) == 0)
			break;
	if (p + olen > end)
		return false;
	p += olen;
	for (q = p; q + clen <= end; q++)
		if (memcmp(q, close, clen) == 0)
			break;
	if (q + clen > end)
		return false;
	if (out != NULL && size > 0) {
		n = (size_t)(q - p) < size - 1 ? (size_t)(q - p) : size - 1;
		memcpy(out, p, n);
		out[n] = '\0';
	}
	return true;
}

bool
s3_error_parse(const char *body, size_t len, char *code, size_t codesize, char *msg, size_t msgsize)
{
	if (body == NULL || !xml_text(body, len, "Code", code, codesize))
		return false;
	if (msg != NULL && msgsize > 0 && !xml_text(body, len, "Message", msg, msgsize))
		msg[0] = '\0';
	return true;
}

/* ---------------------------------------------------------------- client */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

struct s3 *
s3_new(struct curl_loop *loop, const struct s3_config *cfg, char *err, size_t errlen)
{
	const char *region, *host;
	struct s3 *s3;

	if (cfg->endpoint == NULL || strstr(cfg->endpoint, "://") == NULL || cfg->bucket == NULL ||
	    *cfg->bucket == '\0' || cfg->access_key == NULL || cfg->secret_key == NULL) {
		snprintf(err, errlen,
		    "s3: endpoint (with scheme), bucket, "
		    "access key and secret key are required");
		return NULL;
	}
	host = strstr(cfg->endpoint, "://");
	if (host == cfg->endpoint || host[3] == '\0' || host[3] == '/') {
		char *shown = redact_url(cfg->endpoint);

		snprintf(err, errlen, "s3: bad endpoint %s", shown ? shown : "(not shown)");
		free(shown);
		return NULL;
	}
	region = cfg->region != NULL && *cfg->region != '\0' ? cfg->region : "us-east-1";
	if (strchr(region, ':') != NULL || strlen(region) > 64) {
		snprintf(err, errlen, "s3: bad region %s", region);
		return NULL;
	}
	if ((s3 = calloc(1, sizeof(*s3))) == NULL) {
		snprintf(err, errlen, "s3: out of memory");
		return NULL;
	}
	s3->loop = loop;
	s3->endpoint = dup_or_null(cfg->endpoint);
	s3->bucket = dup_or_null(cfg->bucket);
	s3->access_key = dup_or_null(cfg->access_key);
	s3->secret_key = dup_or_null(cfg->secret_key);
	if (s3->endpoint == NULL || s3->bucket == NULL || s3->access_key == NULL ||
	    s3->secret_key == NULL) {
		s3_free(s3);
		snprintf(err, errlen, "s3: out of memory");
		return NULL;
	}
	snprintf(s3->sigv4, sizeof(s3->sigv4), "aws:amz:%s:s3", region);
	s3->path_style = cfg->path_style;
	s3->timeout_ms = cfg->timeout_ms;
	return s3;
}

static void s3_curl_done(
    void *arg, CURLcode rc, long status, const char *body, size_t len, const char *errbuf);

void
s3_free(struct s3 *s3)
{
	if (s3 == NULL)
		return;
	while (!LIST_EMPTY(&s3->reqs)) {
		struct s3_req *req = LIST_FIRST(&s3->reqs);

		LIST_REMOVE(req, link);
		curl_loop_cancel(s3->loop, s3_curl_done, req);
		free(req->what);
		free(req);
	}
	free(s3->endpoint);
	free(s3->bucket);
	free(s3->access_key);
	if (s3->secret_key != NULL)
		memset(s3->secret_key, 0, strlen(s3->secret_key));
	free(s3->secret_key);
	free(s3);
}

static void
s3_curl_done(void *arg, CURLcode rc, long status, const char *body, size_t len, const char *errbuf)
{
	struct s3_req *req = arg;
	s3_done_cb done = req->done;
	s3_get_cb get = req->get;
	s3_cond_cb cond = req->cond;
	void *cbarg = req->arg;
	char err[1024], code[128], msg[512], etag[S3_ETAG_SIZE];
	int64_t last = req->last_offset;
	bool ok = rc == CURLE_OK && status >= 200 && status <= 299;

	err[0] = '\0';
	if (rc != CURLE_OK)
		snprintf(err, sizeof(err), "%s: %s", req->what, errbuf);
	else if (!ok && s3_error_parse(body, len, code, sizeof(code), msg, sizeof(msg)))
		snprintf(err, sizeof(err), "%s: HTTP %ld %s: %s", req->what, status, code, msg);
	else if (!ok)
		snprintf(err, sizeof(err), "%s: HTTP %ld", req->what, status);
	memcpy(etag, req->etag, sizeof(etag));
	LIST_REMOVE(req, link);
	free(req->what);
	free(req);
	/* Last: the callback may free the s3. */
	if (cond != NULL)
		cond(cbarg, rc == CURLE_OK ? status : 0, ok ? NULL : err, ok ? etag : "",
		    ok ? last : -1);
	else if (get != NULL)
		get(cbarg, ok, ok ? NULL : err, ok ? body : NULL, ok ? len : 0);
	else
		done(cbarg, ok, ok ? NULL : err);
}

/* LEN bytes of S are a header value to repeat: no control bytes. */
static bool
header_value_ok_n(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool
header_value_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return n > 0 && n <= max;
}

/* libcurl's header callback: keep the ETag and the last offset. */
static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
	static const char last[] = "x-amz-meta-last-offset:";
	struct s3_req *req = arg;
	size_t len = size * n;

	if (len > sizeof(last) - 1 && len < 64 && strncasecmp(buf, last, sizeof(last) - 1) == 0) {
		char v[64], *end;
		long long off;

		memcpy(v, buf + sizeof(last) - 1, len - (sizeof(last) - 1));
		v[len - (sizeof(last) - 1)] = '\0';
		off = strtoll(v, &end, 10);
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		if (end != v && *end == '\0' && off >= 0)
			req->last_offset = off;
	}
	if (len > 5 && strncasecmp(buf, "etag:", 5) == 0) {
		const char *v = buf + 5;
		size_t vl = len - 5;

		while (vl > 0 && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(req->etag) && header_value_ok_n(v, vl)) {
			memcpy(req->etag, v, vl);
			req->etag[vl] = '\0';
		}
	}
	return len;
}

/*
 * Build and start one request.  KEY NULL addresses the bucket.  BODY is
 * copied by libcurl (COPYPOSTFIELDS), which also makes libcurl hash the
 * same bytes we declare in x-amz-content-sha256.
 */
static int
s3_request(struct s3 *s3, enum s3_op op, const char *key, const void *body, size_t len,
    const char *content_type, const char *const *extra, s3_done_cb done, s3_get_cb get,
    s3_cond_cb cond, void *arg)
{
	struct curl_slist *h = NULL, *t;
	struct s3_req *req = NULL;
	char hdr[256], sha[65], *url = NULL;
	size_t urlsize;
	CURL *easy = NULL;
	const char *verb = op == S3_OP_PUT ? "PUT" : op == S3_OP_GET ? "GET" : "HEAD";

	if (key != NULL && (*key == '\0' || strlen(key) > S3_MAX_KEY))
		return -1;
	urlsize =
	    strlen(s3->endpoint) + 3 * strlen(s3->bucket) + (key != NULL ? 3 * strlen(key) : 0) + 8;
	if ((url = malloc(urlsize)) == NULL ||
	    s3_url(url, urlsize, s3->endpoint, s3->bucket, s3->path_style, key) == -1)
		goto fail;
	if ((req = calloc(1, sizeof(*req))) == NULL)
		goto fail;
	req->s3 = s3;
	req->op = op;
	req->done = done;
	req->get = get;
	req->cond = cond;
	req->arg = arg;
	req->last_offset = -1;
	if (key != NULL) {
		size_t wlen = strlen(verb) + strlen(key) + 2;

		if ((req->what = malloc(wlen)) != NULL)
			snprintf(req->what, wlen, "%s %s", verb, key);
	} else {
		size_t wlen = strlen(s3->bucket) + 16;

		if ((req->what = malloc(wlen)) != NULL)
			snprintf(req->what, wlen, "HEAD bucket %s", s3->bucket);
	}
	if (req->what == NULL)
		goto fail;
	if ((easy = curl_loop_easy_new(s3->timeout_ms)) == NULL)
		goto fail;
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "collectord");
	curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, s3->sigv4);
	curl_easy_setopt(easy, CURLOPT_USERNAME, s3->access_key);
	curl_easy_setopt(easy, CURLOPT_PASSWORD, s3->secret_key);
	if (op == S3_OP_PUT) {
		s3_sha256_hex(body, len, sha);
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "PUT");
		/* Size first, or libcurl would strlen() the body. */
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		if (curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, len > 0 ? body : "") != CURLE_OK)
			goto fail;
		if (content_type == NULL)
			content_type = "application/octet-stream";
		if (!header_value_ok(content_type, sizeof(hdr) - 16))
			goto fail;
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", content_type);
		if ((t = curl_slist_append(h, hdr)) == NULL)
			goto fail;
		h = t;
		/* No "Expect:" to suppress 100-continue: libcurl 7.88 would
		 * sign that header although it never sends it. */
	} else {
		snprintf(sha, sizeof(sha), "%s", S3_EMPTY_SHA256);
		if (op == S3_OP_HEAD)
			curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	}
	snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", sha);
	if ((t = curl_slist_append(h, hdr)) == NULL)
		goto fail;
	h = t;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (!header_value_ok(extra[i], sizeof(hdr) - 1))
			goto fail;
		if ((t = curl_slist_append(h, extra[i])) == NULL)
			goto fail;
		h = t;
	}
	if (cond != NULL) {
		curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(easy, CURLOPT_HEADERDATA, req);
	}
	free(url);
	url = NULL;
	/* EASY and H belong to the loop from here, whatever it returns. */
	if (curl_loop_start(s3->loop, easy, h, s3_curl_done, req) == -1) {
		free(req->what);
		free(req);
		return -1;
	}
	LIST_INSERT_HEAD(&s3->reqs, req, link);
	return 0;
fail:
	curl_easy_cleanup(easy);
	curl_slist_free_all(h);
	if (req != NULL)
		free(req->what);
	free(req);
	free(url);
	return -1;
}

int
s3_put(struct s3 *s3, const char *key, const void *body, size_t len, const char *content_type,
    s3_done_cb cb, void *arg)
{
	if (key == NULL)
		return -1;
	return s3_request(s3, S3_OP_PUT, key, body, len, content_type, NULL, cb, NULL, NULL, arg);
}

int
s3_put_if(struct s3 *s3, const char *key, const void *body, size_t len, const char *content_type,
    const char *if_match, int64_t last_offset, s3_cond_cb cb, void *arg)
{
	char cond[S3_ETAG_SIZE + 16], last[64];
	const char *extra[3] = {cond, last, NULL};

	if (key == NULL || last_offset < 0 ||
	    (if_match != NULL && strlen(if_match) >= S3_ETAG_SIZE))
		return -1;
	if (if_match != NULL)
		snprintf(cond, sizeof(cond), "If-Match: %s", if_match);
	else
		snprintf(cond, sizeof(cond), "If-None-Match: *");
	/* signed with the rest: libcurl's SigV4 signs every header it sends */
	snprintf(last, sizeof(last), "x-amz-meta-last-offset: %lld", (long long)last_offset);
	return s3_request(s3, S3_OP_PUT, key, body, len, content_type, extra, NULL, NULL, cb, arg);
}

int
s3_head(struct s3 *s3, const char *key, s3_cond_cb cb, void *arg)
{
	if (key == NULL)
		return -1;
	return s3_request(s3, S3_OP_HEAD, key, NULL, 0, NULL, NULL, NULL, NULL, cb, arg);
}

int
s3_check(struct s3 *s3, s3_done_cb cb, void *arg)
{
	return s3_request(s3, S3_OP_HEAD, NULL, NULL, 0, NULL, NULL, cb, NULL, NULL, arg);
}

int
s3_get(struct s3 *s3, const char *key, s3_get_cb cb, void *arg)
{
	if (key == NULL)
		return -1;
	return s3_request(s3, S3_OP_GET, key, NULL, 0, NULL, NULL, NULL, cb, NULL, arg);
}
