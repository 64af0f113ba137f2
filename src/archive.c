/*
 * archive.c: the archive role (see archive.h): which topics, and what a
 * record becomes.  Everything else, partitions, blocks, flushes, offsets,
 * pauses, backoff and stopping, is the engine of consumer.c, the same
 * machinery as the enricher's; only the process and S3 key hooks below are
 * the archive's, and it has no PostgreSQL sink and no dead letters: every
 * record can be archived, whatever its bytes.
 *
 * Why the topic list is topics_file plus the families': the file is the
 * one list of what a deployment creates (scripts/create-topics makes
 * exactly it), every family's topics included; a [family.NAME] raw_topic,
 * invalid_topic, enriched_topic or daily_topic that renames a topic is in
 * no file, and its records must be kept too.  A listed topic that does not exist is only a warning
 * from librdkafka (once): its partitions are assigned once a metadata refresh sees it
 * (topic.metadata.refresh.interval.ms, METADATA_REFRESH_MS unless [kafka] sets it), and read from
 * their start.
 *
 * Determinism.  A line depends on the record and on the registry's answer
 * for its schema id, and ids never change meaning, so a replay writes the
 * same bytes.  A framed record whose id the registry cannot be asked about
 * now is held, in order, as the enricher holds it; it is never archived
 * undecoded for want of an answer.
 */
#include "archive.h"
#include "consumer.h"
#include "consumer_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_line.h"
#include "codec.h"
#include "config.h"
#include "family.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "s3.h"

/* Kafka's own bound on a topic name. */
#define TOPIC_NAME_MAX 249
/* How often the archive's consumer refreshes its metadata unless [kafka]
 * says: a listed topic created later is read within this time, instead of
 * librdkafka's 5 minutes.  One metadata request each time. */
#define METADATA_REFRESH_MS 30000
/* Largest topics file read. */
#define TOPICS_FILE_MAX (1024 * 1024)

/* ---------------------------------------------------------------- topics, pure */

bool
archive_topics_add(struct archive_topics *t, const char *name)
{
	char *copy;

	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->names[i], name) == 0)
			return true;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **v = realloc(t->names, cap * sizeof(*v));

		if (v == NULL)
			return false;
		t->names = v;
		t->cap = cap;
	}
	if ((copy = strdup(name)) == NULL)
		return false;
	t->names[t->n++] = copy;
	return true;
}

void
archive_topics_free(struct archive_topics *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t->names);
	memset(t, 0, sizeof(*t));
}

static bool
topic_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > TOPIC_NAME_MAX || (n == 1 && s[0] == '.') ||
	    (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

int
archive_topics_parse(
    struct archive_topics *t, const char *text, const char *name, char *err, size_t errlen)
{
	char topic[TOPIC_NAME_MAX + 1];
	int lineno = 0;

	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n'), *next = end != NULL ? end + 1 : NULL;
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line), n;

		lineno++;
		while (len > 0 && (*line == ' ' || *line == '\t')) {
			line++;
			len--;
		}
		while (len > 0 &&
		       (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
			len--;
		if (len == 0 || *line == '#') {
			line = next;
			continue;
		}
		for (n = 0; n < len && line[n] != ','; n++)
			;
		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		if (!topic_name_ok(line, n)) {
			snprintf(err, errlen, "%s:%d: not a Kafka topic name (A-Z a-z 0-9 . _ -)",
			    name, lineno);
			return -1;
		}
		memcpy(topic, line, n);
		topic[n] = '\0';
		if (!archive_topics_add(t, topic)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		line = next;
	}
	return 0;
}

/* The whole of PATH, NUL-terminated (malloc'd), or NULL with ERR. */
static char *
read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "[archive] topics_file: %s: %s", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(TOPICS_FILE_MAX + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, TOPICS_FILE_MAX + 1, f);
	if (ferror(f) || n > TOPICS_FILE_MAX) {
		snprintf(err, errlen, "[archive] topics_file: %s: %s", path,
		    ferror(f) ? "read error" : "larger than 1 MiB");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

int
archive_topics_of(const struct config *cfg, struct archive_topics *t, char *err, size_t errlen)
{
	const struct config_family *fc;
	char *text;
	int rc = 0;

	if (*cfg->archive_topics_file != '\0') {
		if ((text = read_file(cfg->archive_topics_file, err, errlen)) == NULL)
			return -1;
		rc = archive_topics_parse(t, text, cfg->archive_topics_file, err, errlen);
		free(text);
		if (rc == -1)
			return -1;
	}
	for (size_t i = 0; (fc = family_served(cfg, i)) != NULL; i++) {
		if (!archive_topics_add(t, fc->raw_topic) ||
		    !archive_topics_add(t, fc->invalid_topic) ||
		    (*fc->enriched_topic != '\0' && !archive_topics_add(t, fc->enriched_topic)) ||
		    (*fc->daily_topic != '\0' && !archive_topics_add(t, fc->daily_topic))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- the role's hooks */

/* What a record's value became, for the records metric. */
static const char *
value_form(const struct archive_record *ar)
{
	if (ar->value == NULL)
		return "null";
	if (ar->decoded != NULL)
		return "decoded";
	return archive_value_is_json(ar->value, ar->len) ? "json" : "base64";
}

/* The process hook: R as its archive line.  Only a framed value asks the
 * registry, once per served family until one owns its schema id. */
static bool
archive_process(struct part *p, struct rec *r)
{
	struct consumer *c = p->c;
	struct archive_record ar = {
	    .topic = p->topic,
	    .partition = p->partition,
	    .offset = r->offset,
	    .ts_ms = r->ts_ms,
	    .ts_type = r->ts_type,
	    .key = r->key,
	    .keylen = r->keylen,
	    .headers = r->headers,
	    /* consumer.c copies no bytes for an empty value */
	    .value = r->null_value	? NULL
		     : r->value != NULL ? r->value
					: "",
	    .len = r->len,
	    .schema_id = -1,
	};
	const uint8_t *payload;
	size_t plen;
	int32_t sid;
	enum registry_result res;
	cJSON *decoded = NULL;
	char err[512], labels[320];

	/* JSON never starts with the frame's magic byte 0: no JSON value is
	 * taken for a frame. */
	if (ar.value != NULL &&
	    codec_frame_parse(ar.value, ar.len, &sid, &payload, &plen, err, sizeof(err))) {
		/* Held before: the families before hold_step said no. */
		size_t i = p->hold_offset == r->offset ? p->hold_step : 0;

		for (; i < c->nfams && ar.schema_id < 0; i++) {
			p->hold_offset = r->offset;
			p->hold_step = i;
			if (!consumer_registry_lookup(p, sid, c->fams[i].fc->subject, &res))
				return false;
			if (res != REGISTRY_OK)
				continue;
			ar.schema_id = sid;
			decoded = codec_decode(c->fams[i].schema, payload, plen, err, sizeof(err));
			ar.decoded = decoded;
			ar.decode_error = decoded == NULL ? err : NULL;
		}
		p->hold_offset = -1;
	}
	r->line = archive_line(&ar, &r->linelen);
	snprintf(labels, sizeof(labels), "topic=\"%s\",form=\"%s\"", p->topic, value_form(&ar));
	cJSON_Delete(decoded);
	if (r->line == NULL) {
		log_error("out of memory for an archive line, trying again",
		    "topic=%s partition=%d offset=%lld", p->topic, (int)p->partition,
		    (long long)r->offset);
		consumer_hold(p, RETRY_MIN_MS);
		return false;
	}
	metrics_add(CONSUMER_METRIC(c, CONSUMER_M_RECORDS), labels, 1);
	/* The line is all the block's rewrites need. */
	free(r->key);
	free(r->value);
	if (r->headers != NULL)
		rd_kafka_headers_destroy(r->headers);
	r->key = NULL;
	r->value = NULL;
	r->headers = NULL;
	return true;
}

static int
archive_s3_key(const struct part *p, const struct rec *first, char *buf, size_t size)
{
	return s3_key_archive(
	    buf, size, first->ts_ms < 0 ? 0 : first->ts_ms, p->topic, p->partition, first->offset);
}

static const struct consumer_role archive_role = {
    .name = "archive",
    .process = archive_process,
    .s3_key = archive_s3_key,
    .family_topics = false,
    .metrics =
	{
	    [CONSUMER_M_RECORDS] = {"collectord_archive_records_total",
		"Records archived, by topic and by what the value became (json, base64, "
		"decoded, null)."},
	    [CONSUMER_M_FLUSHES] = {"collectord_archive_flushes_total",
		"S3 PUTs of archive objects, by result."},
	    [CONSUMER_M_BUFFERED] = {"collectord_archive_buffered_records",
		"Records received by the archive and not yet in S3."},
	    [CONSUMER_M_PAUSED] = {"collectord_archive_paused_partitions",
		"Partitions the archive paused because S3 is behind."},
	    [CONSUMER_M_COMMIT_ERRORS] = {"collectord_archive_commit_errors_total",
		"Offset commits of the archive Kafka refused."},
	    [CONSUMER_M_LAG] = {"collectord_archive_lag",
		"Records between the high watermark and the next record the archive reads, "
		"per partition."},
	},
};

/* ---------------------------------------------------------------- life */

struct consumer *
archive_new(struct event_base *base, const struct config *cfg, struct registry *registry,
    struct s3 *s3, char *err, size_t errlen)
{
	struct archive_topics t = {0};
	struct consumer *c;

	if (archive_topics_of(cfg, &t, err, errlen) == -1) {
		archive_topics_free(&t);
		return NULL;
	}
	if (t.n == 0) {
		snprintf(err, errlen, "archive: no topic to read");
		return NULL;
	}
	/* No producer and no PostgreSQL sink: the archive never dead-letters
	 * and writes no rows. */
	c = consumer_open(base, cfg, &archive_role,
	    &(struct consumer_settings){
		.group_id = cfg->archive_group_id,
		.topics = (const char *const *)t.names,
		.ntopics = t.n,
		.block = cfg->archive_flush_events,
		.flush_ms = cfg->archive_flush_ms,
		.max_pending = cfg->archive_max_pending,
		.retry_max_ms = cfg->archive_retry_max_ms,
		.metadata_refresh_ms = METADATA_REFRESH_MS,
	    },
	    NULL, registry, s3, NULL, err, errlen);
	for (size_t i = 0; c != NULL && i < t.n; i++)
		log_info("archive consumer started", "topic=%s group=%s block=%lld flush_ms=%lld",
		    t.names[i], cfg->archive_group_id, (long long)cfg->archive_flush_events,
		    (long long)cfg->archive_flush_ms);
	archive_topics_free(&t);
	return c;
}
