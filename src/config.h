/* config.h: the INI configuration, its defaults and environment overrides. */
#ifndef COLLECTORD_CONFIG_H
#define COLLECTORD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/collectord/collectord.conf"

struct family;

/* One librdkafka property from the [kafka] section, passed through as is. */
struct config_kv {
	char *key;
	char *value;
};

/* [family.NAME]: one event family's settings over its compiled-in defaults
 * (src/families/NAME.c).  Empty strings and 0 keep the family's own. */
struct config_family {
	char *name;
	char *raw_topic;
	char *invalid_topic;
	char *subject;
	char *sql_dir; /* its SQL files; "" = schemas/NAME/sql beside [pg] sql_dir */
	char *table;   /* the table its SQL makes; "" = the descriptor's */
	/* Enriched events' topic and its subject; "" = the descriptor's
	 * topic and "<topic>-value"; "none": no enriched topic.  Settled,
	 * "" means none. */
	char *enriched_topic;
	char *enriched_subject;
	/* The daily count's topic; "" = the descriptor's; "none": not
	 * published.  Settled, "" means none. */
	char *daily_topic;
	int64_t port;  /* a listener of its own, where POST /collect is this family */
	unsigned seen; /* keys given in the file, one bit each */
	/* Set by family_config_defaults(): the family is served by this
	 * process ([server] families), FAMILY is its descriptor, and the
	 * strings above are settled (never empty). */
	bool served;
	const struct family *family;
};

struct config {
	/* [server] */
	char *listen_addr;
	int64_t listen_port;
	char *roles; /* comma separated: collect, enrich, archive */
	bool role_collect, role_enrich, role_archive; /* derived from roles */
	char *api_keys; /* comma separated; empty = no authentication */
	int64_t max_body_bytes;
	int64_t max_decompressed_bytes;
	int64_t max_events;
	int64_t request_timeout_ms;
	int64_t max_inflight_batches;
	bool so_reuseport; /* derived from so_reuseport_int */
	int64_t so_reuseport_int;
	int64_t max_clients;	 /* connections at once; beyond, accept pauses */
	int64_t read_timeout_ms; /* a whole request (headers and body) must arrive in this */
	int64_t idle_timeout_ms; /* a keep-alive connection may wait this long for a request */
	int64_t max_body_memory; /* bytes all request bodies being read may hold at once */
	int64_t max_json_nodes;	 /* JSON values one body may hold */
	int64_t max_dead_letter_bytes; /* largest S3 dead-letter object of one request */
	char *log_level;
	char *log_file;
	char *default_family; /* POST /collect's family; "" = the first of the table */
	char *serve_families; /* [server] families: comma separated; "" = every family */

	/* [family.NAME] sections, in the order first seen */
	struct config_family *families;
	size_t nfamilies;

	/* [kafka]: every key goes to librdkafka; "bootstrap.servers" has a default */
	struct config_kv *kafka;
	size_t nkafka;

	/* [topics] */
	char *topic_raw;
	char *topic_dead_letter;

	/* [registry] */
	char *registry_url;
	char *registry_subject;
	char *registry_user;
	char *registry_password;

	/* [s3] */
	char *s3_endpoint;
	char *s3_region;
	char *s3_bucket;
	char *s3_access_key;
	char *s3_secret_key;
	int64_t s3_timeout_ms;
	int64_t s3_max_connections;

	/* [pg] */
	char *pg_conninfo;
	char *pg_sql_dir;
	char *pg_insert; /* "copy" or "unnest" */
	bool pg_copy;	 /* derived from pg_insert */

	/* [readback]: the read-back API's own PostgreSQL connections */
	char *readback_conninfo; /* "" = [pg] conninfo */
	int64_t readback_connections;
	int64_t readback_statement_timeout_ms;
	int64_t readback_max_queries; /* running and waiting at once; beyond, 503 */

	/* [enrich] */
	char *enrich_group_id;
	int64_t enrich_flush_events;
	int64_t enrich_flush_ms;
	int64_t enrich_max_pending;
	int64_t enrich_retry_max_ms;

	/* [archive] */
	char *archive_group_id; /* settled: "" becomes "<[enrich] group_id>-archive" */
	char *archive_topics_file;
	int64_t archive_flush_events;
	int64_t archive_flush_ms;
	int64_t archive_max_pending;
	int64_t archive_retry_max_ms;
};

/*
 * Load PATH (NULL: defaults only), then apply environment overrides
 * (COLLECTORD_<SECTION>_<KEY>, and COLLECTORD_KAFKA_BROKERS for
 * bootstrap.servers).  Returns a config the caller frees with
 * config_free(), or NULL with "file:line: what" in ERR.
 */
struct config *config_load(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The same from a string, for tests; NAME is used in messages. */
struct config *config_parse(const char *text, const char *name, bool use_env, char *err,
    size_t errlen) __attribute__((warn_unused_result));
void config_free(struct config *cfg);

/* *FIELD (a string key of CFG), when empty, becomes a copy of DEF.  0, or
 * -1 when out of memory. */
int config_default_str(char **field, const char *def) __attribute__((warn_unused_result));

/* The [family.NAME] section of CFG, or NULL when the file has none. */
const struct config_family *config_family(const struct config *cfg, const char *name);
/* The same, made with its defaults when missing (family_config_defaults
 * gives every served family one); NULL when out of memory. */
struct config_family *config_family_add(struct config *cfg, const char *name);

/* The keys of a [family.NAME] section, as config_key_at(). */
bool config_family_key_at(size_t i, const char **key, const char **def);

/* The value librdkafka gets for KEY, or NULL. */
const char *config_kafka_get(const struct config *cfg, const char *key);

/* The documented keys, for --help and the sample-file test: the I-th key's
 * section, name and default as text.  False past the last key. */
bool config_key_at(size_t i, const char **section, const char **key, const char **def);

/* The I-th key's current value as text (numbers in a static buffer that
 * the next call reuses), or NULL past the last key. */
const char *config_value(const struct config *cfg, size_t i);

#endif
