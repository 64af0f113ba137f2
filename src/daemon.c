/* daemon.c: one process, one loop: build the modules the roles need, run
 * the dependency checks, handle signals, and stop in order. */
#include "daemon.h"

#include <event2/event.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "autoconfig.h"
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "archive.h"
#include "codec.h"
#include "collect.h"
#include "config.h"
#include "consumer.h"
#include "curl_loop.h"
#include "daily.h"
#include "family.h"
#include "health.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pg_sink.h"
#include "pgsql.h"
#include "producer.h"
#include "readback.h"
#include "registry.h"
#include "rejections.h"
#include "s3.h"
#include "stats.h"

/* How often the dependency checks run. */
#define CHECK_INTERVAL_MS 2000
/* Schema registration retry: doubles from the first to the last. */
#define REGISTER_RETRY_MIN_MS 500
#define REGISTER_RETRY_MAX_MS 30000

struct daemon;

/* One served family's schema registration (collect role), retried until
 * it succeeds; without the collect role, the look-up of its id for
 * /families, retried the same way.  With the enrich role, a family with an
 * enriched topic has a second one: its schema under the enriched subject,
 * registered by the enricher, which frames the family's Enriched with it. */
struct reg {
	struct daemon *d;
	const struct config_family *fc;
	const char *subject; /* fc's subject, or its enriched_subject */
	bool enriched;
	struct event *timer;
	long backoff_ms;
	bool done;
	char error[512]; /* why it failed last, for /readyz */
};

struct daemon {
	struct event_base *base;
	struct config *cfg;
	const char *config_path;
	struct reg *regs; /* one per served family */
	size_t nregs;
	struct producer *producer;
	struct curl_loop *curl;
	struct s3 *s3;
	struct registry *registry;
	struct pg_sink *pg;
	struct collect *collect;
	struct consumer *consumer;
	struct consumer *archive; /* the archive role: a consumer of its own */
	struct daily *daily;	  /* the enrich role's daily count publishers */
	struct rejections *rejections;
	size_t rejections_table; /* its index among the sink's tables */
	struct readback *readback;
	struct http *http;
	struct event *check_timer, *stop_timer;
	struct event *sigterm, *sigint, *sighup;
	bool stopping, s3_check_busy, registry_check_busy;
	char s3_error[512], registry_error[512]; /* last check failures, logged once */
	struct timespec stop_deadline;
};

static void
timer_in(struct event *ev, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

/*
 * /readyz answers anyone: it says which dependency is down and since when,
 * while how (URLs, object keys, the service's own words) goes to the log,
 * once each time the detail changes.
 */
static void
check_result(enum health_dep dep, const char *name, bool ok, const char *err, char *last,
    size_t lastlen, const char *public_error)
{
	char q[600];

	if (!ok && err != NULL && strcmp(err, last) != 0)
		log_warn("dependency check failed", "dependency=%s error=%s", name,
		    log_quote(err, q, sizeof(q)));
	snprintf(last, lastlen, "%s", ok || err == NULL ? "" : err);
	health_set(dep, ok, ok ? NULL : public_error);
}

static void
on_s3_checked(void *arg, bool ok, const char *err)
{
	struct daemon *d = arg;

	d->s3_check_busy = false;
	check_result(HEALTH_S3, "s3", ok, err, d->s3_error, sizeof(d->s3_error),
	    "the bucket check failed (the log says why)");
}

static void
on_registry_checked(void *arg, bool ok, const char *err)
{
	struct daemon *d = arg;

	d->registry_check_busy = false;
	check_result(HEALTH_REGISTRY, "registry", ok, err, d->registry_error,
	    sizeof(d->registry_error), "the registry check failed (the log says why)");
}

static void
on_check(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	char err[512];

	(void)fd;
	(void)what;
	/* A check still running from last time means the service is slow:
	 * its own timeout will report it. */
	if (!d->s3_check_busy) {
		if (s3_check(d->s3, on_s3_checked, d) == 0)
			d->s3_check_busy = true;
		else
			health_set(HEALTH_S3, false, "cannot start the S3 check");
	}
	if (!d->registry_check_busy) {
		if (registry_ping(d->registry, on_registry_checked, d) == 0)
			d->registry_check_busy = true;
		else
			health_set(HEALTH_REGISTRY, false, "cannot start the registry check");
	}
	if (d->pg != NULL) {
		enum pg_conn_state st = pg_sink_state(d->pg, err, sizeof(err));

		health_set(HEALTH_POSTGRES, st == PG_CONN_UP, err);
	}
	timer_in(d->check_timer, CHECK_INTERVAL_MS);
}

/* The schema is ready once every served family's is registered; else
 * /readyz names the first that is not. */
static void
schema_health(struct daemon *d)
{
	for (size_t i = 0; i < d->nregs; i++) {
		/* a look-up for /families keeps nobody from being ready */
		if (!d->regs[i].done && (d->collect != NULL || d->regs[i].enriched)) {
			health_set(HEALTH_SCHEMA, false, d->regs[i].error);
			return;
		}
	}
	health_set(HEALTH_SCHEMA, true, NULL);
}

static void
on_registered(void *arg, enum registry_result res, int32_t id, const char *err)
{
	struct reg *g = arg;
	struct daemon *d = g->d;
	bool permanent = registry_result_permanent(res);
	char q[600];

	if (g->enriched && res == REGISTRY_OK) {
		consumer_set_enriched_id(d->consumer, g->fc->family, id);
		g->done = true;
		schema_health(d);
		log_info("schema registered", "family=%s subject=%s id=%d", g->fc->name, g->subject,
		    (int)id);
		return;
	}
	if (d->collect == NULL && !g->enriched) {
		/* Only the look-up: nothing waits on it but /families. */
		if (res == REGISTRY_OK) {
			http_set_schema_id(d->http, g->fc->family, id);
			g->done = true;
			return;
		}
		g->backoff_ms = g->backoff_ms ? g->backoff_ms * 2 : REGISTER_RETRY_MIN_MS;
		if (g->backoff_ms > REGISTER_RETRY_MAX_MS)
			g->backoff_ms = REGISTER_RETRY_MAX_MS;
		log_debug("schema id not known yet", "family=%s subject=%s error=%s", g->fc->name,
		    g->subject, log_quote(err ? err : "", q, sizeof(q)));
		timer_in(g->timer, g->backoff_ms);
		return;
	}
	if (res == REGISTRY_OK) {
		collect_set_schema_id(d->collect, g->fc->family, id);
		http_set_schema_id(d->http, g->fc->family, id);
		g->done = true;
		schema_health(d);
		log_info("schema registered", "family=%s subject=%s id=%d", g->fc->name, g->subject,
		    (int)id);
		return;
	}
	/* Rejected (incompatible, invalid) or registry unreachable: not ready,
	 * say why, and keep trying: an operator may fix the registry. */
	snprintf(g->error, sizeof(g->error), "%s: %s", g->subject, err);
	schema_health(d);
	if (permanent)
		log_error("registry rejected the schema", "family=%s subject=%s error=%s",
		    g->fc->name, g->subject, log_quote(err, q, sizeof(q)));
	g->backoff_ms = permanent	? REGISTER_RETRY_MAX_MS
			: g->backoff_ms ? g->backoff_ms * 2
					: REGISTER_RETRY_MIN_MS;
	if (g->backoff_ms > REGISTER_RETRY_MAX_MS)
		g->backoff_ms = REGISTER_RETRY_MAX_MS;
	timer_in(g->timer, g->backoff_ms);
}

static void
on_register_timer(evutil_socket_t fd, short what, void *arg)
{
	struct reg *g = arg;
	/* The collector registers its schema, the enricher its enriched
	 * one; a process that only reads asks for the id without registering
	 * anything. */
	int (*ask)(struct registry *, const char *, const char *, const char *, registry_id_cb,
	    void *) = g->d->collect != NULL || g->enriched ? registry_register : registry_find;

	(void)fd;
	(void)what;
	if (ask(g->d->registry, g->subject, "PROTOBUF", g->fc->family->proto, on_registered, g) ==
	    -1)
		on_registered(g, REGISTRY_UNAVAILABLE, 0, "cannot start the registration request");
}

/* The PostgreSQL sink of the served families: [pg] sql_dir's files, then
 * each family's, and one table each, in served order; then the table
 * rejections (of [pg] sql_dir), last. */
static struct pg_sink *
pg_start(struct daemon *d, char *err, size_t errlen)
{
	const char *dirs[1 + 16];
	struct pgsql_table tables[16 + 1];
	struct pgsql_column cols[16][CODEC_ROW_MAX];
	const struct config_family *fc;
	struct pg_sink_opts opts = {.copy = d->cfg->pg_copy};
	size_t n = 0;

	dirs[0] = d->cfg->pg_sql_dir;
	for (; (fc = family_served(d->cfg, n)) != NULL; n++) {
		if (n == 16) {
			snprintf(err, errlen, "more than 16 families served");
			return NULL;
		}
		dirs[1 + n] = fc->sql_dir;
		family_pg_table(fc, &tables[n], cols[n]);
	}
	tables[n] = *rejections_table();
	d->rejections_table = n;
	return pg_sink_new(
	    d->base, d->cfg->pg_conninfo, dirs, 1 + n, tables, n + 1, &opts, err, errlen);
}

static bool
all_done(struct daemon *d)
{
	return (d->collect == NULL || collect_inflight(d->collect) == 0) &&
	       (d->consumer == NULL || consumer_stopped(d->consumer)) &&
	       consumer_stopped(d->archive) && rejections_stopped(d->rejections) &&
	       daily_stopped(d->daily);
}

static void
on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct timespec now;

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (all_done(d) || now.tv_sec > d->stop_deadline.tv_sec ||
	    (now.tv_sec == d->stop_deadline.tv_sec && now.tv_nsec >= d->stop_deadline.tv_nsec)) {
		if (!all_done(d))
			log_warn("stopping with work unfinished", "inflight_batches=%zu",
			    d->collect ? collect_inflight(d->collect) : (size_t)0);
		event_base_loopexit(d->base, NULL);
		return;
	}
	timer_in(d->stop_timer, 20);
}

static void
begin_stop(struct daemon *d, const char *why)
{
	long grace = (long)d->cfg->request_timeout_ms + 5000;

	if (d->stopping)
		return;
	d->stopping = true;
	log_info("stopping", "signal=%s", why);
#ifdef HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	if (d->collect != NULL)
		collect_drain(d->collect);
	http_stop_accepting(d->http);
	if (d->consumer != NULL)
		consumer_stop(d->consumer);
	consumer_stop(d->archive);
	rejections_stop(d->rejections);
	daily_stop(d->daily);
	clock_gettime(CLOCK_MONOTONIC, &d->stop_deadline);
	d->stop_deadline.tv_sec += grace / 1000;
	timer_in(d->stop_timer, 0);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct config *fresh;
	enum log_level level;
	char err[512];

	(void)what;
	if (sig != SIGHUP) {
		begin_stop(d, sig == SIGTERM ? "TERM" : "INT");
		return;
	}
	/* SIGHUP: reopen the log (rotation) and take the new log level.
	 * Everything else needs a restart; say so rather than half-apply. */
	if (d->config_path != NULL &&
	    (fresh = config_load(d->config_path, err, sizeof(err))) != NULL) {
		if (log_parse_level(fresh->log_level, &level))
			log_set_level(level);
		if (log_open(fresh->log_file) == -1)
			log_error("cannot reopen the log file", "path=%s", fresh->log_file);
		config_free(fresh);
	} else if (d->config_path != NULL) {
		log_error("reload failed, keeping the running configuration", "error=\"%s\"", err);
	} else if (log_open(d->cfg->log_file) == -1) {
		log_error("cannot reopen the log file", "path=%s", d->cfg->log_file);
	}
	log_info("reloaded", "what=\"log file, log level\"");
}

/* Descriptors besides the clients': Kafka brokers, S3 and registry
 * connections, PostgreSQL, the loop's own. */
#define FD_RESERVE 128

/* Make room for max_clients connections under RLIMIT_NOFILE, raising the
 * soft limit as far as the hard one allows; warn if it is still short (the
 * server then rests on accept errors instead of spinning). */
static void
fit_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_clients + FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want)
		log_warn("max_clients is above the file descriptor limit",
		    "max_clients=%lld nofile=%llu", (long long)cfg->max_clients,
		    (unsigned long long)rl.rlim_cur);
}

/* Whether CFG's enricher produces to an enriched topic. */
static bool
enriched_topics(const struct config *cfg)
{
	const struct config_family *fc;

	for (size_t i = 0; cfg->role_enrich && (fc = family_served(cfg, i)) != NULL; i++)
		if (*fc->enriched_topic != '\0')
			return true;
	return false;
}

static int
daemon_start(struct daemon *d, char *err, size_t errlen)
{
	const struct config_family *fc;
	size_t n = 0;
	struct s3_config s3c = {
	    .endpoint = d->cfg->s3_endpoint,
	    .region = d->cfg->s3_region,
	    .bucket = d->cfg->s3_bucket,
	    .access_key = d->cfg->s3_access_key,
	    .secret_key = d->cfg->s3_secret_key,
	    .path_style = true,
	    .timeout_ms = (long)d->cfg->s3_timeout_ms,
	};

	health_require(HEALTH_KAFKA, true);
	health_require(HEALTH_REGISTRY, true);
	health_require(HEALTH_S3, true);
	health_require(HEALTH_SCHEMA, d->cfg->role_collect || enriched_topics(d->cfg));
	health_require(HEALTH_POSTGRES, d->cfg->role_enrich);

	if ((d->producer = producer_new(d->base, d->cfg, err, errlen)) == NULL)
		return -1;
	if ((d->curl = curl_loop_new(d->base)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	curl_loop_set_max_connections(d->curl, (long)d->cfg->s3_max_connections);
	if ((d->s3 = s3_new(d->curl, &s3c, err, errlen)) == NULL)
		return -1;
	d->registry = registry_new(d->curl, d->cfg->registry_url, d->cfg->registry_user,
	    d->cfg->registry_password, err, errlen);
	if (d->registry == NULL)
		return -1;
	if (d->cfg->role_enrich) {
		if ((d->pg = pg_start(d, err, errlen)) == NULL)
			return -1;
		d->consumer = consumer_new(
		    d->base, d->cfg, d->producer, d->registry, d->s3, d->pg, err, errlen);
		if (d->consumer == NULL)
			return -1;
		d->rejections =
		    rejections_new(d->base, d->cfg, d->pg, d->rejections_table, err, errlen);
		if (d->rejections == NULL)
			return -1;
		if ((d->readback = readback_new(d->base, d->cfg, err, errlen)) == NULL)
			return -1;
		if ((d->daily = daily_new(d->base, d->cfg, err, errlen)) == NULL)
			return -1;
	}
	if (d->cfg->role_archive &&
	    (d->archive = archive_new(d->base, d->cfg, d->registry, d->s3, err, errlen)) == NULL)
		return -1;
	if (d->cfg->role_collect) {
		d->collect = collect_new(d->base, d->cfg, d->producer, d->s3);
		if (d->collect == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	fit_fd_limit(d->cfg);
	for (size_t i = 0; family_served(d->cfg, i) != NULL; i++)
		(void)stats_family(family_served(d->cfg, i)->name);
	d->http = http_new(d->base, d->cfg, d->collect, d->readback, err, errlen);
	if (d->http == NULL)
		return -1;

	d->check_timer = evtimer_new(d->base, on_check, d);
	d->stop_timer = evtimer_new(d->base, on_stop_timer, d);
	for (size_t i = 0; (fc = family_served(d->cfg, i)) != NULL; i++)
		n += 1 + (d->consumer != NULL && *fc->enriched_topic != '\0');
	if (n > 0 && (d->regs = calloc(n, sizeof(*d->regs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; (fc = family_served(d->cfg, i)) != NULL; i++) {
		d->regs[d->nregs++] = (struct reg){.d = d, .fc = fc, .subject = fc->subject};
		if (d->consumer != NULL && *fc->enriched_topic != '\0')
			d->regs[d->nregs++] = (struct reg){
			    .d = d, .fc = fc, .subject = fc->enriched_subject, .enriched = true};
	}
	for (size_t i = 0; i < d->nregs; i++) {
		struct reg *g = &d->regs[i];

		snprintf(g->error, sizeof(g->error), "%s: not registered yet", g->subject);
		if ((g->timer = evtimer_new(d->base, on_register_timer, g)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		timer_in(g->timer, 0);
	}
	d->sigterm = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sigint = evsignal_new(d->base, SIGINT, on_signal, d);
	d->sighup = evsignal_new(d->base, SIGHUP, on_signal, d);
	if (!d->check_timer || !d->stop_timer || !d->sigterm || !d->sigint || !d->sighup ||
	    evsignal_add(d->sigterm, NULL) || evsignal_add(d->sigint, NULL) ||
	    evsignal_add(d->sighup, NULL)) {
		snprintf(err, errlen, "cannot set up timers and signals");
		return -1;
	}
	timer_in(d->check_timer, 0);
	return 0;
}

static void
daemon_free(struct daemon *d)
{
	/* Order matters: nothing new in, then the producer flushes (its
	 * reports reach the batches), then the clients cancel their transfers,
	 * then the modules that owned the callbacks go. */
	http_free(d->http);
	/* After the server: its requests are gone, their jobs forgotten. */
	readback_free(d->readback);
	consumer_free(d->consumer);
	consumer_free(d->archive);
	daily_free(d->daily);
	/* Before the sink: its reports for our writes then free only them. */
	rejections_free(d->rejections);
	producer_free(d->producer, 5000);
	s3_free(d->s3);
	registry_free(d->registry);
	pg_sink_free(d->pg);
	curl_loop_free(d->curl);
	collect_free(d->collect);
	if (d->check_timer)
		event_free(d->check_timer);
	for (size_t i = 0; i < d->nregs; i++)
		if (d->regs[i].timer != NULL)
			event_free(d->regs[i].timer);
	free(d->regs);
	if (d->stop_timer)
		event_free(d->stop_timer);
	if (d->sigterm)
		event_free(d->sigterm);
	if (d->sigint)
		event_free(d->sigint);
	if (d->sighup)
		event_free(d->sighup);
	if (d->base)
		event_base_free(d->base);
	config_free(d->cfg);
	metrics_reset();
	stats_reset();
}

/* libevent's own warnings, at most one a second: a condition that repeats
 * on every loop pass must not fill the disk. */
static void
on_libevent_log(int severity, const char *msg)
{
	static time_t last;
	static unsigned long suppressed;
	time_t now = time(NULL);
	char q[600];

	if (severity < EVENT_LOG_WARN)
		return;
	if (now == last) {
		suppressed++;
		return;
	}
	last = now;
	log_warn("libevent", "detail=%s suppressed=%lu", log_quote(msg, q, sizeof(q)), suppressed);
	suppressed = 0;
}

int
daemon_run(const char *config_path, struct config *cfg)
{
	/* main() settled the families (family_config_defaults). */
	struct daemon d = {.cfg = cfg, .config_path = config_path};
	char err[1024], q[1100];

	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(on_libevent_log);
	if ((d.base = event_base_new()) == NULL) {
		config_free(cfg);
		die("cannot create the event loop");
	}
	if (daemon_start(&d, err, sizeof(err)) == -1) {
		log_error("cannot start", "error=%s", log_quote(err, q, sizeof(q)));
		daemon_free(&d);
		return 1;
	}
	log_info("collectord started", "version=%s listen=%s:%d roles=%s", PACKAGE_VERSION,
	    cfg->listen_addr, http_port(d.http), cfg->roles);
#ifdef HAVE_SYSTEMD
	sd_notify(0, "READY=1");
#endif
	event_base_dispatch(d.base);
	log_info("collectord stopped", NULL);
	daemon_free(&d);
	return 0;
}
