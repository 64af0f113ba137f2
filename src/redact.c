/*
 * redact.c: hide secrets in settings and in messages that quote them.
 *
 * The knowledge of what is secret comes from the libraries that take the
 * settings wherever they publish it: libpq flags its password-like options
 * in its option table (dispchar "*"), librdkafka flags its properties
 * _RK_SENSITIVE.  Only collectord's own keys follow a naming rule.
 */
#include "redact.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

/*
 * librdkafka's properties flagged _RK_SENSITIVE in src/rdkafka_conf.c
 * (github.com/confluentinc/librdkafka), which it redacts from its own
 * configuration dumps.  First as of v2.0.2, the version Debian bookworm
 * ships; then those flagged since (all in v2.11.0), so that a newer
 * library linked in keeps them hidden too.  Aliases of these names end in
 * ".secret" or ".password" and are caught by redact_kafka_key's suffix
 * rule.
 */
static const char *const kafka_sensitive[] = {
    /* v2.0.2 */
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl_key",
    "ssl.ca.pem",
    "ssl.keystore.password",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    /* since v2.11.0 */
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
};

/* A growing string; on allocation failure `s` goes NULL and stays so. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void
sb_add(struct sbuf *b, const char *p, size_t n)
{
	char *grown;

	if (b->s == NULL)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap * 2 > b->len + n + 1 ? b->cap * 2 : b->len + n + 1;

		if ((grown = realloc(b->s, cap)) == NULL) {
			free(b->s);
			b->s = NULL;
			return;
		}
		b->s = grown;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static bool
sb_init(struct sbuf *b)
{
	b->len = 0;
	b->cap = 64;
	if ((b->s = malloc(b->cap)) == NULL)
		return false;
	b->s[0] = '\0';
	return true;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

bool
redact_kafka_key(const char *key)
{
	if (key == NULL)
		return false;
	for (size_t i = 0; i < sizeof(kafka_sensitive) / sizeof(kafka_sensitive[0]); i++)
		if (strcasecmp(key, kafka_sensitive[i]) == 0)
			return true;
	return ends_with(key, ".password") || ends_with(key, ".secret");
}

char *
redact_kafka_value(const char *key, const char *value)
{
	if (value == NULL)
		value = "";
	if (redact_kafka_key(key))
		return strdup(*value != '\0' ? REDACT_SET : "");
	if (key != NULL && ends_with(key, ".url"))
		return redact_url(value);
	return strdup(value);
}

/* libpq's key=value syntax: single quotes around a value that is empty
 * or holds white space, a quote or a backslash; \ escapes ' and \. */
static void
add_conninfo_value(struct sbuf *b, const char *v)
{
	bool quote = *v == '\0';

	for (const char *p = v; *p != '\0' && !quote; p++)
		quote = isspace((unsigned char)*p) || *p == '\'' || *p == '\\';
	if (!quote) {
		sb_str(b, v);
		return;
	}
	sb_add(b, "'", 1);
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '\'' || *p == '\\')
			sb_add(b, "\\", 1);
		sb_add(b, p, 1);
	}
	sb_add(b, "'", 1);
}

char *
redact_conninfo(const char *conninfo)
{
	PQconninfoOption *opts;
	char *msg = NULL;
	struct sbuf b;

	opts = PQconninfoParse(conninfo != NULL ? conninfo : "", &msg);
	if (opts == NULL) {
		/* msg NULL: libpq ran out of memory, which we cannot tell from
		 * a refusal; either way the text is not shown */
		PQfreemem(msg);
		return strdup(REDACT_UNPARSABLE);
	}
	if (!sb_init(&b)) {
		PQconninfoFree(opts);
		return NULL;
	}
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		bool secret = o->dispchar != NULL && strchr(o->dispchar, '*') != NULL;

		if (o->val == NULL)
			continue;
		if (b.len > 0)
			sb_add(&b, " ", 1);
		sb_str(&b, o->keyword);
		sb_add(&b, "=", 1);
		add_conninfo_value(&b, secret && *o->val != '\0' ? REDACT_SET : o->val);
	}
	PQconninfoFree(opts);
	return b.s;
}

char *
redact_url(const char *url)
{
	const char *auth, *at = NULL, *colon;
	size_t alen;
	struct sbuf b;

	if (url == NULL)
		url = "";
	auth = strstr(url, "://");
	auth = auth != NULL ? auth + 3 : url;
	alen = strcspn(auth, "/?#");
	for (const char *p = auth; p < auth + alen; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return strdup(url);
	colon = memchr(auth, ':', (size_t)(at - auth));
	if (colon == NULL || colon + 1 == at)
		return strdup(url);
	if (!sb_init(&b))
		return NULL;
	sb_add(&b, url, (size_t)(colon + 1 - url));
	sb_str(&b, REDACT_SET);
	sb_str(&b, at);
	return b.s;
}

char *
redact_config_value(const char *section, const char *key, const char *value)
{
	if (value == NULL)
		value = "";
	if (section == NULL || key == NULL)
		return strdup(value);
	if ((strcmp(section, "pg") == 0 || strcmp(section, "readback") == 0) &&
	    strcmp(key, "conninfo") == 0)
		return redact_conninfo(value);
	if (strstr(key, "password") != NULL || strstr(key, "secret") != NULL ||
	    (strcmp(section, "server") == 0 && strcmp(key, "api_keys") == 0))
		return strdup(*value != '\0' ? REDACT_SET : "");
	if (strcmp(key, "url") == 0 || strcmp(key, "endpoint") == 0 || ends_with(key, "_url"))
		return redact_url(value);
	return strdup(value);
}

/* True for text that may stay quoted in a libpq message: an option name
 * from libpq's own table, or the "=" or "]" libpq says it expected. */
static bool
harmless(const char *p, size_t n, const PQconninfoOption *names)
{
	if (n == 1 && (*p == '=' || *p == ']'))
		return true;
	for (const PQconninfoOption *o = names; o != NULL && o->keyword != NULL; o++)
		if (strlen(o->keyword) == n && memcmp(o->keyword, p, n) == 0)
			return true;
	return false;
}

char *
redact_pq_message(const char *msg)
{
	/* the option table without defaults (PQconndefaults would look up
	 * the user and read service files); NULL: no name is kept */
	PQconninfoOption *names = PQconninfoParse("", NULL);
	const char *p, *q;
	struct sbuf b;

	if (!sb_init(&b)) {
		PQconninfoFree(names);
		return NULL;
	}
	for (p = msg != NULL ? msg : ""; (q = strchr(p, '"')) != NULL; p = q + 1) {
		const char *end = strchr(q + 1, '"');

		/* an unpaired quote: whatever follows it may be quoted text */
		if (end == NULL) {
			sb_add(&b, p, (size_t)(q + 1 - p));
			sb_str(&b, "...");
			p = q + strlen(q);
			break;
		}
		sb_add(&b, p, (size_t)(q + 1 - p));
		if (harmless(q + 1, (size_t)(end - q - 1), names))
			sb_add(&b, q + 1, (size_t)(end - q - 1));
		else
			sb_str(&b, "...");
		sb_add(&b, "\"", 1);
		q = end;
	}
	sb_str(&b, p);
	PQconninfoFree(names);
	return b.s;
}
