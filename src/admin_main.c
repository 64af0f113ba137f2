/*
 * admin_main.c: collectord-admin, the Kafka side of setting up a deployment.
 *
 *   collectord-admin create-topics FILE [--config C] [--brokers B] [--timeout S] [--dry-run]
 *   collectord-admin wait-ready [--config C] [--brokers B] [--timeout S]
 *   collectord-admin list-topics [--config C] [--brokers B] [--timeout S] [--all]
 *
 * FILE is topics/main-topics: one topic a line, "name,partitions,replicas"
 * optionally followed by ",key=value" topic configs; "#" starts a comment.
 * Creating is idempotent: a topic that already exists with the same
 * partitions, replicas and listed configs counts as done; one that differs
 * is reported and makes the run fail, because changing it is an operator's
 * decision.  The Kafka client is configured from the daemon's [kafka]
 * section (kafka_conf.c), so SASL and TLS settings apply here too.  Only
 * config.c, log.c, kafka_conf.c and librdkafka are used, so scripts can
 * build it without the rest (scripts/create-topics).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "kafka_conf.h"

#define DEFAULT_BROKERS "127.0.0.1:9092"
#define DEFAULT_TIMEOUT_S 30
#define TOPIC_NAME_MAX 249

static const char *progname = "collectord-admin";
static bool verbose;
/* Last error librdkafka reported through error_cb, for a useful timeout message. */
static char last_kafka_error[512];

struct topic_config {
	char *key;
	char *value;
};

struct topic_spec {
	char *name;
	int partitions;
	int replicas;
	int line;
	struct topic_config *configs;
	size_t nconfigs;
	/* Set while creating: done (created or already there and equal). */
	bool done;
	bool existed;
	/* Exists but not as listed (reported on stderr). */
	bool differs;
};

struct topic_list {
	struct topic_spec *v;
	size_t n;
};

struct options {
	const struct config *cfg;
	const char *brokers;
	int timeout_s;
	bool dry_run;
	bool all;
	const char *file;
};

static void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
errorf(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: %s COMMAND [options]\n"
	    "\n"
	    "commands:\n"
	    "  create-topics FILE  create the topics listed in FILE, one a line:\n"
	    "                      name,partitions,replicas[,key=value...];\n"
	    "                      existing topics that match are fine\n"
	    "  wait-ready          wait until the brokers answer a metadata request\n"
	    "  list-topics         print \"name partitions replicas\" for each topic\n"
	    "\n"
	    "options:\n"
	    "  --config C    collectord's INI file: its [kafka] section configures the client\n"
	    "                (default %s if it exists; COLLECTORD_* overrides apply)\n"
	    "  --brokers B   bootstrap brokers (default: [kafka] bootstrap.servers, i.e.\n"
	    "                $COLLECTORD_KAFKA_BROKERS or %s)\n"
	    "  --timeout S   give up after S seconds (default %d)\n"
	    "  --dry-run     create-topics: parse FILE and print what would be created\n"
	    "  --all         list-topics: include internal topics (__*)\n"
	    "  -v            show librdkafka's own log lines\n",
	    progname, CONFIG_DEFAULT_PATH, DEFAULT_BROKERS, DEFAULT_TIMEOUT_S);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Milliseconds left until DEADLINE, at least 1 so librdkafka calls still poll once. */
static int
remaining_ms(double deadline)
{
	double left = (deadline - now_s()) * 1000.0;

	if (left < 1.0)
		return 1;
	if (left > (double)INT_MAX)
		return INT_MAX;
	return (int)left;
}

/* ------------------------------------------------------------------ parsing */

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

static bool
parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	long v;

	if (*s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = (int)v;
	return true;
}

/* Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], not "." or "..". */
static bool
valid_topic_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > TOPIC_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
			return false;
	}
	return true;
}

/* Free what T owns (not T itself) and clear it. */
static void
topic_spec_clear(struct topic_spec *t)
{
	for (size_t j = 0; j < t->nconfigs; j++) {
		free(t->configs[j].key);
		free(t->configs[j].value);
	}
	free(t->configs);
	free(t->name);
	memset(t, 0, sizeof(*t));
}

static void
topic_list_free(struct topic_list *tl)
{
	for (size_t i = 0; i < tl->n; i++)
		topic_spec_clear(&tl->v[i]);
	free(tl->v);
	tl->v = NULL;
	tl->n = 0;
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL) {
		errorf("out of memory");
		exit(1);
	}
	return d;
}

static void *
xrealloc(void *p, size_t n, size_t size)
{
	void *q;

	if (size != 0 && n > SIZE_MAX / size) {
		errorf("out of memory");
		exit(1);
	}
	q = realloc(p, n * size);
	if (q == NULL && n * size != 0) {
		errorf("out of memory");
		exit(1);
	}
	return q;
}

/*
 * Parse one non-empty line (comment already removed) into T.  On error,
 * writes the reason into ERR and returns false; T then owns nothing.
 */
static bool
parse_topic_line(char *line, struct topic_spec *t, char *err, size_t errlen)
{
	char *field = line;
	int n = 0;

	memset(t, 0, sizeof(*t));
	for (; field != NULL; n++) {
		char *comma = strchr(field, ',');
		char *f;

		if (comma != NULL)
			*comma = '\0';
		f = trim(field);
		field = comma != NULL ? comma + 1 : NULL;
		if (*f == '\0') {
			snprintf(err, errlen, "field %d is empty", n + 1);
			goto fail;
		}

		if (n == 0) {
			if (!valid_topic_name(f)) {
				snprintf(err, errlen,
				    "invalid topic name \"%s\" "
				    "(1-%d characters of a-z A-Z 0-9 . _ -)",
				    f, TOPIC_NAME_MAX);
				goto fail;
			}
			t->name = xstrdup(f);
		} else if (n == 1) {
			if (!parse_int(f, 1, 1000000, &t->partitions)) {
				snprintf(err, errlen,
				    "partitions must be a positive integer, got \"%s\"", f);
				goto fail;
			}
		} else if (n == 2) {
			if (!parse_int(f, 1, 32767, &t->replicas)) {
				snprintf(err, errlen,
				    "replicas must be a positive integer, got \"%s\"", f);
				goto fail;
			}
		} else {
			char *eq = strchr(f, '=');
			char *key, *value;

			if (eq == NULL) {
				snprintf(
				    err, errlen, "topic config must be key=value, got \"%s\"", f);
				goto fail;
			}
			*eq = '\0';
			key = trim(f);
			value = trim(eq + 1);
			if (*key == '\0' || *value == '\0') {
				snprintf(err, errlen,
				    "topic config must be key=value with both non-empty");
				goto fail;
			}
			for (size_t j = 0; j < t->nconfigs; j++) {
				if (strcmp(t->configs[j].key, key) == 0) {
					snprintf(
					    err, errlen, "topic config \"%s\" given twice", key);
					goto fail;
				}
			}
			t->configs = xrealloc(t->configs, t->nconfigs + 1, sizeof(*t->configs));
			t->configs[t->nconfigs].key = xstrdup(key);
			t->configs[t->nconfigs].value = xstrdup(value);
			t->nconfigs++;
		}
	}
	if (n < 3) {
		snprintf(err, errlen,
		    "expected name,partitions,replicas[,key=value...], got %d field%s", n,
		    n == 1 ? "" : "s");
		goto fail;
	}
	return true;
fail:
	topic_spec_clear(t);
	return false;
}

/* Read PATH into TL.  Every malformed line is reported as PATH:LINE; false if any. */
static bool
parse_topics_file(const char *path, struct topic_list *tl)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;
	bool ok = true;

	f = fopen(path, "r");
	if (f == NULL) {
		errorf("%s: %s", path, strerror(errno));
		return false;
	}
	while (getline(&line, &cap, f) != -1) {
		struct topic_spec t;
		char err[512];
		char *hash, *s;

		lineno++;
		hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		s = trim(line);
		if (*s == '\0')
			continue;
		if (!parse_topic_line(s, &t, err, sizeof(err))) {
			errorf("%s:%d: %s", path, lineno, err);
			ok = false;
			continue;
		}
		t.line = lineno;
		for (size_t i = 0; i < tl->n; i++) {
			if (strcmp(tl->v[i].name, t.name) == 0) {
				errorf("%s:%d: topic \"%s\" already listed on line %d", path,
				    lineno, t.name, tl->v[i].line);
				ok = false;
			}
		}
		/* Ownership of t's strings moves into the list. */
		tl->v = xrealloc(tl->v, tl->n + 1, sizeof(*tl->v));
		tl->v[tl->n++] = t;
	}
	if (ferror(f)) {
		errorf("%s: %s", path, strerror(errno));
		ok = false;
	}
	free(line);
	fclose(f);
	if (ok && tl->n == 0) {
		errorf("%s: no topics listed", path);
		ok = false;
	}
	return ok;
}

/* ------------------------------------------------------------------ kafka */

static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (verbose)
		fprintf(stderr, "%s: rdkafka %d %s: %s\n", progname, level, fac, buf);
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)opaque;
	snprintf(last_kafka_error, sizeof(last_kafka_error), "%s: %s",
	    rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
	if (verbose)
		fprintf(stderr, "%s: rdkafka error %s\n", progname, last_kafka_error);
}

static rd_kafka_t *
kafka_open(const struct options *o)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	char err[512];

	if ((conf = kafka_conf_new(o->cfg, KAFKA_ADMIN, err, sizeof(err))) == NULL) {
		errorf("%s", err);
		return NULL;
	}
	if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) !=
	    RD_KAFKA_CONF_OK) {
		errorf("kafka config: %s", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, on_log);
	rd_kafka_conf_set_error_cb(conf, on_error);
	/* rd_kafka_new takes CONF on success only. */
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL) {
		errorf("kafka: %s", err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

/* Fetch cluster metadata, retrying until DEADLINE.  Caller frees *MD. */
static bool
metadata_until(rd_kafka_t *rk, double deadline, const struct rd_kafka_metadata **md)
{
	rd_kafka_resp_err_t err;

	for (;;) {
		int attempt = remaining_ms(deadline);

		if (attempt > 2000)
			attempt = 2000;
		err = rd_kafka_metadata(rk, 1, NULL, md, attempt);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			if ((*md)->broker_cnt > 0)
				return true;
			rd_kafka_metadata_destroy(*md);
			*md = NULL;
		} else {
			snprintf(last_kafka_error, sizeof(last_kafka_error), "%s",
			    rd_kafka_err2str(err));
		}
		if (now_s() >= deadline)
			return false;
		sleep_ms(200);
	}
}

static const struct rd_kafka_metadata_topic *
md_topic(const struct rd_kafka_metadata *md, const char *name)
{
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strcmp(md->topics[i].topic, name) == 0)
			return &md->topics[i];
	}
	return NULL;
}

static int
cmd_wait_ready(const struct options *o)
{
	const struct rd_kafka_metadata *md = NULL;
	double start = now_s();
	rd_kafka_t *rk = kafka_open(o);
	int rc = 1;

	if (rk == NULL)
		return 1;
	if (metadata_until(rk, start + o->timeout_s, &md)) {
		printf("kafka ready at %s: %d broker%s, %d topic%s (%.1fs)\n", o->brokers,
		    md->broker_cnt, md->broker_cnt == 1 ? "" : "s", md->topic_cnt,
		    md->topic_cnt == 1 ? "" : "s", now_s() - start);
		rd_kafka_metadata_destroy(md);
		rc = 0;
	} else {
		errorf("kafka at %s did not answer within %ds%s%s", o->brokers, o->timeout_s,
		    last_kafka_error[0] ? ": " : "", last_kafka_error);
	}
	rd_kafka_destroy(rk);
	return rc;
}

static int
cmp_topic(const void *a, const void *b)
{
	const struct rd_kafka_metadata_topic *x = a, *y = b;

	return strcmp(x->topic, y->topic);
}

static int
cmd_list_topics(const struct options *o)
{
	const struct rd_kafka_metadata *md = NULL;
	struct rd_kafka_metadata_topic *sorted;
	rd_kafka_t *rk = kafka_open(o);

	if (rk == NULL)
		return 1;
	if (!metadata_until(rk, now_s() + o->timeout_s, &md)) {
		errorf("kafka at %s did not answer within %ds%s%s", o->brokers, o->timeout_s,
		    last_kafka_error[0] ? ": " : "", last_kafka_error);
		rd_kafka_destroy(rk);
		return 1;
	}
	/* Shallow copy for sorting; the strings stay owned by MD. */
	sorted = xrealloc(NULL, (size_t)md->topic_cnt + 1, sizeof(*sorted));
	if (md->topic_cnt > 0)
		memcpy(sorted, md->topics, (size_t)md->topic_cnt * sizeof(*sorted));
	qsort(sorted, (size_t)md->topic_cnt, sizeof(*sorted), cmp_topic);
	for (int i = 0; i < md->topic_cnt; i++) {
		const struct rd_kafka_metadata_topic *t = &sorted[i];

		if (!o->all && strncmp(t->topic, "__", 2) == 0)
			continue;
		printf("%s %d %d\n", t->topic, t->partition_cnt,
		    t->partition_cnt > 0 ? t->partitions[0].replica_cnt : 0);
	}
	free(sorted);
	rd_kafka_metadata_destroy(md);
	rd_kafka_destroy(rk);
	return 0;
}

/* Errors worth another CreateTopics attempt: the cluster is still settling. */
static bool
retriable(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
	case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
	case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
	case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
	case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
		return true;
	default:
		return false;
	}
}

static rd_kafka_AdminOptions_t *
admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op, double deadline)
{
	rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, op);
	char err[256];
	int ms = remaining_ms(deadline);

	if (ms > 30000)
		ms = 30000;
	rd_kafka_AdminOptions_set_request_timeout(opt, ms, err, sizeof(err));
	if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
		rd_kafka_AdminOptions_set_operation_timeout(opt, ms, err, sizeof(err));
	return opt;
}

/* Wait for the result event of one admin call on Q.  Caller destroys it. */
static rd_kafka_event_t *
wait_result(rd_kafka_queue_t *q, rd_kafka_event_type_t type, double deadline)
{
	for (;;) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, remaining_ms(deadline) + 1000);

		if (ev == NULL)
			return NULL;
		if (rd_kafka_event_type(ev) == type)
			return ev;
		rd_kafka_event_destroy(ev);
	}
}

/*
 * One CreateTopics round over the topics not yet done.  Returns the number
 * still pending (retriable errors); sets *FATAL on a final error.
 */
static size_t
create_round(
    rd_kafka_t *rk, rd_kafka_queue_t *q, struct topic_list *tl, double deadline, bool *fatal)
{
	rd_kafka_NewTopic_t **nts = xrealloc(NULL, tl->n, sizeof(*nts));
	rd_kafka_AdminOptions_t *opt;
	const rd_kafka_CreateTopics_result_t *res;
	const rd_kafka_topic_result_t **results;
	rd_kafka_event_t *ev;
	size_t nnt = 0, nres = 0, pending = 0;
	char err[512];

	for (size_t i = 0; i < tl->n; i++) {
		struct topic_spec *t = &tl->v[i];
		rd_kafka_NewTopic_t *nt;

		if (t->done)
			continue;
		nt = rd_kafka_NewTopic_new(t->name, t->partitions, t->replicas, err, sizeof(err));
		if (nt == NULL) {
			errorf("topic %s (line %d): %s", t->name, t->line, err);
			*fatal = true;
			goto out;
		}
		nts[nnt++] = nt;
		for (size_t j = 0; j < t->nconfigs; j++) {
			if (rd_kafka_NewTopic_set_config(
				nt, t->configs[j].key, t->configs[j].value)) {
				errorf("topic %s (line %d): cannot set %s", t->name, t->line,
				    t->configs[j].key);
				*fatal = true;
				goto out;
			}
		}
	}
	opt = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, deadline);
	rd_kafka_CreateTopics(rk, nts, nnt, opt, q);
	rd_kafka_AdminOptions_destroy(opt);
	ev = wait_result(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, deadline);
	if (ev == NULL) {
		snprintf(last_kafka_error, sizeof(last_kafka_error), "CreateTopics: no answer");
		pending = nnt;
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		rd_kafka_resp_err_t e = rd_kafka_event_error(ev);

		snprintf(last_kafka_error, sizeof(last_kafka_error), "CreateTopics: %s",
		    rd_kafka_event_error_string(ev));
		if (!retriable(e)) {
			errorf("%s", last_kafka_error);
			*fatal = true;
		}
		pending = nnt;
		rd_kafka_event_destroy(ev);
		goto out;
	}
	res = rd_kafka_event_CreateTopics_result(ev);
	results = rd_kafka_CreateTopics_result_topics(res, &nres);
	for (size_t r = 0; r < nres; r++) {
		const char *name = rd_kafka_topic_result_name(results[r]);
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[r]);
		const char *estr = rd_kafka_topic_result_error_string(results[r]);
		struct topic_spec *t = NULL;

		for (size_t i = 0; i < tl->n; i++) {
			if (strcmp(tl->v[i].name, name) == 0)
				t = &tl->v[i];
		}
		if (t == NULL)
			continue;
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			t->done = true;
		} else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			t->done = true;
			t->existed = true;
		} else if (retriable(e)) {
			snprintf(last_kafka_error, sizeof(last_kafka_error), "%s: %s", name,
			    estr ? estr : rd_kafka_err2str(e));
			pending++;
		} else {
			errorf("topic %s (line %d): %s: %s", name, t->line, rd_kafka_err2name(e),
			    estr ? estr : rd_kafka_err2str(e));
			*fatal = true;
		}
	}
	rd_kafka_event_destroy(ev);
out:
	rd_kafka_NewTopic_destroy_array(nts, nnt);
	free(nts);
	return pending;
}

/* Compare the listed configs of existing topics with what the broker has. */
static bool
check_existing_configs(rd_kafka_t *rk, rd_kafka_queue_t *q, struct topic_list *tl, double deadline)
{
	rd_kafka_ConfigResource_t **crs = xrealloc(NULL, tl->n, sizeof(*crs));
	const rd_kafka_DescribeConfigs_result_t *res;
	const rd_kafka_ConfigResource_t **rres;
	rd_kafka_AdminOptions_t *opt;
	rd_kafka_event_t *ev;
	size_t ncr = 0, nres = 0;
	bool ok = true;

	for (size_t i = 0; i < tl->n; i++) {
		if (tl->v[i].existed && tl->v[i].nconfigs > 0)
			crs[ncr++] =
			    rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, tl->v[i].name);
	}
	if (ncr == 0) {
		free(crs);
		return true;
	}
	opt = admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, deadline);
	rd_kafka_DescribeConfigs(rk, crs, ncr, opt, q);
	rd_kafka_AdminOptions_destroy(opt);
	ev = wait_result(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, deadline);
	if (ev == NULL || rd_kafka_event_error(ev)) {
		errorf("DescribeConfigs: %s", ev ? rd_kafka_event_error_string(ev) : "no answer");
		ok = false;
		goto out;
	}
	res = rd_kafka_event_DescribeConfigs_result(ev);
	rres = rd_kafka_DescribeConfigs_result_resources(res, &nres);
	for (size_t r = 0; r < nres; r++) {
		const char *name = rd_kafka_ConfigResource_name(rres[r]);
		const rd_kafka_ConfigEntry_t **entries;
		struct topic_spec *t = NULL;
		size_t nent = 0;

		for (size_t i = 0; i < tl->n; i++) {
			if (strcmp(tl->v[i].name, name) == 0)
				t = &tl->v[i];
		}
		if (t == NULL)
			continue;
		if (rd_kafka_ConfigResource_error(rres[r])) {
			errorf("topic %s: DescribeConfigs: %s", name,
			    rd_kafka_ConfigResource_error_string(rres[r]));
			ok = false;
			continue;
		}
		entries = rd_kafka_ConfigResource_configs(rres[r], &nent);
		for (size_t j = 0; j < t->nconfigs; j++) {
			const char *have = NULL;

			for (size_t k = 0; k < nent; k++) {
				const char *key = rd_kafka_ConfigEntry_name(entries[k]);

				if (strcmp(key, t->configs[j].key) == 0)
					have = rd_kafka_ConfigEntry_value(entries[k]);
			}
			if (have == NULL || strcmp(have, t->configs[j].value) != 0) {
				errorf("topic %s (line %d) exists with %s=%s, file wants %s", name,
				    t->line, t->configs[j].key, have ? have : "(unset)",
				    t->configs[j].value);
				t->differs = true;
				ok = false;
			}
		}
	}
out:
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	rd_kafka_ConfigResource_destroy_array(crs, ncr);
	free(crs);
	return ok;
}

/*
 * Wait until every listed topic has all its partitions led, then compare
 * partition and replica counts of the ones that already existed.
 */
static bool
check_topics_ready(rd_kafka_t *rk, struct topic_list *tl, double deadline)
{
	const struct rd_kafka_metadata *md = NULL;
	bool ok;

	for (;;) {
		bool settled = true;

		if (!metadata_until(rk, deadline, &md)) {
			errorf("metadata: %s", last_kafka_error);
			return false;
		}
		for (size_t i = 0; i < tl->n && settled; i++) {
			const struct rd_kafka_metadata_topic *mt = md_topic(md, tl->v[i].name);

			if (mt == NULL || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
			    mt->partition_cnt == 0)
				settled = false;
			for (int p = 0; settled && p < mt->partition_cnt; p++) {
				if (mt->partitions[p].leader < 0)
					settled = false;
			}
		}
		if (settled || now_s() >= deadline)
			break;
		rd_kafka_metadata_destroy(md);
		md = NULL;
		sleep_ms(200);
	}
	ok = true;
	for (size_t i = 0; i < tl->n; i++) {
		struct topic_spec *t = &tl->v[i];
		const struct rd_kafka_metadata_topic *mt = md_topic(md, t->name);
		int replicas;

		if (mt == NULL || mt->partition_cnt == 0) {
			errorf("topic %s (line %d) not visible in metadata", t->name, t->line);
			t->differs = true;
			ok = false;
			continue;
		}
		replicas = mt->partitions[0].replica_cnt;
		if (mt->partition_cnt != t->partitions || replicas != t->replicas) {
			errorf("topic %s (line %d) exists with %d partitions, %d replicas; "
			       "file wants %d, %d",
			    t->name, t->line, mt->partition_cnt, replicas, t->partitions,
			    t->replicas);
			t->differs = true;
			ok = false;
			continue;
		}
		for (int p = 0; p < mt->partition_cnt; p++) {
			if (mt->partitions[p].leader < 0) {
				errorf("topic %s partition %d has no leader yet", t->name, p);
				ok = false;
				break;
			}
		}
	}
	rd_kafka_metadata_destroy(md);
	return ok;
}

static void
print_topic(const char *what, const struct topic_spec *t)
{
	printf("%s %s partitions=%d replicas=%d", what, t->name, t->partitions, t->replicas);
	for (size_t j = 0; j < t->nconfigs; j++)
		printf(" %s=%s", t->configs[j].key, t->configs[j].value);
	putchar('\n');
}

static int
cmd_create_topics(const struct options *o)
{
	struct topic_list tl = {NULL, 0};
	double deadline = now_s() + o->timeout_s;
	rd_kafka_queue_t *q;
	rd_kafka_t *rk;
	bool fatal = false, ok;
	size_t pending;

	if (!parse_topics_file(o->file, &tl)) {
		topic_list_free(&tl);
		return 2;
	}
	if (o->dry_run) {
		for (size_t i = 0; i < tl.n; i++)
			print_topic("would-create", &tl.v[i]);
		topic_list_free(&tl);
		return 0;
	}
	rk = kafka_open(o);
	if (rk == NULL) {
		topic_list_free(&tl);
		return 1;
	}
	q = rd_kafka_queue_new(rk);
	for (;;) {
		pending = create_round(rk, q, &tl, deadline, &fatal);
		if (fatal || pending == 0 || now_s() >= deadline)
			break;
		sleep_ms(500);
	}
	ok = !fatal && pending == 0;
	if (!fatal && pending > 0)
		errorf("kafka at %s: %zu topic%s not created within %ds: %s", o->brokers, pending,
		    pending == 1 ? "" : "s", o->timeout_s, last_kafka_error);
	if (ok) {
		/* Run both checks so that every difference is reported at once. */
		bool ready = check_topics_ready(rk, &tl, deadline);
		bool same = check_existing_configs(rk, q, &tl, deadline);

		ok = ready && same;
		for (size_t i = 0; i < tl.n; i++) {
			if (!tl.v[i].differs)
				print_topic(tl.v[i].existed ? "exists" : "created", &tl.v[i]);
		}
	}
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	topic_list_free(&tl);
	return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ main */

static int run(const char *cmd, const struct options *o);

int
main(int argc, char **argv)
{
	struct options o = {NULL, NULL, DEFAULT_TIMEOUT_S, false, false, NULL};
	const char *cmd, *config_path = NULL, *brokers = NULL;
	struct config *cfg;
	char err[1024];
	int rc;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--brokers") == 0 && i + 1 < argc) {
			brokers = argv[++i];
		} else if (strncmp(a, "--brokers=", 10) == 0) {
			brokers = a + 10;
		} else if (strcmp(a, "--config") == 0 && i + 1 < argc) {
			config_path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			config_path = a + 9;
		} else if ((strcmp(a, "--timeout") == 0 && i + 1 < argc) ||
			   strncmp(a, "--timeout=", 10) == 0) {
			const char *v = a[9] == '=' ? a + 10 : argv[++i];

			if (!parse_int(v, 1, 86400, &o.timeout_s)) {
				errorf("--timeout wants seconds (1-86400), got \"%s\"", v);
				return 2;
			}
		} else if (strcmp(a, "--dry-run") == 0) {
			o.dry_run = true;
		} else if (strcmp(a, "--all") == 0) {
			o.all = true;
		} else if (strcmp(a, "-v") == 0) {
			verbose = true;
		} else if (a[0] != '-' && o.file == NULL) {
			o.file = a;
		} else {
			errorf("unexpected argument \"%s\"", a);
			usage(stderr);
			return 2;
		}
	}
	if (config_path == NULL && access(CONFIG_DEFAULT_PATH, R_OK) == 0)
		config_path = CONFIG_DEFAULT_PATH;
	if ((cfg = config_load(config_path, err, sizeof(err))) == NULL) {
		errorf("%s", err);
		return 2;
	}
	o.cfg = cfg;
	o.brokers = brokers != NULL ? brokers : config_kafka_get(cfg, "bootstrap.servers");
	if (o.brokers == NULL || *o.brokers == '\0') {
		errorf("no brokers given");
		config_free(cfg);
		return 2;
	}
	rc = run(cmd, &o);
	config_free(cfg);
	return rc;
}

static int
run(const char *cmd, const struct options *op)
{
	struct options o = *op;

	if (strcmp(cmd, "create-topics") == 0) {
		if (o.file == NULL) {
			errorf("create-topics needs a FILE");
			return 2;
		}
		return cmd_create_topics(&o);
	}
	if (o.file != NULL) {
		errorf("unexpected argument \"%s\"", o.file);
		return 2;
	}
	if (strcmp(cmd, "wait-ready") == 0)
		return cmd_wait_ready(&o);
	if (strcmp(cmd, "list-topics") == 0)
		return cmd_list_topics(&o);
	errorf("unknown command \"%s\"", cmd);
	usage(stderr);
	return 2;
}
