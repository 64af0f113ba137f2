/*
 * pg_conn.c: a non-blocking libpq session on a libevent base: connect and
 * reconnect with backoff, pipeline queries, hand results back in order.
 *
 * Every callback fires from an event handler of this file, never from the
 * API calls, so an owner can queue work from anywhere.  Handlers count
 * themselves in `depth`; pg_conn_free inside a callback only marks the
 * object dead and the outermost handler frees it on the way out.  `gen`
 * changes whenever a session is torn down, so a loop that called out can
 * tell the session it was working on is gone.
 *
 * An attempt whose host list holds names first resolves them with evdns
 * (state CONNECTING, c->pg still NULL, c->resolving set), then connects to
 * the addresses with PQconnectStartParams; libpq never looks a name up.
 */
#include "pg_conn.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "pg_hosts.h"
#include "redact.h"

#define ERR_SIZE 512

enum item_kind { ITEM_QUERY, ITEM_SYNC, ITEM_SIMPLE, ITEM_COPY };

/* Bytes handed to PQputCopyData at a time: libpq takes an int. */
#define COPY_CHUNK (256 * 1024)

/* One thing sent that awaits its result(s), in send order. */
struct pg_item {
	struct pg_item *next;
	enum item_kind kind;
	pg_conn_result_cb *cb;
	void *arg;
	PGresult *res; /* collected so far (query: its result; simple: see pick) */
	/* ITEM_COPY: its input (borrowed), how much libpq has taken, and
	 * whether the server asked for it and the end went out */
	const char *data;
	size_t len, sent;
	bool copying, copy_done;
};

/*
 * One name lookup: one host entry, one address family.  While it is in
 * flight evdns holds it as its callback's argument.  `conn` goes NULL when
 * the attempt it served is abandoned; its callback then only frees it.
 * Once answered for a live attempt, the connection owns it.
 */
struct pg_lookup {
	struct pg_conn *conn;
	size_t host; /* index into conn->hosts */
	bool done;
	int err; /* EVUTIL_EAI_*, 0 on success */
	struct evutil_addrinfo *res;
};

struct pg_conn {
	struct event_base *base;
	char *conninfo;
	PQconninfoOption *parsed; /* conninfo, parsed once */
	struct pg_conn_opts opts;
	pg_conn_state_cb *state_cb;
	void *arg;

	PGconn *pg;
	enum pg_conn_state state;
	struct event *ev_io;	/* while connecting: one-shot, follows PQconnectPoll */
	struct event *ev_read;	/* while up: persistent */
	struct event *ev_write; /* while up: added only while output is pending */
	bool flushing;
	struct event *ev_timer; /* backoff, connect timeout, deferred reset */
	struct event *ev_reply; /* armed while items await results */
	unsigned attempts;	/* failures since the last success, for backoff */
	uint32_t rng;

	struct pg_item *head, *tail;
	PGresult *seg_error; /* first error of the current pipeline segment */

	struct evdns_base *dns;	    /* made by the first attempt that needs it */
	struct pg_hosts hosts;	    /* this attempt's host list, while resolving */
	struct pg_lookup **lookups; /* this attempt's, in host list order */
	size_t nlookups, pending;   /* pending: not answered yet */
	bool resolving;
	bool launching; /* inside the loop starting lookups */

	bool reset_pending;
	char reset_why[ERR_SIZE];
	char err[ERR_SIZE];

	unsigned gen;
	int depth;
	bool dead;
};

/* libpq messages span lines ("...failed: Connection refused\n\tIs the
 * server running..."); logs and /readyz want one line. */
static void
flatten(const char *msg, char *buf, size_t size)
{
	size_t n = 0;
	bool space = false;

	if (size == 0)
		return;
	for (; msg != NULL && *msg != '\0' && n + 1 < size; msg++) {
		if (*msg == '\n' || *msg == '\t' || *msg == '\r' || *msg == ' ') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < size)
			buf[n++] = ' ';
		space = false;
		buf[n++] = *msg;
	}
	buf[n] = '\0';
}

/* event_free() does not accept NULL. */
static void
ev_free(struct event *ev)
{
	if (ev != NULL)
		event_free(ev);
}

static bool
result_failed(const PGresult *res)
{
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY:
	case PGRES_PIPELINE_SYNC:
		return false;
	default:
		return true;
	}
}

static void
result_error(const PGresult *res, char *buf, size_t size)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char line[ERR_SIZE - 32]; /* leaves room for the SQLSTATE */

	if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED) {
		snprintf(buf, size, "skipped: an earlier statement of the pipeline failed");
	} else if (primary != NULL) {
		flatten(primary, line, sizeof(line));
		snprintf(buf, size, "%s (SQLSTATE %s)", line, sqlstate ? sqlstate : "?");
	} else {
		flatten(PQresultErrorMessage(res), line, sizeof(line));
		snprintf(buf, size, "%s", *line ? line : PQresStatus(PQresultStatus(res)));
	}
}

static void
notice_cb(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char line[ERR_SIZE], q[ERR_SIZE];

	(void)arg;
	flatten(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), line, sizeof(line));
	log_write(sev != NULL && strcmp(sev, "WARNING") == 0 ? LOG_WARN : LOG_DEBUG,
	    "postgres notice", "severity=%s message=%s", sev ? sev : "?",
	    log_quote(line, q, sizeof(q)));
}

static uint32_t
next_rand(struct pg_conn *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 17;
	c->rng ^= c->rng << 5;
	return c->rng;
}

/* Doubling delay from backoff_min_ms to backoff_max_ms, jittered down to
 * half so a fleet that lost the same server does not return in step. */
static unsigned
backoff_ms(struct pg_conn *c)
{
	uint64_t d = c->opts.backoff_min_ms;

	for (unsigned i = 0; i < c->attempts && d < c->opts.backoff_max_ms; i++)
		d *= 2;
	if (d > c->opts.backoff_max_ms)
		d = c->opts.backoff_max_ms;
	if (c->attempts < 64)
		c->attempts++;
	return (unsigned)(d / 2 + next_rand(c) % (d / 2 + 1));
}

static void
arm(struct event *timer, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(timer, &tv);
}

static void
call(struct pg_conn *c, pg_conn_result_cb *cb, void *arg, const PGresult *res, const char *err)
{
	if (cb == NULL || c->dead)
		return;
	cb(c, arg, res, err);
}

static void
free_items(struct pg_item *it)
{
	while (it != NULL) {
		struct pg_item *next = it->next;

		PQclear(it->res);
		free(it);
		it = next;
	}
}

/* Forget this attempt's lookups: free the answered ones, abandon the rest
 * to their callbacks.  They are not cancelled: libevent 2.1 delivers a
 * cancellation later and touches the evdns base when it does, so a base
 * freed in between would be used after free.  An abandoned lookup costs
 * one DNS answer nobody reads; destroy() fails whatever is still in
 * flight when it frees the base. */
static void
clear_lookups(struct pg_conn *c)
{
	for (size_t i = 0; i < c->nlookups; i++) {
		struct pg_lookup *l = c->lookups[i];

		if (l->done) {
			if (l->res != NULL)
				evutil_freeaddrinfo(l->res);
			free(l);
		} else {
			l->conn = NULL;
		}
	}
	free(c->lookups);
	c->lookups = NULL;
	c->nlookups = c->pending = 0;
	c->resolving = false;
	pg_hosts_free(&c->hosts);
}

/* Forget the session: fail what was in flight, schedule the next attempt,
 * report DOWN.  MSG may point into c->reset_why or libpq's buffer. */
static void
teardown(struct pg_conn *c, const char *msg)
{
	struct pg_item *items = c->head;
	bool was_up = c->state == PG_CONN_UP;
	char err[ERR_SIZE], q[ERR_SIZE];
	unsigned delay;

	flatten(msg != NULL && *msg != '\0' ? msg : "connection failed", err, sizeof(err));
	memcpy(c->err, err, sizeof(err));
	c->head = c->tail = NULL;
	ev_free(c->ev_io);
	ev_free(c->ev_read);
	ev_free(c->ev_write);
	c->ev_io = c->ev_read = c->ev_write = NULL;
	c->flushing = false;
	evtimer_del(c->ev_reply);
	clear_lookups(c);
	PQfinish(c->pg);
	c->pg = NULL;
	PQclear(c->seg_error);
	c->seg_error = NULL;
	c->reset_pending = false;
	c->state = PG_CONN_DOWN;
	c->gen++;
	delay = backoff_ms(c);
	arm(c->ev_timer, delay);
	log_warn(was_up ? "postgres session lost" : "postgres connect failed",
	    "error=%s retry_ms=%u", log_quote(err, q, sizeof(q)), delay);

	/* Report only after our own state is consistent: these callbacks may
	 * queue (refused), reset (no-op) or free (deferred) the connection. */
	for (struct pg_item *it = items; it != NULL; it = it->next)
		call(c, it->cb, it->arg, NULL, err);
	free_items(items);
	if (c->state_cb != NULL && !c->dead)
		c->state_cb(c, c->arg, PG_CONN_DOWN, err);
}

static void
destroy(struct pg_conn *c)
{
	ev_free(c->ev_io);
	ev_free(c->ev_read);
	ev_free(c->ev_write);
	ev_free(c->ev_timer);
	ev_free(c->ev_reply);
	PQfinish(c->pg);
	free_items(c->head);
	PQclear(c->seg_error);
	clear_lookups(c);
	/* Fails the lookups still in flight: their callbacks run on a later
	 * loop pass, find no connection and free themselves (libevent's
	 * shutdown path does not touch the freed base). */
	if (c->dns != NULL)
		evdns_base_free(c->dns, 1);
	PQconninfoFree(c->parsed);
	free(c->conninfo);
	free(c);
}

/* Every handler ends here: the owner may have freed us from a callback. */
static void
leave(struct pg_conn *c)
{
	if (--c->depth == 0 && c->dead)
		destroy(c);
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg);
static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

/* Wait for what PQconnectPoll asked for; the socket may change between
 * polls (libpq tries the next host or address), so read it every time. */
static void
poll_wait(struct pg_conn *c, PostgresPollingStatusType how)
{
	int fd = PQsocket(c->pg);

	ev_free(c->ev_io);
	c->ev_io = NULL;
	if (fd < 0) {
		teardown(c, PQerrorMessage(c->pg));
		return;
	}
	c->ev_io = event_new(
	    c->base, fd, how == PGRES_POLLING_READING ? EV_READ : EV_WRITE, on_connect_io, c);
	if (c->ev_io == NULL || event_add(c->ev_io, NULL) == -1)
		teardown(c, "cannot watch the connection's socket");
}

/* Hand the connection to libpq: with P's keywords when names were resolved,
 * else the conninfo as given.  The attempt's timer is already running. */
static void
start(struct pg_conn *c, const struct pg_hosts_params *p)
{
	c->pg = p != NULL ? PQconnectStartParams(p->keywords, p->values, 0)
			  : PQconnectStart(c->conninfo);
	if (c->pg == NULL) {
		teardown(c, "out of memory");
		return;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		teardown(c, PQerrorMessage(c->pg));
		return;
	}
	PQsetNoticeReceiver(c->pg, notice_cb, c);
	/* libpq: begin as if PQconnectPoll had returned PGRES_POLLING_WRITING */
	poll_wait(c, PGRES_POLLING_WRITING);
}

static const char *
option(const PQconninfoOption *opts, const char *keyword)
{
	for (; opts != NULL && opts->keyword != NULL; opts++)
		if (strcmp(opts->keyword, keyword) == 0)
			return opts->val;
	return NULL;
}

/*
 * Fill c->hosts for this attempt: 1 when some entry needs a lookup, 0 to
 * let libpq have the conninfo as it is, -1 out of memory.  Where the
 * conninfo is silent, libpq takes PGHOST, PGHOSTADDR and PGPORT, so they
 * count here too; a service file may name the host and is libpq's to read.
 */
static int
plan_hosts(struct pg_conn *c)
{
	const char *host = option(c->parsed, "host"), *hostaddr = option(c->parsed, "hostaddr");
	const char *port = option(c->parsed, "port");

	if (option(c->parsed, "service") != NULL || getenv("PGSERVICE") != NULL)
		return 0;
	if (host == NULL)
		host = getenv("PGHOST");
	if (hostaddr == NULL)
		hostaddr = getenv("PGHOSTADDR");
	if (port == NULL)
		port = getenv("PGPORT");
	return pg_hosts_split(host, hostaddr, port, &c->hosts);
}

/*
 * libevent 2.1 makes no base at all when /etc/resolv.conf is missing,
 * unreadable or names no nameserver, although it has loaded /etc/hosts by
 * then: build one by hand in that case, asking 127.0.0.1 (libevent's own
 * default) for names that are not in /etc/hosts.
 */
static struct evdns_base *
make_dns(struct event_base *base)
{
	/* no sockets or events held between attempts */
	const int flags = EVDNS_BASE_DISABLE_WHEN_INACTIVE;
	struct evdns_base *dns = evdns_base_new(base, flags | EVDNS_BASE_INITIALIZE_NAMESERVERS);
	const char *why = "unreadable";
	int r;

	if (dns != NULL)
		return dns;
	if ((dns = evdns_base_new(base, flags)) == NULL)
		return NULL;
	r = evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL, "/etc/resolv.conf");
	if (r == 1)
		why = "missing";
	else if (r == 6)
		why = "no_nameserver";
	if (evdns_base_count_nameservers(dns) == 0)
		(void)evdns_base_nameserver_ip_add(dns, "127.0.0.1");
	log_warn("postgres host lookups: /etc/resolv.conf unusable, names not in /etc/hosts go "
		 "to 127.0.0.1",
	    "reason=%s", why);
	return dns;
}

static void resolved(struct pg_conn *c);

static void
on_lookup(int err, struct evutil_addrinfo *res, void *arg)
{
	struct pg_lookup *l = arg;
	struct pg_conn *c = l->conn;

	if (c == NULL) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		free(l);
		return;
	}
	/* the connection owns L from now on */
	l->done = true;
	l->err = err;
	l->res = res;
	c->pending--;
	/* an answer given at once (a literal, /etc/hosts) arrives inside
	 * evdns_getaddrinfo: resolve() goes on when the last one is launched */
	if (c->pending == 0 && !c->launching) {
		c->depth++;
		resolved(c);
		leave(c);
	}
}

/* Look up every name of c->hosts, IPv4 and IPv6 apart: a single-family
 * lookup never waits on libevent's timer for the other family's answer. */
static void
resolve(struct pg_conn *c)
{
	static const int families[] = {AF_INET, AF_INET6};
	size_t n = 0;

	for (size_t i = 0; i < c->hosts.n; i++)
		n += c->hosts.v[i].lookup ? 2 : 0;
	if (c->dns == NULL && (c->dns = make_dns(c->base)) == NULL) {
		teardown(c, "cannot start the DNS resolver");
		return;
	}
	if ((c->lookups = calloc(n, sizeof(*c->lookups))) == NULL) {
		teardown(c, "out of memory");
		return;
	}
	c->resolving = true;
	c->launching = true;
	for (size_t i = 0; i < c->hosts.n; i++) {
		for (size_t f = 0; c->hosts.v[i].lookup && f < 2; f++) {
			struct evutil_addrinfo hints = {
			    .ai_family = families[f],
			    .ai_socktype = SOCK_STREAM,
			    .ai_protocol = IPPROTO_TCP,
			};
			struct pg_lookup *l = calloc(1, sizeof(*l));

			if (l == NULL) {
				c->launching = false;
				teardown(c, "out of memory");
				return;
			}
			l->conn = c;
			l->host = i;
			c->lookups[c->nlookups++] = l;
			c->pending++;
			/* the handle is not kept: lookups are never cancelled
			 * (see clear_lookups) */
			(void)evdns_getaddrinfo(
			    c->dns, c->hosts.v[i].name, NULL, &hints, on_lookup, l);
		}
	}
	c->launching = false;
	if (c->pending == 0)
		resolved(c);
}

static int
add_addrs(struct pg_hosts *hosts, const struct pg_lookup *l)
{
	char buf[INET6_ADDRSTRLEN];

	for (const struct evutil_addrinfo *ai = l->res; ai != NULL; ai = ai->ai_next) {
		const void *a;

		if (ai->ai_family == AF_INET)
			a = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
		else
			continue;
		if (evutil_inet_ntop(ai->ai_family, a, buf, sizeof(buf)) == NULL)
			continue;
		if (pg_hosts_add(hosts, l->host, buf) == -1)
			return -1;
	}
	return 0;
}

/* Every lookup has answered: connect to what they found, or fail the
 * attempt naming the first host that has no address. */
static void
resolved(struct pg_conn *c)
{
	struct pg_hosts_params p;
	char msg[ERR_SIZE];

	c->resolving = false;
	for (size_t i = 0; i < c->nlookups; i++) {
		if (add_addrs(&c->hosts, c->lookups[i]) == -1) {
			teardown(c, "out of memory");
			return;
		}
	}
	for (size_t i = 0; i < c->hosts.n; i++) {
		const struct pg_host *h = &c->hosts.v[i];
		const char *why = "no address found";

		if (!h->lookup || h->naddrs > 0)
			continue;
		for (size_t k = 0; k < c->nlookups; k++)
			if (c->lookups[k]->host == i && c->lookups[k]->err != 0) {
				why = evutil_gai_strerror(c->lookups[k]->err);
				break;
			}
		snprintf(msg, sizeof(msg), "cannot resolve %s: %s", h->name, why);
		teardown(c, msg);
		return;
	}
	if (pg_hosts_params(c->parsed, &c->hosts, &p) == -1) {
		pg_hosts_params_free(&p);
		teardown(c, "out of memory");
		return;
	}
	log_debug("postgres hosts resolved", "host=%s hostaddr=%s", p.host, p.hostaddr);
	clear_lookups(c);
	start(c, &p);
	/* libpq has copied every keyword and value */
	pg_hosts_params_free(&p);
}

/* One connection attempt, from the loop: its timer covers the lookups and
 * the connection both. */
static void
attempt(struct pg_conn *c)
{
	c->state = PG_CONN_CONNECTING;
	arm(c->ev_timer, c->opts.connect_timeout_ms);
	switch (plan_hosts(c)) {
	case 1:
		resolve(c);
		break;
	case 0:
		start(c, NULL);
		break;
	default:
		teardown(c, "out of memory");
		break;
	}
}

static void
connected(struct pg_conn *c)
{
	char host[256];
	int fd;

	ev_free(c->ev_io);
	c->ev_io = NULL;
	evtimer_del(c->ev_timer);
	if (PQsetnonblocking(c->pg, 1) != 0) {
		teardown(c, PQerrorMessage(c->pg));
		return;
	}
	fd = PQsocket(c->pg);
	c->ev_read = event_new(c->base, fd, EV_READ | EV_PERSIST, on_read, c);
	c->ev_write = event_new(c->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
	if (c->ev_read == NULL || c->ev_write == NULL || event_add(c->ev_read, NULL) == -1) {
		teardown(c, "cannot watch the connection's socket");
		return;
	}
	c->state = PG_CONN_UP;
	c->err[0] = '\0';
	log_info("postgres connected", "host=%s addr=%s port=%s server_version=%d",
	    log_quote(PQhost(c->pg), host, sizeof(host)), PQhostaddr(c->pg), PQport(c->pg),
	    PQserverVersion(c->pg));
	if (c->state_cb != NULL)
		c->state_cb(c, c->arg, PG_CONN_UP, NULL);
}

static void
on_connect_io(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;

	(void)fd;
	(void)what;
	c->depth++;
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		poll_wait(c, PGRES_POLLING_READING);
		break;
	case PGRES_POLLING_WRITING:
		poll_wait(c, PGRES_POLLING_WRITING);
		break;
	case PGRES_POLLING_OK:
		connected(c);
		break;
	default:
		teardown(c, PQerrorMessage(c->pg));
		break;
	}
	leave(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;

	(void)fd;
	(void)what;
	c->depth++;
	if (c->reset_pending) {
		teardown(c, c->reset_why);
	} else if (c->resolving) {
		const char *name = "?";
		char msg[ERR_SIZE];

		for (size_t i = 0; i < c->nlookups; i++)
			if (!c->lookups[i]->done) {
				name = c->hosts.v[c->lookups[i]->host].name;
				break;
			}
		snprintf(msg, sizeof(msg), "connection attempt timed out resolving %s", name);
		teardown(c, msg);
	} else if (c->pg == NULL) {
		attempt(c);
	} else if (c->state == PG_CONN_CONNECTING) {
		teardown(c, "connection attempt timed out");
	}
	leave(c);
}

/* Push buffered output; keep EV_WRITE armed while libpq has more. */
static void
flush(struct pg_conn *c)
{
	switch (PQflush(c->pg)) {
	case 0:
		if (c->flushing)
			event_del(c->ev_write);
		c->flushing = false;
		break;
	case 1:
		if (!c->flushing)
			event_add(c->ev_write, NULL);
		c->flushing = true;
		break;
	default:
		teardown(c, PQerrorMessage(c->pg));
		break;
	}
}

/* Sends only fill libpq's buffer; the write handler flushes it on the next
 * loop pass, so a burst of queries leaves in one write. */
static void
want_flush(struct pg_conn *c)
{
	if (!c->flushing)
		event_add(c->ev_write, NULL);
	c->flushing = true;
}

/* Progress: give the next item a full reply timeout, or stop watching. */
static void
pop(struct pg_conn *c)
{
	c->head = c->head->next;
	if (c->head == NULL) {
		c->tail = NULL;
		evtimer_del(c->ev_reply);
	} else {
		arm(c->ev_reply, c->opts.reply_timeout_ms);
	}
}

static void
on_reply_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	char msg[128];

	(void)fd;
	(void)what;
	c->depth++;
	snprintf(msg, sizeof(msg), "no reply from the server for %u ms", c->opts.reply_timeout_ms);
	teardown(c, msg);
	leave(c);
}

static void
finish_item(struct pg_conn *c, struct pg_item *it)
{
	char err[ERR_SIZE];
	bool failed = result_failed(it->res);

	if (failed)
		result_error(it->res, err, sizeof(err));
	else
		c->attempts = 0;
	call(c, it->cb, it->arg, it->res, failed ? err : NULL);
	/* The segment's first real error is what its sync reports. */
	if (failed && it->kind == ITEM_QUERY && c->seg_error == NULL && c->pg != NULL &&
	    PQresultStatus(it->res) != PGRES_PIPELINE_ABORTED) {
		c->seg_error = it->res;
		it->res = NULL;
	}
	PQclear(it->res);
	free(it);
}

static void
finish_sync(struct pg_conn *c, struct pg_item *it)
{
	PGresult *e = c->seg_error;
	char err[ERR_SIZE];

	c->seg_error = NULL;
	if (e != NULL)
		result_error(e, err, sizeof(err));
	call(c, it->cb, it->arg, e, e != NULL ? err : NULL);
	PQclear(e);
	free(it);
}

/* Keep a simple query's first error, else its last result. */
static void
collect(struct pg_item *it, PGresult *res)
{
	if (it->res != NULL &&
	    ((it->kind != ITEM_SIMPLE && it->kind != ITEM_COPY) || result_failed(it->res))) {
		PQclear(res);
		return;
	}
	PQclear(it->res);
	it->res = res;
}

/*
 * Feed the COPY at the head of the queue: its data, then its end.  libpq
 * grows its buffer for what it is given, so a refusal (0) only happens
 * when it cannot; the write handler tries again.  A refusal for good (-1)
 * is usually the server's error arriving first (it ends the COPY): the
 * item then waits for that error like any result.
 */
static void
copy_feed(struct pg_conn *c, struct pg_item *it)
{
	int r = 1;

	while (r == 1 && it->sent < it->len) {
		size_t n = it->len - it->sent < COPY_CHUNK ? it->len - it->sent : COPY_CHUNK;

		if ((r = PQputCopyData(c->pg, it->data + it->sent, (int)n)) == 1)
			it->sent += n;
	}
	if (r == 1)
		r = PQputCopyEnd(c->pg, NULL);
	if (r != 0) {
		it->copying = false;
		it->copy_done = true;
	}
	want_flush(c);
}

/* Hand out every complete result.  In pipeline mode each query's result
 * is followed by a NULL from PQgetResult and a sync yields one
 * PGRES_PIPELINE_SYNC; a NULL for an item that has no result yet means
 * nothing more has arrived. */
static void
drain(struct pg_conn *c)
{
	unsigned gen = c->gen;

	while (
	    c->gen == gen && !c->dead && !c->reset_pending && c->head != NULL && !PQisBusy(c->pg)) {
		struct pg_item *it = c->head;
		PGresult *res;

		if (it->copying)
			break; /* libpq answers COPY_IN until the end is sent */
		res = PQgetResult(c->pg);
		if (res != NULL && PQresultStatus(res) == PGRES_COPY_IN) {
			PQclear(res);
			if (it->kind != ITEM_COPY || it->copy_done) {
				teardown(c, "protocol confusion: the server wants COPY data");
				break;
			}
			it->copying = true;
			copy_feed(c, it);
			continue;
		}
		if (it->kind == ITEM_SYNC) {
			if (res == NULL)
				break;
			if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
				PQclear(res);
				teardown(c, "protocol confusion: expected a pipeline sync");
				break;
			}
			PQclear(res);
			pop(c);
			finish_sync(c, it);
		} else if (res == NULL) {
			if (it->res == NULL)
				break;
			pop(c);
			finish_item(c, it);
		} else {
			collect(it, res);
		}
	}
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	unsigned gen = c->gen;

	(void)fd;
	(void)what;
	c->depth++;
	if (!PQconsumeInput(c->pg)) {
		teardown(c, PQerrorMessage(c->pg));
	} else {
		drain(c);
		/* libpq: while a flush is pending, input may be what unblocks it */
		if (c->gen == gen && !c->dead && c->flushing)
			flush(c);
	}
	leave(c);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;

	(void)fd;
	(void)what;
	c->depth++;
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		teardown(c, PQerrorMessage(c->pg));
	} else {
		if (c->head != NULL && c->head->copying) {
			copy_feed(c, c->head);
			if (!c->head->copying)
				drain(c); /* the results may be here already */
		}
		if (c->pg != NULL && !c->dead)
			flush(c);
	}
	leave(c);
}

struct pg_conn *
pg_conn_new(struct event_base *base, const char *conninfo, const struct pg_conn_opts *opts,
    pg_conn_state_cb *state_cb, void *arg, char *err, size_t errlen)
{
	PQconninfoOption *parsed;
	char *msg = NULL;
	struct pg_conn *c;
	struct timeval now;

	parsed = PQconninfoParse(conninfo != NULL ? conninfo : "", &msg);
	if (parsed == NULL) {
		/* libpq quotes what it could not parse: maybe a password */
		char *safe = redact_pq_message(msg != NULL ? msg : "out of memory");
		char line[ERR_SIZE];

		flatten(safe != NULL ? safe : "cannot be parsed", line, sizeof(line));
		snprintf(err, errlen, "postgres conninfo: %s", line);
		free(safe);
		PQfreemem(msg);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->conninfo = strdup(conninfo)) == NULL)
		goto oom;
	c->parsed = parsed; /* ours now */
	parsed = NULL;
	c->base = base;
	if (opts != NULL)
		c->opts = *opts;
	if (c->opts.backoff_min_ms == 0)
		c->opts.backoff_min_ms = 100;
	if (c->opts.backoff_max_ms == 0)
		c->opts.backoff_max_ms = 10000;
	if (c->opts.backoff_max_ms < c->opts.backoff_min_ms)
		c->opts.backoff_max_ms = c->opts.backoff_min_ms;
	if (c->opts.connect_timeout_ms == 0)
		c->opts.connect_timeout_ms = 10000;
	if (c->opts.reply_timeout_ms == 0)
		c->opts.reply_timeout_ms = 60000;
	c->state_cb = state_cb;
	c->arg = arg;
	gettimeofday(&now, NULL);
	c->rng = (uint32_t)getpid() ^ (uint32_t)now.tv_usec ^ (uint32_t)now.tv_sec;
	if (c->rng == 0)
		c->rng = 1;
	c->ev_timer = evtimer_new(base, on_timer, c);
	c->ev_reply = evtimer_new(base, on_reply_timeout, c);
	if (c->ev_timer == NULL || c->ev_reply == NULL)
		goto oom;
	/* The first attempt starts from the loop, so no callback fires before
	 * the owner has our pointer. */
	c->state = PG_CONN_CONNECTING;
	arm(c->ev_timer, 0);
	return c;
oom:
	if (c != NULL) {
		ev_free(c->ev_timer);
		ev_free(c->ev_reply);
		PQconninfoFree(c->parsed);
		free(c->conninfo);
	}
	PQconninfoFree(parsed);
	free(c);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

void
pg_conn_free(struct pg_conn *c)
{
	if (c == NULL || c->dead)
		return;
	c->dead = true;
	if (c->depth == 0)
		destroy(c);
}

enum pg_conn_state
pg_conn_state(const struct pg_conn *c, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", c->err);
	return c->state;
}

bool
pg_conn_idle(const struct pg_conn *c)
{
	return c->state == PG_CONN_UP && !c->reset_pending && !c->dead && c->head == NULL;
}

void
pg_conn_reset(struct pg_conn *c, const char *why)
{
	if (c->dead || c->pg == NULL || c->reset_pending)
		return;
	c->reset_pending = true;
	flatten(why != NULL ? why : "reset", c->reset_why, sizeof(c->reset_why));
	arm(c->ev_timer, 0);
}

static int
usable(struct pg_conn *c, char *err, size_t errlen)
{
	if (c->state != PG_CONN_UP || c->reset_pending || c->dead) {
		snprintf(err, errlen, "postgres: not connected");
		return -1;
	}
	return 0;
}

static int
pipelined(struct pg_conn *c, char *err, size_t errlen)
{
	if (usable(c, err, errlen) == -1)
		return -1;
	if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF)
		return 0;
	if (c->head != NULL) {
		snprintf(err, errlen, "postgres: a simple query is still running");
		return -1;
	}
	if (!PQenterPipelineMode(c->pg)) {
		flatten(PQerrorMessage(c->pg), err, errlen);
		return -1;
	}
	return 0;
}

/* A send that libpq refused leaves the session in an unknown state (part
 * of a segment may be queued): start over on a new one. */
static int
send_failed(struct pg_conn *c, char *err, size_t errlen)
{
	char line[ERR_SIZE];

	flatten(PQerrorMessage(c->pg), line, sizeof(line));
	snprintf(err, errlen, "postgres send: %s", *line ? line : "failed");
	pg_conn_reset(c, err);
	return -1;
}

static int
push(struct pg_conn *c, enum item_kind kind, pg_conn_result_cb *cb, void *arg, char *err,
    size_t errlen)
{
	struct pg_item *it = calloc(1, sizeof(*it));

	if (it == NULL) {
		/* libpq already holds the command: the session is out of step */
		snprintf(err, errlen, "out of memory");
		pg_conn_reset(c, err);
		return -1;
	}
	it->kind = kind;
	it->cb = cb;
	it->arg = arg;
	if (c->tail != NULL) {
		c->tail->next = it;
	} else {
		c->head = it;
		arm(c->ev_reply, c->opts.reply_timeout_ms);
	}
	c->tail = it;
	want_flush(c);
	return 0;
}

int
pg_conn_query(struct pg_conn *c, const char *sql, int nparams, const char *const *values,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (pipelined(c, err, errlen) == -1)
		return -1;
	if (!PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0))
		return send_failed(c, err, errlen);
	return push(c, ITEM_QUERY, cb, arg, err, errlen);
}

int
pg_conn_query_prepared(struct pg_conn *c, const char *name, int nparams, const char *const *values,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (pipelined(c, err, errlen) == -1)
		return -1;
	if (!PQsendQueryPrepared(c->pg, name, nparams, values, NULL, NULL, 0))
		return send_failed(c, err, errlen);
	return push(c, ITEM_QUERY, cb, arg, err, errlen);
}

int
pg_conn_prepare(struct pg_conn *c, const char *name, const char *sql, int nparams,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (pipelined(c, err, errlen) == -1)
		return -1;
	if (!PQsendPrepare(c->pg, name, sql, nparams, NULL))
		return send_failed(c, err, errlen);
	return push(c, ITEM_QUERY, cb, arg, err, errlen);
}

int
pg_conn_sync(struct pg_conn *c, pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (pipelined(c, err, errlen) == -1)
		return -1;
	if (!PQpipelineSync(c->pg))
		return send_failed(c, err, errlen);
	return push(c, ITEM_SYNC, cb, arg, err, errlen);
}

int
pg_conn_simple(
    struct pg_conn *c, const char *sql, pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (usable(c, err, errlen) == -1)
		return -1;
	if (c->head != NULL) {
		snprintf(err, errlen, "postgres: queries still in flight");
		return -1;
	}
	if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF && !PQexitPipelineMode(c->pg)) {
		flatten(PQerrorMessage(c->pg), err, errlen);
		return -1;
	}
	if (!PQsendQuery(c->pg, sql))
		return send_failed(c, err, errlen);
	return push(c, ITEM_SIMPLE, cb, arg, err, errlen);
}

int
pg_conn_copy(struct pg_conn *c, const char *sql, const void *data, size_t len,
    pg_conn_result_cb *cb, void *arg, char *err, size_t errlen)
{
	if (pg_conn_simple(c, sql, cb, arg, err, errlen) == -1)
		return -1;
	/* the item pg_conn_simple queued is ours, and the only one */
	c->tail->kind = ITEM_COPY;
	c->tail->data = data;
	c->tail->len = len;
	return 0;
}
