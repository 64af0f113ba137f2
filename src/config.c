/* config.c: INI parsing into struct config, driven by one table of keys. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum key_type { K_STR, K_INT };

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;
	int64_t min, max; /* K_INT only */
};

#define S(sec, name, field, def)                                                                   \
	{                                                                                          \
		sec, name, K_STR, offsetof(struct config, field), def, 0, 0                        \
	}
#define I(sec, name, field, def, lo, hi)                                                           \
	{                                                                                          \
		sec, name, K_INT, offsetof(struct config, field), def, lo, hi                      \
	}

/* Every key, its default and its range.  etc/collectord.conf.sample
 * documents each one; t/config.c checks that it does. */
static const struct key keys[] = {
    S("server", "listen", listen_addr, "127.0.0.1"),
    I("server", "port", listen_port, "8000", 0, 65535),
    S("server", "roles", roles, "collect,enrich,archive"),
    S("server", "api_keys", api_keys, ""),
    I("server", "max_body_bytes", max_body_bytes, "1048576", 1, INT64_C(1) << 32),
    I("server", "max_decompressed_bytes", max_decompressed_bytes, "8388608", 1, INT64_C(1) << 32),
    I("server", "max_events", max_events, "1000", 1, 1000000),
    I("server", "request_timeout_ms", request_timeout_ms, "30000", 100, 3600000),
    I("server", "max_inflight_batches", max_inflight_batches, "1000", 1, 1000000),
    I("server", "so_reuseport", so_reuseport_int, "0", 0, 1),
    I("server", "max_clients", max_clients, "1024", 1, 1000000),
    I("server", "read_timeout_ms", read_timeout_ms, "30000", 100, 3600000),
    I("server", "idle_timeout_ms", idle_timeout_ms, "60000", 100, 3600000),
    I("server", "max_body_memory", max_body_memory, "67108864", 1, INT64_C(1) << 40),
    I("server", "max_json_nodes", max_json_nodes, "200000", 1, 100000000),
    I("server", "max_dead_letter_bytes", max_dead_letter_bytes, "1048576", 1024, INT64_C(1) << 32),
    S("server", "log_level", log_level, "info"),
    S("server", "log_file", log_file, ""),
    S("server", "default_family", default_family, ""),
    S("server", "families", serve_families, ""),
    S("topics", "raw", topic_raw, ""),
    S("topics", "dead_letter", topic_dead_letter, ""),
    S("registry", "url", registry_url, "http://127.0.0.1:8085"),
    S("registry", "subject", registry_subject, ""),
    S("registry", "user", registry_user, ""),
    S("registry", "password", registry_password, ""),
    S("s3", "endpoint", s3_endpoint, "http://127.0.0.1:9000"),
    S("s3", "region", s3_region, "us-east-1"),
    S("s3", "bucket", s3_bucket, "events"),
    S("s3", "access_key", s3_access_key, "minioadmin"),
    S("s3", "secret_key", s3_secret_key, "minioadmin"),
    I("s3", "timeout_ms", s3_timeout_ms, "10000", 100, 600000),
    I("s3", "max_connections", s3_max_connections, "16", 1, 1024),
    S("pg", "conninfo", pg_conninfo, "host=127.0.0.1 port=5432 user=postgres dbname=holded"),
    S("pg", "sql_dir", pg_sql_dir, DATADIR "/collectord/sql"),
    S("pg", "insert", pg_insert, "copy"),
    S("readback", "conninfo", readback_conninfo, ""),
    I("readback", "connections", readback_connections, "2", 1, 16),
    I("readback", "statement_timeout_ms", readback_statement_timeout_ms, "2000", 10, 600000),
    I("readback", "max_queries", readback_max_queries, "64", 1, 100000),
    S("enrich", "group_id", enrich_group_id, "collectord-enrich"),
    I("enrich", "flush_events", enrich_flush_events, "500", 1, 1000000),
    I("enrich", "flush_ms", enrich_flush_ms, "1000", 0, 3600000),
    I("enrich", "max_pending", enrich_max_pending, "20000", 1, 10000000),
    I("enrich", "retry_max_ms", enrich_retry_max_ms, "10000", 10, 3600000),
    S("archive", "group_id", archive_group_id, ""),
    S("archive", "topics_file", archive_topics_file, DATADIR "/collectord/topics/main-topics"),
    I("archive", "flush_events", archive_flush_events, "1000", 1, 1000000),
    I("archive", "flush_ms", archive_flush_ms, "5000", 0, 3600000),
    I("archive", "max_pending", archive_max_pending, "20000", 1, 10000000),
    I("archive", "retry_max_ms", archive_retry_max_ms, "10000", 10, 3600000),
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* The keys of a [family.NAME] section; offsets into struct config_family. */
#define F(name, field, type, def, lo, hi)                                                          \
	{                                                                                          \
		"family", name, type, offsetof(struct config_family, field), def, lo, hi           \
	}
static const struct key family_keys[] = {
    F("raw_topic", raw_topic, K_STR, "", 0, 0),
    F("invalid_topic", invalid_topic, K_STR, "", 0, 0),
    F("subject", subject, K_STR, "", 0, 0),
    F("sql_dir", sql_dir, K_STR, "", 0, 0),
    F("table", table, K_STR, "", 0, 0),
    F("enriched_topic", enriched_topic, K_STR, "", 0, 0),
    F("enriched_subject", enriched_subject, K_STR, "", 0, 0),
    F("daily_topic", daily_topic, K_STR, "", 0, 0),
    F("port", port, K_INT, "0", 0, 65535),
};
#define NFAMILY_KEYS (sizeof(family_keys) / sizeof(family_keys[0]))
#define FAMILY_NAME_MAX 32

/* librdkafka defaults that differ from its own; [kafka] overrides them. */
static const char *const kafka_defaults[][2] = {
    {"bootstrap.servers", "127.0.0.1:9092"},
};

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int
kafka_set(struct config *cfg, const char *key, const char *value)
{
	struct config_kv *kv;
	char *v;

	for (size_t i = 0; i < cfg->nkafka; i++) {
		if (strcmp(cfg->kafka[i].key, key) == 0) {
			if ((v = strdup(value)) == NULL)
				return -1;
			free(cfg->kafka[i].value);
			cfg->kafka[i].value = v;
			return 0;
		}
	}
	kv = realloc(cfg->kafka, (cfg->nkafka + 1) * sizeof(*kv));
	if (kv == NULL)
		return -1;
	cfg->kafka = kv;
	kv[cfg->nkafka].key = strdup(key);
	kv[cfg->nkafka].value = strdup(value);
	if (kv[cfg->nkafka].key == NULL || kv[cfg->nkafka].value == NULL) {
		free(kv[cfg->nkafka].key);
		free(kv[cfg->nkafka].value);
		return -1;
	}
	cfg->nkafka++;
	return 0;
}

/* Store VALUE into the field of K in OBJ (the config, or one of its
 * families); on a bad value say why in ERR. */
static int
key_set(void *obj, const struct key *k, const char *value, char *err, size_t errlen)
{
	char *p = (char *)obj + k->offset;
	char *end, *copy;
	long long n;

	switch (k->type) {
	case K_STR:
		if ((copy = strdup(value)) == NULL) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		free(*(char **)p);
		*(char **)p = copy;
		return 0;
	case K_INT:
		errno = 0;
		n = strtoll(value, &end, 10);
		if (*value == '\0' || *end != '\0' || errno != 0) {
			seterr(err, errlen, "[%s] %s: \"%s\" is not an integer", k->section,
			    k->name, value);
			return -1;
		}
		if (n < k->min || n > k->max) {
			seterr(err, errlen, "[%s] %s: %lld is out of range %lld..%lld", k->section,
			    k->name, n, (long long)k->min, (long long)k->max);
			return -1;
		}
		*(int64_t *)p = n;
		return 0;
	}
	return -1;
}

static const struct key *
key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* A family name: 1 to FAMILY_NAME_MAX of a-z, 0-9 and '_'. */
static bool
family_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > FAMILY_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
			name[i] == '_'))
			return false;
	return true;
}

/* The section of family NAME, made (with its defaults) when new; NULL when
 * out of memory. */
static struct config_family *
family_get(struct config *cfg, const char *name, char *err, size_t errlen)
{
	struct config_family *f;

	for (size_t i = 0; i < cfg->nfamilies; i++)
		if (strcmp(cfg->families[i].name, name) == 0)
			return &cfg->families[i];
	f = realloc(cfg->families, (cfg->nfamilies + 1) * sizeof(*f));
	if (f == NULL)
		return NULL;
	cfg->families = f;
	f = &cfg->families[cfg->nfamilies];
	memset(f, 0, sizeof(*f));
	if ((f->name = strdup(name)) == NULL)
		return NULL;
	cfg->nfamilies++;
	for (size_t i = 0; i < NFAMILY_KEYS; i++)
		if (key_set(f, &family_keys[i], family_keys[i].def, err, errlen) == -1)
			return NULL;
	return f;
}

static const struct key *
family_key_find(const char *name)
{
	for (size_t i = 0; i < NFAMILY_KEYS; i++)
		if (strcmp(family_keys[i].name, name) == 0)
			return &family_keys[i];
	return NULL;
}

static bool
section_known(const char *section)
{
	if (strcmp(section, "kafka") == 0)
		return true;
	if (strncmp(section, "family.", 7) == 0)
		return family_name_ok(section + 7);
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return true;
	return false;
}

extern char **environ;

/* The [family.NAME] key that ends the variable name [REST, EQ) after a
 * '_' and leaves a name before it: the longest one, so that
 * ..._ENRICHED_SUBJECT is enriched_subject, not subject of a family
 * "..._enriched".  NULL when none. */
static const struct key *
family_env_key(const char *rest, const char *eq)
{
	const struct key *best = NULL;

	for (size_t i = 0; i < NFAMILY_KEYS; i++) {
		const struct key *k = &family_keys[i];
		size_t kl = strlen(k->name);
		bool match = true;

		if ((size_t)(eq - rest) < kl + 2 || eq[-(long)kl - 1] != '_')
			continue;
		for (size_t j = 0; j < kl; j++)
			if (eq[-(long)kl + (long)j] != toupper((unsigned char)k->name[j]))
				match = false;
		if (match && (best == NULL || kl > strlen(best->name)))
			best = k;
	}
	return best;
}

/* COLLECTORD_FAMILY_<NAME>_<KEY>, upper case, for [family.NAME] KEY. */
static int
apply_family_env(struct config *cfg, char *err, size_t errlen)
{
	static const char prefix[] = "COLLECTORD_FAMILY_";

	for (char **e = environ; *e != NULL; e++) {
		const char *eq = strchr(*e, '='), *rest = *e + sizeof(prefix) - 1;
		const struct key *k;
		char name[FAMILY_NAME_MAX + 1];
		struct config_family *f;
		size_t nl;

		if (strncmp(*e, prefix, sizeof(prefix) - 1) != 0 || eq == NULL ||
		    (k = family_env_key(rest, eq)) == NULL)
			continue;
		if ((nl = (size_t)(eq - rest) - strlen(k->name) - 1) > FAMILY_NAME_MAX)
			continue;
		for (size_t j = 0; j < nl; j++)
			name[j] = (char)tolower((unsigned char)rest[j]);
		name[nl] = '\0';
		if (!family_name_ok(name))
			continue;
		if ((f = family_get(cfg, name, err, errlen)) == NULL) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		if (key_set(f, k, eq + 1, err, errlen) == -1) {
			size_t used = strlen(err);

			snprintf(err + used, errlen - used, " (from %.*s)", (int)(eq - *e), *e);
			return -1;
		}
	}
	return 0;
}

/* COLLECTORD_KAFKA_<KEY> for the librdkafka property KEY, upper case with
 * '_' for '.' (COLLECTORD_KAFKA_QUEUE_BUFFERING_MAX_MESSAGES is
 * queue.buffering.max.messages: no property has a '_' of its own), so that
 * a container or a unit's environment sets any of them, secrets included.
 * COLLECTORD_KAFKA_BROKERS stays the short name of bootstrap.servers. */
static int
apply_kafka_env(struct config *cfg)
{
	static const char prefix[] = "COLLECTORD_KAFKA_";

	for (char **e = environ; *e != NULL; e++) {
		const char *eq = strchr(*e, '='), *rest = *e + sizeof(prefix) - 1;
		char key[128];
		size_t n;

		if (strncmp(*e, prefix, sizeof(prefix) - 1) != 0 || eq == NULL || eq == rest ||
		    (n = (size_t)(eq - rest)) >= sizeof(key) || strncmp(rest, "BROKERS=", 8) == 0)
			continue;
		for (size_t j = 0; j < n; j++)
			key[j] = rest[j] == '_' ? '.' : (char)tolower((unsigned char)rest[j]);
		key[n] = '\0';
		if (kafka_set(cfg, key, eq + 1) == -1)
			return -1;
	}
	return 0;
}

/* COLLECTORD_<SECTION>_<KEY>, upper case, for every non-kafka key. */
static int
apply_env(struct config *cfg, char *err, size_t errlen)
{
	const char *v;
	char name[128];

	for (size_t i = 0; i < NKEYS; i++) {
		size_t n = (size_t)snprintf(
		    name, sizeof(name), "COLLECTORD_%s_%s", keys[i].section, keys[i].name);

		for (size_t j = 0; j < n && j < sizeof(name); j++)
			name[j] = (char)toupper((unsigned char)name[j]);
		if ((v = getenv(name)) == NULL)
			continue;
		if (key_set(cfg, &keys[i], v, err, errlen) == -1) {
			size_t used = strlen(err);

			snprintf(err + used, errlen - used, " (from %s)", name);
			return -1;
		}
	}
	if (apply_family_env(cfg, err, errlen) == -1)
		return -1;
	if (apply_kafka_env(cfg) == -1 || ((v = getenv("COLLECTORD_KAFKA_BROKERS")) != NULL &&
					      kafka_set(cfg, "bootstrap.servers", v) == -1)) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Derive role flags; reject what cannot work together. */
static int
finish(struct config *cfg, char *err, size_t errlen)
{
	char *roles = strdup(cfg->roles), *save = NULL, *tok;

	if (roles == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	cfg->so_reuseport = cfg->so_reuseport_int != 0;
	cfg->role_collect = cfg->role_enrich = cfg->role_archive = false;
	for (tok = strtok_r(roles, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		if (strcmp(tok, "collect") == 0)
			cfg->role_collect = true;
		else if (strcmp(tok, "enrich") == 0)
			cfg->role_enrich = true;
		else if (strcmp(tok, "archive") == 0)
			cfg->role_archive = true;
		else {
			seterr(err, errlen,
			    "[server] roles: unknown role \"%s\" "
			    "(expected collect, enrich, archive)",
			    tok);
			free(roles);
			return -1;
		}
	}
	free(roles);
	if (!cfg->role_collect && !cfg->role_enrich && !cfg->role_archive) {
		seterr(err, errlen, "[server] roles: no role given");
		return -1;
	}
	if (strcmp(cfg->pg_insert, "copy") == 0 || strcmp(cfg->pg_insert, "unnest") == 0) {
		cfg->pg_copy = strcmp(cfg->pg_insert, "copy") == 0;
	} else {
		seterr(err, errlen, "[pg] insert: \"%s\" is not copy or unnest", cfg->pg_insert);
		return -1;
	}
	/* Its own group: the archive's offsets are not the enricher's. */
	if (*cfg->archive_group_id == '\0') {
		char *g = malloc(strlen(cfg->enrich_group_id) + sizeof("-archive"));

		if (g == NULL) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		sprintf(g, "%s-archive", cfg->enrich_group_id);
		free(cfg->archive_group_id);
		cfg->archive_group_id = g;
	}
	if (!log_parse_level(cfg->log_level, &(enum log_level){LOG_INFO})) {
		seterr(err, errlen,
		    "[server] log_level: \"%s\" is not one of "
		    "debug, info, warn, error",
		    cfg->log_level);
		return -1;
	}
	if (cfg->max_decompressed_bytes < cfg->max_body_bytes) {
		seterr(err, errlen,
		    "[server] max_decompressed_bytes (%lld) is "
		    "smaller than max_body_bytes (%lld)",
		    (long long)cfg->max_decompressed_bytes, (long long)cfg->max_body_bytes);
		return -1;
	}
	return 0;
}

struct config *
config_parse(const char *text, const char *name, bool use_env, char *err, size_t errlen)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char *copy = NULL, *line, *next, section[64] = "";
	char seen[NKEYS] = {0};
	int lineno = 0;

	if (cfg == NULL || (text != NULL && (copy = strdup(text)) == NULL)) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < NKEYS; i++)
		if (key_set(cfg, &keys[i], keys[i].def, err, errlen) == -1)
			goto fail;
	for (size_t i = 0; i < sizeof(kafka_defaults) / sizeof(kafka_defaults[0]); i++)
		if (kafka_set(cfg, kafka_defaults[i][0], kafka_defaults[i][1]) == -1)
			goto oom;

	for (line = copy; line != NULL; line = next) {
		char *s, *eq, *k, *v;
		const struct key *key;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');

			if (close == NULL || trim(close + 1)[0] != '\0') {
				seterr(
				    err, errlen, "%s:%d: malformed section header", name, lineno);
				goto fail;
			}
			*close = '\0';
			s = trim(s + 1);
			if (!section_known(s)) {
				seterr(err, errlen, "%s:%d: unknown section [%s]", name, lineno, s);
				goto fail;
			}
			snprintf(section, sizeof(section), "%s", s);
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			seterr(err, errlen, "%s:%d: expected \"key = value\"", name, lineno);
			goto fail;
		}
		*eq = '\0';
		k = trim(s);
		v = trim(eq + 1);
		if (*k == '\0') {
			seterr(err, errlen, "%s:%d: empty key", name, lineno);
			goto fail;
		}
		if (section[0] == '\0') {
			seterr(
			    err, errlen, "%s:%d: key \"%s\" outside any section", name, lineno, k);
			goto fail;
		}
		if (strcmp(section, "kafka") == 0) {
			if (kafka_set(cfg, k, v) == -1)
				goto oom;
			continue;
		}
		if (strncmp(section, "family.", 7) == 0) {
			struct config_family *f;

			if ((key = family_key_find(k)) == NULL) {
				seterr(err, errlen, "%s:%d: unknown key \"%s\" in [%s]", name,
				    lineno, k, section);
				goto fail;
			}
			if ((f = family_get(cfg, section + 7, err, errlen)) == NULL)
				goto oom;
			if (f->seen & (1u << (key - family_keys))) {
				seterr(err, errlen, "%s:%d: [%s] %s given twice", name, lineno,
				    section, k);
				goto fail;
			}
			f->seen |= 1u << (key - family_keys);
			if (key_set(f, key, v, err, errlen) == -1) {
				char tmp[512];

				snprintf(tmp, sizeof(tmp), "%s:%d: [%s] %s", name, lineno, section,
				    err + strlen("[family] "));
				snprintf(err, errlen, "%s", tmp);
				goto fail;
			}
			continue;
		}
		if ((key = key_find(section, k)) == NULL) {
			seterr(err, errlen, "%s:%d: unknown key \"%s\" in [%s]", name, lineno, k,
			    section);
			goto fail;
		}
		if (seen[key - keys]) {
			seterr(err, errlen, "%s:%d: [%s] %s given twice", name, lineno, section, k);
			goto fail;
		}
		seen[key - keys] = 1;
		if (key_set(cfg, key, v, err, errlen) == -1) {
			char tmp[512];

			snprintf(tmp, sizeof(tmp), "%s:%d: %s", name, lineno, err);
			snprintf(err, errlen, "%s", tmp);
			goto fail;
		}
	}
	if (use_env && apply_env(cfg, err, errlen) == -1)
		goto fail;
	if (finish(cfg, err, errlen) == -1) {
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%s: %s", name, err);
		snprintf(err, errlen, "%s", tmp);
		goto fail;
	}
	free(copy);
	return cfg;
oom:
	seterr(err, errlen, "out of memory");
fail:
	free(copy);
	config_free(cfg);
	return NULL;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg;
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;

	if (path == NULL)
		return config_parse(NULL, "(defaults)", true, err, errlen);
	if ((f = fopen(path, "r")) == NULL) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *p = realloc(text, cap = (cap + 4096) * 2);

			if (p == NULL) {
				free(text);
				fclose(f);
				seterr(err, errlen, "out of memory");
				return NULL;
			}
			text = p;
		}
		if ((n = fread(text + len, 1, 4096, f)) == 0)
			break;
		len += n;
	}
	if (ferror(f)) {
		seterr(err, errlen, "%s: read error", path);
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	text[len] = '\0';
	if (strlen(text) != len) {
		seterr(err, errlen, "%s: contains a NUL byte", path);
		free(text);
		return NULL;
	}
	cfg = config_parse(text, path, true, err, errlen);
	free(text);
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].type == K_STR)
			free(*(char **)((char *)cfg + keys[i].offset));
	for (size_t i = 0; i < cfg->nkafka; i++) {
		free(cfg->kafka[i].key);
		free(cfg->kafka[i].value);
	}
	free(cfg->kafka);
	for (size_t i = 0; i < cfg->nfamilies; i++) {
		struct config_family *f = &cfg->families[i];

		for (size_t j = 0; j < NFAMILY_KEYS; j++)
			if (family_keys[j].type == K_STR)
				free(*(char **)((char *)f + family_keys[j].offset));
		free(f->name);
	}
	free(cfg->families);
	free(cfg);
}

struct config_family *
config_family_add(struct config *cfg, const char *name)
{
	char err[256];

	return family_get(cfg, name, err, sizeof(err));
}

const struct config_family *
config_family(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nfamilies; i++)
		if (strcmp(cfg->families[i].name, name) == 0)
			return &cfg->families[i];
	return NULL;
}

bool
config_family_key_at(size_t i, const char **key, const char **def)
{
	if (i >= NFAMILY_KEYS)
		return false;
	*key = family_keys[i].name;
	*def = family_keys[i].def;
	return true;
}

int
config_default_str(char **field, const char *def)
{
	char *v;

	if (**field != '\0')
		return 0;
	if ((v = strdup(def)) == NULL)
		return -1;
	free(*field);
	*field = v;
	return 0;
}

const char *
config_kafka_get(const struct config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->nkafka; i++)
		if (strcmp(cfg->kafka[i].key, key) == 0)
			return cfg->kafka[i].value;
	return NULL;
}

bool
config_key_at(size_t i, const char **section, const char **key, const char **def)
{
	if (i >= NKEYS)
		return false;
	*section = keys[i].section;
	*key = keys[i].name;
	*def = keys[i].def;
	return true;
}

const char *
config_value(const struct config *cfg, size_t i)
{
	static char num[32];
	const char *p;

	if (i >= NKEYS)
		return NULL;
	p = (const char *)cfg + keys[i].offset;
	if (keys[i].type == K_STR)
		return *(char *const *)p;
	snprintf(num, sizeof(num), "%lld", (long long)*(const int64_t *)p);
	return num;
}
